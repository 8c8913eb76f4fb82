//! The iroh endpoint that moves blobs between nodes, and the gate that
//! decides, per peer and per hash, what it may serve.
//!
//! The endpoint runs with the node's own key (its endpoint id is the same
//! ed25519 key as the libp2p PeerId and the did:key), binds only the address
//! it is given, and never contacts a DNS or pkarr server: peer addresses
//! come from Tandem's own discovery, so it works with no internet. The only
//! relay it ever uses is the one its own hub runs (added with
//! [`BlobEndpoint::use_relay`] once the hub says where it is), or a
//! member's hub named by that member; with no hub there is none.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use iroh::endpoint::presets;
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, RelayConfig, RelayMap, RelayMode, RelayUrl, TransportAddr};
use iroh_blobs::BlobsProtocol;
use iroh_blobs::provider::events::{
    AbortReason, ConnectMode, EventMask, EventSender, ObserveMode, ProviderMessage, RequestMode,
    ThrottleMode,
};
use tandem_protocol::SecretKey;
use tandem_protocol::blob::BlobHash;
use tandem_protocol::identity::PeerKey;

use super::store::{BlobStore, from_iroh};

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("cannot bind the blob endpoint to {address}: {message}")]
    Bind { address: String, message: String },
    #[error("cannot reach peer {peer}'s blob endpoint: {message}")]
    Connect { peer: String, message: String },
}

/// Decides whether a peer may fetch every one of some blobs. It must
/// answer the same for a hash it does not have as for one the peer may not
/// read, and must not trust what a project merely names: the node's gate
/// serves only blobs it obtained for a project the peer may read (see
/// `blobs::obtained`). It is asked for every request, a batch of up to 512
/// hashes at a time, so it answers from memory.
pub trait Gate: Send + Sync + 'static {
    fn may_fetch(&self, peer: &PeerKey, hashes: &[BlobHash]) -> bool;
}

/// The running endpoint and its router; dropping it stops serving.
pub struct BlobEndpoint {
    endpoint: Endpoint,
    router: Router,
    /// The relay this endpoint is reachable through (its hub's), if any.
    relay: std::sync::RwLock<Option<RelayUrl>>,
}

/// Everything the provider may be asked, each gated: plain gets and
/// get-many by hash, observe (which would leak what we hold), and push
/// (which would write into our store) refused outright.
const MASK: EventMask = EventMask {
    connected: ConnectMode::Intercept,
    get: RequestMode::Intercept,
    get_many: RequestMode::Intercept,
    push: RequestMode::Disabled,
    observe: ObserveMode::Intercept,
    throttle: ThrottleMode::None,
};

impl BlobEndpoint {
    pub async fn start(
        key: &SecretKey,
        bind: SocketAddr,
        store: &BlobStore,
        gate: Arc<dyn Gate>,
    ) -> Result<Self, EndpointError> {
        let fail = |message: String| EndpointError::Bind {
            address: bind.to_string(),
            message,
        };
        let secret = iroh::SecretKey::from_bytes(&key.to_bytes());
        let endpoint = Endpoint::builder(presets::Minimal)
            // An empty map: no relay until a hub names one.
            .relay_mode(RelayMode::Custom(RelayMap::empty()))
            .clear_address_lookup()
            .clear_ip_transports()
            .secret_key(secret)
            .bind_addr(bind)
            .map_err(|e| fail(e.to_string()))?
            .bind()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (events, requests) = EventSender::channel(256, MASK);
        tokio::spawn(judge(requests, gate));
        let blobs = BlobsProtocol::new(store.inner(), Some(events));
        let router = Router::builder(endpoint.clone())
            .accept(iroh_blobs::ALPN, blobs)
            .spawn();
        Ok(Self {
            endpoint,
            router,
            relay: std::sync::RwLock::new(None),
        })
    }

    /// Makes this endpoint reachable through a hub's relay (and able to
    /// reach others through it). Only the relay's websocket is used, not
    /// its QUIC address discovery, which a hub does not serve.
    pub async fn use_relay(&self, url: RelayUrl) {
        let config = RelayConfig::new(url.clone(), None);
        self.endpoint
            .insert_relay(url.clone(), Arc::new(config))
            .await;
        *self.relay.write().unwrap_or_else(|e| e.into_inner()) = Some(url);
    }

    /// The relay this endpoint is reachable through, if any.
    pub fn relay(&self) -> Option<RelayUrl> {
        self.relay.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The UDP port peers should dial.
    pub fn port(&self) -> u16 {
        self.endpoint
            .bound_sockets()
            .first()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    pub fn bound(&self) -> Vec<SocketAddr> {
        self.endpoint.bound_sockets()
    }

    /// Connects to a peer's blob endpoint at the given addresses, or
    /// through its relay; iroh tries them together and moves to a direct
    /// path when one opens.
    pub async fn connect(
        &self,
        peer: &PeerKey,
        addresses: &[SocketAddr],
        relay: Option<&RelayUrl>,
    ) -> Result<iroh::endpoint::Connection, EndpointError> {
        let fail = |message: String| EndpointError::Connect {
            peer: peer.to_string(),
            message,
        };
        let id = iroh::PublicKey::from_bytes(peer.as_bytes()).map_err(|e| fail(e.to_string()))?;
        let addr = EndpointAddr::from_parts(
            id,
            addresses
                .iter()
                .copied()
                .map(TransportAddr::Ip)
                .chain(relay.cloned().map(TransportAddr::Relay)),
        );
        let connecting = self.endpoint.connect(addr, iroh_blobs::ALPN);
        match tokio::time::timeout(std::time::Duration::from_secs(10), connecting).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(fail(e.to_string())),
            Err(_) => Err(fail("no answer within 10 s".into())),
        }
    }

    /// Stops serving and closes the endpoint. The store stays open: the
    /// router's own shutdown would close it too, so the endpoint is closed
    /// directly and the router aborted.
    pub async fn close(self) {
        self.endpoint.close().await;
        drop(self.router);
    }
}

/// Answers the provider's questions. Each connection's peer is learnt when
/// it connects (that event always comes before its requests); every request
/// is judged on a blocking thread since the gate reads project state.
async fn judge(mut requests: tokio::sync::mpsc::Receiver<ProviderMessage>, gate: Arc<dyn Gate>) {
    let mut peers: HashMap<u64, PeerKey> = HashMap::new();
    while let Some(message) = requests.recv().await {
        match message {
            ProviderMessage::ClientConnected(m) => {
                let peer = m
                    .endpoint_id
                    .and_then(|id| PeerKey::from_bytes(*id.as_bytes()).ok());
                let answer = match peer {
                    Some(peer) => {
                        peers.insert(m.connection_id, peer);
                        Ok(())
                    }
                    None => Err(AbortReason::Permission),
                };
                m.tx.send(answer).await.ok();
            }
            ProviderMessage::ConnectionClosed(m) => {
                peers.remove(&m.connection_id);
            }
            ProviderMessage::GetRequestReceived(m) => {
                let hashes = vec![from_iroh(&m.request.hash)];
                judge_request(&gate, peers.get(&m.connection_id), hashes, m.tx);
            }
            ProviderMessage::GetManyRequestReceived(m) => {
                let hashes = m.request.hashes.iter().map(from_iroh).collect();
                judge_request(&gate, peers.get(&m.connection_id), hashes, m.tx);
            }
            ProviderMessage::ObserveRequestReceived(m) => {
                let hashes = vec![from_iroh(&m.request.hash)];
                judge_request(&gate, peers.get(&m.connection_id), hashes, m.tx);
            }
            // Anything else that expects an answer is refused by dropping it.
            _ => {}
        }
    }
}

/// Answers one request off the event loop, so a slow judgement does not
/// hold up other connections.
fn judge_request(
    gate: &Arc<dyn Gate>,
    peer: Option<&PeerKey>,
    hashes: Vec<BlobHash>,
    reply: irpc::channel::oneshot::Sender<Result<(), AbortReason>>,
) {
    let gate = gate.clone();
    let peer = peer.copied();
    tokio::spawn(async move {
        let verdict = allowed(gate, peer, hashes).await;
        reply.send(verdict).await.ok();
    });
}

async fn allowed(
    gate: Arc<dyn Gate>,
    peer: Option<PeerKey>,
    hashes: Vec<BlobHash>,
) -> Result<(), AbortReason> {
    let Some(peer) = peer else {
        return Err(AbortReason::Permission);
    };
    let verdict = tokio::task::spawn_blocking(move || gate.may_fetch(&peer, &hashes)).await;
    match verdict {
        Ok(true) => Ok(()),
        _ => Err(AbortReason::Permission),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One key everywhere: the iroh endpoint id, the libp2p PeerId and the
    /// did:key all come from the identity secret.
    #[test]
    fn endpoint_id_is_the_identity_key() {
        let key = SecretKey::from_bytes([7; 32]);
        let iroh_key = iroh::SecretKey::from_bytes(&key.to_bytes());
        assert_eq!(iroh_key.public().as_bytes(), key.public().as_bytes());
        let libp2p = crate::p2p::keypair(&key).expect("libp2p key");
        assert_eq!(
            libp2p.public().to_peer_id().to_string(),
            key.public().to_peer_id()
        );
    }
}
