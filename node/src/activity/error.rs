//! Why the activity feed could not be read or changed: its files, a
//! corrupt document, or a bundle or entry that was refused.

use std::io;
use std::path::{Path, PathBuf};

use tandem_protocol::activity::EntryError;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("activity store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("activity document {path} is unreadable: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("activity document update refused: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error("{0}")]
    Rejected(String),
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FeedError + '_ {
    move |source| FeedError::Io {
        path: path.to_owned(),
        source,
    }
}
