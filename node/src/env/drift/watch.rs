//! Checking a followed container for drift: after executed cells (nudged
//! by the cell recorder), and on a timer while JupyterLab has a terminal
//! open, with checks at least [`MIN_GAP`] apart so a burst of cells costs
//! one check, not one each.

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use tandem_protocol::activity::{Details, Kind};
use tandem_protocol::drift::{Drift, Listing, find_drift};
use tokio::sync::Notify;

use super::listing::{self, Checked};
use super::store::DriftStore;
use crate::env::containers::Running;
use crate::env::{docker, jupyter};
use crate::error::ServiceError;
use crate::service::{Service, lock, now_ms};

/// How often a container with a terminal open is checked.
const TERMINAL_POLL: Duration = Duration::from_secs(3);
/// The least time between two checks of one container.
const MIN_GAP: Duration = Duration::from_secs(2);
/// Drift entries one container may add to the feed; past this the drift
/// is still kept and shown, but a container that churns packages cannot
/// flood the project's history.
const MAX_ENTRIES_PER_CONTAINER: usize = 50;
/// Packages named in one entry's message; the rest are in its output.
const NAMED_IN_MESSAGE: usize = 3;

impl Service {
    pub(in crate::env) fn drift_store(&self) -> DriftStore {
        DriftStore::new(self.home().root())
    }

    /// Starts checking a followed container; `nudge` is notified after
    /// each recorded cell.
    pub(in crate::env) fn watch_drift(
        self: &Arc<Self>,
        running: Running,
        nudge: Arc<Notify>,
    ) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move { service.drift_loop(running, nudge).await })
    }

    async fn drift_loop(self: Arc<Self>, running: Running, nudge: Arc<Notify>) {
        let (Ok(docker), Ok(http)) = (docker::connect().await, docker::loopback_http()) else {
            return;
        };
        let (baseline, mut fingerprint) = match self.drift_baseline(&docker, &running).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(project = %running.project_name, error = %e, "no package baseline; drift is not checked");
                self.note_drift_problem(&running, e.to_string());
                return;
            }
        };
        if fingerprint.is_none() {
            // A container found running (or an image listed before): look
            // at once rather than at its next cell.
            nudge.notify_one();
        }
        let mut entries = 0usize;
        loop {
            tokio::select! {
                () = nudge.notified() => {}
                () = tokio::time::sleep(TERMINAL_POLL) => {
                    if !jupyter::terminals_open(&http, &running).await {
                        continue;
                    }
                }
            }
            let checked = listing::list(&docker, &running.container, fingerprint.as_deref()).await;
            {
                let mut checks = lock(&self.env().drift_checks);
                let count = checks.entry(running.project_name.clone()).or_default();
                *count = (count.0 + 1, now_ms());
            }
            match checked {
                Ok(Checked::Same) => {}
                Ok(Checked::Listed {
                    fingerprint: fresh,
                    listing,
                }) => {
                    fingerprint = Some(fresh).filter(|f| !f.is_empty());
                    match self.judge_drift(&running, &baseline, &listing) {
                        Ok(new) if !new.is_empty() && entries < MAX_ENTRIES_PER_CONTAINER => {
                            entries += 1;
                            if let Err(e) = self.record_drift(&running.project_name, new).await {
                                tracing::warn!(project = %running.project_name, error = %e, "could not record drift");
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(project = %running.project_name, error = %e, "could not judge drift")
                        }
                    }
                }
                Err(e) => self.note_drift_problem(&running, e.to_string()),
            }
            tokio::time::sleep(MIN_GAP).await;
        }
    }

    /// What the container's image came with: listed once per image (from
    /// its first container, just started) and kept in the home, so a node
    /// restarted beside a running container still knows what it began
    /// with. Returns the fingerprint too when the listing was taken now.
    async fn drift_baseline(
        &self,
        docker: &Docker,
        running: &Running,
    ) -> Result<(Listing, Option<String>), ServiceError> {
        let store = self.drift_store();
        if let Some(listing) = store.baseline(&running.image)? {
            return Ok((listing, None));
        }
        match listing::list(docker, &running.container, None).await? {
            Checked::Listed {
                fingerprint,
                listing,
            } => {
                store.save_baseline(&running.image, &listing)?;
                Ok((listing, Some(fingerprint).filter(|f| !f.is_empty())))
            }
            // Only an empty fingerprint could match, and none was given.
            Checked::Same => Err(crate::env::EnvError::DriftListing {
                container: running.container.clone(),
                reason: "it answered a first listing with \"same\"".into(),
            }
            .into()),
        }
    }

    /// Compares a listing with the baseline and the project's spec as it
    /// is now, and keeps the result; returns what is new.
    fn judge_drift(
        &self,
        running: &Running,
        baseline: &Listing,
        listing: &Listing,
    ) -> Result<Vec<Drift>, ServiceError> {
        let (spec, project_id, _) = self.spec_of(&running.project_name)?;
        let found = find_drift(baseline, listing, &spec);
        let store = self.drift_store();
        let _one_at_a_time = lock(&self.env().drift_lock);
        let mut record = store.load(&project_id)?;
        let new = record.take_check(found, &running.container, now_ms());
        if listing.truncated {
            record.problem = Some(format!(
                "the container listed more packages than tandem reads ({} at most); drift was not judged",
                tandem_protocol::drift::MAX_PACKAGES
            ));
        }
        store.save(&project_id, &record)?;
        Ok(new)
    }

    fn note_drift_problem(&self, running: &Running, problem: String) {
        let store = self.drift_store();
        let _one_at_a_time = lock(&self.env().drift_lock);
        let Ok(mut record) = store.load(&running.project_id) else {
            return;
        };
        record.problem = Some(problem);
        record.checked_ms = Some(now_ms());
        if let Err(e) = store.save(&running.project_id, &record) {
            tracing::warn!(error = %e, "could not keep the drift problem");
        }
    }

    /// One `environment` entry for what a check found new.
    async fn record_drift(
        self: &Arc<Self>,
        name: &str,
        new: Vec<Drift>,
    ) -> Result<(), ServiceError> {
        let message = match new.as_slice() {
            [one] => format!("drift: {one}"),
            many => {
                let named: Vec<String> = many
                    .iter()
                    .take(NAMED_IN_MESSAGE)
                    .map(|d| {
                        let version = d.found.as_deref().or(d.expected.as_deref()).unwrap_or("");
                        format!("{} {} {}", d.name, version, d.kind().as_str())
                    })
                    .collect();
                let more = many.len().saturating_sub(NAMED_IN_MESSAGE);
                let tail = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!(
                    "drift: {} packages in the running container differ from the project's environment: {}{tail}",
                    many.len(),
                    named.join(", ")
                )
            }
        };
        let mut output = String::new();
        for line in new.iter().map(|d| format!("{d}\n")) {
            if output.len() + line.len() > jupyter::OUTPUT_CAP {
                break;
            }
            output.push_str(&line);
        }
        self.with_project(name, move |service, project| {
            service.append(
                project,
                Kind::Environment,
                message,
                None,
                Details {
                    output: Some(output),
                    ..Details::default()
                },
                vec![],
            )?;
            Ok(())
        })
        .await
    }
}
