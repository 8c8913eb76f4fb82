//! "Restore this version": a branch at the commit an activity entry
//! recorded, so the project as it was can be looked at or brought back
//! without touching the work done since.

use tandem_protocol::api::{ActivityQuery, EntryView, RestoreResult};

use crate::error::ServiceError;
use crate::service::{Service, lock};

impl Service {
    /// The entry with this id, or a clear error.
    pub fn find_entry(&self, name: &str, id: &str) -> Result<EntryView, ServiceError> {
        let all = ActivityQuery {
            limit: Some(usize::MAX),
            ..ActivityQuery::default()
        };
        self.activity(name, &all)?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| ServiceError::BadRequest(format!("no activity entry {id:?} in {name}")))
    }

    /// Makes `restore/<date>-<commit>` at the entry's commit.
    pub fn restore(&self, name: &str, entry_id: &str) -> Result<RestoreResult, ServiceError> {
        let entry = self.find_entry(name, entry_id)?;
        let commit = entry.entry.commit.clone().ok_or_else(|| {
            ServiceError::BadRequest("this entry recorded no version of the files".into())
        })?;
        let handle = self.project(name)?;
        let project = lock(&handle);
        let oid = git2::Oid::from_str(&commit)
            .map_err(|_| ServiceError::BadRequest(format!("{commit:?} is not a commit id")))?;
        let target = project.repo.find_commit(oid).map_err(|_| {
            ServiceError::BadRequest(format!(
                "commit {} is not in this copy of the project yet; sync first",
                &commit[..commit.len().min(8)]
            ))
        })?;
        let when = chrono::DateTime::from_timestamp_millis(entry.entry.time_ms)
            .map(|t| t.format("%Y%m%d-%H%M").to_string())
            .unwrap_or_default();
        let branch = format!("restore/{when}-{}", &commit[..commit.len().min(8)]);
        project
            .repo
            .branch(&branch, &target, true)
            .map_err(|e| ServiceError::failed(format!("cannot make branch {branch}"), e))?;
        Ok(RestoreResult {
            message: format!(
                "The project as it was at \"{}\" is on branch {branch}; your current work is unchanged.",
                entry.entry.message.lines().next().unwrap_or_default()
            ),
            branch,
            commit,
        })
    }
}
