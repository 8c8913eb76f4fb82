//! Who may do what in a project: signed statements on disk and the
//! operations that grant and revoke roles.
//!
//! - [`store`]: where a project's access statements live, in the node's
//!   store and in the project's `.tandem/access/`;
//! - [`sharing`]: `tandem share`, `revoke`, `members`.
//!
//! The evaluation of statements (who holds which role) is pure and lives in
//! `tandem_protocol::access`.

pub mod sharing;
pub mod store;
