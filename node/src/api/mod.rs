//! The node's one HTTP API, which the CLI, the web UI and scripts all use.
//!
//! - [`router`]: the whole application, the API under `/api` and the web
//!   UI's pages, behind the [`guard`] (token, host, origin, CSRF);
//! - [`status`]: how an error is answered; the status comes from
//!   [`crate::error::ServiceError::answer`], as it does for the web UI;
//! - handlers by capability, each with its `routes()`: [`node`] (health,
//!   identity, settings), [`projects`], [`files`] (bytes in and out),
//!   [`activity`] (feed, notes, marks), [`versions`] (browse,
//!   compare, restore), [`access`] (members),
//!   [`invites`] (invite links, join),
//!   [`sync`] (sync, clone, offers, sync state), [`peers`], [`data`]
//!   (large files, disk use, datasets) and [`env`] (environments,
//!   containers, figures);
//! - [`web_backend`]: the web UI's [`tandem_web::Backend`] over the service.
//!
//! Handlers do their blocking work through [`crate::service::Service::blocking`]
//! and [`crate::service::Service::with_project`].

pub mod access;
pub mod activity;
pub mod data;
pub mod env;
pub mod files;
pub mod guard;
pub mod hub;
pub mod invites;
pub mod node;
pub mod peers;
pub mod projects;
pub mod router;
pub mod status;
pub mod sync;
pub mod versions;
pub mod web_backend;

pub use guard::Guard;
pub use router::app;

#[cfg(test)]
mod tests;
