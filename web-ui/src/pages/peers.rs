//! The Peers page: this node's key and addresses to hand to a colleague,
//! the peers it knows, and adding one by address.

use maud::{Markup, html};
use tandem_protocol::api::{ConnectionKind, IdentityInfo, PeerInfo};

use crate::layout::{short_key, status, time};

pub fn page(me: &IdentityInfo, peers: &[PeerInfo], addresses: &[String]) -> Markup {
    html! {
        section.card #self {
            h1 { "Peers" }
            h2 { "This node" }
            p.keyline { "Key: " code #own-key { (me.did) } button.quiet data-copy=(me.did) { "Copy" } }
            p.muted { "Give a colleague your key (for sharing) and an address (to connect when the LAN cannot find you)." }
            @if addresses.is_empty() {
                p.muted { "No network addresses: the node runs without networking." }
            }
            ul.files #own-addresses {
                @for address in addresses {
                    li { span.name { code { (address) } } button.quiet data-copy=(address) { "Copy" } }
                }
            }
        }
        section.card #add-peer {
            h2 { "Add a peer" }
            form.inline data-api="/api/peers" data-busy="Connecting…" data-done="Connected." {
                label.grow { "Address (/ip4/…/p2p/…) or key (did:key:…)"
                    input name="address" required placeholder="/ip4/192.168.1.20/tcp/4001/p2p/12D3KooW…"; }
                button type="submit" { "Connect" }
            }
            (status())
        }
        section.card #known-peers {
            h2 { "Known peers" }
            @if peers.is_empty() {
                p.muted { "None yet. Peers on the same network appear here by themselves." }
            } @else {
                table {
                    thead { tr { th { "Peer" } th { "State" } th.hide-small { "Found by" } th { "Round trip" } th.hide-small { "Addresses" } } }
                    tbody {
                        @for peer in peers {
                            tr data-peer=(peer.did) {
                                td { (peer.name.clone().unwrap_or_else(|| "(no name yet)".into())) br;
                                    code title=(peer.did) { (short_key(&peer.did)) }
                                    " " button.quiet data-copy=(peer.did) { "Copy" } }
                                td {
                                    @if peer.connected { span.pill.ok { "connected" }
                                        @if let Some(kind) = peer.connection {
                                            " " span.pill.connection title=(connection_help(kind)) { (kind.as_str()) }
                                        } }
                                    @else { span.pill { "not connected" }
                                        @if let Some(seen) = peer.last_seen_ms { br; span.muted { "last seen " (time(seen)) } } }
                                }
                                td.hide-small { (peer.found_by) }
                                td { @if let Some(rtt) = peer.rtt_ms { (format!("{rtt:.1} ms")) } @else { "—" } }
                                td.hide-small {
                                    details { summary { (peer.addresses.len()) " address(es)" }
                                        ul.files { @for a in &peer.addresses { li { code { (a) } } } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What each way of being connected means, for the pill's tooltip.
fn connection_help(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::Direct => "One node dialled the other directly.",
        ConnectionKind::HolePunched => {
            "Both nodes dialled each other at once through their NATs, coordinated through the hub; the traffic goes directly."
        }
        ConnectionKind::Relayed => {
            "The NATs between the two nodes allow no direct path: traffic goes through the hub, encrypted end to end."
        }
    }
}
