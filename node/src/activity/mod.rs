//! A project's activity: the signed, merged feed and this node's personal
//! view of it.
//!
//! - [`feed`]: one automerge document per writer, merged into one history;
//! - [`writer`]: one writer's document on disk (snapshot, framed log,
//!   entry index);
//! - [`error`]: why the feed could not be read or changed;
//! - [`ops`]: entries appended under this node's key, notes, compaction;
//! - [`query`]: the feed filtered as a user asks, newest first;
//! - [`marks`]: starred and hidden entries, kept on this node only;
//! - [`bench`]: the feed benchmark's body (`cargo bench --bench activity`).

pub mod bench;
pub mod error;
pub mod feed;
pub mod marks;
pub mod ops;
pub mod query;
mod writer;
