//! Request and response bodies of the node's HTTP/JSON API.
//!
//! The CLI, the web UI and the end-to-end tests all speak these types, so
//! they live in the dependency-free core rather than in the node.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::activity::{Entry, FileAction, SignedEntry, entry_id};
use crate::blob::BlobHash;

/// The three folders of a project that hold user files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    Code,
    Input,
    Output,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Code, Section::Input, Section::Output];

    pub fn as_str(self) -> &'static str {
        match self {
            Section::Code => "code",
            Section::Input => "input",
            Section::Output => "output",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Section {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Section::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown section {text:?}: expected {}", Section::names()))
    }
}

impl Section {
    /// The sections as a sentence reads them: `code, input or output`.
    pub fn names() -> String {
        let names: Vec<&str> = Section::ALL.iter().map(|s| s.as_str()).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityInfo {
    pub did: String,
    pub peer_id: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateProject {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Base environment id (`tandem bases`); python3-minimal when absent.
    #[serde(default)]
    pub base: Option<String>,
}

/// An entry as shown to users: its id plus its (verified) content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    pub id: String,
    #[serde(flatten)]
    pub entry: Entry,
}

impl From<&SignedEntry> for EntryView {
    fn from(signed: &SignedEntry) -> Self {
        Self {
            id: entry_id(signed),
            entry: signed.payload.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSummary {
    pub name: String,
    pub id: String,
    pub owner: String,
    pub description: String,
    pub path: String,
    pub created_ms: i64,
    pub commits: usize,
    pub files: usize,
    pub entries: usize,
    pub last_activity: Option<EntryView>,
    /// This node's role in the project.
    pub role: Option<Role>,
    pub public: bool,
    /// What the node ignored about this project, for the user to see (say,
    /// a working-tree manifest that names another project).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Path relative to the project root, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Set for large files kept in the blob store rather than in Git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<BlobInfo>,
}

/// Where a large file's bytes are: here, partly here, or only on peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataState {
    /// Verified in the blob store and written into the working tree.
    Local,
    /// Some verified bytes are here; a fetch resumes from them.
    Partial,
    /// Only the pointer is here; `tandem fetch` brings the bytes.
    Remote,
}

impl fmt::Display for DataState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataState::Local => "local",
            DataState::Partial => "partial",
            DataState::Remote => "remote",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobInfo {
    pub hash: BlobHash,
    pub state: DataState,
    /// Verified bytes held locally.
    pub present: u64,
}

/// Which large files to bring from peers; empty means all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    #[serde(default)]
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResult {
    /// Files now present in the working tree.
    pub fetched: Vec<String>,
    /// Files that were already here.
    pub already_local: Vec<String>,
    /// Bytes received from peers (resumed transfers count only new bytes).
    pub bytes_received: u64,
    /// Files that could not be fetched, with the reason.
    pub failed: Vec<FetchFailure>,
    /// Peers (did:key) that sent verified bytes.
    #[serde(default)]
    pub peers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchFailure {
    pub path: String,
    pub reason: String,
}

/// One version of a dataset, without its file listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSummary {
    pub number: u32,
    pub collection: BlobHash,
    pub files: u64,
    pub bytes: u64,
    pub created_ms: i64,
    pub message: String,
}

impl From<&crate::dataset::Version> for VersionSummary {
    fn from(v: &crate::dataset::Version) -> Self {
        Self {
            number: v.number,
            collection: v.collection,
            files: v.files.len() as u64,
            bytes: v.bytes(),
            created_ms: v.created_ms,
            message: v.message.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub name: String,
    pub id: String,
    pub description: String,
    pub owner: String,
    pub role: Option<Role>,
    pub version_count: u32,
    pub latest: Option<VersionSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetDetail {
    #[serde(flatten)]
    pub summary: DatasetSummary,
    pub versions: Vec<VersionSummary>,
    /// The version whose files are listed.
    pub shown: Option<u32>,
    pub files: Vec<crate::dataset::VersionFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateDataset {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// `GET /api/datasets/{name}?version=N`: one version's files; the latest
/// without it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionQuery {
    #[serde(default)]
    pub version: Option<u32>,
}

/// Files to copy into a dataset; the result is its next version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddToDataset {
    /// Absolute paths on the node's machine (files or folders).
    pub paths: Vec<String>,
    #[serde(default)]
    pub message: String,
}

/// Pin a dataset version into a project: `NAME` (latest) or `NAME@N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRequest {
    pub dataset: String,
}

/// Which local copies of large files to drop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvictRequest {
    /// Files or folders; empty means old versions only.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Drop even when no connected peer confirms it holds a copy.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvictResult {
    /// Files now only on peers.
    pub evicted: Vec<String>,
    /// Old versions (no longer in the working tree) dropped.
    pub old_versions: usize,
    /// Bytes the store gives back at its next collection.
    pub bytes: u64,
    /// What was kept, and why.
    pub kept: Vec<FetchFailure>,
}

/// Disk use of one project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectUsage {
    pub name: String,
    /// Files kept in Git, as checked out.
    pub tracked_bytes: u64,
    /// Large files of the current version held locally.
    pub large_local_bytes: u64,
    /// Large files of the current version left on peers.
    pub large_remote_bytes: u64,
    /// Older versions of large files still held locally.
    pub old_version_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUsage {
    pub projects: Vec<ProjectUsage>,
    /// Everything the blob store keeps (shared content counted once).
    pub store_bytes: u64,
    pub home: String,
}

/// `tandem du --json`: the disk use, and on a hub what it keeps for each
/// project against its quota (the same fields as [`DiskUsage`] otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuReport {
    #[serde(flatten)]
    pub usage: DiskUsage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubView>,
}

/// `GET /api/hub`: a hub's own account of itself, for its operator (the
/// Hub page and `tandem du`): who may use it, what it sees, what it keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubView {
    pub did: String,
    /// The public address it was started with (`--external-address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_address: Option<String>,
    /// Where its relay for blob endpoints listens.
    pub relay_listen: String,
    /// That relay's URL as peers dial it, once it is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_relay: Option<String>,
    /// Anyone may use its relays (`--open`).
    pub open: bool,
    /// Keys allowed besides members of the projects it keeps (`--allow`).
    pub allow: Vec<String>,
    /// Distinct keys holding a role in the projects it keeps: they may use
    /// its relays.
    pub members: usize,
    /// Most large-file bytes kept per project (0: no limit).
    pub quota_bytes: u64,
    /// The projects it keeps a copy of.
    pub projects: Vec<HubProject>,
}

/// One project a hub keeps, and its large files against the quota.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubProject {
    pub name: String,
    pub id: String,
    pub owner: String,
    /// The hub's role: reader while it is granted one; `None` once revoked
    /// (it then gets nothing new and serves nothing of it).
    pub role: Option<Role>,
    /// Bytes of the project's large files held here (the current version,
    /// linked dataset versions and older versions still held).
    pub kept_bytes: u64,
    /// Bytes the current version and linked datasets need in all.
    pub wanted_bytes: u64,
    /// Files of the current version and linked datasets not held here.
    pub missing_files: usize,
    /// Of those, the ones left out because they would pass the quota.
    pub over_quota_files: usize,
    /// Why files are missing, in a sentence, when some are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One blob transfer, for progress bars in the CLI and the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferView {
    pub id: u64,
    pub project: String,
    pub path: String,
    pub hash: BlobHash,
    pub total: u64,
    /// Verified bytes so far, including those already held before it started.
    pub done: u64,
    pub bytes_per_second: u64,
    pub state: TransferState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum TransferState {
    Running,
    Done,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionFiles {
    pub section: Section,
    pub files: Vec<FileInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectDetail {
    #[serde(flatten)]
    pub summary: ProjectSummary,
    pub sections: Vec<SectionFiles>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddFiles {
    pub section: Section,
    /// Absolute paths on the node's machine (the CLI and node share a host).
    pub paths: Vec<String>,
}

/// What a sweep (or an add) recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepResult {
    /// The new commit, or none when nothing had changed.
    pub commit: Option<String>,
    pub entries: Vec<EntryView>,
    /// Paths left out of the commit, each with why: symbolic links (never
    /// committed), pointers whose file lies beyond a link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

/// Feed query as typed by a user; the node resolves names and dates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityQuery {
    pub kind: Option<String>,
    pub author: Option<String>,
    pub path: Option<String>,
    pub search: Option<String>,
    pub since: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteRequest {
    pub text: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRequest {
    /// Where to write the zip; the node picks a name in the current folder
    /// of the CLI when absent.
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportResult {
    pub path: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequest {
    pub path: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateProfile {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// `GET /api/health`: the node is up, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub did: String,
}

/// `DELETE /api/projects/{name}`: the project is gone from this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub deleted: bool,
}

/// The body of a request that carries nothing (sweep, build, stop, …): it
/// serialises as `{}`, and the node reads none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// What `tandem bases bootstrap` printed while building the base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapResult {
    pub output: String,
}

/// Every API error has this body, with a message meant for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRequest {
    /// A `did:key:` or a libp2p PeerId.
    pub peer: String,
    pub role: String,
    /// `YYYY-MM-DD` or RFC 3339.
    #[serde(default)]
    pub expires: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisibilityRequest {
    pub public: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub did: String,
    pub peer_id: String,
    /// A label from the member's own activity entries, if any: never authority.
    pub name: Option<String>,
    pub role: Role,
    pub granted_by: String,
    pub granted_by_name: Option<String>,
    pub since_ms: i64,
    pub expires_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersView {
    pub members: Vec<MemberView>,
    pub public: bool,
}

/// A package pin as shown to users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageView {
    pub manager: String,
    pub name: String,
    pub version: String,
}

/// A base environment, for choosing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseView {
    pub id: String,
    pub revision: u32,
    pub name: String,
    pub description: String,
    pub languages: Vec<String>,
    pub tools: Vec<String>,
    pub package_managers: Vec<String>,
    pub packages: Vec<PackageView>,
    pub parent: Option<String>,
    pub size_mb: u64,
    pub gpu_required: bool,
    pub gpu_note: Option<String>,
    /// Whether this base's image is built on this machine (None: Docker
    /// could not be asked).
    pub image_here: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnippetView {
    pub name: String,
    pub lines: String,
    /// Names these lines (see `Snippet::hash`); accepting sends it back.
    #[serde(default)]
    pub hash: String,
    /// Whether this node's user wrote or accepted these lines; a snippet
    /// from someone else is not built until they are.
    #[serde(default)]
    pub accepted: bool,
}

/// A project's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvView {
    pub project: String,
    pub base: BaseView,
    pub packages: Vec<PackageView>,
    pub snippets: Vec<SnippetView>,
    /// The image this environment builds to, once its base image is here.
    pub image: Option<String>,
    /// Whether that image is built.
    pub built: bool,
    /// Why Docker could not be asked, if it could not.
    pub docker: Option<String>,
    /// The generated Dockerfile (never tracked).
    pub dockerfile: String,
    /// The project's container limits (`.tandem/env/limits.toml`).
    #[serde(default)]
    pub limits: LimitsView,
}

/// Container limits: what the project sets (None: the node's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsView {
    pub memory: Option<String>,
    pub pids: Option<u32>,
}

/// `tandem env limits`: set either or both; `reset` clears both first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsRequest {
    #[serde(default)]
    pub memory: Option<String>,
    #[serde(default)]
    pub pids: Option<u32>,
    #[serde(default)]
    pub reset: bool,
}

/// Accepting a snippet: the hash of the lines the user saw, so lines that
/// changed since are not accepted unseen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptSnippet {
    pub hash: String,
}

/// `tandem env add`: names alone get the newest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPackages {
    /// pip or apt
    pub manager: String,
    /// `name` or `name==version`
    pub packages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequirements {
    /// The text of a requirements.txt.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnippetRequest {
    pub name: String,
    pub lines: String,
}

/// What an environment edit did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvChange {
    pub added: Vec<PackageView>,
    pub removed: Vec<PackageView>,
    pub commit: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutdatedPackage {
    pub manager: String,
    pub name: String,
    pub pinned: String,
    pub newest: String,
}

/// A package the running container has and the project's environment
/// does not, or the other way round: environment drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftItem {
    pub manager: String,
    pub name: String,
    /// `installed`, `removed` or `changed`.
    pub kind: String,
    /// What the spec pins, or else what the image had.
    pub expected: Option<String>,
    /// What the running container has.
    pub found: Option<String>,
    /// Whether `expected` is the spec's pin.
    pub pinned: bool,
    /// One line for people: "six 1.16.0 installed in the running
    /// container, not in the project's environment".
    pub description: String,
    /// When the node first saw it.
    pub seen_ms: i64,
    /// What **Pin it** does: `pin` (write the version found), `unpin`
    /// (take out a pin the container no longer has), or nothing: the
    /// package came with the image, so only Ignore applies.
    pub pin: Option<String>,
}

/// A project's environment drift: what the node saw in its running
/// container and has not been told to pin or ignore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftReport {
    pub project: String,
    pub items: Vec<DriftItem>,
    /// Drift the user chose to ignore (kept out until the version changes).
    pub ignored: Vec<DriftItem>,
    /// Whether a container of the project runs and is being checked.
    pub watching: bool,
    /// When the container was last checked.
    pub checked_ms: Option<i64>,
    /// Why the last check could judge nothing, when it could not.
    pub problem: Option<String>,
    /// Checks made since the node started (most find nothing changed and
    /// cost one `stat` in the container).
    #[serde(default)]
    pub checks: u64,
}

/// What to do with drifted packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftChoice {
    /// Make the environment match the container: pin the version found
    /// (or take out a pin the container no longer has).
    Pin,
    /// Leave the environment as it is and stop reporting this package at
    /// this version.
    Ignore,
}

/// `POST /api/projects/{name}/env/drift`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftRequest {
    pub choice: DriftChoice,
    /// `name` or `manager:name` (`pip:six`, `apt:curl`).
    #[serde(default)]
    pub packages: Vec<String>,
    /// Every drifted package instead of the ones named.
    #[serde(default)]
    pub all: bool,
}

/// What a drift choice did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftOutcome {
    pub message: String,
    /// The commit that changed the environment, for Pin it.
    pub commit: Option<String>,
    pub report: DriftReport,
}

/// A build in progress, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildProgress {
    pub project: String,
    /// The image being built now (a base, or the environment).
    pub image: String,
    pub step: u32,
    pub total: u32,
    pub cached_steps: u32,
    /// The latest line of build output.
    pub line: String,
    pub started_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildResult {
    pub image: String,
    /// False when the image was already built: nothing ran.
    pub rebuilt: bool,
    pub bases_built: Vec<String>,
    pub steps: u32,
    pub cached_steps: u32,
    pub seconds: f64,
    /// The last lines of build output.
    pub log: Vec<String>,
}

/// A running project container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerView {
    pub project: String,
    pub container: String,
    pub image: String,
    /// JupyterLab's URL, with its token.
    pub url: String,
    pub port: u16,
    pub started_ms: i64,
    /// Kernels whose executions are being recorded.
    pub kernels_followed: usize,
    /// Whether this call started it (false: it was already running).
    pub started_now: bool,
    /// Set for a read-only container on an old version (its commit):
    /// nothing run there is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchRequest {
    /// Only `jupyterlab` for now.
    #[serde(default)]
    pub tool: Option<String>,
    /// A version to open read-only in its own environment (an activity
    /// entry id, a commit or a date) instead of the working tree; cells
    /// run there are not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// A peer as `tandem peers` and the Peers page show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub did: String,
    pub peer_id: String,
    pub name: Option<String>,
    pub addresses: Vec<String>,
    /// mdns, manual, via another peer, or inbound (the peer found us).
    pub found_by: String,
    pub connected: bool,
    pub last_seen_ms: Option<i64>,
    pub rtt_ms: Option<f64>,
    /// How the best open connection to the peer was made (none when not
    /// connected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionKind>,
    /// Where the open direct connections to the peer come from (also
    /// those it dialled in on, which `addresses` does not keep): how its
    /// blob endpoint is reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_addresses: Vec<String>,
}

/// How a connection to a peer was made: directly (one side dialled the
/// other), hole-punched (both dialled at once, coordinated over a relayed
/// connection, through their NATs) or relayed (through a hub, because the
/// NATs allow nothing else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionKind {
    Relayed,
    HolePunched,
    Direct,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Direct => "direct",
            ConnectionKind::HolePunched => "hole-punched",
            ConnectionKind::Relayed => "relayed",
        }
    }
}

/// Whether peers on the internet can dial this node, as AutoNAT found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reachability {
    Unknown,
    Public,
    Private,
}

/// This node's link to its hub, if one is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubLinkStatus {
    /// The hub's multiaddr, as set.
    pub address: String,
    pub connected: bool,
    /// Whether the hub holds a relay slot for this node (peers can reach it
    /// through the hub).
    pub reserved: bool,
    /// The hub's relay for blob endpoints, once the hub told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_relay: Option<String>,
}

/// `GET /api/peers/self`: where this node listens, to hand to a colleague
/// (`tandem peers --self`). Fields in alphabetical order, as the node has
/// always written them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnAddresses {
    /// libp2p multiaddrs ending in `/p2p/…`.
    pub addresses: Vec<String>,
    /// UDP addresses of the blob endpoint (large files).
    pub blob_addresses: Vec<String>,
    pub did: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubLinkStatus>,
    pub peer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachability: Option<Reachability>,
}

/// `POST /api/peers`: a multiaddr (`/ip4/…/p2p/…`), or a key alone
/// (`did:key:…` or `12D3KooW…`) that connected peers are asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPeer {
    pub address: String,
}

/// The answer to [`AddPeer`]: the key (`did:key:`) now connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConnected {
    pub connected: String,
}

/// `POST /api/projects/{name}/sync`. Empty (`{}`): sync now, answered with
/// a [`SyncSummary`]. With `resolve` (`ours`, `theirs`, `keep-both` or
/// `abort`): settle the waiting conflict; with `auto`: turn automatic sync
/// on or off. Both of those are answered with a [`SyncMessage`]; `auto`
/// wins when both are given. Absent fields are left out, so the bodies are
/// `{}`, `{"resolve":…}` and `{"auto":…}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<String>,
    /// With `resolve` `ours` or `theirs`: a notebook's cell conflicts
    /// settled one by one (path → conflict id → choice); the others take
    /// the side `resolve` names.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub cells: crate::notebook::CellChoices,
    /// Turns automatic sync on or off instead of syncing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<bool>,
}

/// What settling a conflict or switching automatic sync did, for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMessage {
    pub message: String,
}

/// What one `tandem sync` did, per peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    pub peers: Vec<PeerSync>,
    /// Files in conflict, when a merge needs the user.
    pub conflicts: Vec<String>,
    pub message: String,
    /// Large files brought from peers after the merge.
    #[serde(default)]
    pub data: FetchResult,
}

/// One peer's part in a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSync {
    pub peer: String,
    pub name: Option<String>,
    pub denied: bool,
    pub merge: Option<MergeOutcome>,
    pub new_entries: usize,
    pub problems: Vec<String>,
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum MergeOutcome {
    UpToDate,
    FastForward { head: String, commits: usize },
    Merged { head: String, commits: usize },
    Conflicts { files: Vec<String> },
}

/// `POST /api/clone`: fetch a project a peer shares (`tandem project
/// clone`), answered with its [`ProjectSummary`]. Fields in alphabetical
/// order, as the CLI has always written them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneRequest {
    /// A local name other than the project's own.
    #[serde(default)]
    pub name: Option<String>,
    /// Leave large files on peers until `tandem fetch` asks for them.
    #[serde(default)]
    pub no_data: bool,
    /// The project's id (`tp…`).
    pub project: String,
}

/// A project a connected peer offers to this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerOffer {
    pub peer: String,
    pub peer_name: Option<String>,
    #[serde(flatten)]
    pub offer: crate::wire::Offer,
    pub have_locally: bool,
}

/// `POST /api/projects/{name}/invites`: make a single-use invite link
/// (`tandem invite`), answered with an [`InviteCreated`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateInvite {
    /// `reader`, `writer` or `admin`.
    pub role: String,
    /// `YYYY-MM-DD` (the end of that day, UTC), `YYYY-MM-DDTHH:MMZ`, RFC
    /// 3339, or a span like `3d` or `12h`; seven days when absent.
    #[serde(default)]
    pub expires: Option<String>,
}

/// A new invite: the ticket to hand to one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCreated {
    /// The `tandem:` link, for `tandem join` or the Projects page.
    pub ticket: String,
    /// The invite's short name, for `tandem invite NAME --revoke ID`.
    pub id: String,
    pub role: Role,
    /// When the ticket stops working (RFC 3339, UTC).
    pub expires: String,
    pub expires_ms: i64,
    /// What to do with it, for people (the web UI shows it).
    pub message: String,
}

/// An invite as `tandem invite NAME --list` shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteView {
    pub id: String,
    pub role: Role,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// The key (`did:key:`) that used it, if one did.
    pub used_by: Option<String>,
    pub used_ms: Option<i64>,
}

/// `POST /api/join`: use an invite ticket (`tandem join`): the inviter's
/// node grants the role, then the project is cloned; answered with the
/// clone's [`ProjectSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub ticket: String,
    /// A local name other than the project's own.
    #[serde(default)]
    pub name: Option<String>,
    /// Leave large files on peers until `tandem fetch` asks for them.
    #[serde(default)]
    pub no_data: bool,
}

/// Where a project stands against each peer it was synced with, and any
/// conflict waiting for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStateView {
    pub autosync: bool,
    /// This node's branch head.
    pub head: Option<String>,
    pub peers: Vec<PeerHeadView>,
    pub conflict: Option<ConflictView>,
}

/// One peer's last known branch head, compared with ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerHeadView {
    pub peer_id: String,
    pub name: Option<String>,
    pub head: String,
    /// Commits we have that the peer's head lacks.
    pub ahead: usize,
    /// Commits the peer's head has that we lack.
    pub behind: usize,
    /// When we last recorded this peer's head.
    pub last_sync_ms: Option<i64>,
}

/// A merge waiting for the user's choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictView {
    pub peer: String,
    pub files: Vec<ConflictFile>,
}

/// One conflicted file; the two versions are given when both are small
/// text files (for a diff), absent otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictFile {
    pub path: String,
    pub ours: Option<String>,
    pub theirs: Option<String>,
    /// A notebook's conflicts, cell by cell; everything else in it merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<crate::notebook::Conflict>,
    /// Why a notebook is settled as a whole file (it could not be read as
    /// nbformat 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whole_file: Option<String>,
}

/// Entries this user starred or hid: a personal view, never synced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marks {
    pub starred: Vec<String>,
    pub hidden: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRequest {
    pub entry: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub star: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide: Option<bool>,
}

/// Node settings a person changes from the Settings page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// A relay or hub peer (a multiaddr ending in `/p2p/…`) that this node
    /// connects to at start, for reaching peers behind NAT.
    #[serde(default)]
    pub relay: Option<String>,
}

// ---- Versions: browsing, comparing and restoring any version ----
// Versions of a project: one looked at, two compared, one brought back,
// one rerun. A version is a commit of the project's history; the CLI and
// the web UI name it by an activity entry, a commit (or its first hex
// digits) or a date.

/// One version: the commit, when it was made and what it said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectVersion {
    pub commit: String,
    /// The first 7 hex digits, as people quote them.
    pub short: String,
    pub time_ms: i64,
    /// The commit message's first line.
    pub message: String,
    /// Whether this is the project's current version.
    pub current: bool,
}

/// The environment a version names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvAtVersion {
    pub base: String,
    pub revision: u32,
    pub packages: Vec<PackageView>,
    /// Names of the custom Dockerfile snippets.
    pub snippets: Vec<String>,
}

/// A dataset version a project version links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAtVersion {
    pub name: String,
    pub dataset: String,
    pub version: u32,
    pub collection: BlobHash,
    pub files: usize,
    pub bytes: u64,
}

/// A version's files, README, environment and linked datasets, as they
/// were (large files with where their bytes are now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionDetail {
    pub project: String,
    pub version: ProjectVersion,
    pub sections: Vec<SectionFiles>,
    pub readme: Option<String>,
    pub env: EnvAtVersion,
    pub datasets: Vec<LinkAtVersion>,
    /// What could not be read of this version (a malformed pointer or
    /// package file), each with why; the rest is still shown.
    #[serde(default)]
    pub unreadable: Vec<String>,
}

/// One side of a changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSide {
    pub size: u64,
    /// Set for large files: the BLAKE3 hash of their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<BlobHash>,
}

/// A file added, removed or changed between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDelta {
    pub path: String,
    pub action: FileAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<FileSide>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<FileSide>,
    /// Whether the file is a large one (compared by size and hash).
    pub large: bool,
    /// A unified diff of a text file (cut at [`MAX_PATCH_LEN`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// The patch was longer than shown.
    #[serde(default)]
    pub patch_cut: bool,
    /// A small file that is not text: no patch.
    #[serde(default)]
    pub binary: bool,
    /// A notebook's change cell by cell (in place of a patch of its JSON).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<crate::notebook::CellDelta>,
}

/// Longest text diff shown for one file.
pub const MAX_PATCH_LEN: usize = 64 * 1024;

/// A package added, removed or re-pinned between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageDelta {
    pub manager: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// A dataset link added, removed or moved to another version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkDelta {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u32>,
}

/// What changed from one version to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionDiff {
    pub project: String,
    pub from: ProjectVersion,
    pub to: ProjectVersion,
    pub files: Vec<FileDelta>,
    /// `(before, after)` as `id revision`, when the base changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<(String, String)>,
    pub packages: Vec<PackageDelta>,
    /// Custom snippets added (`after` only), removed or changed.
    pub snippets: Vec<PackageDelta>,
    pub datasets: Vec<LinkDelta>,
}

/// Brings a version back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRequest {
    /// An activity entry id, a commit (or its first hex digits) or a date.
    pub version: String,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreResult {
    pub restored: ProjectVersion,
    /// The new commit; `None` when the project already was that version.
    pub commit: Option<String>,
    pub entry: Option<EntryView>,
    /// Files the restore changed, by their own paths.
    pub changed: usize,
    /// Large files of that version whose bytes are neither here nor on a
    /// connected peer yet; fetched when one is.
    #[serde(default)]
    pub missing: Vec<String>,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).expect("serialises")
    }

    #[test]
    fn the_section_list_is_written_once() {
        assert_eq!(Section::names(), "code, input or output");
        assert_eq!(
            "data".parse::<Section>(),
            Err("unknown section \"data\": expected code, input or output".to_owned())
        );
        for section in Section::ALL {
            assert_eq!(section.as_str().parse::<Section>(), Ok(section));
        }
    }

    /// The typed bodies are byte for byte what the CLI built with `json!`
    /// before (serde_json sorts the keys of a `json!` object).
    #[test]
    fn sync_clone_and_peer_bodies_keep_their_wire_form() {
        assert_eq!(text(&SyncRequest::default()), "{}");
        let resolve = SyncRequest {
            resolve: Some("keep-both".into()),
            ..SyncRequest::default()
        };
        assert_eq!(
            text(&resolve),
            json!({ "resolve": "keep-both" }).to_string()
        );
        let auto = SyncRequest {
            auto: Some(false),
            ..SyncRequest::default()
        };
        assert_eq!(text(&auto), json!({ "auto": false }).to_string());
        let clone = CloneRequest {
            project: "tp1".into(),
            name: None,
            no_data: true,
        };
        assert_eq!(
            text(&clone),
            json!({ "project": "tp1", "name": null, "no_data": true }).to_string()
        );
        assert_eq!(
            text(&AddPeer {
                address: "/ip4/1.2.3.4".into()
            }),
            json!({ "address": "/ip4/1.2.3.4" }).to_string()
        );
        assert_eq!(
            text(&PeerConnected {
                connected: "did:key:z".into()
            }),
            json!({ "connected": "did:key:z" }).to_string()
        );
        let me = OwnAddresses {
            addresses: vec!["/ip4/1".into()],
            blob_addresses: vec!["1.2.3.4:5".into()],
            did: "did:key:z".into(),
            hub: None,
            peer_id: "12D3".into(),
            reachability: None,
        };
        assert_eq!(
            text(&me),
            json!({
                "did": "did:key:z",
                "peer_id": "12D3",
                "addresses": ["/ip4/1"],
                "blob_addresses": ["1.2.3.4:5"],
            })
            .to_string()
        );
        assert_eq!(text(&Deleted { deleted: true }), r#"{"deleted":true}"#);
        assert_eq!(text(&Empty {}), "{}");
    }

    /// The node reads what older clients and the web UI send: absent
    /// fields take their defaults, unknown ones are ignored.
    #[test]
    fn request_bodies_read_leniently() {
        let empty: SyncRequest = serde_json::from_str("{}").expect("empty sync");
        assert_eq!(empty, SyncRequest::default());
        let nulls: SyncRequest =
            serde_json::from_str(r#"{"resolve":null,"auto":null,"x":1}"#).expect("nulls");
        assert_eq!(nulls, SyncRequest::default());
        let clone: CloneRequest =
            serde_json::from_str(r#"{"project":"tp1"}"#).expect("the web UI's clone body");
        assert_eq!(
            clone,
            CloneRequest {
                project: "tp1".into(),
                name: None,
                no_data: false
            }
        );
        assert!(serde_json::from_str::<CloneRequest>("{}").is_err());
        let _: Empty = serde_json::from_str(r#"{"anything":true}"#).expect("ignored");
        let query: VersionQuery = serde_json::from_str("{}").expect("no version");
        assert_eq!(query.version, None);
    }

    #[test]
    fn merge_outcomes_are_tagged() {
        let merged = MergeOutcome::FastForward {
            head: "abc".into(),
            commits: 2,
        };
        assert_eq!(
            text(&merged),
            r#"{"outcome":"fast-forward","head":"abc","commits":2}"#
        );
        assert_eq!(text(&MergeOutcome::UpToDate), r#"{"outcome":"up-to-date"}"#);
    }
}
