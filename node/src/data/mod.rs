//! Large files and datasets in projects, on top of [`crate::blobs`].
//!
//! - [`ingest`]: large files hashed into the blob store when a project is
//!   swept, pointers in their place;
//! - [`materialise`]: pointers written out into the working tree from what
//!   the store holds, and what is missing;
//! - [`fetch`]: the missing bytes fetched from peers who share the project;
//! - [`gate`]: which peer may fetch which blob from here, and the endpoint;
//! - [`datasets`]: versioned collections of files, linked into projects;
//! - [`listings`]: the version and link listings a folder holds, read
//!   beneath its root;
//! - [`disk`]: how much space each project takes, and dropping local copies
//!   peers can give back;
//! - [`state`]: what the node keeps about large files while it runs.

pub mod datasets;
pub mod disk;
pub mod fetch;
pub mod gate;
pub mod ingest;
pub mod listings;
pub mod materialise;
pub mod state;

pub use state::DataState;
