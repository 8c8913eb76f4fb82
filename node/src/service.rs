//! The node's operations on its projects, shared by the HTTP API, the web UI
//! and the CLI (which reaches them through the API, in-process or over HTTP).
//!
//! Each project sits behind its own mutex: operations on one project run one
//! at a time, so a sweep triggered by the file watcher never interleaves with
//! a user's `add`.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tandem_protocol::activity::{Details, FileChange, Filter, Kind, validate_tags};
use tandem_protocol::api::{
    ActivityQuery, EntryView, FileInfo, IdentityInfo, ProjectDetail, ProjectSummary, Section,
    SectionFiles, SweepResult, UpdateProfile,
};
use tandem_protocol::blob::BlobHash;
use tandem_protocol::project::{Genesis, validate_description};
use tandem_protocol::summary::summarize;
use tandem_protocol::{PeerKey, ProjectId, ProjectName, SecretKey};

use crate::activity::feed::{Draft, FeedError};
use crate::error::{ServiceError, io_context};
use crate::home::{Home, Profile, random_bytes};
use crate::projects::project::{Manifest, Project, lay_out};
use crate::projects::repo::{self, RepoError};

/// Default number of entries an activity query returns.
pub const DEFAULT_LIMIT: usize = 50;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub struct Service {
    net: std::sync::OnceLock<crate::p2p::swarm::NetHandle>,
    auto: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<crate::sync::auto::Event>>,
    home: Home,
    key: SecretKey,
    profile: RwLock<Profile>,
    open: Mutex<BTreeMap<ProjectName, Arc<Mutex<Project>>>>,
    /// Opened on first use: many commands never touch large files.
    blobs: std::sync::OnceLock<crate::blobs::BlobStore>,
    blobs_opening: Mutex<()>,
    pub(crate) blob_endpoint: std::sync::OnceLock<Arc<crate::blobs::BlobEndpoint>>,
    pub(crate) transfers: crate::blobs::transfers::Transfers,
    /// Blobs each project's history points to, with the head it was read at.
    pub(crate) blob_history: Mutex<std::collections::HashMap<ProjectId, BlobHistory>>,
    /// Environment builds and JupyterLab containers.
    pub(crate) env: crate::env::EnvState,
    /// Per project, the blobs this node obtained for it: all the gate serves.
    pub(crate) obtained: crate::blobs::obtained::Obtained,
}

/// The blobs a project's history points to (hash → size), and the head
/// they were read at.
pub(crate) type BlobHistory = (Option<git2::Oid>, Arc<BTreeMap<BlobHash, u64>>);

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
        let obtained = crate::blobs::obtained::Obtained::new(home.obtained_dir());
        Ok(Self {
            net: std::sync::OnceLock::new(),
            auto: std::sync::OnceLock::new(),
            home,
            key,
            profile: RwLock::new(profile),
            open: Mutex::new(BTreeMap::new()),
            blobs: std::sync::OnceLock::new(),
            blobs_opening: Mutex::new(()),
            blob_endpoint: std::sync::OnceLock::new(),
            transfers: Default::default(),
            blob_history: Mutex::new(std::collections::HashMap::new()),
            env: crate::env::EnvState::default(),
            obtained,
        })
    }

    /// The blob store, opened on first use.
    pub fn blob_store(&self) -> Result<&crate::blobs::BlobStore, ServiceError> {
        if let Some(store) = self.blobs.get() {
            return Ok(store);
        }
        let _opening = lock(&self.blobs_opening);
        if let Some(store) = self.blobs.get() {
            return Ok(store);
        }
        let store = crate::blobs::BlobStore::open(&self.home.blobs_dir(), &self.home.tmp_dir())?;
        Ok(self.blobs.get_or_init(|| store))
    }

    /// Stops serving blobs and flushes the blob store.
    pub async fn close_blobs(&self) {
        if let Some(endpoint) = self.blob_endpoint.get() {
            endpoint.endpoint().close().await;
        }
        if let Some(store) = self.blobs.get() {
            store.shutdown().await;
        }
    }

    /// Attaches the network (only `tandem up` has one).
    pub fn set_net(&self, net: crate::p2p::swarm::NetHandle) {
        let _ = self.net.set(net);
    }

    /// Attaches the automatic sync task (only `tandem up` has one).
    pub fn set_autosync(
        &self,
        events: tokio::sync::mpsc::UnboundedSender<crate::sync::auto::Event>,
    ) {
        let _ = self.auto.set(events);
    }

    /// Tells the automatic sync task something happened.
    pub fn auto_event(&self, event: crate::sync::auto::Event) {
        if let Some(events) = self.auto.get() {
            let _ = events.send(event);
        }
    }

    pub fn net(&self) -> Result<&crate::p2p::swarm::NetHandle, ServiceError> {
        self.net.get().ok_or_else(|| {
            ServiceError::BadRequest(
                "this needs the running node: start it with `tandem up`, then try again".into(),
            )
        })
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

    pub fn identity(&self) -> IdentityInfo {
        let profile = self.profile();
        let public = self.key.public();
        IdentityInfo {
            did: public.to_did(),
            peer_id: public.to_peer_id(),
            name: profile.name,
            email: profile.email,
        }
    }

    pub fn update_profile(&self, update: UpdateProfile) -> Result<IdentityInfo, ServiceError> {
        let mut profile = self.profile();
        if let Some(name) = update.name {
            profile.name = validate_label("name", &name)?;
        }
        if let Some(email) = update.email {
            profile.email = validate_label("email", &email)?;
        }
        self.home.save_profile(&profile)?;
        if let Ok(mut current) = self.profile.write() {
            *current = profile;
        }
        Ok(self.identity())
    }

    pub(crate) fn signature(&self) -> Result<git2::Signature<'static>, ServiceError> {
        let profile = self.profile();
        Ok(git2::Signature::now(&profile.name, &profile.email).map_err(RepoError::from)?)
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

    /// Creates a project on a base environment (`None`: the default base).
    pub fn create_project(
        &self,
        name: &str,
        description: &str,
        base: Option<&str>,
    ) -> Result<ProjectSummary, ServiceError> {
        let base = self.check_base(base.unwrap_or(crate::env::bases::DEFAULT_BASE))?;
        self.create(
            name,
            description,
            crate::projects::project::ProjectKind::Project,
            Some(base),
        )
    }

    /// Creates a project or a dataset: both are signed, shared and synced
    /// alike; only their layout differs.
    pub(crate) fn create(
        &self,
        name: &str,
        description: &str,
        kind: crate::projects::project::ProjectKind,
        base: Option<tandem_protocol::env::BaseRef>,
    ) -> Result<ProjectSummary, ServiceError> {
        let name: ProjectName = name.parse()?;
        validate_description(description)?;
        let dir = self.project_dir(&name);
        if dir.exists() {
            return Err(ServiceError::Conflict(format!(
                "a project named {name:?} already exists"
            )));
        }
        let genesis = Genesis::create(&name, &self.key, now_ms(), random_bytes());
        let manifest = Manifest {
            id: genesis.project_id(),
            name: name.to_string(),
            description: description.trim().to_owned(),
            genesis,
            kind,
        };
        // Build the project in staging, then move it into place in one rename.
        let staging = tempfile::Builder::new()
            .prefix("create-")
            .tempdir_in(self.home.tmp_dir())
            .map_err(io_context("creating a staging folder"))?;
        let what = match kind {
            crate::projects::project::ProjectKind::Project => {
                lay_out(staging.path(), &manifest, base.as_ref())
                    .map_err(io_context("writing the project files"))?;
                "project"
            }
            crate::projects::project::ProjectKind::Dataset => {
                crate::projects::project::lay_out_dataset(staging.path(), &manifest)
                    .map_err(io_context("writing the dataset files"))?;
                "dataset"
            }
        };
        let repository = repo::init(staging.path())?;
        let summary = format!("[tandem:milestone] Created {what} {name}");
        let commit = repo::commit_all(
            &repository,
            &self.signature()?,
            &format!("{summary}\n\n{}", self.trailer()),
        )?;
        drop(repository);
        crate::projects::project::pin(&self.home, &name, &manifest)?;
        if let Err(e) = fs::rename(staging.path(), &dir) {
            crate::projects::project::unpin(&self.home, &name);
            return Err(io_context(format!(
                "moving the project to {}",
                dir.display()
            ))(e));
        }
        let _ = staging.keep();
        let project = self.project(name.as_str())?;
        let mut project = lock(&project);
        self.append(
            &mut project,
            Kind::Milestone,
            format!("Created {what} {name}"),
            commit.map(|c| c.to_string()),
            Details::default(),
            vec![],
        )?;
        self.summary(&project)
    }

    pub(crate) fn trailer(&self) -> String {
        format!("Tandem-Author: {}", self.key.public().to_did())
    }

    pub(crate) fn append(
        &self,
        project: &mut Project,
        kind: Kind,
        message: String,
        commit: Option<String>,
        details: Details,
        tags: Vec<String>,
    ) -> Result<EntryView, ServiceError> {
        let draft = Draft {
            kind,
            message,
            commit,
            details,
            tags,
            time_ms: now_ms(),
        };
        let signed = project
            .feed
            .append(&self.key, &self.profile().name, draft)?;
        // Every local change ends in an entry: tell peers there is news.
        self.auto_event(crate::sync::auto::Event::LocalChange(
            project.name.to_string(),
        ));
        Ok(EntryView::from(&signed))
    }

    pub fn summary(&self, project: &Project) -> Result<ProjectSummary, ServiceError> {
        let files = repo::tracked_files(&project.repo)?
            .into_iter()
            .filter(|(path, _)| {
                !path.ends_with(".gitkeep")
                    && path
                        .split('/')
                        .next()
                        .is_some_and(|s| s.parse::<Section>().is_ok())
            })
            .count()
            + crate::blobs::Tracker::new(&project.dir)
                .pointers()
                .map(|p| p.len())
                .unwrap_or(0);
        Ok(ProjectSummary {
            name: project.name.to_string(),
            id: project.id().to_string(),
            owner: project.manifest.genesis.payload.owner.to_did(),
            description: project.manifest.description.clone(),
            path: project.dir.display().to_string(),
            created_ms: project.manifest.genesis.payload.created_ms,
            commits: repo::commit_count(&project.repo)?,
            files,
            entries: project.feed.len(),
            last_activity: project.feed.latest().map(EntryView::from),
            role: project.access.role_of(&self.key.public(), now_ms()),
            public: project.access.roles(now_ms()).public,
            problems: project.problems.clone(),
        })
    }

    pub fn list_projects(&self) -> Result<Vec<ProjectSummary>, ServiceError> {
        let mut out = Vec::new();
        for name in self.project_names()? {
            match self.project(name.as_str()) {
                Ok(project) => out.push(self.summary(&lock(&project))?),
                Err(e) => {
                    tracing::warn!(project = %name, error = %e, "skipping unreadable project")
                }
            }
        }
        Ok(out)
    }

    pub fn show_project(&self, name: &str) -> Result<ProjectDetail, ServiceError> {
        let project = self.project(name)?;
        let project = lock(&project);
        let summary = self.summary(&project)?;
        let mut sections: Vec<SectionFiles> = Section::ALL
            .into_iter()
            .map(|section| SectionFiles {
                section,
                files: vec![],
            })
            .collect();
        let tracked = repo::tracked_files(&project.repo)?
            .into_iter()
            .filter(|(path, _)| !path.ends_with(".gitkeep"))
            .map(|(path, size)| FileInfo {
                path,
                size,
                blob: None,
            });
        let large = self
            .blob_files(&project)?
            .into_iter()
            .map(|(path, (pointer, info))| FileInfo {
                path,
                size: pointer.size,
                blob: Some(info),
            });
        for file in tracked.chain(large) {
            let section = file
                .path
                .split('/')
                .next()
                .and_then(|s| s.parse::<Section>().ok());
            if let Some(section) = section
                && let Some(group) = sections.iter_mut().find(|g| g.section == section)
            {
                group.files.push(file);
            }
        }
        for group in &mut sections {
            group.files.sort_by(|a, b| a.path.cmp(&b.path));
        }
        Ok(ProjectDetail { summary, sections })
    }

    pub fn delete_project(&self, name: &str) -> Result<(), ServiceError> {
        let project = self.project(name)?;
        let (dir, id) = {
            let project = lock(&project);
            project.access_store.remove();
            (project.dir.clone(), project.id())
        };
        let parsed: ProjectName = name.parse()?;
        lock(&self.open).remove(&parsed);
        // Move out of sight first so a crash never leaves half a project.
        let trash = self
            .home
            .tmp_dir()
            .join(format!("deleted-{}", hex::encode(random_bytes::<8>())));
        fs::rename(&dir, &trash).map_err(io_context(format!("removing {}", dir.display())))?;
        crate::projects::project::unpin(&self.home, &parsed);
        self.obtained.forget(&id);
        let feed = self.home.feeds_dir().join(id.to_string());
        let _ = fs::remove_dir_all(&feed);
        fs::remove_dir_all(&trash).map_err(io_context(format!("removing {}", trash.display())))?;
        Ok(())
    }

    /// Commits whatever changed in the project's folder and records it.
    pub fn sweep(&self, name: &str) -> Result<SweepResult, ServiceError> {
        let project = self.project(name)?;
        let mut project = lock(&project);
        self.sweep_locked(&mut project)
    }

    /// What a sweep would commit now, with large files moved to the blob
    /// store and named by their own paths.
    pub(crate) fn pending_user_changes(
        &self,
        project: &mut Project,
    ) -> Result<Vec<FileChange>, ServiceError> {
        Ok(self.pending_and_refused(project)?.0)
    }

    /// [`Service::pending_user_changes`], and the paths a sweep leaves out
    /// (links, pointers beyond links), each with why.
    pub(crate) fn pending_and_refused(
        &self,
        project: &mut Project,
    ) -> Result<(Vec<FileChange>, Vec<String>), ServiceError> {
        let prepared = self.prepare_blobs(project)?;
        let changes = match prepared.unchanged {
            Some(unchanged) => unchanged,
            None => repo::pending_changes(&project.repo)?,
        };
        Ok((as_user_files(changes), prepared.refused))
    }

    pub(crate) fn sweep_locked(&self, project: &mut Project) -> Result<SweepResult, ServiceError> {
        // A manifest that names another project is never committed.
        project.enforce_pin()?;
        let (changes, refused) = self.pending_and_refused(project)?;
        if changes.is_empty() {
            return Ok(SweepResult {
                commit: None,
                entries: vec![],
                refused,
            });
        }
        let groups = summarize(&changes);
        let mut message = String::new();
        for group in &groups {
            message.push_str(&format!("[tandem:{}] {}\n", group.kind, group.message));
        }
        message.push('\n');
        message.push_str(&self.trailer());
        let Some(commit) = repo::commit_all(&project.repo, &self.signature()?, &message)? else {
            return Ok(SweepResult {
                commit: None,
                entries: vec![],
                refused,
            });
        };
        let mut entries = Vec::new();
        for group in groups {
            let details = Details {
                files: group.files,
                ..Details::default()
            };
            entries.push(self.append(
                project,
                group.kind,
                group.message,
                Some(commit.to_string()),
                details,
                vec![],
            )?);
        }
        Ok(SweepResult {
            commit: Some(commit.to_string()),
            entries,
            refused,
        })
    }

    /// Copies files or folders into a section, then records them. Every
    /// source is checked before anything is copied, so a typo in the third
    /// path does not leave the first two half-added.
    pub fn add_files(
        &self,
        name: &str,
        section: Section,
        paths: &[String],
    ) -> Result<SweepResult, ServiceError> {
        if paths.is_empty() {
            return Err(ServiceError::BadRequest(
                "name at least one file or folder to add".into(),
            ));
        }
        let project = self.project(name)?;
        let mut project = lock(&project);
        let plan = plan_copies(&project, section.as_str(), paths)?;
        let root = crate::beneath::Beneath::open(&project.dir)?;
        for (source, dest) in &plan {
            crate::fsutil::copy_tree_beneath(source, &root, dest)
                .map_err(io_context(format!("copying {}", source.display())))?;
        }
        self.sweep_locked(&mut project)
    }
}

/// Checks every source before anything is copied, so a typo in the third
/// path does not leave the first two half-added; returns source → target
/// pairs, targets relative to the project folder, under `folder`.
pub(crate) fn plan_copies(
    project: &Project,
    folder: &str,
    paths: &[String],
) -> Result<Vec<(PathBuf, String)>, ServiceError> {
    {
        let mut plan = Vec::new();
        for raw in paths {
            let source = PathBuf::from(raw);
            let meta = fs::symlink_metadata(&source)
                .map_err(|_| ServiceError::BadRequest(format!("{raw}: no such file or folder")))?;
            if meta.file_type().is_symlink() {
                return Err(ServiceError::BadRequest(format!(
                    "{raw} is a symbolic link; add the file it points to instead"
                )));
            }
            let file_name = source.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                ServiceError::BadRequest(format!("{raw}: cannot tell the file's name"))
            })?;
            if file_name == "untracked" {
                return Err(ServiceError::BadRequest(
                    "a folder named 'untracked' would never be committed; rename it first".into(),
                ));
            }
            let source = source
                .canonicalize()
                .map_err(io_context(format!("resolving {raw}")))?;
            if source.starts_with(&project.dir) {
                return Err(ServiceError::BadRequest(format!(
                    "{raw} is already inside the project; run `tandem sweep` to record changes"
                )));
            }
            let target = tandem_protocol::path::SafePath::parse(&format!("{folder}/{file_name}"))
                .map_err(|e| ServiceError::BadRequest(format!("{raw}: {e}")))?;
            plan.push((source, target.to_string()));
        }
        Ok(plan)
    }
}

impl Service {
    pub fn add_note(
        &self,
        name: &str,
        text: &str,
        tags: Vec<String>,
    ) -> Result<EntryView, ServiceError> {
        validate_tags(&tags).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if text.trim().is_empty() {
            return Err(ServiceError::BadRequest("a note needs some text".into()));
        }
        let project = self.project(name)?;
        let mut project = lock(&project);
        self.append(
            &mut project,
            Kind::Note,
            text.trim().to_owned(),
            None,
            Details::default(),
            tags,
        )
        .map_err(|e| match e {
            ServiceError::Feed(FeedError::Entry(e)) => ServiceError::BadRequest(e.to_string()),
            other => other,
        })
    }

    pub fn activity(
        &self,
        name: &str,
        query: &ActivityQuery,
    ) -> Result<Vec<EntryView>, ServiceError> {
        let project = self.project(name)?;
        let project = lock(&project);
        let filter = self.filter(&project, query)?;
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT).max(1);
        Ok(project
            .feed
            .query(&filter, limit)
            .into_iter()
            .map(EntryView::from)
            .collect())
    }

    /// Turns what a user typed into a filter: names resolve to the keys of
    /// authors seen in this feed, dates accept `YYYY-MM-DD` or RFC 3339.
    fn filter(&self, project: &Project, query: &ActivityQuery) -> Result<Filter, ServiceError> {
        let kind = match query.kind.as_deref().filter(|k| !k.is_empty()) {
            Some(k) => Some(
                k.parse()
                    .map_err(|e: tandem_protocol::activity::EntryError| {
                        ServiceError::BadRequest(e.to_string())
                    })?,
            ),
            None => None,
        };
        let authors = match query.author.as_deref().filter(|a| !a.is_empty()) {
            None => None,
            Some(text) => Some(match text.parse::<PeerKey>() {
                Ok(key) => vec![key],
                Err(_) => {
                    let wanted = text.to_lowercase();
                    let mut keys: Vec<PeerKey> = project
                        .feed
                        .query(&Filter::default(), usize::MAX)
                        .into_iter()
                        .filter(|e| e.payload.author_name.to_lowercase() == wanted)
                        .map(|e| e.payload.author)
                        .collect();
                    keys.sort();
                    keys.dedup();
                    if keys.is_empty() {
                        return Err(ServiceError::BadRequest(format!(
                            "no author named {text:?} in this project's activity; give a name that appears in the feed, or a did:key"
                        )));
                    }
                    keys
                }
            }),
        };
        let since_ms = match query.since.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(parse_date(text)?),
        };
        Ok(Filter {
            kind,
            authors,
            path: query.path.clone().filter(|p| !p.is_empty()),
            search: query.search.clone().filter(|s| !s.is_empty()),
            since_ms,
        }
        .prepared())
    }

    /// Sweeps every project: at start-up, changes made while the node was
    /// down are recorded.
    pub fn sweep_all(&self) {
        let Ok(names) = self.project_names() else {
            return;
        };
        for name in names {
            if let Err(e) = self.sweep(name.as_str()) {
                tracing::warn!(project = %name, error = %e, "sweep failed");
            }
        }
    }

    /// Folds activity logs into snapshots (on shutdown).
    pub fn compact(&self) {
        for project in lock(&self.open).values() {
            if let Err(e) = lock(project).feed.compact_all() {
                tracing::warn!(error = %e, "compacting activity failed");
            }
        }
    }

    pub(crate) fn register(&self, project: Project) -> Arc<Mutex<Project>> {
        let name = project.name.clone();
        let project = Arc::new(Mutex::new(project));
        lock(&self.open).insert(name, project.clone());
        project
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

    pub(crate) fn sweep_project(&self, project: &mut Project) -> Result<SweepResult, ServiceError> {
        self.sweep_locked(project)
    }
}

/// A pointer's change is, to the user, a change of the file it stands for.
fn as_user_files(changes: Vec<FileChange>) -> Vec<FileChange> {
    changes
        .into_iter()
        .map(
            |change| match tandem_protocol::blob::file_for_pointer(&change.path) {
                Ok(file) => FileChange {
                    path: file.to_string(),
                    action: change.action,
                },
                Err(_) => change,
            },
        )
        .collect()
}

pub fn validate_label(what: &str, text: &str) -> Result<String, ServiceError> {
    let text = text.trim();
    if text.is_empty()
        || text.chars().count() > 200
        || text.chars().any(|c| c.is_control() || c == '<' || c == '>')
    {
        return Err(ServiceError::BadRequest(format!(
            "{what} must be 1 to 200 characters, without control characters or angle brackets"
        )));
    }
    Ok(text.to_owned())
}

/// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time, to Unix milliseconds.
pub fn parse_date(text: &str) -> Result<i64, ServiceError> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(time) = date.and_hms_opt(0, 0, 0)
    {
        return Ok(time.and_utc().timestamp_millis());
    }
    Err(ServiceError::BadRequest(format!(
        "cannot read the date {text:?}: use YYYY-MM-DD or an RFC 3339 time like 2026-11-27T14:00:00Z"
    )))
}
