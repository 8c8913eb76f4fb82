//! Why an environment operation failed, and whose fault that is.

use std::path::PathBuf;

use tandem_protocol::env::Manager;

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
    #[error("the drift record in {path}: {source}")]
    DriftStore {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not list the packages in container {container}: {reason}")]
    DriftListing { container: String, reason: String },
    #[error("{0}")]
    NoDrift(String),
    #[error("{0}")]
    NothingToPin(String),
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
                | EnvError::NoDrift(_)
                | EnvError::NothingToPin(_)
        )
    }
}
