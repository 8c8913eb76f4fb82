//! The Tandem node: its store, projects, activity feed, HTTP API and CLI.
//!
//! Folders by capability, each with a `mod.rs` that maps its parts:
//! - [`projects`]: project folders and Git repositories, create, sweep,
//!   watch, browse, archives;
//! - [`activity`]: the signed per-writer feed, notes, queries, marks;
//! - [`access`]: signed access statements on disk, share and revoke;
//! - [`sync`]: serving peers (through `tandem_protocol::sync::serve`),
//!   sessions, clone, Git packs and merges, automatic sync;
//! - [`p2p`]: the libp2p swarm; it asks [`p2p::Host`] for decisions and
//!   never names the service;
//! - [`blobs`] and [`data`]: the iroh-blobs store and endpoint, large files
//!   in projects, the blob gate, datasets, disk use;
//! - [`env`]: environment specs, images, containers, the cell recorder;
//! - [`api`] and [`cli`]: the one HTTP API and the commands that use it.
//!
//! At the top: [`daemon`] composes `tandem up`; [`service`] is the facade
//! over the home (one mutex per project); [`error`] sorts failures by whose
//! fault they are; [`home`] is `$TANDEM_HOME`. `tests/tests/module_graph.rs`
//! keeps the modules free of import circles.

// First, so that its `println!` and `print!` (quiet on a closed stdout)
// are the ones every module below uses.
#[macro_use]
pub mod stdout;
pub mod access;
pub mod activity;
pub mod api;
pub mod beneath;
pub mod blobs;
pub mod cli;
pub mod daemon;
pub mod data;
pub mod env;
pub mod error;
pub mod fsutil;
pub mod home;
pub mod hub;
pub mod p2p;
pub mod projects;
pub mod service;
pub mod settings;
pub mod sync;
#[cfg(test)]
mod testkit;
