//! Git history between peers: packs out, packs in, merges that never lose
//! work.
//!
//! Each peer's branch is kept under `refs/tandem/peers/<peer-id>/main`. A
//! merge touches the working tree only through a safe checkout done before
//! the branch moves, so a failure leaves everything as it was. Conflicts
//! are recorded (`.git/TANDEM_SYNC`) and leave the working tree untouched
//! until the user picks ours, theirs, keep-both, or abort.
//!
//! - [`pack`]: full object ids, packs built and received;
//! - [`merge`]: merging a peer's branch, recording and settling conflicts;
//! - [`notebooks`]: notebooks changed on both sides, merged cell by cell;
//! - [`peers`]: each peer's last head, and landmarks offered as `have`;
//! - [`links`]: links and submodules in incoming history (refused);
//! - [`error`]: what went wrong, and whose fault it is.

pub mod error;
pub mod links;
pub mod merge;
pub mod notebooks;
pub mod pack;
pub mod peers;
#[cfg(test)]
mod testing;

pub use error::GitSyncError;
pub use links::{IncomingLinks, incoming_links};
pub use merge::{
    CellChoices, MergeOutcome, Resolution, merge, pending_conflict, pending_conflict_files, resolve,
};
pub use pack::{build_pack, build_pack_of, has_commit, head, ingest_pack, parse_oid};
pub use peers::{landmarks, peer_heads, store_peer_head};
