//! What the node remembers of drift, in its home (never in the project,
//! which peers and the container write): per project, the drift seen and
//! not yet pinned or ignored, and what was ignored; per image, the
//! packages it came with.
//!
//! Drift outlives its container on purpose: a package installed by hand
//! is gone at the next launch, but the results made with it are not, so
//! the item stays until the user pins or ignores it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tandem_protocol::drift::{Drift, Listing, PackageKey};
use tandem_protocol::env::Manager;

use crate::env::error::EnvError;

/// Items kept per project; a container that churns packages cannot grow
/// the record past this.
pub const MAX_ITEMS: usize = 500;
/// Ignored packages kept per project (the oldest go first).
pub const MAX_IGNORED: usize = 2_000;

/// One drifted package, as first seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub drift: Drift,
    pub seen_ms: i64,
    /// The container it was seen in: a later check of that container that
    /// no longer finds it settles it.
    pub container: String,
}

/// A project's drift record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftRecord {
    #[serde(default)]
    pub items: Vec<Seen>,
    #[serde(default)]
    pub ignored: Vec<Seen>,
    #[serde(default)]
    pub checked_ms: Option<i64>,
    /// Why the last check judged nothing, if it did not.
    #[serde(default)]
    pub problem: Option<String>,
}

impl DriftRecord {
    /// Takes in one check of `container`, judged for the managers in
    /// `judged`: what it no longer shows of those is settled (drift of a
    /// manager whose listing failed is unknown, so it stays), what it
    /// shows and is ignored at that version stays out, the rest is kept
    /// (a change of version counts as new). Returns what is new since the
    /// last check, for the activity feed.
    pub fn take_check(
        &mut self,
        found: Vec<Drift>,
        judged: &BTreeSet<Manager>,
        container: &str,
        now_ms: i64,
    ) -> Vec<Drift> {
        let found_keys: BTreeSet<PackageKey> = found.iter().map(Drift::key).collect();
        self.items.retain(|item| {
            item.container != container
                || !judged.contains(&item.drift.manager)
                || found_keys.contains(&item.drift.key())
        });
        let mut new = Vec::new();
        for drift in found {
            if self.is_ignored(&drift) {
                self.items.retain(|item| item.drift.key() != drift.key());
                continue;
            }
            let full = self.items.len() >= MAX_ITEMS;
            match self
                .items
                .iter_mut()
                .find(|item| item.drift.key() == drift.key())
            {
                Some(item) if item.drift == drift => item.container = container.to_owned(),
                Some(item) => {
                    *item = Seen {
                        drift: drift.clone(),
                        seen_ms: now_ms,
                        container: container.to_owned(),
                    };
                    new.push(drift);
                }
                None if !full => {
                    self.items.push(Seen {
                        drift: drift.clone(),
                        seen_ms: now_ms,
                        container: container.to_owned(),
                    });
                    new.push(drift);
                }
                None => {}
            }
        }
        self.items.sort_by_key(|item| item.drift.key());
        new
    }

    /// Ignored at this very version (another version is drift again).
    fn is_ignored(&self, drift: &Drift) -> bool {
        self.ignored
            .iter()
            .any(|item| item.drift.key() == drift.key() && item.drift.found == drift.found)
    }

    /// Moves the items to the ignored list: exactly these drifts, so one
    /// seen since at another version is not ignored unseen.
    pub fn ignore(&mut self, chosen: &[Drift]) {
        let (ignored, kept): (Vec<Seen>, Vec<Seen>) = std::mem::take(&mut self.items)
            .into_iter()
            .partition(|item| chosen.contains(&item.drift));
        self.items = kept;
        for item in ignored {
            self.ignored
                .retain(|old| old.drift.key() != item.drift.key());
            self.ignored.push(item);
        }
        let excess = self.ignored.len().saturating_sub(MAX_IGNORED);
        self.ignored.drain(..excess);
    }

    /// Forgets exactly these drifts (they were pinned).
    pub fn settle(&mut self, chosen: &[Drift]) {
        self.items.retain(|item| !chosen.contains(&item.drift));
    }
}

/// The drift files of one node.
pub struct DriftStore {
    dir: PathBuf,
}

impl DriftStore {
    pub fn new(home: &Path) -> Self {
        DriftStore {
            dir: home.join("env").join("drift"),
        }
    }

    fn record_path(&self, project_id: &str) -> PathBuf {
        self.dir.join(format!("{project_id}.json"))
    }

    /// Image tags are the node's own (`tandem-env:<hash>`); anything but
    /// letters, digits and `-` becomes `_` all the same.
    fn baseline_path(&self, image: &str) -> PathBuf {
        let name: String = image
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join("images").join(format!("{name}.json"))
    }

    /// The project's record; a damaged one reads as empty (it is the
    /// node's own bookkeeping, and the next check fills it again).
    pub fn load(&self, project_id: &str) -> Result<DriftRecord, EnvError> {
        Ok(self
            .read(&self.record_path(project_id))?
            .unwrap_or_default())
    }

    pub fn save(&self, project_id: &str, record: &DriftRecord) -> Result<(), EnvError> {
        self.write(&self.record_path(project_id), record)
    }

    /// What the image came with, if a container of it was listed before.
    pub fn baseline(&self, image: &str) -> Result<Option<Listing>, EnvError> {
        self.read(&self.baseline_path(image))
    }

    pub fn save_baseline(&self, image: &str, listing: &Listing) -> Result<(), EnvError> {
        self.write(&self.baseline_path(image), listing)
    }

    fn read<T: DeserializeOwned>(&self, path: &Path) -> Result<Option<T>, EnvError> {
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(value) => Ok(Some(value)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable drift file, starting afresh");
                    Ok(None)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(EnvError::DriftStore {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn write<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), EnvError> {
        let error = |source| EnvError::DriftStore {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(error)?;
        }
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| error(e.into()))?;
        crate::fsutil::atomic_write(path, &bytes, Some(0o600)).map_err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_protocol::env::PackageName;

    fn both() -> BTreeSet<Manager> {
        BTreeSet::from([Manager::Pip, Manager::Apt])
    }

    fn drift(name: &str, found: &str) -> Drift {
        Drift {
            manager: Manager::Pip,
            name: PackageName::parse(Manager::Pip, name).expect("name"),
            expected: None,
            found: Some(found.to_owned()),
            pinned: false,
        }
    }

    #[test]
    fn a_check_adds_new_drift_once_and_settles_what_its_container_no_longer_shows() {
        let mut record = DriftRecord::default();
        let new = record.take_check(vec![drift("six", "1.16.0")], &both(), "c1", 1);
        assert_eq!(new.len(), 1);
        // Seen again: nothing new, first sighting kept.
        assert!(
            record
                .take_check(vec![drift("six", "1.16.0")], &both(), "c1", 2)
                .is_empty()
        );
        assert_eq!(record.items[0].seen_ms, 1);
        // Another version: new again.
        assert_eq!(
            record
                .take_check(vec![drift("six", "1.17.0")], &both(), "c1", 3)
                .len(),
            1
        );
        // Another container without it leaves it; its own container settles it.
        record.take_check(vec![], &both(), "c2", 4);
        assert_eq!(record.items.len(), 1);
        // A check whose pip listing failed settles nothing of pip.
        record.take_check(vec![], &BTreeSet::from([Manager::Apt]), "c1", 5);
        assert_eq!(record.items.len(), 1);
        record.take_check(vec![], &both(), "c1", 6);
        assert!(record.items.is_empty());
    }

    #[test]
    fn ignored_drift_stays_out_until_its_version_changes() {
        let mut record = DriftRecord::default();
        record.take_check(vec![drift("six", "1.16.0")], &both(), "c1", 1);
        // Ignoring what was shown leaves a version seen since alone.
        record.ignore(&[drift("six", "1.15.0")]);
        assert_eq!(record.items.len(), 1);
        record.ignore(&[drift("six", "1.16.0")]);
        assert!(record.items.is_empty());
        assert!(
            record
                .take_check(vec![drift("six", "1.16.0")], &both(), "c1", 2)
                .is_empty()
        );
        assert!(record.items.is_empty());
        assert_eq!(
            record
                .take_check(vec![drift("six", "1.17.0")], &both(), "c1", 3)
                .len(),
            1
        );
    }

    #[test]
    fn a_flood_of_drift_is_kept_to_a_bound() {
        let mut record = DriftRecord::default();
        let flood: Vec<Drift> = (0..MAX_ITEMS + 50)
            .map(|i| drift(&format!("p{i}"), "1.0"))
            .collect();
        record.take_check(flood, &both(), "c1", 1);
        assert_eq!(record.items.len(), MAX_ITEMS);
    }

    #[test]
    fn the_record_and_baselines_live_in_the_home_and_survive_damage() {
        let home = tempfile::tempdir().expect("home");
        let store = DriftStore::new(home.path());
        let mut record = DriftRecord::default();
        record.take_check(vec![drift("six", "1.16.0")], &both(), "c1", 1);
        store.save("tpone", &record).expect("save");
        assert_eq!(store.load("tpone").expect("load"), record);
        assert_eq!(store.load("tptwo").expect("load"), DriftRecord::default());
        std::fs::write(store.record_path("tpone"), b"{not json").expect("damage");
        assert_eq!(store.load("tpone").expect("load"), DriftRecord::default());
        let path = store.baseline_path("tandem-env:../../x");
        assert_eq!(path.parent(), Some(store.dir.join("images").as_path()));
        assert!(store.baseline("tandem-env:abc").expect("none").is_none());
    }
}
