//! Text made fit to show or to send: the one place for the small
//! formatting rules that the CLI, the web UI and the node share.
//!
//! - [`strip_ansi`]: program output (Jupyter tracebacks) without terminal
//!   colour codes, for the activity feed and the web UI;
//! - [`byte_size`]: a byte count for people, in binary units (KiB, MiB,
//!   GiB), the same in `tandem du`, on the Settings page and in the commit
//!   message of a dataset version;
//! - [`url_segment`] and [`url_path`]: names and paths percent-encoded into
//!   URLs, so a name can never add a path segment or a query of its own.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Bytes kept as they are in a URL path segment or query value: the
/// unreserved characters of RFC 3986. Everything else, `/`, `?`, `%`, `#`
/// and every non-ASCII byte included, is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A byte count for people: `512 B`, `1.5 KiB`, `2.0 GiB` (powers of 1024,
/// one decimal above bytes).
pub fn byte_size(bytes: u64) -> String {
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

/// Percent-encodes one URL path segment or query value: a `/` in `text`
/// stays part of the segment (`%2F`) instead of starting another.
pub fn url_segment(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// A relative file path made safe to put in a URL path: each of its
/// segments percent-encoded, the `/` between them kept.
pub fn url_path(path: &str) -> String {
    path.split('/')
        .map(url_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// Removes terminal colour codes (`ESC [ … letter`) from text.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoder the CLI and the web UI each wrote out before they
    /// shared [`url_segment`]: the crate must encode exactly as it did.
    fn hand_encoded(text: &str) -> String {
        let mut out = String::new();
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }

    #[test]
    fn sizes_are_in_binary_units() {
        assert_eq!(byte_size(0), "0 B");
        assert_eq!(byte_size(1023), "1023 B");
        assert_eq!(byte_size(1024), "1.0 KiB");
        assert_eq!(byte_size(1536), "1.5 KiB");
        assert_eq!(byte_size(1_500_000), "1.4 MiB");
        assert_eq!(byte_size(2 << 30), "2.0 GiB");
        assert_eq!(byte_size(5 << 40), "5.0 TiB");
        // Past the last unit the number grows instead of the unit.
        assert_eq!(byte_size(2048 << 40), "2048.0 TiB");
        assert_eq!(byte_size(u64::MAX), "16777216.0 TiB");
    }

    #[test]
    fn segments_cannot_add_segments_or_queries() {
        assert_eq!(url_segment("a b/../c"), "a%20b%2F..%2Fc");
        assert_eq!(url_segment("ok-name_1.2~"), "ok-name_1.2~");
        assert_eq!(url_segment("a/b?c#d%e&f=g"), "a%2Fb%3Fc%23d%25e%26f%3Dg");
        assert_eq!(url_segment("é"), "%C3%A9");
        assert_eq!(url_segment(""), "");
        assert_eq!(url_path("input/a b/<x>.csv"), "input/a%20b/%3Cx%3E.csv");
        assert_eq!(url_path("a//b/"), "a//b/");
    }

    proptest::proptest! {
        #[test]
        fn the_crate_encodes_as_the_hand_written_encoders_did(text in "\\PC*") {
            proptest::prop_assert_eq!(url_segment(&text), hand_encoded(&text));
        }

        #[test]
        fn encoded_segments_hold_only_unreserved_bytes_and_escapes(text in "\\PC*") {
            let encoded = url_segment(&text);
            proptest::prop_assert!(encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        }
    }

    #[test]
    fn colour_codes_go_and_text_stays() {
        assert_eq!(
            strip_ansi("\u{1b}[0;31mValueError\u{1b}[0m: bad"),
            "ValueError: bad"
        );
        assert_eq!(strip_ansi("plain é"), "plain é");
    }
}
