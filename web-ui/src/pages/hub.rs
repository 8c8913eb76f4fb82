//! The Hub page, on a node that runs as a hub: who may use it, what it
//! sees, what it keeps (each project against the quota); and, on any node
//! with a hub set, the Members page's "Keep a copy on the hub" card, which
//! says plainly that the hub can read what it keeps.

use maud::{Markup, html};
use tandem_protocol::PeerKey;
use tandem_protocol::access::Role;
use tandem_protocol::api::{HubView, MembersView, ShareRequest};

use crate::layout::{body, encode, short_key, size, status};

pub fn page(view: &HubView) -> Markup {
    html! {
        section.card #hub {
            h1 { "Hub" }
            p { "This node runs as a hub: a relay for peers behind NAT, a place to find peers by key, and an always-on copy of the projects whose owner or an admin granted it the reader role." }
            p.keyline { "Key: " code { (view.did) } button.quiet data-copy=(view.did) { "Copy" } }
            p.muted {
                "Owners add it with "
                code { "tandem share NAME " (short_key(&view.did)) " --role reader" }
                " or \"Keep a copy on the hub\" on a project's Members page."
            }
            @if let Some(ip) = &view.external_address { p { "Public address: " code { (ip) } } }
            p { "Blob relay: " code { (view.blob_relay.clone().unwrap_or_else(|| view.relay_listen.clone())) } }
        }
        section.card #hub-users {
            h2 { "Who may use it" }
            @if view.open {
                p { span.pill.warn { "open" } " Anyone may use its relays (started with --open)." }
            } @else {
                p { span.pill.ok { "members only" } " The members of the projects it keeps ("
                    (view.members) " keys) and the keys allowed by its operator ("
                    (view.allow.len()) "). Anyone may open a circuit to a peer that holds a slot; that peer decides whom it talks to." }
            }
            @if !view.allow.is_empty() {
                ul.files #hub-allow {
                    @for key in &view.allow { li { code title=(key) { (short_key(key)) } } }
                }
            }
        }
        section.card #hub-sees {
            h2 { "What it sees" }
            ul {
                li { "The keys of the peers that connect to it, their IP addresses, and how much traffic they relay." }
                li { "Never the content it relays: libp2p connections are encrypted (Noise) end to end, and large files through its blob relay travel as end-to-end encrypted QUIC between the two endpoints." }
                li { "Of a project it was not granted: nothing, not even its name or id. It is asked about a project only by its members." }
                li { "Of a project it keeps a copy of: everything in it (files, history, activity, members, large files). It is a reader there: it can read and pass on, never change, and everything it passes on is checked by the receiver." }
            }
        }
        section.card #hub-keeps {
            h2 { "What it keeps" }
            p.muted {
                "Large files per project: "
                @if view.quota_bytes == 0 { "no limit." } @else { "at most " (size(view.quota_bytes)) " (--quota)." }
            }
            @if view.projects.is_empty() {
                p.muted { "No project yet. A project is kept once a member grants this hub the reader role and is online." }
            } @else {
                table {
                    thead { tr { th { "Project" } th { "Role" } th { "Large files kept" } th.hide-small { "Needed" } th { "" } } }
                    tbody {
                        @for p in &view.projects {
                            tr data-project=(p.id) {
                                td { a href={ "/p/" (encode(&p.name)) } { (p.name) } br; code.muted title=(p.id) { (short_key(&p.id)) } }
                                td {
                                    @match p.role {
                                        Some(role) => { span.pill { (role.to_string()) } }
                                        None => { span.pill.bad { "revoked" } }
                                    }
                                }
                                td { (size(p.kept_bytes))
                                    @if view.quota_bytes > 0 { " of " (size(view.quota_bytes)) } }
                                td.hide-small { (size(p.wanted_bytes)) }
                                td {
                                    @if let Some(note) = &p.note {
                                        span class=(if p.over_quota_files > 0 { "pill warn" } else { "muted" }) { (note) }
                                    } @else {
                                        span.pill.ok { "complete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The hub's key, from its address (`…/p2p/12D3KooW…`): its last `/p2p/`
/// part, a PeerId of an ed25519 key.
pub fn hub_key(address: &str) -> Option<PeerKey> {
    let (_, id) = address.trim().rsplit_once("/p2p/")?;
    id.split('/').next()?.parse().ok()
}

/// The Members page's card for keeping a copy of the project on the hub:
/// offered to owners and admins when a hub is set, with what it means.
pub fn keep_copy(project: &str, me: &str, members: &MembersView, hub: Option<&str>) -> Markup {
    let Some(hub) = hub.and_then(hub_key) else {
        return html! {};
    };
    let hub_did = hub.to_did();
    let my_role = members.members.iter().find(|m| m.did == me).map(|m| m.role);
    let manages = my_role.is_some_and(Role::can_manage);
    let held = members
        .members
        .iter()
        .find(|m| m.did == hub_did)
        .map(|m| m.role);
    let api = format!("/api/projects/{}/members", encode(project));
    let share = ShareRequest {
        peer: hub_did.clone(),
        role: Role::Reader.to_string(),
        expires: None,
    };
    html! {
        section.card #hub-copy {
            h2 { "Keep a copy on the hub" }
            p { "Your hub (" code title=(hub_did) { (short_key(&hub_did)) } ") can keep an always-on copy of this project, so members can fetch it when everyone else is offline." }
            p { strong { "The hub can read everything it keeps" } ": files, history, activity, members and large files. It gets the reader role only: it can pass the project on to members, never change it." }
            @match held {
                Some(role) => {
                    p { span.pill.ok { "kept" } " The hub holds the " (role.to_string()) " role here. Revoke it above to stop." }
                }
                None if manages => {
                    button data-method="POST" data-api=(api) data-body=(body(&share))
                        data-confirm="Give the hub the reader role? It will keep a full copy of this project and can read all of it."
                        data-busy="Granting…" { "Keep a copy on the hub" }
                    (status())
                }
                None => {
                    p.muted { "Only the owner or an admin can ask the hub to keep a copy." }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_protocol::SecretKey;
    use tandem_protocol::api::{HubProject, MemberView};

    fn key(n: u8) -> PeerKey {
        SecretKey::from_bytes([n; 32]).public()
    }

    fn member(k: &PeerKey, role: Role) -> MemberView {
        MemberView {
            did: k.to_did(),
            peer_id: k.to_peer_id(),
            name: None,
            role,
            granted_by: k.to_did(),
            granted_by_name: None,
            since_ms: 0,
            expires_ms: None,
        }
    }

    #[test]
    fn the_hub_key_is_read_from_its_address() {
        let hub = key(7);
        let address = format!("/ip4/203.0.113.7/tcp/4001/p2p/{}", hub.to_peer_id());
        assert_eq!(hub_key(&address), Some(hub));
        let relayed = format!("{address}/p2p-circuit");
        assert_eq!(hub_key(&relayed), Some(hub));
        for bad in ["", "/ip4/203.0.113.7/tcp/4001", "/p2p/nonsense", "/p2p/"] {
            assert_eq!(hub_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn owners_are_offered_the_copy_and_told_the_hub_reads_it() {
        let (me, hub) = (key(1), key(7));
        let address = format!("/ip4/203.0.113.7/tcp/4001/p2p/{}", hub.to_peer_id());
        let members = MembersView {
            members: vec![member(&me, Role::Owner)],
            public: false,
        };
        let html = keep_copy("survey", &me.to_did(), &members, Some(&address)).into_string();
        assert!(html.contains("Keep a copy on the hub"), "{html}");
        assert!(html.contains("can read everything it keeps"), "{html}");
        assert!(
            html.contains("data-api=\"/api/projects/survey/members\""),
            "{html}"
        );
        assert!(
            html.contains("&quot;role&quot;:&quot;reader&quot;"),
            "{html}"
        );
        assert!(html.contains(&hub.to_did()), "{html}");

        // A writer is told who can; nobody is offered it without a hub.
        let writer = MembersView {
            members: vec![member(&key(2), Role::Owner), member(&me, Role::Writer)],
            public: false,
        };
        let html = keep_copy("survey", &me.to_did(), &writer, Some(&address)).into_string();
        assert!(!html.contains("data-method"), "{html}");
        assert!(html.contains("Only the owner or an admin"), "{html}");
        assert!(
            keep_copy("survey", &me.to_did(), &members, None)
                .0
                .is_empty()
        );

        // Once kept, it says so instead.
        let kept = MembersView {
            members: vec![member(&me, Role::Owner), member(&hub, Role::Reader)],
            public: false,
        };
        let html = keep_copy("survey", &me.to_did(), &kept, Some(&address)).into_string();
        assert!(html.contains("holds the reader role"), "{html}");
        assert!(!html.contains("data-method"), "{html}");
    }

    #[test]
    fn the_page_says_who_may_use_it_what_it_sees_and_what_it_keeps() {
        let view = HubView {
            did: key(7).to_did(),
            relay_listen: "0.0.0.0:3340".into(),
            members: 3,
            allow: vec![key(9).to_did()],
            quota_bytes: 10 << 20,
            projects: vec![HubProject {
                name: "<survey>".into(),
                id: "tp123".into(),
                owner: key(1).to_did(),
                role: Some(Role::Reader),
                kept_bytes: 4 << 20,
                wanted_bytes: 30 << 20,
                missing_files: 1,
                over_quota_files: 1,
                note: Some("1 file(s) not kept: they would pass the quota".into()),
            }],
            ..HubView::default()
        };
        let html = page(&view).into_string();
        assert!(html.contains("members only"), "{html}");
        assert!(html.contains("3 keys"), "{html}");
        assert!(html.contains("never the content") || html.contains("Never the content"));
        assert!(html.contains("IP addresses"), "{html}");
        assert!(html.contains("4.0 MiB of 10.0 MiB"), "{html}");
        assert!(html.contains("would pass the quota"), "{html}");
        // Names from peers are escaped.
        assert!(html.contains("&lt;survey&gt;") && !html.contains("<survey>"));
        let open = HubView { open: true, ..view };
        assert!(
            page(&open)
                .into_string()
                .contains("Anyone may use its relays")
        );
    }
}
