//! The facade every interface goes through: the HTTP API, the web UI and
//! the CLI (which reaches it through the API, in-process or over HTTP).
//!
//! This file holds the node's state and the lookups every operation starts
//! from (the home, the key, open projects, the network once attached). The
//! operations themselves live with their capability, as `impl Service`
//! blocks: `projects::{lifecycle, summary, sweep}`, `activity::{ops,
//! query}`, `access::{identity, sharing}`, `data::*`, `env::*`, `sync::*`.
//!
//! Each project sits behind its own mutex: operations on one project run one
//! at a time, so a sweep triggered by the file watcher never interleaves with
//! a user's `add`.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tandem_protocol::{ProjectName, SecretKey};

use crate::data::DataState;
use crate::error::{ServiceError, io_context};
use crate::home::{Home, Profile};
use crate::projects::project::Project;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The node: its home, key and profile, its open projects, and what it
/// keeps about large files, environments and the network while it runs.
pub struct Service {
    net: std::sync::OnceLock<crate::p2p::NetHandle>,
    /// Set when the node runs as a hub (`tandem hub`).
    hub: std::sync::OnceLock<crate::hub::Hub>,
    auto:
        std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<crate::sync::auto::schedule::Event>>,
    home: Home,
    key: SecretKey,
    profile: RwLock<Profile>,
    open: Mutex<BTreeMap<ProjectName, Arc<Mutex<Project>>>>,
    /// Large files: the blob store, the endpoint, transfers, and the
    /// blobs obtained for each project (all the gate serves).
    data: DataState,
    /// Environment builds and JupyterLab containers.
    env: crate::env::EnvState,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the data as consistent as the
    // filesystem it mirrors; carry on rather than poisoning every request.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Service {
    /// Opens the home; the caller must hold its lock for as long as the
    /// service lives.
    pub fn open(home: Home) -> Result<Self, ServiceError> {
        home.ensure_layout()?;
        let key = home.load_key()?;
        let profile = home.load_profile()?;
        // Staging leftovers from an interrupted import are garbage.
        if let Ok(items) = fs::read_dir(home.tmp_dir()) {
            for item in items.flatten() {
                let _ = fs::remove_dir_all(item.path()).or_else(|_| fs::remove_file(item.path()));
            }
        }
        let data = DataState::new(home.obtained_dir());
        Ok(Self {
            net: std::sync::OnceLock::new(),
            hub: std::sync::OnceLock::new(),
            auto: std::sync::OnceLock::new(),
            home,
            key,
            profile: RwLock::new(profile),
            open: Mutex::new(BTreeMap::new()),
            data,
            env: crate::env::EnvState::default(),
        })
    }

    /// The blob store, opened on first use.
    pub fn blob_store(&self) -> Result<&crate::blobs::BlobStore, ServiceError> {
        Ok(self
            .data
            .blob_store(&self.home.blobs_dir(), &self.home.tmp_dir())?)
    }

    /// The blob store from async code: opening it blocks, so that happens
    /// on a blocking thread.
    pub(crate) async fn blob_store_async(
        self: &Arc<Self>,
    ) -> Result<crate::blobs::BlobStore, ServiceError> {
        self.blocking(|service| service.blob_store().cloned()).await
    }

    /// Stops serving blobs and flushes the blob store.
    pub async fn close_blobs(&self) {
        self.data.close().await;
    }

    /// Attaches the network (only `tandem up` has one).
    pub fn set_net(&self, net: crate::p2p::NetHandle) {
        let _ = self.net.set(net);
    }

    /// Makes this node a hub (only `tandem hub` does, before the network
    /// starts).
    pub fn set_hub(&self, options: crate::hub::HubOptions) {
        let _ = self.hub.set(crate::hub::Hub {
            options,
            circuits: Default::default(),
            blob_relay: Default::default(),
        });
    }

    /// How this node runs as a hub, if it does.
    pub fn hub(&self) -> Option<&crate::hub::HubOptions> {
        self.hub.get().map(|hub| &hub.options)
    }

    /// The hub's running state, if this node is one.
    pub(crate) fn hub_state(&self) -> Option<&crate::hub::Hub> {
        self.hub.get()
    }

    /// Who is in a circuit through this hub now, if this node is one.
    pub(crate) fn hub_circuits(&self) -> Option<&crate::hub::Circuits> {
        self.hub.get().map(|hub| &hub.circuits)
    }

    /// Attaches the automatic sync task (only `tandem up` has one).
    pub fn set_autosync(
        &self,
        events: tokio::sync::mpsc::UnboundedSender<crate::sync::auto::schedule::Event>,
    ) {
        let _ = self.auto.set(events);
    }

    /// Tells the automatic sync task something happened.
    pub fn auto_event(&self, event: crate::sync::auto::schedule::Event) {
        if let Some(events) = self.auto.get() {
            let _ = events.send(event);
        }
    }

    pub fn net(&self) -> Result<&crate::p2p::NetHandle, ServiceError> {
        self.net
            .get()
            .ok_or(ServiceError::NotRunning { what: "this" })
    }

    /// What the node keeps about environments (builds, containers).
    pub(crate) fn env(&self) -> &crate::env::EnvState {
        &self.env
    }

    /// What the node keeps about large files (store, endpoint, transfers,
    /// obtained blobs).
    pub(crate) fn data(&self) -> &DataState {
        &self.data
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    pub fn profile(&self) -> Profile {
        self.profile
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Replaces the profile in memory, once it was saved.
    pub(crate) fn set_profile(&self, profile: Profile) {
        if let Ok(mut current) = self.profile.write() {
            *current = profile;
        }
    }

    pub fn project_dir(&self, name: &ProjectName) -> PathBuf {
        self.home.projects_dir().join(name.as_str())
    }

    /// Opens (or returns the already open) project.
    pub fn project(&self, name: &str) -> Result<Arc<Mutex<Project>>, ServiceError> {
        let name: ProjectName = name
            .parse()
            .map_err(|_| ServiceError::NoSuchProject(name.to_owned()))?;
        let mut open = lock(&self.open);
        if let Some(project) = open.get(&name) {
            return Ok(project.clone());
        }
        let dir = self.project_dir(&name);
        if !dir.is_dir() {
            return Err(ServiceError::NoSuchProject(name.to_string()));
        }
        let project = Project::open(name.clone(), dir, &self.home)?;
        let project = Arc::new(Mutex::new(project));
        open.insert(name, project.clone());
        Ok(project)
    }

    /// Names of the projects in the home, sorted.
    pub fn project_names(&self) -> Result<Vec<ProjectName>, ServiceError> {
        let dir = self.home.projects_dir();
        let mut names = Vec::new();
        for item in fs::read_dir(&dir).map_err(io_context(format!("reading {}", dir.display())))? {
            let Ok(item) = item else { continue };
            let Some(name) = item
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<ProjectName>().ok())
            else {
                continue;
            };
            // A pinned project whose manifest went missing is still one
            // (it opens with the pinned identity and says so).
            if item
                .path()
                .join(crate::projects::project::MANIFEST)
                .is_file()
                || self.home.pin_path(&name).is_file()
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    pub(crate) fn register(&self, project: Project) -> Arc<Mutex<Project>> {
        let name = project.name.clone();
        let project = Arc::new(Mutex::new(project));
        lock(&self.open).insert(name, project.clone());
        project
    }

    /// Drops the open handle of a project (it is being deleted).
    pub(crate) fn close_project(&self, name: &ProjectName) {
        lock(&self.open).remove(name);
    }

    /// Runs `f` on every open project, holding the map of open projects.
    pub(crate) fn each_open(&self, mut f: impl FnMut(&Mutex<Project>)) {
        for project in lock(&self.open).values() {
            f(project);
        }
    }

    pub fn find_by_id(
        &self,
        id: &tandem_protocol::ProjectId,
    ) -> Result<Option<ProjectName>, ServiceError> {
        for name in self.project_names()? {
            if let Ok(project) = self.project(name.as_str())
                && &lock(&project).id() == id
            {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    pub(crate) fn lock_project<'a>(&self, project: &'a Mutex<Project>) -> MutexGuard<'a, Project> {
        lock(project)
    }

    /// Runs `work` on a blocking thread, for async callers: Git, the disk
    /// and the project locks all block. A panic there is the node's fault
    /// ([`ServiceError::Join`]), never the caller's.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Service) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let service = self.clone();
        tokio::task::spawn_blocking(move || work(&service)).await?
    }

    /// Runs `work` on a blocking thread with the project `name` open and
    /// locked, for async callers (see [`Service::blocking`]).
    pub async fn with_project<T: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        work: impl FnOnce(&Service, &mut Project) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let name = name.to_owned();
        self.blocking(move |service| {
            let handle = service.project(&name)?;
            let mut project = lock(&handle);
            work(service, &mut project)
        })
        .await
    }
}
