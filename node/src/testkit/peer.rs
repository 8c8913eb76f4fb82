//! One node in a story: a real [`Service`] over a real home in a temporary
//! folder (real Git repositories, real feeds and access stores), joined to
//! the in-memory [`Network`], with its automatic sync run by a
//! [`Scheduler`] on the story's virtual clock instead of tokio timers.

use std::sync::Arc;
use std::time::Instant;

use tandem_protocol::{PeerKey, ProjectId};
use tokio::sync::mpsc;

use super::network::Network;
use crate::home::{Home, Profile, random_bytes};
use crate::p2p::handle::NetHandle;
use crate::projects::project::Project;
use crate::service::Service;
use crate::sync::auto::run::carry_out;
use crate::sync::auto::schedule::{Event, Scheduler, Wish};

pub struct Peer {
    pub service: Arc<Service>,
    pub net: NetHandle,
    events: mpsc::UnboundedReceiver<Event>,
    scheduler: Scheduler,
    /// Wishes not yet carried out.
    wishes: Vec<Wish>,
    _home: tempfile::TempDir,
}

/// A service over a fresh home in `dir`, for a user called `name`.
pub(crate) fn open_service(dir: &std::path::Path, name: &str) -> Arc<Service> {
    let home = Home::at(dir);
    home.create_key_if_missing(random_bytes())
        .expect("create key");
    home.save_profile(&Profile {
        name: name.to_owned(),
        email: format!("{}@example.org", name.to_lowercase()),
    })
    .expect("save profile");
    Arc::new(Service::open(home).expect("open the service"))
}

impl Peer {
    /// A node with a fresh identity called `name`, started at `now`.
    pub fn start(name: &str, network: &Network, now: Instant) -> Self {
        let dir = tempfile::tempdir().expect("home folder");
        let service = open_service(dir.path(), name);
        let net = network.join(
            service.key().public(),
            name,
            Arc::new(crate::daemon::NodeHost(service.clone())),
        );
        service.set_net(net.clone());
        let (events_tx, events) = mpsc::unbounded_channel();
        service.set_autosync(events_tx);
        let (scheduler, wishes) = Scheduler::new(now);
        Self {
            service,
            net,
            events,
            scheduler,
            wishes,
            _home: dir,
        }
    }

    pub fn key(&self) -> PeerKey {
        self.service.key().public()
    }

    pub fn did(&self) -> String {
        self.key().to_did()
    }

    /// The open project called `name`, locked.
    pub fn with_project<T>(&self, name: &str, read: impl FnOnce(&Project) -> T) -> T {
        let handle = self.service.project(name).expect("project");
        let project = crate::service::lock(&handle);
        read(&project)
    }

    pub fn project_id(&self, name: &str) -> ProjectId {
        self.with_project(name, Project::id)
    }

    /// The project's branch head, if it has history.
    pub fn head(&self, name: &str) -> Option<String> {
        self.with_project(name, |p| {
            p.repo
                .head()
                .ok()
                .and_then(|h| h.target())
                .map(|o| o.to_string())
        })
    }

    /// Writes a file into the project's working tree and records it.
    pub fn commit_file(&self, name: &str, path: &str, text: &str) {
        let dir = self.with_project(name, |p| p.dir.clone());
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, text).expect("write");
        self.service.sweep(name).expect("sweep");
    }

    /// Whether the project's working tree holds `path`.
    pub fn has_file(&self, name: &str, path: &str) -> bool {
        self.with_project(name, |p| p.dir.join(path).is_file())
    }

    /// Runs automatic sync up to `now`: events heard so far are given to
    /// the scheduler, and whatever falls due is carried out to its end.
    /// Returns whether anything was carried out.
    pub async fn step(&mut self, now: Instant) -> bool {
        while let Ok(event) = self.events.try_recv() {
            let service = self.service.clone();
            let wishes = self
                .scheduler
                .on_event(event, now, || project_names(&service));
            self.wishes.extend(wishes);
        }
        let service = self.service.clone();
        let due = self.scheduler.tick(now, || project_names(&service));
        self.wishes.extend(due);
        let wishes = std::mem::take(&mut self.wishes);
        let acted = !wishes.is_empty();
        for wish in wishes {
            let finished = match &wish {
                Wish::Sync(name) => Some(name.clone()),
                Wish::Announce(_) | Wish::RefreshTopics => None,
            };
            carry_out(self.service.clone(), wish).await;
            if let Some(name) = finished {
                self.wishes.extend(self.scheduler.synced(&name));
            }
        }
        acted
    }

    /// When this node's automatic sync next has something to do.
    pub fn next_due(&self) -> Instant {
        self.scheduler.next_due()
    }

    /// Whether events or wishes are waiting to be handled.
    pub fn busy(&self) -> bool {
        !self.events.is_empty() || !self.wishes.is_empty()
    }
}

fn project_names(service: &Service) -> Vec<String> {
    service
        .project_names()
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.to_string())
        .collect()
}
