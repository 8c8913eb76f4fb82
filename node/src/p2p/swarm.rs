//! The node on the network: a libp2p swarm (TCP + noise + yamux, identify,
//! ping, request-response for sync, gossipsub for signed announcements,
//! Kademlia, relay client, DCUtR and AutoNAT built in
//! for peers behind NAT) and mDNS (`_tandem._udp.local.`) for finding peers
//! on a LAN with no configuration and no internet.
//!
//! The swarm runs in one task; the rest of the node talks to it through a
//! [`NetHandle`]. Inbound requests are answered by the [`Service`], which
//! enforces access: the requester's key is the authenticated PeerId.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, autonat, dcutr, gossipsub, identify, identity, kad,
    multiaddr::Protocol, noise, ping, relay, tcp, yamux,
};
use serde::{Deserialize, Serialize};
use tandem_protocol::wire::{MAX_REQUEST, MAX_RESPONSE, PROTOCOL, Request, Response};
use tandem_protocol::{PeerKey, SecretKey};
use tokio::sync::{mpsc, oneshot};

use crate::fsutil::atomic_write;
use crate::service::{Service, now_ms};

const MDNS_SERVICE: &str = "_tandem._udp.local.";
/// How long a request may wait for its answer (packs can be large).
/// The Kademlia protocol name: Tandem's own DHT, apart from any other.
const KAD_PROTOCOL: &str = "/tandem/kad/1.0.0";
/// The gossipsub protocol prefix: Tandem's own mesh, apart from any other.
const GOSSIP_PROTOCOL: &str = "/tandem/meshsub";
/// How long a lookup may take before it gives up.
const FIND_TIMEOUT: Duration = Duration::from_secs(20);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Most announcements judged at once.
const MAX_JUDGING: usize = 32;

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

#[derive(NetworkBehaviour)]
struct Behaviour {
    sync: request_response::json::Behaviour<Request, Response>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    relay: relay::client::Behaviour,
    dcutr: dcutr::Behaviour,
    autonat: autonat::Behaviour,
    /// Finds peers' addresses through other peers (internet case); off
    /// with `tandem up --no-dht`.
    kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    /// Announcements of new work, one topic per project (see
    /// `tandem_protocol::gossip`).
    gossip: gossipsub::Behaviour,
}

/// What `tandem peers` shows (shared with the web UI).
pub use tandem_protocol::api::PeerInfo;

/// Addresses kept per peer; the newest are kept. A peer names its own
/// addresses (identify, mDNS), so without a cap one peer could grow the
/// book without end.
const MAX_PEER_ADDRESSES: usize = 16;
/// Characters kept of the name a peer gives itself.
const MAX_PEER_NAME: usize = 100;
/// Peers remembered at most. Any device on the LAN can connect with fresh
/// keys; past this the peers seen longest ago (and not connected) go.
const MAX_BOOK_PEERS: usize = 1_000;

/// Keeps one peer's entry within its caps.
fn bound_entry(info: &mut PeerInfo) {
    if info.addresses.len() > MAX_PEER_ADDRESSES {
        let extra = info.addresses.len() - MAX_PEER_ADDRESSES;
        info.addresses.drain(..extra);
    }
    if let Some(name) = &mut info.name
        && name.chars().count() > MAX_PEER_NAME
    {
        *name = name.chars().take(MAX_PEER_NAME).collect();
    }
}

/// Drops the peers seen longest ago until the book is within its cap,
/// never the one being updated, and connected peers last.
fn bound_book(book: &mut PeerBook, keep: &str) {
    while book.peers.len() > MAX_BOOK_PEERS {
        let oldest = book
            .peers
            .iter()
            .filter(|(id, _)| id.as_str() != keep)
            .min_by_key(|(_, info)| (info.connected, info.last_seen_ms.unwrap_or(0)))
            .map(|(id, _)| id.clone());
        match oldest {
            Some(id) => book.peers.remove(&id),
            None => break,
        };
    }
}

/// Peers remembered across restarts (`peers.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct PeerBook {
    peers: BTreeMap<String, PeerInfo>,
}

enum Command {
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, NetError>>),
    /// Look a peer up through connected peers (Kademlia) and dial it.
    Find(PeerId, oneshot::Sender<Result<PeerId, NetError>>),
    Request(PeerId, Request, oneshot::Sender<Result<Response, NetError>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Addresses(oneshot::Sender<Vec<String>>),
    /// Reserve a slot on a relay and listen through it.
    Relay(Multiaddr, oneshot::Sender<Result<(), NetError>>),
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

/// A received announcement, for the service to judge.
pub struct Gossip {
    /// The key that published it (gossipsub signs messages), if any.
    pub source: Option<PeerKey>,
    pub topic: String,
    pub data: Vec<u8>,
}

/// What the service makes of a [`Gossip`]: only accepted messages are
/// relayed; rejected ones count against the peer that forwarded them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Ignore,
    Reject,
}

/// A cheap, cloneable way to use the network from anywhere in the node.
#[derive(Clone)]
pub struct NetHandle {
    commands: mpsc::Sender<Command>,
}

impl NetHandle {
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
        let addr: Multiaddr = address
            .parse()
            .map_err(|_| NetError::BadAddress(address.to_owned()))?;
        if !addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
            return Err(NetError::BadAddress(address.to_owned()));
        }
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
        let addr: Multiaddr = address
            .parse()
            .map_err(|_| NetError::BadAddress(address.to_owned()))?;
        if !addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
            return Err(NetError::BadAddress(address.to_owned()));
        }
        self.ask(|tx| Command::Relay(addr, tx)).await?
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

pub fn peer_key(peer: &PeerId) -> Option<PeerKey> {
    peer.to_base58().parse().ok()
}

fn peer_id(key: &PeerKey) -> Result<PeerId, NetError> {
    key.to_peer_id()
        .parse()
        .map_err(|_| NetError::Request(format!("{key} has no PeerId form")))
}

/// The libp2p keypair for this node's identity: one key everywhere.
pub fn keypair(key: &SecretKey) -> Result<identity::Keypair, NetError> {
    let mut bytes = key.to_bytes();
    identity::Keypair::ed25519_from_bytes(&mut bytes).map_err(|e| NetError::Setup(e.to_string()))
}

/// Gossipsub as Tandem uses it: messages signed by the node's key (so a
/// receiver knows who published), validated by the service before they
/// are relayed, and small.
fn gossip_behaviour(
    key: &identity::Keypair,
) -> Result<gossipsub::Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let config = gossipsub::ConfigBuilder::default()
        .protocol_id_prefix(GOSSIP_PROTOCOL)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(tandem_protocol::gossip::MAX_ANNOUNCEMENT + 4096)
        .build()?;
    Ok(gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        config,
    )?)
}

/// Options for the network.
pub struct NetOptions {
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/0`.
    pub listen: Vec<Multiaddr>,
    /// Announce and browse on the LAN.
    pub mdns: bool,
    /// Take part in the Kademlia DHT. A DHT node dials the peers its peers
    /// know while its table is small, so in a small team everyone who
    /// shares a peer ends up connected.
    pub dht: bool,
}

/// Starts the swarm (and mDNS); returns the handle.
pub fn start(service: Arc<Service>, options: NetOptions) -> Result<NetHandle, NetError> {
    let keys = keypair(service.key())?;
    let local_peer = keys.public().to_peer_id();
    let agent = format!(
        "tandem/{} ({})",
        env!("CARGO_PKG_VERSION"),
        service.profile().name
    );
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keys)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Setup(e.to_string()))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| NetError::Setup(e.to_string()))?
        .with_behaviour(|key, relay| {
            let codec = request_response::json::codec::Codec::default()
                .set_request_size_maximum(MAX_REQUEST)
                .set_response_size_maximum(MAX_RESPONSE);
            let sync = request_response::Behaviour::with_codec(
                codec,
                [(StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
            );
            let gossip = gossip_behaviour(key)?;
            Ok(Behaviour {
                gossip,
                sync,
                identify: identify::Behaviour::new(
                    identify::Config::new("/tandem/id/1".into(), key.public())
                        .with_agent_version(agent.clone()),
                ),
                ping: ping::Behaviour::new(
                    ping::Config::new().with_interval(Duration::from_secs(15)),
                ),
                relay,
                dcutr: dcutr::Behaviour::new(key.public().to_peer_id()),
                autonat: autonat::Behaviour::new(
                    key.public().to_peer_id(),
                    autonat::Config::default(),
                ),
                kad: Toggle::from(options.dht.then(|| {
                    let me = key.public().to_peer_id();
                    let mut config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
                    config.set_query_timeout(FIND_TIMEOUT);
                    let mut kad =
                        kad::Behaviour::with_config(me, kad::store::MemoryStore::new(me), config);
                    // Answer lookups even without a confirmed public
                    // address: on a LAN or loopback there never is one.
                    kad.set_mode(Some(kad::Mode::Server));
                    kad
                })),
            })
        })
        .map_err(|e| NetError::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    for addr in &options.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Setup(format!("cannot listen on {addr}: {e}")))?;
    }
    let (commands, rx) = mpsc::channel(64);
    let handle = NetHandle { commands };
    let book_path = service.home().root().join("peers.json");
    let book: PeerBook = std::fs::read(&book_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    // Redial remembered peers in the background.
    for info in book.peers.values() {
        for addr in info
            .addresses
            .iter()
            .filter_map(|a| a.parse::<Multiaddr>().ok())
        {
            let _ = swarm.dial(addr);
        }
    }
    let (mdns_tx, mdns_rx) = mpsc::unbounded_channel();
    let mdns = if options.mdns {
        Mdns::start(local_peer, mdns_tx)
    } else {
        None
    };
    let driver = Driver {
        swarm,
        service,
        local_peer,
        book,
        book_path,
        pending: HashMap::new(),
        dials: HashMap::new(),
        mdns,
        connected: HashMap::new(),
        finds: HashMap::new(),
        limiter: crate::p2p::ratelimit::RateLimiter::new(
            crate::p2p::ratelimit::BURST,
            crate::p2p::ratelimit::PER_SECOND,
        ),
        wire_log: crate::p2p::wirelog::WireLog::from_env(),
        topics: BTreeSet::new(),
        judging: Arc::new(AtomicUsize::new(0)),
    };
    tokio::spawn(driver.run(rx, mdns_rx));
    Ok(handle)
}

struct Driver {
    swarm: Swarm<Behaviour>,
    service: Arc<Service>,
    local_peer: PeerId,
    book: PeerBook,
    book_path: std::path::PathBuf,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<Response, NetError>>>,
    dials: HashMap<PeerId, Vec<oneshot::Sender<Result<PeerId, NetError>>>>,
    mdns: Option<Mdns>,
    connected: HashMap<PeerId, usize>,
    /// Lookups in flight: the peer sought and who waits for it.
    finds: HashMap<kad::QueryId, (PeerId, oneshot::Sender<Result<PeerId, NetError>>)>,
    limiter: crate::p2p::ratelimit::RateLimiter<PeerId>,
    wire_log: crate::p2p::wirelog::WireLog,
    /// The gossip topics subscribed to.
    topics: BTreeSet<String>,
    /// Announcements being judged right now.
    judging: Arc<AtomicUsize>,
}

/// A judged announcement on its way back to gossipsub.
type Judged = (gossipsub::MessageId, PeerId, Verdict);

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut mdns: mpsc::UnboundedReceiver<(PeerId, Vec<Multiaddr>)>,
    ) {
        let (answers_tx, mut answers) =
            mpsc::unbounded_channel::<(ResponseChannel<Response>, Response)>();
        let (judged_tx, mut judged) = mpsc::unbounded_channel::<Judged>();
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                Some((channel, response)) = answers.recv() => {
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
                }
                Some((id, from, verdict)) = judged.recv() => {
                    let acceptance = match verdict {
                        Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                        Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                        Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                    };
                    self.swarm
                        .behaviour_mut()
                        .gossip
                        .report_message_validation_result(&id, &from, acceptance);
                }
                Some((peer, addrs)) = mdns.recv() => self.on_discovered(peer, addrs, "mdns"),
                event = self.swarm.select_next_some() => self.on_event(event, &answers_tx, &judged_tx),
            }
        }
    }

    fn remember(&mut self, peer: &PeerId, update: impl FnOnce(&mut PeerInfo)) {
        let Some(key) = peer_key(peer) else { return };
        let entry = self
            .book
            .peers
            .entry(peer.to_base58())
            .or_insert_with(|| PeerInfo {
                did: key.to_did(),
                peer_id: peer.to_base58(),
                name: None,
                addresses: vec![],
                found_by: "inbound".into(),
                connected: false,
                last_seen_ms: None,
                rtt_ms: None,
            });
        update(entry);
        bound_entry(entry);
        if self.book.peers.len() > MAX_BOOK_PEERS {
            bound_book(&mut self.book, &peer.to_base58());
        }
    }

    fn save_book(&self) {
        let bytes = serde_json::to_vec_pretty(&self.book).unwrap_or_default();
        if let Err(e) = atomic_write(&self.book_path, &bytes, None) {
            tracing::warn!(error = %e, "cannot save the peer book");
        }
    }

    fn on_discovered(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, how: &str) {
        if peer == self.local_peer {
            return;
        }
        let texts: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        let how = how.to_owned();
        self.remember(&peer, |info| {
            for a in texts {
                if !info.addresses.contains(&a) {
                    info.addresses.push(a);
                }
            }
            if info.found_by == "inbound" {
                info.found_by = how;
            }
        });
        if !self.connected.contains_key(&peer) {
            for addr in addrs {
                let _ = self.swarm.dial(addr);
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Dial(addr, reply) => {
                let Some(peer) = addr.iter().find_map(|p| match p {
                    Protocol::P2p(id) => Some(id),
                    _ => None,
                }) else {
                    let _ = reply.send(Err(NetError::BadAddress(addr.to_string())));
                    return;
                };
                if peer == self.local_peer {
                    let _ = reply.send(Err(NetError::BadAddress(
                        "that is this node's own address".into(),
                    )));
                    return;
                }
                let text = addr.to_string();
                self.remember(&peer, |info| {
                    if !info.addresses.contains(&text) {
                        info.addresses.push(text);
                    }
                    info.found_by = "manual".into();
                });
                self.save_book();
                if self.connected.contains_key(&peer) {
                    let _ = reply.send(Ok(peer));
                    return;
                }
                match self.swarm.dial(addr) {
                    Ok(()) => self.dials.entry(peer).or_default().push(reply),
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Request(format!("cannot dial: {e}"))));
                    }
                }
            }
            Command::Find(peer, reply) => {
                if peer == self.local_peer {
                    let _ = reply.send(Err(NetError::BadAddress(
                        "that is this node's own key".into(),
                    )));
                } else if self.connected.contains_key(&peer) {
                    let _ = reply.send(Ok(peer));
                } else if self.connected.is_empty() {
                    let _ = reply.send(Err(NetError::Request(
                        "not connected to any peer to ask: add one by address first".into(),
                    )));
                } else if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                    let query = kad.get_closest_peers(peer);
                    self.finds.insert(query, (peer, reply));
                } else {
                    let _ = reply.send(Err(NetError::Request(
                        "this node runs without the DHT (--no-dht): add the peer by address".into(),
                    )));
                }
            }
            Command::Request(peer, request, reply) => {
                if !self.connected.contains_key(&peer) {
                    let _ = reply.send(Err(NetError::Request(format!("not connected to {peer}"))));
                    return;
                }
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending.insert(id, reply);
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.book.peers.values().cloned().collect());
            }
            Command::Topics(topics) => self.set_topics(topics),
            Command::Relay(addr, reply) => {
                let circuit = addr.clone().with(Protocol::P2pCircuit);
                let result = self
                    .swarm
                    .dial(addr)
                    .map_err(|e| NetError::Request(format!("cannot dial the relay: {e}")))
                    .and_then(|()| {
                        self.swarm.listen_on(circuit).map(|_| ()).map_err(|e| {
                            NetError::Request(format!("cannot listen through the relay: {e}"))
                        })
                    });
                let _ = reply.send(result);
            }
            Command::Publish(topic, data, reply) => {
                let _ = reply.send(self.publish(topic, data));
            }
            Command::Addresses(reply) => {
                let mut addrs: Vec<String> = self
                    .swarm
                    .listeners()
                    .chain(self.swarm.external_addresses())
                    .map(|a| format!("{a}/p2p/{}", self.local_peer))
                    .collect();
                addrs.sort();
                addrs.dedup();
                let _ = reply.send(addrs);
            }
        }
    }

    fn set_topics(&mut self, topics: Vec<String>) {
        let wanted: BTreeSet<String> = topics.into_iter().collect();
        let gossip = &mut self.swarm.behaviour_mut().gossip;
        for gone in self.topics.difference(&wanted) {
            gossip.unsubscribe(&gossipsub::IdentTopic::new(gone.as_str()));
        }
        for new in wanted.difference(&self.topics) {
            if let Err(e) = gossip.subscribe(&gossipsub::IdentTopic::new(new.as_str())) {
                tracing::warn!(error = ?e, "cannot subscribe to a project's announcements");
            }
        }
        self.topics = wanted;
    }

    fn publish(&mut self, topic: String, data: Vec<u8>) -> Result<Vec<PeerId>, NetError> {
        let topic = gossipsub::IdentTopic::new(topic);
        let hash = topic.hash();
        let gossip = &mut self.swarm.behaviour_mut().gossip;
        let subscribed: Vec<PeerId> = gossip
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .map(|(peer, _)| *peer)
            .collect();
        match gossip.publish(topic, data) {
            Ok(_) => Ok(subscribed),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Ok(Vec::new()),
            Err(e) => Err(NetError::Request(format!("cannot publish: {e}"))),
        }
    }

    /// An announcement arrived: the service judges it off the swarm's task
    /// (it reads the project's access), then gossipsub relays it or not.
    fn on_gossip(
        &mut self,
        propagation_source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
        judged: &mpsc::UnboundedSender<Judged>,
    ) {
        self.wire_log.gossip(
            &propagation_source.to_string(),
            message.source.map(|s| s.to_string()),
            message.topic.as_str(),
            &message.data,
        );
        let gossip = Gossip {
            source: message.source.as_ref().and_then(peer_key),
            topic: message.topic.into_string(),
            data: message.data,
        };
        // A flood of announcements must not pile up blocking work:
        // beyond a bound, new ones are dropped (ignored, not penalised).
        if self.judging.load(Ordering::Relaxed) >= MAX_JUDGING {
            let _ = judged.send((message_id, propagation_source, Verdict::Ignore));
            return;
        }
        self.judging.fetch_add(1, Ordering::Relaxed);
        let judging = self.judging.clone();
        let service = self.service.clone();
        let judged = judged.clone();
        tokio::spawn(async move {
            let verdict = tokio::task::spawn_blocking(move || service.on_gossip(&gossip))
                .await
                .unwrap_or(Verdict::Ignore);
            judging.fetch_sub(1, Ordering::Relaxed);
            let _ = judged.send((message_id, propagation_source, verdict));
        });
    }

    fn on_event(
        &mut self,
        event: SwarmEvent<BehaviourEvent>,
        answers: &mpsc::UnboundedSender<(ResponseChannel<Response>, Response)>,
        judged: &mpsc::UnboundedSender<Judged>,
    ) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening for peers");
                if let Some(mdns) = &mut self.mdns {
                    mdns.announce(&address);
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                *self.connected.entry(peer_id).or_default() += 1;
                let addr = endpoint.get_remote_address().clone();
                let dialed = endpoint.is_dialer();
                self.remember(&peer_id, |info| {
                    info.connected = true;
                    info.last_seen_ms = Some(now_ms());
                    if dialed {
                        let text = addr
                            .with_p2p(peer_id)
                            .map(|a| a.to_string())
                            .unwrap_or_default();
                        if !text.is_empty() && !info.addresses.contains(&text) {
                            info.addresses.push(text);
                        }
                    }
                });
                for reply in self.dials.remove(&peer_id).unwrap_or_default() {
                    let _ = reply.send(Ok(peer_id));
                }
                self.service
                    .auto_event(crate::sync::auto::Event::PeerConnected);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.connected.remove(&peer_id);
                self.remember(&peer_id, |info| {
                    info.connected = false;
                    info.last_seen_ms = Some(now_ms());
                });
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                for reply in self.dials.remove(&peer).unwrap_or_default() {
                    let _ = reply.send(Err(NetError::Request(format!("cannot connect: {error}"))));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let name = info
                    .agent_version
                    .split_once(" (")
                    .and_then(|(_, rest)| rest.strip_suffix(')'))
                    .map(str::to_owned);
                self.remember(&peer_id, |p| p.name = name);
                self.save_book();
                // What a peer says it listens on is how others find it.
                if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                    for address in info.listen_addrs {
                        kad.add_address(&peer_id, address);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetClosestPeers(result),
                step,
                ..
            })) => self.on_found(id, result, step.last),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            })) => {
                self.remember(&peer, |p| p.rtt_ms = Some(rtt.as_secs_f64() * 1e3));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event, answers),
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message, judged),
            _ => {}
        }
    }

    /// A lookup step came back: dial the sought peer as soon as some peer
    /// knows its addresses; give up when the query ends without them.
    fn on_found(
        &mut self,
        id: kad::QueryId,
        result: Result<kad::GetClosestPeersOk, kad::GetClosestPeersError>,
        last: bool,
    ) {
        let Some((sought, _)) = self.finds.get(&id) else {
            return;
        };
        let sought = *sought;
        let peers = match result {
            Ok(ok) => ok.peers,
            Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
        };
        let found: Vec<Multiaddr> = peers
            .into_iter()
            .filter(|p| p.peer_id == sought)
            .flat_map(|p| p.addrs)
            .collect();
        if found.is_empty() {
            if last && let Some((_, reply)) = self.finds.remove(&id) {
                let _ = reply.send(Err(NetError::Request(format!(
                    "no connected peer knows where {sought} listens"
                ))));
            }
            return;
        }
        let Some((_, reply)) = self.finds.remove(&id) else {
            return;
        };
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut()
            && let Some(mut query) = kad.query_mut(&id)
        {
            query.finish();
        }
        self.remember(&sought, |info| {
            for address in &found {
                let text = address.to_string();
                if !info.addresses.contains(&text) {
                    info.addresses.push(text);
                }
            }
            info.found_by = "via another peer".into();
        });
        self.save_book();
        if self.connected.contains_key(&sought) {
            let _ = reply.send(Ok(sought));
            return;
        }
        let options = libp2p::swarm::dial_opts::DialOpts::peer_id(sought)
            .addresses(found)
            .build();
        match self.swarm.dial(options) {
            Ok(()) => self.dials.entry(sought).or_default().push(reply),
            Err(e) => {
                let _ = reply.send(Err(NetError::Request(format!("cannot dial: {e}"))));
            }
        }
    }

    fn on_sync(
        &mut self,
        event: request_response::Event<Request, Response>,
        answers: &mpsc::UnboundedSender<(ResponseChannel<Response>, Response)>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.wire_log.request(&peer.to_string(), &request);
                    if !self.limiter.allow(&peer, std::time::Instant::now()) {
                        let busy = Response::Failed {
                            message: "too many requests: slow down".into(),
                        };
                        let _ = self.swarm.behaviour_mut().sync.send_response(channel, busy);
                        return;
                    }
                    let service = self.service.clone();
                    let answers = answers.clone();
                    let requester = peer_key(&peer);
                    tokio::spawn(async move {
                        let response = match requester {
                            Some(requester) => tokio::task::spawn_blocking(move || {
                                service.serve(&requester, request)
                            })
                            .await
                            .unwrap_or(Response::Failed {
                                message: "internal error".into(),
                            }),
                            None => Response::Denied,
                        };
                        let _ = answers.send((channel, response));
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.wire_log.response(&peer.to_string(), &response);
                    if let Some(reply) = self.pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(NetError::Request(format!("request failed: {error}"))));
                }
            }
            _ => {}
        }
    }
}

/// LAN discovery with mdns-sd: announces this node and reports others.
struct Mdns {
    daemon: mdns_sd::ServiceDaemon,
    local_peer: PeerId,
    announced: bool,
}

impl Mdns {
    fn start(
        local_peer: PeerId,
        found: mpsc::UnboundedSender<(PeerId, Vec<Multiaddr>)>,
    ) -> Option<Self> {
        let daemon = match mdns_sd::ServiceDaemon::new() {
            Ok(daemon) => daemon,
            Err(e) => {
                tracing::warn!(error = %e, "mDNS is unavailable; add peers by address with `tandem peer add`");
                return None;
            }
        };
        let receiver = daemon.browse(MDNS_SERVICE).ok()?;
        std::thread::spawn(move || {
            while let Ok(event) = receiver.recv() {
                if let mdns_sd::ServiceEvent::ServiceResolved(info) = event {
                    let Some(peer) = info
                        .get_property_val_str("peer")
                        .and_then(|p| p.parse::<PeerId>().ok())
                    else {
                        continue;
                    };
                    let port = info.get_port();
                    let addrs: Vec<Multiaddr> = info
                        .get_addresses_v4()
                        .into_iter()
                        .filter_map(|ip| format!("/ip4/{ip}/tcp/{port}/p2p/{peer}").parse().ok())
                        .collect();
                    if found.send((peer, addrs)).is_err() {
                        return;
                    }
                }
            }
        });
        Some(Self {
            daemon,
            local_peer,
            announced: false,
        })
    }

    /// Registers this node once its first TCP port is known. A wildcard or
    /// loopback listener is announced with every interface's addresses
    /// (peers on the LAN cannot reach our loopback).
    fn announce(&mut self, address: &Multiaddr) {
        if self.announced {
            return;
        }
        let Some(port) = address.iter().find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        }) else {
            return;
        };
        let ip = address.iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(ip),
            _ => None,
        });
        let peer = self.local_peer.to_base58();
        let host = format!("tandem-{}.local.", &peer[peer.len() - 12..]);
        let properties = [("peer", peer.as_str())];
        let info = match ip.filter(|ip| !ip.is_unspecified() && !ip.is_loopback()) {
            Some(ip) => mdns_sd::ServiceInfo::new(
                MDNS_SERVICE,
                &peer,
                &host,
                ip.to_string(),
                port,
                &properties[..],
            ),
            None => {
                mdns_sd::ServiceInfo::new(MDNS_SERVICE, &peer, &host, "", port, &properties[..])
                    .map(|i| i.enable_addr_auto())
            }
        };
        match info.and_then(|info| self.daemon.register(info)) {
            Ok(()) => self.announced = true,
            Err(e) => tracing::warn!(error = %e, "cannot announce this node on the LAN"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_everywhere_libp2p_peer_id_matches_the_identity() {
        let key = SecretKey::from_bytes([42; 32]);
        let libp2p_id = keypair(&key).expect("keypair").public().to_peer_id();
        assert_eq!(libp2p_id.to_base58(), key.public().to_peer_id());
        assert_eq!(peer_key(&libp2p_id), Some(key.public()));
    }

    fn info(id: &str, seen: i64, connected: bool) -> PeerInfo {
        PeerInfo {
            did: String::new(),
            peer_id: id.into(),
            name: None,
            addresses: vec![],
            found_by: "mdns".into(),
            connected,
            last_seen_ms: Some(seen),
            rtt_ms: None,
        }
    }

    #[test]
    fn a_peer_cannot_grow_the_book_without_end() {
        let mut one = info("a", 0, false);
        one.addresses = (0..1_000)
            .map(|i| format!("/ip4/10.0.0.1/tcp/{i}"))
            .collect();
        one.name = Some("x".repeat(100_000));
        bound_entry(&mut one);
        assert_eq!(one.addresses.len(), MAX_PEER_ADDRESSES);
        assert_eq!(
            one.addresses.last().map(String::as_str),
            Some("/ip4/10.0.0.1/tcp/999")
        );
        assert_eq!(one.name.as_deref().map(str::len), Some(MAX_PEER_NAME));

        let mut book = PeerBook::default();
        book.peers
            .insert("connected".into(), info("connected", 0, true));
        for i in 0..MAX_BOOK_PEERS + 50 {
            let id = format!("junk-{i:05}");
            book.peers
                .insert(id.clone(), info(&id, 1 + i as i64, false));
        }
        bound_book(&mut book, "junk-00000");
        assert_eq!(book.peers.len(), MAX_BOOK_PEERS);
        assert!(
            book.peers.contains_key("connected"),
            "a connected peer is dropped last"
        );
        assert!(
            book.peers.contains_key("junk-00000"),
            "the peer being updated stays"
        );
        assert!(
            !book.peers.contains_key("junk-00001"),
            "the oldest goes first"
        );
    }
}
