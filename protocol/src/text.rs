//! Text from programs, made fit to show: the activity feed (cell
//! tracebacks) and the web UI (notebook errors) both read Jupyter output.

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

    #[test]
    fn colour_codes_go_and_text_stays() {
        assert_eq!(
            strip_ansi("\u{1b}[0;31mValueError\u{1b}[0m: bad"),
            "ValueError: bad"
        );
        assert_eq!(strip_ansi("plain é"), "plain é");
    }
}
