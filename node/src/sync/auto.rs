//! Automatic sync (on by default, per project): after a local change the
//! node announces it to members, a member that hears an announcement
//! syncs, a new connection triggers a sync, and every project is synced
//! now and then anyway.
//!
//! Announcements travel two ways. Gossipsub carries the node's signed
//! heads on the project's private topic (see `tandem_protocol::gossip`:
//! topic and seal derive from the genesis nonce and the access heads, which
//! only members hold), so members relay news to members the writer is not
//! connected to; connected members not (yet) on that topic get a direct
//! `Announce` request, which carries only the project id. Either way only
//! peers who may read the project hear of it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem_protocol::wire::Request;
use tandem_protocol::{PeerKey, ProjectId, gossip};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::ServiceError;
use crate::p2p::swarm::{Gossip, Verdict};
use crate::service::{Service, now_ms};

/// Wait after a local change before announcing (changes come in bursts).
const ANNOUNCE_AFTER: Duration = Duration::from_millis(500);
/// Wait after an announcement or a new connection before syncing.
const SYNC_AFTER: Duration = Duration::from_millis(300);
/// Every project is synced at least this often while peers are connected.
const PERIODIC: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub enum Event {
    LocalChange(String),
    Announced(String),
    PeerConnected,
}

/// A project and the topic its announcements travel on now.
struct ProjectTopic {
    name: String,
    id: ProjectId,
    secret: gossip::Secret,
    access_heads: Vec<tandem_protocol::access::StatementId>,
    topic: String,
}

/// Starts the task; the returned sender is given to the service.
pub fn start(service: Arc<Service>) -> mpsc::UnboundedSender<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(service, rx));
    tx
}

impl Service {
    /// Judges a gossip announcement: it must arrive on the current topic of
    /// a project this node has, open with that project's current key, be
    /// signed by the key that published it, and come from a key with a
    /// role in the project. Only then is it relayed and the project synced.
    pub fn on_gossip(&self, gossip: &Gossip) -> Verdict {
        let Some(on_topic) = self
            .project_topics()
            .into_iter()
            .find(|t| t.topic == gossip.topic)
        else {
            // Not (or no longer) a topic of ours: someone on an older or
            // newer access view. Harmless, but not ours to relay.
            return Verdict::Ignore;
        };
        let refs = match gossip::decode(
            &gossip.data,
            gossip.source.as_ref(),
            &on_topic.id,
            &on_topic.secret,
            &on_topic.access_heads,
        ) {
            Ok(refs) => refs,
            Err(e) => {
                tracing::debug!(error = %e, "gossip refused");
                return Verdict::Reject;
            }
        };
        let may_read = self
            .project(&on_topic.name)
            .map(|handle| {
                self.lock_project(&handle)
                    .access
                    .roles(now_ms())
                    .can_read(&refs.peer)
            })
            .unwrap_or(false);
        if !may_read {
            return Verdict::Reject;
        }
        self.auto_event(Event::Announced(on_topic.name));
        Verdict::Accept
    }

    /// Every project this node keeps, with its current gossip topic.
    fn project_topics(&self) -> Vec<ProjectTopic> {
        let mut topics = Vec::new();
        for name in self.project_names().unwrap_or_default() {
            let Ok(handle) = self.project(name.as_str()) else {
                continue;
            };
            let project = self.lock_project(&handle);
            let access_heads = project.access.heads();
            let secret = gossip::Secret::of(&project.manifest.genesis);
            topics.push(ProjectTopic {
                topic: gossip::topic(&secret, &access_heads),
                id: project.id(),
                secret,
                access_heads,
                name: name.to_string(),
            });
        }
        topics
    }

    /// The gossip topic of every project this node keeps.
    pub fn gossip_topics(&self) -> Vec<String> {
        self.project_topics().into_iter().map(|t| t.topic).collect()
    }

    fn autosync_marker(&self, id: &ProjectId) -> std::path::PathBuf {
        self.home()
            .root()
            .join("autosync")
            .join(format!("{id}.off"))
    }

    pub fn autosync_enabled(&self, name: &str) -> Result<bool, ServiceError> {
        let handle = self.project(name)?;
        let id = self.lock_project(&handle).id();
        Ok(!self.autosync_marker(&id).exists())
    }

    pub fn set_autosync_enabled(&self, name: &str, enabled: bool) -> Result<bool, ServiceError> {
        let handle = self.project(name)?;
        let id = self.lock_project(&handle).id();
        let marker = self.autosync_marker(&id);
        if enabled {
            let _ = std::fs::remove_file(&marker);
        } else {
            crate::fsutil::atomic_write(&marker, b"automatic sync is off for this project\n", None)
                .map_err(crate::error::io_context("saving the setting"))?;
        }
        Ok(enabled)
    }

    /// A peer says it has news for a project: sync it, if the peer is a
    /// member and we have the project. Nothing is revealed either way.
    pub fn on_announce(&self, peer: &PeerKey, id: &ProjectId) {
        let Ok(Some(name)) = self.find_by_id(id) else {
            return;
        };
        let Ok(handle) = self.project(name.as_str()) else {
            return;
        };
        let may_read = self
            .lock_project(&handle)
            .access
            .roles(now_ms())
            .can_read(peer);
        if may_read {
            self.auto_event(Event::Announced(name.to_string()));
        }
    }
}

async fn run(service: Arc<Service>, mut events: mpsc::UnboundedReceiver<Event>) {
    let mut announce: HashMap<String, Instant> = HashMap::new();
    let mut sync: HashMap<String, Instant> = HashMap::new();
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut periodic = tokio::time::interval(PERIODIC);
    periodic.tick().await;
    tokio::spawn(refresh_topics(service.clone()));
    loop {
        let due = announce.values().chain(sync.values()).min().copied();
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                let now = Instant::now();
                match event {
                    Event::LocalChange(name) => { announce.insert(name, now + ANNOUNCE_AFTER); }
                    Event::Announced(name) => { sync.entry(name).or_insert(now + SYNC_AFTER); }
                    Event::PeerConnected => {
                        tokio::spawn(refresh_topics(service.clone()));
                        for name in all_projects(&service) {
                            sync.entry(name).or_insert(now + SYNC_AFTER);
                        }
                    }
                }
            }
            _ = periodic.tick() => {
                tokio::spawn(refresh_topics(service.clone()));
                let now = Instant::now();
                for name in all_projects(&service) {
                    sync.entry(name).or_insert(now);
                }
            }
            () = sleep_until(due) => {
                let now = Instant::now();
                let ready: Vec<String> = announce.iter().filter(|(_, t)| **t <= now).map(|(n, _)| n.clone()).collect();
                for name in ready {
                    announce.remove(&name);
                    tokio::spawn(announce_change(service.clone(), name));
                }
                let ready: Vec<String> = sync.iter().filter(|(_, t)| **t <= now).map(|(n, _)| n.clone()).collect();
                for name in ready {
                    sync.remove(&name);
                    let busy = running.lock().map(|mut r| !r.insert(name.clone())).unwrap_or(true);
                    if busy {
                        // One sync of a project at a time; try again shortly.
                        sync.insert(name, now + SYNC_AFTER);
                        continue;
                    }
                    let (service, running) = (service.clone(), running.clone());
                    tokio::spawn(async move {
                        if service.autosync_enabled(&name).unwrap_or(false) {
                            match service.sync_project(&name).await {
                                Ok(summary) => tracing::info!(project = %name, "{}", summary.message),
                                Err(e) => tracing::debug!(project = %name, error = %e, "automatic sync skipped"),
                            }
                        }
                        if let Ok(mut r) = running.lock() {
                            r.remove(&name);
                        }
                        // The sync may have brought new access statements.
                        refresh_topics(service).await;
                    });
                }
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

fn all_projects(service: &Service) -> Vec<String> {
    service
        .project_names()
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.to_string())
        .collect()
}

/// Subscribes the network to the current topic of every project (access
/// changes move a project's topic; projects come and go).
async fn refresh_topics(service: Arc<Service>) {
    let Ok(net) = service.net().cloned() else {
        return;
    };
    let lookup = tokio::task::spawn_blocking(move || service.gossip_topics()).await;
    if let Ok(topics) = lookup {
        let _ = net.set_topics(topics).await;
    }
}

/// What announcing one project's change needs, read under its lock.
struct Announcement {
    id: ProjectId,
    topic: String,
    signed_heads: Vec<u8>,
    /// Connected peers that may read the project.
    members: Vec<PeerKey>,
}

/// Tells the project's members that it changed: signed heads on the
/// project's gossip topic, and a direct `Announce` to each connected
/// member the gossip does not reach.
async fn announce_change(service: Arc<Service>, name: String) {
    refresh_topics(service.clone()).await;
    let Ok(net) = service.net().cloned() else {
        return;
    };
    let Ok(peers) = net.connected().await else {
        return;
    };
    let lookup = {
        let service = service.clone();
        tokio::task::spawn_blocking(move || -> Option<Announcement> {
            let handle = service.project(&name).ok()?;
            let project = service.lock_project(&handle);
            let roles = project.access.roles(now_ms());
            let access_heads = project.access.heads();
            let secret = gossip::Secret::of(&project.manifest.genesis);
            let nonce = crate::home::random_bytes::<{ gossip::NONCE_LEN }>();
            let signed_heads = service
                .signed_refs(&project)
                .ok()
                .and_then(|refs| gossip::encode(&refs, &secret, &access_heads, nonce).ok())?;
            Some(Announcement {
                id: project.id(),
                topic: gossip::topic(&secret, &access_heads),
                signed_heads,
                members: peers.into_iter().filter(|p| roles.can_read(p)).collect(),
            })
        })
        .await
    };
    let Ok(Some(announcement)) = lookup else {
        return;
    };
    let reached = match net
        .publish(announcement.topic, announcement.signed_heads)
        .await
    {
        Ok(reached) => reached,
        Err(e) => {
            tracing::debug!(error = %e, "gossip announcement not sent");
            Vec::new()
        }
    };
    let id = announcement.id;
    for peer in announcement
        .members
        .into_iter()
        .filter(|p| !reached.contains(p))
    {
        let net = net.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                net.request(&peer, Request::Announce { project: id }),
            )
            .await;
        });
    }
}
