//! The `tandem` command line.
//!
//! - [`commands`]: the commands and what each prints;
//! - [`env`]: the environment commands (bases, `env …`, build, launch);
//! - [`client`]: how a command reaches the node (HTTP to `tandem up`, or the
//!   same API served in-process);
//! - [`output`]: listings and progress lines.

pub mod client;
pub mod commands;
pub mod env;
pub mod output;

pub use commands::{Cli, run};
