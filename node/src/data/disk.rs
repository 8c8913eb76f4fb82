//! Disk housekeeping for large files: how much space each project takes,
//! and dropping local copies that peers can give back later.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tandem_protocol::api::{DiskUsage, EvictRequest, EvictResult, FetchFailure, ProjectUsage};
use tandem_protocol::blob::BlobHash;
use tandem_protocol::identity::PeerKey;
use tandem_protocol::path::SafePath;

use crate::blobs::Tracker;
use crate::blobs::fetch::Fetcher;
use crate::blobs::track::stat;
use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::service::{Service, now_ms};

/// One local copy `evict` may drop.
#[derive(Debug, Clone)]
struct Candidate {
    /// The working-tree file, or none for an old version.
    file: Option<SafePath>,
    hash: BlobHash,
    size: u64,
}

/// Who may hold a project's blobs: its members, or anyone if it is public.
pub(crate) fn readers(project: &Project) -> Option<HashSet<PeerKey>> {
    tandem_protocol::sync::readers(&project.access.roles(now_ms()))
}

impl Service {
    /// Space used per project, and by the blob store as a whole.
    pub fn disk_usage(&self) -> Result<DiskUsage, ServiceError> {
        let store = self.blob_store()?;
        let mut usage = DiskUsage {
            home: self.home().root().display().to_string(),
            ..DiskUsage::default()
        };
        // Only kept blobs count: released ones go at the next collection.
        let kept: HashSet<BlobHash> = store.kept()?.into_iter().collect();
        let here = |hash: &BlobHash, size: u64| -> Result<u64, ServiceError> {
            if !kept.contains(hash) {
                return Ok(0);
            }
            Ok(store.presence(hash)?.bytes.min(size))
        };
        for name in self.project_names()? {
            let handle = self.project(name.as_str())?;
            let project = self.lock_project(&handle);
            let mut row = ProjectUsage {
                name: name.to_string(),
                tracked_bytes: crate::projects::repo::tracked_files(&project.repo)?
                    .iter()
                    .map(|(_, size)| size)
                    .sum(),
                ..ProjectUsage::default()
            };
            let tracker = Tracker::new(&project.dir);
            let current = tracker.pointers()?;
            let evicted = tracker.load_state()?.evicted;
            let current_hashes: HashSet<BlobHash> = current.values().map(|p| p.hash).collect();
            for (file, pointer) in &current {
                let local = if evicted.contains(file.as_str()) {
                    0
                } else {
                    here(&pointer.hash, pointer.size)?
                };
                row.large_local_bytes += local;
                row.large_remote_bytes += pointer.size - local;
            }
            for (hash, size) in self.history_blobs(&project).iter() {
                if !current_hashes.contains(hash) {
                    row.old_version_bytes += here(hash, *size)?;
                }
            }
            usage.projects.push(row);
        }
        for hash in &kept {
            usage.store_bytes += store.presence(hash)?.bytes;
        }
        Ok(usage)
    }

    /// Drops local copies of large files (the paths given) or of old
    /// versions (no paths), keeping each only-known copy unless forced: a
    /// connected member must confirm it holds the whole blob first.
    pub async fn evict(
        self: &Arc<Self>,
        name: &str,
        request: EvictRequest,
    ) -> Result<EvictResult, ServiceError> {
        let wanted: Vec<SafePath> = request
            .paths
            .iter()
            .map(|p| SafePath::parse(p))
            .collect::<Result<_, _>>()?;
        let owned = name.to_owned();
        let (id, members, candidates, mut kept) = self
            .blocking(move |service| service.evict_candidates(&owned, &wanted))
            .await?;

        let mut confirmed: Vec<Candidate> = Vec::new();
        if request.force {
            confirmed = candidates;
        } else if !candidates.is_empty() {
            let endpoint = self.data().endpoint();
            let providers = self.providers(id, members.as_ref()).await;
            match endpoint {
                Some(endpoint) if !providers.is_empty() => {
                    let store = self.blob_store_async().await?;
                    let fetcher = Fetcher::new(&endpoint, &store);
                    for candidate in candidates {
                        if fetcher.holder(&candidate.hash, &providers).await.is_some() {
                            confirmed.push(candidate);
                        } else {
                            kept.push(refusal(
                                &candidate,
                                "no connected peer holds a whole copy; --force drops it anyway",
                            ));
                        }
                    }
                    fetcher.close().await;
                }
                _ => kept.extend(candidates.iter().map(|c| {
                    refusal(
                        c,
                        "no connected peer shares this project, so this may be the only copy; --force drops it anyway",
                    )
                })),
            }
        }

        let owned = name.to_owned();
        let mut result = self
            .blocking(move |service| service.drop_copies(&owned, confirmed))
            .await?;
        result.kept.append(&mut kept);
        Ok(result)
    }

    #[allow(clippy::type_complexity)]
    fn evict_candidates(
        &self,
        name: &str,
        wanted: &[SafePath],
    ) -> Result<
        (
            tandem_protocol::ProjectId,
            Option<HashSet<PeerKey>>,
            Vec<Candidate>,
            Vec<FetchFailure>,
        ),
        ServiceError,
    > {
        let handle = self.project(name)?;
        let project = self.lock_project(&handle);
        let store = self.blob_store()?;
        let tracker = Tracker::new(&project.dir);
        let pointers = tracker.pointers()?;
        let state = tracker.load_state()?;
        let mut candidates = Vec::new();
        let mut kept = Vec::new();
        if wanted.is_empty() {
            let current: HashSet<BlobHash> = pointers.values().map(|p| p.hash).collect();
            for (hash, size) in self.history_blobs(&project).iter() {
                if !current.contains(hash) && store.presence(hash)?.bytes > 0 {
                    candidates.push(Candidate {
                        file: None,
                        hash: *hash,
                        size: *size,
                    });
                }
            }
        }
        for file in wanted {
            let matching: Vec<_> = pointers
                .iter()
                .filter(|(f, _)| *f == file || f.as_str().starts_with(&format!("{file}/")))
                .collect();
            if matching.is_empty() {
                return Err(ServiceError::NoSuchFile(format!(
                    "{file}: no large file by that name (see `tandem files {name}`)"
                )));
            }
            for (f, pointer) in matching {
                let on_disk = stat(tracker.beneath()?, f.as_str())?;
                let unedited = match state.files.get(f.as_str()) {
                    Some(known) => known.matches(on_disk) && known.hash == pointer.hash,
                    None => on_disk.is_none(),
                };
                if !unedited {
                    kept.push(FetchFailure {
                        path: f.to_string(),
                        reason: "edited here since it was last recorded; sweep or sync first"
                            .into(),
                    });
                    continue;
                }
                if store.presence(&pointer.hash)?.bytes == 0 && on_disk.is_none() {
                    continue;
                }
                candidates.push(Candidate {
                    file: Some(f.clone()),
                    hash: pointer.hash,
                    size: pointer.size,
                });
            }
        }
        Ok((project.id(), readers(&project), candidates, kept))
    }

    /// Removes the files and releases their blobs unless some other local
    /// file still needs the same content.
    fn drop_copies(
        &self,
        name: &str,
        confirmed: Vec<Candidate>,
    ) -> Result<EvictResult, ServiceError> {
        let handle = self.project(name)?;
        let project = self.lock_project(&handle);
        let tracker = Tracker::new(&project.dir);
        let mut state = tracker.load_state()?;
        let mut result = EvictResult::default();
        let mut released: HashSet<BlobHash> = HashSet::new();
        for candidate in &confirmed {
            match &candidate.file {
                Some(file) => {
                    let root = tracker.beneath()?;
                    if let Some(known) = state.files.get(file.as_str())
                        && known.matches(stat(root, file.as_str())?)
                    {
                        root.remove_file(file.as_str())?;
                    }
                    state.files.remove(file.as_str());
                    state.evicted.insert(file.to_string());
                    result.evicted.push(file.to_string());
                }
                None => result.old_versions += 1,
            }
        }
        tracker.save_state(&state)?;
        let still_used = self.materialised_hashes(&project, &state)?;
        let store = self.blob_store()?;
        for candidate in confirmed {
            if still_used.contains(&candidate.hash) || !released.insert(candidate.hash) {
                continue;
            }
            store.release(&candidate.hash)?;
            result.bytes += candidate.size;
        }
        result.evicted.sort();
        Ok(result)
    }

    /// Hashes written into any working tree on this node.
    fn materialised_hashes(
        &self,
        current: &Project,
        current_state: &crate::blobs::track::LocalState,
    ) -> Result<HashSet<BlobHash>, ServiceError> {
        let mut out: HashSet<BlobHash> = current_state.files.values().map(|m| m.hash).collect();
        for name in self.project_names()? {
            if name == current.name {
                continue;
            }
            let handle = self.project(name.as_str())?;
            let project = self.lock_project(&handle);
            let state = Tracker::new(&project.dir).load_state()?;
            out.extend(state.files.values().map(|m| m.hash));
        }
        Ok(out)
    }

    /// Every blob the project's history points to, cached until its head
    /// moves.
    pub(crate) fn history_blobs(&self, project: &Project) -> Arc<BTreeMap<BlobHash, u64>> {
        let head = crate::sync::git::head(&project.repo);
        let id = project.id();
        if let Some(blobs) = self.data().cached_history(&id, head) {
            return blobs;
        }
        let blobs = Arc::new(crate::blobs::history::pointed_to(&project.repo).unwrap_or_default());
        self.data().remember_history(id, head, blobs.clone());
        blobs
    }
}

fn refusal(candidate: &Candidate, reason: &str) -> FetchFailure {
    FetchFailure {
        path: candidate
            .file
            .as_ref()
            .map(|f| f.to_string())
            .unwrap_or_else(|| format!("old version {}", candidate.hash.short())),
        reason: reason.to_owned(),
    }
}
