//! The `tandem` command line.
//!
//! - [`commands`]: the commands, and which group runs each (`up`, `init`
//!   and `id` run there too);
//! - one module per command group: [`projects`] (`project …`), [`files`]
//!   (`add`, `sweep`, `files`, `fetch`, `du`, `evict`), [`versions`]
//!   (`files --at`, `diff`, `restore`), [`datasets`]
//!   (`dataset …`), [`activity`] (`activity`, `note`), [`sharing`]
//!   (`share`, `revoke`, `members`, `visibility`), [`invites`] (`invite`,
//!   `join`), [`sync`] (`peers`, `peer add`, `sync`) and [`env`] (bases,
//!   `env …`, build, launch);
//! - [`request`]: what every group sends (encoded URL paths, queries,
//!   absolute file paths); [`output`]: what they print (JSON, times,
//!   listings, progress lines);
//! - [`client`]: how a command reaches the node (HTTP to `tandem up`, or the
//!   same API served in-process).
//!
//! The groups use `request`, `output` and `client`, never one another, and
//! the request and answer bodies are `tandem_protocol::api`'s, the types the
//! node's handlers read and write.

pub mod activity;
pub mod client;
pub mod commands;
pub mod datasets;
pub mod env;
pub mod files;
pub mod invites;
pub mod output;
pub mod projects;
pub mod request;
pub mod sharing;
pub mod sync;
pub mod versions;

pub use commands::{Cli, run};
