//! What changed in a notebook between two versions, cell by cell: cells
//! added, removed, moved and changed, with a line diff of each changed
//! source and a summary of outputs instead of their JSON, so a person
//! reads "cell `df = load()` changed" and never a diff of base64 PNGs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use similar::{Algorithm, DiffOp, TextDiff, capture_diff_slices};

use super::align::keys;
use super::model::{Notebook, source_of};

/// How one cell changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellChange {
    Added,
    Removed,
    /// Its source, type or metadata changed (perhaps its place too).
    Changed,
    /// Only its place changed.
    Moved,
    /// Only its outputs changed: it was run again.
    Rerun,
}

/// One cell's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellDelta {
    pub change: CellChange,
    /// The cell's place in the newer version (the older for a removed one),
    /// counted from 1.
    pub position: usize,
    /// For people: the cell's kind and first line.
    pub label: String,
    /// A unified diff of the source (added and removed cells: all of it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// What the outputs were and are, summarised ("2 outputs: stream,
    /// image/png").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<(String, String)>,
}

/// Longest source diff kept per cell.
const MAX_CELL_PATCH: usize = 16 * 1024;

fn label(cell: &Map<String, Value>) -> String {
    let kind = cell
        .get("cell_type")
        .and_then(Value::as_str)
        .unwrap_or("cell");
    let source = source_of(cell);
    let first = source
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(empty)");
    let first: String = first.chars().take(60).collect();
    format!("{kind} `{first}`")
}

/// "2 outputs: stream, image/png", or "no output".
pub fn summarise_outputs(cell: &Map<String, Value>) -> String {
    let Some(Value::Array(outputs)) = cell.get("outputs") else {
        return "no output".into();
    };
    if outputs.is_empty() {
        return "no output".into();
    }
    let mut kinds: Vec<String> = Vec::new();
    for output in outputs {
        let kind = match output.get("output_type").and_then(Value::as_str) {
            Some("stream") => "text".to_owned(),
            Some("error") => "error".to_owned(),
            Some(_) => output
                .get("data")
                .and_then(Value::as_object)
                .and_then(|d| {
                    d.keys()
                        .find(|k| k.starts_with("image/"))
                        .or_else(|| d.keys().next())
                        .cloned()
                })
                .unwrap_or_else(|| "display".to_owned()),
            None => "output".to_owned(),
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let count = if outputs.len() == 1 {
        "1 output".to_owned()
    } else {
        format!("{} outputs", outputs.len())
    };
    format!("{count}: {}", kinds.join(", "))
}

fn without(cell: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    let mut cell = cell.clone();
    for key in keys {
        cell.remove(*key);
    }
    let source = source_of(&cell);
    cell.insert("source".into(), Value::String(source));
    cell
}

/// Longest source compared line by line; longer ones are summarised.
const MAX_COMPARED_SOURCE: usize = 1024 * 1024;

fn patch(before: &str, after: &str) -> String {
    if before.len() > MAX_COMPARED_SOURCE || after.len() > MAX_COMPARED_SOURCE {
        return format!(
            "(source too long to compare here: {} lines before, {} after)\n",
            before.lines().count(),
            after.lines().count()
        );
    }
    let text = TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(2)
        .to_string();
    if text.len() <= MAX_CELL_PATCH {
        return text;
    }
    let mut cut = MAX_CELL_PATCH;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}\n… (cut)\n", &text[..cut])
}

/// The cell-level changes from `old` to `new`, in the newer version's
/// order (removed cells where they were).
pub fn diff(old: &Notebook, new: &Notebook) -> Vec<CellDelta> {
    let k = keys(&old.cells, &new.cells, &new.cells);
    let old_at: std::collections::HashMap<&String, usize> =
        k.base.iter().enumerate().map(|(i, key)| (key, i)).collect();
    let new_at: std::collections::HashMap<&String, usize> =
        k.ours.iter().enumerate().map(|(i, key)| (key, i)).collect();
    // Cells both have, in each order: those off the longest common order
    // moved.
    let old_common: Vec<&String> = k.base.iter().filter(|x| new_at.contains_key(x)).collect();
    let new_common: Vec<&String> = k.ours.iter().filter(|x| old_at.contains_key(x)).collect();
    let mut moved = std::collections::HashSet::new();
    for op in capture_diff_slices(Algorithm::Myers, &old_common, &new_common) {
        if let DiffOp::Insert {
            new_index, new_len, ..
        }
        | DiffOp::Replace {
            new_index, new_len, ..
        } = op
        {
            moved.extend(new_common[new_index..new_index + new_len].iter().copied());
        }
    }
    let mut out = Vec::new();
    // Removed cells come before the next cell the old version had.
    let mut removed: Vec<(usize, CellDelta)> = k
        .base
        .iter()
        .enumerate()
        .filter(|(_, key)| !new_at.contains_key(key))
        .map(|(i, _)| {
            let cell = &old.cells[i];
            (
                i,
                CellDelta {
                    change: CellChange::Removed,
                    position: i + 1,
                    label: label(cell),
                    source: patch(&source_of(cell), ""),
                    outputs: None,
                },
            )
        })
        .collect();
    removed.reverse();
    // For each place in the new version, the old place of the next cell
    // both have: cells removed before it are shown before what was added.
    let mut next_kept = vec![usize::MAX; k.ours.len() + 1];
    for n in (0..k.ours.len()).rev() {
        next_kept[n] = old_at.get(&k.ours[n]).copied().unwrap_or(next_kept[n + 1]);
    }
    for (n, key) in k.ours.iter().enumerate() {
        let cell = &new.cells[n];
        while removed.last().is_some_and(|(at, _)| *at < next_kept[n]) {
            if let Some((_, delta)) = removed.pop() {
                out.push(delta);
            }
        }
        let Some(&i) = old_at.get(key) else {
            out.push(CellDelta {
                change: CellChange::Added,
                position: n + 1,
                label: label(cell),
                source: patch("", &source_of(cell)),
                outputs: cell
                    .contains_key("outputs")
                    .then(|| ("no output".to_owned(), summarise_outputs(cell))),
            });
            continue;
        };
        let before = &old.cells[i];
        let run = ["outputs", "execution_count"];
        let same_cell = without(before, &run) == without(cell, &run);
        let same_outputs = before.get("outputs") == cell.get("outputs");
        let change = match (same_cell, same_outputs, moved.contains(key)) {
            (true, true, false) => continue,
            (true, true, true) => CellChange::Moved,
            (true, false, _) => CellChange::Rerun,
            (false, _, _) => CellChange::Changed,
        };
        out.push(CellDelta {
            change,
            position: n + 1,
            label: label(cell),
            source: patch(&source_of(before), &source_of(cell)),
            outputs: (!same_outputs).then(|| (summarise_outputs(before), summarise_outputs(cell))),
        });
    }
    while let Some((_, delta)) = removed.pop() {
        out.push(delta);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nb(cells: Value) -> Notebook {
        let text = json!({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells});
        Notebook::parse(text.to_string().as_bytes()).expect("notebook")
    }

    fn code(id: &str, source: &str, outputs: Value) -> Value {
        json!({"id": id, "cell_type": "code", "metadata": {}, "source": source,
               "execution_count": null, "outputs": outputs})
    }

    #[test]
    fn a_notebook_change_reads_as_cells_added_removed_changed_and_rerun() {
        let png = json!([{"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}, "metadata": {}}]);
        let old = nb(json!([
            code("a", "import pandas as pd\n", json!([])),
            code("b", "df = pd.read_csv('x.csv')\ndf.head()\n", json!([])),
            code("c", "df.plot()\n", json!([])),
            code("d", "print('bye')\n", json!([])),
        ]));
        let new = nb(json!([
            code("a", "import pandas as pd\n", json!([])),
            code("b", "df = pd.read_csv('y.csv')\ndf.head()\n", json!([])),
            code("c", "df.plot()\n", png),
            code("e", "df.describe()\n", json!([])),
        ]));
        let d = diff(&old, &new);
        let changes: Vec<(CellChange, usize)> = d.iter().map(|c| (c.change, c.position)).collect();
        assert_eq!(
            changes,
            [
                (CellChange::Changed, 2),
                (CellChange::Rerun, 3),
                (CellChange::Removed, 4),
                (CellChange::Added, 4),
            ]
        );
        assert!(
            d[0].source.contains("-df = pd.read_csv('x.csv')"),
            "{}",
            d[0].source
        );
        assert!(d[0].source.contains("+df = pd.read_csv('y.csv')"));
        assert_eq!(
            d[1].outputs,
            Some(("no output".into(), "1 output: image/png".into()))
        );
        assert!(
            !d[1].source.contains("iVBOR"),
            "outputs are summarised, not shown"
        );
        assert_eq!(d[2].label, "code `print('bye')`");
    }

    #[test]
    fn a_moved_cell_is_moved_not_removed_and_added() {
        let old = nb(json!([
            code("a", "1\n", json!([])),
            code("b", "2\n", json!([])),
            code("c", "3\n", json!([]))
        ]));
        let new = nb(json!([
            code("c", "3\n", json!([])),
            code("a", "1\n", json!([])),
            code("b", "2\n", json!([]))
        ]));
        let d = diff(&old, &new);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].change, CellChange::Moved);
        assert_eq!(d[0].position, 1);
    }
}
