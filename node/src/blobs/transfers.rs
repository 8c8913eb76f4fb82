//! Live progress of blob transfers, for the CLI's progress bar and the UI.

use std::collections::BTreeMap;
use std::sync::Mutex;
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
}

#[derive(Default)]
pub struct Transfers {
    /// The last id given, and every transfer kept.
    state: Mutex<(u64, BTreeMap<u64, Transfer>)>,
}

impl Transfers {
    pub fn begin(&self, project: &str, path: &str, hash: BlobHash, total: u64, done: u64) -> u64 {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 += 1;
        let id = guard.0;
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
        id
    }

    /// Records `received` new bytes since the transfer began.
    pub fn progress(&self, id: u64, received: u64) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = guard.1.get_mut(&id) {
            t.view.done = (t.resumed_from + received).min(t.view.total);
            let seconds = t.started.elapsed().as_secs_f64();
            if seconds > 0.0 {
                t.view.bytes_per_second = (received as f64 / seconds) as u64;
            }
        }
    }

    pub fn finish(&self, id: u64, result: Result<(), String>) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = guard.1.get_mut(&id) {
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
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.values().map(|t| t.view.clone()).collect()
    }
}
