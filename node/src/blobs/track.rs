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
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use tandem_protocol::blob::{
    self, BlobHash, BlobPolicy, MAX_POINTER_LEN, POINTER_DIR, POLICY_FILE, Pointer,
};
use tandem_protocol::path::SafePath;

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

/// The size and modification time of a file, or `None` if it is missing.
pub fn stat(path: &Path) -> Result<Option<(u64, i128)>, TrackError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            Ok(Some((meta.len(), mtime)))
        }
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(path)(e)),
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
}

impl Tracker {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn state_path(&self) -> PathBuf {
        self.root.join(".git/tandem/blobs.json")
    }

    /// The project's thresholds; a malformed policy file falls back to the
    /// defaults (with a warning) rather than stopping sweeps.
    pub fn policy(&self) -> Result<BlobPolicy, TrackError> {
        let path = self.root.join(POLICY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(BlobPolicy::from_toml(&text).unwrap_or_else(|problem| {
                tracing::warn!(path = %path.display(), %problem, "using the default blob thresholds");
                BlobPolicy::default()
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BlobPolicy::default()),
            Err(e) => Err(io_at(&path)(e)),
        }
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
    /// Malformed pointers are reported, not skipped silently.
    pub fn pointers(&self) -> Result<BTreeMap<SafePath, Pointer>, TrackError> {
        let dir = self.root.join(POINTER_DIR);
        let mut out = BTreeMap::new();
        if !dir.exists() {
            return Ok(out);
        }
        for item in walkdir::WalkDir::new(&dir).follow_links(false) {
            let item = item.map_err(|e| {
                let path = e.path().unwrap_or(&dir).to_owned();
                TrackError::Io {
                    path,
                    source: e.into(),
                }
            })?;
            if !item.file_type().is_file() {
                continue;
            }
            let path = item.path();
            let Ok(relative) = path.strip_prefix(&self.root) else {
                continue;
            };
            let relative = relative.to_string_lossy().replace('\\', "/");
            // A malformed pointer (from a buggy or hostile peer) must not
            // stop every later sweep: it is reported and left out.
            let skip = |problem: blob::BlobError| {
                tracing::warn!(path = %path.display(), %problem, "ignoring a malformed blob pointer");
            };
            let file = match blob::file_for_pointer(&relative) {
                Ok(file) => file,
                Err(problem) => {
                    skip(problem);
                    continue;
                }
            };
            let meta = item.metadata().map_err(|e| io_at(path)(e.into()))?;
            if meta.len() > MAX_POINTER_LEN {
                skip(blob::BlobError::BadPointer("pointer is too large".into()));
                continue;
            }
            let text = fs::read_to_string(path).map_err(io_at(path))?;
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
        let path = self.root.join(blob::pointer_path(file));
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        crate::fsutil::replace_file(&path, pointer.to_toml().as_bytes()).map_err(io_at(&path))
    }

    pub fn remove_pointer(&self, file: &SafePath) -> Result<(), TrackError> {
        let path = self.root.join(blob::pointer_path(file));
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_at(&path)(e)),
        }
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
        let dir = self.root.join(tandem_protocol::dataset::LINKS_DIR);
        let Ok(items) = fs::read_dir(dir) else {
            return vec![];
        };
        let mut out: Vec<SafePath> = items
            .flatten()
            .filter_map(|item| {
                let name = item.file_name().to_str()?.strip_suffix(".toml")?.to_owned();
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
