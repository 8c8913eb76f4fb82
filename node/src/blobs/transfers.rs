//! Live progress of blob transfers, for the CLI's progress bar and the UI.
//!
//! A transfer reports progress for every verified chunk group (tens of
//! thousands a second at disk speed), so reporting is one relaxed atomic
//! store on the transfer's own counter, never the shared lock; the view
//! (bytes done, rate) is worked out when someone asks, a few times a
//! second at most.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tandem_protocol::api::{TransferState, TransferView};
use tandem_protocol::blob::BlobHash;

/// Finished transfers kept for late observers.
const KEEP_FINISHED: usize = 64;

struct Transfer {
    view: TransferView,
    started: Instant,
    /// Bytes already here when it started, left out of the rate.
    resumed_from: u64,
    /// Bytes received since it started, written by the transfer itself.
    received: Arc<AtomicU64>,
}

/// What a running transfer reports through.
pub struct TransferHandle {
    id: u64,
    received: Arc<AtomicU64>,
}

impl TransferHandle {
    /// Records that `received` bytes have arrived since the transfer began.
    pub fn progress(&self, received: u64) {
        self.received.store(received, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Transfers {
    /// The last id given, and every transfer kept.
    state: Mutex<(u64, BTreeMap<u64, Transfer>)>,
}

impl Transfers {
    pub fn begin(
        &self,
        project: &str,
        path: &str,
        hash: BlobHash,
        total: u64,
        done: u64,
    ) -> TransferHandle {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 += 1;
        let id = guard.0;
        let received = Arc::new(AtomicU64::new(0));
        guard.1.insert(
            id,
            Transfer {
                view: TransferView {
                    id,
                    project: project.to_owned(),
                    path: path.to_owned(),
                    hash,
                    total,
                    done,
                    bytes_per_second: 0,
                    state: TransferState::Running,
                },
                started: Instant::now(),
                resumed_from: done,
                received: received.clone(),
            },
        );
        let finished: Vec<u64> = guard
            .1
            .iter()
            .filter(|(_, t)| t.view.state != TransferState::Running)
            .map(|(id, _)| *id)
            .collect();
        if finished.len() > KEEP_FINISHED {
            for id in &finished[..finished.len() - KEEP_FINISHED] {
                guard.1.remove(id);
            }
        }
        TransferHandle { id, received }
    }

    pub fn finish(&self, handle: &TransferHandle, result: Result<(), String>) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = guard.1.get_mut(&handle.id) {
            t.refresh();
            t.view.state = match result {
                Ok(()) => {
                    t.view.done = t.view.total;
                    TransferState::Done
                }
                Err(reason) => TransferState::Failed(reason),
            };
        }
    }

    pub fn list(&self) -> Vec<TransferView> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .1
            .values_mut()
            .map(|t| {
                if t.view.state == TransferState::Running {
                    t.refresh();
                }
                t.view.clone()
            })
            .collect()
    }
}

impl Transfer {
    /// Brings the view up to the transfer's counter.
    fn refresh(&mut self) {
        let received = self.received.load(Ordering::Relaxed);
        self.view.done = (self.resumed_from + received).min(self.view.total);
        let seconds = self.started.elapsed().as_secs_f64();
        if seconds > 0.0 {
            self.view.bytes_per_second = (received as f64 / seconds) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_shows_in_the_view_and_the_rate_leaves_out_resumed_bytes() {
        let transfers = Transfers::default();
        let hash = BlobHash::of(b"some bytes");
        let handle = transfers.begin("lab", "input/a.bin", hash, 1000, 400);
        assert_eq!(transfers.list()[0].done, 400);
        handle.progress(250);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let view = &transfers.list()[0];
        assert_eq!(view.done, 650);
        assert!(view.bytes_per_second > 0 && view.bytes_per_second <= 250 * 50);
        // Never past the total, whatever a peer claims to have sent.
        handle.progress(10_000);
        assert_eq!(transfers.list()[0].done, 1000);
        transfers.finish(&handle, Err("gone".into()));
        assert!(matches!(
            transfers.list()[0].state,
            TransferState::Failed(_)
        ));
    }
}
