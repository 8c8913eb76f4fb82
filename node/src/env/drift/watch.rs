//! Checking a followed container for drift: after executed cells (nudged
//! by the cell recorder), and on a timer while JupyterLab has a terminal
//! open, with checks at least [`MIN_GAP`] apart so a burst of cells costs
//! one check, not one each.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use tandem_protocol::activity::{Details, Kind};
use tandem_protocol::drift::{Drift, Listing, find_drift, judged_managers};
use tandem_protocol::env::Manager;
use tokio::sync::Notify;

use super::listing::{self, Checked};
use super::store::DriftStore;
use crate::env::containers::Running;
use crate::env::error::EnvError;
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
/// Why some drift was not judged, or `None` when all of it was.
fn unjudged(baseline: &Listing, listing: &Listing, judged: &BTreeSet<Manager>) -> Option<String> {
    if baseline.truncated || listing.truncated {
        return Some(format!(
            "the container listed more packages than tandem reads ({} at most); drift was not judged",
            tandem_protocol::drift::MAX_PACKAGES
        ));
    }
    let missing: Vec<&str> = [Manager::Pip, Manager::Apt]
        .into_iter()
        .filter(|m| !judged.contains(m))
        .map(Manager::as_str)
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the container's {} packages could not be listed; their drift was not judged",
            missing.join(" and ")
        )
    })
}

/// Packages named in one entry's message; the rest are in its output.
const NAMED_IN_MESSAGE: usize = 3;

impl Service {
    pub(in crate::env) fn drift_store(&self) -> DriftStore {
        DriftStore::new(self.home().root())
    }

    /// Starts checking a followed container; `nudge` is notified after
    /// each recorded cell. `fresh`: it was launched just now, so what it
    /// has is what its image came with.
    pub(in crate::env) fn watch_drift(
        self: &Arc<Self>,
        running: Running,
        fresh: bool,
        nudge: Arc<Notify>,
    ) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move { service.drift_loop(running, fresh, nudge).await })
    }

    async fn drift_loop(self: Arc<Self>, running: Running, fresh: bool, nudge: Arc<Notify>) {
        let (Ok(docker), Ok(http)) = (docker::connect().await, docker::loopback_http()) else {
            return;
        };
        let mut baseline: Option<Arc<Listing>> = None;
        // The last listing and its fingerprint: a check that finds nothing
        // changed in the container still judges it against today's spec.
        let mut last: Option<(String, Arc<Listing>)> = None;
        let mut entries = 0usize;
        // The first pass at once: the baseline, then a first judgement.
        nudge.notify_one();
        loop {
            tokio::select! {
                () = nudge.notified() => {}
                () = tokio::time::sleep(TERMINAL_POLL) => {
                    if !jupyter::terminals_open(&http, &running).await {
                        continue;
                    }
                }
            }
            if baseline.is_none() {
                match self.drift_baseline(&docker, &running, fresh).await {
                    Ok(Some((listing, first))) => {
                        last = first;
                        baseline = Some(listing);
                    }
                    Ok(None) => {
                        self.note_drift_problem(&running, "this JupyterLab was started before the node kept what its image came with; drift is checked from its next launch".into()).await;
                        return;
                    }
                    Err(e) => {
                        self.note_drift_problem(&running, e.to_string()).await;
                        tokio::time::sleep(MIN_GAP).await;
                        continue;
                    }
                }
            }
            let Some(baseline) = baseline.clone() else {
                continue;
            };
            let previous = last.as_ref().map(|(fingerprint, _)| fingerprint.as_str());
            match listing::list(&docker, &running.container, previous).await {
                Ok(Checked::Same) => {}
                Ok(Checked::Listed {
                    fingerprint,
                    listing,
                }) => last = Some((fingerprint, Arc::new(listing))),
                Err(e) => {
                    self.note_drift_problem(&running, e.to_string()).await;
                    tokio::time::sleep(MIN_GAP).await;
                    continue;
                }
            }
            {
                let mut checks = lock(&self.env().drift_checks);
                let count = checks.entry(running.project_name.clone()).or_default();
                *count = (count.0 + 1, now_ms());
            }
            let Some((_, listing)) = &last else {
                continue;
            };
            let judged = {
                let (running, listing) = (running.clone(), listing.clone());
                self.blocking(move |service| service.judge_drift(&running, &baseline, &listing))
                    .await
            };
            match judged {
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
            tokio::time::sleep(MIN_GAP).await;
        }
    }

    /// What the container's image came with, kept in the home per image.
    /// Listed from a container just launched (no code has run in it yet),
    /// and kept only when whole; a container found running with no
    /// baseline kept is not judged (`None`), since what it has now may
    /// already be drift. Returns the listing also as the first check's
    /// when it was taken now.
    #[allow(clippy::type_complexity)]
    async fn drift_baseline(
        &self,
        docker: &Docker,
        running: &Running,
        fresh: bool,
    ) -> Result<Option<(Arc<Listing>, Option<(String, Arc<Listing>)>)>, ServiceError> {
        let store = self.drift_store();
        if let Some(listing) = store.baseline(&running.image)? {
            return Ok(Some((Arc::new(listing), None)));
        }
        if !fresh {
            return Ok(None);
        }
        match listing::list(docker, &running.container, None).await? {
            Checked::Listed {
                fingerprint,
                listing,
            } => {
                if judged_managers(&listing, &listing)
                    == BTreeSet::from([Manager::Pip, Manager::Apt])
                {
                    store.save_baseline(&running.image, &listing)?;
                }
                let listing = Arc::new(listing);
                Ok(Some((listing.clone(), Some((fingerprint, listing)))))
            }
            // Only an empty fingerprint could match, and none was given.
            Checked::Same => Err(EnvError::DriftListing {
                container: running.container.clone(),
                reason: "it answered a first listing with \"same\"".into(),
            }
            .into()),
        }
    }

    /// Compares a listing with the baseline and the project's spec as it
    /// is now, keeps the result (written only when it changed), and
    /// returns what is new.
    fn judge_drift(
        &self,
        running: &Running,
        baseline: &Listing,
        listing: &Listing,
    ) -> Result<Vec<Drift>, ServiceError> {
        let (spec, project_id, _) = self.spec_of(&running.project_name)?;
        let judged = judged_managers(baseline, listing);
        let found = find_drift(baseline, listing, &spec);
        let store = self.drift_store();
        let _one_at_a_time = lock(&self.env().drift_lock);
        let mut record = store.load(&project_id)?;
        let before = record.clone();
        let new = record.take_check(found, &judged, &running.container, now_ms());
        record.problem = unjudged(baseline, listing, &judged);
        if record.items != before.items || record.problem != before.problem {
            record.checked_ms = Some(now_ms());
            store.save(&project_id, &record)?;
        }
        Ok(new)
    }

    async fn note_drift_problem(self: &Arc<Self>, running: &Running, problem: String) {
        tracing::warn!(project = %running.project_name, problem = %problem, "drift not checked");
        let name = running.project_name.clone();
        let kept = self
            .blocking(move |service| {
                let (_, project_id, _) = service.spec_of(&name)?;
                let store = service.drift_store();
                let _one_at_a_time = lock(&service.env().drift_lock);
                let mut record = store.load(&project_id)?;
                if record.problem.as_deref() != Some(problem.as_str()) {
                    record.problem = Some(problem);
                    record.checked_ms = Some(now_ms());
                    store.save(&project_id, &record)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = kept {
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
