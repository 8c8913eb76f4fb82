//! A project's Git repository: initialisation, change detection, commits.
//!
//! Every project is a plain Git repository a power user can clone or push
//! anywhere; Tandem only adds commits whose messages carry a greppable
//! summary of the activity entries they belong to.

use std::path::Path;

use git2::{
    IndexAddOption, Oid, Repository, RepositoryInitOptions, Signature, Status, StatusOptions,
};
use tandem_protocol::activity::{FileAction, FileChange};

pub const BRANCH: &str = "main";

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// Creates a repository whose first branch is `main`.
pub fn init(path: &Path) -> Result<Repository, RepoError> {
    let mut options = RepositoryInitOptions::new();
    options.initial_head(BRANCH);
    Ok(Repository::init_opts(path, &options)?)
}

/// Files that differ from the last commit: new, modified or deleted,
/// ignoring what `.gitignore` excludes (the `untracked/` folders).
pub fn pending_changes(repo: &Repository) -> Result<Vec<FileChange>, RepoError> {
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
        changes.push(FileChange {
            path: path.to_owned(),
            action,
        });
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(changes)
}

/// Stages everything and commits it on the current branch. Returns `None`
/// when the tree is unchanged.
pub fn commit_all(
    repo: &Repository,
    author: &Signature<'_>,
    message: &str,
) -> Result<Option<Oid>, RepoError> {
    let mut index = repo.index()?;
    index.add_all(["*"], IndexAddOption::DEFAULT, None)?;
    index.update_all(["*"], None)?;
    index.write()?;
    let tree_id = index.write_tree()?;
    let parent = match repo.head() {
        Ok(head) => Some(head.peel_to_commit()?),
        Err(e)
            if e.code() == git2::ErrorCode::UnbornBranch
                || e.code() == git2::ErrorCode::NotFound =>
        {
            None
        }
        Err(e) => return Err(e.into()),
    };
    if parent.as_ref().is_some_and(|p| p.tree_id() == tree_id) {
        return Ok(None);
    }
    let tree = repo.find_tree(tree_id)?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let oid = repo.commit(Some("HEAD"), author, author, message, &tree, &parents)?;
    Ok(Some(oid))
}

/// Commits only `paths` (relative to the work tree), leaving other pending
/// changes for the next sweep.
pub fn commit_paths(
    repo: &Repository,
    author: &Signature<'_>,
    message: &str,
    paths: &[&str],
) -> Result<Oid, RepoError> {
    let mut index = repo.index()?;
    for path in paths {
        index.add_path(Path::new(path))?;
    }
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let parent = repo.head()?.peel_to_commit()?;
    Ok(repo.commit(Some("HEAD"), author, author, message, &tree, &[&parent])?)
}

/// Commits `paths` as they are now in the work tree, deleted ones
/// included; `None` when none of them changed.
pub fn commit_changed_paths(
    repo: &Repository,
    author: &Signature<'_>,
    message: &str,
    paths: &[&str],
) -> Result<Option<Oid>, RepoError> {
    let workdir = repo
        .workdir()
        .ok_or_else(|| git2::Error::from_str("the repository has no work tree"))?
        .to_owned();
    let mut index = repo.index()?;
    for path in paths {
        if workdir.join(path).exists() {
            index.add_path(Path::new(path))?;
        } else {
            let _ = index.remove_path(Path::new(path));
        }
    }
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let parent = repo.head()?.peel_to_commit()?;
    if parent.tree_id() == tree.id() {
        return Ok(None);
    }
    Ok(Some(repo.commit(
        Some("HEAD"),
        author,
        author,
        message,
        &tree,
        &[&parent],
    )?))
}

/// Number of commits reachable from HEAD.
pub fn commit_count(repo: &Repository) -> Result<usize, RepoError> {
    let mut walk = repo.revwalk()?;
    if walk.push_head().is_err() {
        return Ok(0);
    }
    Ok(walk.count())
}

/// Tracked files with their sizes, from the index.
pub fn tracked_files(repo: &Repository) -> Result<Vec<(String, u64)>, RepoError> {
    let index = repo.index()?;
    Ok(index
        .iter()
        .map(|e| {
            (
                String::from_utf8_lossy(&e.path).into_owned(),
                u64::from(e.file_size),
            )
        })
        .collect())
}

/// Reads a file as committed at HEAD.
pub fn read_at_head(repo: &Repository, path: &str) -> Result<Option<Vec<u8>>, RepoError> {
    let Ok(head) = repo.head() else {
        return Ok(None);
    };
    let tree = head.peel_to_tree()?;
    let Ok(entry) = tree.get_path(Path::new(path)) else {
        return Ok(None);
    };
    let blob = repo.find_blob(entry.id())?;
    Ok(Some(blob.content().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_and_commits_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = init(dir.path()).expect("init");
        let sig = Signature::now("Ada", "ada@example.org").expect("sig");
        std::fs::write(dir.path().join("a.txt"), "one").expect("write");
        let changes = pending_changes(&repo).expect("status");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].action, FileAction::Added);
        assert!(commit_all(&repo, &sig, "first").expect("commit").is_some());
        assert!(pending_changes(&repo).expect("status").is_empty());
        assert!(
            commit_all(&repo, &sig, "nothing")
                .expect("commit")
                .is_none()
        );

        std::fs::write(dir.path().join("a.txt"), "two").expect("write");
        std::fs::write(dir.path().join("b.txt"), "new").expect("write");
        let changes = pending_changes(&repo).expect("status");
        assert_eq!(
            changes
                .iter()
                .map(|c| (c.path.as_str(), c.action))
                .collect::<Vec<_>>(),
            vec![
                ("a.txt", FileAction::Modified),
                ("b.txt", FileAction::Added)
            ]
        );
        commit_all(&repo, &sig, "second").expect("commit");
        std::fs::remove_file(dir.path().join("a.txt")).expect("rm");
        assert_eq!(
            pending_changes(&repo).expect("status")[0].action,
            FileAction::Deleted
        );
        commit_all(&repo, &sig, "third").expect("commit");
        assert_eq!(commit_count(&repo).expect("count"), 3);
        assert_eq!(
            read_at_head(&repo, "b.txt").expect("read"),
            Some(b"new".to_vec())
        );
    }
}
