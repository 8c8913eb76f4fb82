//! Notebooks changed on two nodes merge cell by cell: edits to different
//! cells both land with no conflict, the same cell changed on both sides
//! is one conflict settled per cell, and a notebook that is not nbformat 4
//! falls back to the whole-file choice, saying why.

use std::fs;

use serde_json::{Value, json};
use tandem_e2e::{TestNode, git};

fn notebook(cells: &[(&str, &str)]) -> Value {
    json!({
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": cells.iter().map(|(id, source)| json!({
            "id": id, "cell_type": "code", "metadata": {}, "execution_count": null,
            "outputs": [], "source": source,
        })).collect::<Vec<_>>(),
    })
}

fn write(node: &TestNode, notebook: &Value) {
    let text = serde_json::to_string_pretty(notebook).expect("json");
    fs::write(
        node.project_dir("nb").join("code/analysis.ipynb"),
        text + "\n",
    )
    .expect("write the notebook");
}

fn read(node: &TestNode) -> Value {
    let text = fs::read_to_string(node.project_dir("nb").join("code/analysis.ipynb"))
        .expect("read the notebook");
    serde_json::from_str(&text).expect("the notebook is JSON")
}

fn source(notebook: &Value, n: usize) -> String {
    match &notebook["cells"][n]["source"] {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        other => panic!("no source in cell {n}: {other}"),
    }
}

fn head(node: &TestNode) -> String {
    git(&node.project_dir("nb"), &["rev-parse", "HEAD"])
        .trim()
        .to_owned()
}

/// Ada's project `nb` with a four-cell notebook, cloned by Bob as writer;
/// automatic sync off on both so each sync below is the one asked for.
fn shared_notebook() -> (TestNode, TestNode) {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    ada.run(&["project", "create", "nb"]).expect_ok("create");
    ada.run(&["sync", "nb", "--auto", "off"])
        .expect_ok("auto off");
    write(
        &ada,
        &notebook(&[
            ("c0", "import math\n"),
            ("c1", "x = 1\ny = 2\nz = 3\n"),
            ("c2", "print(x + y)\n"),
            ("c3", "w = math.pi\n"),
        ]),
    );
    ada.run(&["sweep", "nb"]).expect_ok("sweep");
    ada.run(&["share", "nb", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    bob.run(&["project", "clone", &ada.project_id("nb")])
        .expect_ok("clone");
    bob.run(&["sync", "nb", "--auto", "off"])
        .expect_ok("auto off");
    (ada, bob)
}

fn edit(node: &TestNode, f: impl FnOnce(&mut Value)) {
    let mut nb = read(node);
    f(&mut nb);
    write(node, &nb);
    node.run(&["sweep", "nb"]).expect_ok("sweep");
}

fn set_source(nb: &mut Value, n: usize, text: &str) {
    nb["cells"][n]["source"] = json!(text);
}

#[test]
fn edits_in_different_cells_merge_and_the_same_cell_is_settled_per_cell() {
    let (ada, bob) = shared_notebook();

    // Different cells, and a cell added: merged, no conflict.
    edit(&ada, |nb| {
        set_source(nb, 0, "import math\nimport statistics\n");
        nb["cells"][0]["execution_count"] = json!(4);
        nb["cells"][0]["outputs"] =
            json!([{"output_type": "stream", "name": "stdout", "text": ["ada ran it\n"]}]);
    });
    edit(&bob, |nb| {
        set_source(nb, 3, "w = math.tau\n");
        nb["cells"].as_array_mut().expect("cells").push(json!({
            "id": "bob-new", "cell_type": "markdown", "metadata": {}, "source": "Bob's notes\n",
        }));
    });
    let merged = ada.run(&["sync", "nb"]);
    assert_eq!(
        merged.code,
        Some(0),
        "no conflict: {}{}",
        merged.stdout,
        merged.stderr
    );
    let nb = read(&ada);
    assert_eq!(source(&nb, 0), "import math\nimport statistics\n");
    assert_eq!(
        nb["cells"][0]["execution_count"], 4,
        "ada's run kept with her source"
    );
    assert_eq!(source(&nb, 3), "w = math.tau\n");
    assert_eq!(source(&nb, 4), "Bob's notes\n");
    assert_eq!(nb["cells"].as_array().map(Vec::len), Some(5));
    // Written as Jupyter writes notebooks: one-space indent, source lines.
    let text = fs::read_to_string(ada.project_dir("nb").join("code/analysis.ipynb")).expect("read");
    assert!(text.starts_with("{\n \"cells\": [\n  {\n"), "{text}");
    assert!(nb["cells"][1]["source"].is_array());
    git(&ada.project_dir("nb"), &["fsck", "--strict"]);
    // What the merge brought, as cells rather than JSON.
    let merge = head(&ada);
    let diff = ada
        .run(&["diff", "nb", &format!("before:{merge}"), &merge, "--json"])
        .expect_ok("diff")
        .json();
    let file = &diff["files"][0];
    assert_eq!(file["path"], "code/analysis.ipynb", "{diff}");
    assert!(file.get("patch").is_none(), "no JSON diff: {diff}");
    let changes: Vec<(String, u64)> = file["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap_or_default().to_owned(),
                c["position"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [("changed".to_owned(), 4), ("added".to_owned(), 5)],
        "{diff}"
    );
    let text = ada
        .run(&["diff", "nb", &format!("before:{merge}"), &merge])
        .expect_ok("diff")
        .stdout;
    assert!(
        text.contains("cell 4 changed: code `w = math.tau`"),
        "{text}"
    );
    assert!(text.contains("+w = math.tau"), "{text}");
    bob.run(&["sync", "nb"]).expect_ok("bob gets the merge");
    assert_eq!(head(&ada), head(&bob));

    // The same line of one cell: one conflict, for that cell only; the
    // other side's edit elsewhere in the notebook is merged regardless.
    edit(&ada, |nb| set_source(nb, 1, "x = 10\ny = 2\nz = 3\n"));
    edit(&bob, |nb| {
        set_source(nb, 1, "x = 100\ny = 2\nz = 3\n");
        set_source(nb, 2, "print(x * y)\n");
    });
    let before = head(&ada);
    let conflicted = ada.run(&["sync", "nb"]);
    assert_eq!(conflicted.code, Some(3), "{}", conflicted.stdout);
    assert!(
        conflicted.stdout.contains("code/analysis.ipynb"),
        "{}",
        conflicted.stdout
    );
    assert_eq!(head(&ada), before, "nothing changed yet");
    let shown = ada
        .run(&["sync", "nb", "--show-conflicts", "--json"])
        .expect_ok("show conflicts")
        .json();
    let file = &shown["files"][0];
    assert_eq!(file["path"], "code/analysis.ipynb", "{shown}");
    let cells = file["cells"].as_array().expect("cell conflicts");
    assert_eq!(cells.len(), 1, "{shown}");
    assert_eq!(cells[0]["id"], "cell:c1");
    assert_eq!(cells[0]["kind"], "both-edited");
    assert_eq!(
        cells[0]["ours"]["source"], "x = 10\ny = 2\nz = 3\n",
        "{shown}"
    );
    let text = ada
        .run(&["sync", "nb", "--show-conflicts"])
        .expect_ok("show conflicts")
        .stdout;
    assert!(text.contains("code/analysis.ipynb:cell:c1"), "{text}");
    assert!(text.contains("| x = 100"), "{text}");

    // A choice for a conflict that is not there is refused, not ignored.
    ada.run(&[
        "sync",
        "nb",
        "--resolve",
        "ours",
        "--cell",
        "code/analysis.ipynb:cell:nope=theirs",
    ])
    .expect_err("unknown conflict", "has no conflict \"cell:nope\"");
    ada.run(&[
        "sync",
        "nb",
        "--resolve",
        "keep-both",
        "--cell",
        "code/analysis.ipynb:cell:c1=theirs",
    ])
    .expect_err(
        "cells with keep-both",
        "--cell goes with --resolve ours or --resolve theirs",
    );
    assert_eq!(head(&ada), before);

    // Keep both: the two versions of the cell, one after the other.
    ada.run(&[
        "sync",
        "nb",
        "--resolve",
        "ours",
        "--cell",
        "code/analysis.ipynb:cell:c1=both",
    ])
    .expect_ok("settle per cell");
    let nb = read(&ada);
    assert_eq!(nb["cells"].as_array().map(Vec::len), Some(6), "{nb}");
    assert_eq!(source(&nb, 1), "x = 10\ny = 2\nz = 3\n");
    assert_eq!(source(&nb, 2), "x = 100\ny = 2\nz = 3\n");
    assert_ne!(
        nb["cells"][1]["id"], nb["cells"][2]["id"],
        "ids stay unique"
    );
    assert_eq!(source(&nb, 3), "print(x * y)\n", "bob's other edit merged");
    let entries = ada
        .run(&["activity", "nb", "--kind", "sync", "--json"])
        .expect_ok("activity")
        .json();
    assert!(
        entries
            .to_string()
            .contains("1 notebook cell conflict settled one by one"),
        "{entries}"
    );
    assert_eq!(
        git(&ada.project_dir("nb"), &["status", "--porcelain"]).trim(),
        ""
    );
    bob.run(&["sync", "nb"]).expect_ok("bob gets it");
    assert_eq!(read(&bob), nb);
}

#[test]
fn a_cell_deleted_on_one_side_and_edited_on_the_other_asks_and_take_theirs_brings_it_back() {
    let (ada, bob) = shared_notebook();
    edit(&ada, |nb| {
        nb["cells"].as_array_mut().expect("cells").remove(2);
    });
    edit(&bob, |nb| set_source(nb, 2, "print(x + y + 1)\n"));
    assert_eq!(ada.run(&["sync", "nb"]).code, Some(3));
    let shown = ada
        .run(&["sync", "nb", "--show-conflicts", "--json"])
        .expect_ok("show")
        .json();
    assert_eq!(
        shown["files"][0]["cells"][0]["kind"], "deleted-by-us",
        "{shown}"
    );
    assert_eq!(shown["files"][0]["cells"][0]["ours"], Value::Null);
    ada.run(&[
        "sync",
        "nb",
        "--resolve",
        "ours",
        "--cell",
        "code/analysis.ipynb:cell:c2=theirs",
    ])
    .expect_ok("take their cell back");
    let nb = read(&ada);
    assert_eq!(source(&nb, 2), "print(x + y + 1)\n");
    assert_eq!(nb["cells"].as_array().map(Vec::len), Some(4));
}

#[test]
fn a_notebook_that_is_not_nbformat_4_falls_back_to_the_whole_file_choice() {
    let (ada, bob) = shared_notebook();
    let path = "code/analysis.ipynb";
    fs::write(ada.project_dir("nb").join(path), "{ not json, ada\n").expect("write");
    ada.run(&["sweep", "nb"]).expect_ok("sweep");
    edit(&bob, |nb| set_source(nb, 0, "import os\n"));
    assert_eq!(ada.run(&["sync", "nb"]).code, Some(3));
    let shown = ada
        .run(&["sync", "nb", "--show-conflicts", "--json"])
        .expect_ok("show")
        .json();
    let file = &shown["files"][0];
    assert_eq!(file["path"], path, "{shown}");
    assert!(
        file["whole_file"]
            .as_str()
            .unwrap_or_default()
            .contains("not valid JSON"),
        "says why: {shown}"
    );
    assert!(file.get("cells").is_none(), "{shown}");
    ada.run(&["sync", "nb", "--resolve", "theirs"])
        .expect_ok("take theirs");
    assert_eq!(source(&read(&ada), 0), "import os\n");
}
