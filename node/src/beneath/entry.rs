//! What a path beneath the root is: its kind, size and modification time,
//! as `lstat` sees it.

use rustix::fs::{FileType, Stat};

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
    pub(super) fn of(stat: &Stat) -> Self {
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
