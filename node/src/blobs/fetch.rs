//! Bringing blobs from peers: verified while streaming, resumed from what
//! is already here, and moved on to the next peer when one fails or sends
//! bytes that do not match their hash.

use std::collections::HashMap;
use std::net::SocketAddr;

use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use iroh_blobs::HashAndFormat;
use iroh_blobs::api::remote::{GetProgress, GetProgressItem};
use iroh_blobs::get::GetError;
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt, GetRequest};
use tandem_protocol::blob::BlobHash;
use tandem_protocol::identity::PeerKey;
use tokio::sync::Mutex;

use super::endpoint::BlobEndpoint;
use super::store::{BlobStore, to_iroh};

/// Blobs at least this large are split across providers.
const SPLIT_MIN: u64 = 64 * 1024 * 1024;

/// A peer that may have a blob, and where its blob endpoint listens.
#[derive(Debug, Clone)]
pub struct Provider {
    pub peer: PeerKey,
    pub addresses: Vec<SocketAddr>,
    /// The relay the peer's endpoint is reachable through, if it uses a
    /// hub: the way in when the NATs between us admit nothing direct.
    pub relay: Option<iroh::RelayUrl>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no connected peer that shares this project can serve it")]
    NoProviders,
    #[error("every peer failed: {}", .0.iter().map(|(p, r)| format!("{p}: {r}")).collect::<Vec<_>>().join("; "))]
    AllFailed(Vec<(String, String)>),
}

/// What one blob's fetch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    /// Payload bytes that crossed the network, over every attempt.
    pub bytes_received: u64,
}

/// Connections to providers, shared by the fetches of one batch so each
/// peer is dialled once.
pub struct Fetcher<'a> {
    endpoint: &'a BlobEndpoint,
    store: &'a BlobStore,
    connections: Mutex<HashMap<PeerKey, iroh::endpoint::Connection>>,
    /// Peers that sent corrupt data in this batch: never asked again.
    bad: std::sync::Mutex<Vec<PeerKey>>,
    /// Peers that sent verified bytes in this batch.
    served: std::sync::Mutex<std::collections::BTreeSet<PeerKey>>,
}

impl<'a> Fetcher<'a> {
    pub fn new(endpoint: &'a BlobEndpoint, store: &'a BlobStore) -> Self {
        Self {
            endpoint,
            store,
            connections: Mutex::new(HashMap::new()),
            bad: std::sync::Mutex::new(Vec::new()),
            served: std::sync::Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    async fn connection(&self, provider: &Provider) -> Result<iroh::endpoint::Connection, String> {
        let mut connections = self.connections.lock().await;
        if let Some(connection) = connections.get(&provider.peer)
            && connection.close_reason().is_none()
        {
            return Ok(connection.clone());
        }
        let connection = self
            .endpoint
            .connect(&provider.peer, &provider.addresses, provider.relay.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        connections.insert(provider.peer, connection.clone());
        Ok(connection)
    }

    /// Drives one request to one provider to its end: reports the payload
    /// bytes received as they arrive, remembers who served and who sent
    /// data that failed verification (never asked again in this batch).
    async fn drive(
        &self,
        provider: &Provider,
        get: GetProgress,
        progress: impl Fn(u64),
    ) -> (u64, Result<(), String>) {
        let mut items = std::pin::pin!(get.stream());
        let mut received = 0;
        while let Some(item) = items.next().await {
            match item {
                GetProgressItem::Progress(bytes) => {
                    received = bytes;
                    progress(bytes);
                }
                GetProgressItem::Done(stats) => {
                    if stats.payload_bytes_read > 0 {
                        self.served_by(&provider.peer);
                    }
                    return (stats.payload_bytes_read, Ok(()));
                }
                GetProgressItem::Error(e) => {
                    if matches!(e, GetError::Decode { .. }) {
                        tracing::warn!(peer = %provider.peer.short(), "peer sent corrupt blob data");
                        if let Ok(mut bad) = self.bad.lock() {
                            bad.push(provider.peer);
                        }
                    }
                    return (received, Err(describe(&e)));
                }
            }
        }
        (received, Err("the transfer ended early".into()))
    }

    fn served_by(&self, peer: &PeerKey) {
        if let Ok(mut served) = self.served.lock() {
            served.insert(*peer);
        }
    }

    /// Peers that sent verified bytes so far.
    pub fn served(&self) -> Vec<PeerKey> {
        self.served
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    fn is_bad(&self, peer: &PeerKey) -> bool {
        self.bad
            .lock()
            .map(|bad| bad.contains(peer))
            .unwrap_or(false)
    }

    /// Fetches one blob of `size` bytes: a large one is split by chunk
    /// ranges across several providers at once; whatever a part misses is
    /// then asked of the providers in turn. `progress` gets the payload
    /// bytes received so far in this call.
    pub async fn fetch(
        &self,
        hash: &BlobHash,
        size: u64,
        providers: &[Provider],
        progress: impl Fn(u64),
    ) -> Result<Fetched, FetchError> {
        if providers.is_empty() {
            return Err(FetchError::NoProviders);
        }
        let mut received = 0u64;
        let usable: Vec<&Provider> = providers.iter().filter(|p| !self.is_bad(&p.peer)).collect();
        if size >= SPLIT_MIN && usable.len() > 1 {
            received = self.fetch_split(hash, size, &usable, &progress).await;
            let complete = self
                .store
                .presence_async(hash)
                .await
                .is_ok_and(|p| p.complete);
            if complete {
                return Ok(Fetched {
                    bytes_received: received,
                });
            }
        }
        let mut failures = Vec::new();
        for provider in providers {
            if self.is_bad(&provider.peer) {
                continue;
            }
            let connection = match self.connection(provider).await {
                Ok(connection) => connection,
                Err(reason) => {
                    failures.push((provider.peer.short(), reason));
                    continue;
                }
            };
            let before = received;
            let fetch = self
                .store
                .inner()
                .remote()
                .fetch(connection, HashAndFormat::raw(to_iroh(hash)));
            let (bytes, outcome) = self
                .drive(provider, fetch, |bytes| progress(before + bytes))
                .await;
            received = before + bytes;
            match outcome {
                Ok(()) => {
                    return Ok(Fetched {
                        bytes_received: received,
                    });
                }
                Err(reason) => failures.push((provider.peer.short(), reason)),
            }
        }
        if failures.is_empty() {
            return Err(FetchError::NoProviders);
        }
        Err(FetchError::AllFailed(failures))
    }

    /// Asks each provider for its own share of the chunks still missing,
    /// all at once. Returns the payload bytes received; parts that fail are
    /// left missing for the caller to fetch again.
    async fn fetch_split(
        &self,
        hash: &BlobHash,
        size: u64,
        providers: &[&Provider],
        progress: &impl Fn(u64),
    ) -> u64 {
        let present = match self.store.inner().observe(to_iroh(hash)).await {
            Ok(bitfield) => bitfield.ranges,
            Err(_) => ChunkRanges::empty(),
        };
        let chunks = size.div_ceil(1024);
        let share = chunks.div_ceil(providers.len() as u64);
        let counters: Vec<AtomicU64> = providers.iter().map(|_| AtomicU64::new(0)).collect();
        let report = || progress(counters.iter().map(|c| c.load(Ordering::Relaxed)).sum());
        let parts = providers.iter().enumerate().map(|(i, provider)| {
            let window =
                ChunkRanges::chunks(i as u64 * share..((i as u64 + 1) * share).min(chunks));
            let wanted = window - &present;
            let counter = &counters[i];
            let report = &report;
            async move {
                if wanted.is_empty() {
                    return;
                }
                let Ok(connection) = self.connection(provider).await else {
                    return;
                };
                let request = GetRequest::blob_ranges(to_iroh(hash), wanted);
                let get = self.store.inner().remote().execute_get(connection, request);
                let (bytes, _) = self
                    .drive(provider, get, |bytes| {
                        counter.store(bytes, Ordering::Relaxed);
                        report();
                    })
                    .await;
                counter.store(bytes, Ordering::Relaxed);
            }
        });
        futures::future::join_all(parts).await;
        report();
        counters.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Fetches many small blobs in one request per provider: per-file
    /// round trips are what makes thousands of small files slow. Blobs a
    /// provider could not give are asked of the next one.
    pub async fn fetch_many(
        &self,
        hashes: &[BlobHash],
        providers: &[Provider],
        progress: impl Fn(u64),
    ) -> Result<Fetched, FetchError> {
        if providers.is_empty() {
            return Err(FetchError::NoProviders);
        }
        let mut missing: Vec<BlobHash> = hashes.to_vec();
        let mut received = 0u64;
        let mut failures = Vec::new();
        for provider in providers {
            if missing.is_empty() {
                break;
            }
            if self.is_bad(&provider.peer) {
                continue;
            }
            let connection = match self.connection(provider).await {
                Ok(connection) => connection,
                Err(reason) => {
                    failures.push((provider.peer.short(), reason));
                    continue;
                }
            };
            let mut request = iroh_blobs::protocol::GetManyRequest::builder();
            for hash in &missing {
                request = request.hash(to_iroh(hash), iroh_blobs::protocol::ChunkRanges::all());
            }
            let before = received;
            let get = self
                .store
                .inner()
                .remote()
                .execute_get_many(connection, request.build());
            let (bytes, outcome) = self
                .drive(provider, get, |bytes| progress(before + bytes))
                .await;
            received = before + bytes;
            if let Err(reason) = outcome {
                failures.push((provider.peer.short(), reason));
            }
            let mut still = Vec::new();
            for hash in missing {
                let complete = self
                    .store
                    .presence_async(&hash)
                    .await
                    .map(|p| p.complete)
                    .unwrap_or(false);
                if !complete {
                    still.push(hash);
                }
            }
            missing = still;
        }
        if missing.is_empty() {
            return Ok(Fetched {
                bytes_received: received,
            });
        }
        if failures.is_empty() {
            failures.push((
                "peers".into(),
                format!("{} blobs were not served", missing.len()),
            ));
        }
        Err(FetchError::AllFailed(failures))
    }

    /// The first provider that holds the whole blob, asked without moving
    /// its bytes; `tandem evict` needs one before it drops a local copy.
    pub async fn holder(&self, hash: &BlobHash, providers: &[Provider]) -> Option<PeerKey> {
        for provider in providers {
            let Ok(connection) = self.connection(provider).await else {
                continue;
            };
            let request = iroh_blobs::protocol::ObserveRequest::new(to_iroh(hash));
            let mut states =
                std::pin::pin!(self.store.inner().remote().observe(connection, request));
            let first =
                tokio::time::timeout(std::time::Duration::from_secs(5), states.next()).await;
            if let Ok(Some(Ok(bitfield))) = first
                && bitfield.is_complete()
            {
                return Some(provider.peer);
            }
        }
        None
    }

    pub async fn close(self) {
        for (_, connection) in self.connections.into_inner() {
            connection.close(0u32.into(), b"done");
        }
    }
}

fn describe(error: &GetError) -> String {
    match error {
        GetError::Decode { .. } => {
            "sent data that does not match its hash (corrupt or forged); it was discarded".into()
        }
        other if other.iroh_error_code() == Some(iroh_blobs::protocol::ERR_PERMISSION) => {
            "refused (no access, or it does not have the data)".into()
        }
        other => other.to_string(),
    }
}
