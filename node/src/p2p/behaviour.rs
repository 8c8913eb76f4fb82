//! The swarm and what it speaks: TCP + noise + yamux and QUIC, identify,
//! ping, request-response for sync, gossipsub for signed announcements,
//! Kademlia, and a relay client, DCUtR and AutoNAT for peers behind NAT.
//! A hub also runs the relay server, and answers AutoNAT dial-backs for
//! peers on any address (see [`Role`]).

use std::time::Duration;

use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, autonat, dcutr, gossipsub, identify, identity, kad, noise, ping, relay,
    tcp, yamux,
};
use tandem_protocol::SecretKey;
use tandem_protocol::wire::{MAX_REQUEST, MAX_RESPONSE, PROTOCOL, Request, Response};

use super::handle::NetError;

/// The Kademlia protocol name: Tandem's own DHT, apart from any other.
const KAD_PROTOCOL: &str = "/tandem/kad/1.0.0";
/// The gossipsub protocol prefix: Tandem's own mesh, apart from any other.
const GOSSIP_PROTOCOL: &str = "/tandem/meshsub";
/// How long a lookup may take before it gives up.
const FIND_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a request may wait for its answer (packs can be large).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub sync: request_response::json::Behaviour<Request, Response>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub relay: relay::client::Behaviour,
    /// Circuits for peers behind NAT: only a hub serves them.
    pub relay_server: Toggle<relay::Behaviour>,
    pub dcutr: dcutr::Behaviour,
    pub autonat: autonat::Behaviour,
    /// Finds peers' addresses through other peers (internet case); off
    /// with `tandem up --no-dht`.
    pub kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    /// Announcements of new work, one topic per project (see
    /// `tandem_protocol::gossip`).
    pub gossip: gossipsub::Behaviour,
}

/// The libp2p keypair for this node's identity: one key everywhere.
pub fn keypair(key: &SecretKey) -> Result<identity::Keypair, NetError> {
    let mut bytes = key.to_bytes();
    identity::Keypair::ed25519_from_bytes(&mut bytes).map_err(|e| NetError::Setup(e.to_string()))
}

/// Whether the swarm serves others as a hub or is an ordinary peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Peer,
    Hub,
}

/// Relay limits sized for a team behind one campus NAT: many reservations
/// and circuits may come from one IP address, and a circuit carries whole
/// Git packs (the libp2p default caps a circuit at 128 KiB and 2 minutes,
/// meant for nothing but a hole-punching handshake).
fn relay_config() -> relay::Config {
    let per_minute = |n: u32| {
        (
            std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN),
            Duration::from_secs(60),
        )
    };
    let config = relay::Config {
        max_reservations: 4096,
        max_reservations_per_peer: 8,
        reservation_duration: Duration::from_secs(3600),
        reservation_rate_limiters: Vec::new(),
        max_circuits: 1024,
        max_circuits_per_peer: 64,
        max_circuit_duration: Duration::from_secs(24 * 3600),
        max_circuit_bytes: 0,
        circuit_src_rate_limiters: Vec::new(),
    };
    let (peer, minute) = per_minute(60);
    let (ip, _) = per_minute(1200);
    config
        .reservation_rate_per_peer(peer, minute)
        .reservation_rate_per_ip(ip, minute)
        .circuit_src_per_peer(peer, minute)
        .circuit_src_per_ip(ip, minute)
}

/// AutoNAT as each role needs it. A peer probes soon after start (so it
/// learns it is private, and its relay slot stays, within seconds). A hub
/// answers dial-back requests from peers on any address, private ones
/// included: a hub on a campus or in a lab network is a real case.
fn autonat_config(role: Role) -> autonat::Config {
    autonat::Config {
        boot_delay: Duration::from_secs(2),
        retry_interval: Duration::from_secs(20),
        throttle_server_period: Duration::from_secs(15),
        only_global_ips: role == Role::Peer,
        throttle_clients_peer_max: 8,
        ..autonat::Config::default()
    }
}

/// Builds the swarm for `keys`. `agent` is what identify tells peers
/// (`tandem/<version> (<name>)`); `dht` turns Kademlia on.
pub fn build(
    keys: identity::Keypair,
    agent: String,
    dht: bool,
    role: Role,
) -> Result<Swarm<Behaviour>, NetError> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keys)
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
                relay_server: Toggle::from(
                    (role == Role::Hub)
                        .then(|| relay::Behaviour::new(key.public().to_peer_id(), relay_config())),
                ),
                dcutr: dcutr::Behaviour::new(key.public().to_peer_id()),
                autonat: autonat::Behaviour::new(key.public().to_peer_id(), autonat_config(role)),
                kad: Toggle::from(dht.then(|| {
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
    Ok(swarm)
}

/// Gossipsub as Tandem uses it: messages signed by the node's key (so a
/// receiver knows who published), validated by the host before they
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p2p::handle::peer_key;

    #[test]
    fn one_key_everywhere_libp2p_peer_id_matches_the_identity() {
        let key = SecretKey::from_bytes([42; 32]);
        let libp2p_id = keypair(&key).expect("keypair").public().to_peer_id();
        assert_eq!(libp2p_id.to_base58(), key.public().to_peer_id());
        assert_eq!(peer_key(&libp2p_id), Some(key.public()));
    }
}
