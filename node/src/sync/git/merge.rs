//! Merging a peer's branch into ours, and settling a conflict: nothing is
//! ever lost. A merge touches the working tree only through a safe
//! checkout done before the branch moves, so a failure leaves everything as
//! it was. Conflicts are recorded (`.git/TANDEM_SYNC`) and leave the
//! working tree untouched until the user picks ours, theirs, keep-both, or
//! abort. A result that brings links in, or would change the project's
//! pinned identity, is refused before anything moves.

use std::fs;
use std::path::PathBuf;

use git2::build::CheckoutBuilder;
use git2::{FileFavor, MergeOptions, Oid, Repository, Signature};
use serde::{Deserialize, Serialize};
pub use tandem_protocol::notebook::CellChoices;
use tandem_protocol::notebook::{Choice, Conflict};

use crate::projects::repo::BRANCH;
use crate::sync::git::error::GitSyncError;
use crate::sync::git::links::incoming_links;
use crate::sync::git::notebooks;
use crate::sync::git::pack::{head, parse_oid};

const STATE_FILE: &str = "TANDEM_SYNC";

/// What a merge did (part of the sync API's answer).
pub use tandem_protocol::api::MergeOutcome;

#[derive(Debug, Serialize, Deserialize)]
struct PendingConflict {
    theirs: String,
    peer: String,
    peer_label: String,
}

fn state_path(repo: &Repository) -> PathBuf {
    repo.path().join(STATE_FILE)
}

/// The peer of a pending conflict, if any.
pub fn pending_conflict(repo: &Repository) -> Option<String> {
    let text = fs::read_to_string(state_path(repo)).ok()?;
    serde_json::from_str::<PendingConflict>(&text)
        .ok()
        .map(|p| p.peer_label)
}

/// Largest file whose two versions are shown for a conflict.
const CONFLICT_TEXT_LIMIT: usize = 256 * 1024;

/// The files of a pending conflict, with both versions where they are
/// small text files (for a diff view).
pub fn pending_conflict_files(
    repo: &Repository,
) -> Option<(String, Vec<tandem_protocol::api::ConflictFile>)> {
    let text = fs::read_to_string(state_path(repo)).ok()?;
    let state: PendingConflict = serde_json::from_str(&text).ok()?;
    let ours = repo.find_commit(head(repo)?).ok()?;
    let theirs = repo.find_commit(parse_oid(&state.theirs).ok()?).ok()?;
    let index = repo.merge_commits(&ours, &theirs, None).ok()?;
    let text_of = |entry: &Option<git2::IndexEntry>| -> Option<String> {
        let blob = repo.find_blob(entry.as_ref()?.id).ok()?;
        if blob.size() > CONFLICT_TEXT_LIMIT || blob.is_binary() {
            return None;
        }
        String::from_utf8(blob.content().to_vec()).ok()
    };
    let mut files: Vec<tandem_protocol::api::ConflictFile> = index
        .conflicts()
        .ok()?
        .flatten()
        .filter_map(|c| {
            let path = c
                .our
                .as_ref()
                .or(c.their.as_ref())
                .or(c.ancestor.as_ref())?;
            Some(tandem_protocol::api::ConflictFile {
                path: String::from_utf8_lossy(&path.path).into_owned(),
                ours: text_of(&c.our),
                theirs: text_of(&c.their),
                cells: vec![],
                whole_file: None,
            })
        })
        .collect();
    // Notebooks: their cell conflicts (Git's view of them is replaced).
    let cells = notebooks::merge_notebooks(
        repo,
        ancestor_tree(repo, ours.id(), theirs.id()).as_ref(),
        &ours.tree().ok()?,
        &theirs.tree().ok()?,
    )
    .ok()?;
    for (path, merged) in cells {
        files.retain(|f| f.path != path || merged.is_err());
        match merged {
            Ok(merged) if !merged.is_clean() => files.push(tandem_protocol::api::ConflictFile {
                path,
                ours: None,
                theirs: None,
                cells: merged.conflicts.into_iter().map(|c| c.for_view()).collect(),
                whole_file: None,
            }),
            Ok(_) => {}
            Err(why) => {
                if let Some(file) = files.iter_mut().find(|f| f.path == path) {
                    file.whole_file = Some(why);
                }
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    Some((state.peer_label, files))
}

fn count_new(repo: &Repository, from: Option<Oid>, to: Oid) -> usize {
    let Ok(mut walk) = repo.revwalk() else {
        return 0;
    };
    if walk.push(to).is_err() || from.is_some_and(|f| walk.hide(f).is_err()) {
        return 0;
    }
    walk.count()
}

/// Moves the branch to `commit` after checking out its tree safely: files
/// the user changed since the last commit block the move instead of being
/// overwritten.
fn advance(repo: &Repository, commit: Oid, message: &str) -> Result<(), GitSyncError> {
    let object = repo.find_object(commit, None)?;
    repo.checkout_tree(&object, Some(CheckoutBuilder::new().safe()))?;
    repo.reference(&format!("refs/heads/{BRANCH}"), commit, true, message)?;
    Ok(())
}

/// Refuses a tree that brings links or submodules in (see
/// [`IncomingLinks`]); checked before the branch or the working tree moves.
fn keeps_out_links(
    repo: &Repository,
    ours: Option<&git2::Tree<'_>>,
    tree: &git2::Tree<'_>,
    peer_label: &str,
) -> Result<(), GitSyncError> {
    match incoming_links(repo, ours, tree)? {
        Some(links) => Err(GitSyncError::Links {
            peer: peer_label.to_owned(),
            links,
        }),
        None => Ok(()),
    }
}

/// Refuses a tree that would change the pinned identity (checked before
/// the branch or the working tree moves).
fn keeps_identity(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    pinned: &crate::projects::project::Manifest,
    peer_label: &str,
) -> Result<(), GitSyncError> {
    crate::projects::project::check_tree(repo, tree, pinned).map_err(|source| {
        GitSyncError::Identity {
            peer: peer_label.to_owned(),
            source,
        }
    })
}

/// Merges `theirs` into the branch: fast-forward, clean merge, or recorded
/// conflict (nothing in the working tree changes then). A result that
/// would change the project's pinned identity is refused.
pub fn merge(
    repo: &Repository,
    author: &Signature<'_>,
    theirs: &str,
    peer: &str,
    peer_label: &str,
    pinned: &crate::projects::project::Manifest,
) -> Result<MergeOutcome, GitSyncError> {
    if let Some(waiting) = pending_conflict(repo) {
        return Err(GitSyncError::Pending { peer: waiting });
    }
    let theirs_oid = parse_oid(theirs)?;
    let theirs_commit = repo
        .find_commit(theirs_oid)
        .map_err(|_| GitSyncError::Missing(theirs.to_owned()))?;
    let Some(ours_oid) = head(repo) else {
        keeps_identity(repo, &theirs_commit.tree()?, pinned, peer_label)?;
        keeps_out_links(repo, None, &theirs_commit.tree()?, peer_label)?;
        advance(repo, theirs_oid, "tandem sync: first history")?;
        return Ok(MergeOutcome::FastForward {
            head: theirs.to_owned(),
            commits: count_new(repo, None, theirs_oid),
        });
    };
    if ours_oid == theirs_oid || repo.graph_descendant_of(ours_oid, theirs_oid)? {
        return Ok(MergeOutcome::UpToDate);
    }
    let commits = count_new(repo, Some(ours_oid), theirs_oid);
    if repo.graph_descendant_of(theirs_oid, ours_oid)? {
        keeps_identity(repo, &theirs_commit.tree()?, pinned, peer_label)?;
        let ours_tree = repo.find_commit(ours_oid)?.tree()?;
        keeps_out_links(repo, Some(&ours_tree), &theirs_commit.tree()?, peer_label)?;
        advance(repo, theirs_oid, "tandem sync: fast-forward")?;
        return Ok(MergeOutcome::FastForward {
            head: theirs.to_owned(),
            commits,
        });
    }
    let ours_commit = repo.find_commit(ours_oid)?;
    let mut index = repo.merge_commits(&ours_commit, &theirs_commit, None)?;
    let cells = notebooks::merge_notebooks(
        repo,
        ancestor_tree(repo, ours_oid, theirs_oid).as_ref(),
        &ours_commit.tree()?,
        &theirs_commit.tree()?,
    )?;
    let report = notebooks::apply(repo, &mut index, cells, None)?;
    if index.has_conflicts() || !report.conflicted.is_empty() {
        let mut files: Vec<String> = index
            .conflicts()?
            .flatten()
            .filter_map(|c| c.our.or(c.their).or(c.ancestor))
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .chain(report.conflicted.iter().map(|(path, _)| path.clone()))
            .collect();
        files.sort();
        files.dedup();
        let state = PendingConflict {
            theirs: theirs.to_owned(),
            peer: peer.to_owned(),
            peer_label: peer_label.to_owned(),
        };
        fs::write(
            state_path(repo),
            serde_json::to_vec(&state).unwrap_or_default(),
        )
        .map_err(|e| GitSyncError::State(e.to_string()))?;
        return Ok(MergeOutcome::Conflicts { files });
    }
    let head = commit_merge(
        repo,
        author,
        index,
        &ours_commit,
        &theirs_commit,
        &format!("[tandem:sync] Merged changes from {peer_label}"),
        (pinned, peer_label),
    )?;
    Ok(MergeOutcome::Merged {
        head: head.to_string(),
        commits,
    })
}

/// The tree of the merge base, if the histories share one.
fn ancestor_tree<'r>(repo: &'r Repository, ours: Oid, theirs: Oid) -> Option<git2::Tree<'r>> {
    let base = repo.merge_base(ours, theirs).ok()?;
    repo.find_commit(base).ok()?.tree().ok()
}

fn commit_merge(
    repo: &Repository,
    author: &Signature<'_>,
    mut index: git2::Index,
    ours: &git2::Commit<'_>,
    theirs: &git2::Commit<'_>,
    message: &str,
    (pinned, peer_label): (&crate::projects::project::Manifest, &str),
) -> Result<Oid, GitSyncError> {
    let tree = repo.find_tree(index.write_tree_to(repo)?)?;
    keeps_identity(repo, &tree, pinned, peer_label)?;
    keeps_out_links(repo, Some(&ours.tree()?), &tree, peer_label)?;
    let oid = repo.commit(None, author, author, message, &tree, &[ours, theirs])?;
    advance(repo, oid, "tandem sync: merge")?;
    Ok(oid)
}

/// How the user settles a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resolution {
    Ours,
    Theirs,
    KeepBoth,
    Abort,
}

impl std::str::FromStr for Resolution {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "ours" => Ok(Self::Ours),
            "theirs" => Ok(Self::Theirs),
            "keep-both" => Ok(Self::KeepBoth),
            "abort" => Ok(Self::Abort),
            other => Err(format!(
                "unknown resolution {other:?}: use ours, theirs, keep-both or abort"
            )),
        }
    }
}

/// Settles a pending conflict; returns a message for the activity feed.
pub fn resolve(
    repo: &Repository,
    author: &Signature<'_>,
    how: Resolution,
    cells: &CellChoices,
    pinned: &crate::projects::project::Manifest,
) -> Result<(String, Option<Oid>), GitSyncError> {
    let text = fs::read_to_string(state_path(repo)).map_err(|_| GitSyncError::NoConflict)?;
    let state: PendingConflict =
        serde_json::from_str(&text).map_err(|e| GitSyncError::State(e.to_string()))?;
    let theirs_oid = parse_oid(&state.theirs)?;
    if !cells.is_empty() && !matches!(how, Resolution::Ours | Resolution::Theirs) {
        return Err(GitSyncError::CellChoices(
            "cell choices go with --resolve ours or theirs (the side for the rest)".into(),
        ));
    }
    let outcome = match how {
        Resolution::Abort => (
            format!(
                "Left the changes from {} unmerged (sync aborted)",
                state.peer_label
            ),
            None,
        ),
        Resolution::KeepBoth => {
            let branch = format!(
                "conflict/{}-{}",
                short_name(&state.peer_label),
                chrono::Utc::now().format("%Y%m%d-%H%M%S")
            );
            repo.reference(
                &format!("refs/heads/{branch}"),
                theirs_oid,
                false,
                "tandem sync: keep both",
            )?;
            (
                format!(
                    "Kept both versions: the changes from {} are on branch {branch}",
                    state.peer_label
                ),
                None,
            )
        }
        Resolution::Ours | Resolution::Theirs => {
            let ours = repo.find_commit(head(repo).ok_or(GitSyncError::NoConflict)?)?;
            let theirs = repo.find_commit(theirs_oid)?;
            let mut options = MergeOptions::new();
            options.file_favor(if how == Resolution::Ours {
                FileFavor::Ours
            } else {
                FileFavor::Theirs
            });
            let mut index = repo.merge_commits(&ours, &theirs, Some(&options))?;
            let side = if how == Resolution::Ours {
                Choice::Ours
            } else {
                Choice::Theirs
            };
            // Notebooks: each cell conflict as the person chose it, the
            // rest with the side chosen for the whole merge.
            let merges = notebooks::merge_notebooks(
                repo,
                ancestor_tree(repo, ours.id(), theirs_oid).as_ref(),
                &ours.tree()?,
                &theirs.tree()?,
            )?;
            check_choices(&merges, cells)?;
            let mut picked = 0;
            let choose = |path: &str, conflict: &Conflict| {
                cells
                    .get(path)
                    .and_then(|c| c.get(&conflict.id))
                    .copied()
                    .unwrap_or(side)
            };
            for (path, merged) in &merges {
                if let Ok(merged) = merged {
                    picked += merged
                        .conflicts
                        .iter()
                        .filter(|c| cells.get(path).is_some_and(|m| m.contains_key(&c.id)))
                        .count();
                }
            }
            notebooks::apply(repo, &mut index, merges, Some(&choose))?;
            let side = if how == Resolution::Ours {
                "ours"
            } else {
                "theirs"
            };
            let message = if picked > 0 {
                format!(
                    "Merged changes from {}, {picked} notebook cell conflict{} settled one by one, the rest with {side}",
                    state.peer_label,
                    if picked == 1 { "" } else { "s" }
                )
            } else {
                format!(
                    "Merged changes from {}, conflicts resolved with {side}",
                    state.peer_label
                )
            };
            let oid = commit_merge(
                repo,
                author,
                index,
                &ours,
                &theirs,
                &format!("[tandem:sync] {message}"),
                (pinned, &state.peer_label),
            )?;
            (message, Some(oid))
        }
    };
    fs::remove_file(state_path(repo)).map_err(|e| GitSyncError::State(e.to_string()))?;
    Ok(outcome)
}

/// Refuses a choice for a file or a cell conflict that is not there, so a
/// mistyped id never passes for a settled conflict.
fn check_choices(
    merges: &std::collections::BTreeMap<String, Result<tandem_protocol::notebook::Merged, String>>,
    cells: &CellChoices,
) -> Result<(), GitSyncError> {
    for (path, choices) in cells {
        let Some(Ok(merged)) = merges.get(path) else {
            return Err(GitSyncError::CellChoices(format!(
                "{path} has no cell conflicts to settle"
            )));
        };
        for id in choices.keys() {
            if !merged.conflicts.iter().any(|c| &c.id == id) {
                return Err(GitSyncError::CellChoices(format!(
                    "{path} has no conflict {id:?} (see `tandem sync NAME --show-conflicts`)"
                )));
            }
        }
    }
    Ok(())
}

fn short_name(label: &str) -> String {
    let cleaned: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('-');
    let short: String = trimmed.chars().take(24).collect();
    if short.is_empty() {
        "peer".into()
    } else {
        short
    }
}
