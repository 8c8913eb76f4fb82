//! Versions of a project: one looked at, two compared, one brought back,
//! one rerun. A version is a commit of the project's history; the CLI and
//! the web UI name it by an activity entry, a commit (or its first hex
//! digits) or a date.

use serde::{Deserialize, Serialize};

use super::{EntryView, PackageView, SectionFiles};
use crate::activity::FileAction;
use crate::blob::BlobHash;

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
