//! Fetching large files' bytes from connected peers that share the
//! project: several at once, each starting with a different peer, small
//! files in batches, then written into the working tree.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures::StreamExt;
use tandem_protocol::ProjectId;
use tandem_protocol::api::{FetchFailure, FetchResult};
use tandem_protocol::blob::BlobHash;
use tandem_protocol::identity::PeerKey;
use tandem_protocol::path::SafePath;
use tandem_protocol::wire::{Request, Response};

pub use super::materialise::FetchScope;
use super::materialise::{Needed, covers};
use crate::blobs::fetch::{Fetched, Fetcher, Provider};
use crate::blobs::track::Tracker;
use crate::error::ServiceError;
use crate::service::Service;

/// Fetches that run at once; each starts with a different peer, so a batch
/// of files is drawn from several peers in parallel.
const PARALLEL_FETCHES: usize = 4;

impl Service {
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
            .collect::<Result<_, _>>()?;
        // The watcher holds its sweeps of this project until the end.
        let _writing = self.data().writing(name);
        let asked = wanted.clone();
        let (id, members, needed, on_demand, known, refused) = self
            .with_project(name, move |service, project| {
                let (needed, on_demand, refused) = service.materialise(project, scope, &asked)?;
                let mut known: Vec<SafePath> =
                    Tracker::new(&project.dir).pointers()?.into_keys().collect();
                for link in crate::data::listings::links(&project.dir)? {
                    known.extend(link.files.iter().filter_map(|f| {
                        SafePath::parse(&format!("{}/{}", link.folder(), f.path)).ok()
                    }));
                }
                let members = crate::data::disk::readers(project);
                Ok((project.id(), members, needed, on_demand, known, refused))
            })
            .await?;

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
        let Some(endpoint) = self.data().endpoint() else {
            return Err(ServiceError::NotRunning { what: "fetching" });
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
                                let transfer = self.data().transfers().begin(
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
                                        |received| transfer.progress(received),
                                    )
                                    .await;
                                self.data().transfers().finish(
                                    &transfer,
                                    outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                                );
                                outcome
                            }
                            [first, ..] => {
                                let batch = job.as_slice();
                                let total = batch.iter().map(|n| n.pointer.size).sum();
                                let transfer = self.data().transfers().begin(
                                    name,
                                    &format!("{} small files", batch.len()),
                                    first.pointer.hash,
                                    total,
                                    0,
                                );
                                let outcome = fetcher
                                    .fetch_many(&hashes, &order, |received| {
                                        transfer.progress(received)
                                    })
                                    .await;
                                self.data().transfers().finish(
                                    &transfer,
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
        let asked = wanted.clone();
        let still_needed = self
            .with_project(name, move |service, project| {
                service.note_arrived(project, &served, arrived)?;
                let (still_needed, _, refused) = service.materialise(project, scope, &asked)?;
                Ok((still_needed, refused))
            })
            .await?;
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
            let Ok(Response::BlobEndpoint {
                port,
                addresses,
                relay,
            }) = net.request(&peer, Request::BlobEndpoint).await
            else {
                continue;
            };
            let relay = relay.as_deref().and_then(crate::hub::client::relay_url);
            // Where its open connections come from first: a peer that
            // dialled in is in the book with no address of its own.
            let mut seen_at: Vec<IpAddr> = info
                .remote_addresses
                .iter()
                .chain(&info.addresses)
                .filter_map(|a| ip_of_multiaddr(a))
                .collect();
            seen_at.dedup();
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
            if !candidates.is_empty() || relay.is_some() {
                providers.push(Provider {
                    peer,
                    addresses: candidates,
                    relay,
                });
            }
        }
        providers
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

/// `/ip4/10.0.0.2/tcp/4001/...` → 10.0.0.2. A relayed address names the
/// relay's IP, not the peer's: none.
fn ip_of_multiaddr(address: &str) -> Option<IpAddr> {
    if address.contains("/p2p-circuit") {
        return None;
    }
    let mut parts = address.split('/').skip(1);
    match (parts.next(), parts.next()) {
        (Some("ip4" | "ip6"), Some(ip)) => ip.parse().ok(),
        _ => None,
    }
}

impl Service {
    /// Brings these blobs of project `name` into the store from connected
    /// members, without writing them anywhere (an old version's large
    /// files, for a download or a read-only checkout). Returns the hashes
    /// that could not be had, each with why.
    pub(crate) async fn fetch_blobs(
        self: &Arc<Self>,
        name: &str,
        pointers: Vec<tandem_protocol::blob::Pointer>,
    ) -> Result<Vec<(BlobHash, String)>, ServiceError> {
        if pointers.is_empty() {
            return Ok(vec![]);
        }
        let (id, members) = self
            .with_project(name, |_, project| {
                Ok((project.id(), crate::data::disk::readers(project)))
            })
            .await?;
        let Some(endpoint) = self.data().endpoint() else {
            return Err(ServiceError::NotRunning { what: "fetching" });
        };
        let providers = self.providers(id, members.as_ref()).await;
        let store = self.blob_store_async().await?;
        let fetcher = Fetcher::new(&endpoint, &store);
        let mut failed = Vec::new();
        let mut arrived = Vec::new();
        for pointer in pointers {
            if let Err(e) = store.keep_async(&pointer.hash).await {
                failed.push((pointer.hash, e.to_string()));
                continue;
            }
            let transfer = self.data().transfers().begin(
                name,
                &format!("version file {}", &pointer.hash.to_string()[..8]),
                pointer.hash,
                pointer.size,
                0,
            );
            let outcome = fetcher
                .fetch(&pointer.hash, pointer.size, &providers, |received| {
                    transfer.progress(received)
                })
                .await;
            self.data().transfers().finish(
                &transfer,
                outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            );
            match outcome {
                Ok(_) => arrived.push(pointer.hash),
                Err(e) => failed.push((pointer.hash, e.to_string())),
            }
        }
        let served = fetcher.served();
        fetcher.close().await;
        self.with_project(name, move |service, project| {
            service.note_arrived(project, &served, arrived)
        })
        .await?;
        Ok(failed)
    }
}
