//! An in-memory network: it answers the commands of each member's
//! [`NetHandle`] by calling the other members' [`Host`]s directly, the way
//! the swarm's driver would after a round trip over libp2p. Requests reach
//! only linked members; gossip reaches linked members subscribed to the
//! topic and is relayed onwards only when accepted, as gossipsub does.
//! Everything delivered is recorded, so a story can check what crossed
//! the wire.
//!
//! Each delivery is awaited to its end before the sender hears back (a
//! published announcement has been judged by everyone it reached when
//! `publish` returns), which keeps stories deterministic.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use tandem_protocol::PeerKey;
use tandem_protocol::wire::{Request, Response};
use tokio::sync::mpsc;

use crate::p2p::handle::{Command, NetError, NetHandle, PeerInfo, peer_id, peer_key};
use crate::p2p::host::{Gossip, Host, Verdict};

/// One request and its answer, as delivered.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub from: PeerKey,
    pub to: PeerKey,
    pub request: Request,
    pub response: Response,
}

/// One announcement heard by one member, and its verdict.
#[derive(Debug, Clone)]
pub struct Heard {
    pub to: PeerKey,
    /// The member it came through (the publisher, or one who relayed it).
    pub via: PeerKey,
    /// The member that published it.
    pub source: PeerKey,
    pub topic: String,
    pub verdict: Verdict,
}

struct Member {
    name: String,
    host: Arc<dyn Host>,
    topics: BTreeSet<String>,
}

#[derive(Default)]
struct State {
    members: HashMap<PeerKey, Member>,
    /// Pairs connected to each other, smaller key first.
    links: BTreeSet<(PeerKey, PeerKey)>,
    exchanges: Vec<Exchange>,
    heard: Vec<Heard>,
}

impl State {
    fn linked(&self, a: &PeerKey, b: &PeerKey) -> bool {
        self.links.contains(&pair(a, b))
    }

    fn neighbours(&self, of: &PeerKey) -> Vec<PeerKey> {
        self.members
            .keys()
            .filter(|other| *other != of && self.linked(of, other))
            .copied()
            .collect()
    }
}

fn pair(a: &PeerKey, b: &PeerKey) -> (PeerKey, PeerKey) {
    if a <= b { (*a, *b) } else { (*b, *a) }
}

/// The network; clones share it.
#[derive(Clone, Default)]
pub struct Network {
    state: Arc<Mutex<State>>,
}

impl Network {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a member answering with `host`; returns its handle on the
    /// network. Must be called inside a tokio runtime.
    pub fn join(&self, key: PeerKey, name: &str, host: Arc<dyn Host>) -> NetHandle {
        self.state().members.insert(
            key,
            Member {
                name: name.to_owned(),
                host,
                topics: BTreeSet::new(),
            },
        );
        let (tx, mut rx) = mpsc::channel(64);
        let network = self.clone();
        tokio::spawn(async move {
            while let Some(command) = rx.recv().await {
                network.answer(key, command).await;
            }
        });
        NetHandle::new(tx)
    }

    /// Connects two members; each host hears of the other.
    pub fn connect(&self, a: &PeerKey, b: &PeerKey) {
        let hosts = {
            let mut state = self.state();
            state.links.insert(pair(a, b));
            (host_of(&state, a), host_of(&state, b))
        };
        if let (Some(host_a), Some(host_b)) = hosts {
            host_a.connected(b);
            host_b.connected(a);
        }
    }

    /// Disconnects two members; each host hears of it.
    pub fn disconnect(&self, a: &PeerKey, b: &PeerKey) {
        let hosts = {
            let mut state = self.state();
            state.links.remove(&pair(a, b));
            (host_of(&state, a), host_of(&state, b))
        };
        if let (Some(host_a), Some(host_b)) = hosts {
            host_a.disconnected(b);
            host_b.disconnected(a);
        }
    }

    /// Every request delivered so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state().exchanges.clone()
    }

    /// Every announcement heard so far, in order.
    pub fn heard(&self) -> Vec<Heard> {
        self.state().heard.clone()
    }

    /// The gossip topics `member` is subscribed to.
    pub fn topics(&self, member: &PeerKey) -> BTreeSet<String> {
        self.state()
            .members
            .get(member)
            .map(|m| m.topics.clone())
            .unwrap_or_default()
    }

    async fn answer(&self, me: PeerKey, command: Command) {
        match command {
            Command::Request(peer, request, reply) => {
                let _ = reply.send(self.request(me, peer, request).await);
            }
            Command::Peers(reply) => {
                let state = self.state();
                let peers = state
                    .neighbours(&me)
                    .into_iter()
                    .map(|key| PeerInfo {
                        did: key.to_did(),
                        peer_id: key.to_peer_id(),
                        name: state.members.get(&key).map(|m| m.name.clone()),
                        addresses: vec![],
                        found_by: "memory".into(),
                        connected: true,
                        last_seen_ms: None,
                        rtt_ms: None,
                        connection: None,
                        remote_addresses: vec![],
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Topics(topics) => {
                if let Some(member) = self.state().members.get_mut(&me) {
                    member.topics = topics.into_iter().collect();
                }
            }
            Command::Publish(topic, data, reply) => {
                let _ = reply.send(Ok(self.publish(me, topic, data).await));
            }
            Command::Addresses(reply) => {
                let _ = reply.send(vec![]);
            }
            Command::Dial(_, reply) | Command::Find(_, reply) => {
                let _ = reply.send(Err(no_addresses()));
            }
            Command::Relay(_, reply) => {
                let _ = reply.send(Err(no_addresses()));
            }
            Command::HubRelay(_) => {}
            Command::Network(reply) => {
                let _ = reply.send(crate::p2p::handle::NetworkStatus {
                    reachability: tandem_protocol::api::Reachability::Unknown,
                    hub: None,
                });
            }
        }
    }

    async fn request(
        &self,
        me: PeerKey,
        to: PeerId,
        request: Request,
    ) -> Result<Response, NetError> {
        let host = {
            let state = self.state();
            peer_key(&to)
                .filter(|key| state.linked(&me, key))
                .and_then(|key| Some((key, host_of(&state, &key)?)))
        };
        let Some((to, host)) = host else {
            return Err(NetError::Request(format!("not connected to {to}")));
        };
        let asked = request.clone();
        let response = tokio::task::spawn_blocking(move || host.serve(&me, asked))
            .await
            .unwrap_or(Response::Failed {
                message: "internal error".into(),
            });
        self.state().exchanges.push(Exchange {
            from: me,
            to,
            request,
            response: response.clone(),
        });
        Ok(response)
    }

    /// Delivers an announcement through the mesh: to each linked member on
    /// the topic, and from each that accepts it to its own neighbours on
    /// the topic, each member judging it once. Answers with the publisher's
    /// neighbours on the topic, as gossipsub does.
    async fn publish(&self, source: PeerKey, topic: String, data: Vec<u8>) -> Vec<PeerId> {
        let subscribed = |state: &State, of: &PeerKey| -> Vec<PeerKey> {
            state
                .neighbours(of)
                .into_iter()
                .filter(|key| {
                    state
                        .members
                        .get(key)
                        .is_some_and(|m| m.topics.contains(&topic))
                })
                .collect()
        };
        let reached = subscribed(&self.state(), &source);
        let mut seen: HashSet<PeerKey> = HashSet::from([source]);
        let mut queue: VecDeque<(PeerKey, PeerKey)> =
            reached.iter().map(|to| (source, *to)).collect();
        while let Some((via, to)) = queue.pop_front() {
            if !seen.insert(to) {
                continue;
            }
            let Some(host) = host_of(&self.state(), &to) else {
                continue;
            };
            let gossip = Gossip {
                source: Some(source),
                topic: topic.clone(),
                data: data.clone(),
            };
            let verdict = tokio::task::spawn_blocking(move || host.judge(&gossip))
                .await
                .unwrap_or(Verdict::Ignore);
            let mut state = self.state();
            state.heard.push(Heard {
                to,
                via,
                source,
                topic: topic.clone(),
                verdict,
            });
            if verdict == Verdict::Accept {
                for next in subscribed(&state, &to) {
                    queue.push_back((to, next));
                }
            }
        }
        reached.iter().filter_map(|key| peer_id(key).ok()).collect()
    }
}

fn host_of(state: &State, key: &PeerKey) -> Option<Arc<dyn Host>> {
    state.members.get(key).map(|m| m.host.clone())
}

fn no_addresses() -> NetError {
    NetError::Request("the in-memory network dials no addresses".into())
}
