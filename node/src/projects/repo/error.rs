//! Why a repository could not be used: Git failed, or it holds something
//! the node refuses (a `.git` that is not a plain folder, a file that
//! points Git elsewhere, config that moves the work tree or runs programs).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error(
        "{path} is {what}, not the repository folder Tandem made; Tandem does not follow it \
         (replace it with the project's .git folder, or clone the project again)"
    )]
    NotAGitFolder { path: PathBuf, what: &'static str },
    #[error(
        "{path} is there, which {why}; Tandem never makes it and will not use the repository \
         while it is there: remove it"
    )]
    RefusedFile { path: PathBuf, why: &'static str },
    #[error(
        "the repository config {file} sets {}; Tandem never sets these and will not obey them, \
         so it records nothing in this project until they are gone: remove each with \
         `git config --file {file} --unset-all KEY`",
        describe_refused(refused)
    )]
    RefusedConfig {
        file: PathBuf,
        refused: Vec<RefusedKey>,
    },
}

impl RepoError {
    /// Whether the repository holds something the node refuses (rather
    /// than Git failing).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            RepoError::NotAGitFolder { .. }
                | RepoError::RefusedFile { .. }
                | RepoError::RefusedConfig { .. }
        )
    }
}

/// A config entry the node will not work beside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedKey {
    pub key: String,
    pub value: String,
    pub why: &'static str,
}

fn describe_refused(refused: &[RefusedKey]) -> String {
    refused
        .iter()
        .map(|r| format!("{} = {:?} ({})", r.key, r.value, r.why))
        .collect::<Vec<_>>()
        .join(", ")
}
