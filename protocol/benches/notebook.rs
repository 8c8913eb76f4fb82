//! `cargo bench -p tandem-protocol --bench notebook`
//!
//! Merges two 500-cell notebooks, each with 50 changed cells (edits to
//! lines, new outputs, a few added and deleted cells), against their
//! common base: the figure the issue names (goal: < 100 ms). The baseline,
//! from the same run, is the least any merge of notebooks must do: reading
//! the three files as JSON and writing one back. Each figure is the median
//! of `NOTEBOOK_BENCH_RUNS` runs (default 15), with min and max; every
//! timed merge is checked to be clean and to hold both sides' edits.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tandem_protocol::notebook::{Notebook, merge_files};

const CELLS: usize = 500;
const CHANGED: usize = 50;

fn cell(n: usize) -> Value {
    let source: Vec<String> = (0..12)
        .map(|l| format!("value_{n}_{l} = compute({n}, {l})  # a line of analysis\n"))
        .collect();
    let printed = vec![format!("result {n}\n"); 20];
    json!({
        "id": format!("cell-{n}"), "cell_type": "code", "metadata": {"tags": []},
        "execution_count": n, "source": source,
        "outputs": [{"output_type": "stream", "name": "stdout", "text": printed}],
    })
}

fn notebook(cells: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": cells,
    }))
    .expect("json")
}

/// One side: `CHANGED` cells changed, starting at `offset` and spread
/// through the notebook (every tenth: a new cell after it; every
/// fifteenth: deleted instead).
fn side(offset: usize, tag: &str) -> Vec<u8> {
    let mut cells: Vec<Value> = (0..CELLS).map(cell).collect();
    let step = CELLS / CHANGED;
    let mut out = Vec::new();
    for (n, mut c) in cells.drain(..).enumerate() {
        if n % step != offset {
            out.push(c);
            continue;
        }
        let k = n / step;
        if k % 15 == 14 {
            continue;
        }
        c["source"][3] = json!(format!("value_{n}_3 = {tag}_changed({n})\n"));
        c["execution_count"] = json!(1000 + n);
        c["outputs"][0]["text"][0] = json!(format!("{tag} result {n}\n"));
        out.push(c);
        if k % 10 == 9 {
            out.push(json!({
                "id": format!("{tag}-new-{n}"), "cell_type": "markdown", "metadata": {},
                "source": [format!("Notes by {tag} on cell {n}\n")],
            }));
        }
    }
    notebook(out)
}

fn median(mut d: Vec<Duration>) -> (Duration, Duration, Duration) {
    d.sort();
    (d[d.len() / 2], d[0], d[d.len() - 1])
}

fn main() {
    let runs: usize = std::env::var("NOTEBOOK_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let base = notebook((0..CELLS).map(cell).collect());
    let (ours, theirs) = (side(0, "ada"), side(5, "bob"));
    let mut merges = Vec::new();
    let mut baselines = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let merged = merge_files(&base, &ours, &theirs).expect("notebooks");
        let clean = merged.clean().expect("different cells never conflict");
        let bytes = clean.to_bytes();
        merges.push(started.elapsed());
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains("ada_changed(0)") && text.contains("bob_changed(5)"));
        assert!(text.contains("Notes by ada") && text.contains("Notes by bob"));

        let started = Instant::now();
        let parsed: Vec<Notebook> = [&base, &ours, &theirs]
            .iter()
            .map(|b| Notebook::parse(b).expect("parses"))
            .collect();
        let written = parsed[1].to_bytes();
        baselines.push(started.elapsed());
        assert!(!written.is_empty());
    }
    let (m, m_min, m_max) = median(merges);
    let (b, b_min, b_max) = median(baselines);
    println!(
        "notebook merge, {CELLS} cells, {CHANGED} changed on each side ({} KiB each), {runs} runs:",
        base.len() / 1024
    );
    println!(
        "  cell-by-cell merge: {:.1} ms (min {:.1}, max {:.1}; goal < 100 ms)",
        m.as_secs_f64() * 1e3,
        m_min.as_secs_f64() * 1e3,
        m_max.as_secs_f64() * 1e3
    );
    println!(
        "  baseline, read three notebooks and write one: {:.1} ms (min {:.1}, max {:.1}); merge / baseline {:.2}x",
        b.as_secs_f64() * 1e3,
        b_min.as_secs_f64() * 1e3,
        b_max.as_secs_f64() * 1e3,
        m.as_secs_f64() / b.as_secs_f64()
    );
}
