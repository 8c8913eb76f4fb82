//! The Sync page: where each peer stands, a Sync button, automatic sync,
//! and conflicts with a diff and the four ways to settle them.

use maud::{Markup, html};
use similar::{ChangeTag, TextDiff};
use tandem_protocol::api::{ConflictFile, ProjectDetail, SyncRequest, SyncStateView};

use crate::layout::{Tab, body, encode, project_head, short_key, status, time};

pub fn page(detail: &ProjectDetail, state: &SyncStateView) -> Markup {
    let p = &detail.summary;
    let api = format!("/api/projects/{}", encode(&p.name));
    let resolve = |how: &str| {
        body(&SyncRequest {
            resolve: Some(how.to_owned()),
            auto: None,
        })
    };
    html! {
        (project_head(&p.name, &p.description, Tab::Sync))
        @if let Some(conflict) = &state.conflict {
            section.card #conflict {
                h2 { "Conflict with " (conflict.peer) }
                p { "You and " (conflict.peer) " changed the same files. Nothing is lost until you choose:" }
                ul {
                    li { b { "Keep mine" } ": for conflicting files, your version wins; all other changes are merged." }
                    li { b { "Take theirs" } ": for conflicting files, their version wins; all other changes are merged." }
                    li { b { "Keep both" } ": your files stay as they are, theirs are kept on a separate branch." }
                    li { b { "Abort" } ": leave their changes unmerged for now." }
                }
                p.bar {
                    button data-api={ (api) "/sync" } data-body=(resolve("ours")) data-confirm="Keep your version of the conflicting files?" { "Keep mine" }
                    button data-api={ (api) "/sync" } data-body=(resolve("theirs")) data-confirm="Take their version of the conflicting files?" { "Take theirs" }
                    button.quiet data-api={ (api) "/sync" } data-body=(resolve("keep-both")) data-confirm="Keep both versions (theirs on a branch)?" { "Keep both" }
                    button.danger data-api={ (api) "/sync" } data-body=(resolve("abort")) data-confirm="Leave their changes unmerged?" { "Abort" }
                }
                (status())
                h3 { "Conflicting files" }
                @for file in &conflict.files { (conflict_file(file)) }
            }
        }
        section.card #sync-now {
            h2 { "Sync" }
            p.bar {
                button data-api={ (api) "/sync" } data-body="{}" data-busy="Syncing with every reachable member…" { "Sync now" }
                @if state.autosync {
                    span.pill.ok { "automatic sync on" }
                    button.quiet data-api={ (api) "/sync" } data-body=r#"{"auto":false}"# { "Turn off" }
                } @else {
                    span.pill.warn { "automatic sync off" }
                    button.quiet data-api={ (api) "/sync" } data-body=r#"{"auto":true}"# { "Turn on" }
                }
            }
            (status())
            p.muted { "Sync saves your changes, fetches from every reachable member, merges, and tells them." }
        }
        section.card #peers-state {
            h2 { "Members' copies" }
            @if state.peers.is_empty() {
                p.muted { "Not synced with anyone yet." }
            } @else {
                table {
                    thead { tr { th { "Peer" } th { "You are ahead" } th { "You are behind" } th.hide-small { "Their head" } th { "Last synced" } } }
                    tbody {
                        @for peer in &state.peers {
                            tr {
                                td title=(peer.peer_id) { (peer.name.clone().unwrap_or_else(|| short_key(&peer.peer_id))) }
                                td { (peer.ahead) } td { (peer.behind) }
                                td.hide-small { code { (peer.head.get(..8).unwrap_or(&peer.head)) } }
                                td { (peer.last_sync_ms.map(time).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            @if let Some(head) = &state.head { p.muted { "Your head: " code { (head.get(..8).unwrap_or(head)) } } }
        }
    }
}

fn conflict_file(file: &ConflictFile) -> Markup {
    html! {
        details.conflict-file open {
            summary { (file.path) }
            @match (&file.ours, &file.theirs) {
                (Some(ours), Some(theirs)) => {
                    pre.diff {
                        @for change in TextDiff::configure()
                            .timeout(std::time::Duration::from_millis(300))
                            .diff_lines(ours.as_str(), theirs.as_str())
                            .iter_all_changes() {
                            @match change.tag() {
                                ChangeTag::Delete => span.del { "- " (change.value().trim_end_matches('\n')) },
                                ChangeTag::Insert => span.add { "+ " (change.value().trim_end_matches('\n')) },
                                ChangeTag::Equal => span.ctx { "  " (change.value().trim_end_matches('\n')) },
                            }
                        }
                    }
                    p.muted { "- yours, + theirs" }
                }
                _ => p.muted { "A binary or large file (or deleted on one side): no diff shown." },
            }
        }
    }
}
