//! `cargo bench -p tandem-node --bench activity [-- --small]`
//!
//! Prints the activity feed figures: append p50/p99 at 100k entries, load of
//! a 100k-entry feed, merge of 10 writers x 10k entries diverged by 5k each,
//! and a kind+text query over 100k entries, each beside a bare-automerge or
//! unfiltered baseline from the same run. The merge runs in a child process
//! so its peak memory is its own.

use std::process::Command;

use tandem_node::bench::{Sizes, measure_merge, run};

fn fail(message: String) -> ! {
    eprintln!("benchmark failed: {message}");
    std::process::exit(1);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let small = args.iter().any(|a| a == "--small");
    let sizes = if small {
        Sizes {
            entries: 5_000,
            appends_measured: 200,
            writers: 4,
            per_writer: 1_000,
            diverged: 500,
        }
    } else {
        Sizes::default()
    };
    if let Some(at) = args.iter().position(|a| a == "--measure-merge") {
        let dir = args
            .get(at + 1)
            .unwrap_or_else(|| fail("--measure-merge needs a folder".into()));
        match measure_merge(std::path::Path::new(dir), &sizes) {
            Ok(line) => println!("{line}"),
            Err(e) => fail(e.to_string()),
        }
        return;
    }
    let dir = tempfile::tempdir()
        .unwrap_or_else(|e| fail(format!("cannot create a temporary folder: {e}")));
    match run(dir.path(), &sizes) {
        Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
        Err(e) => fail(e.to_string()),
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(e.to_string()));
    let mut child = Command::new(exe);
    child.arg("--measure-merge").arg(dir.path());
    if small {
        child.arg("--small");
    }
    let status = child.status().unwrap_or_else(|e| fail(e.to_string()));
    if !status.success() {
        fail("the merge measurement failed".into());
    }
}
