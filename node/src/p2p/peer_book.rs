//! The peers this node has met, remembered across restarts
//! (`peers.json` in the home): how each was found, where it listens, what
//! it calls itself. Every field but the key comes from the peer itself or
//! the LAN, so the book is capped per peer and in all.

use std::collections::BTreeMap;
use std::path::PathBuf;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use super::handle::{PeerInfo, peer_key};
use crate::fsutil::atomic_write;

/// Addresses kept per peer; the newest are kept. A peer names its own
/// addresses (identify, mDNS), so without a cap one peer could grow the
/// book without end.
const MAX_PEER_ADDRESSES: usize = 16;
/// Characters kept of the name a peer gives itself.
const MAX_PEER_NAME: usize = 100;
/// Peers remembered at most. Any device on the LAN can connect with fresh
/// keys; past this the peers seen longest ago (and not connected) go.
const MAX_BOOK_PEERS: usize = 1_000;

/// The file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Entries {
    peers: BTreeMap<String, PeerInfo>,
}

/// The book, and where it is saved.
pub struct PeerBook {
    entries: Entries,
    path: PathBuf,
}

impl PeerBook {
    /// Reads the book at `path`; a missing or unreadable one is empty.
    pub fn load(path: PathBuf) -> Self {
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self { entries, path }
    }

    pub fn save(&self) {
        let bytes = serde_json::to_vec_pretty(&self.entries).unwrap_or_default();
        if let Err(e) = atomic_write(&self.path, &bytes, None) {
            tracing::warn!(error = %e, "cannot save the peer book");
        }
    }

    /// Every peer remembered.
    pub fn peers(&self) -> impl Iterator<Item = &PeerInfo> {
        self.entries.peers.values()
    }

    /// Updates (or starts) a peer's entry, then keeps the book within its
    /// caps. Peers whose id is not an ed25519 key are not remembered.
    pub fn remember(&mut self, peer: &PeerId, update: impl FnOnce(&mut PeerInfo)) {
        let Some(key) = peer_key(peer) else { return };
        let id = peer.to_base58();
        let entry = self
            .entries
            .peers
            .entry(id.clone())
            .or_insert_with(|| PeerInfo {
                did: key.to_did(),
                peer_id: id.clone(),
                name: None,
                addresses: vec![],
                found_by: "inbound".into(),
                connected: false,
                last_seen_ms: None,
                rtt_ms: None,
                connection: None,
                remote_addresses: vec![],
            });
        update(entry);
        bound_entry(entry);
        if self.entries.peers.len() > MAX_BOOK_PEERS {
            bound_book(&mut self.entries, &id);
        }
    }
}

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
fn bound_book(book: &mut Entries, keep: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
            connection: None,
            remote_addresses: vec![],
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

        let mut book = Entries::default();
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

    #[test]
    fn the_book_survives_a_restart_and_a_garbled_file_starts_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("peers.json");
        let key = tandem_protocol::SecretKey::from_bytes([7; 32]).public();
        let peer: PeerId = key.to_peer_id().parse().expect("peer id");
        let mut book = PeerBook::load(path.clone());
        book.remember(&peer, |info| info.name = Some("Ada".into()));
        book.save();
        let again = PeerBook::load(path.clone());
        let names: Vec<_> = again.peers().map(|p| p.name.clone()).collect();
        assert_eq!(names, vec![Some("Ada".to_string())]);
        assert_eq!(
            again.peers().next().map(|p| p.did.clone()),
            Some(key.to_did())
        );
        std::fs::write(&path, b"{not json").expect("write");
        assert_eq!(PeerBook::load(path).peers().count(), 0);
    }
}
