//! The swarm and what it speaks: TCP + noise + yamux and QUIC, identify,
//! ping, request-response for sync, gossipsub for signed announcements,
//! Kademlia, and a relay client, DCUtR and AutoNAT for peers behind NAT.

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

/// Builds the swarm for `keys`. `agent` is what identify tells peers
/// (`tandem/<version> (<name>)`); `dht` turns Kademlia on.
pub fn build(
    keys: identity::Keypair,
    agent: String,
    dht: bool,
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
                dcutr: dcutr::Behaviour::new(key.public().to_peer_id()),
                autonat: autonat::Behaviour::new(
                    key.public().to_peer_id(),
                    autonat::Config::default(),
                ),
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
