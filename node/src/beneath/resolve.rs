//! Resolving a relative path beneath a folder descriptor so that no link
//! is followed and nothing outside is reached: `openat2` where the kernel
//! has it, a component-by-component walk where it does not.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::error::BeneathError;

const OPENAT2_UNKNOWN: u8 = 0;
const OPENAT2_YES: u8 = 1;
const OPENAT2_NO: u8 = 2;
/// Whether this kernel has `openat2` (learnt on the first call).
static OPENAT2: AtomicU8 = AtomicU8::new(OPENAT2_UNKNOWN);

/// How a path is resolved; both refuse links and escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strategy {
    Openat2,
    Walk,
}

/// A path's components, or why it is refused on its face.
pub(super) fn parts(rel: &str) -> Result<Vec<&str>, BeneathError> {
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

pub(super) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
pub(super) const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

/// Opens `parts` beneath `root` with `flags`, refusing links anywhere.
pub(super) fn open_parts(
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
