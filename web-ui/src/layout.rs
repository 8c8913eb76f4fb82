//! The frame every page shares (header, project tabs, assets) and small
//! formatting helpers. Everything interpolated goes through maud, which
//! escapes it, so names and messages from anyone render as text.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use tandem_protocol::api::IdentityInfo;

/// Byte counts, percent-encoded names and paths: written once in
/// `tandem_protocol::text` for the CLI, the node and these pages alike.
pub use tandem_protocol::text::{byte_size as size, url_path, url_segment as encode};

/// A request body for a button's `data-body`, from the API's own types.
pub fn body<T: serde::Serialize>(request: &T) -> String {
    serde_json::to_string(request).unwrap_or_default()
}

/// Which top-level area a page belongs to, for highlighting the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Projects,
    Peers,
    Datasets,
    Settings,
    Hub,
}

/// The tabs of a project's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Files,
    Environment,
    Activity,
    Members,
    Sync,
}

impl Tab {
    const ALL: [(Tab, &'static str, &'static str); 6] = [
        (Tab::Overview, "Overview", ""),
        (Tab::Files, "Files", "/files"),
        (Tab::Environment, "Environment", "/env"),
        (Tab::Activity, "Activity", "/activity"),
        (Tab::Members, "Members", "/members"),
        (Tab::Sync, "Sync", "/sync"),
    ];
}

/// What the frame needs besides the page's own body.
pub struct Frame<'a> {
    pub title: &'a str,
    pub me: &'a IdentityInfo,
    pub csrf: &'a str,
    pub area: Area,
    /// The node runs as a hub: the header links its Hub page.
    pub hub: bool,
}

pub fn page(frame: &Frame<'_>, body: Markup) -> Markup {
    let link = |area: Area, href: &str, text: &str| {
        html! { a href=(href) class=[(frame.area == area).then_some("here")] { (text) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf" content=(frame.csrf);
                title { (frame.title) " · Tandem" }
                link rel="stylesheet" href="/static/style.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Tandem" }
                    (link(Area::Projects, "/", "Projects"))
                    (link(Area::Datasets, "/datasets", "Datasets"))
                    (link(Area::Peers, "/peers", "Peers"))
                    (link(Area::Settings, "/settings", "Settings"))
                    @if frame.hub { (link(Area::Hub, "/hub", "Hub")) }
                    span.me title=(frame.me.did) { (frame.me.name) " · " (short_key(&frame.me.did)) }
                }
                main { (body) }
            }
        }
    }
}

/// The heading and tabs of a project page.
pub fn project_head(name: &str, description: &str, here: Tab) -> Markup {
    html! {
        h1 { (name) }
        @if !description.is_empty() { p.muted { (description) } }
        nav.tabs aria-label="Project" {
            @for (tab, label, suffix) in Tab::ALL {
                a href={ "/p/" (encode(name)) (suffix) } class=[(tab == here).then_some("here")] { (label) }
            }
        }
    }
}

/// A page for an error: what happened and a way on.
pub fn error_page(frame: &Frame<'_>, message: &str) -> Markup {
    page(
        frame,
        html! {
            div.error role="alert" { (message) }
            p { a href="/" { "Back to your projects" } }
        },
    )
}

/// A status line that scripts fill with progress and results.
pub fn status() -> Markup {
    html! { div.status role="status" {} }
}

/// Markup already made safe (sanitised Markdown, notebook HTML).
pub fn trusted(html: String) -> Markup {
    PreEscaped(html)
}

pub fn short_key(did: &str) -> String {
    if did.chars().count() > 24 {
        let chars: Vec<char> = did.chars().collect();
        let head: String = chars[..16].iter().collect();
        let tail: String = chars[chars.len() - 6..].iter().collect();
        format!("{head}…{tail}")
    } else {
        did.to_owned()
    }
}

pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%A %e %B %Y").to_string())
        .unwrap_or_default()
}

pub fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_keys_read_well() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(
            short_key("did:key:z6MkabcdefghijklmnopqrstuvwXYZ"),
            "did:key:z6Mkabcd…uvwXYZ"
        );
        assert_eq!(short_key("short"), "short");
    }

    #[test]
    fn paths_are_encoded_segment_by_segment() {
        assert_eq!(url_path("input/a b/<x>.csv"), "input/a%20b/%3Cx%3E.csv");
        assert_eq!(encode("a/b?c"), "a%2Fb%3Fc");
    }
}
