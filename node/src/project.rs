//! One project on disk: its folder layout, its manifest, its open handles.
//!
//! ```text
//! <project>/README.md
//! <project>/code/ input/ output/      each with an ignored untracked/
//! <project>/.tandem/project.toml      id, name, description, signed genesis
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use git2::Repository;
use serde::{Deserialize, Serialize};
use tandem_protocol::api::Section;
use tandem_protocol::project::{ProjectError, SignedGenesis};
use tandem_protocol::{ProjectId, ProjectName};

use crate::access_store::{AccessStore, AccessStoreError};
use crate::feed::{Feed, FeedError};
use crate::fsutil::atomic_write;
use crate::repo::RepoError;
use tandem_protocol::access::Access;

pub const MANIFEST: &str = ".tandem/project.toml";

#[derive(Debug, thiserror::Error)]
pub enum ProjectOpenError {
    #[error("{0} is not a Tandem project (no {MANIFEST})")]
    NotAProject(PathBuf),
    #[error("{path}: {message}")]
    BadManifest { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Identity {
        path: PathBuf,
        #[source]
        source: ProjectError,
    },
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Access(#[from] AccessStoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `.tandem/project.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: ProjectId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub genesis: SignedGenesis,
    /// A project, or a dataset (versioned files under `data/`).
    #[serde(default, skip_serializing_if = "ProjectKind::is_project")]
    pub kind: ProjectKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectKind {
    #[default]
    Project,
    Dataset,
}

impl ProjectKind {
    pub fn is_project(&self) -> bool {
        *self == ProjectKind::Project
    }
}

impl Manifest {
    pub fn parse(text: &str, path: &Path) -> Result<Self, ProjectOpenError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ProjectOpenError::BadManifest {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        manifest
            .genesis
            .verify_id(&manifest.id)
            .map_err(|source| ProjectOpenError::Identity {
                path: path.to_owned(),
                source,
            })?;
        Ok(manifest)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// Writes the files a new dataset starts with: `data/`, and a blob policy
/// that makes every file under it a blob.
pub fn lay_out_dataset(dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
    fs::create_dir_all(dir.join(tandem_protocol::dataset::DATA_DIR))?;
    fs::write(dir.join("data/.gitkeep"), "")?;
    fs::create_dir_all(dir.join(".tandem"))?;
    fs::write(
        dir.join(tandem_protocol::blob::POLICY_FILE),
        "# Every file of a dataset is kept as a blob.\ndata_threshold = 0\n",
    )?;
    fs::write(
        dir.join("README.md"),
        format!(
            "# {}\n\n{}A Tandem dataset: its files are under `data/`; each version is listed in `.tandem/versions/`.\n",
            manifest.name,
            if manifest.description.is_empty() {
                String::new()
            } else {
                format!("{}\n\n", manifest.description)
            }
        ),
    )?;
    atomic_write(&dir.join(MANIFEST), manifest.to_toml().as_bytes(), None)
}

/// Writes the files a new project starts with.
pub fn lay_out(
    dir: &Path,
    manifest: &Manifest,
    base: Option<&tandem_protocol::env::BaseRef>,
) -> std::io::Result<()> {
    if let Some(base) = base {
        let path = dir.join(tandem_protocol::env::BASE_FILE);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, base.to_toml())?;
    }
    for section in Section::ALL {
        let folder = dir.join(section.as_str());
        fs::create_dir_all(folder.join("untracked"))?;
        fs::write(folder.join(".gitkeep"), "")?;
    }
    fs::write(
        dir.join(".gitignore"),
        "# Files here stay on this machine: never committed, never synced.\n\
         code/untracked/\ninput/untracked/\noutput/untracked/\n\
         .ipynb_checkpoints/\n.virtual_documents/\n__pycache__/\n",
    )?;
    let description = if manifest.description.is_empty() {
        String::new()
    } else {
        format!("{}\n\n", manifest.description)
    };
    fs::write(
        dir.join("README.md"),
        format!(
            "# {}\n\n{description}A Tandem project.\n\n- `code/`: notebooks and scripts\n- `input/`: data the code reads\n- `output/`: results the code writes\n\nFiles under any `untracked/` folder stay on this machine.\n",
            manifest.name
        ),
    )?;
    atomic_write(&dir.join(MANIFEST), manifest.to_toml().as_bytes(), None)
}

/// An open project: manifest, repository and activity feed.
pub struct Project {
    pub name: ProjectName,
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub repo: Repository,
    pub feed: Feed,
    pub access: Access,
    pub access_store: AccessStore,
}

impl Project {
    pub fn open(
        name: ProjectName,
        dir: PathBuf,
        feeds_dir: &Path,
        access_dir: &Path,
    ) -> Result<Self, ProjectOpenError> {
        let manifest_path = dir.join(MANIFEST);
        let text = match fs::read_to_string(&manifest_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProjectOpenError::NotAProject(dir));
            }
            Err(source) => {
                return Err(ProjectOpenError::Io {
                    path: manifest_path,
                    source,
                });
            }
        };
        let manifest = Manifest::parse(&text, &manifest_path)?;
        let repo = Repository::open(&dir).map_err(RepoError::from)?;
        let feed = Feed::open(&feeds_dir.join(manifest.id.to_string()), manifest.id)?;
        let access_store = AccessStore::new(access_dir, &manifest.id, &dir);
        let access = access_store.load(manifest.id, manifest.genesis.payload.owner)?;
        Ok(Self {
            name,
            dir,
            manifest,
            repo,
            feed,
            access,
            access_store,
        })
    }

    pub fn id(&self) -> ProjectId {
        self.manifest.id
    }
}
