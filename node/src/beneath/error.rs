//! Why a path beneath a project was refused or could not be used, and
//! whether that is a refusal (a link, an escape) or an ordinary failure.

use std::io;

use rustix::io::Errno;

/// Why a path beneath a project was refused or could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    /// Some component of the path (`link`) is a symbolic link.
    #[error("{}", symlink_message(.path, .link))]
    Symlink { path: String, link: String },
    /// The path is absolute or climbs out with `..`.
    #[error("{path} leaves the project; refusing it")]
    Leaves { path: String },
    /// A component that must be a folder (`at`) is a file.
    #[error("{path}: {at} is not a folder")]
    NotAFolder { path: String, at: String },
    /// The path names a folder, a device or a pipe where a file belongs.
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is {size} bytes, more than the {limit} allowed here")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

fn symlink_message(path: &str, link: &str) -> String {
    if path == link {
        format!("{path} is a symbolic link; refusing to follow it")
    } else {
        format!("{path}: {link} is a symbolic link; refusing to follow it")
    }
}

impl BeneathError {
    /// Whether the path was refused for what it is (a link, an escape),
    /// rather than failing for an ordinary reason: callers skip and report
    /// such a path instead of stopping the whole operation on it.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Symlink { .. } | Self::Leaves { .. })
    }

    /// The relative path the error is about.
    pub fn path(&self) -> &str {
        match self {
            Self::Symlink { path, .. }
            | Self::Leaves { path }
            | Self::NotAFolder { path, .. }
            | Self::NotAFile { path }
            | Self::TooLarge { path, .. }
            | Self::Io { path, .. } => path,
        }
    }
}

pub(super) fn io_err(path: &str, errno: Errno) -> BeneathError {
    BeneathError::Io {
        path: path.into(),
        source: io::Error::from(errno),
    }
}
