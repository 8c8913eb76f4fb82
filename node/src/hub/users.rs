//! Who may use a hub, and for what.
//!
//! - A relay slot (being reachable through the hub) is for the peers the
//!   operator allows: anyone with `--open`, else the keys given with
//!   `--allow` and the members of the projects the hub keeps.
//! - A circuit to a peer that holds a slot may be opened by anyone: the
//!   peer at the far end judges who it talks to, as on any connection.
//!   This is what lets someone with an invite reach the inviter.
//! - The blob relay admits those who may hold a slot, and both ends of an
//!   open circuit, so large files go wherever Git and activity can.
//!
//! The hub sees keys, IP addresses and traffic volume; what it relays is
//! encrypted end to end (noise on libp2p circuits, QUIC-TLS between blob
//! endpoints), so it never sees a project's content unless it keeps a copy
//! by grant.

use tandem_protocol::PeerKey;

use super::HubOptions;
use crate::service::{Service, now_ms};

impl HubOptions {
    /// Allowed whatever the hub keeps: `--open`, or named with `--allow`.
    pub fn allows(&self, peer: &PeerKey) -> bool {
        self.open || self.allow.contains(peer)
    }
}

impl Service {
    /// Whether `peer` may keep a relay slot on this hub. Reads every kept
    /// project's access, so it runs on a blocking thread; it is asked once
    /// per reservation, not per packet.
    pub fn may_use_hub(&self, peer: &PeerKey) -> bool {
        let Some(hub) = self.hub() else {
            return false;
        };
        hub.allows(peer) || self.is_member_anywhere(peer)
    }

    /// Whether `peer` may use the blob relay: as for a slot, or as one end
    /// of a circuit open through this hub now.
    pub fn may_use_blob_relay(&self, peer: &PeerKey) -> bool {
        self.hub_circuits().is_some_and(|c| c.contains(peer)) || self.may_use_hub(peer)
    }

    /// Whether `peer` holds a role in any project this node keeps.
    fn is_member_anywhere(&self, peer: &PeerKey) -> bool {
        let now = now_ms();
        self.project_names().unwrap_or_default().iter().any(|name| {
            self.project(name.as_str()).is_ok_and(|handle| {
                let project = self.lock_project(&handle);
                project.access.roles(now).role_of(peer).is_some()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Circuits;
    use tandem_protocol::SecretKey;

    fn key(n: u8) -> PeerKey {
        SecretKey::from_bytes([n; 32]).public()
    }

    #[test]
    fn a_peer_counts_as_in_a_circuit_until_its_last_one_closes() {
        let circuits = Circuits::default();
        let (ada, bob, cy) = (key(1), key(2), key(3));
        circuits.note(&ada, &bob, true);
        circuits.note(&cy, &bob, true);
        circuits.note(&ada, &bob, false);
        assert!(!circuits.contains(&ada));
        assert!(circuits.contains(&bob), "Bob still has Cy's circuit");
        circuits.note(&cy, &bob, false);
        assert!(!circuits.contains(&bob) && !circuits.contains(&cy));
        // A close without an open (a restart in between) changes nothing.
        circuits.note(&ada, &cy, false);
        assert!(!circuits.contains(&ada));
    }

    #[test]
    fn only_open_hubs_and_allowed_keys_admit_strangers() {
        let mut options = HubOptions {
            external: None,
            relay_listen: "127.0.0.1:0".parse().expect("addr"),
            allow: vec![key(1)],
            open: false,
            quota_bytes: 0,
        };
        assert!(options.allows(&key(1)));
        assert!(!options.allows(&key(2)));
        options.open = true;
        assert!(options.allows(&key(2)));
    }
}
