//! The Members page: who has which role; grant and revoke, each confirmed.

use maud::{Markup, html};
use tandem_protocol::access::Role;
use tandem_protocol::api::{MembersView, PeerInfo, ProjectDetail};

use crate::layout::{Frame, Tab, encode, project_head, short_key, status, time};

pub fn page(
    frame: &Frame<'_>,
    detail: &ProjectDetail,
    members: &MembersView,
    peers: &[PeerInfo],
) -> Markup {
    let p = &detail.summary;
    let api = format!("/api/projects/{}", encode(&p.name));
    let candidates: Vec<&PeerInfo> = peers
        .iter()
        .filter(|peer| !members.members.iter().any(|m| m.did == peer.did))
        .collect();
    html! {
        (project_head(&p.name, &p.description, Tab::Members))
        section.card #members {
            h2 { "Members" }
            table {
                thead { tr { th { "Who" } th { "Role" } th.hide-small { "Granted by" } th.hide-small { "Since" } th {} } }
                tbody {
                    @for m in &members.members {
                        tr data-member=(m.did) {
                            td {
                                (m.name.clone().unwrap_or_else(|| short_key(&m.did)))
                                @if m.did == frame.me.did { " " span.muted { "(you)" } }
                                br; code title=(m.did) { (short_key(&m.did)) }
                            }
                            td { span.pill { (m.role.to_string()) }
                                @if let Some(until) = m.expires_ms { br; span.muted { "until " (time(until)) } } }
                            td.hide-small { (m.granted_by_name.clone().unwrap_or_else(|| short_key(&m.granted_by))) }
                            td.hide-small { (time(m.since_ms)) }
                            td {
                                @if m.role != Role::Owner {
                                    button.danger data-method="DELETE" data-api={ (api) "/members/" (encode(&m.did)) }
                                        data-confirm={ "Revoke " (m.name.clone().unwrap_or_else(|| m.did.clone())) "'s access? Their node is cut off at its next request." }
                                        data-busy="Revoking…" { "Revoke" }
                                    (status())
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card #grant {
            h2 { "Add a member" }
            form.inline data-api={ (api) "/members" } data-confirm="Grant this role? The member's node can fetch the project from now on." data-busy="Granting…" {
                label.grow { "Key (did:key:…) or a discovered peer"
                    input name="peer" required list="known-peers" placeholder="did:key:z6Mk…";
                    datalist #known-peers {
                        @for peer in &candidates {
                            option value=(peer.did) { (peer.name.clone().unwrap_or_default()) @if peer.connected { " (connected)" } }
                        }
                    }
                }
                label { "Role"
                    select name="role" {
                        option value="reader" { "reader: can clone and pull" }
                        option value="writer" selected { "writer: can change the project" }
                        option value="admin" { "admin: can also manage members" }
                    }
                }
                label { "Expires (optional)" input name="expires" type="date"; }
                button type="submit" { "Grant" }
            }
            (status())
            @if !candidates.is_empty() {
                p.muted { "Discovered peers: "
                    @for peer in &candidates { code title=(peer.did) { (peer.name.clone().unwrap_or_else(|| short_key(&peer.did))) } " " }
                }
            }
        }
        section.card #invite {
            h2 { "Invite by link" }
            @if p.role.is_some_and(Role::can_manage) {
                p.muted { "For someone whose key you do not have: a link that works once, for one person. They paste it under “Join with an invite” on their Projects page while this node is running; they then appear here like any member." }
                form.inline data-api={ (api) "/invites" } data-then="fill:ticket:#invite-ticket" data-busy="Making an invite…" {
                    label { "Role"
                        select name="role" {
                            option value="reader" { "reader: can clone and pull" }
                            option value="writer" selected { "writer: can change the project" }
                            option value="admin" { "admin: can also manage members" }
                        }
                    }
                    label { "Works until (optional; 7 days by default)" input name="expires" type="date"; }
                    button type="submit" { "Make invite link" }
                }
                (status())
                input #invite-ticket readonly hidden aria-label="Invite link";
            } @else {
                p.muted { "Only admins and the owner can invite." }
            }
        }
        section.card #visibility {
            h2 { "Visibility" }
            @if members.public {
                p { span.pill.warn { "public" } " Any peer can read this project." }
                button data-method="PUT" data-api={ (api) "/visibility" } data-body=r#"{"public":false}"#
                    data-confirm="Make the project private (members only)?" { "Make private" }
            } @else {
                p { span.pill.ok { "private" } " Only members can see that this project exists." }
                button.danger data-method="PUT" data-api={ (api) "/visibility" } data-body=r#"{"public":true}"#
                    data-confirm="Make the project readable by any peer?" { "Make public" }
            }
            (status())
        }
    }
}
