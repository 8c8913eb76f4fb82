//! One project on disk: its folder layout, its manifest, its open handles.
//!
//! ```text
//! <project>/README.md
//! <project>/code/ input/ output/      each with an ignored untracked/
//! <project>/.tandem/project.toml      id, name, description, signed genesis
//! ```
//!
//! The manifest in the working tree is a copy for people and for peers; the
//! node's own copy is pinned in its home (`$TANDEM_HOME/pins/<name>.toml`)
//! when the project arrives (created, cloned, imported). Anyone who may
//! write can commit a manifest, so the pinned id, genesis and kind always
//! win: a working-tree manifest that disagrees is ignored and reported (and
//! put back by the next sweep), and a merge that would change them is
//! refused ([`check_tree`]).

use std::fs;
use std::path::{Path, PathBuf};

use git2::Repository;
use serde::{Deserialize, Serialize};
use tandem_protocol::api::Section;
use tandem_protocol::project::{ProjectError, SignedGenesis};
use tandem_protocol::{ProjectId, ProjectName};

use crate::access::store::{AccessStore, AccessStoreError};
use crate::activity::feed::{Feed, FeedError};
use crate::fsutil::atomic_write;
use crate::home::Home;
use crate::projects::repo::RepoError;
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
    #[error(
        "{path} (this project's pinned identity) is unreadable: {message}; restore it from a backup, or remove it to pin the identity the working tree names (only if you trust that folder)"
    )]
    BadPin { path: PathBuf, message: String },
    #[error(transparent)]
    Obtained(#[from] crate::blobs::obtained::ObtainedError),
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

    /// Whether two manifests name the same project: id, genesis and kind
    /// (name and description are labels, free to change).
    pub fn same_identity(&self, other: &Manifest) -> bool {
        self.id == other.id && self.genesis == other.genesis && self.kind == other.kind
    }
}

/// Why a merge's result was refused: it would change the project's identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityChange {
    #[error(
        "{MANIFEST} would be removed; it names this project, so the merge was refused (the branch and files are unchanged)"
    )]
    Removed,
    #[error(
        "{MANIFEST} would become unreadable ({message}); it names this project, so the merge was refused (the branch and files are unchanged)"
    )]
    Unreadable { message: String },
    #[error(
        "{MANIFEST} would change this project's identity to {found} (this node pinned {pinned}{what}); a project's id and genesis never change, so the merge was refused (the branch and files are unchanged)"
    )]
    Changed {
        found: ProjectId,
        pinned: ProjectId,
        what: &'static str,
    },
}

/// Checks that a tree (a merge's result, or a peer's head about to be
/// fast-forwarded to) keeps the pinned identity.
pub fn check_tree(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    pinned: &Manifest,
) -> Result<(), IdentityChange> {
    let Ok(entry) = tree.get_path(Path::new(MANIFEST)) else {
        return Err(IdentityChange::Removed);
    };
    let unreadable = |message: String| IdentityChange::Unreadable { message };
    let blob = repo
        .find_blob(entry.id())
        .map_err(|_| unreadable("it is not a file".into()))?;
    if blob.size() > MAX_MANIFEST_LEN {
        return Err(unreadable(format!("{} bytes", blob.size())));
    }
    let text = std::str::from_utf8(blob.content()).map_err(|_| unreadable("not text".into()))?;
    let found =
        Manifest::parse(text, Path::new(MANIFEST)).map_err(|e| unreadable(e.to_string()))?;
    if found.same_identity(pinned) {
        return Ok(());
    }
    let what = if found.id != pinned.id {
        ""
    } else if found.genesis != pinned.genesis {
        ", with another genesis"
    } else {
        ", as another kind"
    };
    Err(IdentityChange::Changed {
        found: found.id,
        pinned: pinned.id,
        what,
    })
}

/// Largest manifest read from a tree or a working tree.
const MAX_MANIFEST_LEN: usize = 64 * 1024;

/// Pins a project's identity in the home. Called with the manifest the node
/// verified itself when a project arrives: created, cloned or imported.
pub fn pin(home: &Home, name: &ProjectName, manifest: &Manifest) -> Result<(), ProjectOpenError> {
    let path = home.pin_path(name);
    atomic_write(&path, manifest.to_toml().as_bytes(), Some(0o600))
        .map_err(|source| ProjectOpenError::Io { path, source })
}

/// Drops the pin of a deleted project.
pub fn unpin(home: &Home, name: &ProjectName) {
    let _ = fs::remove_file(home.pin_path(name));
}

/// The pinned manifest, if the project has one.
fn read_pin(path: &Path) -> Result<Option<Manifest>, ProjectOpenError> {
    let text = match read_small(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ProjectOpenError::BadPin {
                path: path.to_owned(),
                message: e.to_string(),
            });
        }
    };
    Manifest::parse(&text, path)
        .map(Some)
        .map_err(|e| ProjectOpenError::BadPin {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

/// Reads a manifest-sized text file, refusing anything larger.
fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_MANIFEST_LEN as u64 + 1)
        .read_to_string(&mut text)?;
    if text.len() > MAX_MANIFEST_LEN {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_MANIFEST_LEN} bytes"
        )));
    }
    Ok(text)
}

/// What the working tree's manifest says: a manifest, missing, or why it
/// cannot be read.
fn read_worktree_manifest(path: &Path) -> Result<Option<Manifest>, ProjectOpenError> {
    match read_small(path) {
        Ok(text) => Manifest::parse(&text, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ProjectOpenError::Io {
            path: path.to_owned(),
            source,
        }),
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
    /// The pinned manifest (labels from the working tree when it agrees).
    pub manifest: Manifest,
    pub repo: Repository,
    pub feed: Feed,
    pub access: Access,
    pub access_store: AccessStore,
    /// What the node ignored about this project (a working-tree manifest
    /// that disagrees with the pin), for the user to see.
    pub problems: Vec<String>,
}

impl Project {
    /// Opens a project folder of the home. The identity comes from the pin;
    /// the working-tree manifest only supplies labels when it agrees.
    ///
    /// A project that has no pin yet (it came here before pins existed) is
    /// pinned now from its working tree, and its record of obtained blobs is
    /// seeded from what this node holds for it (see [`seed_obtained`]).
    pub fn open(name: ProjectName, dir: PathBuf, home: &Home) -> Result<Self, ProjectOpenError> {
        let manifest_path = dir.join(MANIFEST);
        let pin_path = home.pin_path(&name);
        let pinned = read_pin(&pin_path)?;
        let worktree = read_worktree_manifest(&manifest_path);
        let mut problems = Vec::new();
        let (manifest, legacy) = match (pinned, worktree) {
            (Some(pin), Ok(Some(tree))) if tree.same_identity(&pin) => (tree, false),
            (Some(pin), found) => {
                let problem = match found {
                    Ok(Some(tree)) => format!(
                        "{MANIFEST} names project {} but this node pinned {} when the project came here; the working-tree copy is ignored (the next sweep puts the pinned one back)",
                        tree.id, pin.id
                    ),
                    Ok(None) => format!(
                        "{MANIFEST} is missing; the pinned identity {} is used (the next sweep puts it back)",
                        pin.id
                    ),
                    Err(e) => format!(
                        "{MANIFEST} is unreadable ({e}); the pinned identity {} is used (the next sweep puts it back)",
                        pin.id
                    ),
                };
                tracing::warn!(project = %name, "{problem}");
                problems.push(problem);
                (pin, false)
            }
            (None, Ok(Some(tree))) => (tree, true),
            (None, Ok(None)) => return Err(ProjectOpenError::NotAProject(dir)),
            (None, Err(e)) => return Err(e),
        };
        let repo = crate::projects::repo::open(&dir)?;
        let feed = Feed::open(&home.feeds_dir().join(manifest.id.to_string()), manifest.id)?;
        let access_store = AccessStore::new(&home.access_dir(), &manifest.id, &dir);
        let access = access_store.load(manifest.id, manifest.genesis.payload.owner)?;
        let project = Self {
            name,
            dir,
            manifest,
            repo,
            feed,
            access,
            access_store,
            problems,
        };
        if legacy {
            seed_obtained(home, &project)?;
            pin(home, &project.name, &project.manifest)?;
        }
        Ok(project)
    }

    pub fn id(&self) -> ProjectId {
        self.manifest.id
    }

    /// Puts the pinned manifest back when the working tree's copy names
    /// another identity (or is gone or unreadable), so a sweep never
    /// commits it. Returns whether it had to.
    pub fn enforce_pin(&mut self) -> Result<bool, ProjectOpenError> {
        let path = self.dir.join(MANIFEST);
        let problem = match read_worktree_manifest(&path) {
            Ok(Some(tree)) if tree.same_identity(&self.manifest) => return Ok(false),
            Ok(Some(tree)) => format!(
                "{MANIFEST} was changed to name project {}; this node pinned {}, so the change was ignored and the pinned manifest put back",
                tree.id,
                self.id()
            ),
            Ok(None) => format!("{MANIFEST} was removed; the pinned manifest was put back"),
            Err(e) => {
                format!("{MANIFEST} became unreadable ({e}); the pinned manifest was put back")
            }
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| ProjectOpenError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        atomic_write(&path, self.manifest.to_toml().as_bytes(), None)
            .map_err(|source| ProjectOpenError::Io { path, source })?;
        tracing::warn!(project = %self.name, "{problem}");
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
        Ok(true)
    }
}

/// The first record of obtained blobs for a project that came here before
/// such records existed: the large files this node wrote or hashed for it,
/// its linked datasets' files, its versions' collections and its feed's
/// figures. This trusts, once, what an older version let in; from then on
/// only what the node obtains for the project is added.
fn seed_obtained(home: &Home, project: &Project) -> Result<(), ProjectOpenError> {
    let state = crate::blobs::Tracker::new(&project.dir)
        .load_state()
        .unwrap_or_default();
    let mut hashes: Vec<tandem_protocol::blob::BlobHash> = state
        .files
        .values()
        .chain(state.linked.values())
        .map(|m| m.hash)
        .collect();
    hashes.extend(project.feed.figures());
    if let Ok(links) = crate::data::listings::links(&project.dir) {
        hashes.extend(links.iter().map(|l| l.collection));
    }
    if let Ok(versions) = crate::data::listings::versions(&project.dir) {
        hashes.extend(versions.iter().map(|v| v.collection));
    }
    crate::blobs::obtained::seed(&home.obtained_dir(), &project.id(), &hashes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_protocol::project::Genesis;

    fn manifest(seed: u8, name: &str) -> Manifest {
        let name: ProjectName = name.parse().expect("name");
        let genesis = Genesis::create(
            &name,
            &tandem_protocol::SecretKey::from_bytes([seed; 32]),
            1_700_000_000_000,
            [seed; 16],
        );
        Manifest {
            id: genesis.project_id(),
            name: name.to_string(),
            description: String::new(),
            genesis,
            kind: ProjectKind::Project,
        }
    }

    fn tree_with(repo: &Repository, manifest: Option<&str>) -> git2::Oid {
        let mut builder = repo.treebuilder(None).expect("builder");
        let readme = repo.blob(b"# hi\n").expect("blob");
        builder
            .insert("README.md", readme, 0o100644)
            .expect("insert");
        if let Some(text) = manifest {
            let blob = repo.blob(text.as_bytes()).expect("blob");
            let mut sub = repo.treebuilder(None).expect("builder");
            sub.insert("project.toml", blob, 0o100644).expect("insert");
            let sub = sub.write().expect("write");
            builder.insert(".tandem", sub, 0o040000).expect("insert");
        }
        builder.write().expect("write tree")
    }

    #[test]
    fn a_tree_must_keep_the_pinned_identity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init(dir.path()).expect("init");
        let ours = manifest(1, "survey");
        let theirs = manifest(2, "mine");
        let check = |text: Option<&str>| {
            let tree = repo.find_tree(tree_with(&repo, text)).expect("tree");
            check_tree(&repo, &tree, &ours)
        };
        check(Some(&ours.to_toml())).expect("the pinned manifest passes");
        let mut relabelled = ours.clone();
        relabelled.description = "now with a description".into();
        check(Some(&relabelled.to_toml())).expect("labels may change");
        let err = check(Some(&theirs.to_toml())).expect_err("another project");
        assert!(err.to_string().contains(&theirs.id.to_string()), "{err}");
        assert!(err.to_string().contains(MANIFEST), "{err}");
        let mut dataset = ours.clone();
        dataset.kind = ProjectKind::Dataset;
        check(Some(&dataset.to_toml())).expect_err("another kind");
        let mut forged = ours.clone();
        forged.genesis = theirs.genesis.clone();
        check(Some(&forged.to_toml())).expect_err("a genesis that is not the id's");
        assert!(matches!(check(None), Err(IdentityChange::Removed)));
        assert!(matches!(
            check(Some("id = 3")),
            Err(IdentityChange::Unreadable { .. })
        ));
    }

    #[test]
    fn the_pin_wins_over_the_working_tree() {
        let home_dir = tempfile::tempdir().expect("tempdir");
        let home = Home::at(home_dir.path());
        home.ensure_layout().expect("layout");
        let name: ProjectName = "survey".parse().expect("name");
        let ours = manifest(1, "survey");
        let dir = home.projects_dir().join("survey");
        lay_out(&dir, &ours, None).expect("lay out");
        crate::projects::repo::init(&dir).expect("init");

        // No pin yet (a project from before pins): pinned on first open.
        let project = Project::open(name.clone(), dir.clone(), &home).expect("open");
        assert!(project.problems.is_empty());
        drop(project);
        assert!(home.pin_path(&name).is_file());
        assert!(home.obtained_dir().join(ours.id.to_string()).is_file());

        // The working tree now names another project: ignored, reported.
        let theirs = manifest(2, "mine");
        fs::write(dir.join(MANIFEST), theirs.to_toml()).expect("overwrite");
        let mut project = Project::open(name.clone(), dir.clone(), &home).expect("open");
        assert_eq!(project.id(), ours.id);
        assert_eq!(project.access.owner(), ours.genesis.payload.owner);
        assert_eq!(project.problems.len(), 1, "{:?}", project.problems);
        assert!(project.problems[0].contains(&theirs.id.to_string()));
        // A sweep's first step puts the pinned manifest back.
        assert!(project.enforce_pin().expect("enforce"));
        assert!(!project.enforce_pin().expect("enforce again"));
        let text = fs::read_to_string(dir.join(MANIFEST)).expect("read");
        assert!(
            Manifest::parse(&text, Path::new(MANIFEST))
                .expect("parse")
                .same_identity(&ours)
        );

        // Gone from the working tree: the pin still opens the project.
        fs::remove_file(dir.join(MANIFEST)).expect("remove");
        let project = Project::open(name, dir, &home).expect("open");
        assert_eq!(project.id(), ours.id);
        assert_eq!(project.problems.len(), 1);
    }
}
