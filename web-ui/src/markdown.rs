//! Markdown (a project's README, notes) to HTML that is safe to put on the
//! page: pulldown-cmark renders, then ammonia keeps only harmless tags and
//! attributes, so raw HTML, `javascript:` links and event handlers in a
//! README from any collaborator cannot run script in the UI.
//!
//! Nor can it make the browser call this node: links and images that point
//! at a loopback or unspecified address (in any spelling a browser accepts,
//! `http://2130706433/` or `http://[::ffff:127.0.0.1]/` included) or at a
//! host name this node answers to lose their URL. URLs are parsed by the
//! `url` crate, which follows the same WHATWG rules as the browser, so what
//! is checked is the host the browser would connect to. (A DNS name that
//! resolves to loopback gets through here, but the node refuses requests
//! whose Host header is not one of its own.)

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::RwLock;

use pulldown_cmark::{Options, Parser, html};
use url::{Host, Url};

/// `host[:port]` names this node answers to, besides loopback ones.
static OWN_ORIGINS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds names this node answers to (`host:port`, or a bare host for any
/// port), as its HTTP guard accepts them in the Host header: links to them
/// are dropped like links to loopback.
pub fn add_own_origins<S: AsRef<str>>(hosts: impl IntoIterator<Item = S>) {
    let mut own = OWN_ORIGINS.write().unwrap_or_else(|e| e.into_inner());
    for host in hosts {
        let host = host.as_ref().to_ascii_lowercase();
        if !own.contains(&host) {
            own.push(host);
        }
    }
}

/// Renders Markdown to sanitised HTML.
pub fn render(text: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut out = String::new();
    html::push_html(&mut out, Parser::new_ext(text, options));
    sanitize(&out)
}

/// Keeps only safe markup: no scripts, styles, frames, forms or event
/// handlers; links only to http, https and mailto, opened without access
/// to this page, and never to this node (see the module's notes).
pub fn sanitize(html: &str) -> String {
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .attribute_filter(|_element, attribute, value| {
            let keep = match attribute {
                // Lists of URLs: never allowed by this builder's tag set;
                // refused outright should that change.
                "srcset" | "ping" => false,
                "href" | "xlink:href" | "src" | "action" | "formaction" | "data" | "poster"
                | "cite" | "longdesc" | "background" => !points_at_this_node(value),
                _ => true,
            };
            keep.then(|| value.into())
        })
        .link_rel(Some("noopener noreferrer nofollow"))
        // A relative link or image would be a request to this node with
        // the user's cookie: a README could trigger work or hold
        // connections open. Only absolute http(s) and mailto remain.
        .url_relative(ammonia::UrlRelative::Deny)
        .clean(html)
        .to_string()
}

/// Whether a browser following `value` would connect to this machine's
/// loopback, to "any address" (which reaches this machine too), or to a
/// name this node answers to. Relative URLs are not judged here: the
/// builder drops them all.
fn points_at_this_node(value: &str) -> bool {
    let Ok(url) = Url::parse(value) else {
        return false;
    };
    let local = match url.host() {
        None => false,
        Some(Host::Ipv4(ip)) => local_v4(ip),
        Some(Host::Ipv6(ip)) => local_v6(ip),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            name == "localhost"
                || name.ends_with(".localhost")
                || name == "ip6-localhost"
                || name == "ip6-loopback"
        }
    };
    local || is_own_origin(&url)
}

fn local_v4(ip: Ipv4Addr) -> bool {
    // 127.0.0.0/8 is loopback; 0.0.0.0/8 reaches this machine on Linux.
    ip.is_loopback() || ip.octets()[0] == 0
}

fn local_v6(ip: Ipv6Addr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        // IPv4-mapped (`::ffff:127.0.0.1`) and -compatible (`::127.0.0.1`).
        || ip.to_ipv4().is_some_and(local_v4)
}

fn is_own_origin(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_end_matches('.');
    let authority = url
        .port_or_known_default()
        .map(|port| format!("{host}:{port}"));
    let own = OWN_ORIGINS.read().unwrap_or_else(|e| e.into_inner());
    own.iter()
        .any(|o| o == host || authority.as_deref() == Some(o.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders() {
        let html = render("# Soil\n\nSome *pH* data.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(html.contains("<h1>Soil</h1>"), "{html}");
        assert!(html.contains("<em>pH</em>"), "{html}");
        assert!(html.contains("<table>"), "{html}");
    }

    #[test]
    fn script_in_markdown_is_inert() {
        for hostile in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=\"https://example.org\"></iframe>",
            "<svg onload=alert(1)></svg>",
            "<style>body{display:none}</style>",
            "<img src=\"/api/projects/p/env/outdated\">",
            "[events](/p/x/events)",
        ] {
            let html = render(hostile);
            let lower = html.to_lowercase();
            assert!(!lower.contains("<script"), "{hostile} -> {html}");
            assert!(!lower.contains("onerror"), "{hostile} -> {html}");
            assert!(!lower.contains("onload"), "{hostile} -> {html}");
            assert!(!lower.contains("javascript:"), "{hostile} -> {html}");
            assert!(!lower.contains("<iframe"), "{hostile} -> {html}");
            assert!(!lower.contains("<style"), "{hostile} -> {html}");
            assert!(!lower.contains("/api/"), "{hostile} -> {html}");
            assert!(!lower.contains("/events"), "{hostile} -> {html}");
        }
    }

    /// Every spelling of a loopback or "any" address a browser accepts.
    const LOOPBACKS: [&str; 22] = [
        "http://127.0.0.1:4000/api/projects",
        "http://127.0.0.1/",
        "http://127.1:4000/api/x",
        "http://127.0.1:4000/api/x",
        "http://127.255.255.254:4000/api/x",
        "http://2130706433:4000/api/x",
        "http://0x7f.1:4000/api/x",
        "http://0x7f000001:4000/api/x",
        "http://0177.0.0.1:4000/api/x",
        "http://localhost:4000/api/x",
        "http://LOCALHOST.:4000/api/x",
        "http://anything.localhost/api/x",
        "http://[::1]:4000/api/x",
        "http://[0:0:0:0:0:0:0:1]/api/x",
        "http://[::ffff:127.0.0.1]:4000/api/x",
        "http://[::ffff:7f00:1]:4000/api/x",
        "http://[::]:4000/api/x",
        "http://0.0.0.0:4000/api/x",
        "http://0:4000/api/x",
        "https://127.0.0.1:4000/api/x",
        "http:127.0.0.1:4000/api/x",
        "http:\\\\127.0.0.1:4000\\api\\x",
    ];

    #[test]
    fn links_and_images_to_loopback_are_dropped() {
        for target in LOOPBACKS {
            for markdown in [
                format!("[calls the node]({target})"),
                format!("![calls the node]({target})"),
                format!("<{target}>"),
                format!("<a href=\"{target}\">x</a>"),
                format!("<img src=\"{target}\">"),
                format!("<a href=\" \t{target}\">x</a>"),
            ] {
                let html = render(&markdown);
                assert!(
                    !html.contains("href=") && !html.contains("src="),
                    "{markdown} -> {html}"
                );
            }
        }
        // What is not this machine stays.
        for kept in [
            "https://example.org/a",
            "http://128.0.0.1/x",
            "http://10.0.0.1:4000/x",
            "http://[2001:db8::1]/x",
            "http://localhost.example.org/x",
            "mailto:ada@example.org",
        ] {
            // Raw HTML: pulldown-cmark percent-encodes `[` in a Markdown
            // link, which no longer parses as an absolute URL.
            let html = render(&format!("<a href=\"{kept}\">x</a> <img src=\"{kept}\">"));
            assert!(html.contains("href="), "{kept} -> {html}");
            assert!(
                kept.starts_with("mailto") || html.contains("src="),
                "{kept} -> {html}"
            );
        }
    }

    #[test]
    fn links_to_this_nodes_own_names_are_dropped() {
        add_own_origins(["192.0.2.7:4321", "Tandem-Own.local"]);
        for target in [
            "http://192.0.2.7:4321/api/projects",
            "http://tandem-own.local/api/x",
            "http://tandem-own.local:9/api/x",
        ] {
            let html = render(&format!("[x]({target}) ![y]({target})"));
            assert!(
                !html.contains("href=") && !html.contains("src="),
                "{target} -> {html}"
            );
        }
        // The same address on another port is another program.
        let html = render("[x](http://192.0.2.7:80/)");
        assert!(html.contains("href="), "{html}");
    }
}
