//! Paths beneath a project's folder, opened so that no symbolic link is
//! ever followed and nothing outside the folder is ever reached.
//!
//! Every path the node takes from a peer, an archive, a pointer, a dataset
//! listing, an upload or the container is relative to a project's root and
//! hostile until proven otherwise: a link `input/evil -> ../../..` in the
//! working tree would otherwise turn `input/evil/identity.key` into the
//! node's own key. Checking each component with `lstat` and then opening
//! the joined path is not enough (the link can be swapped in between), so
//! everything here works on directory file descriptors:
//!
//! - a path is resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
//!   | RESOLVE_NO_MAGICLINKS)`, which the kernel refuses as a whole if any
//!   component is a link or the path climbs out; on kernels without
//!   `openat2` (ENOSYS) each component is opened in turn with
//!   `O_NOFOLLOW | O_DIRECTORY`, which gives the same guarantee;
//! - files are created in the folder's descriptor (a temporary name, then
//!   `renameat`), so the bytes land in the folder that was checked, whatever
//!   happens to its path meanwhile;
//! - a file is read from the descriptor that was opened beneath the root,
//!   never from a path opened again later.
//!
//! Folder descriptors are cached for the life of one [`Beneath`] (one sweep,
//! one materialisation), so a batch of files costs about one system call
//! per file for each operation, as the plain path calls did.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// Why a path beneath a project was refused or could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    /// Some component of the path (`link`) is a symbolic link.
    #[error("{}", symlink_message(.path, .link))]
    Symlink { path: String, link: String },
    /// The path is absolute or climbs out with `..`.
    #[error("{path} leaves the project; refusing it")]
    Leaves { path: String },
    /// A component that must be a folder (`at`) is a file.
    #[error("{path}: {at} is not a folder")]
    NotAFolder { path: String, at: String },
    /// The path names a folder, a device or a pipe where a file belongs.
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is {size} bytes, more than the {limit} allowed here")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

fn symlink_message(path: &str, link: &str) -> String {
    if path == link {
        format!("{path} is a symbolic link; refusing to follow it")
    } else {
        format!("{path}: {link} is a symbolic link; refusing to follow it")
    }
}

impl BeneathError {
    /// Whether the path was refused for what it is (a link, an escape),
    /// rather than failing for an ordinary reason: callers skip and report
    /// such a path instead of stopping the whole operation on it.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Symlink { .. } | Self::Leaves { .. })
    }

    /// The relative path the error is about.
    pub fn path(&self) -> &str {
        match self {
            Self::Symlink { path, .. }
            | Self::Leaves { path }
            | Self::NotAFolder { path, .. }
            | Self::NotAFile { path }
            | Self::TooLarge { path, .. }
            | Self::Io { path, .. } => path,
        }
    }
}

/// What a path beneath the root is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A device, pipe or socket.
    Other,
}

/// The type, size and modification time of one entry (as `lstat` sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub size: u64,
    /// Nanoseconds since the epoch (0 before it), as `Metadata::modified`
    /// gives them, so records made before this module still match.
    pub mtime_ns: i128,
}

impl Entry {
    fn of(stat: &Stat) -> Self {
        let kind = match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        let seconds = stat.st_mtime as i128;
        let mtime_ns = if seconds < 0 {
            0
        } else {
            seconds * 1_000_000_000 + stat.st_mtime_nsec as i128
        };
        Self {
            kind,
            size: u64::try_from(stat.st_size).unwrap_or(0),
            mtime_ns,
        }
    }

    /// The same from `std`'s metadata (of a file the node staged itself).
    pub fn from_metadata(meta: &std::fs::Metadata) -> Self {
        let kind = if meta.file_type().is_symlink() {
            Kind::Symlink
        } else if meta.is_file() {
            Kind::File
        } else if meta.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        };
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        Self {
            kind,
            size: meta.len(),
            mtime_ns,
        }
    }

    pub fn is_file(&self) -> bool {
        self.kind == Kind::File
    }
}

/// How a new file is written by [`Beneath::write_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Permission bits set on the file (else the usual 0666 less umask).
    pub mode: Option<u32>,
    /// Flush the file and its folder, for state that must survive a crash.
    pub sync: bool,
}

/// What [`Beneath::read_tree`] found under a folder.
#[derive(Debug, Default)]
pub struct Tree {
    /// Regular files by relative path, with their bytes (`None` when larger
    /// than the limit asked for).
    pub files: Vec<(String, Option<Vec<u8>>)>,
    /// Symbolic links met on the way (never followed), by relative path.
    pub links: Vec<String>,
}

/// Folder descriptors kept at once; past this the cache starts afresh, so
/// a tree of many folders cannot run the process out of descriptors.
const CACHED_DIRS: usize = 256;
/// Deepest folder nesting walked by [`Beneath::read_tree`].
const MAX_DEPTH: usize = 64;

const OPENAT2_UNKNOWN: u8 = 0;
const OPENAT2_YES: u8 = 1;
const OPENAT2_NO: u8 = 2;
/// Whether this kernel has `openat2` (learnt on the first call).
static OPENAT2: AtomicU8 = AtomicU8::new(OPENAT2_UNKNOWN);

/// How a path is resolved; both refuse links and escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Openat2,
    Walk,
}

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

/// A path's components, or why it is refused on its face.
fn parts(rel: &str) -> Result<Vec<&str>, BeneathError> {
    if rel.starts_with('/') {
        return Err(BeneathError::Leaves { path: rel.into() });
    }
    let mut out = Vec::new();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(BeneathError::Leaves { path: rel.into() }),
            _ if part.contains('\0') => {
                return Err(BeneathError::Io {
                    path: rel.into(),
                    source: io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a path"),
                });
            }
            _ => out.push(part),
        }
    }
    Ok(out)
}

fn io_err(path: &str, errno: Errno) -> BeneathError {
    BeneathError::Io {
        path: path.into(),
        source: io::Error::from(errno),
    }
}

/// A fresh name for a temporary file beside its target; dotted, so it is
/// not mistaken for the user's file while it exists.
fn temp_name() -> String {
    format!(
        ".tandem-tmp-{}",
        hex::encode(crate::home::random_bytes::<8>())
    )
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

/// Opens `parts` beneath `root` with `flags`, refusing links anywhere.
fn open_parts(
    strategy: Option<Strategy>,
    root: BorrowedFd<'_>,
    parts: &[&str],
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let strategy = strategy.unwrap_or(match OPENAT2.load(Ordering::Relaxed) {
        OPENAT2_NO => Strategy::Walk,
        _ => Strategy::Openat2,
    });
    if strategy == Strategy::Openat2 {
        let joined = if parts.is_empty() {
            ".".to_owned()
        } else {
            parts.join("/")
        };
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(
                root,
                joined.as_str(),
                flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                mode,
                resolve,
            ) {
                Ok(fd) => {
                    OPENAT2.store(OPENAT2_YES, Ordering::Relaxed);
                    return Ok(fd);
                }
                // A rename elsewhere raced the lookup: the kernel asks for
                // a retry rather than guess.
                Err(Errno::AGAIN) if tries < 8 => tries += 1,
                Err(Errno::NOSYS) => {
                    OPENAT2.store(OPENAT2_NO, Ordering::Relaxed);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    walk(root, parts, flags, mode)
}

/// Component by component: every folder on the way is opened with
/// `O_NOFOLLOW | O_DIRECTORY`, so a link anywhere fails the open.
fn walk(root: BorrowedFd<'_>, parts: &[&str], flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    let Some((last, folders)) = parts.split_last() else {
        return rustix::fs::openat(root, ".", flags | OFlags::CLOEXEC, mode);
    };
    let mut current: Option<OwnedFd> = None;
    for part in folders {
        let at = current.as_ref().map_or(root, |fd| fd.as_fd());
        let next = rustix::fs::openat(
            at,
            *part,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        current = Some(next);
    }
    let at = current.as_ref().map_or(root, |fd| fd.as_fd());
    rustix::fs::openat(at, *last, flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode)
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
    fn open_walking(root: &Path) -> Result<Self, BeneathError> {
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
    fn folder(&self, rel: &str, parts: &[&str]) -> Result<Option<Arc<OwnedFd>>, BeneathError> {
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

    fn create_parts(&self, rel: &str, parts: &[&str]) -> Result<Arc<OwnedFd>, BeneathError> {
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
    fn split<'a>(&self, rel: &'a str) -> Result<(Vec<&'a str>, &'a str), BeneathError> {
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

    /// A whole file of at most `limit` bytes; `None` when it is missing.
    pub fn read(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, BeneathError> {
        let Some((file, entry)) = self.open_file(rel)? else {
            return Ok(None);
        };
        read_limited(file, entry, rel, limit).map(Some)
    }

    /// Creates or replaces `rel` atomically: a temporary file in the same
    /// folder (opened through the folder's descriptor), filled by `fill`,
    /// then renamed over the target. Readers see the old file or the new.
    pub fn write_with(
        &self,
        rel: &str,
        options: WriteOptions,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<(), BeneathError> {
        let (folders, name) = self.split(rel)?;
        let dir = self.create_parts(rel, &folders)?;
        let temp = temp_name();
        let fd = rustix::fs::openat(
            &*dir,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(options.mode.unwrap_or(0o666)),
        )
        .map_err(|e| io_err(rel, e))?;
        let mut file = File::from(fd);
        let filled = (|| {
            if let Some(mode) = options.mode {
                rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
            }
            fill(&mut file)?;
            if options.sync {
                file.sync_all()?;
            }
            Ok::<(), io::Error>(())
        })();
        drop(file);
        let renamed = filled.and_then(|()| {
            rustix::fs::renameat(&*dir, temp.as_str(), &*dir, name).map_err(io::Error::from)
        });
        if let Err(source) = renamed {
            let _ = rustix::fs::unlinkat(&*dir, temp.as_str(), AtFlags::empty());
            return Err(BeneathError::Io {
                path: rel.into(),
                source,
            });
        }
        if options.sync {
            let _ = rustix::fs::fsync(&*dir);
        }
        Ok(())
    }

    /// Creates a new file at `rel` (folders on the way too) and opens it
    /// for writing; an existing file or link there is an error, never
    /// opened or followed. For filling a staging folder of the node's own.
    pub fn create_new(&self, rel: &str) -> Result<File, BeneathError> {
        let (folders, name) = self.split(rel)?;
        let dir = self.create_parts(rel, &folders)?;
        let fd = rustix::fs::openat(
            &*dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map_err(|e| io_err(rel, e))?;
        Ok(File::from(fd))
    }

    /// [`Beneath::write_with`] for bytes in memory.
    pub fn write(
        &self,
        rel: &str,
        bytes: &[u8],
        options: WriteOptions,
    ) -> Result<(), BeneathError> {
        self.write_with(rel, options, |file| file.write_all(bytes))
    }

    /// Moves a finished file from outside the project (a staging file of
    /// the node's own) to `rel`, creating folders on the way; across
    /// filesystems it is copied beside the target and renamed.
    pub fn rename_into(&self, from: &Path, rel: &str) -> Result<(), BeneathError> {
        let (folders, name) = self.split(rel)?;
        let dir = self.create_parts(rel, &folders)?;
        match rustix::fs::renameat(rustix::fs::CWD, from, &*dir, name) {
            Ok(()) => Ok(()),
            Err(Errno::XDEV) => {
                let mut source = File::open(from).map_err(|source| BeneathError::Io {
                    path: rel.into(),
                    source,
                })?;
                self.write_with(rel, WriteOptions::default(), |file| {
                    io::copy(&mut source, file).map(|_| ())
                })?;
                let _ = std::fs::remove_file(from);
                Ok(())
            }
            Err(e) => Err(io_err(rel, e)),
        }
    }

    /// Removes a file (or a link, which is itself removed, never what it
    /// points to); `false` when there was nothing to remove.
    pub fn remove_file(&self, rel: &str) -> Result<bool, BeneathError> {
        let (folders, name) = self.split(rel)?;
        let dir = match self.folder(rel, &folders) {
            Ok(Some(dir)) => dir,
            Ok(None) | Err(BeneathError::NotAFolder { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        match rustix::fs::unlinkat(&*dir, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io_err(rel, e)),
        }
    }

    /// Flushes a folder so renames into it are durable (best effort).
    pub fn sync_dir(&self, rel: &str) {
        if let Ok(Some(dir)) = self.open_dir(rel) {
            let _ = rustix::fs::fsync(&*dir);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A project folder beside a folder outside it holding a secret.
    struct Fixture {
        _top: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let top = tempfile::tempdir().expect("tempdir");
        let root = top.path().join("project");
        let outside = top.path().join("outside");
        std::fs::create_dir_all(root.join("input/sub")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(outside.join("secret"), b"secret").expect("write");
        std::fs::write(root.join("input/sub/file.txt"), b"inside").expect("write");
        Fixture {
            _top: top,
            root,
            outside,
        }
    }

    fn both(root: &Path) -> [Beneath; 2] {
        [
            Beneath::open(root).expect("open"),
            Beneath::open_walking(root).expect("open"),
        ]
    }

    fn outside_untouched(f: &Fixture) {
        let names: Vec<_> = std::fs::read_dir(&f.outside)
            .expect("list")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
        assert_eq!(
            std::fs::read(f.outside.join("secret")).expect("read"),
            b"secret"
        );
    }

    #[test]
    fn ordinary_paths_work() {
        let f = fixture();
        for b in both(&f.root) {
            let (mut file, entry) = b
                .open_file("input/sub/file.txt")
                .expect("open")
                .expect("exists");
            let mut text = String::new();
            file.read_to_string(&mut text).expect("read");
            assert_eq!(text, "inside");
            assert_eq!(entry.size, 6);
            assert!(b.lstat("input/nothing").expect("lstat").is_none());
            assert!(b.lstat("nothing/at/all").expect("lstat").is_none());
            b.write("output/new/deep/a.txt", b"a", WriteOptions::default())
                .expect("write");
            b.write(
                "output/new/deep/a.txt",
                b"b",
                WriteOptions {
                    mode: Some(0o444),
                    sync: true,
                },
            )
            .expect("replace");
            assert_eq!(
                std::fs::read(f.root.join("output/new/deep/a.txt")).expect("read"),
                b"b"
            );
            assert!(b.remove_file("output/new/deep/a.txt").expect("remove"));
            assert!(!b.remove_file("output/new/deep/a.txt").expect("remove"));
            let tree = b.read_tree("input", 100).expect("tree");
            assert_eq!(
                tree.files,
                vec![("input/sub/file.txt".to_owned(), Some(b"inside".to_vec()))]
            );
            // No temporary file is left behind.
            let left: Vec<_> = b.list("output/new/deep").expect("list");
            assert!(left.is_empty(), "{left:?}");
        }
    }

    #[test]
    fn climbing_and_absolute_paths_leave_the_project() {
        let f = fixture();
        let absolute = f.outside.join("secret").display().to_string();
        for b in both(&f.root) {
            for bad in [
                "../outside/secret",
                "input/../../outside/secret",
                "..",
                absolute.as_str(),
            ] {
                for result in [
                    b.lstat(bad).map(|_| ()),
                    b.open_file(bad).map(|_| ()),
                    b.write(bad, b"x", WriteOptions::default()),
                    b.remove_file(bad).map(|_| ()),
                    b.create_dir_all(bad).map(|_| ()),
                ] {
                    let e = result.expect_err(bad);
                    assert!(matches!(e, BeneathError::Leaves { .. }), "{bad}: {e}");
                    assert!(e.to_string().contains("leaves the project"), "{e}");
                }
            }
        }
        outside_untouched(&f);
    }

    #[test]
    fn a_link_at_any_position_is_refused() {
        let f = fixture();
        // input/evil -> outside (a folder link), input/sub/key -> the
        // secret (a file link), and an absolute and a relative variant.
        symlink(&f.outside, f.root.join("input/evil")).expect("link");
        symlink("../../outside", f.root.join("input/sub/up")).expect("link");
        symlink(f.outside.join("secret"), f.root.join("input/sub/key")).expect("link");
        symlink(&f.outside, f.root.join("top")).expect("link");
        for b in both(&f.root) {
            for (path, link) in [
                ("input/evil/secret", "input/evil"),
                ("input/evil/new/deeper", "input/evil"),
                ("input/sub/up/secret", "input/sub/up"),
                ("input/sub/key", "input/sub/key"),
                ("top/secret", "top"),
            ] {
                let e = b.open_file(path).expect_err(path);
                assert!(
                    matches!(&e, BeneathError::Symlink { link: l, .. } if l == link),
                    "{path}: {e}"
                );
                assert!(e.to_string().contains("is a symbolic link"), "{e}");
                assert!(e.is_refusal());
                // A link as the last component is not followed either: it
                // is seen (lstat), replaced or removed itself (below).
                if path != "input/sub/key" {
                    let e = b
                        .write(path, b"pwned", WriteOptions::default())
                        .expect_err(path);
                    assert!(e.is_refusal(), "{path}: {e}");
                    let e = b.lstat(path).expect_err(path);
                    assert!(e.is_refusal(), "{path}: {e}");
                    let e = b.remove_file(path).expect_err(path);
                    assert!(e.is_refusal(), "{path}: {e}");
                }
                let e = b.create_dir_all(path).expect_err(path);
                assert!(e.is_refusal(), "{path}: {e}");
            }
            // The link itself is seen as a link, and removing it removes
            // only the link.
            assert_eq!(
                b.lstat("input/sub/key").expect("lstat").map(|e| e.kind),
                Some(Kind::Symlink)
            );
            let tree = b.read_tree("input", 1 << 20).expect("tree");
            assert_eq!(
                tree.links,
                vec!["input/evil", "input/sub/key", "input/sub/up"]
            );
            assert_eq!(tree.files.len(), 1);
            // Writing over a link replaces the link, never its target.
            b.write("input/sub/key", b"mine", WriteOptions::default())
                .expect("replace");
            assert_eq!(
                b.lstat("input/sub/key").expect("lstat").map(|e| e.kind),
                Some(Kind::File)
            );
            symlink(f.outside.join("secret"), f.root.join("input/sub/key2")).expect("link");
            let (staging_dir, staging) = {
                let dir = tempfile::tempdir().expect("tempdir");
                let path = dir.path().join("staged");
                std::fs::write(&path, b"staged").expect("write");
                (dir, path)
            };
            b.rename_into(&staging, "input/sub/key2")
                .expect("rename over a link");
            drop(staging_dir);
            std::fs::remove_file(f.root.join("input/sub/key")).expect("rm");
            std::fs::remove_file(f.root.join("input/sub/key2")).expect("rm");
            symlink(f.outside.join("secret"), f.root.join("input/sub/key")).expect("link");
            assert!(b.remove_file("input/sub/key").expect("remove the link"));
            symlink(f.outside.join("secret"), f.root.join("input/sub/key")).expect("link");
        }
        outside_untouched(&f);
    }

    #[test]
    fn a_link_swapped_in_after_the_folder_was_opened_is_not_followed() {
        let f = fixture();
        for b in both(&f.root) {
            // The folder is opened (and cached) while it is a real folder…
            b.create_dir_all("input/swap").expect("mkdir");
            assert!(b.lstat("input/swap/x").expect("lstat").is_none());
            // …then an attacker moves it away and puts a link in its place.
            std::fs::rename(f.root.join("input/swap"), f.root.join("input/moved")).expect("mv");
            symlink(&f.outside, f.root.join("input/swap")).expect("link");
            b.write("input/swap/planted", b"x", WriteOptions::default())
                .expect("written into the folder that was opened");
            assert!(f.root.join("input/moved/planted").is_file());
            // A fresh lookup sees the link and refuses it.
            let fresh = Beneath::open(&f.root).expect("open");
            let e = fresh
                .write("input/swap/planted", b"x", WriteOptions::default())
                .expect_err("link");
            assert!(
                e.to_string().contains("input/swap is a symbolic link"),
                "{e}"
            );
            std::fs::remove_file(f.root.join("input/swap")).expect("rm");
            std::fs::remove_dir_all(f.root.join("input/moved")).expect("rm");
        }
        outside_untouched(&f);
    }

    #[test]
    fn a_file_opened_for_reading_stays_the_file_that_was_checked() {
        let f = fixture();
        let b = Beneath::open(&f.root).expect("open");
        let (mut file, _) = b
            .open_file("input/sub/file.txt")
            .expect("open")
            .expect("exists");
        std::fs::remove_file(f.root.join("input/sub/file.txt")).expect("rm");
        symlink(f.outside.join("secret"), f.root.join("input/sub/file.txt")).expect("link");
        let mut text = String::new();
        file.read_to_string(&mut text).expect("read");
        assert_eq!(text, "inside");
        assert!(
            b.open_file("input/sub/file.txt")
                .expect_err("link now")
                .is_refusal()
        );
    }

    #[test]
    fn special_files_and_oversized_reads_are_refused() {
        let f = fixture();
        let b = Beneath::open(&f.root).expect("open");
        assert!(matches!(
            b.open_file("input/sub"),
            Err(BeneathError::NotAFile { .. })
        ));
        assert!(matches!(
            b.read("input/sub/file.txt", 3),
            Err(BeneathError::TooLarge { .. })
        ));
        assert!(matches!(
            b.write("input/sub/file.txt/x", b"x", WriteOptions::default()),
            Err(BeneathError::NotAFolder { .. })
        ));
    }
}
