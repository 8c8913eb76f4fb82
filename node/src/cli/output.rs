//! What the CLI prints, shared by the command groups: JSON for `--json`,
//! times, listings of files, fetches, disk use and evictions, and a
//! progress line (bytes, rate, time left) while large files move.
//!
//! Byte counts are `tandem_protocol::text::byte_size`, the same binary
//! units (KiB, MiB, GiB) the web UI shows.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use tandem_protocol::api::{
    DataState, DiskUsage, EvictResult, FetchResult, ProjectDetail, TransferState, TransferView,
};
use tandem_protocol::text::byte_size as bytes;

use crate::cli::client::{Client, ClientError};

/// `--json`: the API's answer, pretty-printed.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A time in milliseconds since the epoch, in the local time zone
/// (`2025-01-31 14:05`); nothing for a time out of range.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

pub fn print_files(detail: &ProjectDetail) {
    print_sections(&detail.sections);
}

/// Files by section; large files with where their bytes are.
pub fn print_sections(sections: &[tandem_protocol::api::SectionFiles]) {
    for section in sections {
        println!("{}/", section.section);
        if section.files.is_empty() {
            println!("  (empty)");
        }
        for file in &section.files {
            let state = match &file.blob {
                None => String::new(),
                Some(blob) => match blob.state {
                    DataState::Local => format!("  large, local  {}", blob.hash.short()),
                    DataState::Partial => format!(
                        "  large, partial ({} of {})  {}",
                        bytes(blob.present),
                        bytes(file.size),
                        blob.hash.short()
                    ),
                    DataState::Remote => {
                        format!("  large, on peers (tandem fetch)  {}", blob.hash.short())
                    }
                },
            };
            println!("  {:<48} {:>10}{state}", file.path, bytes(file.size));
        }
    }
}

pub fn print_fetch(result: &FetchResult) {
    for path in &result.fetched {
        println!("fetched {path}");
    }
    for failure in &result.failed {
        println!("FAILED  {}: {}", failure.path, failure.reason);
    }
    println!(
        "{} fetched, {} already here, {} failed; {} received",
        result.fetched.len(),
        result.already_local.len(),
        result.failed.len(),
        bytes(result.bytes_received)
    );
}

pub fn print_usage(usage: &DiskUsage) {
    println!(
        "{:<24} {:>10} {:>12} {:>12} {:>12}",
        "project", "in Git", "large, here", "on peers", "old versions"
    );
    for p in &usage.projects {
        println!(
            "{:<24} {:>10} {:>12} {:>12} {:>12}",
            p.name,
            bytes(p.tracked_bytes),
            bytes(p.large_local_bytes),
            bytes(p.large_remote_bytes),
            bytes(p.old_version_bytes)
        );
    }
    println!(
        "blob store: {} (each content once) in {}",
        bytes(usage.store_bytes),
        usage.home
    );
}

pub fn print_evict(result: &EvictResult) {
    for path in &result.evicted {
        println!("dropped {path} (still on peers; `tandem fetch` brings it back)");
    }
    if result.old_versions > 0 {
        println!("dropped {} old version(s)", result.old_versions);
    }
    for kept in &result.kept {
        println!("kept    {}: {}", kept.path, kept.reason);
    }
    println!(
        "{} freed at the store's next collection",
        bytes(result.bytes)
    );
}

fn line(transfers: &[TransferView]) -> Option<String> {
    let running: Vec<&TransferView> = transfers
        .iter()
        .filter(|t| t.state == TransferState::Running)
        .collect();
    if running.is_empty() {
        return None;
    }
    let total: u64 = running.iter().map(|t| t.total).sum();
    let done: u64 = running.iter().map(|t| t.done).sum();
    let rate: u64 = running.iter().map(|t| t.bytes_per_second).sum();
    let percent = if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    };
    let eta = match total.saturating_sub(done).checked_div(rate) {
        Some(seconds) => format!("{seconds}s left"),
        None => "…".into(),
    };
    let width = 24;
    let filled = ((percent / 100.0) * width as f64) as usize;
    let bar = format!(
        "{}{}",
        "#".repeat(filled),
        "-".repeat(width - filled.min(width))
    );
    Some(format!(
        "[{bar}] {percent:5.1}%  {} / {}  {}/s  {eta}  ({} file{})",
        bytes(done),
        bytes(total),
        bytes(rate),
        running.len(),
        if running.len() == 1 { "" } else { "s" }
    ))
}

/// Runs `request`, drawing a progress line on a terminal from the node's
/// transfer list while it runs.
pub async fn with_progress<T>(
    client: &Client,
    project: &str,
    request: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    let mut stderr = std::io::stderr();
    if !stderr.is_terminal() {
        return request.await;
    }
    let mut request = std::pin::pin!(request);
    let mut drawn = false;
    loop {
        tokio::select! {
            result = &mut request => {
                if drawn {
                    let _ = write!(stderr, "\r\x1b[2K");
                }
                return result;
            }
            () = tokio::time::sleep(Duration::from_millis(250)) => {
                let Ok(transfers) = client.get::<Vec<TransferView>>("/api/transfers").await else {
                    continue;
                };
                let mine: Vec<TransferView> =
                    transfers.into_iter().filter(|t| t.project == project).collect();
                if let Some(text) = line(&mine) {
                    let _ = write!(stderr, "\r\x1b[2K{text}");
                    let _ = stderr.flush();
                    drawn = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_protocol::blob::BlobHash;

    fn transfer(done: u64, total: u64, rate: u64, state: TransferState) -> TransferView {
        TransferView {
            id: 1,
            project: "lab".into(),
            path: "input/big.bin".into(),
            hash: BlobHash::of(b"big"),
            total,
            done,
            bytes_per_second: rate,
            state,
        }
    }

    #[test]
    fn the_progress_line_counts_running_transfers_in_binary_units() {
        let running = transfer(512 << 10, 1 << 20, 256 << 10, TransferState::Running);
        let finished = transfer(9 << 30, 9 << 30, 0, TransferState::Done);
        assert_eq!(
            line(&[running.clone(), finished.clone()]).as_deref(),
            Some(
                "[############------------]  50.0%  512.0 KiB / 1.0 MiB  256.0 KiB/s  2s left  (1 file)"
            )
        );
        let stalled = transfer(0, 1 << 20, 0, TransferState::Running);
        let two = line(&[running, stalled.clone()]).expect("two running");
        assert!(
            two.contains("512.0 KiB / 2.0 MiB  256.0 KiB/s  6s left  (2 files)"),
            "{two}"
        );
        let none_moving = line(&[stalled]).expect("one running");
        assert!(none_moving.ends_with("0 B/s  …  (1 file)"), "{none_moving}");
        assert_eq!(line(&[finished]), None);
    }
}
