//! Each peer's branch as last merged from it, under
//! `refs/tandem/peers/<peer-id>/main`, and landmarks of our own history:
//! what a session offers a peer as `have`.

use git2::{Oid, Repository};

use crate::projects::repo::BRANCH;
use crate::sync::git::error::GitSyncError;
use crate::sync::git::pack::parse_oid;

/// Commits along the first-parent line behind `head`, at distances 1, 2,
/// 4, 8, …: a few haves that let a peer find a recent common commit in a
/// history of any length.
pub fn landmarks(repo: &Repository, head: Oid, most: usize) -> Vec<Oid> {
    let mut found = Vec::new();
    let (mut at, mut step, mut next) = (head, 0u64, 1u64);
    while found.len() < most {
        let Ok(parent) = repo.find_commit(at).and_then(|c| c.parent_id(0)) else {
            break;
        };
        at = parent;
        step += 1;
        if step == next {
            found.push(at);
            next *= 2;
        }
    }
    found
}

/// Each peer's last recorded head: (peer id, commit, when recorded).
pub fn peer_heads(repo: &Repository) -> Vec<(String, Oid, Option<i64>)> {
    let Ok(refs) = repo.references_glob(&format!("refs/tandem/peers/*/{BRANCH}")) else {
        return Vec::new();
    };
    refs.flatten()
        .filter_map(|r| {
            let name = r.name().ok()?.to_owned();
            let peer = name
                .strip_prefix("refs/tandem/peers/")?
                .strip_suffix(&format!("/{BRANCH}"))?
                .to_owned();
            let oid = r.target()?;
            let when = repo
                .reflog(&name)
                .ok()
                .and_then(|log| log.get(0).map(|e| e.committer().when().seconds() * 1000));
            Some((peer, oid, when))
        })
        .collect()
}

/// Records the peer's head under its namespace.
pub fn store_peer_head(repo: &Repository, peer_id: &str, head: &str) -> Result<(), GitSyncError> {
    let oid = parse_oid(head)?;
    repo.find_commit(oid)
        .map_err(|_| GitSyncError::Missing(head.to_owned()))?;
    let name = format!("refs/tandem/peers/{peer_id}/{BRANCH}");
    // Keep a log of these refs too: its newest line says when we last
    // synced with the peer.
    repo.reference_ensure_log(&name)?;
    repo.reference(&name, oid, true, "tandem sync")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::git::testing::repo_with_commits;

    #[test]
    fn landmarks_step_back_by_powers_of_two() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (repo, head) = repo_with_commits(dir.path(), 20);
        let mut line = vec![head];
        while let Ok(parent) = repo
            .find_commit(*line.last().expect("a commit"))
            .and_then(|c| c.parent_id(0))
        {
            line.push(parent);
        }
        let expected: Vec<Oid> = [1, 2, 4, 8, 16]
            .into_iter()
            .filter_map(|d| line.get(d).copied())
            .collect();
        assert_eq!(landmarks(&repo, head, 16), expected);
        assert_eq!(landmarks(&repo, head, 2), expected[..2].to_vec());
    }
}
