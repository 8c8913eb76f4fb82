//! Which cells of the base, ours and theirs are the same cell: by cell id
//! when every cell of the three has a unique one (nbformat 4.5), else by
//! content: cells equal in type and source match in order, and the cells
//! left between two matches pair up in order as edits of each other.

use std::collections::HashSet;

use serde_json::{Map, Value};
use similar::{Algorithm, DiffOp, capture_diff_slices};

use super::model::{id_of, source_of};

type Cell = Map<String, Value>;

/// A key per cell of each version; equal keys name the same cell.
#[derive(Debug)]
pub struct Keys {
    pub base: Vec<String>,
    pub ours: Vec<String>,
    pub theirs: Vec<String>,
    /// Whether the cells were matched by id (else by content).
    pub by_id: bool,
}

pub fn keys(base: &[Cell], ours: &[Cell], theirs: &[Cell]) -> Keys {
    if let (Some(b), Some(o), Some(t)) = (ids(base), ids(ours), ids(theirs)) {
        return Keys {
            base: b,
            ours: o,
            theirs: t,
            by_id: true,
        };
    }
    let base_keys: Vec<String> = (0..base.len()).map(|n| format!("base-{n}")).collect();
    Keys {
        ours: by_content(base, &base_keys, ours),
        theirs: by_content(base, &base_keys, theirs),
        base: base_keys,
        by_id: false,
    }
}

/// The cells' ids, if every cell has a valid one and none repeats.
fn ids(cells: &[Cell]) -> Option<Vec<String>> {
    let mut seen = HashSet::new();
    cells
        .iter()
        .map(|c| {
            let id = id_of(c)?;
            seen.insert(id).then(|| id.to_owned())
        })
        .collect()
}

fn content(cell: &Cell) -> (String, String) {
    (
        cell.get("cell_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        source_of(cell),
    )
}

/// Keys for `side`'s cells: a base cell's key where it matches one, else
/// a key made from the cell's content (so a cell both sides added alike
/// gets the same key on both).
fn by_content(base: &[Cell], base_keys: &[String], side: &[Cell]) -> Vec<String> {
    let b: Vec<_> = base.iter().map(content).collect();
    let s: Vec<_> = side.iter().map(content).collect();
    let mut keys: Vec<Option<String>> = vec![None; side.len()];
    for op in capture_diff_slices(Algorithm::Myers, &b, &s) {
        match op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                for i in 0..len {
                    keys[new_index + i] = Some(base_keys[old_index + i].clone());
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                for i in 0..old_len.min(new_len) {
                    // An edit keeps its kind; a markdown cell where a code
                    // cell was is another cell.
                    if b[old_index + i].0 == s[new_index + i].0 {
                        keys[new_index + i] = Some(base_keys[old_index + i].clone());
                    }
                }
            }
            DiffOp::Delete { .. } | DiffOp::Insert { .. } => {}
        }
    }
    let mut seen = HashSet::new();
    keys.into_iter()
        .zip(&s)
        .map(|(key, (kind, source))| {
            key.unwrap_or_else(|| {
                let hash = blake3::hash(format!("{kind}\0{source}").as_bytes()).to_hex();
                let mut n = 0;
                loop {
                    let key = format!("new-{}-{n}", &hash[..16]);
                    if seen.insert(key.clone()) {
                        break key;
                    }
                    n += 1;
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(id: Option<&str>, source: &str) -> Cell {
        let mut c = Map::new();
        c.insert("cell_type".into(), "code".into());
        c.insert("source".into(), source.into());
        if let Some(id) = id {
            c.insert("id".into(), id.into());
        }
        c
    }

    #[test]
    fn ids_are_used_only_when_every_cell_has_a_unique_one() {
        let with = [cell(Some("a"), "x"), cell(Some("b"), "y")];
        let k = keys(&with, &with, &with);
        assert!(k.by_id);
        assert_eq!(k.ours, ["a", "b"]);
        let repeated = [cell(Some("a"), "x"), cell(Some("a"), "y")];
        assert!(!keys(&with, &repeated, &with).by_id);
        let missing = [cell(None, "x"), cell(Some("b"), "y")];
        assert!(!keys(&missing, &with, &with).by_id);
        let bad = [cell(Some("../x"), "x"), cell(Some("b"), "y")];
        assert!(!keys(&with, &bad, &with).by_id);
    }

    #[test]
    fn without_ids_edited_cells_pair_with_their_base_cell() {
        let base = [cell(None, "a"), cell(None, "b"), cell(None, "c")];
        let ours = [
            cell(None, "a"),
            cell(None, "B"),
            cell(None, "c"),
            cell(None, "d"),
        ];
        let theirs = [cell(None, "d"), cell(None, "a"), cell(None, "c")];
        let k = keys(&base, &ours, &theirs);
        assert_eq!(k.ours[..3], ["base-0", "base-1", "base-2"]);
        assert_eq!(k.theirs[1..], ["base-0", "base-2"]);
        assert_eq!(k.ours[3], k.theirs[0], "the same new cell on both sides");
    }
}
