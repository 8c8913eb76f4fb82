//! One module per page; each renders from the node's API types.

pub mod activity;
pub mod datasets;
pub mod environment;
pub mod files;
pub mod hub;
pub mod members;
pub mod overview;
pub mod peers;
pub mod projects;
pub mod settings;
pub mod sync;
pub mod versions;

use maud::{Markup, html};
use tandem_protocol::access::Role;
use tandem_protocol::api::{DriftChoice, DriftItem, DriftReport, DriftRequest, SyncStateView};

use crate::layout::{body, status};

/// A drifted package as the page shows it: `manager:name==version` (just
/// `manager:name` when the container no longer has it), so a press acts
/// on that version only.
fn as_shown(item: &DriftItem) -> String {
    match &item.found {
        Some(version) => format!("{}:{}=={version}", item.manager, item.name),
        None => format!("{}:{}", item.manager, item.name),
    }
}

/// The drift banner of the Overview and Environment pages: what the
/// running container has that the environment does not, each with
/// **Pin it** (when there is a version to pin) and **Ignore**. Nothing is
/// shown when nothing drifted; nothing is pinned without a press.
pub fn drift_banner(api: &str, report: &DriftReport) -> Markup {
    let url = format!("{api}/env/drift");
    let request = |choice, packages: Vec<String>, all| {
        body(&DriftRequest {
            choice,
            packages,
            all,
        })
    };
    html! {
        @if !report.items.is_empty() {
            section.card.drift #drift role="alert" {
                h2 { "The running container differs from the environment" }
                p.muted {
                    "Installed by hand (a cell's " code { "%pip install" } ", a terminal), these are not in "
                    "the project's environment: the next launch, and your collaborators', will not have them. "
                    "Pin a package to add exactly this version to the environment, or ignore it."
                }
                ul {
                    @for item in &report.items {
                        @let package = format!("{}:{}", item.manager, item.name);
                        li data-drift=(package) data-kind=(item.kind) {
                            span { (item.description) }
                            " "
                            @if let Some(pin) = &item.pin {
                                button data-api=(url) data-body=(request(DriftChoice::Pin, vec![as_shown(item)], false))
                                    data-busy="Pinning…" {
                                    @if pin == "unpin" { "Take the pin out" } @else { "Pin it" }
                                }
                            }
                            button.quiet data-api=(url) data-body=(request(DriftChoice::Ignore, vec![as_shown(item)], false))
                                data-busy="Ignoring…" { "Ignore" }
                            (status())
                        }
                    }
                }
                @let pinnable: Vec<String> = report.items.iter().filter(|i| i.pin.is_some()).map(as_shown).collect();
                @if pinnable.len() > 1 {
                    // The versions shown, named: nothing seen since is pinned unseen.
                    button #drift-pin-all data-api=(url) data-body=(request(DriftChoice::Pin, pinnable.clone(), false))
                        data-busy="Pinning…" { "Pin these " (pinnable.len()) }
                    (status())
                }
            }
        }
        @if let Some(problem) = &report.problem {
            p.muted #drift-problem { "Drift could not be checked: " (problem) }
        }
    }
}

pub fn role_pill(role: Option<Role>) -> Markup {
    match role {
        Some(role) => html! { span.pill { (role.to_string()) } },
        None => html! { span.pill.warn { "public" } },
    }
}

/// A one-line sync state: conflict, behind, ahead, or in step.
pub fn sync_pill(state: Option<&SyncStateView>) -> Markup {
    let Some(state) = state else {
        return html! { span.muted { "—" } };
    };
    if state.conflict.is_some() {
        return html! { span.pill.bad { "conflict" } };
    }
    let behind: usize = state.peers.iter().map(|p| p.behind).max().unwrap_or(0);
    let ahead: usize = state.peers.iter().map(|p| p.ahead).max().unwrap_or(0);
    html! {
        @if state.peers.is_empty() {
            span.muted { "not shared yet" }
        } @else if behind > 0 {
            span.pill.warn { (behind) " behind" }
        } @else if ahead > 0 {
            span.pill { (ahead) " ahead" }
        } @else {
            span.pill.ok { "in sync" }
        }
        @if !state.autosync { " " span.muted { "(auto off)" } }
    }
}
