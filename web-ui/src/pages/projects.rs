//! The Projects page: your projects, a new one, an import, and what peers
//! offer you.

use maud::{Markup, html};
use tandem_protocol::api::{
    BaseView, CloneRequest, DiskUsage, PeerOffer, ProjectSummary, SyncStateView,
};

use super::{role_pill, sync_pill};
use crate::layout::{Frame, body, encode, short_key, size, status, time};

pub fn index(
    frame: &Frame<'_>,
    rows: &[(ProjectSummary, Option<SyncStateView>)],
    offers: &[PeerOffer],
    bases: &[BaseView],
    usage: Option<&DiskUsage>,
) -> Markup {
    let data_size = |name: &str| {
        usage
            .and_then(|u| u.projects.iter().find(|p| p.name == name))
            .map(|p| size(p.tracked_bytes + p.large_local_bytes))
            .unwrap_or_default()
    };
    let waiting: Vec<&PeerOffer> = offers.iter().filter(|o| !o.have_locally).collect();
    html! {
        section.card {
            h1 { "Projects" }
            @if rows.is_empty() {
                p.muted #no-projects { "No projects yet. Create one below, or clone one a colleague shared with you." }
            } @else {
                table #projects {
                    thead { tr {
                        th { "Name" } th.hide-small { "Owner" } th { "Role" }
                        th { "Last activity" } th { "Sync" } th.hide-small { "Data" }
                    } }
                    tbody {
                        @for (p, sync) in rows {
                            tr data-project=(p.name) {
                                td {
                                    a href={ "/p/" (encode(&p.name)) } { (p.name) }
                                    @if !p.description.is_empty() { br; span.muted { (p.description) } }
                                }
                                td.hide-small title=(p.owner) {
                                    @if p.owner == frame.me.did { "you" } @else { (short_key(&p.owner)) }
                                }
                                td { (role_pill(p.role)) }
                                td {
                                    @if let Some(last) = &p.last_activity {
                                        span.muted { (time(last.entry.time_ms)) } br;
                                        (last.entry.message.lines().next().unwrap_or_default())
                                    } @else { span.muted { "—" } }
                                }
                                td { (sync_pill(sync.as_ref())) }
                                td.hide-small { (data_size(&p.name)) }
                            }
                        }
                    }
                }
            }
        }
        @if !waiting.is_empty() {
            section.card #offers {
                h2 { "Shared with you" }
                p.muted { "Projects that connected peers let you clone." }
                table {
                    thead { tr { th { "Project" } th { "Offered by" } th { "Your role" } th {} } }
                    tbody {
                        @for offer in &waiting {
                            tr data-offer=(offer.offer.project.to_string()) {
                                td { (offer.offer.name) }
                                td title=(offer.peer) { (offer.peer_name.clone().unwrap_or_else(|| short_key(&offer.peer))) }
                                td { (role_pill(offer.offer.role)) }
                                td {
                                    button data-api="/api/clone" data-body=(body(&CloneRequest { name: None, no_data: false, project: offer.offer.project.to_string() }))
                                        data-busy="Cloning: history, activity and small files…" data-then="go-project" { "Clone" }
                                    (status())
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card #join {
            h2 { "Join with an invite" }
            p.muted { "Paste the tandem: link an owner or admin made for you (on their Members page, or with `tandem invite`). Their node must be running; it grants you the role, then the project is cloned here." }
            form.inline data-api="/api/join" data-then="go-project" data-busy="Joining: asking the inviter, then cloning…" {
                label.grow { "Invite link"
                    input name="ticket" required maxlength="4096" autocomplete="off" spellcheck="false" placeholder="tandem:…";
                }
                button type="submit" { "Join" }
            }
            (status())
        }
        section.card #new-project {
            h2 { "New project" }
            form.inline method="post" action="/projects" data-api="/api/projects" data-then="go-project" data-busy="Creating…" {
                input type="hidden" name="csrf" value=(frame.csrf);
                label { "Name" input name="name" required maxlength="100" pattern="[A-Za-z0-9][A-Za-z0-9._\\-]*" placeholder="e.g. soil-survey"; }
                label.grow { "Description" input name="description" maxlength="2000"; }
                label { "Environment"
                    select name="base" {
                        @for base in bases {
                            option value=(base.id) selected[base.id == "python3-minimal"] {
                                (base.name) " — " (base.languages.join(", ")) ", ~" (base.size_mb) " MB"
                                @if base.gpu_required { ", needs a GPU" }
                            }
                        }
                    }
                }
                button type="submit" { "Create" }
            }
            (status())
            p.muted { "Names use letters, digits, '-', '_' and '.'; no spaces." }
            @if !bases.is_empty() {
                details {
                    summary { "What each environment contains" }
                    table {
                        thead { tr { th { "Environment" } th { "Languages" } th { "Tools" } th.hide-small { "Size" } } }
                        tbody {
                            @for base in bases {
                                tr {
                                    td { b { (base.name) } br; span.muted { (base.description) } }
                                    td { (base.languages.join(", ")) }
                                    td { (base.tools.join(", ")) }
                                    td.hide-small { "~" (base.size_mb) " MB"
                                        @if base.image_here == Some(true) { br; span.pill.ok { "ready here" } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card #import {
            h2 { "Import a project" }
            p.muted { "A .zip exported by Tandem (`tandem project export`)." }
            div.drop data-import="/api/import-upload" {
                label { "Choose a .zip, or drop it here" input type="file" accept=".zip,application/zip"; }
                div.uploads {}
            }
            (status())
        }
    }
}
