//! What the node keeps about environments while it runs: the catalog of
//! bases, builds in progress, followed containers, and the locks that keep
//! builds and snippet acceptance one at a time.

use std::collections::HashMap;
use std::sync::Mutex;

use tandem_protocol::api::BuildProgress;

use super::bases::Catalog;
use super::jupyter;

/// What the node keeps about environments while it runs.
pub struct EnvState {
    pub(super) catalog: Catalog,
    /// Builds in progress, by project name.
    pub(super) builds: Mutex<HashMap<String, BuildProgress>>,
    /// One build at a time: two at once on a laptop only slow both.
    pub(super) build_lock: tokio::sync::Mutex<()>,
    /// Followed containers, by container id.
    pub(super) monitors: Mutex<HashMap<String, Monitor>>,
    /// One change to the accepted snippets at a time (read, add, write).
    pub(super) accept_lock: Mutex<()>,
    /// One change to a drift record at a time (load, change, save).
    pub(super) drift_lock: Mutex<()>,
    /// Drift checks made since start, and when the last was, by project
    /// name (kept here: most checks find nothing and write nothing).
    pub(super) drift_checks: Mutex<HashMap<String, (u64, i64)>>,
}

/// A container being followed for cell executions.
pub struct Monitor {
    pub project: String,
    pub follower: tokio::task::JoinHandle<()>,
    pub recorder: tokio::task::JoinHandle<()>,
    /// Checks the container for drift after cells and while a terminal
    /// is open.
    pub drift: tokio::task::JoinHandle<()>,
    pub followed: jupyter::Followed,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.follower.abort();
        self.recorder.abort();
        self.drift.abort();
    }
}

impl Default for EnvState {
    fn default() -> Self {
        EnvState {
            catalog: Catalog::shipped(),
            builds: Mutex::default(),
            build_lock: tokio::sync::Mutex::new(()),
            monitors: Mutex::default(),
            accept_lock: Mutex::default(),
            drift_lock: Mutex::default(),
            drift_checks: Mutex::default(),
        }
    }
}
