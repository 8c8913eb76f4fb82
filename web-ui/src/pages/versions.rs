//! One version of a project, read-only: its files (with downloads), README,
//! environment and linked datasets as they were, and what can be done with
//! it: restore it as a new version, compare it, or open it read-only in
//! JupyterLab. And the comparison of two versions.

use maud::{Markup, html};
use tandem_protocol::api::{
    DataState, FileDelta, LaunchRequest, ProjectVersion, RestoreRequest, VersionDetail, VersionDiff,
};

use crate::layout::{Tab, body, encode, project_head, size, status, time, trusted, url_path};
use crate::markdown;
use tandem_protocol::notebook::{CellChange, CellDelta};

fn title(v: &ProjectVersion) -> Markup {
    html! {
        "Version of " (time(v.time_ms)) " · commit " code { (v.short) }
        @if v.current { " " span.pill.ok { "current" } }
    }
}

pub fn page(detail: &VersionDetail) -> Markup {
    let v = &detail.version;
    let api = format!("/api/projects/{}", encode(&detail.project));
    let here = format!("/p/{}", encode(&detail.project));
    let raw = format!("{api}/versions/{}/raw/", encode(&v.commit));
    let files: usize = detail.sections.iter().map(|s| s.files.len()).sum();
    html! {
        (project_head(&detail.project, "", Tab::Activity))
        section.card #version data-commit=(v.commit) {
            h2 { (title(v)) }
            p { (v.message) }
            p.muted { (files) " file(s). Read-only: nothing here changes the project." }
            div.actions {
                @if !v.current {
                    button data-api={ (api) "/restore" }
                        data-body=(body(&RestoreRequest { version: v.commit.clone() }))
                        data-confirm={ "Make this version the current one? Code, input, output, large files, the environment and dataset links become those of " (time(v.time_ms)) ", as a new version. Uncommitted changes are recorded first. Nothing is lost: later versions stay in the history and can be restored in turn. Members and the project's identity stay as they are." }
                        data-busy="Restoring…" data-then={ "go:" (here) "/activity" } { "Restore this version" }
                    a.button.quiet href={ (here) "/compare?from=" (encode(&v.commit)) "&to=current" } { "Compare with now" }
                }
                button.quiet data-api={ (api) "/launch" }
                    data-body=(body(&LaunchRequest { tool: None, at: Some(v.commit.clone()) }))
                    data-busy="Building this version's environment and starting JupyterLab…" data-then="open" { "Open in JupyterLab (read-only)" }
            }
            (status())
            p.muted { "JupyterLab on an old version runs in the environment that version names, on a read-only copy; cells run there are not recorded in the activity." }
        }
        @if !detail.unreadable.is_empty() {
            section.card.warn {
                h2 { "Could not be read" }
                ul { @for problem in &detail.unreadable { li { (problem) } } }
            }
        }
        @for group in &detail.sections {
            section.card data-section=(group.section.as_str()) {
                h2 { (group.section.as_str()) "/" }
                @if group.files.is_empty() {
                    p.muted { "Empty" }
                } @else {
                    ul.files {
                        @for file in &group.files {
                            li data-path=(file.path) {
                                span.name { (file.path.split_once('/').map_or(file.path.as_str(), |(_, rest)| rest)) }
                                span.muted { (size(file.size)) }
                                @if let Some(blob) = &file.blob {
                                    @match blob.state {
                                        DataState::Local => span.pill.ok title={ "BLAKE3 " (blob.hash) } { "large, here" },
                                        DataState::Partial => span.pill.warn title={ "BLAKE3 " (blob.hash) } { "large, partly here" },
                                        DataState::Remote => span.pill.warn title="Fetched from a member when you download it" { "large, on peers" },
                                    }
                                }
                                span.bar {
                                    a href={ (raw) (url_path(&file.path)) } download=(file.path.rsplit('/').next().unwrap_or("file")) { "Download" }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card #version-env {
            h2 { "Environment" }
            p { "Base " code { (detail.env.base) } " revision " (detail.env.revision) }
            @if detail.env.packages.is_empty() {
                p.muted { "No packages pinned." }
            } @else {
                table {
                    tr { th { "Manager" } th { "Package" } th { "Version" } }
                    @for p in &detail.env.packages {
                        tr { td { (p.manager) } td { (p.name) } td { code { (p.version) } } }
                    }
                }
            }
            @for snippet in &detail.env.snippets { p { "Snippet " code { (snippet) } } }
        }
        @if !detail.datasets.is_empty() {
            section.card #version-datasets {
                h2 { "Linked datasets" }
                ul {
                    @for link in &detail.datasets {
                        li { (link.name) " version " (link.version) " · " (link.files) " files, " (size(link.bytes)) }
                    }
                }
            }
        }
        @if let Some(text) = &detail.readme {
            section.card #version-readme {
                h2 { "README" }
                div.markdown { (trusted(markdown::render(text))) }
            }
        }
    }
}

pub fn compare(diff: &VersionDiff) -> Markup {
    let here = format!("/p/{}", encode(&diff.project));
    let version_link = |v: &ProjectVersion| {
        html! { a href={ (here) "/v/" (encode(&v.commit)) } { (title(v)) } }
    };
    let nothing = diff.files.is_empty()
        && diff.packages.is_empty()
        && diff.snippets.is_empty()
        && diff.datasets.is_empty()
        && diff.base.is_none();
    html! {
        (project_head(&diff.project, "", Tab::Activity))
        section.card #compare {
            h2 { "Compare versions" }
            p { "From " (version_link(&diff.from)) }
            p { "To " (version_link(&diff.to)) }
            @if nothing { p.muted { "No differences." } }
        }
        @if diff.base.is_some() || !diff.packages.is_empty() || !diff.snippets.is_empty() {
            section.card #compare-env {
                h2 { "Environment" }
                @if let Some((before, after)) = &diff.base {
                    p { "Base " code { (before) } " → " code { (after) } }
                }
                table {
                    tr { th { "Package" } th { "Before" } th { "After" } }
                    @for p in diff.packages.iter().chain(&diff.snippets) {
                        tr data-package=(p.name) {
                            td { (p.manager) " " (p.name) }
                            td { @if let Some(v) = &p.before { code { (v) } } @else { span.muted { "—" } } }
                            td { @if let Some(v) = &p.after { code { (v) } } @else { span.muted { "removed" } } }
                        }
                    }
                }
            }
        }
        @if !diff.datasets.is_empty() {
            section.card #compare-datasets {
                h2 { "Linked datasets" }
                ul {
                    @for l in &diff.datasets {
                        li { (l.name) ": "
                            (l.before.map_or("not linked".to_owned(), |v| format!("version {v}")))
                            " → "
                            (l.after.map_or("not linked".to_owned(), |v| format!("version {v}")))
                        }
                    }
                }
            }
        }
        @if !diff.files.is_empty() {
            section.card #compare-files {
                h2 { (diff.files.len()) " file(s) changed" }
                @for file in &diff.files { (file_delta(file)) }
            }
        }
    }
}

fn file_delta(file: &FileDelta) -> Markup {
    let side = |s: &Option<tandem_protocol::api::FileSide>| match s {
        Some(s) => match &s.hash {
            Some(hash) => format!("{} ({})", size(s.size), hash.short()),
            None => size(s.size),
        },
        None => "—".to_owned(),
    };
    html! {
        div.delta data-path=(file.path) data-action=(file.action.as_str()) {
            p {
                span.pill { (file.action.as_str()) } " " code { (file.path) } " "
                span.muted { (side(&file.before)) " → " (side(&file.after)) }
                @if file.large { " " span.pill { "large file" } }
                @if file.binary && !file.large { " " span.muted { "(not text)" } }
            }
            @if let Some(patch) = &file.patch {
                pre.patch { (patch) }
                @if file.patch_cut { p.muted { "The diff is cut here." } }
            }
            @if !file.cells.is_empty() { (cell_deltas(&file.cells)) }
        }
    }
}

/// A notebook's change as cells: what happened to each, its source diff,
/// its outputs summarised.
pub fn cell_deltas(cells: &[CellDelta]) -> Markup {
    html! {
        ol.cell-deltas {
            @for cell in cells {
                li data-change=(change_name(cell.change)) {
                    span.pill { (change_name(cell.change)) } " cell " (cell.position) ": " code { (cell.label) }
                    @if let Some((before, after)) = &cell.outputs {
                        " " span.muted { "outputs: " (before) " → " (after) }
                    }
                    @if !cell.source.is_empty() && cell.change != CellChange::Moved && cell.change != CellChange::Rerun {
                        pre.patch { (cell.source) }
                    }
                }
            }
        }
    }
}

fn change_name(change: CellChange) -> &'static str {
    match change {
        CellChange::Added => "added",
        CellChange::Removed => "removed",
        CellChange::Changed => "changed",
        CellChange::Moved => "moved",
        CellChange::Rerun => "run again",
    }
}
