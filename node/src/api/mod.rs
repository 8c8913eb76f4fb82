//! The node's one HTTP API, which the CLI, the web UI and scripts all use.
//!
//! - [`routes`]: the JSON API and the guard (token, origin) in front of it
//!   and the web UI;
//! - [`web_routes`]: the routes only the web UI needs (bytes in and out,
//!   archives, marks, sync state);
//! - [`web_backend`]: the web UI's [`tandem_web::Backend`] over the service.

pub mod routes;
pub mod web_backend;
pub mod web_routes;
