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
use tandem_protocol::api::SyncStateView;

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
