//! Hub mode: the same node, on a public address, also serving peers that
//! cannot reach each other directly. It runs a libp2p relay v2 server,
//! answers AutoNAT dial-backs and DHT lookups, embeds iroh's relay so blob
//! endpoints behind NAT can reach each other, and keeps an always-on copy of
//! the projects whose owner granted it the reader role.
//!
//! A hub never holds writer or admin: everything it serves is verified by
//! the receiver as from any other peer, so it can withhold but never forge.
//!
//! - [`HubOptions`]: what `tandem hub` / `tandem up --hub` was started with;
//! - [`relay`]: the embedded iroh relay for blob endpoints;
//! - [`users`]: who may use the hub's relays;
//! - [`client`]: the other side, a node using a hub;
//! - `replica`: cloning and keeping up the projects it was granted;
//! - `quota`: what it keeps per project, and the limit.

pub mod quota;
pub mod replica;

pub mod client;
pub mod relay;
pub mod users;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock};

use tandem_protocol::PeerKey;

/// A running hub's state: how it was started, who is in a circuit through
/// it now, and where its blob relay listens once started.
#[derive(Debug)]
pub struct Hub {
    pub options: HubOptions,
    pub circuits: Circuits,
    pub blob_relay: OnceLock<String>,
}

/// The peers in open circuits through the hub, counted per circuit: the
/// blob relay admits both ends of one (see [`users`]).
#[derive(Debug, Default)]
pub struct Circuits {
    open: Mutex<HashMap<PeerKey, usize>>,
}

impl Circuits {
    pub fn note(&self, src: &PeerKey, dst: &PeerKey, open: bool) {
        let mut peers = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for peer in [src, dst] {
            if open {
                *peers.entry(*peer).or_default() += 1;
            } else if let Some(count) = peers.get_mut(peer) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    peers.remove(peer);
                }
            }
        }
    }

    pub fn contains(&self, peer: &PeerKey) -> bool {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(peer)
    }
}

/// How a hub was started.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// The public address peers reach the hub at (`--external-address`):
    /// announced as the hub's own libp2p address and in its relay URL.
    pub external: Option<IpAddr>,
    /// Where the embedded iroh relay (for blob endpoints) listens, HTTP.
    pub relay_listen: SocketAddr,
    /// Keys allowed to use the relays besides members of hosted projects.
    pub allow: Vec<PeerKey>,
    /// Anyone may use the relays (`--open`): the operator's choice.
    pub open: bool,
    /// Most bytes of large files kept per project (0: no limit).
    pub quota_bytes: u64,
}

impl HubOptions {
    /// The URL of the embedded relay as peers should dial it, once bound.
    pub fn relay_url(&self, bound: SocketAddr) -> String {
        let ip = self.external.unwrap_or(bound.ip());
        match ip {
            IpAddr::V4(ip) => format!("http://{ip}:{}", bound.port()),
            IpAddr::V6(ip) => format!("http://[{ip}]:{}", bound.port()),
        }
    }
}

/// Why a size given on the command line was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{given:?} is not a size like 500MiB, 20GiB or 0")]
pub struct BadSize {
    pub given: String,
}

/// Reads a size such as `20GiB`, `500MB`, `1048576` or `0`.
pub fn parse_size(text: &str) -> Result<u64, BadSize> {
    let bad = || BadSize {
        given: text.to_owned(),
    };
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        "t" | "tb" => 1000_u64.pow(4),
        "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = number * unit as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("20GiB"), Ok(20 << 30));
        assert_eq!(parse_size("1.5 MiB"), Ok(3 << 19));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        for bad in ["", "GiB", "-1GiB", "12 parsecs", "1e999", "1.2.3"] {
            assert!(parse_size(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_relay_url_names_the_external_address() {
        let mut options = HubOptions {
            external: Some("203.0.113.7".parse().expect("ip")),
            relay_listen: "0.0.0.0:3340".parse().expect("addr"),
            allow: vec![],
            open: false,
            quota_bytes: 0,
        };
        let bound = "0.0.0.0:3340".parse().expect("addr");
        assert_eq!(options.relay_url(bound), "http://203.0.113.7:3340");
        options.external = Some("2001:db8::1".parse().expect("ip"));
        assert_eq!(options.relay_url(bound), "http://[2001:db8::1]:3340");
    }
}
