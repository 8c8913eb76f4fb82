//! In-process stories of the node's own logic, in the spirit of radicle
//! heartwood's `radicle-node/src/test/peer.rs`: several nodes' real
//! services (real homes in temporary folders, real Git repositories)
//! wired together in memory, with automatic sync on a virtual clock, so a
//! story of minutes runs in milliseconds. Journeys through the real binary
//! stay in the e2e crate's `TestNode`.
//!
//! - [`network`]: the in-memory network, answering each node's
//!   `NetHandle` by calling the other nodes' `Host`s, and recording what
//!   crossed it;
//! - [`peer`]: one node, and its scheduler on the story's clock;
//! - [`world`]: the nodes, the network and the clock together;
//! - `stories`: the stories themselves.

pub mod network;
pub mod peer;
pub mod world;

pub(crate) use peer::open_service;

mod stories;
