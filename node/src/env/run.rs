//! Running a project's environment: building its images (one build at a
//! time, progress reported under the project's name), launching
//! JupyterLab confined to the project folder, following its kernels and
//! recording each executed cell into the feed.

use std::sync::Arc;

use bollard::Docker;
use tandem_protocol::activity::{Details, FileChange, Kind};
use tandem_protocol::api::{BuildProgress, BuildResult, ContainerView};
use tandem_protocol::env::{DEFAULT_PIDS, EnvSpec, Limits};

use super::build::{BuildEvent, Builder};
use super::containers::{self, LaunchSpec, Running};
use super::docker;
use super::error::EnvError;
use super::jupyter::{self, Cell};
use super::spec::read_limits;
use super::state::Monitor;
use crate::error::{ServiceError, io_context};
use crate::projects::project::Project;
use crate::service::{Service, lock, now_ms};

/// Memory a container gets when its project sets none: half of what the
/// engine has (the host keeps the rest), 8 GiB when the engine does not say.
const FALLBACK_MEMORY: u64 = 8 << 30;

/// The memory and pids limits a container starts with. A project's memory
/// limit is held to the engine's total: a limit above it limits nothing.
async fn effective_limits(docker: &Docker, limits: &Limits) -> (i64, i64) {
    let total = docker
        .info()
        .await
        .ok()
        .and_then(|info| info.mem_total)
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0);
    let memory = match (limits.memory, total) {
        (Some(wanted), Some(total)) => wanted.min(total),
        (Some(wanted), None) => wanted,
        (None, Some(total)) => total / 2,
        (None, None) => FALLBACK_MEMORY,
    };
    let memory = i64::try_from(memory).unwrap_or(i64::MAX);
    (memory, i64::from(limits.pids.unwrap_or(DEFAULT_PIDS)))
}

impl Service {
    /// Creates the image every base starts from out of Debian's packages,
    /// for machines that reach no registry. Returns what the script said.
    pub async fn bootstrap_bases(&self) -> Result<String, ServiceError> {
        docker::connect().await?;
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(super::bases::BOOTSTRAP_SCRIPT)
            .arg("bootstrap-debian.sh")
            .output()
            .await
            .map_err(io_context("running the bootstrap script"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            return Err(EnvError::Docker(format!("bootstrap failed:\n{}", text.trim())).into());
        }
        Ok(text)
    }

    /// Refuses to build while a snippet's lines are not ones this node's
    /// user wrote or accepted.
    fn check_snippets(
        &self,
        name: &str,
        project_id: &str,
        spec: &EnvSpec,
    ) -> Result<(), ServiceError> {
        let accepted = self.accepted(project_id).load()?;
        let unaccepted: Vec<(String, String)> = spec
            .snippets
            .iter()
            .filter(|s| !accepted.contains(&s.hash()))
            .map(|s| (s.name.clone(), s.lines.clone()))
            .collect();
        if unaccepted.is_empty() {
            Ok(())
        } else {
            Err(EnvError::UnacceptedSnippets {
                project: name.to_owned(),
                snippets: unaccepted,
            }
            .into())
        }
    }

    /// Builds the base chain (reporting progress under the project's name)
    /// and returns the base image tag.
    pub(super) async fn ensure_base_for(
        &self,
        name: &str,
        docker: &Docker,
        spec: &EnvSpec,
    ) -> Result<String, ServiceError> {
        let _one_at_a_time = self.env().build_lock.lock().await;
        let builder = Builder::new(docker, &self.env().catalog);
        let report = self.progress_reporter(name);
        let result = builder
            .ensure_base(
                spec.base.id.as_str(),
                spec.base.revision,
                &report,
                &mut Vec::new(),
            )
            .await;
        lock(&self.env().builds).remove(name);
        result?;
        Ok(spec.base.image_tag())
    }

    fn progress_reporter(&self, name: &str) -> impl Fn(BuildEvent) + Send + Sync + '_ {
        let project = name.to_owned();
        lock(&self.env().builds).insert(
            project.clone(),
            BuildProgress {
                project: project.clone(),
                image: String::new(),
                step: 0,
                total: 0,
                cached_steps: 0,
                line: "starting".into(),
                started_ms: now_ms(),
            },
        );
        move |event| {
            let mut builds = lock(&self.env().builds);
            let Some(progress) = builds.get_mut(&project) else {
                return;
            };
            match event {
                BuildEvent::Image { image } => {
                    progress.image = image;
                    progress.step = 0;
                    progress.total = 0;
                }
                BuildEvent::Step { step, total, text } => {
                    progress.step = step;
                    progress.total = total;
                    progress.line = text;
                }
                BuildEvent::Cached => progress.cached_steps += 1,
                // Docker's own bookkeeping lines say less than the step.
                BuildEvent::Line(line) if !line.trim_start().starts_with("--->") => {
                    progress.line = line
                }
                BuildEvent::Line(_) => {}
            }
        }
    }

    /// Builds in progress.
    pub fn builds(&self) -> Vec<BuildProgress> {
        lock(&self.env().builds).values().cloned().collect()
    }

    /// Builds the project's image; an unchanged environment is one lookup.
    pub async fn build(&self, name: &str) -> Result<BuildResult, ServiceError> {
        let (spec, project_id, _) = self.spec_of(name)?;
        self.check_snippets(name, &project_id, &spec)?;
        let docker = docker::connect().await?;
        self.build_spec(name, &docker, &spec).await
    }

    async fn build_spec(
        &self,
        name: &str,
        docker: &Docker,
        spec: &EnvSpec,
    ) -> Result<BuildResult, ServiceError> {
        let _one_at_a_time = self.env().build_lock.lock().await;
        let builder = Builder::new(docker, &self.env().catalog);
        let report = self.progress_reporter(name);
        let outcome = builder.build_env(spec, &report).await;
        lock(&self.env().builds).remove(name);
        Ok(outcome?)
    }

    fn node_label(&self) -> String {
        self.key().public().to_did()
    }

    /// Starts JupyterLab on the project (building first if needed) and
    /// follows its kernels; with `at`, on a read-only copy of that version
    /// in the environment it names, followed by nobody (see
    /// [`Service::launch_at`]).
    pub async fn launch(
        self: &Arc<Self>,
        name: &str,
        tool: Option<&str>,
        at: Option<&str>,
    ) -> Result<ContainerView, ServiceError> {
        if let Some(tool) = tool
            && tool != "jupyterlab"
        {
            return Err(ServiceError::BadRequest(format!(
                "unknown tool {tool:?}: tandem launches jupyterlab"
            )));
        }
        if let Some(version) = at {
            return self.launch_at(name, version).await;
        }
        let (spec, project_id, dir) = self.spec_of(name)?;
        self.check_snippets(name, &project_id, &spec)?;
        let limits = read_limits(&dir)?;
        let running = self
            .start_container(name, &spec, &project_id, &dir, &limits, None)
            .await?;
        self.monitor(&running.0, running.1);
        Ok(self.container_view(&running.0, running.1))
    }

    /// Starts JupyterLab on a read-only copy of one version, in the
    /// environment that version names (built from its spec, reusing cached
    /// layers). Its cells are not recorded: the copy is not the project,
    /// and nothing there can change it.
    pub async fn launch_at(
        self: &Arc<Self>,
        name: &str,
        version: &str,
    ) -> Result<ContainerView, ServiceError> {
        // Refuses a dataset as the working tree's launch does.
        let (_, project_id, dir) = self.spec_of(name)?;
        let checkout = self.version_checkout(name, version).await?;
        self.check_snippets(name, &project_id, &checkout.spec)?;
        // Today's limits: they are this machine's, not the version's.
        let limits = read_limits(&dir)?;
        let (running, started_now) = self
            .start_container(
                name,
                &checkout.spec,
                &project_id,
                &checkout.dir,
                &limits,
                Some(&checkout.version.commit),
            )
            .await?;
        Ok(self.container_view(&running, started_now))
    }

    async fn start_container(
        &self,
        name: &str,
        spec: &EnvSpec,
        project_id: &str,
        dir: &std::path::Path,
        limits: &Limits,
        version: Option<&str>,
    ) -> Result<(Running, bool), ServiceError> {
        let docker = docker::connect().await?;
        let built = self.build_spec(name, &docker, spec).await?;
        let (memory, pids) = effective_limits(&docker, limits).await;
        let gpu = self
            .env()
            .catalog
            .get(spec.base.id.as_str())?
            .def
            .gpu
            .required;
        let node = self.node_label();
        Ok(containers::launch(
            &docker,
            &LaunchSpec {
                node: &node,
                project_id,
                project_name: name,
                project_dir: dir,
                image: &built.image,
                gpu,
                memory,
                pids,
                version,
            },
        )
        .await?)
    }

    /// Whether a followed JupyterLab runs on the project's working tree.
    pub(crate) fn is_running(&self, name: &str) -> bool {
        lock(&self.env().monitors)
            .values()
            .any(|m| m.project == name)
    }

    fn container_view(&self, running: &Running, started_now: bool) -> ContainerView {
        let followed = lock(&self.env().monitors)
            .get(&running.container)
            .map(|m| lock(&m.followed).len())
            .unwrap_or(0);
        ContainerView {
            project: running.project_name.clone(),
            container: running.container.clone(),
            image: running.image.clone(),
            url: running.lab_url(),
            port: running.port,
            started_ms: running.started_ms,
            kernels_followed: followed,
            started_now,
            version: running.version.clone(),
        }
    }

    /// Follows a container's kernels unless it is followed already;
    /// `fresh`: it was started just now (see [`Service::watch_drift`]).
    fn monitor(self: &Arc<Self>, running: &Running, fresh: bool) {
        let mut monitors = lock(&self.env().monitors);
        if monitors.contains_key(&running.container) {
            return;
        }
        let (cells, mut received) = tokio::sync::mpsc::unbounded_channel::<Cell>();
        let (follower, followed) = jupyter::follow(running.clone(), cells);
        let service = self.clone();
        let project = running.project_name.clone();
        let nudge = Arc::new(tokio::sync::Notify::new());
        let drift = self.watch_drift(running.clone(), fresh, nudge.clone());
        let recorder = tokio::spawn(async move {
            while let Some(cell) = received.recv().await {
                if let Err(e) = service.record_cell(&project, cell).await {
                    tracing::warn!(project = %project, error = %e, "could not record a cell");
                }
                // A cell may have installed or removed packages.
                nudge.notify_one();
            }
        });
        monitors.insert(
            running.container.clone(),
            Monitor {
                project: running.project_name.clone(),
                follower,
                recorder,
                drift,
                followed,
            },
        );
    }

    /// Records one executed cell: its figures go to the blob store, the
    /// files it changed into a commit, and an entry links them.
    pub(crate) async fn record_cell(
        self: &Arc<Self>,
        name: &str,
        cell: Cell,
    ) -> Result<(), ServiceError> {
        if cell.ignored() {
            return Ok(());
        }
        let mut figures = Vec::new();
        if !cell.figures.is_empty() {
            let store = self.blob_store_async().await?;
            for figure in &cell.figures {
                figures.push(store.ingest_bytes(figure.bytes.clone()).await?.to_string());
            }
        }
        let first_line = cell
            .code
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("(empty cell)");
        let mut title: String = first_line.chars().take(72).collect();
        if title.len() < first_line.len() {
            title.push('…');
        }
        let message = match &cell.error {
            Some(error) => format!("Ran {title} (failed: {error})"),
            None => format!("Ran {title}"),
        };
        // Sweeping and committing are blocking Git work.
        self.with_project(name, move |service, project| {
            // Captured here from the project's own notebook: obtained for it.
            service.note_obtained(project, figures.iter().filter_map(|f| f.parse().ok()));
            let (commit, files) = service.commit_pending(project, &message)?;
            let output = (!cell.output.is_empty()).then_some(cell.output);
            service.append(
                project,
                Kind::Code,
                message,
                commit,
                Details {
                    files,
                    code: Some(cell.code),
                    output,
                    figures,
                },
                vec![],
            )?;
            Ok(())
        })
        .await
    }

    /// Commits whatever changed (as a sweep would) under one message.
    fn commit_pending(
        &self,
        project: &mut Project,
        message: &str,
    ) -> Result<(Option<String>, Vec<FileChange>), ServiceError> {
        let changes = self.pending_user_changes(project)?;
        if changes.is_empty() {
            return Ok((None, vec![]));
        }
        let text = format!("[tandem:code] {message}\n\n{}", self.trailer());
        let commit = crate::projects::repo::commit_all(&project.repo, &self.signature()?, &text)?;
        Ok((commit.map(|c| c.to_string()), changes))
    }

    /// Stops the project's container.
    pub async fn stop_container(&self, name: &str) -> Result<Vec<ContainerView>, ServiceError> {
        let docker = docker::connect().await?;
        let mut stopped = Vec::new();
        for (running, _) in containers::list(&docker, &self.node_label(), true).await? {
            if running.project_name != name {
                continue;
            }
            lock(&self.env().monitors).remove(&running.container);
            containers::stop(&docker, &running.container).await?;
            stopped.push(self.container_view(&running, false));
        }
        if stopped.is_empty() {
            return Err(ServiceError::NoSuchFile(format!(
                "nothing is running for {name} (see `tandem ps`)"
            )));
        }
        Ok(stopped)
    }

    /// This node's running containers.
    pub async fn containers(&self) -> Result<Vec<ContainerView>, ServiceError> {
        let docker = docker::connect().await?;
        Ok(containers::list(&docker, &self.node_label(), false)
            .await?
            .into_iter()
            .filter(|(_, running)| *running)
            .map(|(running, _)| self.container_view(&running, false))
            .collect())
    }

    /// At start-up: follows containers a previous run left running. Docker
    /// being absent is fine: there is nothing to adopt then.
    pub async fn adopt_containers(self: &Arc<Self>) {
        let Ok(docker) = docker::connect().await else {
            return;
        };
        match containers::list(&docker, &self.node_label(), false).await {
            Ok(found) => {
                for (running, alive) in found {
                    if alive && !running.confined() {
                        // Started before `.git` and `.tandem` were mounted
                        // read-only: its code could write them. Launching
                        // again starts a confined one.
                        tracing::warn!(project = %running.project_name, "stopping a JupyterLab started without the current confinement; run `tandem launch` again");
                        if let Err(e) = containers::stop(&docker, &running.container).await {
                            tracing::warn!(container = %running.container, error = %e, "could not stop");
                        }
                        continue;
                    }
                    if alive && running.version.is_some() {
                        // A read-only copy of an old version: never recorded.
                        continue;
                    }
                    if alive {
                        tracing::info!(project = %running.project_name, url = %running.base_url(), "found a running JupyterLab");
                        self.monitor(&running, false);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list containers"),
        }
    }

    /// At shutdown: stops every container this node started, the
    /// read-only copies of old versions (which nobody follows) included.
    pub async fn stop_all_containers(&self) {
        let Ok(docker) = docker::connect().await else {
            return;
        };
        if let Ok(found) = containers::list(&docker, &self.node_label(), true).await {
            for (running, _) in found {
                lock(&self.env().monitors).remove(&running.container);
                if let Err(e) = containers::stop(&docker, &running.container).await {
                    tracing::warn!(container = %running.container, error = %e, "could not stop");
                }
            }
        }
    }
}
