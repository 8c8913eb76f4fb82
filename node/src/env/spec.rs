//! A project's environment as its files say: reading the spec (base,
//! packages, snippets, limits) beneath the project folder, showing it, and
//! editing snippets and limits, each change one commit and one activity
//! entry.

use std::fs;
use std::path::Path;

use tandem_protocol::activity::{Details, FileAction, FileChange, Kind};
use tandem_protocol::api::{
    BaseView, EnvChange, EnvView, LimitsRequest, LimitsView, PackageView, SnippetView,
};
use tandem_protocol::env::{
    BASE_FILE, BaseRef, EnvSpec, LIMITS_FILE, Limits, PACKAGES_DIR, Package, SNIPPETS_DIR, Snippet,
    format_size, parse_memory, snippet_path, validate_pids,
};

use super::accepted::Accepted;
use super::bases::{Base, DEFAULT_BASE};
use super::docker;
use super::error::EnvError;
use crate::error::{ServiceError, io_context};
use crate::service::{Service, lock};

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

pub(super) fn package_view(package: &Package) -> PackageView {
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
    for (stem, text) in crate::data::listings::read_listings_beneath(&root, PACKAGES_DIR)? {
        packages.push(Package::parse(
            &text,
            &format!("{PACKAGES_DIR}/{stem}.toml"),
        )?);
    }
    let mut snippets = Vec::new();
    for (stem, text) in crate::data::listings::read_listings_beneath(&root, SNIPPETS_DIR)? {
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

fn limits_view(limits: &Limits) -> LimitsView {
    LimitsView {
        memory: limits.memory.map(format_size),
        pids: limits.pids,
    }
}

impl Service {
    /// The shipped bases, with whether each image is built here.
    pub async fn bases(&self) -> Vec<BaseView> {
        let docker = docker::connect().await.ok();
        let mut out = Vec::new();
        for base in self.env().catalog.iter() {
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
        Ok(self.env().catalog.get(id)?.def.reference())
    }

    pub(super) fn spec_of(
        &self,
        name: &str,
    ) -> Result<(EnvSpec, String, std::path::PathBuf), ServiceError> {
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

    pub(super) fn accepted(&self, project_id: &str) -> Accepted {
        Accepted::new(self.home().root(), project_id)
    }

    pub async fn env_show(&self, name: &str) -> Result<EnvView, ServiceError> {
        let (spec, project_id, dir) = self.spec_of(name)?;
        let accepted = self.accepted(&project_id).load()?;
        let limits = read_limits(&dir)?;
        let base = self.env().catalog.get(spec.base.id.as_str())?;
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
            let _one = lock(&self.env().accept_lock);
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
            let _one = lock(&self.env().accept_lock);
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
    pub(super) fn commit_env(
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
