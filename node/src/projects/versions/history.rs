//! When one file last changed, so the Files view can link a notebook to
//! the cell-level diff of its last change.

use std::path::Path;

use git2::{Commit, Oid, Repository};
use tandem_protocol::path::SafePath;

use crate::error::ServiceError;
use crate::service::{Service, lock};

/// Commits looked at before giving up: a file unchanged for longer has
/// no "last change" worth a link.
const MAX_WALK: usize = 2_000;

impl Service {
    /// The newest commit that changed `path` (first-parent line from
    /// HEAD; a merge that brought the change counts as it), if any.
    pub fn last_change(&self, name: &str, path: &str) -> Result<Option<String>, ServiceError> {
        let path = SafePath::parse(path)
            .map_err(|e| ServiceError::BadRequest(format!("{path:?}: {e}")))?;
        // A handle of its own: the walk never holds the project's lock.
        let handle = self.project(name)?;
        let dir = lock(&handle).dir.clone();
        let repo = crate::projects::repo::open(&dir)?;
        Ok(last_change_in(&repo, path.as_str()).map(|oid| oid.to_string()))
    }
}

fn entry(commit: &Commit<'_>, path: &str) -> Option<Oid> {
    commit
        .tree()
        .ok()?
        .get_path(Path::new(path))
        .ok()
        .map(|e| e.id())
}

/// Reads Git objects only; a history it cannot read answers `None`.
pub fn last_change_in(repo: &Repository, path: &str) -> Option<Oid> {
    let mut commit = repo.head().ok()?.peel_to_commit().ok()?;
    for _ in 0..MAX_WALK {
        let here = entry(&commit, path);
        let parent = commit.parent(0).ok();
        let before = parent.as_ref().and_then(|p| entry(p, path));
        if here != before {
            // The first commit has no "before" to compare it with.
            return here.filter(|_| parent.is_some()).map(|_| commit.id());
        }
        commit = parent?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, file: &str, text: &str, message: &str) -> Oid {
        let dir = repo.workdir().expect("workdir");
        std::fs::write(dir.join(file), text).expect("write");
        let mut index = repo.index().expect("index");
        index.add_path(Path::new(file)).expect("add");
        index.write().expect("index write");
        let tree = repo
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let sig = git2::Signature::now("t", "t@example.invalid").expect("sig");
        let parents: Vec<Commit<'_>> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&Commit<'_>> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .expect("commit")
    }

    #[test]
    fn the_last_change_of_a_file_is_found_past_commits_that_left_it_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init(dir.path()).expect("init");
        commit(&repo, "a.ipynb", "1", "one");
        assert_eq!(
            last_change_in(&repo, "a.ipynb"),
            None,
            "the root has no before"
        );
        let second = commit(&repo, "a.ipynb", "2", "two");
        commit(&repo, "b.txt", "x", "other");
        assert_eq!(last_change_in(&repo, "a.ipynb"), Some(second));
        assert_eq!(last_change_in(&repo, "missing.ipynb"), None);
        assert_eq!(last_change_in(&repo, "../a.ipynb"), None);
    }
}
