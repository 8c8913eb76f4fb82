//! Large files in projects: moving them into the blob store when they are
//! swept, writing them into working trees when pointers arrive, fetching
//! their bytes from peers, and deciding which peer may fetch what.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use tandem_protocol::ProjectId;
use tandem_protocol::activity::{FileAction, FileChange};
use tandem_protocol::api::{BlobInfo, DataState, FetchFailure, FetchResult};
use tandem_protocol::blob::{BlobHash, Pointer};
use tandem_protocol::identity::PeerKey;
use tandem_protocol::path::SafePath;
use tandem_protocol::wire::{Request, Response};

use crate::blobs::fetch::{Fetched, Fetcher, Provider};
use crate::blobs::track::{Materialised, Tracker, stat};
use crate::blobs::{BlobEndpoint, Gate};
use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::service::{Service, now_ms};

/// Fetches that run at once; each starts with a different peer, so a batch
/// of files is drawn from several peers in parallel.
const PARALLEL_FETCHES: usize = 4;

/// Why a fetch was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchScope {
    /// After a sync or clone: everything; for a project cloned with
    /// `--no-data`, only new versions of files already here.
    Automatic,
    /// The user asked: everything named (or everything, if nothing is).
    Requested,
}

/// A blob that a working tree needs and the store lacks.
#[derive(Debug, Clone)]
struct Needed {
    file: SafePath,
    pointer: Pointer,
    /// An older version is in the working tree: the user wants this file,
    /// so even an on-demand project brings the new version.
    was_local: bool,
}

impl Service {
    /// Moves new or changed large files into the blob store and points Git
    /// at them instead. Runs at the start of every sweep, under the project
    /// lock, so Git never sees a large file's bytes.
    ///
    /// Every file is reached beneath the project folder without following
    /// links, and hashed from the handle that was opened there; a path that
    /// leads through a link is left out and reported. A pointer never makes
    /// the node ingest a file it did not write or hash here itself (a
    /// writer could otherwise name an untracked file of the user's).
    ///
    /// Also returns the pending changes it looked at when it changed
    /// nothing Git can see, so the sweep need not ask Git for them again.
    pub(crate) fn prepare_blobs(&self, project: &mut Project) -> Result<Prepared, ServiceError> {
        let tracker = Tracker::new(&project.dir);
        let root = tracker.beneath()?;
        let policy = tracker.policy()?;
        let mut pointers = tracker.pointers()?;
        let mut state = tracker.load_state()?;
        let before = state.clone();
        // Files to hash into the store.
        let mut to_ingest: Vec<SafePath> = Vec::new();
        let mut refused: Vec<String> = Vec::new();
        let mut touched = false;

        for file in pointers.keys().cloned().collect::<Vec<_>>() {
            let Some(on_disk) = refusing(stat(root, file.as_str()), &mut refused)? else {
                continue;
            };
            match (state.files.get(file.as_str()), on_disk) {
                (Some(known), _) if known.matches(on_disk) => {}
                (Some(_), None) => {
                    // Deleted by the user: the pointer goes with it.
                    touched = true;
                    tracker.remove_pointer(&file)?;
                    state.files.remove(file.as_str());
                    pointers.remove(&file);
                }
                // Never fetched here: it stays a remote file.
                (None, None) => {}
                // Edited here since this node wrote or hashed it.
                (Some(_), Some(_)) => to_ingest.push(file),
                (None, Some(_)) => {
                    let Some(pointer) = pointers.get(&file).copied() else {
                        continue;
                    };
                    // A file this node never recorded, named by a pointer
                    // (from a peer, perhaps): recorded only if it already
                    // holds exactly the pointer's bytes (a lost record),
                    // never hashed into the store on the pointer's word.
                    match refusing(same_content(root, &file, &pointer), &mut refused)? {
                        Some(Some(entry)) => {
                            state.files.insert(
                                file.as_str().to_owned(),
                                Materialised {
                                    hash: pointer.hash,
                                    size: entry.size,
                                    mtime_ns: entry.mtime_ns,
                                },
                            );
                        }
                        Some(None) => refused.push(format!(
                            "{file}: a pointer names this file, but this node did not write or record it; left out (move it aside to record it under another name)"
                        )),
                        None => {}
                    }
                }
            }
        }

        let mut index = project
            .repo
            .index()
            .map_err(crate::projects::repo::RepoError::from)?;
        let mut index_changed = false;
        let (pending, links) = crate::projects::repo::pending_changes_and_links(&project.repo)?;
        refused.extend(links);
        for change in &pending {
            if change.action == FileAction::Deleted {
                continue;
            }
            let Ok(file) = SafePath::parse(&change.path) else {
                continue;
            };
            if pointers.contains_key(&file) {
                continue;
            }
            let Some(Some((size, _))) = refusing(stat(root, file.as_str()), &mut refused)? else {
                continue;
            };
            if !policy.is_large(&file, size) {
                continue;
            }
            if index.get_path(Path::new(file.as_str()), 0).is_some() {
                index
                    .remove_path(Path::new(file.as_str()))
                    .map_err(crate::projects::repo::RepoError::from)?;
                index_changed = true;
            }
            to_ingest.push(file);
        }

        if !to_ingest.is_empty() {
            touched = true;
            let files = to_ingest.iter().map(|f| f.as_str().to_owned()).collect();
            let results = self.blob_store()?.ingest_beneath(root, files);
            let mut ingested = Vec::new();
            for (file, result) in to_ingest.into_iter().zip(results) {
                let done = match result {
                    Ok(done) => done,
                    Err(e) => match e.as_refusal() {
                        Some(why) => {
                            refused.push(why.to_string());
                            continue;
                        }
                        None => return Err(e.into()),
                    },
                };
                ingested.push(done.hash);
                let pointer = Pointer {
                    hash: done.hash,
                    size: done.size,
                };
                if pointers.get(&file) != Some(&pointer) {
                    tracker.write_pointer(&file, &pointer)?;
                    pointers.insert(file.clone(), pointer);
                }
                state.files.insert(
                    file.as_str().to_owned(),
                    Materialised {
                        hash: done.hash,
                        size: done.size,
                        mtime_ns: done.mtime_ns,
                    },
                );
            }
            // Hashed from this project's own folder: obtained for it.
            self.note_obtained(project, ingested);
        }
        if index_changed {
            index
                .write()
                .map_err(crate::projects::repo::RepoError::from)?;
        }
        touched |= tracker.write_exclude(pointers.keys())?;
        if state != before {
            tracker.save_state(&state)?;
        }
        for why in &refused {
            tracing::warn!(project = %project.name, refused = %why, "left out of the sweep");
        }
        Ok(Prepared {
            unchanged: (!touched).then_some(pending),
            refused,
        })
    }

    /// Brings the working tree in line with the pointers, using what the
    /// store already holds. Returns what it could not write for lack of
    /// bytes, and what it refused to write (a link on the way). Files
    /// edited here since they were written are left alone (the next sweep
    /// records them); files whose pointer was removed by a peer are
    /// removed too, unless edited here.
    fn materialise_blobs(
        &self,
        project: &mut Project,
        bring_back: &dyn Fn(&SafePath) -> bool,
    ) -> Result<(Vec<Needed>, Vec<FetchFailure>), ServiceError> {
        let tracker = Tracker::new(&project.dir);
        let root = tracker.beneath()?;
        let pointers = tracker.pointers()?;
        let mut state = tracker.load_state()?;
        let before = state.clone();
        let mut needed = Vec::new();
        let mut refused = Vec::new();
        let mut stale_files = Vec::new();
        let mut exports = Vec::new();
        for (file, pointer) in &pointers {
            if state.evicted.contains(file.as_str()) {
                if !bring_back(file) {
                    continue;
                }
                state.evicted.remove(file.as_str());
            }
            let on_disk = match stat(root, file.as_str()) {
                Ok(on_disk) => on_disk,
                Err(e) => match e.as_refusal() {
                    Some(why) => {
                        refused.push(refusal(file.as_str(), why));
                        continue;
                    }
                    None => return Err(e.into()),
                },
            };
            let known = state.files.get(file.as_str()).copied();
            let stale = match (known, on_disk) {
                (Some(known), _) if known.matches(on_disk) => known.hash != pointer.hash,
                (Some(_), Some(_)) | (None, Some(_)) => false,
                (_, None) => true,
            };
            if !stale {
                continue;
            }
            stale_files.push((file.clone(), *pointer, known.is_some()));
        }
        if !stale_files.is_empty() {
            let store = self.blob_store()?;
            let hashes = stale_files.iter().map(|(_, p, _)| p.hash).collect();
            for ((file, pointer, was_local), presence) in
                stale_files.into_iter().zip(store.presence_many(hashes))
            {
                if presence?.complete {
                    exports.push((file, pointer.hash));
                } else {
                    needed.push(Needed {
                        file,
                        pointer,
                        was_local,
                    });
                }
            }
        }
        if !exports.is_empty() {
            let results = self.blob_store()?.export_many(
                root,
                exports
                    .iter()
                    .map(|(file, hash)| (*hash, file.as_str().to_owned()))
                    .collect(),
                false,
            );
            for ((file, hash), result) in exports.into_iter().zip(results) {
                match result {
                    Ok(written) => {
                        state.files.insert(
                            file.as_str().to_owned(),
                            Materialised {
                                hash,
                                size: written.size,
                                mtime_ns: written.mtime_ns,
                            },
                        );
                    }
                    Err(e) => match e.as_refusal() {
                        Some(why) => refused.push(refusal(file.as_str(), why)),
                        None => return Err(e.into()),
                    },
                }
            }
        }
        let gone: Vec<String> = state
            .files
            .keys()
            .filter(|f| SafePath::parse(f).map_or(true, |f| !pointers.contains_key(&f)))
            .cloned()
            .collect();
        for file in gone {
            let Some(known) = state.files.remove(&file) else {
                continue;
            };
            let Ok(safe) = SafePath::parse(&file) else {
                continue;
            };
            let on_disk = match stat(root, safe.as_str()) {
                Ok(on_disk) => on_disk,
                Err(e) => match e.as_refusal() {
                    Some(why) => {
                        refused.push(refusal(&file, why));
                        continue;
                    }
                    None => return Err(e.into()),
                },
            };
            if known.matches(on_disk) {
                root.remove_file(safe.as_str())?;
            }
        }
        tracker.write_exclude(pointers.keys())?;
        if state != before {
            tracker.save_state(&state)?;
        }
        for failure in &refused {
            tracing::warn!(project = %project.name, path = %failure.path, reason = %failure.reason, "not written");
        }
        Ok((needed, refused))
    }

    /// Writes every large file whose bytes the store holds into the
    /// working tree (after an import or a clone).
    pub(crate) fn write_stored_blobs(&self, project: &mut Project) -> Result<(), ServiceError> {
        self.materialise(project, FetchScope::Requested, &[])?;
        Ok(())
    }

    /// Writes what the store holds of the project's large files and linked
    /// datasets into the working tree; returns what is still missing, and
    /// whether the project fetches only on demand. A requested fetch also
    /// brings back the evicted files it names.
    fn materialise(
        &self,
        project: &mut Project,
        scope: FetchScope,
        wanted: &[SafePath],
    ) -> Result<(Vec<Needed>, bool, Vec<FetchFailure>), ServiceError> {
        let bring_back = |file: &SafePath| scope == FetchScope::Requested && covers(wanted, file);
        let (mut needed, mut refused) = self.materialise_blobs(project, &bring_back)?;
        let on_demand = Tracker::new(&project.dir).load_state()?.on_demand;
        let links_wanted = link_filter(scope, on_demand, &bring_back);
        let (missing, links_refused) = self.materialise_links(project, &links_wanted)?;
        needed.extend(missing.into_iter().map(|(file, pointer)| Needed {
            file,
            pointer,
            was_local: true,
        }));
        refused.extend(links_refused);
        Ok((needed, on_demand, refused))
    }

    /// Each large file's hash and whether its bytes are here.
    pub(crate) fn blob_files(
        &self,
        project: &Project,
    ) -> Result<BTreeMap<String, (Pointer, BlobInfo)>, ServiceError> {
        let tracker = Tracker::new(&project.dir);
        let pointers = tracker.pointers()?;
        let mut out = BTreeMap::new();
        if pointers.is_empty() {
            return Ok(out);
        }
        let local = tracker.load_state()?;
        let presences = self
            .blob_store()?
            .presence_many(pointers.values().map(|p| p.hash).collect());
        for ((file, pointer), presence) in pointers.into_iter().zip(presences) {
            let mut presence = presence?;
            if local.evicted.contains(file.as_str()) {
                // Dropped by the user; the store lets go at its next run.
                presence = crate::blobs::store::Presence {
                    complete: false,
                    bytes: 0,
                };
            }
            let state = if presence.complete {
                DataState::Local
            } else if presence.bytes > 0 {
                DataState::Partial
            } else {
                DataState::Remote
            };
            out.insert(
                file.as_str().to_owned(),
                (
                    pointer,
                    BlobInfo {
                        hash: pointer.hash,
                        state,
                        present: presence.bytes.min(pointer.size),
                    },
                ),
            );
        }
        Ok(out)
    }

    /// Every blob the project's history points to, cached until its head
    /// moves.
    pub(crate) fn history_blobs(&self, project: &Project) -> Arc<BTreeMap<BlobHash, u64>> {
        let head = crate::sync::git::head(&project.repo);
        let id = project.id();
        {
            let cache = self.blob_history.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((cached_head, blobs)) = cache.get(&id)
                && *cached_head == head
            {
                return blobs.clone();
            }
        }
        let blobs = Arc::new(crate::blobs::history::pointed_to(&project.repo).unwrap_or_default());
        let mut cache = self.blob_history.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(id, (head, blobs.clone()));
        blobs
    }

    /// Marks a project as fetching its large files only when asked.
    pub(crate) fn set_on_demand(&self, project: &Project, on: bool) -> Result<(), ServiceError> {
        let tracker = Tracker::new(&project.dir);
        let mut state = tracker.load_state()?;
        state.on_demand = on;
        tracker.save_state(&state)?;
        Ok(())
    }

    /// Writes what the store holds into the working tree, then fetches the
    /// rest from connected peers who share the project and writes that too.
    pub async fn fetch_data(
        self: &Arc<Self>,
        name: &str,
        paths: Vec<String>,
        scope: FetchScope,
    ) -> Result<FetchResult, ServiceError> {
        let wanted: Vec<SafePath> = paths
            .iter()
            .map(|p| SafePath::parse(p))
            .collect::<Result<_, _>>()
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let service = self.clone();
        let owned = name.to_owned();
        let asked = wanted.clone();
        let (id, members, needed, on_demand, known, refused) =
            tokio::task::spawn_blocking(move || -> Result<_, ServiceError> {
                let handle = service.project(&owned)?;
                let mut project = service.lock_project(&handle);
                let (needed, on_demand, refused) =
                    service.materialise(&mut project, scope, &asked)?;
                let mut known: Vec<SafePath> =
                    Tracker::new(&project.dir).pointers()?.into_keys().collect();
                for link in crate::data::datasets::links(&project)? {
                    known.extend(link.files.iter().filter_map(|f| {
                        SafePath::parse(&format!("{}/{}", link.folder(), f.path)).ok()
                    }));
                }
                let members = crate::data::disk::readers(&project);
                Ok((project.id(), members, needed, on_demand, known, refused))
            })
            .await
            .map_err(|e| ServiceError::BadRequest(e.to_string()))??;

        for file in &wanted {
            let covered = known
                .iter()
                .any(|k| k == file || k.as_str().starts_with(&format!("{}/", file.as_str())));
            if !covered {
                return Err(ServiceError::NoSuchFile(format!(
                    "{file}: no large file by that name (see `tandem files {name}`)"
                )));
            }
        }
        let selected = |file: &SafePath| covers(&wanted, file);
        let mut result = FetchResult::default();
        for file in &known {
            if selected(file)
                && !needed.iter().any(|n| &n.file == file)
                && !refused.iter().any(|r| r.path == file.as_str())
            {
                result.already_local.push(file.to_string());
            }
        }
        let automatic_on_demand = scope == FetchScope::Automatic && on_demand;
        let needed: Vec<Needed> = needed
            .into_iter()
            .filter(|n| selected(&n.file) && (n.was_local || !automatic_on_demand))
            .collect();
        // Files with the same content need their bytes only once.
        let mut seen: HashSet<BlobHash> = HashSet::new();
        let unique: Vec<Needed> = needed
            .iter()
            .filter(|n| seen.insert(n.pointer.hash))
            .cloned()
            .collect();
        if needed.is_empty() {
            result.failed.extend(refused);
            result.failed.sort_by(|a, b| a.path.cmp(&b.path));
            return Ok(result);
        }
        let Some(endpoint) = self.blob_endpoint.get().cloned() else {
            return Err(ServiceError::BadRequest(
                "fetching needs the running node: start it with `tandem up`, then try again".into(),
            ));
        };
        let providers = self.providers(id, members.as_ref()).await;
        let store = self.blob_store_async().await?;
        let fetcher = Fetcher::new(&endpoint, &store);
        let started = std::time::Instant::now();
        tracing::debug!(providers = providers.len(), "fetch: providers found");
        let jobs = batch_small(unique);
        let outcomes: Vec<(Vec<BlobHash>, Result<u64, String>)> =
            futures::stream::iter(jobs.into_iter().enumerate())
                .map(|(i, job)| {
                    let mut order = providers.clone();
                    if !order.is_empty() {
                        let shift = i % order.len();
                        order.rotate_left(shift);
                    }
                    let fetcher = &fetcher;
                    let store = &store;
                    async move {
                        let hashes: Vec<BlobHash> = job.iter().map(|n| n.pointer.hash).collect();
                        // Tagged before the first byte, so a partial
                        // download survives collection and resumes.
                        let kept: Vec<Result<(), _>> = futures::stream::iter(hashes.clone())
                            .map(|hash| async move { store.keep_async(&hash).await })
                            .buffer_unordered(64)
                            .collect()
                            .await;
                        if let Some(Err(e)) = kept.into_iter().find(Result::is_err) {
                            return (hashes, Err(e.to_string()));
                        }
                        let outcome = match job.as_slice() {
                            [need] => {
                                let here = store
                                    .presence_async(&need.pointer.hash)
                                    .await
                                    .map(|p| p.bytes)
                                    .unwrap_or(0);
                                let transfer = self.transfers.begin(
                                    name,
                                    need.file.as_str(),
                                    need.pointer.hash,
                                    need.pointer.size,
                                    here,
                                );
                                let outcome = fetcher
                                    .fetch(
                                        &need.pointer.hash,
                                        need.pointer.size,
                                        &order,
                                        |received| self.transfers.progress(transfer, received),
                                    )
                                    .await;
                                self.transfers.finish(
                                    transfer,
                                    outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                                );
                                outcome
                            }
                            [first, ..] => {
                                let batch = job.as_slice();
                                let total = batch.iter().map(|n| n.pointer.size).sum();
                                let transfer = self.transfers.begin(
                                    name,
                                    &format!("{} small files", batch.len()),
                                    first.pointer.hash,
                                    total,
                                    0,
                                );
                                let outcome = fetcher
                                    .fetch_many(&hashes, &order, |received| {
                                        self.transfers.progress(transfer, received)
                                    })
                                    .await;
                                self.transfers.finish(
                                    transfer,
                                    outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                                );
                                outcome
                            }
                            [] => Ok(Fetched { bytes_received: 0 }),
                        };
                        (
                            hashes,
                            outcome.map(|f| f.bytes_received).map_err(|e| e.to_string()),
                        )
                    }
                })
                .buffer_unordered(PARALLEL_FETCHES)
                .collect()
                .await;
        let served = fetcher.served();
        result.peers = served.iter().map(|p| p.to_did()).collect();
        fetcher.close().await;
        tracing::debug!(elapsed = ?started.elapsed(), "fetch: transfers done");

        let arrived: Vec<BlobHash> = outcomes
            .iter()
            .filter(|(_, outcome)| outcome.is_ok())
            .flat_map(|(hashes, _)| hashes.iter().copied())
            .collect();
        let service = self.clone();
        let owned = name.to_owned();
        let asked = wanted.clone();
        let still_needed = tokio::task::spawn_blocking(move || -> Result<_, ServiceError> {
            let handle = service.project(&owned)?;
            let mut project = service.lock_project(&handle);
            service.note_arrived(&project, &served, arrived)?;
            let (still_needed, _, refused) = service.materialise(&mut project, scope, &asked)?;
            Ok((still_needed, refused))
        })
        .await
        .map_err(|e| ServiceError::BadRequest(e.to_string()))??;
        tracing::debug!(elapsed = ?started.elapsed(), "fetch: written into the working tree");
        let mut failures: BTreeMap<BlobHash, String> = BTreeMap::new();
        for (hashes, outcome) in outcomes {
            match outcome {
                Ok(bytes) => result.bytes_received += bytes,
                Err(reason) => {
                    for hash in hashes {
                        failures.insert(hash, reason.clone());
                    }
                }
            }
        }
        let (still_needed, refused) = still_needed;
        result.failed.extend(refused);
        let still_needed: HashSet<SafePath> = still_needed.into_iter().map(|n| n.file).collect();
        for need in needed {
            if !still_needed.contains(&need.file) {
                result.fetched.push(need.file.to_string());
                continue;
            }
            let reason = failures
                .get(&need.pointer.hash)
                .cloned()
                .unwrap_or_else(|| "fetched, but not complete in the store".into());
            result.failed.push(FetchFailure {
                path: need.file.to_string(),
                reason,
            });
        }
        result.fetched.sort();
        result.failed.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(result)
    }

    /// Connected peers that may hold the project's blobs, with their blob
    /// endpoints' addresses.
    pub(crate) async fn providers(
        &self,
        _project: ProjectId,
        members: Option<&HashSet<PeerKey>>,
    ) -> Vec<Provider> {
        let Ok(net) = self.net() else {
            return vec![];
        };
        let Ok(connected) = net.connected_peers().await else {
            return vec![];
        };
        let mut providers = Vec::new();
        for (peer, info) in connected {
            if members.is_some_and(|m| !m.contains(&peer)) {
                continue;
            }
            let Ok(Response::BlobEndpoint { port, addresses }) =
                net.request(&peer, Request::BlobEndpoint).await
            else {
                continue;
            };
            let seen_at: Vec<IpAddr> = info
                .addresses
                .iter()
                .filter_map(|a| ip_of_multiaddr(a))
                .collect();
            let mut candidates: Vec<SocketAddr> = Vec::new();
            for address in addresses
                .iter()
                .filter_map(|a| a.parse::<SocketAddr>().ok())
            {
                if address.ip().is_unspecified() {
                    candidates.extend(seen_at.iter().map(|ip| SocketAddr::new(*ip, port)));
                } else {
                    candidates.push(address);
                }
            }
            if candidates.is_empty() {
                candidates.extend(seen_at.iter().map(|ip| SocketAddr::new(*ip, port)));
            }
            candidates.sort();
            candidates.dedup();
            if !candidates.is_empty() {
                providers.push(Provider {
                    peer,
                    addresses: candidates,
                });
            }
        }
        providers
    }

    /// What this node tells peers about its blob endpoint.
    pub(crate) fn blob_endpoint_response(&self) -> Response {
        match self.blob_endpoint.get() {
            Some(endpoint) => Response::BlobEndpoint {
                port: endpoint.port(),
                addresses: endpoint.bound().iter().map(|a| a.to_string()).collect(),
            },
            None => Response::Denied,
        }
    }

    /// The blob store from async code: opening it blocks, so that happens
    /// on a blocking thread.
    pub(crate) async fn blob_store_async(
        self: &Arc<Self>,
    ) -> Result<crate::blobs::BlobStore, ServiceError> {
        let service = self.clone();
        tokio::task::spawn_blocking(move || service.blob_store().cloned())
            .await
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?
    }

    /// Starts serving and fetching blobs (only `tandem up` does).
    pub async fn start_blob_endpoint(
        self: &Arc<Self>,
        bind: SocketAddr,
    ) -> Result<(), ServiceError> {
        let store = self.blob_store_async().await?;
        let gate: Arc<dyn Gate> = Arc::new(ServiceGate(Arc::downgrade(self)));
        let endpoint = BlobEndpoint::start(self.key(), bind, &store, gate)
            .await
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let _ = self.blob_endpoint.set(Arc::new(endpoint));
        Ok(())
    }

    /// Whether `peer` may fetch every one of `hashes`: each must be in the
    /// record of obtained blobs of some project the peer may read now. What
    /// a project's pointers, links or figures name does not count (any
    /// writer can name any hash); only what this node got for the project
    /// does (see `blobs::obtained`). Judged from memory: the records are
    /// read once, and only projects that hold a hash asked for are looked
    /// at. A hash this node lacks and one the peer may not have get the
    /// same answer.
    fn may_fetch(&self, peer: &PeerKey, hashes: &[BlobHash]) -> bool {
        if hashes.is_empty() {
            return false;
        }
        self.load_obtained();
        let holders = self.obtained.holders(hashes);
        let mut answered = vec![false; hashes.len()];
        let mut left = hashes.len();
        for holder in holders {
            if holder.positions.iter().all(|&i| answered[i]) {
                continue;
            }
            let Ok(handle) = self.project(holder.name.as_str()) else {
                continue;
            };
            let project = self.lock_project(&handle);
            // The folder may have been replaced by another project since.
            if project.id() != holder.id || !project.access.roles(now_ms()).can_read(peer) {
                continue;
            }
            drop(project);
            for i in holder.positions {
                if !answered[i] {
                    answered[i] = true;
                    left -= 1;
                }
            }
            if left == 0 {
                return true;
            }
        }
        false
    }

    /// Reads every project's record of obtained blobs, once per process.
    fn load_obtained(&self) {
        self.obtained.load_all_once(|| {
            for name in self.project_names().unwrap_or_default() {
                let Ok(handle) = self.project(name.as_str()) else {
                    continue;
                };
                let project = self.lock_project(&handle);
                if let Err(e) = self.obtained.load(&project.id(), &project.name) {
                    tracing::warn!(project = %name, error = %e, "its blobs are not served");
                }
            }
        });
    }

    /// Records blobs this node obtained for the project (hashed here for
    /// it, or fetched for it from its members), so the gate serves them to
    /// its readers. A failure to record only means they are not served
    /// from here.
    pub(crate) fn note_obtained(
        &self,
        project: &Project,
        hashes: impl IntoIterator<Item = BlobHash>,
    ) {
        if let Err(e) = self.obtained.record(&project.id(), &project.name, hashes) {
            tracing::warn!(project = %project.name, error = %e, "blobs not recorded as obtained; they are not served from here");
        }
    }

    /// Records blobs fetched for the project, if every peer that sent
    /// bytes holds a role in it: a public project can be fetched from any
    /// reader, but only what its members sent counts as obtained for it.
    pub(crate) fn note_fetched(
        &self,
        project: &Project,
        served: &[PeerKey],
        hashes: impl IntoIterator<Item = BlobHash>,
    ) {
        let roles = project.access.roles(now_ms());
        if served.is_empty() {
            return;
        }
        if let Some(stranger) = served.iter().find(|p| roles.role_of(p).is_none()) {
            tracing::info!(
                project = %project.name,
                peer = %stranger.short(),
                "fetched from a peer with no role: not served on from here"
            );
            return;
        }
        self.note_obtained(project, hashes);
    }

    /// Records the blobs a fetch for the project brought, those complete in
    /// the store now (see [`Service::note_fetched`]).
    fn note_arrived(
        &self,
        project: &Project,
        served: &[PeerKey],
        arrived: Vec<BlobHash>,
    ) -> Result<(), ServiceError> {
        if arrived.is_empty() || served.is_empty() {
            return Ok(());
        }
        let presences = self.blob_store()?.presence_many(arrived.clone());
        let complete: Vec<BlobHash> = arrived
            .into_iter()
            .zip(presences)
            .filter(|(_, p)| p.as_ref().is_ok_and(|p| p.complete))
            .map(|(hash, _)| hash)
            .collect();
        self.note_fetched(project, served, complete);
        Ok(())
    }
}

/// The gate holds the service weakly: the endpoint must not keep it alive.
struct ServiceGate(std::sync::Weak<Service>);

impl Gate for ServiceGate {
    fn may_fetch(&self, peer: &PeerKey, hashes: &[BlobHash]) -> bool {
        self.0
            .upgrade()
            .is_some_and(|service| service.may_fetch(peer, hashes))
    }
}

/// Blobs up to this size are fetched in batches rather than one by one.
const SMALL_BLOB: u64 = 256 * 1024;
/// Most blobs in one batched request.
const BATCH: usize = 512;

/// Groups small blobs into batches; large ones go alone, so each has its
/// own progress and resumes on its own.
fn batch_small(needed: Vec<Needed>) -> Vec<Vec<Needed>> {
    let (small, large): (Vec<Needed>, Vec<Needed>) = needed
        .into_iter()
        .partition(|n| n.pointer.size <= SMALL_BLOB);
    let mut jobs: Vec<Vec<Needed>> = large.into_iter().map(|n| vec![n]).collect();
    for chunk in small.chunks(BATCH) {
        jobs.push(chunk.to_vec());
    }
    jobs
}

/// Which linked datasets' files a fetch writes: all of them after a sync,
/// unless the project is on demand; what was asked for otherwise.
fn link_filter<'a>(
    scope: FetchScope,
    on_demand: bool,
    requested: &'a dyn Fn(&SafePath) -> bool,
) -> impl Fn(&SafePath) -> bool + 'a {
    move |file| match scope {
        FetchScope::Automatic => !on_demand,
        FetchScope::Requested => requested(file),
    }
}

/// Whether `file` is one of `wanted` or inside one of them; nothing
/// wanted means everything.
fn covers(wanted: &[SafePath], file: &SafePath) -> bool {
    wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == file || file.as_str().starts_with(&format!("{}/", w.as_str())))
}

/// `/ip4/10.0.0.2/tcp/4001/...` → 10.0.0.2.
fn ip_of_multiaddr(address: &str) -> Option<IpAddr> {
    let mut parts = address.split('/').skip(1);
    match (parts.next(), parts.next()) {
        (Some("ip4" | "ip6"), Some(ip)) => ip.parse().ok(),
        _ => None,
    }
}

/// What a sweep's first step found: the pending changes it looked at when
/// nothing Git sees changed, and the paths it left out, each with why.
pub(crate) struct Prepared {
    pub unchanged: Option<Vec<FileChange>>,
    pub refused: Vec<String>,
}

/// `Ok(Some(value))`, or `Ok(None)` after noting a refused path (a link or
/// an escape) in `refused`; other errors pass through.
fn refusing<T>(
    result: Result<T, crate::blobs::track::TrackError>,
    refused: &mut Vec<String>,
) -> Result<Option<T>, ServiceError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) => match e.as_refusal() {
            Some(why) => {
                refused.push(why.to_string());
                Ok(None)
            }
            None => Err(e.into()),
        },
    }
}

/// A file refused for writing, as a fetch reports it.
pub(crate) fn refusal(path: &str, why: &crate::beneath::BeneathError) -> FetchFailure {
    FetchFailure {
        path: path.to_owned(),
        reason: format!("refused: {why}"),
    }
}

/// Whether the file at `file` holds exactly the pointer's bytes: its entry
/// if so. The file is hashed from the handle opened beneath the root.
fn same_content(
    root: &crate::beneath::Beneath,
    file: &SafePath,
    pointer: &Pointer,
) -> Result<Option<crate::beneath::Entry>, crate::blobs::track::TrackError> {
    let Some((mut handle, entry)) = root.open_file(file.as_str())? else {
        return Ok(None);
    };
    if entry.size != pointer.size {
        return Ok(None);
    }
    let mut hasher = blake3::Hasher::new();
    std::io::copy(&mut handle, &mut hasher).map_err(|source| {
        crate::blobs::track::TrackError::Io {
            path: file.as_str().into(),
            source,
        }
    })?;
    Ok((hasher.finalize().as_bytes() == pointer.hash.as_bytes()).then_some(entry))
}
