//! Project environments: the spec in `.tandem/env`, images built from it,
//! and JupyterLab containers whose cell executions land in the feed.
//!
//! - [`bases`]: the shipped base definitions;
//! - [`docker`]: reaching the engine;
//! - [`build`]: base and environment images, cached by content;
//! - [`resolve`]: which package versions exist, asked inside the base;
//! - [`containers`]: launching, finding and stopping JupyterLab;
//! - [`jupyter`]: following kernels' IOPub channels;
//! - [`drift`]: packages a running container gained or lost, pinned or
//!   ignored on the user's word;
//! - [`figures`]: figures from the feed, served to and fetched from members;
//! - [`accepted`]: which snippets this node's user has seen and accepted;
//! - [`spec`]: reading, showing and editing the spec (snippets, limits);
//! - [`packages`]: pinning, removing and checking pinned packages;
//! - [`run`]: building images and running JupyterLab, cells into the feed;
//! - [`state`]: what the node keeps about environments while it runs;
//! - [`error`]: why an environment operation failed, and whose fault.

pub mod accepted;
pub mod bases;
pub mod build;
pub mod containers;
pub mod docker;
pub mod drift;
pub mod error;
pub mod figures;
pub mod jupyter;
pub mod packages;
pub mod resolve;
pub mod run;
pub mod spec;
pub mod state;

pub use bases::Catalog;
pub use error::EnvError;
pub use state::EnvState;
