//! Bringing blobs from peers: verified while streaming, resumed from what
//! is already here, and moved on to the next peer when one fails or sends
//! bytes that do not match their hash.

use std::collections::HashMap;
use std::net::SocketAddr;

use futures::StreamExt;
use iroh_blobs::HashAndFormat;
use iroh_blobs::api::remote::GetProgressItem;
use iroh_blobs::get::GetError;
use tandem_protocol::blob::BlobHash;
use tandem_protocol::identity::PeerKey;
use tokio::sync::Mutex;

use super::endpoint::BlobEndpoint;
use super::store::{BlobStore, to_iroh};

/// A peer that may have a blob, and where its blob endpoint listens.
#[derive(Debug, Clone)]
pub struct Provider {
    pub peer: PeerKey,
    pub addresses: Vec<SocketAddr>,
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
}

impl<'a> Fetcher<'a> {
    pub fn new(endpoint: &'a BlobEndpoint, store: &'a BlobStore) -> Self {
        Self {
            endpoint,
            store,
            connections: Mutex::new(HashMap::new()),
            bad: std::sync::Mutex::new(Vec::new()),
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
            .connect(&provider.peer, &provider.addresses)
            .await
            .map_err(|e| e.to_string())?;
        connections.insert(provider.peer, connection.clone());
        Ok(connection)
    }

    fn is_bad(&self, peer: &PeerKey) -> bool {
        self.bad
            .lock()
            .map(|bad| bad.contains(peer))
            .unwrap_or(false)
    }

    /// Fetches one blob, trying providers in the order given. `progress`
    /// gets the payload bytes received so far in this call.
    pub async fn fetch(
        &self,
        hash: &BlobHash,
        providers: &[Provider],
        progress: impl Fn(u64),
    ) -> Result<Fetched, FetchError> {
        if providers.is_empty() {
            return Err(FetchError::NoProviders);
        }
        let mut received = 0u64;
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
            let mut items = std::pin::pin!(fetch.stream());
            let mut outcome = Err("the transfer ended early".to_owned());
            while let Some(item) = items.next().await {
                match item {
                    GetProgressItem::Progress(bytes) => {
                        received = before + bytes;
                        progress(received);
                    }
                    GetProgressItem::Done(stats) => {
                        received = before + stats.payload_bytes_read;
                        outcome = Ok(());
                        break;
                    }
                    GetProgressItem::Error(e) => {
                        outcome = Err(describe(&e));
                        if matches!(e, GetError::Decode { .. }) {
                            tracing::warn!(peer = %provider.peer.short(), %hash, "peer sent corrupt blob data");
                            if let Ok(mut bad) = self.bad.lock() {
                                bad.push(provider.peer);
                            }
                        }
                        break;
                    }
                }
            }
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
            let mut items = std::pin::pin!(get.stream());
            while let Some(item) = items.next().await {
                match item {
                    GetProgressItem::Progress(bytes) => {
                        received = before + bytes;
                        progress(received);
                    }
                    GetProgressItem::Done(stats) => {
                        received = before + stats.payload_bytes_read;
                        break;
                    }
                    GetProgressItem::Error(e) => {
                        if matches!(e, GetError::Decode { .. })
                            && let Ok(mut bad) = self.bad.lock()
                        {
                            bad.push(provider.peer);
                        }
                        failures.push((provider.peer.short(), describe(&e)));
                        break;
                    }
                }
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
