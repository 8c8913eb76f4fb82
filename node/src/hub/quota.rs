//! What a hub keeps of each project's large files, and the limit on it
//! (`--quota`, per project; 0: none).
//!
//! A hub is a shared machine: one project's data set must not crowd out the
//! others. So the hub counts, per project, the bytes of large files it holds
//! for it (current version, linked dataset versions, older versions still
//! held), and its replica fetches only what fits under the quota, in path
//! order, first fit: a file too large to fit is left out with a logged
//! reason, and smaller ones after it may still fit. The accounting is
//! recomputed from the blob store each time (nothing to drift), and
//! content shared by several files counts once.

use std::collections::{BTreeMap, HashSet};

use tandem_protocol::PeerKey;
use tandem_protocol::access::Role;
use tandem_protocol::api::{HubProject, HubView};
use tandem_protocol::blob::BlobHash;
use tandem_protocol::text::byte_size;

use crate::blobs::track::Tracker;
use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::service::{Service, now_ms};

/// One file a project's current version or a linked dataset needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Where it goes in the project (`input/raw.csv`).
    pub path: String,
    pub hash: BlobHash,
    pub size: u64,
    /// Verified bytes of it held already.
    pub present: u64,
}

impl Wanted {
    fn complete(&self) -> bool {
        self.present >= self.size
    }
}

/// What to fetch for a project so that it stays within its quota.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Paths to fetch now.
    pub fetch: Vec<String>,
    /// Paths left out because they would pass the quota.
    pub over_quota: Vec<String>,
    /// Bytes held once the fetches are done.
    pub kept_after: u64,
}

/// Chooses what to fetch: every missing file while `kept + its remaining
/// bytes` fits in `quota` (0: no limit), in the order given, first fit.
/// A file whose content is already chosen or held costs nothing more.
pub fn plan(kept: u64, quota: u64, wanted: &[Wanted]) -> Plan {
    let mut chosen: HashSet<BlobHash> = wanted
        .iter()
        .filter(|w| w.complete())
        .map(|w| w.hash)
        .collect();
    let mut out = Plan {
        kept_after: kept,
        ..Plan::default()
    };
    for want in wanted.iter().filter(|w| !w.complete()) {
        if chosen.contains(&want.hash) {
            out.fetch.push(want.path.clone());
            continue;
        }
        let cost = want.size - want.present;
        let fits = quota == 0 || out.kept_after.saturating_add(cost) <= quota;
        if fits {
            out.kept_after = out.kept_after.saturating_add(cost);
            chosen.insert(want.hash);
            out.fetch.push(want.path.clone());
        } else {
            out.over_quota.push(want.path.clone());
        }
    }
    out
}

/// A project's large files on the hub, as counted for its quota.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// Bytes held for the project: its current files, linked datasets'
    /// files and older versions, each content once.
    pub kept: u64,
    /// What the current version and linked datasets need, in path order.
    pub wanted: Vec<Wanted>,
}

impl Account {
    /// Bytes the current version and linked datasets need in all.
    pub fn wanted_bytes(&self) -> u64 {
        let mut seen = HashSet::new();
        self.wanted
            .iter()
            .filter(|w| seen.insert(w.hash))
            .map(|w| w.size)
            .sum()
    }

    /// Files not complete here.
    pub fn missing(&self) -> usize {
        self.wanted.iter().filter(|w| !w.complete()).count()
    }
}

/// Why a project holds less than it wants, for the log and the Hub page.
pub fn note(account: &Account, quota: u64) -> Option<String> {
    let missing = account.missing();
    if missing == 0 {
        return None;
    }
    let plan = plan(account.kept, quota, &account.wanted);
    if plan.over_quota.is_empty() {
        return Some(format!(
            "{missing} file(s) not here yet: fetched when a member who holds them is online"
        ));
    }
    Some(format!(
        "{} file(s) not kept: they would pass the quota of {} ({} kept)",
        plan.over_quota.len(),
        byte_size(quota),
        byte_size(account.kept)
    ))
}

/// Whether this node, as a hub, keeps `project` as a replica: it holds the
/// reader role there, or held one and was revoked (no role). A project the
/// hub owns or writes to is its operator's own, not a replica.
pub fn is_replica(role: Option<Role>) -> bool {
    matches!(role, Some(Role::Reader) | None)
}

/// Why `GET /api/hub` has nothing to say on a plain node.
pub const NOT_A_HUB: &str =
    "this node is not a hub: start it with `tandem hub` (or `tandem up --hub`)";

impl Service {
    /// The hub's account of itself (`GET /api/hub`, the Hub page, `tandem
    /// du`): who may use it, and what it keeps of each replica against the
    /// quota. A plain node answers "not found".
    pub fn hub_view(&self) -> Result<HubView, ServiceError> {
        let Some(hub) = self.hub() else {
            return Err(ServiceError::NoSuchFile(NOT_A_HUB.into()));
        };
        let mut view = HubView {
            did: self.key().public().to_did(),
            external_address: hub.external.map(|ip| ip.to_string()),
            relay_listen: hub.relay_listen.to_string(),
            blob_relay: self
                .hub_state()
                .and_then(|state| state.blob_relay.get().cloned()),
            open: hub.open,
            allow: hub.allow.iter().map(|k| k.to_did()).collect(),
            quota_bytes: hub.quota_bytes,
            ..HubView::default()
        };
        let me = self.key().public();
        let mut members: HashSet<PeerKey> = HashSet::new();
        for name in self.project_names()? {
            let handle = self.project(name.as_str())?;
            let project = self.lock_project(&handle);
            let role = self.own_role(&project);
            if !is_replica(role) {
                continue;
            }
            let roles = project.access.roles(now_ms());
            if role.is_some() {
                members.extend(roles.members.keys().filter(|k| **k != me).copied());
            }
            let account = self.hub_account(&project)?;
            let over = plan(account.kept, hub.quota_bytes, &account.wanted).over_quota;
            view.projects.push(HubProject {
                name: name.to_string(),
                id: project.id().to_string(),
                owner: project.access.owner().to_did(),
                role,
                kept_bytes: account.kept,
                wanted_bytes: account.wanted_bytes(),
                missing_files: account.missing(),
                over_quota_files: over.len(),
                note: note(&account, hub.quota_bytes),
            });
        }
        view.members = members.len();
        Ok(view)
    }

    /// The hub's role in `project` now.
    pub(crate) fn own_role(&self, project: &Project) -> Option<Role> {
        project.access.role_of(&self.key().public(), now_ms())
    }

    /// What `project`'s large files take here and what it still wants.
    pub(crate) fn hub_account(&self, project: &Project) -> Result<Account, ServiceError> {
        let store = self.blob_store()?;
        let mut wanted: BTreeMap<String, (BlobHash, u64)> = BTreeMap::new();
        for (file, pointer) in Tracker::new(&project.dir).pointers()? {
            wanted.insert(file.to_string(), (pointer.hash, pointer.size));
        }
        for link in crate::data::listings::links(&project.dir)? {
            for file in &link.files {
                wanted.insert(
                    format!("{}/{}", link.folder(), file.path),
                    (file.hash, file.size),
                );
            }
        }
        let mut hashes: BTreeMap<BlobHash, u64> = wanted.values().copied().collect();
        for (hash, size) in self.history_blobs(project).iter() {
            hashes.entry(*hash).or_insert(*size);
        }
        // Only blobs the store keeps count: released ones go at its next
        // collection.
        let tagged: HashSet<BlobHash> = store.kept()?.into_iter().collect();
        let order: Vec<BlobHash> = hashes.keys().copied().collect();
        let mut present: BTreeMap<BlobHash, u64> = BTreeMap::new();
        for (hash, presence) in order.iter().zip(store.presence_many(order.clone())) {
            let bytes = if tagged.contains(hash) {
                presence?.bytes.min(hashes[hash])
            } else {
                0
            };
            present.insert(*hash, bytes);
        }
        Ok(Account {
            kept: present.values().sum(),
            wanted: wanted
                .into_iter()
                .map(|(path, (hash, size))| Wanted {
                    path,
                    hash,
                    size,
                    present: present.get(&hash).copied().unwrap_or(0),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn want(path: &str, seed: u8, size: u64, present: u64) -> Wanted {
        Wanted {
            path: path.into(),
            hash: BlobHash::of(&[seed]),
            size,
            present,
        }
    }

    #[test]
    fn without_a_quota_everything_missing_is_fetched() {
        let wanted = [
            want("input/a", 1, 5 * MIB, 0),
            want("input/b", 2, 7 * MIB, 7 * MIB),
            want("input/c", 3, 9 * MIB, MIB),
        ];
        let plan = plan(8 * MIB, 0, &wanted);
        assert_eq!(plan.fetch, vec!["input/a", "input/c"]);
        assert!(plan.over_quota.is_empty());
        assert_eq!(plan.kept_after, 8 * MIB + 5 * MIB + 8 * MIB);
    }

    #[test]
    fn fetches_stop_at_the_quota_and_smaller_files_after_still_fit() {
        let wanted = [
            want("input/a", 1, 4 * MIB, 0),
            want("input/big", 2, 20 * MIB, 0),
            want("input/c", 3, 5 * MIB, 0),
            want("input/d", 4, 2 * MIB, 0),
        ];
        let plan = plan(0, 10 * MIB, &wanted);
        assert_eq!(plan.fetch, vec!["input/a", "input/c"]);
        assert_eq!(plan.over_quota, vec!["input/big", "input/d"]);
        assert_eq!(plan.kept_after, 9 * MIB);
        assert!(plan.kept_after <= 10 * MIB);
    }

    #[test]
    fn a_file_that_exactly_fills_the_quota_fits_and_one_byte_more_does_not() {
        let exact = [want("input/a", 1, 10 * MIB, 0)];
        assert_eq!(plan(0, 10 * MIB, &exact).fetch, vec!["input/a"]);
        let over = [want("input/a", 1, 10 * MIB + 1, 0)];
        let plan = plan(0, 10 * MIB, &over);
        assert!(plan.fetch.is_empty());
        assert_eq!(plan.over_quota, vec!["input/a"]);
        assert_eq!(plan.kept_after, 0);
    }

    #[test]
    fn bytes_already_kept_count_against_the_quota() {
        // Old versions take 8 MiB: a 3 MiB file no longer fits in 10.
        let wanted = [want("input/a", 1, 3 * MIB, 0)];
        let plan = plan(8 * MIB, 10 * MIB, &wanted);
        assert_eq!(plan.over_quota, vec!["input/a"]);
        // A partly fetched file costs only what is left of it.
        let partial = [want("input/a", 1, 3 * MIB, 2 * MIB)];
        let plan = super::plan(8 * MIB, 10 * MIB, &partial);
        assert_eq!(plan.fetch, vec!["input/a"]);
        assert_eq!(plan.kept_after, 9 * MIB);
    }

    #[test]
    fn the_same_content_under_two_paths_counts_once() {
        let wanted = [
            want("input/a", 1, 6 * MIB, 0),
            want("input/copy-of-a", 1, 6 * MIB, 0),
            want("input/other", 2, 6 * MIB, 0),
        ];
        let plan = plan(0, 10 * MIB, &wanted);
        assert_eq!(plan.fetch, vec!["input/a", "input/copy-of-a"]);
        assert_eq!(plan.over_quota, vec!["input/other"]);
        assert_eq!(plan.kept_after, 6 * MIB);
        let account = Account {
            kept: 0,
            wanted: wanted.to_vec(),
        };
        assert_eq!(account.wanted_bytes(), 12 * MIB);
        assert_eq!(account.missing(), 3);
    }

    #[test]
    fn a_huge_file_cannot_overflow_the_count() {
        let wanted = [want("input/a", 1, u64::MAX, 0), want("input/b", 2, MIB, 0)];
        let plan = plan(u64::MAX - 1, 10 * MIB, &wanted);
        assert!(plan.fetch.is_empty());
        assert_eq!(plan.over_quota.len(), 2);
    }

    #[test]
    fn the_note_says_why_files_are_missing() {
        let held = Account {
            kept: 4 * MIB,
            wanted: vec![want("input/a", 1, 4 * MIB, 4 * MIB)],
        };
        assert_eq!(note(&held, 10 * MIB), None);
        let offline = Account {
            kept: 0,
            wanted: vec![want("input/a", 1, 4 * MIB, 0)],
        };
        let said = note(&offline, 10 * MIB).expect("a note");
        assert!(said.contains("member who holds them is online"), "{said}");
        let over = Account {
            kept: 9 * MIB,
            wanted: vec![want("input/a", 1, 4 * MIB, 0)],
        };
        let said = note(&over, 10 * MIB).expect("a note");
        assert!(said.contains("quota of 10.0 MiB"), "{said}");
    }

    #[test]
    fn only_a_readers_copy_is_a_replica() {
        assert!(is_replica(Some(Role::Reader)));
        assert!(is_replica(None));
        for own in [Role::Writer, Role::Admin, Role::Owner] {
            assert!(!is_replica(Some(own)), "{own}");
        }
    }
}
