//! Syncing projects with peers.
//!
//! - [`replicate`]: serving requests (access enforced), sync sessions with a
//!   peer, and cloning;
//! - [`git`]: Git packs in and out, merges that never lose work;
//! - [`auto`]: announcements, and syncing when something changed;
//! - [`state`]: where a project stands against each peer.

pub mod auto;
pub mod git;
pub mod replicate;
pub mod state;
