//! A project's overview: its README, environment, JupyterLab, sync and
//! members at a glance.

use maud::{Markup, html};
use tandem_protocol::access::Role;
use tandem_protocol::api::{
    ContainerView, DriftReport, EnvView, MembersView, ProjectDetail, SyncStateView,
};

use super::{drift_banner, sync_pill};
use crate::layout::{Frame, Tab, encode, project_head, short_key, status, time, trusted};
use crate::markdown;

pub fn page(
    _frame: &Frame<'_>,
    detail: &ProjectDetail,
    readme: Option<&str>,
    (env, drift): (Option<&EnvView>, Option<&DriftReport>),
    container: Option<&ContainerView>,
    sync: Option<&SyncStateView>,
    members: Option<&MembersView>,
) -> Markup {
    let p = &detail.summary;
    let base = format!("/p/{}", encode(&p.name));
    let api = format!("/api/projects/{}", encode(&p.name));
    html! {
        (project_head(&p.name, &p.description, Tab::Overview))
        @if let Some(drift) = drift { (drift_banner(&api, drift)) }
        div.grid {
            section.card #jupyter {
                h2 { "JupyterLab" }
                @if let Some(c) = container {
                    p { span.pill.ok { "running" } " since " (time(c.started_ms)) }
                    p.bar {
                        a.button href=(c.url) target="_blank" rel="noopener" { "Open JupyterLab" }
                        button.quiet data-api={ (api) "/stop" } data-busy="Stopping…" { "Stop" }
                    }
                    p.muted { "Cells you run are recorded in the activity feed ("
                        (c.kernels_followed) " kernel(s) followed)." }
                } @else {
                    p { span.pill { "stopped" } }
                    button #launch data-api={ (api) "/launch" } data-body="{}" data-then="open"
                        data-busy="Building the environment if needed and starting JupyterLab… (the first build takes minutes)" { "Launch JupyterLab" }
                }
                (status())
            }
            section.card #environment-summary {
                h2 { "Environment" }
                @if let Some(env) = env {
                    p { b { (env.base.name) } " · " (env.base.languages.join(", ")) }
                    p.muted {
                        (env.packages.len()) " pinned package(s), " (env.snippets.len()) " custom step(s) · "
                        @if env.built { span.pill.ok { "built" } } @else { span.pill.warn { "not built yet" } }
                    }
                    @if let Some(problem) = &env.docker { p.error { (problem) } }
                } @else {
                    p.muted { "The environment could not be read." }
                }
                a href={ (base) "/env" } { "Packages and build" }
            }
            section.card #sync-summary {
                h2 { "Sync" }
                p { (sync_pill(sync)) }
                @if let Some(sync) = sync {
                    @for peer in &sync.peers {
                        p.muted {
                            (peer.name.clone().unwrap_or_else(|| short_key(&peer.peer_id))) ": "
                            (peer.ahead) " ahead, " (peer.behind) " behind"
                            @if let Some(at) = peer.last_sync_ms { " · " (time(at)) }
                        }
                    }
                }
                p.bar {
                    button data-api={ (api) "/sync" } data-body="{}" data-busy="Syncing with every reachable member…" { "Sync now" }
                    a href={ (base) "/sync" } { "Details" }
                }
                (status())
            }
            section.card #members-summary {
                h2 { "Members" }
                @if let Some(m) = members {
                    p {
                        @for role in [Role::Owner, Role::Admin, Role::Writer, Role::Reader] {
                            @let count = m.members.iter().filter(|x| x.role == role).count();
                            @if count > 0 { span.pill { (count) " " (role.to_string()) } " " }
                        }
                        @if m.public { span.pill.warn { "public" } } @else { span.pill.ok { "private" } }
                    }
                }
                a href={ (base) "/members" } { "Manage members" }
            }
        }
        section.card #readme {
            h2 { "README" }
            @match readme {
                Some(text) => div.markdown { (trusted(markdown::render(text))) },
                None => p.muted { "No README.md yet. Add one to code/ (or the project folder) to describe the project here." },
            }
        }
        section.card {
            p.muted {
                "Owner " span title=(p.owner) { (short_key(&p.owner)) }
                " · " (p.commits) " commits · " (p.files) " files · " (p.entries) " activity entries · created " (time(p.created_ms))
            }
            p.muted { "Folder: " code { (p.path) } }
        }
    }
}
