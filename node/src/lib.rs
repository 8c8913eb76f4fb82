//! The Tandem node: its store, projects, activity feed, HTTP API and CLI.

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
pub mod p2p;
pub mod projects;
pub mod service;
pub mod settings;
pub mod sync;
#[cfg(test)]
mod testkit;
