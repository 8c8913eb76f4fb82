//! Project environments: the spec in `.tandem/env`, images built from it,
//! and JupyterLab containers whose cell executions land in the feed.
//!
//! - [`bases`]: the shipped base definitions;
//! - [`docker`]: reaching the engine;
//! - [`build`]: base and environment images, cached by content;
//! - [`resolve`]: which package versions exist, asked inside the base;
//! - [`containers`]: launching, finding and stopping JupyterLab;
//! - [`jupyter`]: following kernels' IOPub channels;
//! - [`figures`]: figures from the feed, served to and fetched from members;
//! - [`accepted`]: which snippets this node's user has seen and accepted;
//! - [`service`]: the node's operations, used by the API.

pub mod accepted;
pub mod bases;
pub mod build;
pub mod containers;
pub mod docker;
pub mod figures;
pub mod jupyter;
pub mod resolve;
pub mod service;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use tandem_protocol::api::BuildProgress;
use tandem_protocol::env::Manager;

pub use bases::Catalog;

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(transparent)]
    Spec(#[from] tandem_protocol::env::EnvError),
    #[error(
        "Docker is not running or cannot be reached at {address} ({detail}). Start it \
         (Linux: `sudo systemctl start docker`; macOS or Windows: open Docker Desktop), \
         or point DOCKER_HOST at a running engine, then try again"
    )]
    DockerUnavailable { address: String, detail: String },
    #[error("Docker: {0}")]
    Docker(String),
    #[error("unknown base {id:?}; the bases are: {known}")]
    UnknownBase { id: String, known: String },
    #[error(
        "this project wants revision {wanted} of base {id}, but this node ships revision {have}; \
         update tandem or pick the base again"
    )]
    BaseRevision { id: String, wanted: u32, have: u32 },
    #[error(
        "the image {image} is not here and could not be pulled ({detail}); with no registry \
         in reach, run `tandem bases bootstrap` to build it from Debian's packages"
    )]
    MissingRootImage { image: String, detail: String },
    #[error("no {manager} package named {name:?} exists{hint}")]
    UnknownPackage {
        manager: Manager,
        name: String,
        hint: String,
    },
    #[error("{manager} package {name} has no version {version:?}; the newest is {newest}")]
    UnknownVersion {
        manager: Manager,
        name: String,
        version: String,
        newest: String,
    },
    #[error("could not look up {manager} packages: {detail}")]
    Lookup { manager: Manager, detail: String },
    #[error("building {image} failed; the last lines of the build:\n{}", log.join("\n"))]
    BuildFailed { image: String, log: Vec<String> },
    #[error("JupyterLab did not start; the last lines it printed:\n{}", log.join("\n"))]
    LaunchFailed { log: Vec<String> },
    #[error("{0}")]
    NotHere(String),
    #[error(
        "{project} has Dockerfile snippets from someone else that you have not accepted, so \
         nothing is built or launched. Read them:\n{}\nTo build them, run `tandem env snippet \
         accept {project} {}` (or press Accept on the Environment page); to drop one, \
         `tandem env snippet remove {project} NAME`",
        describe_snippets(snippets),
        snippets.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(" ")
    )]
    UnacceptedSnippets {
        project: String,
        /// Name and lines of each.
        snippets: Vec<(String, String)>,
    },
    #[error(
        "snippet {name} is not the one you were shown: its lines are now\n{lines}Look at them \
         again and accept those"
    )]
    SnippetChanged { name: String, lines: String },
    #[error("{path} is {what}; the container is not started on it")]
    UnsafeMount { path: PathBuf, what: &'static str },
    #[error("the accepted snippets in {path}: {source}")]
    Accepted {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn describe_snippets(snippets: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, lines) in snippets {
        out.push_str(&format!("--- snippet {name}:\n"));
        for line in lines.lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out.trim_end().to_owned()
}

impl EnvError {
    /// Whether the user's input caused this (bad name, unknown package,
    /// a snippet that does not build) rather than the machine.
    pub fn is_users(&self) -> bool {
        matches!(
            self,
            EnvError::Spec(_)
                | EnvError::UnknownBase { .. }
                | EnvError::UnknownPackage { .. }
                | EnvError::UnknownVersion { .. }
                | EnvError::BaseRevision { .. }
                | EnvError::BuildFailed { .. }
                | EnvError::NotHere(_)
                | EnvError::UnacceptedSnippets { .. }
                | EnvError::SnippetChanged { .. }
                | EnvError::UnsafeMount { .. }
        )
    }
}

/// What the node keeps about environments while it runs.
pub struct EnvState {
    pub catalog: Catalog,
    /// Builds in progress, by project name.
    pub builds: Mutex<HashMap<String, BuildProgress>>,
    /// One build at a time: two at once on a laptop only slow both.
    pub build_lock: tokio::sync::Mutex<()>,
    /// Followed containers, by container id.
    pub monitors: Mutex<HashMap<String, Monitor>>,
    /// One change to the accepted snippets at a time (read, add, write).
    pub accept_lock: Mutex<()>,
}

/// A container being followed for cell executions.
pub struct Monitor {
    pub project: String,
    pub follower: tokio::task::JoinHandle<()>,
    pub recorder: tokio::task::JoinHandle<()>,
    pub followed: jupyter::Followed,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.follower.abort();
        self.recorder.abort();
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
        }
    }
}
