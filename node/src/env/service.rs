//! The node's environment operations: reading and editing a project's
//! environment, building it, and running JupyterLab on it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use bollard::Docker;
use tandem_protocol::activity::{Details, FileAction, FileChange, Kind};
use tandem_protocol::api::{
    BaseView, BuildProgress, BuildResult, ContainerView, EnvChange, EnvView, LimitsRequest,
    LimitsView, OutdatedPackage, PackageView, SnippetView,
};
use tandem_protocol::env::{
    BASE_FILE, BaseRef, DEFAULT_PIDS, EnvSpec, LIMITS_FILE, Limits, Manager, PACKAGES_DIR, Package,
    PackageName, SNIPPETS_DIR, Snippet, format_size, parse_memory, parse_requirements,
    snippet_path, validate_pids, validate_version,
};

use super::accepted::Accepted;
use super::bases::{Base, DEFAULT_BASE};
use super::build::{BuildEvent, Builder};
use super::containers::{self, LaunchSpec, Running};
use super::jupyter::{self, Cell};
use super::{EnvError, Monitor, docker};
use crate::error::{ServiceError, io_context};
use crate::projects::project::Project;
use crate::service::{Service, lock, now_ms};

impl From<EnvError> for ServiceError {
    fn from(e: EnvError) -> Self {
        ServiceError::Env(e)
    }
}

impl From<tandem_protocol::env::EnvError> for ServiceError {
    fn from(e: tandem_protocol::env::EnvError) -> Self {
        ServiceError::Env(EnvError::Spec(e))
    }
}

fn base_view(base: &Base, image_here: Option<bool>) -> BaseView {
    BaseView {
        id: base.def.id.to_string(),
        revision: base.def.revision,
        name: base.def.name.clone(),
        description: base.def.description.clone(),
        languages: base.def.languages.clone(),
        tools: base.def.tools.clone(),
        package_managers: base
            .def
            .package_managers
            .iter()
            .map(|m| m.to_string())
            .collect(),
        packages: base
            .def
            .packages
            .iter()
            .map(|p| PackageView {
                manager: p.manager.to_string(),
                name: p.name.clone(),
                version: p.version.clone(),
            })
            .collect(),
        parent: base.def.parent.as_ref().map(|p| p.to_string()),
        size_mb: base.def.size_mb,
        gpu_required: base.def.gpu.required,
        gpu_note: base.def.gpu.note.clone(),
        image_here,
    }
}

fn package_view(package: &Package) -> PackageView {
    PackageView {
        manager: package.manager.to_string(),
        name: package.name.to_string(),
        version: package.version.clone(),
    }
}

/// Reads the environment files of a project folder.
pub fn read_spec(dir: &Path) -> Result<EnvSpec, ServiceError> {
    let base = match fs::read_to_string(dir.join(BASE_FILE)) {
        Ok(text) => BaseRef::parse(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BaseRef {
            // Projects from before environments existed.
            id: DEFAULT_BASE.parse()?,
            revision: 1,
        },
        Err(e) => return Err(io_context(format!("reading {BASE_FILE}"))(e)),
    };
    let mut packages = Vec::new();
    // Listings are read beneath the project folder, never through a link.
    let root = crate::beneath::Beneath::open(dir)?;
    for (stem, text) in crate::data::datasets::read_listings_beneath(&root, PACKAGES_DIR)? {
        packages.push(Package::parse(
            &text,
            &format!("{PACKAGES_DIR}/{stem}.toml"),
        )?);
    }
    let mut snippets = Vec::new();
    for (stem, text) in crate::data::datasets::read_listings_beneath(&root, SNIPPETS_DIR)? {
        snippets.push(Snippet::parse(
            &text,
            &format!("{SNIPPETS_DIR}/{stem}.toml"),
        )?);
    }
    Ok(EnvSpec::new(base, packages, snippets))
}

/// Reads a project's container limits; no file means the defaults.
pub fn read_limits(dir: &Path) -> Result<Limits, ServiceError> {
    match fs::read_to_string(dir.join(LIMITS_FILE)) {
        Ok(text) => Ok(Limits::parse(&text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Limits::default()),
        Err(e) => Err(io_context(format!("reading {LIMITS_FILE}"))(e)),
    }
}

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

fn limits_view(limits: &Limits) -> LimitsView {
    LimitsView {
        memory: limits.memory.map(format_size),
        pids: limits.pids,
    }
}

/// A package named on the command line: `name` or `name==version` (for
/// apt, `name=version` as well).
fn parse_wanted(manager: Manager, text: &str) -> Result<(PackageName, Option<String>), EnvError> {
    // `==` for both; apt's own spelling `=` too.
    let split = text.split_once("==").or_else(|| match manager {
        Manager::Apt => text.split_once('='),
        Manager::Pip => None,
    });
    let (name, version) = match split {
        Some((name, version)) => (name.trim(), Some(version.trim())),
        None => (text.trim(), None),
    };
    let name = PackageName::parse(manager, name)?;
    let version = version.map(|v| validate_version(manager, v)).transpose()?;
    Ok((name, version))
}

impl Service {
    /// The shipped bases, with whether each image is built here.
    pub async fn bases(&self) -> Vec<BaseView> {
        let docker = docker::connect().await.ok();
        let mut out = Vec::new();
        for base in self.env.catalog.iter() {
            let here = match &docker {
                Some(docker) => docker::image_id(docker, &base.def.reference().image_tag())
                    .await
                    .ok()
                    .map(|id| id.is_some()),
                None => None,
            };
            out.push(base_view(base, here));
        }
        out
    }

    /// Checks a base id for `project create --base`.
    pub fn check_base(&self, id: &str) -> Result<BaseRef, ServiceError> {
        Ok(self.env.catalog.get(id)?.def.reference())
    }

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

    fn spec_of(&self, name: &str) -> Result<(EnvSpec, String, std::path::PathBuf), ServiceError> {
        let project = self.project(name)?;
        let project = lock(&project);
        if !project.manifest.kind.is_project() {
            return Err(EnvError::NotHere(format!(
                "{name} is a dataset: datasets have no environment; link it into a project"
            ))
            .into());
        }
        Ok((
            read_spec(&project.dir)?,
            project.id().to_string(),
            project.dir.clone(),
        ))
    }

    fn accepted(&self, project_id: &str) -> Accepted {
        Accepted::new(self.home().root(), project_id)
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

    pub async fn env_show(&self, name: &str) -> Result<EnvView, ServiceError> {
        let (spec, project_id, dir) = self.spec_of(name)?;
        let accepted = self.accepted(&project_id).load()?;
        let limits = read_limits(&dir)?;
        let base = self.env.catalog.get(spec.base.id.as_str())?;
        let (image, built, docker_error, base_here) = match docker::connect().await {
            Ok(docker) => {
                let base_id = docker::image_id(&docker, &spec.base.image_tag()).await?;
                let image = base_id.as_ref().map(|id| spec.image_tag(id));
                let built = match &image {
                    Some(tag) => docker::image_id(&docker, tag).await?.is_some(),
                    None => false,
                };
                (image, built, None, Some(base_id.is_some()))
            }
            Err(e) => (None, false, Some(e.to_string()), None),
        };
        Ok(EnvView {
            project: name.to_owned(),
            base: base_view(base, base_here),
            packages: spec.packages.iter().map(package_view).collect(),
            snippets: spec
                .snippets
                .iter()
                .map(|s| SnippetView {
                    name: s.name.clone(),
                    lines: s.lines.clone(),
                    hash: s.hash(),
                    accepted: accepted.contains(&s.hash()),
                })
                .collect(),
            image,
            built,
            docker: docker_error,
            dockerfile: spec.dockerfile(),
            limits: limits_view(&limits),
        })
    }

    /// Pins packages, looking up versions inside the base image: the newest
    /// when none is given, and a check that a given one exists.
    pub async fn env_add(
        self: &Arc<Self>,
        name: &str,
        manager: &str,
        wanted: &[String],
    ) -> Result<EnvChange, ServiceError> {
        let manager: Manager = manager.parse().map_err(EnvError::from)?;
        if wanted.is_empty() {
            return Err(ServiceError::BadRequest("name at least one package".into()));
        }
        let mut parsed = Vec::new();
        for text in wanted {
            parsed.push(parse_wanted(manager, text)?);
        }
        self.pin_packages(name, manager, parsed).await
    }

    /// Pins every package of a pip `requirements.txt`.
    pub async fn env_import(
        self: &Arc<Self>,
        name: &str,
        text: &str,
    ) -> Result<EnvChange, ServiceError> {
        let requirements = parse_requirements(text).map_err(EnvError::from)?;
        if requirements.is_empty() {
            return Err(ServiceError::BadRequest(
                "the requirements file names no package".into(),
            ));
        }
        let parsed = requirements
            .into_iter()
            .map(|r| (r.name, r.version))
            .collect();
        self.pin_packages(name, Manager::Pip, parsed).await
    }

    async fn pin_packages(
        self: &Arc<Self>,
        name: &str,
        manager: Manager,
        wanted: Vec<(PackageName, Option<String>)>,
    ) -> Result<EnvChange, ServiceError> {
        let (spec, _, _) = self.spec_of(name)?;
        let docker = docker::connect().await?;
        let base_image = self.ensure_base_for(name, &docker, &spec).await?;
        let names: Vec<PackageName> = wanted.iter().map(|(n, _)| n.clone()).collect();
        let found = super::resolve::versions(&docker, &base_image, manager, &names).await?;
        let mut packages = Vec::new();
        for (package, version) in wanted {
            let Some(Some(versions)) = found.get(&package) else {
                return Err(EnvError::UnknownPackage {
                    manager,
                    name: package.to_string(),
                    hint: match manager {
                        Manager::Pip => " in the package index".into(),
                        Manager::Apt => format!(" in the Debian release of base {}", spec.base.id),
                    },
                }
                .into());
            };
            let newest = super::resolve::newest(manager, versions).unwrap_or_default();
            let version = match version {
                Some(version) => {
                    if !versions.contains(&version) {
                        return Err(EnvError::UnknownVersion {
                            manager,
                            name: package.to_string(),
                            version,
                            newest,
                        }
                        .into());
                    }
                    version
                }
                None => newest,
            };
            packages.push(Package::new(manager, package.as_str(), &version)?);
        }
        let added: Vec<PackageView> = packages.iter().map(package_view).collect();
        let list = packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!("Pinned {manager} packages: {list}");
        let writes = packages
            .iter()
            .map(|p| (p.path(), Some(p.to_toml())))
            .collect();
        let commit = {
            let service = self.clone();
            let (name, message) = (name.to_owned(), message.clone());
            tokio::task::spawn_blocking(move || service.commit_env(&name, writes, &message))
                .await
                .map_err(|e| ServiceError::BadRequest(format!("internal error: {e}")))??
        };
        Ok(EnvChange {
            added,
            removed: vec![],
            commit,
            message,
        })
    }

    pub fn env_remove(
        &self,
        name: &str,
        manager: &str,
        packages: &[String],
    ) -> Result<EnvChange, ServiceError> {
        let manager: Manager = manager.parse().map_err(EnvError::from)?;
        let (spec, _, _) = self.spec_of(name)?;
        let mut removed = Vec::new();
        for text in packages {
            let package = PackageName::parse(manager, text).map_err(EnvError::from)?;
            let Some(pinned) = spec
                .packages
                .iter()
                .find(|p| p.manager == manager && p.name == package)
            else {
                return Err(ServiceError::NoSuchFile(format!(
                    "{manager} package {package} is not in {name}'s environment (see `tandem env show {name}`)"
                )));
            };
            removed.push(pinned.clone());
        }
        if removed.is_empty() {
            return Err(ServiceError::BadRequest("name at least one package".into()));
        }
        let list = removed
            .iter()
            .map(|p| p.name.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!("Removed {manager} packages: {list}");
        let writes = removed.iter().map(|p| (p.path(), None)).collect();
        let commit = self.commit_env(name, writes, &message)?;
        Ok(EnvChange {
            added: vec![],
            removed: removed.iter().map(package_view).collect(),
            commit,
            message,
        })
    }

    pub fn snippet_add(
        &self,
        name: &str,
        snippet: &str,
        lines: &str,
    ) -> Result<EnvChange, ServiceError> {
        let (_, project_id, _) = self.spec_of(name)?;
        let snippet = Snippet::new(snippet, lines).map_err(EnvError::from)?;
        // This node's user wrote these lines: they are accepted as written,
        // before the file exists, so no build sees them unaccepted.
        {
            let _one = lock(&self.env.accept_lock);
            self.accepted(&project_id).add(&snippet.hash())?;
        }
        let message = format!("Set Dockerfile snippet {}", snippet.name);
        let commit = self.commit_env(
            name,
            vec![(snippet.path(), Some(snippet.to_toml()))],
            &message,
        )?;
        Ok(EnvChange {
            added: vec![],
            removed: vec![],
            commit,
            message,
        })
    }

    /// Accepts a snippet from someone else, as the user saw it: `hash`
    /// must name its current lines.
    pub fn snippet_accept(
        &self,
        name: &str,
        snippet: &str,
        hash: &str,
    ) -> Result<EnvChange, ServiceError> {
        let (spec, project_id, _) = self.spec_of(name)?;
        tandem_protocol::env::validate_snippet_name(snippet).map_err(EnvError::from)?;
        let Some(found) = spec.snippets.iter().find(|s| s.name == snippet) else {
            return Err(ServiceError::NoSuchFile(format!(
                "{name} has no snippet named {snippet:?}"
            )));
        };
        if found.hash() != hash {
            return Err(EnvError::SnippetChanged {
                name: found.name.clone(),
                lines: found.lines.clone(),
            }
            .into());
        }
        {
            let _one = lock(&self.env.accept_lock);
            self.accepted(&project_id).add(hash)?;
        }
        Ok(EnvChange {
            added: vec![],
            removed: vec![],
            commit: None,
            message: format!(
                "Accepted Dockerfile snippet {snippet}; `tandem build {name}` builds it"
            ),
        })
    }

    /// Sets the project's container limits (a tracked file: every member's
    /// containers get them, each held to its own engine's memory).
    pub fn env_limits(
        &self,
        name: &str,
        request: &LimitsRequest,
    ) -> Result<EnvChange, ServiceError> {
        let (_, _, dir) = self.spec_of(name)?;
        let mut limits = if request.reset {
            Limits::default()
        } else {
            read_limits(&dir)?
        };
        if let Some(memory) = &request.memory {
            limits.memory = Some(parse_memory(memory).map_err(EnvError::from)?);
        }
        if let Some(pids) = request.pids {
            limits.pids = Some(validate_pids(&pids.to_string()).map_err(EnvError::from)?);
        }
        let describe = |limits: &Limits| {
            let memory = limits
                .memory
                .map_or_else(|| "default".to_owned(), format_size);
            let pids = limits
                .pids
                .map_or_else(|| "default".to_owned(), |p| p.to_string());
            format!("memory {memory}, processes {pids}")
        };
        let message = format!("Set container limits: {}", describe(&limits));
        let write = (!limits.is_empty()).then(|| limits.to_toml());
        let commit = self.commit_env(name, vec![(LIMITS_FILE.to_owned(), write)], &message)?;
        Ok(EnvChange {
            added: vec![],
            removed: vec![],
            commit,
            message,
        })
    }

    pub fn snippet_remove(&self, name: &str, snippet: &str) -> Result<EnvChange, ServiceError> {
        let (spec, _, _) = self.spec_of(name)?;
        tandem_protocol::env::validate_snippet_name(snippet).map_err(EnvError::from)?;
        if !spec.snippets.iter().any(|s| s.name == snippet) {
            return Err(ServiceError::NoSuchFile(format!(
                "{name} has no snippet named {snippet:?}"
            )));
        }
        let message = format!("Removed Dockerfile snippet {snippet}");
        let commit = self.commit_env(name, vec![(snippet_path(snippet), None)], &message)?;
        Ok(EnvChange {
            added: vec![],
            removed: vec![],
            commit,
            message,
        })
    }

    /// Writes (or, for `None`, deletes) environment files, commits exactly
    /// those and records one environment entry.
    fn commit_env(
        &self,
        name: &str,
        writes: Vec<(String, Option<String>)>,
        message: &str,
    ) -> Result<Option<String>, ServiceError> {
        let project = self.project(name)?;
        let mut project = lock(&project);
        let mut files = Vec::new();
        for (path, contents) in &writes {
            let target = project.dir.join(path);
            let existed = target.exists();
            match contents {
                Some(contents) => {
                    if let Some(parent) = target.parent() {
                        fs::create_dir_all(parent)
                            .map_err(io_context(format!("creating {path}")))?;
                    }
                    crate::fsutil::atomic_write(&target, contents.as_bytes(), None)
                        .map_err(io_context(format!("writing {path}")))?;
                    files.push(FileChange {
                        path: path.clone(),
                        action: if existed {
                            FileAction::Modified
                        } else {
                            FileAction::Added
                        },
                    });
                }
                None => {
                    if existed {
                        fs::remove_file(&target).map_err(io_context(format!("removing {path}")))?;
                    }
                    files.push(FileChange {
                        path: path.clone(),
                        action: FileAction::Deleted,
                    });
                }
            }
        }
        let paths: Vec<&str> = writes.iter().map(|(p, _)| p.as_str()).collect();
        let commit = crate::projects::repo::commit_changed_paths(
            &project.repo,
            &self.signature()?,
            &format!("[tandem:environment] {message}\n\n{}", self.trailer()),
            &paths,
        )?;
        let commit = commit.map(|c| c.to_string());
        self.append(
            &mut project,
            Kind::Environment,
            message.to_owned(),
            commit.clone(),
            Details {
                files,
                ..Details::default()
            },
            vec![],
        )?;
        Ok(commit)
    }

    /// Newer versions of the pinned packages.
    pub async fn env_outdated(&self, name: &str) -> Result<Vec<OutdatedPackage>, ServiceError> {
        let (spec, _, _) = self.spec_of(name)?;
        let docker = docker::connect().await?;
        let base_image = self.ensure_base_for(name, &docker, &spec).await?;
        let mut out = Vec::new();
        for manager in [Manager::Apt, Manager::Pip] {
            let pinned: BTreeMap<&PackageName, &Package> = spec
                .packages
                .iter()
                .filter(|p| p.manager == manager)
                .map(|p| (&p.name, p))
                .collect();
            if pinned.is_empty() {
                continue;
            }
            let names: Vec<PackageName> = pinned.keys().map(|n| (*n).clone()).collect();
            let found = super::resolve::versions(&docker, &base_image, manager, &names).await?;
            for (name, package) in pinned {
                let Some(Some(versions)) = found.get(name) else {
                    continue;
                };
                let Some(newest) = super::resolve::newest(manager, versions) else {
                    continue;
                };
                let newer =
                    tandem_protocol::env::compare_versions(manager, &newest, &package.version)
                        == std::cmp::Ordering::Greater;
                if newer {
                    out.push(OutdatedPackage {
                        manager: manager.to_string(),
                        name: name.to_string(),
                        pinned: package.version.clone(),
                        newest,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Builds the base chain (reporting progress under the project's name)
    /// and returns the base image tag.
    async fn ensure_base_for(
        &self,
        name: &str,
        docker: &Docker,
        spec: &EnvSpec,
    ) -> Result<String, ServiceError> {
        let _one_at_a_time = self.env.build_lock.lock().await;
        let builder = Builder::new(docker, &self.env.catalog);
        let report = self.progress_reporter(name);
        let result = builder
            .ensure_base(
                spec.base.id.as_str(),
                spec.base.revision,
                &report,
                &mut Vec::new(),
            )
            .await;
        lock(&self.env.builds).remove(name);
        result?;
        Ok(spec.base.image_tag())
    }

    fn progress_reporter(&self, name: &str) -> impl Fn(BuildEvent) + Send + Sync + '_ {
        let project = name.to_owned();
        lock(&self.env.builds).insert(
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
            let mut builds = lock(&self.env.builds);
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
        lock(&self.env.builds).values().cloned().collect()
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
        let _one_at_a_time = self.env.build_lock.lock().await;
        let builder = Builder::new(docker, &self.env.catalog);
        let report = self.progress_reporter(name);
        let outcome = builder.build_env(spec, &report).await;
        lock(&self.env.builds).remove(name);
        Ok(outcome?)
    }

    fn node_label(&self) -> String {
        self.key().public().to_did()
    }

    /// Starts JupyterLab on the project (building first if needed) and
    /// follows its kernels.
    pub async fn launch(
        self: &Arc<Self>,
        name: &str,
        tool: Option<&str>,
    ) -> Result<ContainerView, ServiceError> {
        if let Some(tool) = tool
            && tool != "jupyterlab"
        {
            return Err(ServiceError::BadRequest(format!(
                "unknown tool {tool:?}: tandem launches jupyterlab"
            )));
        }
        let (spec, project_id, dir) = self.spec_of(name)?;
        self.check_snippets(name, &project_id, &spec)?;
        let limits = read_limits(&dir)?;
        let docker = docker::connect().await?;
        let built = self.build_spec(name, &docker, &spec).await?;
        let (memory, pids) = effective_limits(&docker, &limits).await;
        let gpu = self
            .env
            .catalog
            .get(spec.base.id.as_str())?
            .def
            .gpu
            .required;
        let node = self.node_label();
        let (running, started_now) = containers::launch(
            &docker,
            &LaunchSpec {
                node: &node,
                project_id: &project_id,
                project_name: name,
                project_dir: &dir,
                image: &built.image,
                gpu,
                memory,
                pids,
            },
        )
        .await?;
        self.monitor(&running);
        Ok(self.container_view(&running, started_now))
    }

    fn container_view(&self, running: &Running, started_now: bool) -> ContainerView {
        let followed = lock(&self.env.monitors)
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
        }
    }

    /// Follows a container's kernels unless it is followed already.
    fn monitor(self: &Arc<Self>, running: &Running) {
        let mut monitors = lock(&self.env.monitors);
        if monitors.contains_key(&running.container) {
            return;
        }
        let (cells, mut received) = tokio::sync::mpsc::unbounded_channel::<Cell>();
        let (follower, followed) = jupyter::follow(running.clone(), cells);
        let service = self.clone();
        let project = running.project_name.clone();
        let recorder = tokio::spawn(async move {
            while let Some(cell) = received.recv().await {
                if let Err(e) = service.record_cell(&project, cell).await {
                    tracing::warn!(project = %project, error = %e, "could not record a cell");
                }
            }
        });
        monitors.insert(
            running.container.clone(),
            Monitor {
                project: running.project_name.clone(),
                follower,
                recorder,
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
        let service = self.clone();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || {
            let project = service.project(&name)?;
            let mut project = lock(&project);
            // Captured here from the project's own notebook: obtained for it.
            service.note_obtained(&project, figures.iter().filter_map(|f| f.parse().ok()));
            let (commit, files) = service.commit_pending(&mut project, &message)?;
            let output = (!cell.output.is_empty()).then_some(cell.output);
            service.append(
                &mut project,
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
        .map_err(|e| ServiceError::BadRequest(format!("internal error: {e}")))?
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
            lock(&self.env.monitors).remove(&running.container);
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
                    if alive {
                        tracing::info!(project = %running.project_name, url = %running.base_url(), "found a running JupyterLab");
                        self.monitor(&running);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list containers"),
        }
    }

    /// At shutdown: stops every container this node started.
    pub async fn stop_all_containers(&self) {
        let monitors: Vec<String> = lock(&self.env.monitors).keys().cloned().collect();
        if monitors.is_empty() {
            return;
        }
        let Ok(docker) = docker::connect().await else {
            return;
        };
        if let Ok(found) = containers::list(&docker, &self.node_label(), true).await {
            for (running, _) in found {
                lock(&self.env.monitors).remove(&running.container);
                if let Err(e) = containers::stop(&docker, &running.container).await {
                    tracing::warn!(container = %running.container, error = %e, "could not stop");
                }
            }
        }
    }

    /// A figure's bytes and its media type, for the UI.
    pub async fn figure(
        self: &Arc<Self>,
        hash: &str,
    ) -> Result<(Vec<u8>, &'static str), ServiceError> {
        let hash: tandem_protocol::blob::BlobHash = hash
            .parse()
            .map_err(|_| ServiceError::BadRequest(format!("{hash:?} is not a blob hash")))?;
        let bytes = self
            .blob_store_async()
            .await?
            .read_bytes(&hash)
            .await
            .map_err(|_| ServiceError::NoSuchFile(format!("no figure {hash} here")))?;
        let mime = if bytes.starts_with(b"\x89PNG") {
            "image/png"
        } else if bytes.starts_with(b"\xff\xd8") {
            "image/jpeg"
        } else {
            "image/svg+xml"
        };
        Ok((bytes, mime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_named_with_or_without_a_version() {
        let (name, version) = parse_wanted(Manager::Pip, "NumPy==2.4.6").expect("pip pin");
        assert_eq!(
            (name.as_str(), version.as_deref()),
            ("numpy", Some("2.4.6"))
        );
        assert_eq!(parse_wanted(Manager::Pip, "numpy").expect("name").1, None);
        for apt in ["jq==1.6-2.1", "jq=1.6-2.1"] {
            let (name, version) = parse_wanted(Manager::Apt, apt).expect("apt pin");
            assert_eq!((name.as_str(), version.as_deref()), ("jq", Some("1.6-2.1")));
        }
        assert!(
            parse_wanted(Manager::Pip, "numpy=2.4.6").is_err(),
            "pip pins use =="
        );
        assert!(parse_wanted(Manager::Pip, "numpy==latest").is_err());
    }

    #[test]
    fn a_project_without_env_files_gets_the_default_base_and_bad_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = read_spec(dir.path()).expect("defaults");
        assert_eq!(spec.base.id.as_str(), DEFAULT_BASE);
        assert!(spec.packages.is_empty());
        let packages = dir.path().join(PACKAGES_DIR);
        fs::create_dir_all(&packages).expect("mkdir");
        fs::write(
            packages.join("pip_numpy.toml"),
            "manager = \"pip\"\nname = \"pandas\"\nversion = \"1\"\n",
        )
        .expect("write");
        let err = read_spec(dir.path()).expect_err("misplaced file");
        assert!(err.to_string().contains("pip_numpy.toml"), "{err}");
    }
}
