//! Markdown (a project's README, notes) to HTML that is safe to put on the
//! page: pulldown-cmark renders, then ammonia keeps only harmless tags and
//! attributes, so raw HTML, `javascript:` links and event handlers in a
//! README from any collaborator cannot run script in the UI.

use pulldown_cmark::{Options, Parser, html};

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
/// to this page.
pub fn sanitize(html: &str) -> String {
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        // A relative link or image would be a request to this node with
        // the user's cookie: a README could trigger work or hold
        // connections open. Only absolute http(s) and mailto remain.
        .url_relative(ammonia::UrlRelative::Deny)
        .clean(html)
        .to_string()
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
}
