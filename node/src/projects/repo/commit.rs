//! Commits on the project's branch (everything, or chosen paths) and what
//! the history holds: its length, the tracked files, a file at HEAD.

use std::path::Path;

use git2::{IndexAddOption, Oid, Repository, Signature};

use super::changes::{never_committed, work_tree};
use super::error::RepoError;
use super::open::check;

/// Stages everything and commits it on the current branch. Returns `None`
/// when the tree is unchanged.
pub fn commit_all(
    repo: &Repository,
    author: &Signature<'_>,
    message: &str,
) -> Result<Option<Oid>, RepoError> {
    check(repo)?;
    let mut index = repo.index()?;
    // Links and nested repositories are skipped (see `never_committed`);
    // the sweep reports them from `pending_changes_and_links`.
    let work = work_tree(repo);
    let mut skip = |path: &Path, _spec: &[u8]| -> i32 {
        let path = path.to_string_lossy();
        match never_committed(work.as_ref(), &path) {
            Some(why) => {
                tracing::warn!(path = %path, "{why}; not committed");
                1
            }
            None => 0,
        }
    };
    index.add_all(["*"], IndexAddOption::DEFAULT, Some(&mut skip))?;
    index.update_all(["*"], Some(&mut skip))?;
    commit_index(repo, &mut index, author, message)
}

/// Writes the index and commits its tree on the current branch, unless it
/// is the tree the branch already has.
fn commit_index(
    repo: &Repository,
    index: &mut git2::Index,
    author: &Signature<'_>,
    message: &str,
) -> Result<Option<Oid>, RepoError> {
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

/// Stages exactly `changes` (as [`super::pending_changes`] found them: new
/// and modified files added, deleted ones removed) and commits them.
/// Returns `None` when the tree is unchanged.
///
/// A sweep has just walked the working tree to find these; staging them
/// by path instead of with `add_all` saves a second walk, which costs most
/// where it hurts most: every untracked large file is matched against
/// every pattern of the exclude list again. What became a link or a
/// nested repository since is still never committed.
pub fn commit_changes(
    repo: &Repository,
    author: &Signature<'_>,
    message: &str,
    changes: &[tandem_protocol::activity::FileChange],
) -> Result<Option<Oid>, RepoError> {
    use tandem_protocol::activity::FileAction;
    check(repo)?;
    let mut index = repo.index()?;
    let work = work_tree(repo);
    for change in changes {
        let path = Path::new(&change.path);
        let gone = match &work {
            Some(work) => matches!(work.lstat(&change.path), Ok(None)),
            None => true,
        };
        if change.action == FileAction::Deleted || gone {
            match index.remove_path(path) {
                Ok(()) => {}
                Err(e) if e.code() == git2::ErrorCode::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            continue;
        }
        if let Some(why) = never_committed(work.as_ref(), &change.path) {
            tracing::warn!(path = %change.path, "{why}; not committed");
            continue;
        }
        index.add_path(path)?;
    }
    commit_index(repo, &mut index, author, message)
}

/// Commits only `paths` (relative to the work tree), leaving other pending
/// changes for the next sweep.
pub fn commit_paths(
    repo: &Repository,
    author: &Signature<'_>,
    message: &str,
    paths: &[&str],
) -> Result<Oid, RepoError> {
    check(repo)?;
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
    check(repo)?;
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
