//! Automatic sync (on by default, per project): after a local change the
//! node announces it to connected members, a member that hears an
//! announcement syncs, a new connection triggers a sync, and every project
//! is synced now and then anyway. Announcements carry only a project id and
//! go only to peers who may read the project.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem_protocol::ProjectId;
use tandem_protocol::wire::Request;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::service::{Service, ServiceError, now_ms};

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

/// Starts the task; the returned sender is given to the service.
pub fn start(service: Arc<Service>) -> mpsc::UnboundedSender<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(service, rx));
    tx
}

impl Service {
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
                .map_err(crate::service::io_context("saving the setting"))?;
        }
        Ok(enabled)
    }

    /// A peer says it has news for a project: sync it, if the peer is a
    /// member and we have the project. Nothing is revealed either way.
    pub fn on_announce(&self, peer: &tandem_protocol::PeerKey, id: &ProjectId) {
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
                        for name in all_projects(&service) {
                            sync.entry(name).or_insert(now + SYNC_AFTER);
                        }
                    }
                }
            }
            _ = periodic.tick() => {
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

/// Tells every connected peer that may read the project that it changed.
async fn announce_change(service: Arc<Service>, name: String) {
    let Ok(net) = service.net().cloned() else {
        return;
    };
    let Ok(peers) = net.connected().await else {
        return;
    };
    let lookup = {
        let service = service.clone();
        tokio::task::spawn_blocking(
            move || -> Option<(ProjectId, Vec<tandem_protocol::PeerKey>)> {
                let handle = service.project(&name).ok()?;
                let project = service.lock_project(&handle);
                let roles = project.access.roles(now_ms());
                Some((
                    project.id(),
                    peers.into_iter().filter(|p| roles.can_read(p)).collect(),
                ))
            },
        )
        .await
    };
    let Ok(Some((id, members))) = lookup else {
        return;
    };
    for peer in members {
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
