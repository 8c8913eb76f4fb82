//! Going back: a version's code, input and output (large files included),
//! environment spec and dataset links become the project's again, as one
//! new commit on top of the history and one activity entry. Nothing is
//! lost: the versions after it stay in the history and can be restored in
//! turn, and uncommitted changes are swept into a version of their own
//! first.
//!
//! What identifies the project and who may do what is never taken from
//! the old version: its manifest and access statements stay as they are
//! now, so restoring a version from before a revoke does not bring the
//! revoked member back.

use git2::build::CheckoutBuilder;
use git2::{Oid, Repository, Tree};
use tandem_protocol::activity::{Details, FileAction, FileChange, Kind};
use tandem_protocol::api::RestoreResult;

use super::error::VersionError;
use super::pick;
use super::tree::Snapshot;
use crate::data::fetch::FetchScope;
use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::projects::repo::BRANCH;
use crate::service::{Service, lock};

/// Entries of `.tandem/` that always stay as they are now: the manifest
/// (`projects::project::MANIFEST`) and the access statements
/// (`access::store::PROJECT_ACCESS_DIR`).
const KEPT: [&str; 2] = ["project.toml", "access"];

impl Service {
    /// Makes the version `version` names the project's current one, as a
    /// new commit (see the module notes).
    pub fn restore_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<RestoreResult, ServiceError> {
        if self.is_running(name) {
            return Err(VersionError::ContainerRunning {
                project: name.to_owned(),
            }
            .into());
        }
        let handle = self.project(name)?;
        let mut project = lock(&handle);
        if let Some(why) = self.replica_refusal(&project) {
            return Err(ServiceError::BadRequest(why));
        }
        if crate::sync::git::merge::pending_conflict(&project.repo).is_some() {
            return Err(VersionError::ConflictPending {
                project: name.to_owned(),
            }
            .into());
        }
        // Named before anything moves, so a typo changes nothing.
        let target = pick::resolve(&project.repo, &project.feed, name, version)?;
        self.sweep_locked(&mut project)?;
        let repo = crate::projects::repo::open(&project.dir)?;
        let head = pick::head(&repo).ok_or_else(|| VersionError::Empty {
            project: name.to_owned(),
        })?;
        let snapshot = Snapshot::open(&repo, target)?;
        let restored = snapshot.summary(Some(head));
        let what = format!(
            "Restored the version of {} (commit {})",
            pick::format_time(snapshot.time_ms()),
            restored.short
        );
        let head_commit = repo
            .find_commit(head)
            .map_err(VersionError::git("reading the current version"))?;
        let head_tree = head_commit
            .tree()
            .map_err(VersionError::git("reading the current version"))?;
        let tree = restored_tree(&repo, snapshot.tree(), &head_tree)?;
        if tree.id() == head_tree.id() {
            return Ok(RestoreResult {
                restored,
                commit: None,
                entry: None,
                changed: 0,
                missing: vec![],
                message: format!(
                    "{name} already is the version of {}; nothing to restore",
                    pick::format_time(snapshot.time_ms())
                ),
            });
        }
        if let Some(links) = crate::sync::git::incoming_links(&repo, Some(&head_tree), &tree)
            .map_err(VersionError::git("checking the version's files"))?
        {
            return Err(ServiceError::BadRequest(format!(
                "that version holds links, which Tandem never checks out: {links}"
            )));
        }
        let changes = user_changes(&repo, &head_tree, &tree)?;
        let message = format!(
            "[tandem:{}] {what}\n\nRestored-From: {}\n{}",
            Kind::Milestone,
            snapshot.oid(),
            self.trailer()
        );
        let author = self.signature()?;
        let commit = repo
            .commit(None, &author, &author, &message, &tree, &[&head_commit])
            .map_err(VersionError::git("recording the restore"))?;
        advance(&repo, &project, commit)?;
        drop(snapshot);
        // Large files: what the store holds is written now; the rest is
        // fetched from peers by the caller.
        let (needed, _, refused) = self.materialise(&mut project, FetchScope::Requested, &[])?;
        let mut missing: Vec<String> = needed.iter().map(|n| n.file.to_string()).collect();
        missing.extend(refused.into_iter().map(|r| r.path));
        let entry = self.append(
            &mut project,
            Kind::Milestone,
            what.clone(),
            Some(commit.to_string()),
            Details {
                files: changes.clone(),
                ..Details::default()
            },
            vec![],
        )?;
        Ok(RestoreResult {
            restored,
            commit: Some(commit.to_string()),
            entry: Some(entry),
            changed: changes.len(),
            message: format!(
                "{what}: {} file(s) changed; the versions after it stay in the history",
                changes.len()
            ),
            missing,
        })
    }

    /// Restores, then fetches from peers the large files of that version
    /// the store lacked; what still cannot be had stays in `missing`.
    pub async fn restore_and_fetch(
        self: &std::sync::Arc<Self>,
        name: &str,
        version: &str,
    ) -> Result<RestoreResult, ServiceError> {
        let (n, v) = (name.to_owned(), version.to_owned());
        let mut result = self.blocking(move |s| s.restore_version(&n, &v)).await?;
        if result.missing.is_empty() {
            return Ok(result);
        }
        match self
            .fetch_data(name, result.missing.clone(), FetchScope::Requested)
            .await
        {
            Ok(fetched) => {
                result.missing = fetched.failed.into_iter().map(|f| f.path).collect();
            }
            Err(e) => {
                tracing::info!(project = %name, error = %e, "restored large files not fetched yet")
            }
        }
        Ok(result)
    }
}

/// The version's tree with `.tandem/project.toml` and `.tandem/access`
/// as they are now.
fn restored_tree<'r>(
    repo: &'r Repository,
    version: &Tree<'r>,
    now: &Tree<'r>,
) -> Result<Tree<'r>, VersionError> {
    let git = VersionError::git("composing the restored version");
    let subtree = |tree: &Tree<'r>| -> Option<Tree<'r>> {
        let entry = tree.get_name(".tandem")?;
        repo.find_tree(entry.id()).ok()
    };
    let (old, current) = (subtree(version), subtree(now));
    let mut tandem = repo.treebuilder(old.as_ref()).map_err(git)?;
    for name in KEPT {
        match current.as_ref().and_then(|t| t.get_name(name)) {
            Some(entry) => {
                tandem
                    .insert(name, entry.id(), entry.filemode())
                    .map_err(VersionError::git("composing the restored version"))?;
            }
            None => {
                if tandem.get(name).ok().flatten().is_some() {
                    tandem
                        .remove(name)
                        .map_err(VersionError::git("composing the restored version"))?;
                }
            }
        }
    }
    let tandem = tandem
        .write()
        .map_err(VersionError::git("composing the restored version"))?;
    let mut root = repo
        .treebuilder(Some(version))
        .map_err(VersionError::git("composing the restored version"))?;
    root.insert(".tandem", tandem, 0o040000)
        .map_err(VersionError::git("composing the restored version"))?;
    let oid = root
        .write()
        .map_err(VersionError::git("composing the restored version"))?;
    repo.find_tree(oid)
        .map_err(VersionError::git("composing the restored version"))
}

/// The files a restore changes, by their own paths (a large file's
/// pointer counts as the file).
fn user_changes(
    repo: &Repository,
    from: &Tree<'_>,
    to: &Tree<'_>,
) -> Result<Vec<FileChange>, VersionError> {
    let diff = repo
        .diff_tree_to_tree(Some(from), Some(to), None)
        .map_err(VersionError::git("comparing the versions"))?;
    let changes = diff
        .deltas()
        .filter_map(|delta| {
            let path = delta
                .new_file()
                .path()
                .or(delta.old_file().path())?
                .to_str()?
                .to_owned();
            let action = match delta.status() {
                git2::Delta::Added => FileAction::Added,
                git2::Delta::Deleted => FileAction::Deleted,
                _ => FileAction::Modified,
            };
            Some(FileChange { path, action })
        })
        .collect();
    Ok(crate::projects::sweep::as_user_files(changes))
}

/// Checks the commit's tree out safely (a file changed since the sweep
/// stops it before anything is written), then moves the branch.
fn advance(repo: &Repository, project: &Project, commit: Oid) -> Result<(), VersionError> {
    let object = repo
        .find_object(commit, None)
        .map_err(VersionError::git("reading the restored version"))?;
    repo.checkout_tree(&object, Some(CheckoutBuilder::new().safe()))
        .map_err(|e| VersionError::ChangedMeanwhile {
            project: project.name.to_string(),
            message: e.message().to_owned(),
        })?;
    repo.reference(
        &format!("refs/heads/{BRANCH}"),
        commit,
        true,
        "tandem restore",
    )
    .map_err(VersionError::git(
        "moving the branch to the restored version",
    ))?;
    Ok(())
}
