//! The Tandem node: its store, projects, activity feed, HTTP API and CLI.

pub mod access_store;
pub mod api;
pub mod archive;
pub mod autosync;
pub mod bench;
pub mod blobs;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod data;
pub mod datasets;
pub mod feed;
pub mod fsutil;
pub mod gitsync;
pub mod housekeeping;
pub mod net;
pub mod progress;
pub mod project;
pub mod ratelimit;
pub mod replicate;
pub mod repo;
pub mod service;
pub mod sharing;
pub mod store;
pub mod watch;
pub mod web;
