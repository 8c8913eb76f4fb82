//! A version's content read straight from Git objects, never from the
//! working tree: its user files with their sizes, its large files'
//! pointers, README, environment spec and dataset links. Everything read
//! here was committed by some member, so each file is parsed into its
//! validated type or reported as unreadable, and sizes are checked before
//! anything is read whole.

use std::path::Path;

use git2::{Commit, ObjectType, Oid, Repository, Tree, TreeWalkMode, TreeWalkResult};
use tandem_protocol::api::{ProjectVersion, Section};
use tandem_protocol::blob::{MAX_POINTER_LEN, POINTER_DIR, Pointer, file_for_pointer};
use tandem_protocol::dataset::{LINKS_DIR, Link};
use tandem_protocol::env::{
    BASE_FILE, BaseRef, EnvSpec, PACKAGES_DIR, Package, SNIPPETS_DIR, Snippet,
};
use tandem_protocol::path::SafePath;

use super::error::VersionError;
use super::pick::short;

/// Largest listing file (package, snippet, link) read from a version.
const MAX_LISTING_LEN: usize = 1024 * 1024;
/// Where the README may live, first match wins (as in the working tree).
const README_PLACES: [&str; 4] = ["README.md", "code/README.md", "readme.md", "code/readme.md"];
const README_LIMIT: usize = 1024 * 1024;

/// One version of a project, opened on its commit.
pub struct Snapshot<'r> {
    repo: &'r Repository,
    commit: Commit<'r>,
    tree: Tree<'r>,
}

/// A version's files: small ones (in Git) with their sizes, and large
/// ones by pointer.
#[derive(Debug, Default)]
pub struct Listed {
    pub small: Vec<(String, u64)>,
    pub large: Vec<(SafePath, Pointer)>,
    /// Paths that could not be read, each with why.
    pub unreadable: Vec<String>,
}

/// A file of a version.
#[derive(Debug)]
pub enum VersionFile {
    /// Bytes kept in Git.
    Small(Vec<u8>),
    /// A large file: its bytes are in the blob store (or on peers).
    Large(Pointer),
}

impl<'r> Snapshot<'r> {
    pub fn open(repo: &'r Repository, oid: Oid) -> Result<Self, VersionError> {
        let commit = repo
            .find_commit(oid)
            .map_err(VersionError::git("reading the version's commit"))?;
        let tree = commit
            .tree()
            .map_err(VersionError::git("reading the version's files"))?;
        Ok(Self { repo, commit, tree })
    }

    pub fn repo(&self) -> &'r Repository {
        self.repo
    }

    pub fn oid(&self) -> Oid {
        self.commit.id()
    }

    pub fn tree(&self) -> &Tree<'r> {
        &self.tree
    }

    pub fn time_ms(&self) -> i64 {
        self.commit.time().seconds().saturating_mul(1000)
    }

    pub fn summary(&self, current: Option<Oid>) -> ProjectVersion {
        ProjectVersion {
            commit: self.oid().to_string(),
            short: short(self.oid()),
            time_ms: self.time_ms(),
            message: self
                .commit
                .summary()
                .ok()
                .flatten()
                .map(plain_summary)
                .unwrap_or_default(),
            current: current == Some(self.oid()),
        }
    }

    /// Every user file and large file of the version. Only the sections
    /// and the pointer folder are walked; links and submodules (which the
    /// sync never lets in) are skipped.
    pub fn list(&self) -> Listed {
        let odb = self.repo.odb().ok();
        let mut listed = Listed::default();
        let pointer_root = format!("{POINTER_DIR}/");
        let _ = self.tree.walk(TreeWalkMode::PreOrder, |root, entry| {
            let Ok(name) = entry.name() else {
                return TreeWalkResult::Skip;
            };
            let path = format!("{root}{name}");
            if entry.kind() == Some(ObjectType::Tree) {
                let wanted = Section::ALL
                    .iter()
                    .any(|s| path == s.as_str() || root.starts_with(&format!("{}/", s.as_str())))
                    || path == ".tandem"
                    || path == POINTER_DIR
                    || root.starts_with(&pointer_root);
                return if wanted {
                    TreeWalkResult::Ok
                } else {
                    TreeWalkResult::Skip
                };
            }
            if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == 0o120000 {
                return TreeWalkResult::Ok;
            }
            if root.starts_with(&pointer_root) {
                match self.pointer(&path, entry.id()) {
                    Ok(found) => listed.large.push(found),
                    Err(why) => listed.unreadable.push(format!("{path}: {why}")),
                }
            } else if !root.is_empty() && root != ".tandem/" && name != ".gitkeep" {
                let size = odb
                    .as_ref()
                    .and_then(|odb| odb.read_header(entry.id()).ok())
                    .map_or(0, |(size, _)| size as u64);
                listed.small.push((path, size));
            }
            TreeWalkResult::Ok
        });
        listed
    }

    fn pointer(&self, path: &str, id: Oid) -> Result<(SafePath, Pointer), String> {
        let file = file_for_pointer(path).map_err(|e| e.to_string())?;
        let bytes = self
            .blob(id, MAX_POINTER_LEN as usize)
            .ok_or("not a readable pointer")?;
        let text = std::str::from_utf8(&bytes).map_err(|_| "not text")?;
        let pointer = Pointer::from_toml(text).map_err(|e| e.to_string())?;
        Ok((file, pointer))
    }

    /// A blob's bytes if it is one and at most `limit` long.
    fn blob(&self, id: Oid, limit: usize) -> Option<Vec<u8>> {
        let (size, kind) = self.repo.odb().ok()?.read_header(id).ok()?;
        if kind != ObjectType::Blob || size > limit {
            return None;
        }
        Some(self.repo.find_blob(id).ok()?.content().to_vec())
    }

    /// The blob at `path`, if the version has a file there no longer
    /// than `limit`; `Err` with its size if it is longer.
    pub fn read(&self, path: &str, limit: usize) -> Result<Option<Vec<u8>>, u64> {
        let Ok(entry) = self.tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == 0o120000 {
            return Ok(None);
        }
        let size = self
            .repo
            .odb()
            .ok()
            .and_then(|odb| odb.read_header(entry.id()).ok())
            .map_or(0, |(size, _)| size);
        if size > limit {
            return Err(size as u64);
        }
        Ok(self.blob(entry.id(), limit))
    }

    /// A user file of the version: its bytes if Git holds them, or its
    /// pointer if it is a large file.
    pub fn file(&self, path: &SafePath, limit: usize) -> Result<Option<VersionFile>, u64> {
        if let Some(bytes) = self.read(path.as_str(), limit)? {
            return Ok(Some(VersionFile::Small(bytes)));
        }
        let pointer_path = tandem_protocol::blob::pointer_path(path);
        let pointer = self
            .read(&pointer_path, MAX_POINTER_LEN as usize)
            .ok()
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| Pointer::from_toml(&text).ok());
        Ok(pointer.map(VersionFile::Large))
    }

    pub fn readme(&self) -> Option<String> {
        README_PLACES.iter().find_map(|place| {
            self.read(place, README_LIMIT)
                .ok()
                .flatten()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        })
    }

    /// The `.toml` files of a listing folder, by stem.
    fn listing(&self, folder: &str, unreadable: &mut Vec<String>) -> Vec<(String, String)> {
        let Ok(entry) = self.tree.get_path(Path::new(folder)) else {
            return vec![];
        };
        let Ok(tree) = self.repo.find_tree(entry.id()) else {
            return vec![];
        };
        let mut out = Vec::new();
        for item in tree.iter() {
            let Some(stem) = item.name().ok().and_then(|n| n.strip_suffix(".toml")) else {
                continue;
            };
            let path = format!("{folder}/{stem}.toml");
            match self
                .blob(item.id(), MAX_LISTING_LEN)
                .and_then(|b| String::from_utf8(b).ok())
            {
                Some(text) => out.push((stem.to_owned(), text)),
                None => unreadable.push(format!("{path}: not a text file under 1 MiB")),
            }
        }
        out
    }

    /// The environment the version names. A project from before
    /// environments had no base file: the default base, as for the
    /// working tree.
    pub fn env(&self, unreadable: &mut Vec<String>) -> Option<EnvSpec> {
        let base = match self.read(BASE_FILE, MAX_LISTING_LEN) {
            Ok(Some(bytes)) => match BaseRef::parse(&String::from_utf8_lossy(&bytes)) {
                Ok(base) => base,
                Err(e) => {
                    unreadable.push(format!("{BASE_FILE}: {e}"));
                    return None;
                }
            },
            _ => BaseRef {
                id: crate::env::bases::DEFAULT_BASE.parse().ok()?,
                revision: 1,
            },
        };
        let mut packages = Vec::new();
        for (stem, text) in self.listing(PACKAGES_DIR, unreadable) {
            let path = format!("{PACKAGES_DIR}/{stem}.toml");
            match Package::parse(&text, &path) {
                Ok(p) => packages.push(p),
                Err(e) => unreadable.push(format!("{path}: {e}")),
            }
        }
        let mut snippets = Vec::new();
        for (stem, text) in self.listing(SNIPPETS_DIR, unreadable) {
            let path = format!("{SNIPPETS_DIR}/{stem}.toml");
            match Snippet::parse(&text, &path) {
                Ok(s) => snippets.push(s),
                Err(e) => unreadable.push(format!("{path}: {e}")),
            }
        }
        Some(EnvSpec::new(base, packages, snippets))
    }

    pub fn links(&self, unreadable: &mut Vec<String>) -> Vec<Link> {
        let mut out = Vec::new();
        for (stem, text) in self.listing(LINKS_DIR, unreadable) {
            match Link::from_toml(&text) {
                Ok(link) => out.push(link),
                Err(e) => unreadable.push(format!("{LINKS_DIR}/{stem}.toml: {e}")),
            }
        }
        out
    }
}

/// A commit's first line without Tandem's `[tandem:kind]` tag.
fn plain_summary(line: &str) -> String {
    match line
        .strip_prefix("[tandem:")
        .and_then(|rest| rest.split_once("] "))
    {
        Some((_, rest)) => rest.to_owned(),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` (path, mode, bytes) as one commit of a fresh
    /// repository, building the nested trees by hand so the version can
    /// hold what no sync would let in.
    fn commit_of(repo: &Repository, files: &[(&str, i32, &[u8])]) -> Oid {
        type File<'a> = (Vec<&'a str>, i32, &'a [u8]);
        fn build(repo: &Repository, files: &[File<'_>]) -> Oid {
            let mut builder = repo.treebuilder(None).expect("treebuilder");
            let mut folders: std::collections::BTreeMap<&str, Vec<File<'_>>> = Default::default();
            for (parts, mode, bytes) in files {
                if let [name] = parts.as_slice() {
                    let blob = repo.blob(bytes).expect("blob");
                    builder.insert(name, blob, *mode).expect("insert");
                } else {
                    folders
                        .entry(parts[0])
                        .or_default()
                        .push((parts[1..].to_vec(), *mode, bytes));
                }
            }
            for (name, inner) in folders {
                let tree = build(repo, &inner);
                builder.insert(name, tree, 0o040000).expect("insert tree");
            }
            builder.write().expect("write tree")
        }
        let split: Vec<_> = files
            .iter()
            .map(|(path, mode, bytes)| (path.split('/').collect(), *mode, *bytes))
            .collect();
        let tree = repo.find_tree(build(repo, &split)).expect("tree");
        let who = git2::Signature::now("Mal", "mal@example.invalid").expect("signature");
        repo.commit(None, &who, &who, "[tandem:sweep] crafted", &tree, &[])
            .expect("commit")
    }

    #[test]
    fn a_crafted_version_lists_what_it_can_and_names_what_it_cannot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init(dir.path()).expect("init");
        let huge_pointer = vec![b'#'; MAX_POINTER_LEN as usize + 1];
        let oid = commit_of(
            &repo,
            &[
                ("code/analysis.py", 0o100644, b"print(1)\n"),
                ("code/passwd", 0o120000, b"/etc/passwd"),
                (
                    ".tandem/blobs/input/garbage.bin.toml",
                    0o100644,
                    b"not = [a pointer",
                ),
                (".tandem/blobs/input/huge.bin.toml", 0o100644, &huge_pointer),
                (".tandem/blobs/.tandem/access.toml", 0o100644, b"x = 1"),
                (
                    ".tandem/blobs/input/binary.bin.toml",
                    0o100644,
                    &[0xff, 0xfe, 0],
                ),
                (
                    ".tandem/env/packages/pip_evil.toml",
                    0o100644,
                    b"manager = 'pip'\nname = '; rm -rf /'\n",
                ),
                (".tandem/env/packages/pip_bytes.toml", 0o100644, &[0xff; 16]),
                (".tandem/datasets/gps.toml", 0o100644, b"dataset = 42"),
                ("README.md", 0o120000, b"/etc/shadow"),
            ],
        );
        let snapshot = Snapshot::open(&repo, oid).expect("open");
        let listed = snapshot.list();
        assert_eq!(
            listed.small,
            vec![("code/analysis.py".to_owned(), 9)],
            "the link is not listed as a file"
        );
        assert!(listed.large.is_empty(), "{:?}", listed.large);
        for path in [
            "input/garbage.bin",
            "input/huge.bin",
            ".tandem/access",
            "input/binary.bin",
        ] {
            assert!(
                listed
                    .unreadable
                    .iter()
                    .any(|u| u.starts_with(&format!(".tandem/blobs/{path}.toml: "))),
                "{path} named as unreadable: {:?}",
                listed.unreadable
            );
        }
        let mut unreadable = Vec::new();
        let spec = snapshot.env(&mut unreadable).expect("the default base");
        assert!(spec.packages.is_empty());
        assert_eq!(unreadable.len(), 2, "{unreadable:?}");
        assert!(snapshot.links(&mut unreadable).is_empty());
        assert_eq!(unreadable.len(), 3, "{unreadable:?}");
        assert_eq!(snapshot.readme(), None, "a linked README is not followed");
        let link = SafePath::parse("code/passwd").expect("path");
        assert!(
            matches!(snapshot.file(&link, 1 << 20), Ok(None)),
            "a link's target is never served"
        );
    }
}
