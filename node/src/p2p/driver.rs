//! The swarm's task: one loop that owns the swarm, turns the node's
//! [`Command`]s into swarm calls, and turns swarm events into answers,
//! peer-book updates and questions for the [`Host`].
//!
//! Nothing the host decides runs on this task: requests and announcements
//! are handed to it on blocking threads, and their answers come back
//! through channels, so a slow disk never stalls the network.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{
    Multiaddr, PeerId, Swarm, autonat, dcutr, gossipsub, identify, kad, multiaddr::Protocol, ping,
    relay,
};
use tandem_protocol::SecretKey;
use tandem_protocol::wire::{Request, Response};
use tokio::sync::{mpsc, oneshot};

use super::behaviour::{self, Behaviour, BehaviourEvent, Role};
use super::handle::{Command, NetError, NetHandle, peer_key};
use super::host::{Gossip, Host, Verdict};
use super::mdns::Mdns;
use super::peer_book::PeerBook;
use super::ratelimit::{self, RateLimiter};
use super::traversal::{self, Traversal};
use super::wirelog::WireLog;

/// Most announcements judged at once.
const MAX_JUDGING: usize = 32;

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
    /// The name this node's user goes by, told to peers (identify).
    pub name: String,
    /// Where the peer book is kept (`peers.json` in the home).
    pub peer_book: PathBuf,
    /// A peer, or a hub serving others (relay server, AutoNAT for all).
    pub role: Role,
    /// A hub's public IP, announced in place of the bound one.
    pub external: Option<std::net::IpAddr>,
}

/// Starts the swarm (and mDNS) with this node's key, asking `host` what
/// to answer; returns the handle.
pub fn start(
    host: Arc<dyn Host>,
    key: &SecretKey,
    options: NetOptions,
) -> Result<NetHandle, NetError> {
    let keys = behaviour::keypair(key)?;
    let local_peer = keys.public().to_peer_id();
    let agent = format!("tandem/{} ({})", env!("CARGO_PKG_VERSION"), options.name);
    let mut swarm = behaviour::build(keys, agent, options.dht, options.role)?;
    for addr in &options.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Setup(format!("cannot listen on {addr}: {e}")))?;
    }
    let (commands, rx) = mpsc::channel(64);
    let handle = NetHandle::new(commands);
    let book = PeerBook::load(options.peer_book);
    // Redial remembered peers in the background.
    for info in book.peers() {
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
        host,
        local_peer,
        book,
        pending: HashMap::new(),
        dials: HashMap::new(),
        mdns,
        connected: HashMap::new(),
        finds: HashMap::new(),
        via_hub: HashMap::new(),
        limiter: RateLimiter::new(ratelimit::BURST, ratelimit::PER_SECOND),
        wire_log: WireLog::from_env(),
        topics: BTreeSet::new(),
        judging: Arc::new(AtomicUsize::new(0)),
        traversal: Traversal::default(),
        role: options.role,
        external: options.external,
    };
    tokio::spawn(driver.run(rx, mdns_rx));
    Ok(handle)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

struct Driver {
    swarm: Swarm<Behaviour>,
    host: Arc<dyn Host>,
    local_peer: PeerId,
    book: PeerBook,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<Response, NetError>>>,
    dials: HashMap<PeerId, Vec<oneshot::Sender<Result<PeerId, NetError>>>>,
    mdns: Option<Mdns>,
    connected: HashMap<PeerId, usize>,
    /// Peers sought through the hub, and who waits for each.
    via_hub: HashMap<PeerId, Vec<oneshot::Sender<Result<PeerId, NetError>>>>,
    /// Lookups in flight: the peer sought and who waits for it.
    finds: HashMap<kad::QueryId, (PeerId, oneshot::Sender<Result<PeerId, NetError>>)>,
    limiter: RateLimiter<PeerId>,
    wire_log: WireLog,
    /// The gossip topics subscribed to.
    topics: BTreeSet<String>,
    /// Announcements being judged right now.
    judging: Arc<AtomicUsize>,
    traversal: Traversal,
    role: Role,
    external: Option<std::net::IpAddr>,
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
        let (refused_tx, mut refused) = mpsc::unbounded_channel::<PeerId>();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                Some(peer) = refused.recv() => {
                    tracing::info!(%peer, "refused a relay slot: not a member of a project this hub keeps, nor allowed");
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                _ = tick.tick() => self.traversal.tick(&mut self.swarm),
                event = self.swarm.select_next_some() => match event {
                    SwarmEvent::Behaviour(BehaviourEvent::RelayServer(event)) => {
                        self.on_relay_server(event, &refused_tx);
                    }
                    event => self.on_event(event, &answers_tx, &judged_tx),
                },
            }
        }
    }

    fn on_discovered(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, how: &str) {
        if peer == self.local_peer {
            return;
        }
        let texts: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        let how = how.to_owned();
        self.book.remember(&peer, |info| {
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
                self.book.remember(&peer, |info| {
                    if !info.addresses.contains(&text) {
                        info.addresses.push(text);
                    }
                    info.found_by = "manual".into();
                });
                self.book.save();
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
                } else if let Some(circuit) = self
                    .traversal
                    .circuit_to(peer)
                    .filter(|_| self.hub_connected())
                {
                    // Through the hub first (only while connected to it: a
                    // hub that is down must not delay a lookup): one round trip to it tells
                    // whether the peer keeps a slot there (then DCUtR
                    // tries a direct path), where a DHT lookup would dial
                    // every address anyone ever saw for it, most of them
                    // private or gone, each costing a timeout.
                    if self.via_hub.contains_key(&peer) {
                        self.via_hub.entry(peer).or_default().push(reply);
                    } else {
                        match self.swarm.dial(circuit) {
                            Ok(()) => self.via_hub.entry(peer).or_default().push(reply),
                            Err(_) => self.find_in_dht(peer, reply),
                        }
                    }
                } else {
                    self.find_in_dht(peer, reply);
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
                let peers = self
                    .book
                    .peers()
                    .cloned()
                    .map(|mut info| {
                        if let Ok(id) = info.peer_id.parse::<PeerId>() {
                            info.connection = self.traversal.kind_of(&id);
                            info.remote_addresses = self.traversal.remote_addresses(&id);
                        }
                        info
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Network(reply) => {
                let _ = reply.send(super::handle::NetworkStatus {
                    reachability: self.traversal.reachability(),
                    hub: self.traversal.hub_status(&self.swarm),
                });
            }
            Command::HubRelay(url) => self.traversal.set_blob_relay(url),
            Command::Topics(topics) => self.set_topics(topics),
            Command::Relay(addr, reply) => {
                let _ = reply.send(self.traversal.set_hub(&mut self.swarm, addr));
            }
            Command::Publish(topic, data, reply) => {
                let _ = reply.send(self.publish(topic, data));
            }
            Command::Addresses(reply) => {
                let mut addrs: Vec<String> = self
                    .swarm
                    .listeners()
                    .chain(self.swarm.external_addresses())
                    .map(|a| match traversal::last_peer(a) {
                        Some(peer) if peer == self.local_peer => a.to_string(),
                        _ => format!("{a}/p2p/{}", self.local_peer),
                    })
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

    /// An announcement arrived: the host judges it off the swarm's task
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
        let host = self.host.clone();
        let judged = judged.clone();
        tokio::spawn(async move {
            let verdict = tokio::task::spawn_blocking(move || host.judge(&gossip))
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
                self.announce_as_hub(&address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Err(e) = &reason {
                    tracing::info!(error = %e, "a listener closed");
                }
                self.traversal.on_listener_closed(listener_id);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                self.traversal
                    .on_established(connection_id, peer_id, &endpoint);
                // A direct connection makes relayed ones redundant.
                self.traversal.close_relayed(&mut self.swarm, peer_id);
                *self.connected.entry(peer_id).or_default() += 1;
                let addr = endpoint.get_remote_address().clone();
                let dialed = endpoint.is_dialer();
                self.book.remember(&peer_id, |info| {
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
                for reply in self.via_hub.remove(&peer_id).unwrap_or_default() {
                    let _ = reply.send(Ok(peer_id));
                }
                if let Some(key) = peer_key(&peer_id) {
                    self.host.connected(&key);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                connection_id,
                ..
            } => {
                self.traversal.on_closed(connection_id);
                if num_established > 0 {
                    self.connected.insert(peer_id, num_established as usize);
                    return;
                }
                self.connected.remove(&peer_id);
                self.book.remember(&peer_id, |info| {
                    info.connected = false;
                    info.last_seen_ms = Some(now_ms());
                });
                if let Some(key) = peer_key(&peer_id) {
                    self.host.disconnected(&key);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                for reply in self.dials.remove(&peer).unwrap_or_default() {
                    let _ = reply.send(Err(NetError::Request(format!("cannot connect: {error}"))));
                }
                // The hub holds no slot for it: ask the DHT.
                for reply in self.via_hub.remove(&peer).unwrap_or_default() {
                    self.find_in_dht(peer, reply);
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
                self.book.remember(&peer_id, |p| p.name = name);
                self.book.save();
                // What a peer says it listens on is how others find it;
                // its loopback addresses only help peers on the same
                // machine (seen on loopback ourselves), and would cost
                // everyone else a failed dial.
                let on_loopback = is_loopback(&info.observed_addr);
                // Met only through a relay: try its own addresses directly
                // as well. When one side is public this connects at once,
                // where DCUtR's simultaneous dial through a NAT on one side
                // only may not; behind two NATs it fails quietly and DCUtR
                // goes on.
                if self.traversal.only_relayed(&peer_id) {
                    let direct: Vec<Multiaddr> = info
                        .listen_addrs
                        .iter()
                        .filter(|a| !traversal::is_relayed(a) && (on_loopback || !is_loopback(a)))
                        .cloned()
                        .collect();
                    if !direct.is_empty() {
                        let options = libp2p::swarm::dial_opts::DialOpts::peer_id(peer_id)
                            .condition(libp2p::swarm::dial_opts::PeerCondition::Always)
                            .addresses(direct)
                            .build();
                        let _ = self.swarm.dial(options);
                    }
                }
                if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                    for address in info.listen_addrs {
                        if on_loopback || !is_loopback(&address) {
                            kad.add_address(&peer_id, address);
                        }
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
                self.book
                    .remember(&peer, |p| p.rtt_ms = Some(rtt.as_secs_f64() * 1e3));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event, answers),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            })) => match result {
                Ok(connection) => {
                    self.traversal
                        .on_hole_punched(&mut self.swarm, remote_peer_id, connection);
                }
                Err(e) => {
                    tracing::info!(peer = %remote_peer_id, error = %e, "hole punching failed: staying relayed");
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Relay(
                relay::client::Event::ReservationReqAccepted { relay_peer_id, .. },
            )) => self.traversal.on_reserved(&relay_peer_id),
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(autonat::Event::StatusChanged {
                new,
                ..
            })) => self.traversal.on_nat_status(&mut self.swarm, &new),
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
                    "no connected peer knows where {sought} listens{}",
                    if self.traversal.hub_peer().is_some() {
                        ", and the hub keeps no slot for it (is it online, and does it use this hub?)"
                    } else {
                        ""
                    }
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
        self.book.remember(&sought, |info| {
            for address in &found {
                let text = address.to_string();
                if !info.addresses.contains(&text) {
                    info.addresses.push(text);
                }
            }
            info.found_by = "via another peer".into();
        });
        self.book.save();
        self.dial_found(sought, found, reply);
    }

    fn hub_connected(&self) -> bool {
        self.traversal
            .hub_peer()
            .is_some_and(|hub| self.swarm.is_connected(&hub))
    }

    /// Looks `peer` up through the DHT (the hub could not reach it, or
    /// there is none).
    fn find_in_dht(&mut self, peer: PeerId, reply: oneshot::Sender<Result<PeerId, NetError>>) {
        if self.connected.is_empty() {
            let _ = reply.send(Err(NetError::Request(
                "not connected to any peer to ask: add one by address first".into(),
            )));
        } else if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            let query = kad.get_closest_peers(peer);
            self.finds.insert(query, (peer, reply));
        } else {
            let _ = reply.send(Err(NetError::Request(
                "this node runs without the DHT (--no-dht), and no hub reaches the peer: add it by address".into(),
            )));
        }
    }

    /// Dials a sought peer at every address found for it at once; the
    /// first connection answers.
    fn dial_found(
        &mut self,
        sought: PeerId,
        found: Vec<Multiaddr>,
        reply: oneshot::Sender<Result<PeerId, NetError>>,
    ) {
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

    /// A hub tells peers where it is reached: its public address when it
    /// was given one, else every address it listens on (a hub on a LAN).
    /// The relay server needs these to hand out in reservations.
    fn announce_as_hub(&mut self, address: &Multiaddr) {
        if self.role != Role::Hub || address.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
            return;
        }
        let public = match self.external {
            Some(ip) => traversal::with_ip(address, ip),
            None => address.clone(),
        };
        self.swarm.add_external_address(public);
    }

    /// Hub: slots only for those the host allows; circuits are noted so
    /// the blob relay admits both ends.
    fn on_relay_server(&mut self, event: relay::Event, refused: &mpsc::UnboundedSender<PeerId>) {
        match event {
            relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                let host = self.host.clone();
                let refused = refused.clone();
                tokio::spawn(async move {
                    let allowed = match peer_key(&src_peer_id) {
                        Some(key) => tokio::task::spawn_blocking(move || host.may_use_hub(&key))
                            .await
                            .unwrap_or(false),
                        None => false,
                    };
                    if !allowed {
                        let _ = refused.send(src_peer_id);
                    }
                });
            }
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => self.note_circuit(&src_peer_id, &dst_peer_id, true),
            relay::Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                ..
            } => self.note_circuit(&src_peer_id, &dst_peer_id, false),
            _ => {}
        }
    }

    fn note_circuit(&self, src: &PeerId, dst: &PeerId, open: bool) {
        if let (Some(src), Some(dst)) = (peer_key(src), peer_key(dst)) {
            self.host.circuit(&src, &dst, open);
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
                    let host = self.host.clone();
                    let answers = answers.clone();
                    let requester = peer_key(&peer);
                    tokio::spawn(async move {
                        let response = match requester {
                            Some(requester) => {
                                tokio::task::spawn_blocking(move || host.serve(&requester, request))
                                    .await
                                    .unwrap_or(Response::Failed {
                                        message: "internal error".into(),
                                    })
                            }
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

/// Whether an address is on the loopback interface.
fn is_loopback(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}
