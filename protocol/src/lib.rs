//! Tandem's protocol core: pure types and logic with no I/O.
//!
//! The node, the end-to-end tests and the simulations all build on this
//! crate, so everything here is deterministic: time and randomness are
//! passed in by the caller.

pub mod access;
pub mod activity;
pub mod api;
pub mod blob;
pub mod dataset;
pub mod drift;
pub mod env;
pub mod gossip;
pub mod identity;
pub mod invite;
pub mod notebook;
pub mod path;
pub mod project;
pub mod signed;
pub mod summary;
pub mod sync;
#[cfg(test)]
mod testing;
pub mod text;
pub mod wire;

pub use identity::{KeyError, PeerKey, SecretKey, Signature};
pub use project::{ProjectId, ProjectName};
