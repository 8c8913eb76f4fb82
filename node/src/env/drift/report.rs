//! Showing drift and acting on the user's word: **Pin it** writes the
//! version the container has into the spec (one file per package, one
//! commit, one entry), **Ignore** keeps it out of the report until its
//! version changes. Nothing is pinned otherwise.

use std::sync::Arc;

use tandem_protocol::api::{DriftChoice, DriftItem, DriftOutcome, DriftReport, DriftRequest};
use tandem_protocol::drift::{Drift, PackageKey};
use tandem_protocol::env::{Manager, PackageName, package_path};

use super::store::{DriftRecord, Seen};
use crate::env::error::EnvError;
use crate::error::ServiceError;
use crate::service::{Service, lock};

fn item_view(seen: &Seen) -> DriftItem {
    let drift = &seen.drift;
    let pin = if drift.pin().is_some() {
        Some("pin".to_owned())
    } else if drift.unpin() {
        Some("unpin".to_owned())
    } else {
        None
    };
    DriftItem {
        manager: drift.manager.to_string(),
        name: drift.name.to_string(),
        kind: drift.kind().as_str().to_owned(),
        expected: drift.expected.clone(),
        found: drift.found.clone(),
        pinned: drift.pinned,
        description: drift.to_string(),
        seen_ms: seen.seen_ms,
        pin,
    }
}

/// Whether `text` (`name` or `manager:name`, either with `==version`)
/// names this package; the version, when given, must then be the one the
/// container has (checked by [`choose`]).
fn names(text: &str, key: &PackageKey) -> bool {
    let text = text.split_once("==").map_or(text, |(name, _)| name);
    let (manager, name) = match text.split_once(':') {
        Some((manager, name)) => match manager.parse::<Manager>() {
            Ok(manager) => (Some(manager), name),
            Err(_) => return false,
        },
        None => (None, text),
    };
    if manager.is_some_and(|m| m != key.0) {
        return false;
    }
    PackageName::parse(key.0, name.trim()).is_ok_and(|name| name == key.1)
}

/// A short list of what was chosen, for messages.
fn listed(items: &[Seen]) -> String {
    items
        .iter()
        .map(|item| {
            let d = &item.drift;
            match d.found.as_deref().or(d.expected.as_deref()) {
                Some(version) => format!("{} {version}", d.name),
                None => d.name.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Service {
    /// The project's drift, as the node last saw it.
    pub fn env_drift(&self, name: &str) -> Result<DriftReport, ServiceError> {
        let (_, project_id, _) = self.spec_of(name)?;
        let record = self.drift_store().load(&project_id)?;
        Ok(self.drift_report(name, &record))
    }

    fn drift_report(&self, name: &str, record: &DriftRecord) -> DriftReport {
        let (checks, last) = lock(&self.env().drift_checks)
            .get(name)
            .copied()
            .unwrap_or_default();
        DriftReport {
            project: name.to_owned(),
            items: record.items.iter().map(item_view).collect(),
            ignored: record.ignored.iter().map(item_view).collect(),
            watching: self.is_running(name),
            checked_ms: record.checked_ms.max((checks > 0).then_some(last)),
            problem: record.problem.clone(),
            checks,
        }
    }

    /// Pins or ignores drifted packages, named or all.
    pub async fn env_drift_choose(
        self: &Arc<Self>,
        name: &str,
        request: DriftRequest,
    ) -> Result<DriftOutcome, ServiceError> {
        let (_, project_id, _) = self.spec_of(name)?;
        let store = self.drift_store();
        let record = store.load(&project_id)?;
        let mut chosen = choose(name, &record, &request)?;
        if request.all && request.choice == DriftChoice::Pin {
            // "Pin all": what has a version to pin (or a pin to take out).
            chosen.retain(|item| item.drift.pin().is_some() || item.drift.unpin());
            if chosen.is_empty() {
                return Err(EnvError::NothingToPin(format!(
                    "nothing drifted in {name} has a version to pin: ignore it, or launch again"
                ))
                .into());
            }
        }
        let drifts: Vec<Drift> = chosen.iter().map(|item| item.drift.clone()).collect();
        let (message, commit) = match request.choice {
            DriftChoice::Ignore => (
                format!("Ignored drift of {} in {name}", listed(&chosen)),
                None,
            ),
            DriftChoice::Pin => {
                let message = format!("Pinned from the running container: {}", listed(&chosen));
                let writes = pin_writes(&chosen)?;
                let commit = {
                    let (name, message) = (name.to_owned(), message.clone());
                    self.blocking(move |service| service.commit_env(&name, writes, &message))
                        .await?
                };
                (message, commit)
            }
        };
        let _one_at_a_time = lock(&self.env().drift_lock);
        let mut record = store.load(&project_id)?;
        match request.choice {
            DriftChoice::Ignore => record.ignore(&drifts),
            DriftChoice::Pin => record.settle(&drifts),
        }
        store.save(&project_id, &record)?;
        Ok(DriftOutcome {
            message,
            commit,
            report: self.drift_report(name, &record),
        })
    }
}

/// The items a request names (every one for `all`); naming one that has
/// not drifted is refused, so a typo is not a silent no-op, and so is
/// naming a version other than the one drifted now (it changed since it
/// was shown: the user's word was for that version).
fn choose(
    name: &str,
    record: &DriftRecord,
    request: &DriftRequest,
) -> Result<Vec<Seen>, ServiceError> {
    if record.items.is_empty() {
        return Err(EnvError::NoDrift(format!(
            "nothing has drifted in {name}'s running container (see `tandem env drift {name}`)"
        ))
        .into());
    }
    if request.all {
        return Ok(record.items.clone());
    }
    if request.packages.is_empty() {
        return Err(ServiceError::BadRequest(
            "name the drifted packages, or choose all of them".into(),
        ));
    }
    let mut chosen: Vec<Seen> = Vec::new();
    for text in &request.packages {
        let found: Vec<&Seen> = record
            .items
            .iter()
            .filter(|item| names(text, &item.drift.key()))
            .collect();
        if found.is_empty() {
            let drifted: Vec<String> = record
                .items
                .iter()
                .map(|i| i.drift.name.to_string())
                .collect();
            return Err(EnvError::NoDrift(format!(
                "{text:?} has not drifted in {name}; what has: {}",
                drifted.join(", ")
            ))
            .into());
        }
        if let Some((_, shown)) = text.split_once("==") {
            for item in &found {
                let now = item.drift.found.as_deref().unwrap_or("(removed)");
                if now != shown.trim() {
                    return Err(EnvError::NothingToPin(format!(
                        "{} is now {now} in the running container, not {shown} as shown; look again (`tandem env drift {name}`)",
                        item.drift.name
                    ))
                    .into());
                }
            }
        }
        for item in found {
            if !chosen.iter().any(|c| c.drift.key() == item.drift.key()) {
                chosen.push(item.clone());
            }
        }
    }
    Ok(chosen)
}

/// The spec files that make the environment match the container.
fn pin_writes(chosen: &[Seen]) -> Result<Vec<(String, Option<String>)>, EnvError> {
    // Every item here was checked against what the user named.
    let mut writes = Vec::new();
    let mut refused: Vec<&Drift> = Vec::new();
    for item in chosen {
        if let Some(package) = item.drift.pin() {
            writes.push((package.path(), Some(package.to_toml())));
        } else if item.drift.unpin() {
            writes.push((package_path(item.drift.manager, &item.drift.name), None));
        } else {
            refused.push(&item.drift);
        }
    }
    if !refused.is_empty() {
        let names: Vec<String> = refused.iter().map(|d| d.name.to_string()).collect();
        return Err(EnvError::NothingToPin(format!(
            "{} came with the environment's image and {} removed in the running container: \
             there is no version to pin. Ignore it, or launch again to get it back",
            names.join(", "),
            if names.len() == 1 { "was" } else { "were" }
        )));
    }
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(manager: Manager, name: &str) -> PackageKey {
        (manager, PackageName::parse(manager, name).expect("name"))
    }

    fn record_with(name: &str, found: &str) -> DriftRecord {
        let mut record = DriftRecord::default();
        record.items.push(Seen {
            drift: Drift {
                manager: Manager::Pip,
                name: PackageName::parse(Manager::Pip, name).expect("name"),
                expected: None,
                found: Some(found.to_owned()),
                pinned: false,
            },
            seen_ms: 1,
            container: "c1".into(),
        });
        record
    }

    fn pin(packages: &[&str]) -> DriftRequest {
        DriftRequest {
            choice: DriftChoice::Pin,
            packages: packages.iter().map(|p| p.to_string()).collect(),
            all: false,
        }
    }

    #[test]
    fn a_press_acts_only_on_the_version_it_was_shown() {
        let record = record_with("six", "1.17.0");
        // The page showed 1.16.0; the container has moved on since.
        let refused = choose("p", &record, &pin(&["pip:six==1.16.0"])).expect_err("stale");
        assert!(refused.to_string().contains("is now 1.17.0"), "{refused}");
        let chosen = choose("p", &record, &pin(&["pip:six==1.17.0"])).expect("as shown");
        assert_eq!(chosen.len(), 1);
        let typo = choose("p", &record, &pin(&["sx"])).expect_err("not drifted");
        assert!(typo.to_string().contains("has not drifted"), "{typo}");
        let none = choose("p", &DriftRecord::default(), &pin(&["six"])).expect_err("nothing");
        assert!(none.to_string().contains("nothing has drifted"), "{none}");
        assert!(choose("p", &record, &pin(&[])).is_err(), "nothing named");
    }

    #[test]
    fn packages_are_named_bare_or_with_their_manager_and_normalised() {
        assert!(names("six", &key(Manager::Pip, "six")));
        assert!(names("Scikit_Learn", &key(Manager::Pip, "scikit-learn")));
        assert!(names("pip:six", &key(Manager::Pip, "six")));
        assert!(names("pip:six==1.16.0", &key(Manager::Pip, "six")));
        assert!(!names("apt:six", &key(Manager::Pip, "six")));
        assert!(names("apt:curl", &key(Manager::Apt, "curl")));
        assert!(!names("npm:six", &key(Manager::Pip, "six")));
        assert!(!names("../six", &key(Manager::Pip, "six")));
        assert!(!names("", &key(Manager::Pip, "six")));
    }
}
