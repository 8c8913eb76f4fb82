//! The activity feed benchmark (`cargo bench -p tandem-node --bench activity`).
//!
//! Each figure is measured next to a baseline run in the same process, so the
//! ratio means something on any machine: the baseline is bare automerge doing
//! the same storage work without Tandem's framing, checks and index.

use std::path::Path;
use std::time::{Duration, Instant};

use automerge::Automerge;
use tandem_protocol::activity::{Details, FileAction, FileChange, Filter, Kind};
use tandem_protocol::project::Genesis;
use tandem_protocol::{PeerKey, ProjectId, SecretKey};

use crate::activity::feed::{Draft, Feed, FeedError, SignedHeads};

/// Sizes of one run; the defaults are the figures the project promises.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub entries: usize,
    pub appends_measured: usize,
    pub writers: usize,
    pub per_writer: usize,
    pub diverged: usize,
}

impl Default for Sizes {
    fn default() -> Self {
        Self {
            entries: 100_000,
            appends_measured: 2_000,
            writers: 10,
            per_writer: 10_000,
            diverged: 5_000,
        }
    }
}

fn writer_key(i: usize) -> SecretKey {
    let mut bytes = [7u8; 32];
    bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SecretKey::from_bytes(bytes)
}

fn project_id() -> ProjectId {
    Genesis::create(
        &"bench".parse().expect("valid name"),
        &writer_key(999),
        0,
        [0; 16],
    )
    .project_id()
}

const KINDS: [Kind; 4] = [Kind::Code, Kind::Input, Kind::Output, Kind::Note];

fn draft(i: usize) -> Draft {
    Draft {
        kind: KINDS[i % KINDS.len()],
        message: format!("{} new files in input/: sample-{i}.csv", 1 + i % 5),
        commit: Some(format!("{:040x}", i * 7919)),
        details: Details {
            files: vec![FileChange {
                path: format!("input/batch-{}/sample-{i}.csv", i % 100),
                action: FileAction::Added,
            }],
            ..Details::default()
        },
        tags: if i.is_multiple_of(10) {
            vec!["qa".into()]
        } else {
            vec![]
        },
        time_ms: 1_700_000_000_000 + i as i64 * 1_000,
    }
}

/// Fills `feed` with `count` entries by `key`, without per-append fsync.
fn fill(feed: &mut Feed, key: &SecretKey, start: usize, count: usize) -> Result<(), FeedError> {
    feed.set_durable(false);
    for i in start..start + count {
        feed.append(key, "Bench", draft(i))?;
    }
    feed.compact_all()?;
    feed.set_durable(true);
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Peak resident memory since the last reset, in MiB (Linux only).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn current_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs every measurement in `dir` and returns the report as lines.
pub fn run(dir: &Path, sizes: &Sizes) -> Result<Vec<String>, FeedError> {
    let mut report = Vec::new();
    let project = project_id();
    let key = writer_key(0);

    // 1. Append at 100k, and 2. load 100k, and 4. query over 100k.
    let big = dir.join("big");
    let started = Instant::now();
    {
        let mut feed = Feed::open(&big, project)?;
        fill(&mut feed, &key, 0, sizes.entries)?;
    }
    report.push(format!(
        "setup: {} entries written in {:.1} s",
        sizes.entries,
        started.elapsed().as_secs_f64()
    ));

    let snapshot = std::fs::read(big.join(format!("{}.am", hex::encode(key.public().as_bytes()))))
        .map_err(|e| FeedError::Rejected(e.to_string()))?;
    let started = Instant::now();
    let bare = Automerge::load(&snapshot)?;
    let bare_load = started.elapsed();
    drop(bare);
    let started = Instant::now();
    let mut feed = Feed::open(&big, project)?;
    let load = started.elapsed();
    report.push(format!(
        "load {} entries from disk: {:.1} ms (goal < 300 ms); bare automerge load of the same document: {:.1} ms; ratio {:.2}x",
        feed.len(),
        ms(load),
        ms(bare_load),
        load.as_secs_f64() / bare_load.as_secs_f64()
    ));

    let mut times = Vec::with_capacity(sizes.appends_measured);
    for i in 0..sizes.appends_measured {
        let started = Instant::now();
        feed.append(&key, "Bench", draft(sizes.entries + i))?;
        times.push(started.elapsed());
    }
    times.sort();
    report.push(format!(
        "append at {} entries (fsync each): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (goal p99 < 5 ms)",
        sizes.entries,
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
    ));

    let filter = Filter {
        kind: Some(Kind::Input),
        search: Some("SAMPLE-9999".into()),
        ..Filter::default()
    }
    .prepared();
    let started = Instant::now();
    let rounds = 10;
    let mut hits = 0;
    for _ in 0..rounds {
        hits = feed.query(&filter, usize::MAX).len();
    }
    let query = started.elapsed() / rounds;
    let started = Instant::now();
    let mut scanned = 0;
    for _ in 0..rounds {
        scanned = feed.query(&Filter::default(), usize::MAX).len();
    }
    let scan = started.elapsed() / rounds;
    report.push(format!(
        "query kind+text over {scanned} entries: {:.2} ms, {hits} hits (goal < 50 ms); unfiltered walk of the same entries: {:.2} ms; ratio {:.2}x",
        ms(query),
        ms(scan),
        query.as_secs_f64() / scan.as_secs_f64().max(1e-9)
    ));
    drop(feed);

    // 3. Merge: node A has W writers x N entries; node B has D more each.
    let a_dir = dir.join("merge-a");
    let b_dir = dir.join("merge-b");
    let started = Instant::now();
    let keys: Vec<SecretKey> = (0..sizes.writers).map(|i| writer_key(i + 1)).collect();
    {
        let mut a = Feed::open(&a_dir, project)?;
        for k in &keys {
            fill(&mut a, k, 0, sizes.per_writer)?;
        }
    }
    copy_dir(&a_dir, &b_dir).map_err(|e| FeedError::Rejected(e.to_string()))?;
    let mut b = Feed::open(&b_dir, project)?;
    for k in &keys {
        fill(&mut b, k, sizes.per_writer, sizes.diverged)?;
    }
    report.push(format!(
        "setup: {} writers x {} entries, {} more each on the other node, in {:.1} s",
        sizes.writers,
        sizes.per_writer,
        sizes.diverged,
        started.elapsed().as_secs_f64()
    ));

    let a = Feed::open(&a_dir, project)?;
    let bundles = dir.join("bundles");
    std::fs::create_dir_all(&bundles).map_err(|e| FeedError::Rejected(e.to_string()))?;
    for (i, k) in keys.iter().enumerate() {
        let writer = k.public();
        let bundle = b.bundle_since(&writer, &a.heads(&writer)?)?;
        let signed = b
            .signed_heads(&writer, k)
            .ok_or_else(|| FeedError::Rejected("no signed heads".into()))?;
        std::fs::write(bundles.join(format!("{i}.bundle")), bundle)
            .and_then(|()| std::fs::write(bundles.join(format!("{i}.heads")), signed.to_json()))
            .map_err(|e| FeedError::Rejected(e.to_string()))?;
    }
    Ok(report)
}

/// What the merge measurement found (printed as JSON by the child process).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MergeFigures {
    pub feed_load_ms: f64,
    pub documents_load_ms: f64,
    pub merge_ms: f64,
    pub applied: usize,
    pub bundle_bytes: usize,
    pub peak_rss_mib: Option<f64>,
    pub loaded_rss_mib: Option<f64>,
}

fn read_bundles(dir: &Path, sizes: &Sizes) -> Result<Vec<(Vec<u8>, SignedHeads)>, FeedError> {
    let bundles_dir = dir.join("bundles");
    let read = |name: String| {
        std::fs::read(bundles_dir.join(name)).map_err(|e| FeedError::Rejected(e.to_string()))
    };
    let mut bundles = Vec::new();
    for i in 0..sizes.writers {
        let bundle = read(format!("{i}.bundle"))?;
        let heads: SignedHeads = serde_json::from_slice(&read(format!("{i}.heads"))?)
            .map_err(|e| FeedError::Rejected(e.to_string()))?;
        bundles.push((bundle, heads));
    }
    Ok(bundles)
}

/// Node A loads its feed from disk and applies the bundles node B
/// produced. Meant to run in a fresh process (the bench's
/// `--measure-merge`), so that its peak memory is the merge's own and it
/// starts as cold as the baseline.
pub fn measure_merge(dir: &Path, sizes: &Sizes) -> Result<MergeFigures, FeedError> {
    let project = project_id();
    let bundles = read_bundles(dir, sizes)?;
    reset_peak_rss();
    let started = Instant::now();
    let mut a = Feed::open(&dir.join("merge-a"), project)?;
    let feed_load = started.elapsed();
    // A freshly started node reads entries from its index and loads the
    // automerge documents on first use; time that separately, so the merge
    // figure is comparable with the bare baseline (documents in memory).
    let started = Instant::now();
    let writers: Vec<PeerKey> = a.writers().copied().collect();
    for writer in &writers {
        a.heads(writer)?;
    }
    let documents_load = started.elapsed();
    let loaded_rss_mib = current_rss_mib();
    let started = Instant::now();
    let mut applied = 0;
    for (bundle, heads) in &bundles {
        applied += a.apply_bundle(bundle, heads)?;
    }
    Ok(MergeFigures {
        feed_load_ms: ms(feed_load),
        documents_load_ms: ms(documents_load),
        merge_ms: ms(started.elapsed()),
        applied,
        bundle_bytes: bundles.iter().map(|(b, _)| b.len()).sum(),
        peak_rss_mib: peak_rss_mib(),
        loaded_rss_mib,
    })
}

/// The baseline, also in a fresh process: bare automerge applies the same
/// bundles to the same documents, loaded from the same snapshots.
pub fn measure_bare_merge(dir: &Path, sizes: &Sizes) -> Result<f64, FeedError> {
    let bundles = read_bundles(dir, sizes)?;
    let mut docs = Vec::new();
    for (_, heads) in &bundles {
        let path = dir.join("merge-a").join(format!(
            "{}.am",
            hex::encode(heads.payload.writer.as_bytes())
        ));
        let bytes = std::fs::read(path).map_err(|e| FeedError::Rejected(e.to_string()))?;
        docs.push(Automerge::load(&bytes)?);
    }
    let started = Instant::now();
    for (doc, (bundle, _)) in docs.iter_mut().zip(&bundles) {
        doc.load_incremental(bundle)?;
    }
    Ok(ms(started.elapsed()))
}

/// The report line for the merge figures.
pub fn merge_report(sizes: &Sizes, ours: &MergeFigures, bare_ms: f64) -> String {
    let memory = match (ours.loaded_rss_mib, ours.peak_rss_mib) {
        (Some(loaded), Some(peak)) => {
            format!(
                "peak RSS {peak:.0} MiB for the whole process ({:.0} MiB above the loaded feed)",
                peak - loaded
            )
        }
        _ => "peak RSS not available on this platform".into(),
    };
    format!(
        "merge {} writers x {} entries diverged by {} each: feed load {:.0} ms + documents load {:.0} ms, then {} entries from {:.2} MB of bundles in {:.0} ms (goal < 1 s), {memory} (goal < 300 MB); bare automerge load_incremental of the same bundles (fresh process): {:.0} ms; ratio {:.2}x",
        sizes.writers,
        sizes.per_writer,
        sizes.diverged,
        ours.feed_load_ms,
        ours.documents_load_ms,
        ours.applied,
        ours.bundle_bytes as f64 / 1e6,
        ours.merge_ms,
        bare_ms,
        ours.merge_ms / bare_ms.max(1e-9)
    )
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for item in std::fs::read_dir(from)? {
        let item = item?;
        std::fs::copy(item.path(), to.join(item.file_name()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_runs_at_small_sizes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sizes = Sizes {
            entries: 300,
            appends_measured: 20,
            writers: 3,
            per_writer: 100,
            diverged: 50,
        };
        let report = run(dir.path(), &sizes).expect("bench runs");
        let merge = measure_merge(dir.path(), &sizes).expect("merge runs");
        assert_eq!(merge.applied, 150);
        let bare = measure_bare_merge(dir.path(), &sizes).expect("baseline runs");
        assert!(merge_report(&sizes, &merge, bare).contains("150 entries"));
        assert!(
            report.iter().any(|l| l.starts_with("load 300 entries")),
            "{report:?}"
        );
    }
}
