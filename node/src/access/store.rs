//! Where a project's access statements live on disk.
//!
//! Each statement is kept twice: in the node's store
//! (`$TANDEM_HOME/access/<project-id>/<statement-id>.json`), which is what is
//! enforced, and as one file in the project (`.tandem/access/<id>.toml`), so
//! statements travel with the repository and merge without conflicts. A
//! statement found in the project but not in the store (after an import or
//! a merge) is verified before it is adopted; files that fail are ignored.
//!
//! Only statements that count, or are ancestors of ones that count, are
//! kept (see `tandem_protocol::access::Access::admit`): a writer can commit
//! any file under `.tandem/access/`, and an older node may have stored junk
//! a peer sent it. Such statements are never adopted into the store, and
//! store copies of them are removed, so they cannot become heads (which
//! the next grant must name) nor be served to peers.

use std::fs;
use std::path::{Path, PathBuf};

use tandem_protocol::PeerKey;
use tandem_protocol::ProjectId;
use tandem_protocol::access::{Access, SignedStatement, StatementId, Verified};

use crate::fsutil::atomic_write;

pub const PROJECT_ACCESS_DIR: &str = ".tandem/access";
/// Largest statement file read: one with the most parents takes ~6 KiB.
const MAX_STATEMENT_FILE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AccessStoreError {
    #[error("access store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AccessStoreError + '_ {
    move |source| AccessStoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The statements of one project in both places.
pub struct AccessStore {
    store_dir: PathBuf,
    project_dir: PathBuf,
}

impl AccessStore {
    pub fn new(store_root: &Path, project: &ProjectId, project_dir: &Path) -> Self {
        Self {
            store_dir: store_root.join(project.to_string()),
            project_dir: project_dir.join(PROJECT_ACCESS_DIR),
        }
    }

    /// The relative path of a statement's file inside the project.
    pub fn project_file(id: &StatementId) -> String {
        format!("{PROJECT_ACCESS_DIR}/{id}.toml")
    }

    /// Loads every valid statement from the store and the project folder;
    /// statements only found in the project are copied into the store.
    /// Statements that do not count (and no counting one needs) are left
    /// out, and their store copies removed.
    pub fn load(&self, project: ProjectId, owner: PeerKey) -> Result<Access, AccessStoreError> {
        let mut found = Vec::new();
        let mut in_store = std::collections::HashMap::new();
        for (path, bytes) in read_all(&self.store_dir, "json")? {
            if let Some(verified) = decode(&bytes, true, &project) {
                in_store.insert(verified.id, path);
                found.push(verified);
            }
        }
        for (_, bytes) in read_all(&self.project_dir, "toml")? {
            if let Some(verified) = decode(&bytes, false, &project)
                && !in_store.contains_key(&verified.id)
            {
                found.push(verified);
            }
        }
        let total = found.len();
        let admission = Access::from_verified(project, owner, found);
        for verified in &admission.kept {
            if in_store.remove(&verified.id).is_none() {
                self.save_to_store(verified)?;
            }
        }
        // What is left in the store was not kept: a one-time repair of a
        // home that stored junk before statements were judged on arrival.
        for path in in_store.values() {
            fs::remove_file(path).map_err(io(path))?;
        }
        if !in_store.is_empty() {
            tracing::warn!(
                project = %project,
                removed = in_store.len(),
                "removed stored access statements that do not count"
            );
        }
        if admission.dropped() > 0 {
            tracing::debug!(
                project = %project,
                dropped = admission.dropped(),
                total,
                "access statements that do not count were left out"
            );
        }
        Ok(admission.after)
    }

    /// Keeps a statement received from a peer (its project file arrives
    /// with the Git history).
    pub fn save_to_store(&self, verified: &Verified) -> Result<(), AccessStoreError> {
        let path = self.store_dir.join(format!("{}.json", verified.id));
        atomic_write(&path, verified.statement.to_json().as_bytes(), None).map_err(io(&path))
    }

    /// Writes a new statement to both places.
    pub fn save(&self, verified: &Verified) -> Result<(), AccessStoreError> {
        self.save_to_store(verified)?;
        let path = self.project_dir.join(format!("{}.toml", verified.id));
        let text = toml::to_string(&verified.statement).unwrap_or_default();
        atomic_write(&path, text.as_bytes(), None).map_err(io(&path))
    }

    /// Removes the store copy (when the project is deleted).
    pub fn remove(&self) {
        let _ = fs::remove_dir_all(&self.store_dir);
    }
}

fn read_all(dir: &Path, extension: &str) -> Result<Vec<(PathBuf, Vec<u8>)>, AccessStoreError> {
    let items = match fs::read_dir(dir) {
        Ok(items) => items,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut out = Vec::new();
    for item in items.flatten() {
        let path = item.path();
        // Regular files only, never through a link (a writer controls what
        // is under `.tandem/access/`), and never large ones.
        let small_file = item
            .metadata()
            .is_ok_and(|m| m.file_type().is_file() && m.len() <= MAX_STATEMENT_FILE);
        if path.extension().and_then(|e| e.to_str()) == Some(extension) && small_file {
            let bytes = fs::read(&path).map_err(io(&path))?;
            out.push((path, bytes));
        }
    }
    Ok(out)
}

fn decode(bytes: &[u8], is_json: bool, project: &ProjectId) -> Option<Verified> {
    if is_json {
        return Verified::decode(bytes, project).ok();
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let statement: SignedStatement = toml::from_str(text).ok()?;
    Verified::check(statement, project).ok()
}
