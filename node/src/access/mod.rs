//! Who may do what in a project: signed statements on disk and the
//! operations that grant and revoke roles, and who this node is.
//!
//! - [`store`]: where a project's access statements live, in the node's
//!   store and in the project's `.tandem/access/`;
//! - [`sharing`]: `tandem share`, `revoke`, `members`;
//! - [`identity`]: this node's did, peer id, and the name and email it
//!   signs with;
//! - [`invites`]: invite links, the inviter's side (`tandem invite`, and
//!   answering a peer's `Join`); [`join`]: the joiner's (`tandem join`).
//!
//! The evaluation of statements (who holds which role) is pure and lives in
//! `tandem_protocol::access`.

pub mod identity;
pub mod invites;
pub mod join;
pub mod sharing;
pub mod store;
