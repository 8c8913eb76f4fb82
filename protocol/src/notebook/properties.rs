//! Property tests of the three-way cell merge: an unchanged side gives
//! the other side back, a merge without conflicts does not depend on which
//! side is ours, and every result is a notebook again.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{Choice, Notebook, merge};

/// One change a person makes to a notebook.
#[derive(Debug, Clone)]
enum Edit {
    /// Replaces line `line` of cell `cell` (both modulo the lengths).
    Line {
        cell: usize,
        line: usize,
        text: u8,
    },
    AddLine {
        cell: usize,
        text: u8,
    },
    Delete {
        cell: usize,
    },
    Insert {
        at: usize,
        text: u8,
        markdown: bool,
    },
    Move {
        from: usize,
        to: usize,
    },
    /// Runs the cell: new outputs and count.
    Run {
        cell: usize,
        count: u8,
    },
    Tag {
        cell: usize,
        text: u8,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), any::<u8>()).prop_map(|(cell, line, text)| Edit::Line {
            cell,
            line,
            text
        }),
        (any::<usize>(), any::<u8>()).prop_map(|(cell, text)| Edit::AddLine { cell, text }),
        any::<usize>().prop_map(|cell| Edit::Delete { cell }),
        (any::<usize>(), any::<u8>(), any::<bool>())
            .prop_map(|(at, text, markdown)| Edit::Insert { at, text, markdown }),
        (any::<usize>(), any::<usize>()).prop_map(|(from, to)| Edit::Move { from, to }),
        (any::<usize>(), any::<u8>()).prop_map(|(cell, count)| Edit::Run { cell, count }),
        (any::<usize>(), any::<u8>()).prop_map(|(cell, text)| Edit::Tag { cell, text }),
    ]
}

fn code_cell(id: &str, source: &str) -> Map<String, Value> {
    let Value::Object(cell) = json!({
        "id": id, "cell_type": "code", "metadata": {}, "source": source,
        "outputs": [], "execution_count": null,
    }) else {
        unreachable!("a literal object")
    };
    cell
}

fn base(cells: usize, lines: usize, ids: bool) -> Notebook {
    let cells = (0..cells)
        .map(|n| {
            let source: String = (0..lines).map(|l| format!("x{n}_{l} = {l}\n")).collect();
            let mut cell = code_cell(&format!("c{n}"), &source);
            if !ids {
                cell.remove("id");
            }
            cell
        })
        .collect();
    let Value::Object(top) = json!({
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }) else {
        unreachable!("a literal object")
    };
    Notebook { top, cells }
}

/// Applies `edits`; new cells get ids from `side` so the two sides never
/// mint the same one by chance.
fn apply(notebook: &Notebook, edits: &[Edit], side: &str, ids: bool) -> Notebook {
    let mut nb = notebook.clone();
    for (n, e) in edits.iter().enumerate() {
        let len = nb.cells.len();
        match *e {
            Edit::Line { cell, line, text } if len > 0 => {
                let c = &mut nb.cells[cell % len];
                let mut lines: Vec<String> =
                    super::source_of(c).lines().map(str::to_owned).collect();
                if !lines.is_empty() {
                    let l = line % lines.len();
                    lines[l] = format!("{side}{text} = {l}");
                }
                c.insert("source".into(), Value::String(lines.join("\n") + "\n"));
            }
            Edit::AddLine { cell, text } if len > 0 => {
                let c = &mut nb.cells[cell % len];
                let source = super::source_of(c) + &format!("{side}_added{text}\n");
                c.insert("source".into(), Value::String(source));
            }
            Edit::Delete { cell } if len > 0 => {
                nb.cells.remove(cell % len);
            }
            Edit::Insert { at, text, markdown } => {
                let mut cell = code_cell(&format!("{side}{n}"), &format!("{side} new {text}\n"));
                if markdown {
                    cell.insert("cell_type".into(), "markdown".into());
                    cell.remove("outputs");
                    cell.remove("execution_count");
                }
                if !ids {
                    cell.remove("id");
                }
                nb.cells.insert(at % (len + 1), cell);
            }
            Edit::Move { from, to } if len > 1 => {
                let cell = nb.cells.remove(from % len);
                nb.cells.insert(to % len, cell);
            }
            Edit::Run { cell, count } if len > 0 => {
                let c = &mut nb.cells[cell % len];
                if c.contains_key("outputs") {
                    c.insert(
                        "outputs".into(),
                        json!([{"output_type": "stream", "name": "stdout", "text": format!("{side}{count}\n")}]),
                    );
                    c.insert("execution_count".into(), json!(count));
                }
            }
            Edit::Tag { cell, text } if len > 0 => {
                let c = &mut nb.cells[cell % len];
                if let Some(Value::Object(m)) = c.get_mut("metadata") {
                    m.insert(format!("tag_{side}"), json!(text));
                }
            }
            _ => {}
        }
    }
    nb
}

/// Checks a written notebook as nbformat 4.5 asks: it parses, ids are
/// valid and unique, code cells have outputs and a count.
fn assert_valid(bytes: &[u8]) {
    let nb = Notebook::parse(bytes).expect("the merge parses as a notebook");
    let mut ids = std::collections::HashSet::new();
    for cell in &nb.cells {
        if let Some(id) = cell.get("id") {
            let id = id.as_str().expect("a string id");
            assert!(super::valid_id(id), "{id}");
            assert!(ids.insert(id.to_owned()), "id {id} repeats");
        }
        if cell["cell_type"] == "code" {
            assert!(cell["outputs"].is_array());
            assert!(cell["execution_count"].is_null() || cell["execution_count"].is_u64());
        }
    }
}

fn scenario() -> impl Strategy<Value = (usize, usize, bool, Vec<Edit>, Vec<Edit>)> {
    (
        0usize..12,
        1usize..5,
        any::<bool>(),
        prop::collection::vec(edit(), 0..8),
        prop::collection::vec(edit(), 0..8),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn merging_with_an_unchanged_side_gives_the_other_side(
        (cells, lines, ids, edits, _) in scenario()
    ) {
        let b = base(cells, lines, ids);
        let t = apply(&b, &edits, "t", ids);
        for merged in [merge(&b, &b, &t), merge(&b, &t, &b)] {
            let clean = merged.clean().expect("no conflict with an unchanged side");
            prop_assert_eq!(
                String::from_utf8(clean.to_bytes()).expect("utf-8"),
                String::from_utf8(t.to_bytes()).expect("utf-8")
            );
        }
    }

    #[test]
    fn a_merge_without_conflicts_is_the_same_whichever_side_is_ours(
        (cells, lines, ids, ours, theirs) in scenario()
    ) {
        let b = base(cells, lines, ids);
        let (o, t) = (apply(&b, &ours, "o", ids), apply(&b, &theirs, "t", ids));
        let (one, other) = (merge(&b, &o, &t), merge(&b, &t, &o));
        prop_assert_eq!(one.is_clean(), other.is_clean());
        if let (Some(x), Some(y)) = (one.clean(), other.clean()) {
            prop_assert_eq!(
                String::from_utf8(x.to_bytes()).expect("utf-8"),
                String::from_utf8(y.to_bytes()).expect("utf-8")
            );
        }
    }

    #[test]
    fn every_result_is_a_valid_notebook_whatever_is_chosen(
        (cells, lines, ids, ours, theirs) in scenario(),
        pick in 0u8..3,
    ) {
        let b = base(cells, lines, ids);
        let (o, t) = (apply(&b, &ours, "o", ids), apply(&b, &theirs, "t", ids));
        let merged = merge(&b, &o, &t);
        let choice = [Choice::Ours, Choice::Theirs, Choice::Both][pick as usize];
        assert_valid(&merged.resolve(|_| choice).to_bytes());
    }

    #[test]
    fn edits_on_both_sides_to_different_cells_all_land(
        cells in 4usize..12,
        lines in 1usize..4,
        a in any::<u8>(),
        b_text in any::<u8>(),
    ) {
        let b = base(cells, lines, true);
        let o = apply(&b, &[Edit::Line { cell: 0, line: 0, text: a }], "o", true);
        let t = apply(&b, &[Edit::Line { cell: cells - 1, line: 0, text: b_text }], "t", true);
        let merged = merge(&b, &o, &t).clean().expect("different cells never conflict");
        prop_assert_eq!(&merged.cells[0]["source"], &o.cells[0]["source"]);
        prop_assert_eq!(&merged.cells[cells - 1]["source"], &t.cells[cells - 1]["source"]);
    }
}

#[test]
fn the_same_line_of_one_cell_is_a_conflict_settled_either_way() {
    let b = base(3, 2, true);
    let o = apply(
        &b,
        &[Edit::Line {
            cell: 1,
            line: 0,
            text: 1,
        }],
        "o",
        true,
    );
    let t = apply(
        &b,
        &[Edit::Line {
            cell: 1,
            line: 0,
            text: 2,
        }],
        "t",
        true,
    );
    let merged = merge(&b, &o, &t);
    assert_eq!(merged.conflicts.len(), 1, "{:?}", merged.conflicts);
    assert_eq!(merged.conflicts[0].id, "cell:c1");
    assert_eq!(merged.conflicts[0].kind, super::ConflictKind::BothEdited);
    let mine = merged.resolve(|_| Choice::Ours);
    assert_eq!(mine.cells[1]["source"], o.cells[1]["source"]);
    let theirs = merged.resolve(|_| Choice::Theirs);
    assert_eq!(theirs.cells[1]["source"], t.cells[1]["source"]);
    let both = merged.resolve(|_| Choice::Both);
    assert_eq!(both.cells.len(), 4);
    assert_valid(&both.to_bytes());
}

#[test]
fn a_cell_deleted_on_one_side_and_edited_on_the_other_is_a_conflict() {
    let b = base(3, 2, true);
    let o = apply(&b, &[Edit::Delete { cell: 1 }], "o", true);
    let t = apply(&b, &[Edit::AddLine { cell: 1, text: 9 }], "t", true);
    let merged = merge(&b, &o, &t);
    assert_eq!(merged.conflicts.len(), 1);
    assert_eq!(merged.conflicts[0].kind, super::ConflictKind::DeletedByUs);
    assert_eq!(merged.resolve(|_| Choice::Ours).cells.len(), 2);
    assert_eq!(merged.resolve(|_| Choice::Theirs).cells.len(), 3);
    // Rerunning a cell the other side deleted is no conflict.
    let ran = apply(&b, &[Edit::Run { cell: 1, count: 4 }], "t", true);
    assert_eq!(merge(&b, &o, &ran).clean().expect("clean").cells.len(), 2);
}

#[test]
fn outputs_follow_the_kept_source_and_are_cleared_when_no_side_ran_it() {
    let b = base(2, 3, true);
    let ours_edited_and_ran = [
        Edit::Line {
            cell: 0,
            line: 0,
            text: 1,
        },
        Edit::Run { cell: 0, count: 7 },
    ];
    // Ours edited and ran cell 0; theirs only ran it: ours' run is kept.
    let o = apply(&b, &ours_edited_and_ran, "o", true);
    let t = apply(&b, &[Edit::Run { cell: 0, count: 3 }], "t", true);
    let merged = merge(&b, &o, &t).clean().expect("clean");
    assert_eq!(merged.cells[0]["execution_count"], 7);
    // Both edited different lines: the merged source never ran.
    let o = apply(&b, &ours_edited_and_ran, "o", true);
    let t = apply(
        &b,
        &[
            Edit::Line {
                cell: 0,
                line: 2,
                text: 2,
            },
            Edit::Run { cell: 0, count: 3 },
        ],
        "t",
        true,
    );
    let merged = merge(&b, &o, &t);
    let clean = merged.clean().expect("clean");
    assert_eq!(clean.cells[0]["execution_count"], Value::Null);
    assert_eq!(clean.cells[0]["outputs"], json!([]));
    assert!(
        merged.notes[0].contains("outputs cleared"),
        "{:?}",
        merged.notes
    );
}
