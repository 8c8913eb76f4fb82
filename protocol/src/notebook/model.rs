//! A notebook read as nbformat 4 JSON, checked enough to merge it safely,
//! and written back the way Jupyter writes it (one-space indent, sorted
//! keys, source as a list of lines), so a merged notebook reads in `git
//! diff` like one saved by JupyterLab.
//!
//! Notebooks arrive from members and from code in containers: they are
//! bounded in size and cell count, and `serde_json`'s recursion limit
//! turns deep JSON into an error, never a stack overflow.

use serde::Serialize;
use serde_json::{Map, Value};

use super::error::NotebookError;

/// Largest notebook merged cell by cell; larger ones (huge outputs) fall
/// back to the whole-file choice.
pub const MAX_NOTEBOOK_LEN: usize = 64 * 1024 * 1024;
/// Most cells merged cell by cell: aligning cells is quadratic at worst,
/// and a member's notebook must not make a sync take minutes.
pub const MAX_CELLS: usize = 5_000;

/// A parsed notebook: the document's own keys, and its cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Notebook {
    /// Every top-level key but `cells` (`metadata`, `nbformat`, …).
    pub top: Map<String, Value>,
    pub cells: Vec<Map<String, Value>>,
}

/// The source of a cell as one string, whether it was stored as a string
/// or as a list of lines.
pub fn source_of(cell: &Map<String, Value>) -> String {
    match cell.get("source") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(lines)) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// The cell's id, if it has a usable one (nbformat 4.5).
pub fn id_of(cell: &Map<String, Value>) -> Option<&str> {
    cell.get("id")
        .and_then(Value::as_str)
        .filter(|id| valid_id(id))
}

/// nbformat's rule for cell ids: 1 to 64 of `[a-zA-Z0-9-_]`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Notebook {
    /// Parses and checks a notebook: nbformat 4, an object of cells each
    /// with a known type and a source of text.
    pub fn parse(bytes: &[u8]) -> Result<Self, NotebookError> {
        if bytes.len() > MAX_NOTEBOOK_LEN {
            return Err(NotebookError::TooLarge {
                len: bytes.len(),
                max: MAX_NOTEBOOK_LEN,
            });
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| NotebookError::Json { why: e.to_string() })?;
        let Value::Object(mut top) = value else {
            return Err(NotebookError::Shape("not a JSON object".into()));
        };
        match top.get("nbformat").and_then(Value::as_u64) {
            Some(4) => {}
            Some(other) => return Err(NotebookError::Version(other)),
            None => return Err(NotebookError::Shape("no nbformat number".into())),
        }
        let Some(Value::Array(cells)) = top.remove("cells") else {
            return Err(NotebookError::Shape("no list of cells".into()));
        };
        if cells.len() > MAX_CELLS {
            return Err(NotebookError::TooManyCells {
                cells: cells.len(),
                max: MAX_CELLS,
            });
        }
        let cells = cells
            .into_iter()
            .enumerate()
            .map(|(n, cell)| check_cell(n, cell))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { top, cells })
    }

    /// The notebook as Jupyter writes it, with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut top = self.top.clone();
        top.insert(
            "cells".into(),
            Value::Array(
                self.cells
                    .iter()
                    .map(|c| Value::Object(as_written(c)))
                    .collect(),
            ),
        );
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut writer = serde_json::Serializer::with_formatter(&mut out, formatter);
        // Serialising a JSON value into memory cannot fail.
        let _ = Sorted(&Value::Object(top)).serialize(&mut writer);
        out.push(b'\n');
        out
    }
}

fn check_cell(n: usize, cell: Value) -> Result<Map<String, Value>, NotebookError> {
    let bad = |why: &str| NotebookError::Shape(format!("cell {}: {why}", n + 1));
    let Value::Object(cell) = cell else {
        return Err(bad("not an object"));
    };
    match cell.get("cell_type").and_then(Value::as_str) {
        Some("code" | "markdown" | "raw") => {}
        _ => return Err(bad("no known cell_type")),
    }
    match cell.get("source") {
        Some(Value::String(_)) => {}
        Some(Value::Array(lines)) if lines.iter().all(Value::is_string) => {}
        _ => return Err(bad("source is not text")),
    }
    if cell.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(bad("metadata is not an object"));
    }
    Ok(cell)
}

/// A cell with its source as a list of lines, as Jupyter stores it.
fn as_written(cell: &Map<String, Value>) -> Map<String, Value> {
    let mut cell = cell.clone();
    let source = source_of(&cell);
    cell.insert(
        "source".into(),
        Value::Array(
            super::lines::split_lines(&source)
                .into_iter()
                .map(|l| Value::String(l.to_owned()))
                .collect(),
        ),
    );
    cell
}

/// A JSON value serialised with its object keys sorted, whichever map
/// `serde_json` was built with.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serializer.serialize_map(Some(keys.len()))?;
                for key in keys {
                    out.serialize_entry(key, &Sorted(&map[key]))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Sorted(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notebook_is_written_as_jupyter_writes_it() {
        let text = r#"{"nbformat": 4, "nbformat_minor": 5, "metadata": {"z": 1, "a": 2},
            "cells": [{"id": "c1", "cell_type": "code", "source": "x = 1\ny = 2", "metadata": {},
            "outputs": [], "execution_count": null}]}"#;
        let notebook = Notebook::parse(text.as_bytes()).expect("parses");
        let written = String::from_utf8(notebook.to_bytes()).expect("utf-8");
        assert_eq!(
            written,
            "{\n \"cells\": [\n  {\n   \"cell_type\": \"code\",\n   \"execution_count\": null,\n   \"id\": \"c1\",\n   \"metadata\": {},\n   \"outputs\": [],\n   \"source\": [\n    \"x = 1\\n\",\n    \"y = 2\"\n   ]\n  }\n ],\n \"metadata\": {\n  \"a\": 2,\n  \"z\": 1\n },\n \"nbformat\": 4,\n \"nbformat_minor\": 5\n}\n"
        );
        assert_eq!(Notebook::parse(written.as_bytes()).expect("again"), {
            let mut n = notebook.clone();
            n.cells[0] = as_written(&n.cells[0]);
            n
        });
    }

    #[test]
    fn hostile_notebooks_are_refused_with_a_reason() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for (bytes, says) in [
            (b"not json".to_vec(), "not valid JSON"),
            (deep.into_bytes(), "not valid JSON"),
            (b"[]".to_vec(), "not a JSON object"),
            (br#"{"nbformat": 3, "cells": []}"#.to_vec(), "nbformat 3"),
            (br#"{"nbformat": 4}"#.to_vec(), "no list of cells"),
            (
                br#"{"nbformat": 4, "cells": [{"cell_type": "code", "source": 7}]}"#.to_vec(),
                "cell 1: source is not text",
            ),
            (
                br#"{"nbformat": 4, "cells": [{"cell_type": "evil", "source": ""}]}"#.to_vec(),
                "cell 1: no known cell_type",
            ),
        ] {
            let error = Notebook::parse(&bytes).expect_err("refused").to_string();
            assert!(error.contains(says), "{error} should say {says}");
        }
        let many = serde_json::json!({"nbformat": 4, "cells":
            vec![serde_json::json!({"cell_type": "raw", "source": ""}); MAX_CELLS + 1]});
        assert!(matches!(
            Notebook::parse(many.to_string().as_bytes()),
            Err(NotebookError::TooManyCells { .. })
        ));
        let huge = vec![b' '; MAX_NOTEBOOK_LEN + 1];
        assert!(matches!(
            Notebook::parse(&huge),
            Err(NotebookError::TooLarge { .. })
        ));
    }
}
