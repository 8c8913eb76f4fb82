//! Every blob a project's history has ever pointed to, so older versions
//! of a large file stay fetchable by members after it changes, and so
//! `tandem du` and `tandem evict` can tell old versions from current ones.

use std::collections::{BTreeMap, HashSet};

use git2::{ObjectType, Oid, Repository, Tree};
use tandem_protocol::blob::{BlobHash, MAX_POINTER_LEN, POINTER_DIR, Pointer};

/// Blob hash → size, over every commit reachable from any branch.
pub fn pointed_to(repo: &Repository) -> Result<BTreeMap<BlobHash, u64>, git2::Error> {
    let mut walk = repo.revwalk()?;
    for reference in repo.references()?.flatten() {
        if let Some(target) = reference.target()
            && reference.is_branch()
        {
            walk.push(target)?;
        }
    }
    let mut seen_trees: HashSet<Oid> = HashSet::new();
    let mut seen_blobs: HashSet<Oid> = HashSet::new();
    let mut out = BTreeMap::new();
    for commit in walk {
        let commit = repo.find_commit(commit?)?;
        let tree = commit.tree()?;
        let Ok(entry) = tree.get_path(std::path::Path::new(POINTER_DIR)) else {
            continue;
        };
        if entry.kind() != Some(ObjectType::Tree) || !seen_trees.insert(entry.id()) {
            continue;
        }
        let subtree = repo.find_tree(entry.id())?;
        collect(repo, &subtree, &mut seen_trees, &mut seen_blobs, &mut out)?;
    }
    Ok(out)
}

fn collect(
    repo: &Repository,
    tree: &Tree<'_>,
    seen_trees: &mut HashSet<Oid>,
    seen_blobs: &mut HashSet<Oid>,
    out: &mut BTreeMap<BlobHash, u64>,
) -> Result<(), git2::Error> {
    for entry in tree.iter() {
        match entry.kind() {
            Some(ObjectType::Tree) if seen_trees.insert(entry.id()) => {
                let subtree = repo.find_tree(entry.id())?;
                collect(repo, &subtree, seen_trees, seen_blobs, out)?;
            }
            Some(ObjectType::Blob) => {
                if !seen_blobs.insert(entry.id()) {
                    continue;
                }
                let blob = repo.find_blob(entry.id())?;
                if blob.size() as u64 > MAX_POINTER_LEN {
                    continue;
                }
                let pointer = std::str::from_utf8(blob.content())
                    .ok()
                    .and_then(|text| Pointer::from_toml(text).ok());
                if let Some(pointer) = pointer {
                    out.insert(pointer.hash, pointer.size);
                }
            }
            _ => {}
        }
    }
    Ok(())
}
