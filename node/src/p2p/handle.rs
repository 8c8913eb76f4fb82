//! The rest of the node's way to use the network: a [`NetHandle`] sends
//! [`Command`]s down a channel to whoever runs the network (the swarm's
//! driver, or an in-memory network in tests) and awaits the answers.

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};
use tandem_protocol::PeerKey;
use tandem_protocol::wire::{Request, Response};
use tokio::sync::{mpsc, oneshot};

/// What `tandem peers` shows (shared with the web UI).
pub use tandem_protocol::api::PeerInfo;
use tandem_protocol::api::{HubLinkStatus, Reachability};

/// Where this node stands on the internet: what AutoNAT found, and its
/// link to a hub if one is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkStatus {
    pub reachability: Reachability,
    pub hub: Option<HubLinkStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network: {0}")]
    Setup(String),
    #[error(
        "not a peer address {0:?}: expected a multiaddr like /ip4/192.168.1.20/tcp/4001/p2p/12D3KooW…"
    )]
    BadAddress(String),
    #[error("the network task has stopped")]
    Stopped,
    #[error("{0}")]
    Request(String),
}

/// What the node asks of the network; each carries where to send the
/// answer. Public so that a network other than the swarm (a test's) can
/// answer them.
pub enum Command {
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, NetError>>),
    /// Look a peer up through connected peers (Kademlia) and dial it.
    Find(PeerId, oneshot::Sender<Result<PeerId, NetError>>),
    Request(PeerId, Request, oneshot::Sender<Result<Response, NetError>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Addresses(oneshot::Sender<Vec<String>>),
    /// Use this hub: keep a relay slot on it while this node may be
    /// unreachable, and reach peers through it.
    Relay(Multiaddr, oneshot::Sender<Result<(), NetError>>),
    /// The hub told where its relay for blob endpoints is.
    HubRelay(String),
    Network(oneshot::Sender<NetworkStatus>),
    /// Be subscribed to exactly these topics.
    Topics(Vec<String>),
    /// Publish on a topic; answers with the peers known to be subscribed
    /// to it (they get the message through the mesh).
    Publish(
        String,
        Vec<u8>,
        oneshot::Sender<Result<Vec<PeerId>, NetError>>,
    ),
}

/// A cheap, cloneable way to use the network from anywhere in the node.
#[derive(Clone)]
pub struct NetHandle {
    commands: mpsc::Sender<Command>,
}

impl NetHandle {
    /// A handle whose commands go to `commands`: whoever holds the other
    /// end is the network.
    pub fn new(commands: mpsc::Sender<Command>) -> Self {
        Self { commands }
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Dials an address (which must end in `/p2p/<peer id>`); resolves once
    /// connected.
    pub async fn dial(&self, address: &str) -> Result<PeerKey, NetError> {
        let addr = peer_address(address)?;
        let peer = self.ask(|tx| Command::Dial(addr, tx)).await??;
        peer_key(&peer)
            .ok_or_else(|| NetError::Request("the peer's id is not an ed25519 key".into()))
    }

    /// Finds a peer by key alone, asking the peers this node is connected
    /// to (and theirs) where it listens, then connects; resolves once
    /// connected.
    pub async fn find(&self, peer: &PeerKey) -> Result<PeerKey, NetError> {
        let id = peer_id(peer)?;
        self.ask(|tx| Command::Find(id, tx)).await??;
        Ok(*peer)
    }

    pub async fn request(&self, peer: &PeerKey, request: Request) -> Result<Response, NetError> {
        let peer = peer_id(peer)?;
        self.ask(|tx| Command::Request(peer, request, tx)).await?
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.ask(Command::Peers).await
    }

    /// This node's dialable addresses, each ending in `/p2p/<peer id>`.
    pub async fn addresses(&self) -> Result<Vec<String>, NetError> {
        self.ask(Command::Addresses).await
    }

    /// The peers connected right now, with their keys.
    pub async fn connected_peers(&self) -> Result<Vec<(PeerKey, PeerInfo)>, NetError> {
        Ok(self
            .peers()
            .await?
            .into_iter()
            .filter(|p| p.connected)
            .filter_map(|p| Some((p.did.parse().ok()?, p)))
            .collect())
    }

    /// Listens through a relay (a peer running the relay service), so
    /// peers behind other NATs can reach this node; DCUtR then tries a
    /// direct connection.
    pub async fn use_relay(&self, address: &str) -> Result<(), NetError> {
        let addr = peer_address(address)?;
        self.ask(|tx| Command::Relay(addr, tx)).await?
    }

    pub async fn network(&self) -> Result<NetworkStatus, NetError> {
        self.ask(Command::Network).await
    }

    /// Remembers the hub's relay for blob endpoints (shown in the status).
    pub async fn note_hub_relay(&self, url: String) -> Result<(), NetError> {
        self.commands
            .send(Command::HubRelay(url))
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Subscribes to exactly these gossip topics, leaving any others.
    pub async fn set_topics(&self, topics: Vec<String>) -> Result<(), NetError> {
        self.commands
            .send(Command::Topics(topics))
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Publishes an announcement; returns the keys of the peers known to be
    /// subscribed to the topic, who receive it through the mesh.
    pub async fn publish(&self, topic: String, data: Vec<u8>) -> Result<Vec<PeerKey>, NetError> {
        let peers = self.ask(|tx| Command::Publish(topic, data, tx)).await??;
        Ok(peers.iter().filter_map(peer_key).collect())
    }

    /// Keys of the peers connected right now.
    pub async fn connected(&self) -> Result<Vec<PeerKey>, NetError> {
        Ok(self
            .connected_peers()
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }
}

/// A multiaddr that names the peer it reaches (`…/p2p/<peer id>`).
fn peer_address(address: &str) -> Result<Multiaddr, NetError> {
    let addr: Multiaddr = address
        .parse()
        .map_err(|_| NetError::BadAddress(address.to_owned()))?;
    if !addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
        return Err(NetError::BadAddress(address.to_owned()));
    }
    Ok(addr)
}

/// The node's key for a libp2p peer id (`None` unless it is ed25519).
pub fn peer_key(peer: &PeerId) -> Option<PeerKey> {
    peer.to_base58().parse().ok()
}

/// The libp2p peer id of a node's key.
pub fn peer_id(key: &PeerKey) -> Result<PeerId, NetError> {
    key.to_peer_id()
        .parse()
        .map_err(|_| NetError::Request(format!("{key} has no PeerId form")))
}
