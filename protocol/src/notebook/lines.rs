//! Three-way merge of one cell's source, line by line (diff3): edits to
//! different lines of the same cell both land; edits that overlap or touch
//! are a conflict unless both sides made the same one.

use similar::{Algorithm, DiffOp, capture_diff_slices};

/// Longest source (in lines) merged line by line when both sides edit it.
pub const MAX_MERGED_LINES: usize = 10_000;

/// One side's change to the base: base lines `base` became side lines
/// `side`.
#[derive(Debug, Clone, Copy)]
struct Hunk {
    base: (usize, usize),
    side: (usize, usize),
}

/// The side's changes to `base`, adjacent operations joined into one hunk.
fn hunks(base: &[&str], side: &[&str]) -> Vec<Hunk> {
    let mut out: Vec<Hunk> = Vec::new();
    for op in capture_diff_slices(Algorithm::Myers, base, side) {
        let (b, s) = match op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete {
                old_index,
                old_len,
                new_index,
            } => ((old_index, old_index + old_len), (new_index, new_index)),
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => ((old_index, old_index), (new_index, new_index + new_len)),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (
                (old_index, old_index + old_len),
                (new_index, new_index + new_len),
            ),
        };
        match out.last_mut() {
            Some(last) if last.base.1 == b.0 && last.side.1 == s.0 => {
                last.base.1 = b.1;
                last.side.1 = s.1;
            }
            _ => out.push(Hunk { base: b, side: s }),
        }
    }
    out
}

/// What `side` made of base lines `from..to`, given its hunks inside it.
fn rewritten<'a>(
    base: &[&'a str],
    side: &[&'a str],
    hunks: &[Hunk],
    (from, to): (usize, usize),
) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut at = from;
    for h in hunks {
        out.extend_from_slice(&base[at..h.base.0]);
        out.extend_from_slice(&side[h.side.0..h.side.1]);
        at = h.base.1;
    }
    out.extend_from_slice(&base[at..to]);
    out
}

/// Splits text into lines that keep their line ends, as a notebook's
/// source list stores them.
pub fn split_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Merges `ours` and `theirs`, both made from `base`; `None` when their
/// edits overlap (or touch) and differ.
pub fn merge_text(base: &str, ours: &str, theirs: &str) -> Option<String> {
    if ours == theirs || theirs == base {
        return Some(ours.to_owned());
    }
    if ours == base {
        return Some(theirs.to_owned());
    }
    let (b, o, t) = (split_lines(base), split_lines(ours), split_lines(theirs));
    // Line diffs are quadratic at worst: a huge source edited on both
    // sides is left to the person rather than left to run for minutes.
    if [b.len(), o.len(), t.len()]
        .iter()
        .any(|n| *n > MAX_MERGED_LINES)
    {
        return None;
    }
    let (ho, ht) = (hunks(&b, &o), hunks(&b, &t));
    let (mut io, mut it) = (0, 0);
    let mut at = 0;
    let mut out: Vec<&str> = Vec::new();
    while io < ho.len() || it < ht.len() {
        // The next cluster: hunks of either side whose base ranges overlap
        // or touch, starting from the earliest.
        let first_ours = match (ho.get(io), ht.get(it)) {
            (Some(a), Some(b)) => a.base.0 <= b.base.0,
            (Some(_), None) => true,
            _ => false,
        };
        let start = if first_ours { ho[io].base } else { ht[it].base };
        let mut end = start.1;
        let (co, ct) = (io, it);
        loop {
            if let Some(h) = ho.get(io)
                && h.base.0 <= end
            {
                end = end.max(h.base.1);
                io += 1;
                continue;
            }
            if let Some(h) = ht.get(it)
                && h.base.0 <= end
            {
                end = end.max(h.base.1);
                it += 1;
                continue;
            }
            break;
        }
        out.extend_from_slice(&b[at..start.0]);
        let range = (start.0, end);
        let mine = rewritten(&b, &o, &ho[co..io], range);
        let yours = rewritten(&b, &t, &ht[ct..it], range);
        match (io > co, it > ct) {
            (true, false) => out.extend(mine),
            (false, true) => out.extend(yours),
            _ if mine == yours => out.extend(mine),
            _ => return None,
        }
        at = end;
    }
    out.extend_from_slice(&b[at..]);
    Some(out.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_to_different_lines_both_land() {
        let base = "a\nb\nc\nd\ne\n";
        let ours = "A\nb\nc\nd\ne\n";
        let theirs = "a\nb\nc\nd\nE\nf\n";
        assert_eq!(
            merge_text(base, ours, theirs).as_deref(),
            Some("A\nb\nc\nd\nE\nf\n")
        );
        assert_eq!(
            merge_text(base, theirs, ours),
            merge_text(base, ours, theirs)
        );
    }

    #[test]
    fn the_same_line_changed_differently_is_a_conflict() {
        assert_eq!(merge_text("a\nb\nc\n", "a\nB\nc\n", "a\nb2\nc\n"), None);
        // Touching edits are not guessed at either.
        assert_eq!(merge_text("a\nb\n", "A\nb\n", "a\nB\n"), None);
        // The same edit on both sides is no conflict.
        assert_eq!(
            merge_text("a\nb\nc\n", "a\nB\nc\nx\n", "a\nB\nc\n").as_deref(),
            Some("a\nB\nc\nx\n"),
            "the shared edit once, and ours' line after it",
        );
        assert_eq!(
            merge_text("a\nb\nc\n", "a\nB\nc\n", "a\nB\nc\n").as_deref(),
            Some("a\nB\nc\n")
        );
    }

    #[test]
    fn a_huge_source_edited_on_both_sides_is_a_conflict_not_a_long_wait() {
        let base = "x\n".repeat(MAX_MERGED_LINES + 1);
        let ours = format!("a\n{base}");
        let theirs = format!("{base}z\n");
        assert_eq!(merge_text(&base, &ours, &theirs), None);
        assert_eq!(merge_text(&base, &ours, &base), Some(ours.clone()));
    }

    #[test]
    fn texts_without_a_final_newline_merge() {
        assert_eq!(
            merge_text(
                "x = 1\ny = 2\nz = 3",
                "x = 10\ny = 2\nz = 3",
                "x = 1\ny = 2\nz = 30"
            )
            .as_deref(),
            Some("x = 10\ny = 2\nz = 30")
        );
    }
}
