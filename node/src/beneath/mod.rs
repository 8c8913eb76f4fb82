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
//!
//! - [`root`]: the folder handle, its folder cache, and resolving a path
//!   to a folder or a file opened for reading;
//! - [`resolve`]: `openat2` beneath a descriptor, or the component walk;
//! - [`read`]: whole files up to a limit, listings and trees;
//! - [`write`]: atomic replacement, new files, moves, copies in from
//!   outside, removal;
//! - [`entry`]: what a path is, as `lstat` sees it;
//! - [`error`]: why a path was refused or failed.

pub mod entry;
pub mod error;
pub mod read;
mod resolve;
pub mod root;
pub mod write;

#[cfg(test)]
mod tests;

pub use entry::{Entry, Kind};
pub use error::BeneathError;
pub use read::Tree;
pub use root::Beneath;
pub use write::WriteOptions;
