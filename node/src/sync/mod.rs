//! Syncing projects with peers. The decisions are the protocol's
//! (`tandem_protocol::sync`, the same code the simulator runs); these
//! modules do the I/O they ask for.
//!
//! - [`serve`]: answering peers (the node's view of a project for the
//!   protocol's serving function, and the list of projects it offers);
//! - [`session`]: a sync session with each peer, and what the user sees of
//!   it;
//! - [`clone`]: fetching a project shared with this node, then syncing it;
//! - [`git`]: Git packs in and out, merges that never lose work, each
//!   peer's last head, incoming links refused;
//! - [`auto`]: announcements, and syncing when something changed;
//! - [`state`]: where a project stands against each peer.

pub mod auto;
pub mod clone;
pub mod git;
pub mod serve;
pub mod session;
pub mod state;
pub mod writer_refs;
