//! Large files and datasets in projects, on top of [`crate::blobs`].
//!
//! - [`files`]: swept into the blob store, written into working trees when
//!   pointers arrive, fetched from peers, and who may fetch what;
//! - [`datasets`]: versioned collections of files, linked into projects;
//! - [`disk`]: how much space each project takes, and dropping local copies
//!   peers can give back.

pub mod datasets;
pub mod disk;
pub mod files;
