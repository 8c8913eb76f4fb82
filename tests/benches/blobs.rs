//! `cargo build --release -p tandem-node && cargo bench -p tandem-e2e --bench blobs`
//!
//! Large-data figures from real `tandem` processes on loopback, each beside
//! a baseline measured in the same run:
//! - ingest of a 1 GiB file (`tandem sweep` with the node stopped, so no
//!   file watcher can sweep it first) against `cp` of the same file, both
//!   until on disk;
//! - 1 GiB node to node (`tandem fetch`: request, transfer, verify, write
//!   into the working tree) against a bare iroh-blobs fetch between two
//!   stores in this process and rsync over ssh of the same file;
//! - 10,000 files of 10 KiB swept as one version, against `git add` +
//!   `git commit` of the same tree, and moved node to node, against rsync
//!   over ssh of the same tree;
//! - one node serving the 1 GiB file to 5 peers at once, each peer's time
//!   against the single peer's.
//!
//! Every timed step is checked afterwards to have done its work (the sweep
//! recorded the file, the fetch received its bytes). `BLOB_BENCH_MIB`
//! changes the large file's size (default 1024), `BLOB_BENCH_RUNS` the
//! number of runs (default 3), after which the spread of each ratio is
//! printed. rsync needs `rsync` and `openssh-server`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tandem_e2e::rsync::Sshd;
use tandem_e2e::{TestNode, git, same_bytes, write_random};

const MIB: u64 = 1024 * 1024;
const SMALL_COUNT: u64 = 10_000;
const SMALL_SIZE: u64 = 10 * 1024;
const READERS: usize = 5;

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A bare iroh-blobs transfer of `file` between two fresh stores.
fn bare_iroh(file: &Path) -> Duration {
    tandem_e2e::bare_iroh::transfer(file, || None)
}

fn flush_disk() {
    let _ = Command::new("sync").status();
}

fn timed(what: &str, node: &TestNode, args: &[&str]) -> (Duration, String) {
    let started = Instant::now();
    let run = node.run(args).expect_ok(what);
    (started.elapsed(), run.stdout)
}

/// A fetch's report, checked to have moved at least `bytes`.
fn check_fetched(what: &str, stdout: &str, bytes: u64) {
    let report: serde_json::Value = serde_json::from_str(stdout).expect("fetch --json");
    let received = report["bytes_received"].as_u64().unwrap_or(0);
    assert!(
        received >= bytes,
        "{what}: the timed fetch received {received} bytes, not the {bytes} it claims to measure"
    );
}

/// A project with automatic sync off, so nothing moves unless asked.
fn project(node: &TestNode, name: &str) {
    node.run(&["project", "create", name]).expect_ok("create");
    node.run(&["sync", name, "--auto", "off"])
        .expect_ok("auto off");
}

/// Pointers Git holds at HEAD: what a sweep recorded.
fn pointers_at_head(dir: &Path) -> usize {
    git(
        dir,
        &["ls-tree", "-r", "--name-only", "HEAD", ".tandem/blobs"],
    )
    .lines()
    .count()
}

#[derive(Default)]
struct Figures {
    ingest: Duration,
    cp: Duration,
    fetch: Duration,
    bare: Duration,
    rsync: Option<Duration>,
    five: Vec<Duration>,
    many_sweep: Duration,
    git: Duration,
    many_fetch: Duration,
    many_rsync: Option<Duration>,
}

fn large_file_figures(size: u64, sshd: Option<&Sshd>, figures: &mut Figures) {
    let mut ada = TestNode::started("Ada");
    project(&ada, "big");
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("model.bin");
    write_random(&source, size, 42);

    // Ingest. The node is stopped, so its watcher cannot sweep the file
    // first: the timed sweep is the one that hashes and stores it.
    ada.stop();
    let dir = ada.project_dir("big");
    let target = dir.join("output/model.bin");
    std::fs::copy(&source, &target).expect("place file");
    flush_disk();
    let cp_started = Instant::now();
    std::fs::copy(&source, scratch.path().join("cp.bin")).expect("cp");
    flush_disk();
    figures.cp = cp_started.elapsed();
    let _ = std::fs::remove_file(scratch.path().join("cp.bin"));
    flush_disk();
    let before = pointers_at_head(&dir);
    let ingest_started = Instant::now();
    ada.run(&["sweep", "big"]).expect_ok("sweep");
    flush_disk();
    figures.ingest = ingest_started.elapsed();
    assert_eq!(
        pointers_at_head(&dir),
        before + 1,
        "the timed sweep recorded the file"
    );
    ada.start();

    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    ada.run(&["share", "big", &bob.did(), "--role", "reader"])
        .expect_ok("share");
    let id = ada.project_id("big");
    bob.run(&["project", "clone", &id, "--no-data"])
        .expect_ok("clone");
    // Dirty pages from writing the test file would otherwise be flushed
    // during whichever transfer runs first; flush them, and give the bare
    // baseline its best of two runs (one before Tandem's, one after).
    let bare_before = bare_iroh(&source);
    flush_disk();
    let (fetch, report) = timed("fetch", &bob, &["fetch", "big", "--json"]);
    check_fetched("1 GiB fetch", &report, size);
    figures.fetch = fetch;
    assert!(same_bytes(
        &source,
        &bob.project_dir("big").join("output/model.bin")
    ));
    flush_disk();
    figures.bare = bare_before.min(bare_iroh(&source));
    if let Some(sshd) = sshd {
        flush_disk();
        figures.rsync = Some(sshd.rsync(&source, &scratch.path().join("copy.bin"), false));
        let _ = std::fs::remove_file(scratch.path().join("copy.bin"));
    }
    drop(bob);

    // One node serving the same file to several peers at once; each gets
    // a fresh clone, connected to Ada alone.
    let readers: Vec<TestNode> = (0..READERS)
        .map(|i| {
            let reader = TestNode::started(&format!("Reader{i}"));
            reader.connect(&ada);
            ada.run(&["share", "big", &reader.did(), "--role", "reader"])
                .expect_ok("share");
            reader
                .run(&["project", "clone", &id, "--no-data"])
                .expect_ok("clone");
            reader
        })
        .collect();
    flush_disk();
    let barrier = std::sync::Barrier::new(READERS);
    figures.five = std::thread::scope(|scope| {
        let handles: Vec<_> = readers
            .iter()
            .map(|reader| {
                let mut command = reader.command();
                command.args(["fetch", "big", "--json"]);
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let started = Instant::now();
                    let output = command.output().expect("run fetch");
                    let elapsed = started.elapsed();
                    assert!(output.status.success(), "a concurrent fetch failed");
                    check_fetched(
                        "concurrent fetch",
                        &String::from_utf8_lossy(&output.stdout),
                        size,
                    );
                    elapsed
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("fetch thread"))
            .collect()
    });
    for reader in &readers {
        assert!(same_bytes(
            &source,
            &reader.project_dir("big").join("output/model.bin")
        ));
    }
}

fn small_files_figures(sshd: Option<&Sshd>, figures: &mut Figures) {
    let mut ada = TestNode::started("Ada");
    project(&ada, "many");
    let dir = ada.project_dir("many");
    // Every file under input/ becomes a blob.
    std::fs::write(dir.join(".tandem/blobs.toml"), "data_threshold = 0\n").expect("policy");
    ada.stop();
    for i in 0..SMALL_COUNT {
        write_random(
            &dir.join(format!("input/d{:02}/f{i:05}.bin", i % 100)),
            SMALL_SIZE,
            i + 1,
        );
    }
    // Baseline: the same tree in a plain Git repository.
    let scratch = tempfile::tempdir().expect("tempdir");
    let plain = scratch.path().join("plain");
    std::fs::create_dir_all(&plain).expect("plain repo");
    git(&plain, &["init", "-q"]);
    let status = Command::new("cp")
        .arg("-a")
        .arg(dir.join("input"))
        .arg(&plain)
        .status()
        .expect("cp -a");
    assert!(status.success());
    flush_disk();
    let git_started = Instant::now();
    git(&plain, &["add", "-A"]);
    git(
        &plain,
        &[
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.org",
            "commit",
            "-q",
            "-m",
            "10,000 files",
        ],
    );
    flush_disk();
    figures.git = git_started.elapsed();

    let before = pointers_at_head(&dir);
    let started = Instant::now();
    ada.run(&["sweep", "many"]).expect_ok("sweep");
    flush_disk();
    figures.many_sweep = started.elapsed();
    assert_eq!(
        pointers_at_head(&dir),
        before + SMALL_COUNT as usize,
        "the timed sweep recorded every file"
    );
    ada.start();

    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    ada.run(&["share", "many", &bob.did(), "--role", "reader"])
        .expect_ok("share");
    let id = ada.project_id("many");
    bob.run(&["project", "clone", &id, "--no-data"])
        .expect_ok("clone");
    flush_disk();
    let (fetch, report) = timed("fetch", &bob, &["fetch", "many", "--json"]);
    check_fetched("10,000 files", &report, SMALL_COUNT * SMALL_SIZE);
    figures.many_fetch = fetch;
    if let Some(sshd) = sshd {
        flush_disk();
        let target = scratch.path().join("rsynced");
        figures.many_rsync = Some(sshd.rsync(&dir.join("input"), &target, true));
    }
}

/// One ratio (higher is better for Tandem) with its goal.
struct Ratio {
    name: &'static str,
    goal: f64,
    values: Vec<f64>,
}

fn ratios(runs: &[Figures]) -> Vec<Ratio> {
    let of = |f: &dyn Fn(&Figures) -> Option<f64>| runs.iter().filter_map(f).collect::<Vec<_>>();
    let ratio = |base: Duration, ours: Duration| base.as_secs_f64() / ours.as_secs_f64();
    vec![
        Ratio {
            name: "1 GiB fetch vs bare iroh-blobs",
            goal: 0.9,
            values: of(&|f| Some(ratio(f.bare, f.fetch))),
        },
        Ratio {
            name: "1 GiB fetch vs rsync over ssh",
            goal: 1.5,
            values: of(&|f| f.rsync.map(|r| ratio(r, f.fetch))),
        },
        Ratio {
            name: "1 GiB ingest vs cp",
            goal: 0.9,
            values: of(&|f| Some(ratio(f.cp, f.ingest))),
        },
        Ratio {
            name: "10k files sweep vs git add + commit",
            goal: 1.0,
            values: of(&|f| Some(ratio(f.git, f.many_sweep))),
        },
        Ratio {
            name: "10k files fetch vs rsync over ssh",
            goal: 1.0,
            values: of(&|f| f.many_rsync.map(|r| ratio(r, f.many_fetch))),
        },
        Ratio {
            name: "slowest of 5 concurrent peers vs one alone",
            goal: 0.7,
            values: of(&|f| f.five.iter().max().map(|slowest| ratio(f.fetch, *slowest))),
        },
    ]
}

fn print_run(run: usize, size: u64, f: &Figures) {
    let small = SMALL_COUNT * SMALL_SIZE;
    println!("run {run}:");
    println!(
        "  ingest {} MiB: tandem sweep {:.0} ms = {:.0} MB/s; cp {:.0} ms = {:.0} MB/s (both until on disk)",
        size / MIB,
        ms(f.ingest),
        mb_per_s(size, f.ingest),
        ms(f.cp),
        mb_per_s(size, f.cp)
    );
    println!(
        "  {} MiB node to node: tandem fetch {:.0} ms = {:.0} MB/s; bare iroh-blobs {:.0} ms = {:.0} MB/s; rsync over ssh {}",
        size / MIB,
        ms(f.fetch),
        mb_per_s(size, f.fetch),
        ms(f.bare),
        mb_per_s(size, f.bare),
        f.rsync.map_or("skipped".into(), |r| format!(
            "{:.0} ms = {:.0} MB/s",
            ms(r),
            mb_per_s(size, r)
        ))
    );
    let each: Vec<String> = f
        .five
        .iter()
        .map(|d| format!("{:.0}", mb_per_s(size, *d)))
        .collect();
    println!(
        "  {READERS} peers at once from one node: {} MB/s each (one alone: {:.0} MB/s); together {:.0} MB/s",
        each.join(", "),
        mb_per_s(size, f.fetch),
        f.five
            .iter()
            .max()
            .map_or(0.0, |d| mb_per_s(size * READERS as u64, *d))
    );
    println!(
        "  {SMALL_COUNT} files of 10 KiB: sweep {:.0} ms; git add + commit {:.0} ms; node to node {:.0} ms = {:.1} MB/s; rsync over ssh {}",
        ms(f.many_sweep),
        ms(f.git),
        ms(f.many_fetch),
        mb_per_s(small, f.many_fetch),
        f.many_rsync.map_or("skipped".into(), |r| format!(
            "{:.0} ms = {:.1} MB/s",
            ms(r),
            mb_per_s(small, r)
        ))
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("blobs: bench");
        return;
    }
    let size = std::env::var("BLOB_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
        * MIB;
    let runs: usize = std::env::var("BLOB_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let sshd = Sshd::start();
    let mut all = Vec::new();
    for run in 1..=runs {
        let mut figures = Figures::default();
        large_file_figures(size, sshd.as_ref(), &mut figures);
        small_files_figures(sshd.as_ref(), &mut figures);
        print_run(run, size, &figures);
        all.push(figures);
    }
    println!(
        "spread over {runs} runs (Tandem's speed as a multiple of the baseline's; higher is better):"
    );
    for ratio in ratios(&all) {
        if ratio.values.is_empty() {
            println!("  {}: not measured", ratio.name);
            continue;
        }
        let mut sorted = ratio.values.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        println!(
            "  {}: median {:.2}x, min {:.2}x, max {:.2}x (goal >= {:.1}x){}",
            ratio.name,
            median,
            sorted[0],
            sorted[sorted.len() - 1],
            ratio.goal,
            if median >= ratio.goal { "" } else { "  MISSED" }
        );
    }
}
