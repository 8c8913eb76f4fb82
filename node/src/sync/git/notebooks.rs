//! Notebooks changed on both sides of a merge, merged cell by cell (see
//! [`tandem_protocol::notebook`]) in place of Git's line merge, which
//! knows nothing of JSON and can leave a notebook that no longer opens.
//!
//! Each such notebook's entry in the merge index is replaced by the cell
//! merge's result; one that has cell conflicts keeps its place in the
//! pending conflict, to be settled per cell. A notebook that cannot be
//! read as nbformat 4 (too large, too deep, broken) keeps Git's whole-file
//! handling, and the reason is kept for the person who settles it.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{Index, IndexEntry, IndexTime, Oid, Repository, Tree};
use tandem_protocol::notebook::{Choice, Conflict, Merged, merge_files};

use crate::sync::git::error::GitSyncError;

/// What the cell merge made of the notebooks both sides changed.
#[derive(Debug, Default)]
pub struct NotebookMerges {
    /// Merged with no conflict: path and what was decided without asking.
    pub merged: Vec<(String, Vec<String>)>,
    /// With cell conflicts, to be settled per cell.
    pub conflicted: Vec<(String, Merged)>,
    /// Not mergeable cell by cell: path and why (the whole-file choice).
    pub whole_file: Vec<(String, String)>,
}

fn is_notebook(path: &str) -> bool {
    path.ends_with(".ipynb")
}

/// Notebook paths whose blob differs between `from` and `to`.
fn changed_notebooks(
    repo: &Repository,
    from: Option<&Tree<'_>>,
    to: &Tree<'_>,
) -> Result<Vec<String>, GitSyncError> {
    let diff = repo.diff_tree_to_tree(from, Some(to), None)?;
    Ok(diff
        .deltas()
        .filter_map(|d| d.new_file().path().or(d.old_file().path()))
        .filter_map(Path::to_str)
        .filter(|p| is_notebook(p))
        .map(str::to_owned)
        .collect())
}

fn blob_at(repo: &Repository, tree: Option<&Tree<'_>>, path: &str) -> Option<Vec<u8>> {
    let entry = tree?.get_path(Path::new(path)).ok()?;
    if entry.filemode() != 0o100644 && entry.filemode() != 0o100755 {
        return None;
    }
    repo.find_blob(entry.id())
        .ok()
        .map(|b| b.content().to_vec())
}

/// The three versions of every notebook both sides changed (and both
/// still have), merged cell by cell.
pub fn merge_notebooks(
    repo: &Repository,
    ancestor: Option<&Tree<'_>>,
    ours: &Tree<'_>,
    theirs: &Tree<'_>,
) -> Result<BTreeMap<String, Result<Merged, String>>, GitSyncError> {
    let mine = changed_notebooks(repo, ancestor, ours)?;
    let yours = changed_notebooks(repo, ancestor, theirs)?;
    let mut out = BTreeMap::new();
    for path in mine.into_iter().filter(|p| yours.contains(p)) {
        let (Some(o), Some(t)) = (
            blob_at(repo, Some(ours), &path),
            blob_at(repo, Some(theirs), &path),
        ) else {
            // Deleted (or made a link) on one side: Git's whole-file rule.
            continue;
        };
        if o == t {
            continue;
        }
        let base = blob_at(repo, ancestor, &path).unwrap_or_default();
        out.insert(path, merge_files(&base, &o, &t).map_err(|e| e.to_string()));
    }
    Ok(out)
}

/// Puts `bytes` at `path` in the index as the merged (stage 0) file,
/// replacing a conflict or Git's own merge of it.
pub fn put_in_index(
    repo: &Repository,
    index: &mut Index,
    path: &str,
    bytes: &[u8],
) -> Result<(), GitSyncError> {
    let id: Oid = repo.blob(bytes)?;
    let _ = index.conflict_remove(Path::new(path));
    let _ = index.remove_path(Path::new(path));
    let zero = IndexTime::new(0, 0);
    index.add(&IndexEntry {
        ctime: zero,
        mtime: zero,
        dev: 0,
        ino: 0,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        file_size: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        id,
        flags: u16::try_from(path.len()).unwrap_or(0xfff).min(0xfff),
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    })?;
    Ok(())
}

/// The person's choice for one cell conflict of the notebook at a path.
pub type Chooser<'a> = dyn Fn(&str, &Conflict) -> Choice + 'a;

/// Applies the cell merges to a merge index: clean ones replace Git's
/// result, conflicted ones are settled with `choose` if given (a
/// resolution) or left for the person (their path is reported), broken
/// ones keep Git's handling.
pub fn apply(
    repo: &Repository,
    index: &mut Index,
    merges: BTreeMap<String, Result<Merged, String>>,
    choose: Option<&Chooser<'_>>,
) -> Result<NotebookMerges, GitSyncError> {
    let mut report = NotebookMerges::default();
    for (path, merged) in merges {
        match merged {
            Err(why) => report.whole_file.push((path, why)),
            Ok(merged) => {
                if let Some(clean) = merged.clean() {
                    put_in_index(repo, index, &path, &clean.to_bytes())?;
                    report.merged.push((path, merged.notes));
                } else if let Some(choose) = choose {
                    let resolved = merged.resolve(|c| choose(&path, c));
                    put_in_index(repo, index, &path, &resolved.to_bytes())?;
                    report.merged.push((path, merged.notes));
                } else {
                    report.conflicted.push((path, merged));
                }
            }
        }
    }
    Ok(report)
}
