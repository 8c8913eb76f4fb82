//! A project's Git repository: initialisation, change detection, commits.
//!
//! Every project is a plain Git repository a power user can clone or push
//! anywhere; Tandem only adds commits whose messages carry a greppable
//! summary of the activity entries they belong to.
//!
//! The repository's own files are not trusted: an older container could
//! write `.git/config`, and a config that moves the work tree
//! (`core.worktree`) or runs programs (`core.fsmonitor`, filters, …) would
//! make the node commit files from elsewhere on the host, or make the
//! user's own `git` run code. So the node opens `.git` as a bare repository
//! with the work tree fixed to the project folder, refuses a `.git` that is
//! not a plain folder, and refuses to sweep or commit while the config
//! holds such a key ([`check`]). Git subprocesses start from
//! [`git_command`], deaf to those keys.
//!
//! - [`open`]: opening `.git` as a plain folder with the work tree fixed,
//!   refusing hostile config and files, and [`git_command`];
//! - [`changes`]: what differs from the last commit, and what is never
//!   committed;
//! - [`commit`]: commits, and reading what the history holds;
//! - [`error`]: why a repository could not be used.

pub mod changes;
pub mod commit;
pub mod error;
pub mod open;

#[cfg(test)]
mod tests;

pub use changes::{pending_changes, pending_changes_and_links};
pub use commit::{
    commit_all, commit_changed_paths, commit_changes, commit_count, commit_paths, read_at_head,
    tracked_files,
};
pub use error::{RefusedKey, RepoError};
pub use open::{BRANCH, check, git_command, init, open};
