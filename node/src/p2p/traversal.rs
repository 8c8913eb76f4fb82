//! Reaching peers across NATs: the link to a hub (a relay slot kept while
//! this node may be unreachable), what AutoNAT says about this node, and how
//! each open connection was made.
//!
//! A node with a hub reserves its slot at once rather than after AutoNAT
//! has decided: AutoNAT needs several dial-backs (seconds at best), and a
//! peer looking this node up by key in the meantime would find no way in.
//! Once AutoNAT says the node is public, the slot is given back; if it
//! turns private again, the slot is taken again. A hub that is down only
//! means the slot is retried now and then; nothing waits on it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, Swarm, autonat};
use tandem_protocol::api::{ConnectionKind, HubLinkStatus, Reachability};

use super::behaviour::Behaviour;
use super::handle::NetError;

/// How long to wait before trying a hub again after the slot was lost.
const RETRY: Duration = Duration::from_secs(10);

/// The hub this node uses and the state of its slot there.
struct HubLink {
    /// The hub's address, ending in `/p2p/<hub>`.
    address: Multiaddr,
    peer: PeerId,
    listener: Option<ListenerId>,
    reserved: bool,
    tried: Option<Instant>,
    /// The hub's relay for blob endpoints, once it told us.
    blob_relay: Option<String>,
}

/// What the driver knows about getting through NATs.
pub struct Traversal {
    hub: Option<HubLink>,
    reachability: Reachability,
    connections: HashMap<ConnectionId, (PeerId, ConnectionKind)>,
    /// The remote address of each open direct connection.
    remotes: HashMap<ConnectionId, Multiaddr>,
}

impl Default for Traversal {
    fn default() -> Self {
        Self {
            hub: None,
            reachability: Reachability::Unknown,
            connections: HashMap::new(),
            remotes: HashMap::new(),
        }
    }
}

/// The peer a multiaddr names last (`…/p2p/<peer>`).
pub fn last_peer(address: &Multiaddr) -> Option<PeerId> {
    address.iter().fold(None, |found, p| match p {
        Protocol::P2p(id) => Some(id),
        _ => found,
    })
}

/// Whether the address goes through a relay.
pub fn is_relayed(address: &Multiaddr) -> bool {
    address.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// A listen address with its IP replaced by the public one a hub was
/// told it is reached at; addresses without an IP are kept as they are.
pub fn with_ip(address: &Multiaddr, ip: IpAddr) -> Multiaddr {
    address
        .iter()
        .map(|p| match (p, ip) {
            (Protocol::Ip4(_) | Protocol::Ip6(_), IpAddr::V4(v4)) => Protocol::Ip4(v4),
            (Protocol::Ip4(_) | Protocol::Ip6(_), IpAddr::V6(v6)) => Protocol::Ip6(v6),
            (other, _) => other,
        })
        .collect()
}

impl Traversal {
    /// Uses `address` (ending in `/p2p/<hub>`) as this node's hub from now
    /// on: dials it and asks for a slot.
    pub fn set_hub(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        address: Multiaddr,
    ) -> Result<(), NetError> {
        let Some(peer) = last_peer(&address) else {
            return Err(NetError::BadAddress(address.to_string()));
        };
        if let Some(old) = self.hub.take()
            && let Some(listener) = old.listener
        {
            swarm.remove_listener(listener);
        }
        // The hub answers AutoNAT dial-backs for us even when it sits on a
        // private address (a campus hub), which AutoNAT would otherwise
        // not ask.
        let dial_back = address
            .iter()
            .take_while(|p| !matches!(p, Protocol::P2p(_)))
            .collect();
        swarm
            .behaviour_mut()
            .autonat
            .add_server(peer, Some(dial_back));
        self.hub = Some(HubLink {
            address,
            peer,
            listener: None,
            reserved: false,
            tried: None,
            blob_relay: None,
        });
        self.reserve(swarm)
    }

    /// Asks the hub for a slot, unless one is held or asked for, or this
    /// node is known to be public.
    fn reserve(&mut self, swarm: &mut Swarm<Behaviour>) -> Result<(), NetError> {
        let public = self.reachability == Reachability::Public;
        let Some(hub) = &mut self.hub else {
            return Ok(());
        };
        if hub.listener.is_some() {
            return Ok(());
        }
        if public {
            // No slot needed, but the hub still finds peers for us.
            if !swarm.is_connected(&hub.peer) {
                swarm
                    .dial(hub.address.clone())
                    .map_err(|e| NetError::Request(format!("cannot dial the hub: {e}")))?;
            }
            return Ok(());
        }
        hub.tried = Some(Instant::now());
        // Listening through the hub dials it if need be; a dial of our own
        // in flight would make the relay client drop its own dial, and the
        // slot with it.
        let circuit = hub.address.clone().with(Protocol::P2pCircuit);
        let listener = swarm
            .listen_on(circuit)
            .map_err(|e| NetError::Request(format!("cannot listen through the hub: {e}")))?;
        hub.listener = Some(listener);
        Ok(())
    }

    /// Called now and then: takes the slot again if it was lost.
    pub fn tick(&mut self, swarm: &mut Swarm<Behaviour>) {
        let due = self
            .hub
            .as_ref()
            .is_some_and(|h| h.listener.is_none() && h.tried.is_none_or(|t| t.elapsed() >= RETRY));
        if due && let Err(e) = self.reserve(swarm) {
            tracing::info!(error = %e, "the hub cannot be reached now; will retry");
        }
    }

    /// The hub granted (or renewed) our slot.
    pub fn on_reserved(&mut self, relay: &PeerId) {
        if let Some(hub) = &mut self.hub
            && hub.peer == *relay
        {
            if !hub.reserved {
                tracing::info!(hub = %relay, "the hub keeps a relay slot for this node");
            }
            hub.reserved = true;
        }
    }

    /// A listener closed: if it was the hub's, the slot is gone.
    pub fn on_listener_closed(&mut self, listener: ListenerId) {
        if let Some(hub) = &mut self.hub
            && hub.listener == Some(listener)
        {
            tracing::info!(hub = %hub.peer, "lost the relay slot on the hub; will retry");
            hub.listener = None;
            hub.reserved = false;
        }
    }

    /// AutoNAT changed its mind about this node.
    pub fn on_nat_status(&mut self, swarm: &mut Swarm<Behaviour>, status: &autonat::NatStatus) {
        self.reachability = match status {
            autonat::NatStatus::Public(_) => Reachability::Public,
            autonat::NatStatus::Private => Reachability::Private,
            autonat::NatStatus::Unknown => Reachability::Unknown,
        };
        tracing::info!(reachability = ?self.reachability, "AutoNAT");
        if self.reachability == Reachability::Public {
            // Peers can dial us: give the slot back for those who need it.
            if let Some(hub) = &mut self.hub
                && let Some(listener) = hub.listener.take()
            {
                swarm.remove_listener(listener);
                hub.reserved = false;
            }
        } else {
            self.tick(swarm);
        }
    }

    /// The hub told us where its relay for blob endpoints is.
    pub fn set_blob_relay(&mut self, url: String) {
        if let Some(hub) = &mut self.hub {
            hub.blob_relay = Some(url);
        }
    }

    /// The hub's peer id, if a hub is set.
    pub fn hub_peer(&self) -> Option<PeerId> {
        self.hub.as_ref().map(|h| h.peer)
    }

    /// The address that reaches `peer` through the hub, if a hub is set.
    pub fn circuit_to(&self, peer: PeerId) -> Option<Multiaddr> {
        let hub = self.hub.as_ref()?;
        if hub.peer == peer {
            return None;
        }
        Some(
            hub.address
                .clone()
                .with(Protocol::P2pCircuit)
                .with(Protocol::P2p(peer)),
        )
    }

    /// A connection opened: relayed if its address goes through a relay.
    pub fn on_established(&mut self, id: ConnectionId, peer: PeerId, endpoint: &ConnectedPoint) {
        let relayed = match endpoint {
            ConnectedPoint::Dialer { address, .. } => is_relayed(address),
            ConnectedPoint::Listener {
                local_addr,
                send_back_addr,
            } => is_relayed(local_addr) || is_relayed(send_back_addr),
        };
        let kind = if relayed {
            ConnectionKind::Relayed
        } else {
            self.remotes
                .insert(id, endpoint.get_remote_address().clone());
            ConnectionKind::Direct
        };
        self.connections.insert(id, (peer, kind));
    }

    pub fn on_closed(&mut self, id: ConnectionId) {
        self.connections.remove(&id);
        self.remotes.remove(&id);
    }

    /// Where the open direct connections to `peer` come from.
    pub fn remote_addresses(&self, peer: &PeerId) -> Vec<String> {
        let mut addresses: Vec<String> = self
            .connections
            .iter()
            .filter(|(_, (p, _))| p == peer)
            .filter_map(|(id, _)| self.remotes.get(id))
            .map(|a| a.to_string())
            .collect();
        addresses.sort();
        addresses.dedup();
        addresses
    }

    /// DCUtR made a direct connection out of a relayed one: mark it, and
    /// close the relayed ones, so requests take the direct path (libp2p
    /// sends on any open connection) and the hub's circuit is freed.
    pub fn on_hole_punched(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        id: ConnectionId,
    ) {
        tracing::info!(%peer, "hole punched: a direct connection replaces the relayed one");
        if let Some(entry) = self.connections.get_mut(&id) {
            entry.1 = ConnectionKind::HolePunched;
        }
        self.close_relayed(swarm, peer);
    }

    /// Whether every connection to `peer` goes through a relay.
    pub fn only_relayed(&self, peer: &PeerId) -> bool {
        self.kind_of(peer) == Some(ConnectionKind::Relayed)
    }

    /// Closes the relayed connections to `peer` once a direct one is open.
    pub fn close_relayed(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        if self.kind_of(&peer) == Some(ConnectionKind::Relayed) {
            return;
        }
        let relayed: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, (p, kind))| *p == peer && *kind == ConnectionKind::Relayed)
            .map(|(id, _)| *id)
            .collect();
        for id in relayed {
            swarm.close_connection(id);
        }
    }

    /// The best way this node is connected to `peer` now.
    pub fn kind_of(&self, peer: &PeerId) -> Option<ConnectionKind> {
        self.connections
            .values()
            .filter(|(p, _)| p == peer)
            .map(|(_, kind)| *kind)
            .max()
    }

    pub fn reachability(&self) -> Reachability {
        self.reachability
    }

    pub fn hub_status(&self, swarm: &Swarm<Behaviour>) -> Option<HubLinkStatus> {
        let hub = self.hub.as_ref()?;
        Some(HubLinkStatus {
            address: hub.address.to_string(),
            connected: swarm.is_connected(&hub.peer),
            reserved: hub.reserved,
            blob_relay: hub.blob_relay.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().expect("multiaddr")
    }

    const HUB: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    const ADA: &str = "12D3KooWHzcZ8rt5bZLr5RLQTrHEwNJBh4tRfdqzUPsxHN6ZNhsb";

    #[test]
    fn relayed_addresses_are_told_apart_from_direct_ones() {
        assert!(is_relayed(&addr(&format!(
            "/ip4/198.51.100.1/tcp/4001/p2p/{HUB}/p2p-circuit/p2p/{ADA}"
        ))));
        assert!(!is_relayed(&addr(&format!(
            "/ip4/198.51.100.1/tcp/4001/p2p/{HUB}"
        ))));
    }

    #[test]
    fn the_last_peer_of_a_circuit_address_is_the_far_end() {
        let circuit = addr(&format!(
            "/ip4/198.51.100.1/tcp/4001/p2p/{HUB}/p2p-circuit/p2p/{ADA}"
        ));
        assert_eq!(last_peer(&circuit).map(|p| p.to_string()), Some(ADA.into()));
        assert_eq!(last_peer(&addr("/ip4/1.2.3.4/tcp/1")), None);
    }

    #[test]
    fn a_hub_announces_its_public_address_in_place_of_the_bound_one() {
        let public: IpAddr = "203.0.113.9".parse().expect("ip");
        assert_eq!(
            with_ip(&addr("/ip4/0.0.0.0/udp/4001/quic-v1"), public),
            addr("/ip4/203.0.113.9/udp/4001/quic-v1")
        );
        assert_eq!(
            with_ip(&addr("/ip4/10.0.0.5/tcp/4001"), public),
            addr("/ip4/203.0.113.9/tcp/4001")
        );
    }

    #[test]
    fn the_best_connection_wins_and_closed_ones_are_forgotten() {
        let mut t = Traversal::default();
        let peer: PeerId = ADA.parse().expect("peer id");
        let relayed = ConnectedPoint::Dialer {
            address: addr(&format!(
                "/ip4/198.51.100.1/tcp/4001/p2p/{HUB}/p2p-circuit/p2p/{ADA}"
            )),
            role_override: libp2p::core::Endpoint::Dialer,
            port_use: libp2p::core::transport::PortUse::Reuse,
        };
        let direct = ConnectedPoint::Dialer {
            address: addr("/ip4/203.0.113.4/udp/4001/quic-v1"),
            role_override: libp2p::core::Endpoint::Dialer,
            port_use: libp2p::core::transport::PortUse::Reuse,
        };
        let (one, two) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        t.on_established(one, peer, &relayed);
        assert_eq!(t.kind_of(&peer), Some(ConnectionKind::Relayed));
        t.on_established(two, peer, &direct);
        assert_eq!(t.kind_of(&peer), Some(ConnectionKind::Direct));
        t.on_closed(two);
        assert_eq!(t.kind_of(&peer), Some(ConnectionKind::Relayed));
        t.on_closed(one);
        assert_eq!(t.kind_of(&peer), None);
    }
}
