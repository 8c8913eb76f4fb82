//! Git history between peers: packs out, packs in, merges that never lose
//! work.
//!
//! Each peer's branch is kept under `refs/tandem/peers/<peer-id>/main`. A
//! merge touches the working tree only through a safe checkout done before
//! the branch moves, so a failure leaves everything as it was. Conflicts
//! are recorded (`.git/TANDEM_SYNC`) and leave the working tree untouched
//! until the user picks ours, theirs, keep-both, or abort.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use git2::build::CheckoutBuilder;
use git2::{FileFavor, MergeOptions, Oid, Repository, Signature};
use serde::{Deserialize, Serialize};

use tandem_protocol::wire::Oid as WireOid;

use crate::projects::repo::{BRANCH, RepoError};

const STATE_FILE: &str = "TANDEM_SYNC";

#[derive(Debug, thiserror::Error)]
pub enum GitSyncError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error(transparent)]
    BadOid(#[from] tandem_protocol::wire::OidError),
    #[error("the pack did not contain commit {0}")]
    Missing(String),
    #[error("sync state file: {0}")]
    State(String),
    #[error("no sync conflict to resolve")]
    NoConflict,
    #[error(
        "a sync conflict with {peer} is waiting: resolve it with `tandem sync NAME --resolve ours|theirs|keep-both` or `--abort`"
    )]
    Pending { peer: String },
    /// The history would check out a symbolic link or a submodule.
    #[error("the changes from {peer} were not merged: {links}")]
    Links { peer: String, links: IncomingLinks },
    #[error("the changes from {peer} were not merged: {source}")]
    Identity {
        peer: String,
        #[source]
        source: crate::projects::project::IdentityChange,
    },
}

impl From<GitSyncError> for crate::error::ServiceError {
    fn from(e: GitSyncError) -> Self {
        match e {
            GitSyncError::NoConflict
            | GitSyncError::Pending { .. }
            | GitSyncError::BadOid(_)
            | GitSyncError::Identity { .. }
            | GitSyncError::Links { .. } => crate::error::ServiceError::BadRequest(e.to_string()),
            other => crate::error::ServiceError::BadRequest(format!("sync failed: {other}")),
        }
    }
}

/// A full object id, refusing abbreviations (libgit2 would pad them with
/// zeros, Git would resolve them).
pub fn parse_oid(text: &str) -> Result<Oid, GitSyncError> {
    to_git(&WireOid::parse(text)?)
}

fn to_git(oid: &WireOid) -> Result<Oid, GitSyncError> {
    Ok(Oid::from_str(oid.as_str())?)
}

/// The current branch head.
pub fn head(repo: &Repository) -> Option<Oid> {
    repo.head().ok().and_then(|h| h.target())
}

pub fn has_commit(repo: &Repository, oid: &str) -> bool {
    parse_oid(oid).is_ok_and(|oid| repo.find_commit(oid).is_ok())
}

/// Objects reachable from `want` but not from `have` (unknown haves are
/// ignored), as a pack. Every id must be a full one (see [`WireOid`]): the
/// request is refused otherwise, before Git sees any of it.
///
/// Uses `git pack-objects` when Git is installed: it reuses the deltas and
/// compressed objects already on disk, as `git daemon` does, where
/// libgit2's packbuilder recomputes every delta (several times slower on a
/// long history). Without Git, or if it fails, libgit2 builds the pack.
pub fn build_pack(
    repo: &Repository,
    want: &[String],
    have: &[String],
) -> Result<Vec<u8>, GitSyncError> {
    let want = WireOid::parse_all(want)?;
    let have = WireOid::parse_all(have)?;
    let (want, have) = (want.as_slice(), have.as_slice());
    if git_cli_enabled() {
        match pack_with_git_cli(repo, want, have) {
            Ok(pack) => return Ok(pack),
            Err(e) => tracing::debug!(error = %e, "git pack-objects unavailable; using libgit2"),
        }
    }
    build_pack_libgit2(repo, want, have)
}

/// `TANDEM_GIT_CLI=0` turns the Git command off (tests compare both paths).
fn git_cli_enabled() -> bool {
    std::env::var("TANDEM_GIT_CLI").map_or(true, |v| v != "0")
}

fn pack_with_git_cli(
    repo: &Repository,
    want: &[WireOid],
    have: &[WireOid],
) -> Result<Vec<u8>, String> {
    use std::process::Stdio;
    let mut input = String::new();
    for oid in want {
        input.push_str(oid.as_str());
        input.push('\n');
    }
    for oid in have {
        // Unknown haves are ignored, as in the libgit2 path.
        if let Ok(parsed) = to_git(oid)
            && repo.find_commit(parsed).is_ok()
        {
            input.push('^');
            input.push_str(oid.as_str());
            input.push('\n');
        }
    }
    // Deaf to repository config that runs programs (see `repo::git_command`).
    let mut child = crate::projects::repo::git_command(repo.path())
        .args([
            "pack-objects",
            "--stdout",
            "--revs",
            "--delta-base-offset",
            "--threads=0",
            "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    // Written from a thread so a long list of haves cannot deadlock
    // against a full stdout pipe.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "the writer thread panicked".to_owned())?
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(output.stdout)
}

fn build_pack_libgit2(
    repo: &Repository,
    want: &[WireOid],
    have: &[WireOid],
) -> Result<Vec<u8>, GitSyncError> {
    let mut walk = repo.revwalk()?;
    for oid in want {
        walk.push(to_git(oid)?)?;
    }
    for oid in have {
        if let Ok(oid) = to_git(oid)
            && repo.find_commit(oid).is_ok()
        {
            walk.hide(oid)?;
        }
    }
    let mut builder = repo.packbuilder()?;
    // Delta search is most of the cost of packing: use every core.
    builder.set_threads(0);
    builder.insert_walk(&mut walk)?;
    let mut buf = git2::Buf::new();
    builder.write_buf(&mut buf)?;
    Ok(buf.to_vec())
}

/// Stores a received pack in the object database (indexed and verified by
/// libgit2 while it is written).
pub fn ingest_pack(repo: &Repository, pack: &[u8]) -> Result<(), GitSyncError> {
    if pack.is_empty() {
        return Ok(());
    }
    let odb = repo.odb()?;
    let mut writer = odb.packwriter()?;
    writer
        .write_all(pack)
        .map_err(|e| GitSyncError::State(e.to_string()))?;
    writer.commit()?;
    Ok(())
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum MergeOutcome {
    UpToDate,
    FastForward { head: String, commits: usize },
    Merged { head: String, commits: usize },
    Conflicts { files: Vec<String> },
}

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
            })
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    Some((state.peer_label, files))
}

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

/// Symbolic links (git mode 120000) and submodules (160000) that a tree
/// would bring into a working tree. Checked out, a link in a project lets
/// whoever committed it aim the node's later writes and reads anywhere on
/// this machine (`input/evil -> ../../..`), so incoming history that holds
/// one anywhere is refused, naming the paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingLinks {
    /// Path and what it is, in tree order.
    pub paths: Vec<(String, &'static str)>,
}

impl std::fmt::Display for IncomingLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 5;
        let named: Vec<String> = self
            .paths
            .iter()
            .take(SHOWN)
            .map(|(path, what)| format!("{path} is {what}"))
            .collect();
        write!(f, "{}", named.join(", "))?;
        if self.paths.len() > SHOWN {
            write!(f, " (and {} more)", self.paths.len() - SHOWN)?;
        }
        write!(
            f,
            "; refused: Tandem never checks out links or submodules from another copy"
        )
    }
}

impl std::error::Error for IncomingLinks {}

/// The links and submodules `to` holds that `from` does not hold the same
/// (`from` = `None`: all of `to`). Only what differs is walked, so a sync
/// costs in proportion to what changed.
pub fn incoming_links(
    repo: &Repository,
    from: Option<&git2::Tree<'_>>,
    to: &git2::Tree<'_>,
) -> Result<Option<IncomingLinks>, git2::Error> {
    let mut options = git2::DiffOptions::new();
    options.include_typechange(true);
    let diff = repo.diff_tree_to_tree(from, Some(to), Some(&mut options))?;
    let mut paths = Vec::new();
    for delta in diff.deltas() {
        if delta.status() == git2::Delta::Deleted {
            continue;
        }
        let file = delta.new_file();
        let what = match file.mode() {
            git2::FileMode::Link => "a symbolic link (git mode 120000)",
            git2::FileMode::Commit => "a submodule (git mode 160000)",
            _ => continue,
        };
        let path = file
            .path_bytes()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        paths.push((path, what));
    }
    Ok((!paths.is_empty()).then_some(IncomingLinks { paths }))
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
    let index = repo.merge_commits(&ours_commit, &theirs_commit, None)?;
    if index.has_conflicts() {
        let mut files: Vec<String> = index
            .conflicts()?
            .flatten()
            .filter_map(|c| c.our.or(c.their).or(c.ancestor))
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
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
    pinned: &crate::projects::project::Manifest,
) -> Result<(String, Option<Oid>), GitSyncError> {
    let text = fs::read_to_string(state_path(repo)).map_err(|_| GitSyncError::NoConflict)?;
    let state: PendingConflict =
        serde_json::from_str(&text).map_err(|e| GitSyncError::State(e.to_string()))?;
    let theirs_oid = parse_oid(&state.theirs)?;
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
            let index = repo.merge_commits(&ours, &theirs, Some(&options))?;
            let side = if how == Resolution::Ours {
                "ours"
            } else {
                "theirs"
            };
            let message = format!(
                "Merged changes from {}, conflicts resolved with {side}",
                state.peer_label
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with_commits(dir: &std::path::Path, count: usize) -> (Repository, Oid) {
        let repo = crate::projects::repo::init(dir).expect("init");
        let author = Signature::now("T", "t@example.org").expect("signature");
        let mut last = None;
        for n in 0..count {
            fs::write(dir.join("file.txt"), format!("version {n}\n").repeat(50)).expect("write");
            last = crate::projects::repo::commit_all(&repo, &author, &format!("commit {n}"))
                .expect("commit");
        }
        let head = last.expect("a commit");
        (repo, head)
    }

    #[test]
    fn packs_from_git_and_from_libgit2_both_carry_the_history() {
        let source = tempfile::tempdir().expect("tempdir");
        let (repo, head) = repo_with_commits(source.path(), 20);
        let want = [wire(head)];
        let mut packs = vec![build_pack_libgit2(&repo, &want, &[]).expect("libgit2 pack")];
        // Git may be missing on a user's machine, never in this workspace's CI.
        packs.push(pack_with_git_cli(&repo, &want, &[]).expect("git pack-objects"));
        for pack in packs {
            let target = tempfile::tempdir().expect("tempdir");
            let copy = crate::projects::repo::init(target.path()).expect("init");
            ingest_pack(&copy, &pack).expect("ingest");
            let mut walk = copy.revwalk().expect("walk");
            walk.push(head).expect("head is there");
            assert_eq!(walk.count(), 20);
        }
    }

    #[test]
    fn a_have_shrinks_the_pack_and_unknown_haves_are_ignored() {
        let source = tempfile::tempdir().expect("tempdir");
        let (repo, head) = repo_with_commits(source.path(), 10);
        let parent = repo
            .find_commit(head)
            .expect("head")
            .parent_id(0)
            .expect("parent");
        let want = [wire(head)];
        let full = pack_with_git_cli(&repo, &want, &[]).expect("full");
        let unknown = WireOid::parse("0123456789012345678901234567890123456789").expect("full id");
        let thin = pack_with_git_cli(&repo, &want, &[wire(parent), unknown]).expect("incremental");
        assert!(thin.len() < full.len(), "{} < {}", thin.len(), full.len());
        assert!(build_pack(&repo, &["nonsense".into()], &[]).is_err());
    }

    fn wire(oid: Oid) -> WireOid {
        WireOid::parse(&oid.to_string()).expect("git2 prints full ids")
    }

    #[test]
    fn abbreviated_ids_never_reach_git() {
        let source = tempfile::tempdir().expect("tempdir");
        let (repo, head) = repo_with_commits(source.path(), 3);
        let full = head.to_string();
        // `git pack-objects --revs` would resolve each of these (a prefix,
        // a name, a differently cased id) and pack what it matched.
        for bad in [
            &full[..7],
            &full[..39],
            "HEAD",
            "main",
            &full.to_uppercase(),
        ] {
            let err = build_pack(&repo, &[bad.to_owned()], &[]).expect_err(bad);
            assert!(
                matches!(err, GitSyncError::BadOid(_))
                    && err.to_string().contains("full Git object id"),
                "{bad}: {err}"
            );
            let err =
                build_pack(&repo, std::slice::from_ref(&full), &[bad.to_owned()]).expect_err(bad);
            assert!(matches!(err, GitSyncError::BadOid(_)), "{bad}: {err}");
            assert!(parse_oid(bad).is_err(), "{bad}");
        }
        assert!(!has_commit(&repo, &full[..12]));
        assert!(has_commit(&repo, &full));
        assert!(
            !build_pack(&repo, &[full], &[])
                .expect("full ids pack")
                .is_empty()
        );
    }

    #[test]
    fn incoming_links_and_submodules_are_found_anywhere_and_only_when_new() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (repo, head) = repo_with_commits(dir.path(), 1);
        let base = repo.find_commit(head).expect("head").tree().expect("tree");
        let link = repo.blob(b"../../..").expect("blob");
        let mut deep = repo.treebuilder(None).expect("builder");
        deep.insert("evil", link, 0o120000).expect("insert");
        deep.insert("sub", head, 0o160000).expect("insert");
        let deep = deep.write().expect("tree");
        let mut input = repo.treebuilder(None).expect("builder");
        input.insert("deep", deep, 0o040000).expect("insert");
        let input = input.write().expect("tree");
        let mut top = repo.treebuilder(Some(&base)).expect("builder");
        top.insert("input", input, 0o040000).expect("insert");
        let hostile = repo.find_tree(top.write().expect("tree")).expect("tree");
        let found = incoming_links(&repo, Some(&base), &hostile)
            .expect("diff")
            .expect("links found");
        let paths: Vec<&str> = found.paths.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["input/deep/evil", "input/deep/sub"]);
        let text = found.to_string();
        assert!(
            text.contains("input/deep/evil is a symbolic link"),
            "{text}"
        );
        assert!(text.contains("submodule"), "{text}");
        // The whole tree when nothing is here yet; nothing when nothing new.
        assert!(
            incoming_links(&repo, None, &hostile)
                .expect("diff")
                .is_some()
        );
        assert!(
            incoming_links(&repo, Some(&hostile), &hostile)
                .expect("diff")
                .is_none()
        );
        assert!(incoming_links(&repo, None, &base).expect("diff").is_none());
    }

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
