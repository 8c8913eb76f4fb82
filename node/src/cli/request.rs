//! What a command sends: URL paths with every name percent-encoded, query
//! strings, and file paths made absolute (the node may run elsewhere in the
//! file system than the command, so relative paths mean nothing to it).
//!
//! Every command group uses these; none of them uses another group.

use std::path::Path;

use anyhow::Context;

/// Percent-encodes one URL path segment: a `/` or `?` in a name stays
/// inside its segment.
pub use tandem_protocol::text::url_segment as segment;

/// A project (or dataset) name as a URL path segment; names that cannot
/// exist are refused here with the naming rules, before anything is sent.
pub fn project_path(name: &str) -> anyhow::Result<String> {
    let name: tandem_protocol::ProjectName = name.parse()?;
    Ok(segment(name.as_str()))
}

/// `?key=value&…` of the pairs that have a value (each encoded), or
/// nothing at all.
pub fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `path` as an absolute path, resolved against the command's own working
/// directory.
pub fn absolute(path: &Path) -> anyhow::Result<String> {
    let path =
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    Ok(path.to_string_lossy().into_owned())
}

/// Every path of `paths` made absolute.
pub fn absolute_all(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<String>> {
    paths.iter().map(|p| absolute(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("a b/../c"), "a%20b%2F..%2Fc");
        assert_eq!(segment("ok-name_1.2"), "ok-name_1.2");
        assert_eq!(
            query_string(&[("a", Some("x y".into())), ("b", None)]),
            "?a=x%20y"
        );
    }

    #[test]
    fn names_that_cannot_exist_are_refused_before_sending() {
        assert_eq!(project_path("lab").expect("a valid name"), "lab");
        for bad in ["../etc", "a/b", "", ".hidden"] {
            assert!(project_path(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(query_string(&[("a", None)]), "");
    }
}
