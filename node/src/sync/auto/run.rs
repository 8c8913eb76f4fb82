//! The automatic sync task: it feeds events and the clock to the
//! [`Scheduler`] and carries out its wishes (announce a change, sync a
//! project, refresh the gossip topics), each in its own task so a slow
//! peer never holds up the schedule.

use std::sync::Arc;
use std::time::Duration;

use tandem_protocol::wire::Request;
use tandem_protocol::{PeerKey, ProjectId, gossip};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::schedule::{Event, Scheduler, Wish};
use crate::service::{Service, now_ms};

/// How long a direct `Announce` to one member may take.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the task; the returned sender is given to the service.
pub fn start(service: Arc<Service>) -> mpsc::UnboundedSender<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(service, rx));
    tx
}

async fn run(service: Arc<Service>, mut events: mpsc::UnboundedReceiver<Event>) {
    let (mut scheduler, wishes) = Scheduler::new(Instant::now().into_std());
    let (synced_tx, mut synced) = mpsc::unbounded_channel::<String>();
    let act = |wishes: Vec<Wish>| {
        for wish in wishes {
            spawn(&service, wish, &synced_tx);
        }
    };
    act(wishes);
    loop {
        let due = Instant::from_std(scheduler.next_due());
        let wishes = tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                let now = Instant::now().into_std();
                scheduler.on_event(event, now, || all_projects(&service))
            }
            Some(name) = synced.recv() => scheduler.synced(&name),
            () = tokio::time::sleep_until(due) => {
                let now = Instant::now().into_std();
                scheduler.tick(now, || all_projects(&service))
            }
        };
        act(wishes);
    }
}

/// Carries out one wish in its own task; a finished sync is reported on
/// `synced`.
fn spawn(service: &Arc<Service>, wish: Wish, synced: &mpsc::UnboundedSender<String>) {
    let (service, synced) = (service.clone(), synced.clone());
    tokio::spawn(async move {
        let finished = match &wish {
            Wish::Sync(name) => Some(name.clone()),
            Wish::Announce(_) | Wish::RefreshTopics => None,
        };
        carry_out(service, wish).await;
        if let Some(name) = finished {
            let _ = synced.send(name);
        }
    });
}

/// Does what one wish asks, to the end: a sync (unless automatic sync is
/// off for the project) is over when this returns, and so is every
/// direct announcement.
pub async fn carry_out(service: Arc<Service>, wish: Wish) {
    match wish {
        Wish::RefreshTopics => refresh_topics(service).await,
        Wish::Announce(name) => announce_change(service, name).await,
        Wish::Sync(name) => {
            if service.autosync_enabled(&name).unwrap_or(false) {
                match service.sync_project(&name).await {
                    Ok(summary) => tracing::info!(project = %name, "{}", summary.message),
                    Err(e) => {
                        tracing::debug!(project = %name, error = %e, "automatic sync skipped");
                    }
                }
            }
        }
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
    let lookup = service
        .with_project(&name, move |service, project| {
            let roles = project.access.roles(now_ms());
            let access_heads = project.access.heads();
            let secret = gossip::Secret::of(&project.manifest.genesis);
            let nonce = crate::home::random_bytes::<{ gossip::NONCE_LEN }>();
            let signed_heads = service
                .signed_refs(project)
                .ok()
                .and_then(|refs| gossip::encode(&refs, &secret, &access_heads, nonce).ok());
            Ok(signed_heads.map(|signed_heads| Announcement {
                id: project.id(),
                topic: gossip::topic(&secret, &access_heads),
                signed_heads,
                members: peers
                    .into_iter()
                    .filter(|p| tandem_protocol::sync::may_read(&roles, p))
                    .collect(),
            }))
        })
        .await;
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
    let direct = announcement
        .members
        .into_iter()
        .filter(|p| !reached.contains(p))
        .map(|peer| {
            let net = net.clone();
            async move {
                let _ = tokio::time::timeout(
                    ANNOUNCE_TIMEOUT,
                    net.request(&peer, Request::Announce { project: id }),
                )
                .await;
            }
        });
    // All at once, each with its own timeout: a stuck member delays no one.
    futures::future::join_all(direct).await;
}
