//! Which files of one project live in the blob store, and what this node
//! knows of their copies in the working tree.
//!
//! Three things live side by side:
//! - the tracked pointers under `.tandem/blobs/` (shared through Git);
//! - `.git/info/exclude`, kept listing every pointed-to file so neither Git
//!   nor a sweep ever stages a large file's bytes;
//! - `.git/tandem/blobs.json`, this node's own record of each materialised
//!   file's size and modification time, so a sweep notices an edit without
//!   re-hashing gigabytes, and a missing file can be told apart from one
//!   that was never fetched.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tandem_protocol::blob::{
    self, BlobHash, BlobPolicy, MAX_POINTER_LEN, POINTER_DIR, POLICY_FILE, Pointer,
};
use tandem_protocol::path::SafePath;

use crate::beneath::{Beneath, BeneathError, Kind, WriteOptions};
use crate::fsutil::atomic_write;

#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Bad {
        path: PathBuf,
        #[source]
        source: blob::BlobError,
    },
    /// A path in the working tree that leads through a link or out of the
    /// project (or cannot be used for another reason).
    #[error(transparent)]
    Beneath(#[from] BeneathError),
}

impl TrackError {
    /// A path refused for what it is (a link, an escape): callers skip and
    /// report it rather than stopping on it.
    pub fn as_refusal(&self) -> Option<&BeneathError> {
        match self {
            Self::Beneath(e) if e.is_refusal() => Some(e),
            _ => None,
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> TrackError + '_ {
    move |source| TrackError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What the working tree's copy of a blob file looked like when this node
/// last wrote or hashed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Materialised {
    pub hash: BlobHash,
    pub size: u64,
    pub mtime_ns: i128,
}

/// This node's private record for one project (never tracked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalState {
    /// Files written or hashed by this node, by path.
    #[serde(default)]
    pub files: BTreeMap<String, Materialised>,
    /// Cloned with `--no-data`: large files are fetched only on demand.
    #[serde(default)]
    pub on_demand: bool,
    /// Files whose local copy the user dropped with `tandem evict`: syncs
    /// leave them on peers until `tandem fetch` asks for them again.
    #[serde(default)]
    pub evicted: std::collections::BTreeSet<String>,
    /// Files of linked datasets written under `input/<dataset>/`.
    #[serde(default)]
    pub linked: BTreeMap<String, Materialised>,
}

/// The size and modification time of the regular file at `file` beneath
/// the project root, or `None` if there is none (a link there is not a
/// file, and is never followed). A link or escape on the way is an error
/// ([`TrackError::as_refusal`]).
pub fn stat(root: &Beneath, file: &str) -> Result<Option<(u64, i128)>, TrackError> {
    match root.lstat(file)? {
        Some(entry) if entry.is_file() => Ok(Some((entry.size, entry.mtime_ns))),
        _ => Ok(None),
    }
}

impl Materialised {
    /// Whether the file on disk is still exactly what was recorded.
    pub fn matches(&self, on_disk: Option<(u64, i128)>) -> bool {
        on_disk == Some((self.size, self.mtime_ns))
    }
}

/// One project's blob bookkeeping, rooted at its working tree.
pub struct Tracker {
    root: PathBuf,
    /// The working tree, opened on first use; its folder handles are
    /// reused for as long as this tracker lives (one sweep, say).
    beneath: std::sync::OnceLock<Beneath>,
}

/// Largest policy file read.
const MAX_POLICY_LEN: u64 = 64 * 1024;

impl Tracker {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            beneath: std::sync::OnceLock::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The working tree, through which every path from a pointer or a
    /// listing is reached (see [`crate::beneath`]).
    pub fn beneath(&self) -> Result<&Beneath, TrackError> {
        if let Some(beneath) = self.beneath.get() {
            return Ok(beneath);
        }
        let opened = Beneath::open(&self.root)?;
        Ok(self.beneath.get_or_init(|| opened))
    }

    fn state_path(&self) -> PathBuf {
        self.root.join(".git/tandem/blobs.json")
    }

    /// The project's thresholds; a malformed policy file falls back to the
    /// defaults (with a warning) rather than stopping sweeps.
    pub fn policy(&self) -> Result<BlobPolicy, TrackError> {
        let bytes = match self.beneath()?.read(POLICY_FILE, MAX_POLICY_LEN) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(BlobPolicy::default()),
            Err(e @ (BeneathError::TooLarge { .. } | BeneathError::NotAFile { .. })) => {
                tracing::warn!(problem = %e, "using the default blob thresholds");
                return Ok(BlobPolicy::default());
            }
            Err(e) if e.is_refusal() => {
                tracing::warn!(problem = %e, "using the default blob thresholds");
                return Ok(BlobPolicy::default());
            }
            Err(e) => return Err(e.into()),
        };
        let text = String::from_utf8_lossy(&bytes);
        Ok(BlobPolicy::from_toml(&text).unwrap_or_else(|problem| {
            tracing::warn!(path = POLICY_FILE, %problem, "using the default blob thresholds");
            BlobPolicy::default()
        }))
    }

    pub fn load_state(&self) -> Result<LocalState, TrackError> {
        let path = self.state_path();
        match fs::read(&path) {
            // A damaged record only costs re-hashing: start afresh.
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(LocalState::default()),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    pub fn save_state(&self, state: &LocalState) -> Result<(), TrackError> {
        let path = self.state_path();
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        let bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
        atomic_write(&path, &bytes, None).map_err(io_at(&path))
    }

    /// Every pointer in the working tree, by the file it stands for.
    /// Malformed pointers are reported, not skipped silently; links among
    /// them are never followed (and reported).
    pub fn pointers(&self) -> Result<BTreeMap<SafePath, Pointer>, TrackError> {
        let tree = self.beneath()?.read_tree(POINTER_DIR, MAX_POINTER_LEN)?;
        for link in &tree.links {
            tracing::warn!(path = %link, "ignoring a symbolic link among the blob pointers");
        }
        let mut out = BTreeMap::new();
        for (relative, bytes) in tree.files {
            // A malformed pointer (from a buggy or hostile peer) must not
            // stop every later sweep: it is reported and left out.
            let skip = |problem: blob::BlobError| {
                tracing::warn!(path = %relative, %problem, "ignoring a malformed blob pointer");
            };
            let file = match blob::file_for_pointer(&relative) {
                Ok(file) => file,
                Err(problem) => {
                    skip(problem);
                    continue;
                }
            };
            let Some(bytes) = bytes else {
                skip(blob::BlobError::BadPointer("pointer is too large".into()));
                continue;
            };
            let Ok(text) = String::from_utf8(bytes) else {
                skip(blob::BlobError::BadPointer("pointer is not text".into()));
                continue;
            };
            match Pointer::from_toml(&text) {
                Ok(pointer) => {
                    out.insert(file, pointer);
                }
                Err(problem) => skip(problem),
            }
        }
        Ok(out)
    }

    /// Writes a pointer through a rename, without a flush of its own: a
    /// sweep may write thousands, and after a crash a lost pointer is
    /// rewritten by the next sweep (the local record is saved last).
    pub fn write_pointer(&self, file: &SafePath, pointer: &Pointer) -> Result<(), TrackError> {
        self.beneath()?.write(
            &blob::pointer_path(file),
            pointer.to_toml().as_bytes(),
            WriteOptions::default(),
        )?;
        Ok(())
    }

    pub fn remove_pointer(&self, file: &SafePath) -> Result<(), TrackError> {
        self.beneath()?.remove_file(&blob::pointer_path(file))?;
        Ok(())
    }

    /// Rewrites Tandem's block of `.git/info/exclude` to list exactly
    /// `files`, keeping whatever else the user wrote there. Returns whether
    /// the file changed.
    pub fn write_exclude<'a>(
        &self,
        files: impl IntoIterator<Item = &'a SafePath>,
    ) -> Result<bool, TrackError> {
        let path = self.root.join(".git/info/exclude");
        let current = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let mut kept = String::new();
        let mut inside = false;
        for line in current.lines() {
            match line {
                EXCLUDE_BEGIN => inside = true,
                EXCLUDE_END => inside = false,
                _ if !inside => {
                    kept.push_str(line);
                    kept.push('\n');
                }
                _ => {}
            }
        }
        let mut text = kept;
        text.push_str(EXCLUDE_BEGIN);
        text.push('\n');
        for file in files {
            text.push_str(&exclude_pattern(file));
            text.push('\n');
        }
        // Linked datasets' folders hold copies pinned by version, not files
        // of the project's own.
        for folder in self.link_folders() {
            text.push_str(&exclude_pattern(&folder));
            text.push_str("/\n");
        }
        text.push_str(EXCLUDE_END);
        text.push('\n');
        if text == current {
            return Ok(false);
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        atomic_write(&path, text.as_bytes(), None).map_err(io_at(&path))?;
        Ok(true)
    }
}

impl Tracker {
    /// `input/<name>` for each `.tandem/datasets/<name>.toml`.
    pub fn link_folders(&self) -> Vec<SafePath> {
        let Ok(items) = self.beneath().map_err(|e| e.to_string()).and_then(|b| {
            b.list(tandem_protocol::dataset::LINKS_DIR)
                .map_err(|e| e.to_string())
        }) else {
            return vec![];
        };
        let mut out: Vec<SafePath> = items
            .into_iter()
            .filter(|(_, kind)| *kind == Kind::File)
            .filter_map(|(name, _)| {
                let name = name.strip_suffix(".toml")?.to_owned();
                name.parse::<tandem_protocol::ProjectName>().ok()?;
                SafePath::parse(&format!("input/{name}")).ok()
            })
            .collect();
        out.sort();
        out
    }
}

const EXCLUDE_BEGIN: &str = "# >>> tandem: large files kept in the blob store";
const EXCLUDE_END: &str = "# <<< tandem";

/// An anchored gitignore pattern matching exactly one path.
fn exclude_pattern(file: &SafePath) -> String {
    let mut out = String::from("/");
    for c in file.as_str().chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '!' | '#') || c == ' ' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> SafePath {
        SafePath::parse(text).expect("valid path")
    }

    #[test]
    fn exclude_block_is_replaced_and_user_lines_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = git2::Repository::init(dir.path()).expect("init");
        let exclude = dir.path().join(".git/info/exclude");
        fs::write(&exclude, "mine.log\n").expect("write");
        let tracker = Tracker::new(dir.path());
        tracker
            .write_exclude([&path("input/a [1].bin"), &path("output/b.bin")])
            .expect("exclude");
        tracker
            .write_exclude([&path("input/a [1].bin")])
            .expect("exclude");
        let text = fs::read_to_string(&exclude).expect("read");
        assert!(text.starts_with("mine.log\n"));
        assert!(!text.contains("b.bin"));
        fs::create_dir_all(dir.path().join("input")).expect("mkdir");
        fs::write(dir.path().join("input/a [1].bin"), b"x").expect("write");
        fs::write(dir.path().join("input/a1.bin"), b"x").expect("write");
        assert!(repo.is_path_ignored("input/a [1].bin").expect("ignored"));
        assert!(!repo.is_path_ignored("input/a1.bin").expect("ignored"));
    }

    #[test]
    fn pointers_are_read_back_and_bad_ones_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tracker = Tracker::new(dir.path());
        let pointer = Pointer {
            hash: BlobHash::of(b"x"),
            size: 1,
        };
        tracker
            .write_pointer(&path("input/x.bin"), &pointer)
            .expect("write");
        let pointers = tracker.pointers().expect("pointers");
        assert_eq!(pointers.get(&path("input/x.bin")), Some(&pointer));
        fs::write(
            dir.path().join(".tandem/blobs/input/y.bin.toml"),
            "hash = 1",
        )
        .expect("write");
        let pointers = tracker.pointers().expect("bad pointers are skipped");
        assert_eq!(pointers.len(), 1);
        assert!(!pointers.contains_key(&path("input/y.bin")));
    }
}
