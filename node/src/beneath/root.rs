//! The folder handle: a project folder opened once, the descriptors of
//! folders beneath it (cached for the handle's life), and resolving a path
//! to an existing folder, a new one, or a file opened for reading.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::entry::{Entry, Kind};
use super::error::{BeneathError, io_err};
use super::resolve::{DIR_FLAGS, READ_FLAGS, Strategy, open_parts, parts};

/// Folder descriptors kept at once; past this the cache starts afresh, so
/// a tree of many folders cannot run the process out of descriptors.
const CACHED_DIRS: usize = 256;

/// A project's folder, through which every path beneath it is reached.
pub struct Beneath {
    root: OwnedFd,
    path: PathBuf,
    dirs: Mutex<HashMap<String, Arc<OwnedFd>>>,
    strategy: Option<Strategy>,
}

impl std::fmt::Debug for Beneath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Beneath").field("path", &self.path).finish()
    }
}

impl Beneath {
    /// The project folder itself is the node's own (`$TANDEM_HOME/projects/
    /// NAME`), so its own path is trusted; nothing beneath it is.
    pub fn open(root: &Path) -> Result<Self, BeneathError> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(&root.display().to_string(), e))?;
        Ok(Self {
            root: fd,
            path: root.to_owned(),
            dirs: Mutex::new(HashMap::new()),
            strategy: None,
        })
    }

    /// The same folder, always resolved by the component walk (tests of
    /// the fallback).
    #[cfg(test)]
    pub(super) fn open_walking(root: &Path) -> Result<Self, BeneathError> {
        let mut beneath = Self::open(root)?;
        beneath.strategy = Some(Strategy::Walk);
        Ok(beneath)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns a failed open of `parts` into an error that names the link or
    /// file in the way (found by looking again; the error path only).
    fn diagnose(&self, rel: &str, parts: &[&str], errno: Errno) -> BeneathError {
        let mut current: Option<OwnedFd> = None;
        for (i, part) in parts.iter().enumerate() {
            let at = current.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
            let prefix = parts[..=i].join("/");
            let Ok(stat) = rustix::fs::statat(at, *part, AtFlags::SYMLINK_NOFOLLOW) else {
                break;
            };
            match Entry::of(&stat).kind {
                Kind::Symlink => {
                    return BeneathError::Symlink {
                        path: rel.into(),
                        link: prefix,
                    };
                }
                Kind::Dir => {}
                _ if i + 1 < parts.len() => {
                    return BeneathError::NotAFolder {
                        path: rel.into(),
                        at: prefix,
                    };
                }
                _ => break,
            }
            match rustix::fs::openat(
                at,
                *part,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => current = Some(fd),
                Err(_) => break,
            }
        }
        match errno {
            // Swapped back before we looked: still a link that was refused.
            Errno::LOOP => BeneathError::Symlink {
                path: rel.into(),
                link: rel.into(),
            },
            Errno::XDEV => BeneathError::Leaves { path: rel.into() },
            Errno::NOTDIR => BeneathError::NotAFolder {
                path: rel.into(),
                at: rel.into(),
            },
            other => io_err(rel, other),
        }
    }

    fn open_raw(&self, parts: &[&str], flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
        open_parts(self.strategy, self.root.as_fd(), parts, flags, mode)
    }

    /// An existing folder, from the cache when it was opened before;
    /// `None` when it (or a folder above it) does not exist.
    pub(super) fn folder(
        &self,
        rel: &str,
        parts: &[&str],
    ) -> Result<Option<Arc<OwnedFd>>, BeneathError> {
        let key = parts.join("/");
        if let Some(fd) = self.cached(&key) {
            return Ok(Some(fd));
        }
        match self.open_raw(parts, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Some(self.remember(key, fd))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.diagnose(rel, parts, e)),
        }
    }

    fn cached(&self, key: &str) -> Option<Arc<OwnedFd>> {
        let dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        dirs.get(key).cloned()
    }

    fn remember(&self, key: String, fd: OwnedFd) -> Arc<OwnedFd> {
        let fd = Arc::new(fd);
        let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        if dirs.len() >= CACHED_DIRS {
            dirs.clear();
        }
        dirs.insert(key, fd.clone());
        fd
    }

    /// An existing folder beneath the root (`None` if missing).
    pub fn open_dir(&self, rel: &str) -> Result<Option<Arc<OwnedFd>>, BeneathError> {
        let parts = parts(rel)?;
        self.folder(rel, &parts)
    }

    /// `mkdir -p` beneath the root: every folder on the way is created or
    /// opened without following links.
    pub fn create_dir_all(&self, rel: &str) -> Result<Arc<OwnedFd>, BeneathError> {
        let parts = parts(rel)?;
        self.create_parts(rel, &parts)
    }

    pub(super) fn create_parts(
        &self,
        rel: &str,
        parts: &[&str],
    ) -> Result<Arc<OwnedFd>, BeneathError> {
        if let Some(fd) = self.folder(rel, parts)? {
            return Ok(fd);
        }
        let mut current: Option<Arc<OwnedFd>> = None;
        for (i, part) in parts.iter().enumerate() {
            let key = parts[..=i].join("/");
            if let Some(fd) = self.cached(&key) {
                current = Some(fd);
                continue;
            }
            let at = current.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
            match rustix::fs::mkdirat(at, *part, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(io_err(rel, e)),
            }
            let fd = rustix::fs::openat(at, *part, DIR_FLAGS, Mode::empty())
                .map_err(|e| self.diagnose(rel, parts, e))?;
            current = Some(self.remember(key, fd));
        }
        current.ok_or_else(|| io_err(rel, Errno::INVAL))
    }

    /// The folder and final name of a file path.
    pub(super) fn split<'a>(&self, rel: &'a str) -> Result<(Vec<&'a str>, &'a str), BeneathError> {
        let mut parts = parts(rel)?;
        let name = parts
            .pop()
            .ok_or_else(|| BeneathError::NotAFile { path: rel.into() })?;
        Ok((parts, name))
    }

    /// What `rel` is, without following it; `None` when it does not exist
    /// (or a folder above it is a file).
    pub fn lstat(&self, rel: &str) -> Result<Option<Entry>, BeneathError> {
        let (folders, name) = self.split(rel)?;
        let dir = match self.folder(rel, &folders) {
            Ok(Some(dir)) => dir,
            Ok(None) | Err(BeneathError::NotAFolder { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(Entry::of(&stat))),
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(None),
            Err(e) => Err(io_err(rel, e)),
        }
    }

    /// Opens a regular file for reading; `None` when it does not exist.
    /// The returned handle is what must be read: the path is not opened
    /// again, so nothing swapped in afterwards is read instead.
    pub fn open_file(&self, rel: &str) -> Result<Option<(File, Entry)>, BeneathError> {
        let (folders, name) = self.split(rel)?;
        let dir = match self.folder(rel, &folders) {
            Ok(Some(dir)) => dir,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e),
        };
        let fd = match rustix::fs::openat(&*dir, name, READ_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => {
                return Err(BeneathError::Symlink {
                    path: rel.into(),
                    link: rel.into(),
                });
            }
            Err(e) => return Err(io_err(rel, e)),
        };
        let entry = Entry::of(&rustix::fs::fstat(&fd).map_err(|e| io_err(rel, e))?);
        if !entry.is_file() {
            return Err(BeneathError::NotAFile { path: rel.into() });
        }
        Ok(Some((File::from(fd), entry)))
    }
}
