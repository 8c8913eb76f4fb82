//! `cargo bench -p tandem-node --bench activity [-- --small]`
//!
//! Prints the activity feed figures: append p50/p99 at 100k entries, load of
//! a 100k-entry feed, merge of 10 writers x 10k entries diverged by 5k each,
//! and a kind+text query over 100k entries, each beside a bare-automerge or
//! unfiltered baseline from the same run. The merge and its baseline each
//! run in a fresh child process, so both start cold and the peak memory is
//! the merge's own.

use std::process::Command;

use tandem_node::activity::bench::{
    MergeFigures, Sizes, measure_bare_merge, measure_merge, merge_report, run,
};

fn fail(message: String) -> ! {
    eprintln!("benchmark failed: {message}");
    std::process::exit(1);
}

fn child(mode: &str, dir: &std::path::Path, small: bool) -> String {
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(e.to_string()));
    let mut command = Command::new(exe);
    command.arg(mode).arg(dir);
    if small {
        command.arg("--small");
    }
    let output = command.output().unwrap_or_else(|e| fail(e.to_string()));
    if !output.status.success() {
        fail(format!(
            "{mode} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
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
    let folder_after = |flag: &str| {
        args.iter().position(|a| a == flag).map(|at| {
            std::path::PathBuf::from(
                args.get(at + 1)
                    .unwrap_or_else(|| fail(format!("{flag} needs a folder"))),
            )
        })
    };
    if let Some(dir) = folder_after("--measure-merge") {
        let figures = measure_merge(&dir, &sizes).unwrap_or_else(|e| fail(e.to_string()));
        println!("{}", serde_json::to_string(&figures).unwrap_or_default());
        return;
    }
    if let Some(dir) = folder_after("--measure-bare-merge") {
        let ms = measure_bare_merge(&dir, &sizes).unwrap_or_else(|e| fail(e.to_string()));
        println!("{ms}");
        return;
    }
    let dir = tempfile::tempdir()
        .unwrap_or_else(|e| fail(format!("cannot create a temporary folder: {e}")));
    match run(dir.path(), &sizes) {
        Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
        Err(e) => fail(e.to_string()),
    }
    let bare: f64 = child("--measure-bare-merge", dir.path(), small)
        .parse()
        .unwrap_or_else(|e| fail(format!("baseline output: {e}")));
    let ours: MergeFigures = serde_json::from_str(&child("--measure-merge", dir.path(), small))
        .unwrap_or_else(|e| fail(format!("merge output: {e}")));
    println!("{}", merge_report(&sizes, &ours, bare));
}
