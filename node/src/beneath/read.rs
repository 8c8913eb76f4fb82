//! Reading beneath the root: whole files up to a limit, a folder's
//! entries, and every file under a folder, links listed but never
//! followed.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, FileType, Mode};
use rustix::io::Errno;

use super::entry::{Entry, Kind};
use super::error::{BeneathError, io_err};
use super::resolve::{DIR_FLAGS, READ_FLAGS, parts};
use super::root::Beneath;

/// What [`Beneath::read_tree`] found under a folder.
#[derive(Debug, Default)]
pub struct Tree {
    /// Regular files by relative path, with their bytes (`None` when larger
    /// than the limit asked for).
    pub files: Vec<(String, Option<Vec<u8>>)>,
    /// Symbolic links met on the way (never followed), by relative path.
    pub links: Vec<String>,
}

/// Deepest folder nesting walked by [`Beneath::read_tree`].
const MAX_DEPTH: usize = 64;

impl Beneath {
    /// A whole file of at most `limit` bytes; `None` when it is missing.
    pub fn read(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, BeneathError> {
        let Some((file, entry)) = self.open_file(rel)? else {
            return Ok(None);
        };
        read_limited(file, entry, rel, limit).map(Some)
    }

    /// The entries of a folder (none when it is missing), sorted by name.
    /// Names that are not UTF-8 are left out.
    pub fn list(&self, rel: &str) -> Result<Vec<(String, Kind)>, BeneathError> {
        let parts = parts(rel)?;
        let Some(dir) = self.folder(rel, &parts)? else {
            return Ok(vec![]);
        };
        let mut out = list_fd(&dir, rel)?;
        out.sort();
        Ok(out)
    }

    /// Every regular file under a folder, read whole when at most `limit`
    /// bytes; links are listed, never followed. Paths are relative to the
    /// root, sorted.
    pub fn read_tree(&self, rel: &str, limit: u64) -> Result<Tree, BeneathError> {
        let parts = parts(rel)?;
        let mut tree = Tree::default();
        let Some(dir) = self.folder(rel, &parts)? else {
            return Ok(tree);
        };
        let prefix = parts.join("/");
        read_tree_fd(&dir, &prefix, limit, 0, &mut tree)?;
        tree.files.sort_by(|a, b| a.0.cmp(&b.0));
        tree.links.sort();
        Ok(tree)
    }
}

fn read_limited(
    mut file: File,
    entry: Entry,
    rel: &str,
    limit: u64,
) -> Result<Vec<u8>, BeneathError> {
    if entry.size > limit {
        return Err(BeneathError::TooLarge {
            path: rel.into(),
            size: entry.size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(entry.size as usize);
    (&mut file)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| BeneathError::Io {
            path: rel.into(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(BeneathError::TooLarge {
            path: rel.into(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

fn list_fd(dir: &OwnedFd, rel: &str) -> Result<Vec<(String, Kind)>, BeneathError> {
    let entries = rustix::fs::Dir::read_from(dir).map_err(|e| io_err(rel, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(rel, e))?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::Unknown => match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => Entry::of(&stat).kind,
                Err(_) => continue,
            },
            _ => Kind::Other,
        };
        out.push((name.to_owned(), kind));
    }
    Ok(out)
}

fn read_tree_fd(
    dir: &OwnedFd,
    prefix: &str,
    limit: u64,
    depth: usize,
    tree: &mut Tree,
) -> Result<(), BeneathError> {
    if depth > MAX_DEPTH {
        return Err(BeneathError::Io {
            path: prefix.into(),
            source: io::Error::other(format!("folders nested more than {MAX_DEPTH} deep")),
        });
    }
    for (name, kind) in list_fd(dir, prefix)? {
        let rel = join(prefix, &name);
        match kind {
            Kind::Dir => match rustix::fs::openat(dir, name.as_str(), DIR_FLAGS, Mode::empty()) {
                Ok(child) => read_tree_fd(&child, &rel, limit, depth + 1, tree)?,
                // Replaced by a link since it was listed: not followed.
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => tree.links.push(rel),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(io_err(&rel, e)),
            },
            Kind::File => {
                let fd = match rustix::fs::openat(dir, name.as_str(), READ_FLAGS, Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::LOOP) => {
                        tree.links.push(rel);
                        continue;
                    }
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(io_err(&rel, e)),
                };
                let entry = Entry::of(&rustix::fs::fstat(&fd).map_err(|e| io_err(&rel, e))?);
                if !entry.is_file() {
                    continue;
                }
                match read_limited(File::from(fd), entry, &rel, limit) {
                    Ok(bytes) => tree.files.push((rel, Some(bytes))),
                    Err(BeneathError::TooLarge { .. }) => tree.files.push((rel, None)),
                    Err(e) => return Err(e),
                }
            }
            Kind::Symlink => tree.links.push(rel),
            Kind::Other => {}
        }
    }
    Ok(())
}
