//! The Sync page: where each peer stands, a Sync button, automatic sync,
//! and conflicts with a diff and the four ways to settle them.

use maud::{Markup, html};
use similar::{ChangeTag, TextDiff};
use tandem_protocol::api::{ConflictFile, ProjectDetail, SyncRequest, SyncStateView};
use tandem_protocol::notebook::{Conflict, ConflictKind, source_of};

use crate::layout::{Tab, body, encode, project_head, short_key, status, time};

pub fn page(detail: &ProjectDetail, state: &SyncStateView) -> Markup {
    let p = &detail.summary;
    let api = format!("/api/projects/{}", encode(&p.name));
    let resolve = |how: &str| {
        body(&SyncRequest {
            resolve: Some(how.to_owned()),
            ..SyncRequest::default()
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
                @if conflict.files.iter().any(|f| !f.cells.is_empty()) {
                    (cell_choices(&api, &conflict.files))
                }
                h3 { "Conflicting files" }
                @for file in conflict.files.iter().filter(|f| f.cells.is_empty()) { (conflict_file(file)) }
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

/// The notebooks' conflicts cell by cell: both versions of each side by
/// side, a choice per conflict, and one button that merges with them
/// (everything else in those notebooks is merged already).
fn cell_choices(api: &str, files: &[ConflictFile]) -> Markup {
    html! {
        form #cell-choices data-api={ (api) "/sync" } data-confirm="Merge with these choices, cell by cell?" data-done="Merged." {
            h3 { "Notebook cells in conflict" }
            p.muted { "Every other change to these notebooks is merged already, cell by cell. Choose for each cell below; other conflicting files take the side chosen at the bottom." }
            @for file in files.iter().filter(|f| !f.cells.is_empty()) {
                h4 { code { (file.path) } }
                @for conflict in &file.cells { (cell_conflict(&file.path, conflict)) }
            }
            p.bar {
                label { "Other conflicting files: " }
                label { input type="radio" name="resolve" value="ours" checked; " keep mine" }
                label { input type="radio" name="resolve" value="theirs"; " take theirs" }
                button type="submit" { "Merge with these choices" }
            }
            (status())
        }
    }
}

fn side(value: &Option<serde_json::Value>, kind: ConflictKind) -> Markup {
    let text = match value {
        Some(serde_json::Value::Object(cell)) => Some(source_of(cell)),
        Some(other) => Some(serde_json::to_string_pretty(other).unwrap_or_default()),
        None => None,
    };
    html! {
        @match text {
            Some(text) => pre { (text) },
            None if kind == ConflictKind::Order => p.muted { "(no change)" },
            None => p.muted { em { "deleted" } },
        }
    }
}

fn cell_conflict(path: &str, conflict: &Conflict) -> Markup {
    let said = match conflict.kind {
        ConflictKind::BothEdited => "changed on both sides",
        ConflictKind::DeletedByUs => "you deleted it; they changed it",
        ConflictKind::DeletedByThem => "you changed it; they deleted it",
        ConflictKind::BothAdded => "added on both sides, differently",
        ConflictKind::Metadata => "changed on both sides",
        ConflictKind::Order => "both of you moved cells",
    };
    let name = format!("choice {path} {}", conflict.id);
    let both = matches!(
        conflict.kind,
        ConflictKind::BothEdited | ConflictKind::BothAdded
    );
    html! {
        div.cells-conflict data-conflict=(conflict.id) {
            p { b { (conflict.label) } " — " (said) }
            div.side-by-side {
                div { p.muted { "Mine" } (side(&conflict.ours, conflict.kind)) }
                div { p.muted { "Theirs" } (side(&conflict.theirs, conflict.kind)) }
            }
            p.choice {
                label { input type="radio" name=(name) value="ours" data-path=(path) data-conflict=(conflict.id) checked; " Keep mine" }
                label { input type="radio" name=(name) value="theirs" data-path=(path) data-conflict=(conflict.id); " Take theirs" }
                @if both {
                    label { input type="radio" name=(name) value="both" data-path=(path) data-conflict=(conflict.id); " Keep both (two cells)" }
                }
            }
        }
    }
}
