//! Why a Git step of a sync failed, and whose fault that is.

use crate::projects::repo::RepoError;
use crate::sync::git::links::IncomingLinks;

#[derive(Debug, thiserror::Error)]
pub enum GitSyncError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error(transparent)]
    BadOid(#[from] tandem_protocol::wire::OidError),
    #[error("the pack did not contain commit {0}")]
    Missing(String),
    #[error("sync state file: {0}")]
    State(String),
    #[error("no sync conflict to resolve")]
    NoConflict,
    /// The user's per-cell choices do not fit the pending conflict.
    #[error("{0}")]
    CellChoices(String),
    #[error(
        "a sync conflict with {peer} is waiting: resolve it with `tandem sync NAME --resolve ours|theirs|keep-both` or `--abort`"
    )]
    Pending { peer: String },
    /// The history would check out a symbolic link or a submodule.
    #[error("the changes from {peer} were not merged: {links}")]
    Links { peer: String, links: IncomingLinks },
    #[error("the changes from {peer} were not merged: {source}")]
    Identity {
        peer: String,
        #[source]
        source: crate::projects::project::IdentityChange,
    },
}

/// The user's to settle (a conflict, a refused history), or else the
/// node's own Git failing.
impl From<GitSyncError> for crate::error::ServiceError {
    fn from(e: GitSyncError) -> Self {
        match e {
            GitSyncError::NoConflict
            | GitSyncError::CellChoices(_)
            | GitSyncError::Pending { .. }
            | GitSyncError::BadOid(_)
            | GitSyncError::Identity { .. }
            | GitSyncError::Links { .. } => crate::error::ServiceError::refused(e),
            GitSyncError::Repo(ref repo) if repo.is_refusal() => {
                crate::error::ServiceError::invalid("sync failed", e)
            }
            other => crate::error::ServiceError::failed("sync failed", other),
        }
    }
}
