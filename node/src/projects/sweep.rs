//! Recording what changed in a project's folder: a sweep commits it (large
//! files moved to the blob store first) with one entry per kind of change,
//! and `add` copies files in from outside, every source checked first.

use std::fs;
use std::path::PathBuf;

use tandem_protocol::activity::{Details, FileChange};
use tandem_protocol::api::{Section, SweepResult};
use tandem_protocol::summary::summarize;

use crate::error::{ServiceError, io_context};
use crate::projects::project::Project;
use crate::projects::repo;
use crate::service::{Service, lock};

impl Service {
    /// Commits whatever changed in the project's folder and records it.
    pub fn sweep(&self, name: &str) -> Result<SweepResult, ServiceError> {
        let project = self.project(name)?;
        let mut project = lock(&project);
        self.sweep_locked(&mut project)
    }

    /// What a sweep would commit now, with large files moved to the blob
    /// store and named by their own paths.
    pub(crate) fn pending_user_changes(
        &self,
        project: &mut Project,
    ) -> Result<Vec<FileChange>, ServiceError> {
        Ok(as_user_files(self.pending_and_refused(project)?.0))
    }

    /// What a sweep would commit now, as Git sees it (pointers by their own
    /// paths), and the paths a sweep leaves out (links, pointers beyond
    /// links), each with why.
    pub(crate) fn pending_and_refused(
        &self,
        project: &mut Project,
    ) -> Result<(Vec<FileChange>, Vec<String>), ServiceError> {
        let prepared = self.prepare_blobs(project)?;
        let changes = match prepared.unchanged {
            Some(unchanged) => unchanged,
            None => repo::pending_changes(&project.repo)?,
        };
        Ok((changes, prepared.refused))
    }

    pub(crate) fn sweep_locked(&self, project: &mut Project) -> Result<SweepResult, ServiceError> {
        // A manifest that names another project is never committed.
        project.enforce_pin()?;
        // A hub records nothing in the reader's copies it keeps (hub::replica).
        if let Some(why) = self.replica_refusal(project) {
            return Ok(SweepResult {
                commit: None,
                entries: vec![],
                refused: vec![why],
            });
        }
        let (changes, refused) = self.pending_and_refused(project)?;
        if changes.is_empty() {
            return Ok(SweepResult {
                commit: None,
                entries: vec![],
                refused,
            });
        }
        let groups = summarize(&as_user_files(changes.clone()));
        let mut message = String::new();
        for group in &groups {
            message.push_str(&format!("[tandem:{}] {}\n", group.kind, group.message));
        }
        message.push('\n');
        message.push_str(&self.trailer());
        let Some(commit) =
            repo::commit_changes(&project.repo, &self.signature()?, &message, &changes)?
        else {
            return Ok(SweepResult {
                commit: None,
                entries: vec![],
                refused,
            });
        };
        let mut entries = Vec::new();
        for group in groups {
            let details = Details {
                files: group.files,
                ..Details::default()
            };
            entries.push(self.append(
                project,
                group.kind,
                group.message,
                Some(commit.to_string()),
                details,
                vec![],
            )?);
        }
        Ok(SweepResult {
            commit: Some(commit.to_string()),
            entries,
            refused,
        })
    }

    /// Copies files or folders into a section, then records them. Every
    /// source is checked before anything is copied, so a typo in the third
    /// path does not leave the first two half-added.
    pub fn add_files(
        &self,
        name: &str,
        section: Section,
        paths: &[String],
    ) -> Result<SweepResult, ServiceError> {
        if paths.is_empty() {
            return Err(ServiceError::BadRequest(
                "name at least one file or folder to add".into(),
            ));
        }
        let project = self.project(name)?;
        let mut project = lock(&project);
        let plan = plan_copies(&project, section.as_str(), paths)?;
        let root = crate::beneath::Beneath::open(&project.dir)?;
        for (source, dest) in &plan {
            root.copy_tree_in(source, dest)
                .map_err(io_context(format!("copying {}", source.display())))?;
        }
        self.sweep_locked(&mut project)
    }

    /// Sweeps every project: at start-up, changes made while the node was
    /// down are recorded.
    pub fn sweep_all(&self) {
        let Ok(names) = self.project_names() else {
            return;
        };
        for name in names {
            if let Err(e) = self.sweep(name.as_str()) {
                tracing::warn!(project = %name, error = %e, "sweep failed");
            }
        }
    }

    pub(crate) fn sweep_project(&self, project: &mut Project) -> Result<SweepResult, ServiceError> {
        self.sweep_locked(project)
    }
}

/// Checks every source before anything is copied, so a typo in the third
/// path does not leave the first two half-added; returns source → target
/// pairs, targets relative to the project folder, under `folder`.
pub(crate) fn plan_copies(
    project: &Project,
    folder: &str,
    paths: &[String],
) -> Result<Vec<(PathBuf, String)>, ServiceError> {
    {
        let mut plan = Vec::new();
        for raw in paths {
            let source = PathBuf::from(raw);
            let meta = fs::symlink_metadata(&source)
                .map_err(|_| ServiceError::BadRequest(format!("{raw}: no such file or folder")))?;
            if meta.file_type().is_symlink() {
                return Err(ServiceError::BadRequest(format!(
                    "{raw} is a symbolic link; add the file it points to instead"
                )));
            }
            let file_name = source.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                ServiceError::BadRequest(format!("{raw}: cannot tell the file's name"))
            })?;
            if file_name == "untracked" {
                return Err(ServiceError::BadRequest(
                    "a folder named 'untracked' would never be committed; rename it first".into(),
                ));
            }
            let source = source
                .canonicalize()
                .map_err(io_context(format!("resolving {raw}")))?;
            if source.starts_with(&project.dir) {
                return Err(ServiceError::BadRequest(format!(
                    "{raw} is already inside the project; run `tandem sweep` to record changes"
                )));
            }
            let target = tandem_protocol::path::SafePath::parse(&format!("{folder}/{file_name}"))
                .map_err(|e| ServiceError::invalid(raw.as_str(), e))?;
            plan.push((source, target.to_string()));
        }
        Ok(plan)
    }
}

/// A pointer's change is, to the user, a change of the file it stands for.
pub(crate) fn as_user_files(changes: Vec<FileChange>) -> Vec<FileChange> {
    changes
        .into_iter()
        .map(
            |change| match tandem_protocol::blob::file_for_pointer(&change.path) {
                Ok(file) => FileChange {
                    path: file.to_string(),
                    action: change.action,
                },
                Err(_) => change,
            },
        )
        .collect()
}
