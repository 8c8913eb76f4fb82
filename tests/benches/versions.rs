//! `cargo build --release -p tandem-node && cargo bench -p tandem-e2e --bench versions`
//!
//! Getting versions back, from a real `tandem up` process, each figure
//! beside a baseline measured in the same run:
//! - restoring a project of 1,000 small files and 1 GiB of large files
//!   (4 × 256 MiB, all in the store) to the other of its two versions,
//!   against `git checkout` between the same two commits in a plain clone
//!   plus `cp` of the same large files (goal: ≤ 2×);
//! - opening a version's file list (`GET /api/projects/P/versions/V`) of a
//!   project of 10,000 files, against `git ls-tree -r -l` of that commit
//!   (goal: < 200 ms).
//!
//! Every timed restore is checked afterwards to have done its work: every
//! large file in the working tree has the restored version's bytes. Runs
//! alternate between the two versions (`VERSION_BENCH_RUNS`, default 3)
//! and the spread is printed. `VERSION_BENCH_MIB` sets the large files'
//! total size (default 1024).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tandem_e2e::{TestNode, blake3_of, git, quiet_project, write_random};

const MIB: u64 = 1024 * 1024;
const SMALL: usize = 1_000;
const LARGE: usize = 4;
const LISTED: usize = 10_000;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn flush_disk() {
    let _ = Command::new("sync").status();
}

/// Writes version `seed` of the tree: every small and every large file
/// different from the other version's.
fn write_version(dir: &Path, seed: u64, large_size: u64, keep: &Path) {
    for i in 0..SMALL {
        let path = dir.join(format!("code/m{:02}/f{i:04}.py", i % 50));
        fs::create_dir_all(path.parent().expect("folder")).expect("folder");
        fs::write(
            &path,
            format!("# version {seed}\nvalue = {}\n", i as u64 * seed),
        )
        .expect("write");
    }
    for i in 0..LARGE {
        let name = format!("big{i}.bin");
        write_random(
            &dir.join("input").join(&name),
            large_size,
            seed * 100 + i as u64,
        );
        fs::copy(dir.join("input").join(&name), keep.join(&name)).expect("keep a copy");
    }
}

fn spread(name: &str, values: &mut [f64], unit: &str) -> f64 {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    println!(
        "{name}: median {median:.2}{unit} (min {:.2}, max {:.2}, {} runs)",
        values[0],
        values[values.len() - 1],
        values.len()
    );
    median
}

fn restore_figures(runs: u64, total: u64) {
    let ada = TestNode::started("Ada");
    quiet_project(&ada, "bench");
    let dir = ada.project_dir("bench");
    let keep = tempfile::tempdir().expect("copies");
    let (keep1, keep2) = (keep.path().join("1"), keep.path().join("2"));
    fs::create_dir_all(&keep1).expect("folder");
    fs::create_dir_all(&keep2).expect("folder");
    let large_size = total / LARGE as u64;
    write_version(&dir, 1, large_size, &keep1);
    ada.run(&["sweep", "bench"]).expect_ok("sweep v1");
    let v1 = git(&dir, &["rev-parse", "HEAD"]).trim().to_owned();
    write_version(&dir, 2, large_size, &keep2);
    ada.run(&["sweep", "bench"]).expect_ok("sweep v2");
    let v2 = git(&dir, &["rev-parse", "HEAD"]).trim().to_owned();
    // Both versions hold every large file as a pointer, none in Git.
    for version in [&v1, &v2] {
        let tracked = git(&dir, &["ls-tree", "-r", "--name-only", version]);
        for i in 0..LARGE {
            assert!(
                tracked.contains(&format!(".tandem/blobs/input/big{i}.bin.toml"))
                    && !tracked.contains(&format!("\ninput/big{i}.bin\n")),
                "big{i}.bin is a large file in {version}: {}",
                git(&dir, &["log", "--stat", "--format=%h %s"])
            );
        }
    }
    let pointer_hash = |commit: &str, i: usize| {
        git(
            &dir,
            &[
                "show",
                &format!("{commit}:.tandem/blobs/input/big{i}.bin.toml"),
            ],
        )
        .lines()
        .find_map(|l| {
            l.strip_prefix("hash = \"")
                .and_then(|h| h.strip_suffix('"'))
                .map(str::to_owned)
        })
        .expect("a pointer")
    };

    // The baseline: a plain clone holding the same two commits.
    let plain = tempfile::tempdir().expect("clone");
    let clone = plain.path().join("bench");
    let status = Command::new("git")
        .args(["clone", "-q"])
        .arg(&dir)
        .arg(&clone)
        .status()
        .expect("git clone");
    assert!(status.success());
    for i in 0..LARGE {
        fs::copy(
            keep2.join(format!("big{i}.bin")),
            clone.join(format!("input/big{i}.bin")),
        )
        .expect("v2's large files in the clone");
    }

    let mut ratios = Vec::new();
    let mut tandem_ms = Vec::new();
    let mut baseline_ms = Vec::new();
    for run in 0..runs {
        let (target, keep_dir) = if run % 2 == 0 {
            (&v1, &keep1)
        } else {
            (&v2, &keep2)
        };
        flush_disk();
        let started = Instant::now();
        let answer = ada.api_post(
            "/api/projects/bench/restore",
            &serde_json::json!({ "version": target }),
        );
        let tandem = started.elapsed();
        assert!(answer["commit"].is_string(), "a real restore: {answer}");
        assert_eq!(
            answer["changed"].as_u64(),
            Some((SMALL + LARGE) as u64),
            "{answer}"
        );
        for i in 0..LARGE {
            let file = dir.join(format!("input/big{i}.bin"));
            assert_eq!(
                blake3_of(&file),
                pointer_hash(target, i),
                "big{i}.bin restored"
            );
        }

        flush_disk();
        let started = Instant::now();
        let status = Command::new("git")
            .arg("-C")
            .arg(&clone)
            .args(["checkout", "-q", target])
            .status()
            .expect("git checkout");
        assert!(status.success());
        for i in 0..LARGE {
            let name = format!("big{i}.bin");
            fs::copy(keep_dir.join(&name), clone.join("input").join(&name)).expect("cp");
        }
        flush_disk();
        let baseline = started.elapsed();
        let ratio = tandem.as_secs_f64() / baseline.as_secs_f64();
        println!(
            "run {}: restore {:.0} ms; git checkout + cp {:.0} ms; {ratio:.2}× (goal ≤ 2×)",
            run + 1,
            ms(tandem),
            ms(baseline)
        );
        ratios.push(ratio);
        tandem_ms.push(ms(tandem));
        baseline_ms.push(ms(baseline));
    }
    spread("restore (ms)", &mut tandem_ms, " ms");
    spread("git checkout + cp (ms)", &mut baseline_ms, " ms");
    let median = spread("restore / baseline", &mut ratios, "×");
    println!(
        "{}",
        if median <= 2.0 {
            "restore: goal met"
        } else {
            "restore: MISSED (goal ≤ 2×)"
        }
    );
}

fn listing_figures(runs: u64) {
    let ada = TestNode::started("Ada");
    quiet_project(&ada, "wide");
    let dir = ada.project_dir("wide");
    for i in 0..LISTED {
        let path = dir.join(format!("code/d{:03}/f{i:05}.txt", i % 100));
        fs::create_dir_all(path.parent().expect("folder")).expect("folder");
        fs::write(&path, format!("{i}\n")).expect("write");
    }
    ada.run(&["sweep", "wide"]).expect_ok("sweep");
    let v1 = git(&dir, &["rev-parse", "HEAD"]).trim().to_owned();
    fs::write(dir.join("code/later.txt"), "later\n").expect("write");
    ada.run(&["sweep", "wide"]).expect_ok("sweep");
    let path = format!("/api/projects/wide/versions/{v1}");
    let listed = ada.api_get(&path);
    let count: usize = listed["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| s["files"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(count, LISTED, "the whole list of that version");
    let mut tandem_ms = Vec::new();
    let mut git_ms = Vec::new();
    for _ in 0..runs.max(5) {
        let started = Instant::now();
        let listed = ada.api_get(&path);
        tandem_ms.push(ms(started.elapsed()));
        assert_eq!(listed["version"]["commit"], v1.as_str());
        let started = Instant::now();
        let out = git(&dir, &["ls-tree", "-r", "-l", &v1]);
        git_ms.push(ms(started.elapsed()));
        assert!(out.lines().count() >= LISTED);
    }
    let median = spread(
        "version file list, 10,000 files (ms)",
        &mut tandem_ms,
        " ms",
    );
    spread("git ls-tree -r -l (ms)", &mut git_ms, " ms");
    println!(
        "{}",
        if median < 200.0 {
            "file list: goal met"
        } else {
            "file list: MISSED (goal < 200 ms)"
        }
    );
}

fn main() {
    let runs = env_number("VERSION_BENCH_RUNS", 3);
    let total = env_number("VERSION_BENCH_MIB", 1024) * MIB;
    listing_figures(runs);
    restore_figures(runs, total);
}
