//! The Activity page: the feed grouped by day, filters, details, figures,
//! notes, stars and hiding, restoring a version, and live updates.

use maud::{Markup, html};
use tandem_protocol::activity::Kind;
use tandem_protocol::api::{ActivityQuery, EntryView, MarkRequest, Marks, ProjectDetail};

use crate::layout::{Tab, body, clock, day, encode, project_head, status, time};

/// How the page was asked to show the feed.
pub struct View {
    pub starred_only: bool,
    pub show_hidden: bool,
    pub query: ActivityQuery,
}

fn icon(kind: Kind) -> &'static str {
    match kind {
        Kind::Code => "▶",
        Kind::Environment => "⚙",
        Kind::Input => "⇩",
        Kind::Output => "⇧",
        Kind::Dataset => "▤",
        Kind::Note => "✎",
        Kind::Sync => "⇄",
        Kind::Access => "⚑",
        Kind::Milestone => "★",
    }
}

/// Entries that say little on their own; runs of them are folded.
fn is_minor(e: &EntryView) -> bool {
    let d = &e.entry.details;
    match e.entry.kind {
        Kind::Sync => true,
        Kind::Code => d.output.is_none() && d.figures.is_empty() && d.files.is_empty(),
        _ => false,
    }
}

pub fn page(
    csrf: &str,
    detail: &ProjectDetail,
    entries: &[EntryView],
    marks: &Marks,
    authors: &[(String, String)],
    view: &View,
) -> Markup {
    let p = &detail.summary;
    let api = format!("/api/projects/{}", encode(&p.name));
    let shown: Vec<&EntryView> = entries
        .iter()
        .filter(|e| view.show_hidden || !marks.hidden.contains(&e.id))
        .filter(|e| !view.starred_only || marks.starred.contains(&e.id))
        .collect();
    let hidden_count = entries.len()
        - entries
            .iter()
            .filter(|e| !marks.hidden.contains(&e.id))
            .count();
    let q = &view.query;
    // The live feed follows the same filters as the page.
    let mut params: Vec<String> = [
        ("kind", &q.kind),
        ("author", &q.author),
        ("search", &q.search),
        ("path", &q.path),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={}", encode(v))))
    .collect();
    if view.starred_only {
        params.push("starred=1".into());
    }
    if view.show_hidden {
        params.push("hidden=1".into());
    }
    let events = format!("/p/{}/events?{}", encode(&p.name), params.join("&"));
    html! {
        (project_head(&p.name, &p.description, Tab::Activity))
        section.card #add-note {
            h2 { "Add a note" }
            form.inline method="post" action={ "/p/" (encode(&p.name)) "/notes" } data-api={ (api) "/notes" } data-busy="Saving…" {
                input type="hidden" name="csrf" value=(csrf);
                label.grow { "Note" textarea name="text" rows="2" required maxlength="10000" {} }
                label { "Tags" input name="tags" data-list placeholder="comma separated"; }
                button type="submit" { "Add note" }
            }
            (status())
        }
        section.card {
            form.inline #filters method="get" action={ "/p/" (encode(&p.name)) "/activity" } {
                label { "Kind"
                    select name="kind" {
                        option value="" { "all kinds" }
                        @for kind in Kind::ALL {
                            option value=(kind.as_str()) selected[q.kind.as_deref() == Some(kind.as_str())] { (kind.as_str()) }
                        }
                    }
                }
                label { "Author"
                    select name="author" {
                        option value="" { "anyone" }
                        @for (did, name) in authors {
                            option value=(did) selected[q.author.as_deref() == Some(did.as_str())] { (name) }
                        }
                    }
                }
                label.grow { "Text" input name="search" value=(q.search.clone().unwrap_or_default()); }
                label { "Path" input name="path" value=(q.path.clone().unwrap_or_default()) placeholder="e.g. output/plot.png"; }
                label.check { input type="checkbox" name="starred" value="1" checked[view.starred_only]; " starred only" }
                label.check { input type="checkbox" name="hidden" value="1" checked[view.show_hidden]; " show hidden" }
                button type="submit" { "Filter" }
            }
            @if hidden_count > 0 && !view.show_hidden { p.muted { (hidden_count) " hidden entr" @if hidden_count == 1 { "y" } @else { "ies" } " not shown." } }
            div #feed data-events=(events) {
                @if shown.is_empty() { p.muted #feed-empty { "No matching activity." } }
                (feed(&p.name, &shown, marks))
            }
        }
    }
}

/// Days, each with its entries; consecutive minor entries folded.
fn feed(project: &str, entries: &[&EntryView], marks: &Marks) -> Markup {
    let mut groups: Vec<(String, Vec<Vec<&EntryView>>)> = Vec::new();
    for e in entries {
        let today = day(e.entry.time_ms);
        if groups.last().is_none_or(|(d, _)| *d != today) {
            groups.push((today, Vec::new()));
        }
        let Some((_, runs)) = groups.last_mut() else {
            continue;
        };
        let joins = runs
            .last()
            .is_some_and(|run| run.first().is_some_and(|first| is_minor(first)) && is_minor(e));
        match runs.last_mut() {
            Some(run) if joins => run.push(e),
            _ => runs.push(vec![e]),
        }
    }
    html! {
        @for (date, runs) in &groups {
            div.day { (date) }
            @for run in runs {
                @if run.len() > 2 {
                    details.minor {
                        summary { (run.len()) " minor entries (" (run[0].entry.kind.as_str()) "…)" }
                        @for e in run { (entry(project, e, marks)) }
                    }
                } @else {
                    @for e in run { (entry(project, e, marks)) }
                }
            }
        }
    }
}

/// One entry; also what the live feed sends.
pub fn entry(project: &str, e: &EntryView, marks: &Marks) -> Markup {
    let api = format!("/api/projects/{}", encode(project));
    let page = format!("/p/{}/activity", encode(project));
    let starred = marks.starred.contains(&e.id);
    let hidden = marks.hidden.contains(&e.id);
    let d = &e.entry.details;
    let mark = |star: Option<bool>, hide: Option<bool>| {
        body(&MarkRequest {
            entry: e.id.clone(),
            star,
            hide,
        })
    };
    // "All versions of this figure": entries touching the same image file,
    // or else runs of the same cell.
    let figure_history = d
        .files
        .iter()
        .find(|f| {
            let lower = f.path.to_ascii_lowercase();
            [".png", ".svg", ".jpg", ".jpeg", ".pdf"]
                .iter()
                .any(|x| lower.ends_with(x))
        })
        .map(|f| format!("{page}?path={}", encode(&f.path)))
        .or_else(|| {
            d.code
                .as_ref()
                .and_then(|code| code.lines().find(|l| !l.trim().is_empty()))
                .map(|line| format!("{page}?kind=code&search={}", encode(line.trim())))
        });
    html! {
        div.entry.starred[starred] id={ "entry-" (e.id) } data-kind=(e.entry.kind.as_str()) data-entry=(e.id) {
            div.icon title=(e.entry.kind.as_str()) { (icon(e.entry.kind)) }
            div.body {
                div.meta {
                    span.pill { (e.entry.kind.as_str()) } " "
                    span title=(e.entry.author.to_did()) { (e.entry.author_name) } " · "
                    span title=(time(e.entry.time_ms)) { (clock(e.entry.time_ms)) }
                    @if let Some(commit) = &e.entry.commit { " · " code { (commit.get(..8).unwrap_or(commit)) } }
                    @if hidden { " · " span.pill.warn { "hidden" } }
                }
                div.message { (e.entry.message) }
                @if !e.entry.tags.is_empty() {
                    div { @for tag in &e.entry.tags { a.tag href={ (page) "?search=" (encode(tag)) } { "#" (tag) } } }
                }
                @if let Some(code) = &d.code {
                    details { summary { "code" } pre.code { (code) } }
                }
                @if let Some(output) = &d.output {
                    details open[d.figures.is_empty()] { summary { "output" } pre.output { (output) } }
                }
                @if !d.figures.is_empty() {
                    div.figures {
                        @for hash in &d.figures {
                            // Hashes are hex; anything else is not linked.
                            @if hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                                a href={ "/api/figures/" (hash) } target="_blank" rel="noopener" {
                                    img.figure src={ "/api/figures/" (hash) } alt="figure" loading="lazy";
                                }
                            }
                        }
                        @if let Some(history) = &figure_history {
                            div { a href=(history) { "All versions of this figure" } }
                        }
                    }
                }
                @if !d.files.is_empty() {
                    details {
                        summary { (d.files.len()) " file(s) changed" }
                        ul.files { @for f in &d.files { li { span.name { (f.path) } span.muted { (f.action.as_str()) } } } }
                    }
                }
                div.actions {
                    button.quiet data-api={ (api) "/marks" } data-body=(mark(Some(!starred), None)) {
                        @if starred { "Unstar" } @else { "Star" }
                    }
                    button.quiet data-api={ (api) "/marks" } data-body=(mark(None, Some(!hidden))) {
                        @if hidden { "Unhide" } @else { "Hide" }
                    }
                    @if let Some(commit) = &e.entry.commit {
                        a.button.quiet href={ "/p/" (encode(project)) "/v/" (encode(commit)) }
                            title="Its files, README, environment and datasets as they were; restore or rerun it from there" { "View this version" }
                        a.button.quiet href={ "/p/" (encode(project)) "/compare?from=before:" (encode(commit)) "&to=" (encode(commit)) }
                            title="What this version changed: files, notebook cells, packages" { "What changed" }
                        a.button.quiet href={ "/p/" (encode(project)) "/compare?from=" (encode(commit)) "&to=current" } { "Compare with now" }
                    }
                }
                (status())
            }
        }
    }
}
