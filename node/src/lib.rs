//! The Tandem node: its store, projects, activity feed, HTTP API and CLI.

// First, so that its `println!` and `print!` (quiet on a closed stdout)
// are the ones every module below uses.
#[macro_use]
pub mod stdout;
pub mod access_store;
pub mod api;
pub mod archive;
pub mod autosync;
pub mod bench;
pub mod beneath;
pub mod blobs;
pub mod browse;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod data;
pub mod datasets;
pub mod env;
pub mod envcli;
pub mod feed;
pub mod fsutil;
pub mod gitsync;
pub mod housekeeping;
pub mod marks;
pub mod net;
pub mod progress;
pub mod project;
pub mod ratelimit;
pub mod replicate;
pub mod repo;
pub mod restore;
pub mod service;
pub mod settings;
pub mod sharing;
pub mod store;
pub mod syncstate;
pub mod watch;
pub mod web;
pub mod webapi;
pub mod wirelog;
