//! What the node keeps about large files while it runs: the blob store
//! (opened on first use), the blob endpoint once `tandem up` starts it,
//! transfers in progress, the blobs each project's history points to, and
//! the record of blobs obtained for each project (all the gate serves).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tandem_protocol::ProjectId;
use tandem_protocol::blob::BlobHash;

use crate::blobs::obtained::Obtained;
use crate::blobs::transfers::Transfers;
use crate::blobs::{BlobEndpoint, BlobStore, BlobStoreError};

/// The blobs a project's history points to (hash → size), and the head
/// they were read at.
pub(crate) type BlobHistory = (Option<git2::Oid>, Arc<BTreeMap<BlobHash, u64>>);

/// The node's large-file state, held by the service.
pub struct DataState {
    /// Opened on first use: many commands never touch large files.
    blobs: OnceLock<BlobStore>,
    blobs_opening: Mutex<()>,
    endpoint: OnceLock<Arc<BlobEndpoint>>,
    transfers: Transfers,
    /// Blobs each project's history points to, with the head it was read at.
    history: Mutex<HashMap<ProjectId, BlobHistory>>,
    /// Per project, the blobs this node obtained for it: all the gate serves.
    obtained: Obtained,
    /// Projects a fetch is writing into, and how many fetches: the file
    /// watcher holds its sweep until they end (see [`DataState::writing`]).
    writing: Arc<Mutex<HashMap<String, usize>>>,
}

/// Held while a fetch writes into a project's working tree.
pub struct Writing {
    project: String,
    writing: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut writing = lock(&self.writing);
        if let Some(count) = writing.get_mut(&self.project) {
            *count -= 1;
            if *count == 0 {
                writing.remove(&self.project);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // What the locks guard is rebuilt from disk when missing; a panic
    // elsewhere must not poison every later request.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl DataState {
    /// Nothing open yet; the record of obtained blobs lives in
    /// `obtained_dir` and is read on first use.
    pub fn new(obtained_dir: PathBuf) -> Self {
        Self {
            blobs: OnceLock::new(),
            blobs_opening: Mutex::new(()),
            endpoint: OnceLock::new(),
            transfers: Transfers::default(),
            history: Mutex::new(HashMap::new()),
            obtained: Obtained::new(obtained_dir),
            writing: Arc::default(),
        }
    }

    /// Marks a project as being written by a fetch until the guard drops.
    /// Every file a fetch writes is an event for the file watcher, and a
    /// sweep in the middle of one walks the whole tree (for thousands of
    /// large files, seconds of matching against the exclude list) and
    /// holds the project lock the fetch needs to write the rest: measured,
    /// it took a third of the time of fetching 10,000 small files. What the
    /// fetch writes is recorded by the fetch itself.
    pub fn writing(&self, project: &str) -> Writing {
        *lock(&self.writing).entry(project.to_owned()).or_default() += 1;
        Writing {
            project: project.to_owned(),
            writing: self.writing.clone(),
        }
    }

    /// Whether a fetch is writing into the project now.
    pub fn is_writing(&self, project: &str) -> bool {
        lock(&self.writing).contains_key(project)
    }

    /// The blob store in `dir` (staging in `tmp`), opened on first use; two
    /// callers racing to open it open it once.
    pub fn blob_store(&self, dir: &Path, tmp: &Path) -> Result<&BlobStore, BlobStoreError> {
        if let Some(store) = self.blobs.get() {
            return Ok(store);
        }
        let _opening = lock(&self.blobs_opening);
        if let Some(store) = self.blobs.get() {
            return Ok(store);
        }
        let store = BlobStore::open(dir, tmp)?;
        Ok(self.blobs.get_or_init(|| store))
    }

    /// Stops serving blobs and flushes the blob store, if either was
    /// started.
    pub async fn close(&self) {
        if let Some(endpoint) = self.endpoint.get() {
            endpoint.endpoint().close().await;
        }
        if let Some(store) = self.blobs.get() {
            store.shutdown().await;
        }
    }

    /// The blob endpoint, once `tandem up` started it.
    pub fn endpoint(&self) -> Option<Arc<BlobEndpoint>> {
        self.endpoint.get().cloned()
    }

    /// Keeps the endpoint that was started; a second one is dropped.
    pub fn set_endpoint(&self, endpoint: BlobEndpoint) {
        let _ = self.endpoint.set(Arc::new(endpoint));
    }

    /// Transfers in progress, for the UI.
    pub fn transfers(&self) -> &Transfers {
        &self.transfers
    }

    /// The record of blobs obtained for each project.
    pub fn obtained(&self) -> &Obtained {
        &self.obtained
    }

    /// The blobs a project's history pointed to when its head was `head`,
    /// if that is what was read last.
    pub(crate) fn cached_history(
        &self,
        project: &ProjectId,
        head: Option<git2::Oid>,
    ) -> Option<Arc<BTreeMap<BlobHash, u64>>> {
        let cache = lock(&self.history);
        match cache.get(project) {
            Some((cached_head, blobs)) if *cached_head == head => Some(blobs.clone()),
            _ => None,
        }
    }

    /// Remembers what a project's history points to at `head`.
    pub(crate) fn remember_history(
        &self,
        project: ProjectId,
        head: Option<git2::Oid>,
        blobs: Arc<BTreeMap<BlobHash, u64>>,
    ) {
        lock(&self.history).insert(project, (head, blobs));
    }
}
