//! Creating a project or a dataset (laid out in staging, committed and
//! pinned, then moved into place in one rename) and deleting one (moved
//! out of sight first, so a crash never leaves half a project).

use std::fs;

use tandem_protocol::ProjectName;
use tandem_protocol::activity::{Details, Kind};
use tandem_protocol::api::ProjectSummary;
use tandem_protocol::project::{Genesis, validate_description};

use crate::error::{ServiceError, io_context};
use crate::home::random_bytes;
use crate::projects::project::{Manifest, lay_out};
use crate::projects::repo;
use crate::service::{Service, lock, now_ms};

impl Service {
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
        let genesis = Genesis::create(&name, self.key(), now_ms(), random_bytes());
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
            .tempdir_in(self.home().tmp_dir())
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
        crate::projects::project::pin(self.home(), &name, &manifest)?;
        if let Err(e) = fs::rename(staging.path(), &dir) {
            crate::projects::project::unpin(self.home(), &name);
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

    pub fn delete_project(&self, name: &str) -> Result<(), ServiceError> {
        let project = self.project(name)?;
        let (dir, id) = {
            let project = lock(&project);
            project.access_store.remove();
            (project.dir.clone(), project.id())
        };
        let parsed: ProjectName = name.parse()?;
        self.close_project(&parsed);
        // Move out of sight first so a crash never leaves half a project.
        let trash = self
            .home()
            .tmp_dir()
            .join(format!("deleted-{}", hex::encode(random_bytes::<8>())));
        fs::rename(&dir, &trash).map_err(io_context(format!("removing {}", dir.display())))?;
        crate::projects::project::unpin(self.home(), &parsed);
        self.data().obtained().forget(&id);
        let feed = self.home().feeds_dir().join(id.to_string());
        let _ = fs::remove_dir_all(&feed);
        fs::remove_dir_all(&trash).map_err(io_context(format!("removing {}", trash.display())))?;
        Ok(())
    }
}
