//! Sync between peers, sans-IO: the same code for the node, the tests and
//! the simulator, which do the I/O it asks for.
//!
//! - [`session`]: one sync with one peer, the asking side ([`Session`],
//!   driven through [`LocalView`]);
//! - [`serve`](mod@serve): the answering side, one function ([`serve()`]) behind
//!   a [`ServeView`], with the access decision every server of project
//!   data asks ([`may_read`]);
//! - [`clone`]: fetching a project for the first time ([`CloneSession`]),
//!   before an ordinary session.

pub mod clone;
pub mod relay;
pub mod serve;
pub mod session;

pub use clone::{CloneError, CloneSession, CloneStep};
pub use serve::{ServeView, may_read, offer, project_of, readers, serve};
pub use session::{BRANCH, Effect, GitOutcome, LocalView, Report, Session};
