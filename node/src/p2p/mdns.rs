//! Finding peers on a LAN with no configuration and no internet: this node
//! announces itself as `_tandem._udp.local.` with its peer id, and reports
//! every other Tandem node it hears of. What a LAN neighbour announces is
//! only a hint: the peer id is proved by the noise handshake when dialled.

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};
use tokio::sync::mpsc;

const MDNS_SERVICE: &str = "_tandem._udp.local.";

/// LAN discovery with mdns-sd: announces this node and reports others.
pub struct Mdns {
    daemon: mdns_sd::ServiceDaemon,
    local_peer: PeerId,
    announced: bool,
}

impl Mdns {
    pub fn start(
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
    pub fn announce(&mut self, address: &Multiaddr) {
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
