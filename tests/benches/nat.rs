//! `cargo build --release -p tandem-node && cargo bench -p tandem-e2e --bench nat`
//!
//! The NAT matrix's figures (root, network namespaces: see
//! `tandem_e2e::netns`), one run, with a baseline from the same run: for
//! each pair of site kinds, the time from `tandem peer add KEY` to the
//! first completed sync (the other side's clone; goal <= 3 s), whether the
//! connection ended direct, and a large file's throughput each way —
//! direct after hole punching (cone with cone), through the relay
//! (symmetric with symmetric) — against the same transfer between two
//! nodes on plain loopback.
//!
//! `NAT_BENCH_MIB` changes the large file's size (default 200),
//! `NAT_LOG` the nodes' log level.

use std::time::Duration;

use tandem_e2e::TestNode;
use tandem_e2e::netns::matrix::{self, CellReport, Exercise, Expect, Logs, MIB};
use tandem_e2e::netns::{SiteKind, build_or_skip};

fn ended(ex: &Exercise) -> String {
    let views: Vec<String> = ex
        .connection_end
        .iter()
        .map(|c| c.clone().unwrap_or_else(|| "not connected".into()))
        .collect();
    if views[0] == views[1] {
        views[0].clone()
    } else {
        views.join(" / ")
    }
}

fn ratio(mb_per_s: f64, baseline: f64) -> String {
    if baseline > 0.0 {
        format!("{:.2}x", mb_per_s / baseline)
    } else {
        "-".into()
    }
}

/// The same exercise between two nodes on loopback, no namespaces.
fn loopback(size: u64) -> Result<Exercise, String> {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    let find = bob.p2p_address();
    matrix::exercise(&ada, &bob, &find, "loopback", size, Expect::Report)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("nat: bench");
        return;
    }
    let size = std::env::var("NAT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
        * MIB;
    let Some(topology) = build_or_skip(matrix::matrix_topology()) else {
        println!("nat: skipped (no network namespaces here)");
        return;
    };
    let base = match loopback(size) {
        Ok(ex) => ex,
        Err(e) => {
            println!("loopback baseline failed: {e}");
            return;
        }
    };
    let base_mb = (base.a_to_b.mb_per_s() + base.b_to_a.mb_per_s()) / 2.0;
    let logs = Logs::new("bench");

    let mut results: Vec<((SiteKind, SiteKind), Result<CellReport, String>)> = Vec::new();
    for (index, cell) in matrix::cells().into_iter().enumerate() {
        eprintln!("cell {index}: {} - {} ...", cell.0, cell.1);
        // A fresh hub for every cell (it starts in a fraction of a second),
        // so no figure depends on the peers earlier cells left behind.
        let mut hub = matrix::start_hub(&topology, &logs);
        let outcome = matrix::run_cell(&topology, &hub, index, cell, size, &logs);
        hub.node.kill();
        if let Err(e) = &outcome {
            eprintln!("cell {index} failed: {e}");
        }
        results.push((cell, outcome));
    }

    println!(
        "\n{} MiB large file; loopback baseline: peer add to first sync {} ms, {:.0} / {:.0} MB/s (A->B / B->A)\n",
        size / MIB,
        base.first_sync.as_millis(),
        base.a_to_b.mb_per_s(),
        base.b_to_a.mb_per_s()
    );
    println!(
        "| A | B | peer add to first sync (goal <= 3000 ms) | ended | A->B MB/s | B->A MB/s | of loopback |"
    );
    println!("|---|---|---|---|---|---|---|");
    for ((a, b), outcome) in &results {
        match outcome {
            Ok(report) => {
                let ex = &report.exercise;
                let mean = (ex.a_to_b.mb_per_s() + ex.b_to_a.mb_per_s()) / 2.0;
                println!(
                    "| {a} | {b} | {} ms{} | {} | {:.0} | {:.0} | {} |",
                    ex.first_sync.as_millis(),
                    if ex.first_sync <= Duration::from_secs(3) {
                        ""
                    } else {
                        " (over goal)"
                    },
                    ended(ex),
                    ex.a_to_b.mb_per_s(),
                    ex.b_to_a.mb_per_s(),
                    ratio(mean, base_mb)
                );
            }
            Err(e) => println!(
                "| {a} | {b} | failed: {} | | | | |",
                e.lines().next().unwrap_or_default().replace('|', "/")
            ),
        }
    }
    let figure = |pair: (SiteKind, SiteKind), what: &str| {
        let found = results.iter().find(|(cell, _)| *cell == pair);
        match found {
            Some((_, Ok(report))) => {
                let ex = &report.exercise;
                let mean = (ex.a_to_b.mb_per_s() + ex.b_to_a.mb_per_s()) / 2.0;
                println!(
                    "{what} ({} - {}, ended {}): {mean:.0} MB/s = {} of loopback ({base_mb:.0} MB/s)",
                    pair.0,
                    pair.1,
                    ended(ex),
                    ratio(mean, base_mb)
                );
            }
            _ => println!("{what}: no figure (the cell failed)"),
        }
    };
    println!();
    figure(
        (SiteKind::Cone, SiteKind::Cone),
        "direct after hole punching",
    );
    figure(
        (SiteKind::Symmetric, SiteKind::Symmetric),
        "through the relay",
    );
}
