//! What differs in the working tree from the last commit, and the paths
//! that are never committed (links, nested repositories).

use git2::{Repository, Status, StatusOptions};
use tandem_protocol::activity::{FileAction, FileChange};

use super::error::RepoError;
use super::open::check;

/// Files that differ from the last commit: new, modified or deleted,
/// ignoring what `.gitignore` excludes (the `untracked/` folders).
pub fn pending_changes(repo: &Repository) -> Result<Vec<FileChange>, RepoError> {
    Ok(pending_changes_and_links(repo)?.0)
}

/// Why a path of the working tree is never committed, if it is one of
/// those: a symbolic link (checked out elsewhere it would lead anywhere on
/// that machine) or a nested repository (a submodule). Looked at without
/// following links.
pub(super) fn never_committed(
    work: Option<&crate::beneath::Beneath>,
    path: &str,
) -> Option<&'static str> {
    if path.ends_with('/') {
        return Some("is a nested Git repository");
    }
    let work = work?;
    match work.lstat(path) {
        Ok(Some(entry)) => match entry.kind {
            crate::beneath::Kind::Symlink => Some("is a symbolic link"),
            crate::beneath::Kind::Dir => Some("is a nested Git repository"),
            _ => None,
        },
        Ok(None) => None,
        Err(e) if e.is_refusal() => Some("lies beyond a symbolic link"),
        Err(_) => None,
    }
}

pub(super) fn work_tree(repo: &Repository) -> Option<crate::beneath::Beneath> {
    crate::beneath::Beneath::open(repo.workdir()?).ok()
}

/// [`pending_changes`], and the paths left out because they are never
/// committed (links, nested repositories), each with why.
pub fn pending_changes_and_links(
    repo: &Repository,
) -> Result<(Vec<FileChange>, Vec<String>), RepoError> {
    check(repo)?;
    let work = work_tree(repo);
    let mut links = Vec::new();
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .renames_head_to_index(false)
        .renames_index_to_workdir(false);
    let statuses = repo.statuses(Some(&mut options))?;
    let mut changes = Vec::new();
    for status in statuses.iter() {
        let Ok(path) = status.path() else { continue };
        let flags = status.status();
        let action = if flags.intersects(Status::WT_DELETED | Status::INDEX_DELETED) {
            FileAction::Deleted
        } else if flags.intersects(Status::WT_NEW | Status::INDEX_NEW) {
            FileAction::Added
        } else if flags.intersects(
            Status::WT_MODIFIED
                | Status::WT_TYPECHANGE
                | Status::INDEX_MODIFIED
                | Status::INDEX_TYPECHANGE,
        ) {
            FileAction::Modified
        } else {
            continue;
        };
        if action != FileAction::Deleted
            && let Some(why) = never_committed(work.as_ref(), path)
        {
            links.push(format!(
                "{} {why}; it is never committed",
                path.trim_end_matches('/')
            ));
            continue;
        }
        changes.push(FileChange {
            path: path.to_owned(),
            action,
        });
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    links.sort();
    Ok((changes, links))
}
