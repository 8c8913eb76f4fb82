//! The hub's always-on replica: a copy of every project whose owner or an
//! admin granted this hub the reader role (`tandem share NAME HUB_KEY
//! --role reader`), kept up to date so that members can fetch from it when
//! every other member is offline.
//!
//! - Only by explicit grant. A project is cloned only when a connected
//!   member offers it with the reader role for this node, and kept only if
//!   the access view that came with its history says so too (a copy that
//!   says otherwise is removed at once). Public projects (readable without
//!   a grant) and projects where the hub was made writer or admin are not
//!   kept: a hub holds nothing it was not plainly given, and never more
//!   than the right to read.
//! - Git history, activity and access statements are kept up to date by
//!   automatic sync, as on any node. Replicas are cloned "on demand" (as
//!   `tandem clone --no-data`), so a sync's own fetch brings only new
//!   versions of files already kept; this task fetches the rest after each
//!   change of head, within the per-project quota ([`super::quota`]).
//! - It is a reader: it never records a change ([`Service::replica_refusal`]
//!   makes a sweep a no-op) and cannot grant (sharing needs admin). What
//!   it serves, every receiver verifies as from any peer.
//!
//! The task looks at who is connected every [`LOOK_EVERY`]: a peer that
//! was not connected before starts a full round (new grants are cloned,
//! every replica's missing files fetched), as does [`ROUND_EVERY`] passing
//! or a member announcing a project not held here yet (a grant to the hub
//! is announced to it like any change: [`Service::hub_heard_of`]); in
//! between, only replicas whose head moved are looked at. Wake-ups are
//! coalesced and rounds are at least [`LOOK_EVERY`] apart, so a peer
//! announcing in a loop costs one round every two seconds at most.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_protocol::access::Role;
use tandem_protocol::api::PeerOffer;
use tandem_protocol::text::byte_size;
use tandem_protocol::{PeerKey, ProjectId, ProjectName};

use crate::data::materialise::FetchScope;
use crate::error::ServiceError;
use crate::hub::quota;
use crate::projects::project::Project;
use crate::service::Service;

/// How often the task looks at who is connected and whose head moved.
pub const LOOK_EVERY: Duration = Duration::from_secs(2);
/// How often every peer is asked for new grants and every replica's
/// missing files are fetched, even if nothing seems to have changed.
pub const ROUND_EVERY: Duration = Duration::from_secs(30);

/// Rings when a connected peer announces a project not held here: worth
/// a look at what peers offer now. One per process; the task coalesces.
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Starts the replica task if this node runs as a hub (a plain node keeps
/// nothing it was not asked to clone). Call once the network and the blob
/// endpoint are up.
pub fn start(service: Arc<Service>) {
    if service.hub().is_none() {
        return;
    }
    tokio::spawn(run(service));
}

/// What the task remembers between looks.
#[derive(Default)]
struct Watch {
    connected: HashSet<PeerKey>,
    /// Head of each replica when its files were last looked at.
    heads: HashMap<String, Option<String>>,
    /// Files left out for the quota, per replica, as last logged.
    over_quota: HashMap<String, usize>,
}

async fn run(service: Arc<Service>) {
    let mut watch = Watch::default();
    let mut next_round = Instant::now();
    let mut woken = false;
    loop {
        let connected: HashSet<PeerKey> = match service.net() {
            Ok(net) => net.connected().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        }
        .into_iter()
        .collect();
        let newcomer = connected.iter().any(|p| !watch.connected.contains(p));
        watch.connected = connected;
        let full = newcomer || woken || Instant::now() >= next_round;
        if full {
            next_round = Instant::now() + ROUND_EVERY;
        }
        if !watch.connected.is_empty() {
            if full {
                adopt(&service).await;
            }
            keep_all(&service, &mut watch, full).await;
        }
        tokio::time::sleep(LOOK_EVERY).await;
        // A wake-up that came meanwhile is kept as a permit: seen here.
        woken = tokio::time::timeout(Duration::ZERO, WAKE.notified())
            .await
            .is_ok();
    }
}

/// What one look for new grants did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Local names of the projects cloned.
    pub cloned: Vec<String>,
    /// Projects offered but not kept, with why.
    pub declined: Vec<(ProjectId, String)>,
}

/// Clones every project a connected peer offers with the reader role for
/// this node and that is not here yet.
pub async fn adopt(service: &Arc<Service>) -> Adopted {
    let mut done = Adopted::default();
    let offers = match service.offers().await {
        Ok(offers) => offers,
        Err(e) => {
            tracing::debug!(error = %e, "hub: offers not gathered");
            return done;
        }
    };
    let mut seen: HashSet<ProjectId> = HashSet::new();
    for offer in offers {
        let id = offer.offer.project;
        if offer.have_locally || !seen.insert(id) {
            continue;
        }
        if let Some(why) = declined(&offer) {
            // Said once per look at most, and only at debug level: a
            // public project is offered to everyone, always.
            tracing::debug!(project = %id, "hub: not kept: {why}");
            done.declined.push((id, why));
            continue;
        }
        match clone_replica(service, &offer).await {
            Ok(name) => done.cloned.push(name),
            Err(e) => {
                tracing::warn!(project = %id, error = %e, "hub: the copy was not made");
                done.declined.push((id, e.to_string()));
            }
        }
    }
    done
}

/// Why an offer is not taken up, if it is not: only the reader role,
/// granted to this node, is a request to keep a copy.
fn declined(offer: &PeerOffer) -> Option<String> {
    match offer.offer.role {
        Some(Role::Reader) => None,
        Some(role) => Some(format!(
            "this hub was made {role}; a hub keeps only projects it is granted the reader role on"
        )),
        None => Some("public, but not granted to this hub".into()),
    }
}

/// Clones one offered project and checks, in the access view that came
/// with it, that this node holds exactly the reader role; removes the copy
/// otherwise.
async fn clone_replica(service: &Arc<Service>, offer: &PeerOffer) -> Result<String, ServiceError> {
    let id = offer.offer.project;
    let owned = offer.offer.name.clone();
    let name = service
        .blocking(move |service| Ok(free_name(service, &owned, &id)))
        .await?;
    let summary = service.clone_project(id, Some(name), true).await?;
    let name = summary.name;
    let role = service
        .with_project(&name, |service, project| Ok(service.own_role(project)))
        .await?;
    if role != Some(Role::Reader) {
        let held = role.map_or_else(|| "no role".to_owned(), |r| r.to_string());
        let gone = name.clone();
        service
            .blocking(move |service| service.delete_project(&gone))
            .await?;
        return Err(ServiceError::BadRequest(format!(
            "the history says this hub holds {held} in {name}, not the reader role: the copy was removed"
        )));
    }
    tracing::info!(project = %name, id = %id, from = %offer.peer, "hub: keeping a copy (granted the reader role)");
    Ok(name)
}

/// A local name for a copy: the project's own if it is a valid name and
/// free here, else the same with the start of its id appended (two owners
/// may well both call a project "survey").
fn free_name(service: &Service, offered: &str, id: &ProjectId) -> String {
    let short: String = id.to_string().chars().take(12).collect();
    let valid = |n: &str| n.parse::<ProjectName>().ok();
    let taken = |n: &ProjectName| service.project_dir(n).exists();
    if let Some(name) = valid(offered).filter(|n| !taken(n)) {
        return name.to_string();
    }
    let base: String = offered.chars().take(40).collect();
    valid(&format!("{base}-{short}"))
        .filter(|n| !taken(n))
        .map(|n| n.to_string())
        .unwrap_or_else(|| format!("project-{short}"))
}

/// Fetches the missing files of every replica whose head moved since it
/// was last looked at (of every replica, on a full round).
async fn keep_all(service: &Arc<Service>, watch: &mut Watch, full: bool) {
    let heads = service
        .blocking(|service| {
            let mut heads = Vec::new();
            for name in service.project_names()? {
                let Ok(handle) = service.project(name.as_str()) else {
                    continue;
                };
                let project = service.lock_project(&handle);
                if service.own_role(&project) == Some(Role::Reader) {
                    let head = crate::sync::git::pack::head(&project.repo).map(|h| h.to_string());
                    heads.push((name.to_string(), head));
                }
            }
            Ok(heads)
        })
        .await
        .unwrap_or_default();
    for (name, head) in heads {
        if !full && watch.heads.get(&name) == Some(&head) {
            continue;
        }
        watch.heads.insert(name.clone(), head);
        match keep(service, &name).await {
            Ok(kept) => {
                let before = watch.over_quota.insert(name.clone(), kept.over_quota.len());
                if !kept.over_quota.is_empty() && before != Some(kept.over_quota.len()) {
                    tracing::warn!(
                        project = %name,
                        files = kept.over_quota.len(),
                        quota = %byte_size(kept.quota),
                        kept = %byte_size(kept.kept_after),
                        "hub: files not kept: they would pass the quota per project (raise it with --quota)"
                    );
                }
            }
            Err(e) => {
                tracing::info!(project = %name, error = %e, "hub: large files not fetched now")
            }
        }
    }
}

/// What one pass over a replica's large files did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// Files fetched now.
    pub fetched: Vec<String>,
    /// Files left out because they would pass the quota.
    pub over_quota: Vec<String>,
    /// Bytes held for the project afterwards, as planned.
    pub kept_after: u64,
    pub quota: u64,
}

/// Fetches what `name`'s current version and linked datasets need, as far
/// as the quota allows. Nothing happens unless this node is a hub holding
/// the reader role there.
pub async fn keep(service: &Arc<Service>, name: &str) -> Result<Kept, ServiceError> {
    let quota = service.hub().map_or(0, |hub| hub.quota_bytes);
    let (role, account) = service
        .with_project(name, |service, project| {
            Ok((service.own_role(project), service.hub_account(project)?))
        })
        .await?;
    if service.hub().is_none() || role != Some(Role::Reader) {
        return Ok(Kept::default());
    }
    let plan = quota::plan(account.kept, quota, &account.wanted);
    let mut kept = Kept {
        over_quota: plan.over_quota,
        kept_after: plan.kept_after,
        quota,
        ..Kept::default()
    };
    if plan.fetch.is_empty() {
        return Ok(kept);
    }
    let result = service
        .fetch_data(name, plan.fetch, FetchScope::Requested)
        .await?;
    for failure in &result.failed {
        tracing::info!(project = %name, path = %failure.path, reason = %failure.reason, "hub: not fetched now");
    }
    kept.fetched = result.fetched;
    Ok(kept)
}

impl Service {
    /// A connected peer announced a project this node does not hold: on a
    /// hub, perhaps a grant to it, so the replica looks at the offers now
    /// rather than at its next round. Nothing is answered or revealed.
    pub(crate) fn hub_heard_of(&self, _peer: &PeerKey, _project: &ProjectId) {
        if self.hub().is_some() {
            WAKE.notify_one();
        }
    }

    /// Why nothing may be recorded in `project` here, if so: on a hub, a
    /// replica is a reader's copy, and a hub never commits. (Its commits
    /// would never be taken by anyone, but they would fork its copy from
    /// the writers' history it exists to pass on.)
    pub(crate) fn replica_refusal(&self, project: &Project) -> Option<String> {
        self.hub()?;
        quota::is_replica(self.own_role(project)).then(|| {
            format!(
                "this hub keeps a reader's copy of {}: changes made here are not recorded",
                project.name
            )
        })
    }
}

#[cfg(test)]
mod tests;
