//! A project's activity: the signed, merged feed and this node's personal
//! view of it.
//!
//! - [`feed`]: one automerge document per writer, merged into one history;
//! - [`marks`]: starred and hidden entries, kept on this node only;
//! - [`restore`]: a version brought back from an entry;
//! - [`bench`]: the feed benchmark's body (`cargo bench --bench activity`).

pub mod bench;
pub mod feed;
pub mod marks;
pub mod restore;
