//! The HTML of each page. maud escapes every interpolated value, so names,
//! messages and file names from anyone render as text, never as markup.

use maud::{DOCTYPE, Markup, html};
use tandem_protocol::activity::Kind;
use tandem_protocol::api::{ActivityQuery, EntryView, IdentityInfo, ProjectDetail, ProjectSummary};

pub const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#5b6578; --line:#dde2ea; --accent:#2458d6; --bg:#f7f8fb; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); padding:.6rem 1rem; display:flex; gap:1rem; align-items:center; flex-wrap:wrap; }
header a.brand { font-weight:700; color:var(--fg); text-decoration:none; }
header .me { margin-left:auto; color:var(--muted); font-size:.85rem; overflow-wrap:anywhere; }
main { max-width:1100px; margin:0 auto; padding:1rem; }
section.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:1rem; margin-bottom:1rem; }
h1 { font-size:1.4rem; margin:.2rem 0 .6rem; } h2 { font-size:1.1rem; margin:0 0 .6rem; }
table { width:100%; border-collapse:collapse; } td, th { text-align:left; padding:.35rem .4rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:600; font-size:.85rem; }
a { color:var(--accent); }
.muted { color:var(--muted); font-size:.85rem; }
.error { background:#fdecec; border:1px solid #f3b4b4; color:#8a1c1c; padding:.6rem .8rem; border-radius:6px; margin-bottom:1rem; }
form.inline { display:flex; gap:.5rem; flex-wrap:wrap; align-items:flex-end; }
label { display:flex; flex-direction:column; font-size:.85rem; color:var(--muted); gap:.2rem; }
input, textarea, select { font:inherit; padding:.35rem .5rem; border:1px solid var(--line); border-radius:5px; min-width:0; }
button { font:inherit; padding:.4rem .9rem; border-radius:5px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; }
.grid { display:grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap:1rem; }
.kind { display:inline-block; font-size:.75rem; padding:.05rem .45rem; border-radius:999px; background:#e8eefc; color:#1f3f99; }
.entry { border-bottom:1px solid var(--line); padding:.5rem 0; } .entry:last-child { border-bottom:0; }
.entry .meta { color:var(--muted); font-size:.8rem; }
.entry .message { white-space:pre-wrap; overflow-wrap:anywhere; }
.tag { font-size:.75rem; background:#eef1f5; border-radius:4px; padding:0 .3rem; margin-right:.2rem; }
ul.files { list-style:none; padding:0; margin:0; } ul.files li { display:flex; justify-content:space-between; gap:.5rem; overflow-wrap:anywhere; padding:.15rem 0; }
details summary { cursor:pointer; color:var(--muted); font-size:.8rem; }
pre.code, pre.output { background:#f6f6f4; padding:.5rem; overflow-x:auto; font-size:.8rem; max-height:20rem; }
img.figure { max-width:min(100%, 24rem); border:1px solid #ddd; margin:.25rem .25rem 0 0; }
@media (max-width: 600px) { header .me { margin-left:0; } td.hide-small, th.hide-small { display:none; } }
"#;

fn layout(title: &str, me: Option<&IdentityInfo>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tandem" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                header {
                    a.brand href="/" { "Tandem" }
                    a href="/" { "Projects" }
                    @if let Some(me) = me {
                        span.me title=(me.did) { (me.name) " · " (short_key(&me.did)) }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn short_key(did: &str) -> String {
    if did.len() > 24 {
        format!("{}…{}", &did[..16], &did[did.len() - 6..])
    } else {
        did.to_owned()
    }
}

pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn error(message: &str) -> Markup {
    layout(
        "Error",
        None,
        html! {
            div.error role="alert" { (message) }
            p { a href="/" { "Back to your projects" } }
        },
    )
}

pub fn index(
    me: &IdentityInfo,
    projects: &[ProjectSummary],
    csrf: &str,
    problem: Option<&str>,
) -> Markup {
    layout(
        "Projects",
        Some(me),
        html! {
            @if let Some(problem) = problem { div.error role="alert" { (problem) } }
            section.card {
                h1 { "Projects" }
                @if projects.is_empty() {
                    p.muted { "No projects yet. Create one below." }
                } @else {
                    table {
                        thead { tr { th { "Name" } th { "Description" } th.hide-small { "Files" } th { "Last activity" } } }
                        tbody {
                            @for p in projects {
                                tr {
                                    td { a href={ "/p/" (p.name) } { (p.name) } }
                                    td { (p.description) }
                                    td.hide-small { (p.files) }
                                    td {
                                        @if let Some(last) = &p.last_activity {
                                            span.muted { (time(last.entry.time_ms)) } br;
                                            (last.entry.message.lines().next().unwrap_or_default())
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "New project" }
                form.inline method="post" action="/projects" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Name" input name="name" required maxlength="100" pattern="[A-Za-z0-9][A-Za-z0-9._\\-]*" placeholder="e.g. soil-survey"; }
                    label style="flex:1" { "Description" input name="description" maxlength="2000"; }
                    button type="submit" { "Create" }
                }
                p.muted { "Letters, digits, '-', '_' and '.'; no spaces." }
            }
        },
    )
}

fn kind_options(selected: Option<&str>) -> Markup {
    html! {
        option value="" { "all kinds" }
        @for kind in Kind::ALL {
            option value=(kind.as_str()) selected[selected == Some(kind.as_str())] { (kind.as_str()) }
        }
    }
}

pub fn entry(e: &EntryView) -> Markup {
    html! {
        div.entry data-kind=(e.entry.kind.as_str()) {
            div.meta {
                span.kind { (e.entry.kind.as_str()) } " "
                (e.entry.author_name) " · " (time(e.entry.time_ms))
                @if let Some(commit) = &e.entry.commit { " · " code { (commit.get(..8).unwrap_or(commit)) } }
            }
            div.message { (e.entry.message) }
            @if !e.entry.tags.is_empty() {
                div { @for tag in &e.entry.tags { span.tag { (tag) } } }
            }
            @if let Some(code) = &e.entry.details.code {
                details {
                    summary { "code" }
                    pre.code { (code) }
                }
            }
            @if let Some(output) = &e.entry.details.output {
                details {
                    summary { "output" }
                    pre.output { (output) }
                }
            }
            @if !e.entry.details.figures.is_empty() {
                div.figures {
                    @for hash in &e.entry.details.figures {
                        // Hashes are hex; anything else is not linked.
                        @if hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                            a href=(format!("/api/figures/{hash}")) target="_blank" rel="noopener" {
                                img.figure src=(format!("/api/figures/{hash}")) alt="figure" loading="lazy";
                            }
                        }
                    }
                }
            }
            @if !e.entry.details.files.is_empty() {
                details {
                    summary { (e.entry.details.files.len()) " file(s)" }
                    ul.files { @for f in &e.entry.details.files { li { span { (f.path) } span.muted { (f.action.as_str()) } } } }
                }
            }
        }
    }
}

pub fn project(
    detail: &ProjectDetail,
    entries: &[EntryView],
    query: &ActivityQuery,
    csrf: &str,
    problem: Option<&str>,
) -> Markup {
    let p = &detail.summary;
    layout(
        &p.name,
        None,
        html! {
            @if let Some(problem) = problem { div.error role="alert" { (problem) } }
            section.card {
                h1 { (p.name) }
                @if !p.description.is_empty() { p { (p.description) } }
                p.muted {
                    "Owner " span title=(p.owner) { (short_key(&p.owner)) }
                    " · " (p.commits) " commits · " (p.files) " files · created " (time(p.created_ms))
                }
                p.muted { "Folder: " code { (p.path) } }
            }
            div.grid {
                @for group in &detail.sections {
                    section.card data-section=(group.section.as_str()) {
                        h2 { (group.section.as_str()) "/" }
                        @if group.files.is_empty() { p.muted { "Empty" } }
                        ul.files {
                            @for f in &group.files {
                                li { span { (f.path.split_once('/').map(|(_, rest)| rest).unwrap_or(&f.path)) } span.muted { (size(f.size)) } }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Activity" }
                form.inline method="get" action={ "/p/" (p.name) } {
                    label { "Kind" select name="kind" { (kind_options(query.kind.as_deref())) } }
                    label style="flex:1" { "Search" input name="search" value=(query.search.clone().unwrap_or_default()); }
                    label { "Path" input name="path" value=(query.path.clone().unwrap_or_default()); }
                    button type="submit" { "Filter" }
                }
                @if entries.is_empty() { p.muted { "No matching activity." } }
                div #feed { @for e in entries { (entry(e)) } }
            }
            section.card {
                h2 { "Add a note" }
                form.inline method="post" action={ "/p/" (p.name) "/notes" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label style="flex:1" { "Note" textarea name="text" rows="2" required maxlength="10000" {} }
                    label { "Tags" input name="tags" placeholder="comma separated"; }
                    button type="submit" { "Add note" }
                }
            }
        },
    )
}
