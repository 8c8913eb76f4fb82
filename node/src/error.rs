//! What went wrong in a node operation, sorted by whose fault it is.

use tandem_protocol::project::ProjectError;

use crate::activity::feed::FeedError;
use crate::home::StoreError;
use crate::projects::project::ProjectOpenError;
use crate::projects::repo::RepoError;

/// What went wrong, sorted by whose fault it is (for HTTP status codes).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no project named {0:?} (see `tandem project list`)")]
    NoSuchProject(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NoSuchFile(String),
    #[error(transparent)]
    Blobs(#[from] crate::blobs::BlobStoreError),
    #[error(transparent)]
    Track(#[from] crate::blobs::track::TrackError),
    /// A path beneath a project refused or unusable (see `beneath`).
    #[error(transparent)]
    Beneath(#[from] crate::beneath::BeneathError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Open(#[from] ProjectOpenError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Env(crate::env::EnvError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::p2p::swarm::NetError> for ServiceError {
    fn from(e: crate::p2p::swarm::NetError) -> Self {
        ServiceError::BadRequest(e.to_string())
    }
}

impl From<ProjectError> for ServiceError {
    fn from(e: ProjectError) -> Self {
        ServiceError::BadRequest(e.to_string())
    }
}

pub fn io_context(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServiceError {
    let context = context.into();
    move |source| ServiceError::Io { context, source }
}
