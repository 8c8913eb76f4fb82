//! Large files as content-addressed blobs: the pointer Git carries in their
//! place, and the rule that decides which files are large.
//!
//! Git never holds a large file's bytes. It holds a small TOML pointer at
//! `.tandem/blobs/<path>.toml` naming the file's BLAKE3 hash and size, so a
//! plain `git log` or `git show` still tells which files exist and what they
//! are, while the bytes travel between peers as verified blobs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::path::{PathError, SafePath};

/// Folder, relative to the project root, that holds the pointers.
pub const POINTER_DIR: &str = ".tandem/blobs";
/// Suffix added to a file's path to name its pointer.
pub const POINTER_SUFFIX: &str = ".toml";
/// The tracked file that overrides the thresholds for one project.
pub const POLICY_FILE: &str = ".tandem/blobs.toml";
/// Largest pointer file read; real ones are under 200 bytes.
pub const MAX_POINTER_LEN: u64 = 4 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlobError {
    #[error("blob hash {0:?} is not 64 hexadecimal characters")]
    BadHash(String),
    #[error("pointer path {0:?} is not under {POINTER_DIR}/ or does not end in {POINTER_SUFFIX}")]
    NotAPointer(String),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("pointer is not valid TOML: {0}")]
    BadPointer(String),
    #[error("blob policy is not valid TOML: {0}")]
    BadPolicy(String),
}

/// A BLAKE3 hash naming a blob's content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first characters, enough to tell blobs apart in a listing.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_owned()
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({self})")
    }
}

impl FromStr for BlobHash {
    type Err = BlobError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        if text.len() != 64 || hex::decode_to_slice(text, &mut bytes).is_err() {
            return Err(BlobError::BadHash(text.chars().take(80).collect()));
        }
        Ok(Self(bytes))
    }
}

impl Serialize for BlobHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for BlobHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What Git carries in place of a large file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// BLAKE3 of the whole file.
    pub hash: BlobHash,
    /// Length in bytes.
    pub size: u64,
}

impl Pointer {
    pub fn to_toml(&self) -> String {
        format!(
            "# Tandem keeps this file's bytes in its blob store; Git carries only this pointer.\nhash = \"{}\"\nsize = {}\n",
            self.hash, self.size
        )
    }

    pub fn from_toml(text: &str) -> Result<Self, BlobError> {
        toml::from_str(text).map_err(|e| BlobError::BadPointer(e.message().to_owned()))
    }
}

/// The pointer's path for a file: `input/a.csv` → `.tandem/blobs/input/a.csv.toml`.
pub fn pointer_path(file: &SafePath) -> String {
    format!("{POINTER_DIR}/{}{POINTER_SUFFIX}", file.as_str())
}

/// The file a pointer stands for, or an error for anything else.
pub fn file_for_pointer(pointer: &str) -> Result<SafePath, BlobError> {
    let inner = pointer
        .strip_prefix(POINTER_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.strip_suffix(POINTER_SUFFIX))
        .ok_or_else(|| BlobError::NotAPointer(pointer.to_owned()))?;
    let path = SafePath::parse(inner)?;
    if path.first() == ".tandem" || path.first() == ".git" {
        return Err(BlobError::NotAPointer(pointer.to_owned()));
    }
    Ok(path)
}

/// Which files become blobs. Tracked per project in [`POLICY_FILE`], so every
/// collaborator splits the same files the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobPolicy {
    /// Files under `input/` and `output/` (and a dataset's `data/`) larger
    /// than this become blobs.
    #[serde(default = "default_data_threshold")]
    pub data_threshold: u64,
    /// Files anywhere larger than this become blobs.
    #[serde(default = "default_any_threshold")]
    pub any_threshold: u64,
}

fn default_data_threshold() -> u64 {
    1024 * 1024
}

fn default_any_threshold() -> u64 {
    50 * 1024 * 1024
}

impl Default for BlobPolicy {
    fn default() -> Self {
        Self {
            data_threshold: default_data_threshold(),
            any_threshold: default_any_threshold(),
        }
    }
}

impl BlobPolicy {
    pub fn from_toml(text: &str) -> Result<Self, BlobError> {
        toml::from_str(text).map_err(|e| BlobError::BadPolicy(e.message().to_owned()))
    }

    /// Whether a file of this size at this path belongs in the blob store.
    /// Tandem's own files never do: they must merge as text.
    pub fn is_large(&self, path: &SafePath, size: u64) -> bool {
        match path.first() {
            ".tandem" | ".git" => false,
            "input" | "output" | crate::project::DATA_DIR => {
                size > self.data_threshold || size > self.any_threshold
            }
            _ => size > self.any_threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> SafePath {
        SafePath::parse(text).expect("valid path")
    }

    #[test]
    fn pointer_round_trips_through_toml() {
        let pointer = Pointer {
            hash: BlobHash::of(b"data"),
            size: 4,
        };
        assert_eq!(Pointer::from_toml(&pointer.to_toml()), Ok(pointer));
    }

    #[test]
    fn pointer_paths_map_both_ways() {
        let file = path("input/raw/a b.csv");
        let pointer = pointer_path(&file);
        assert_eq!(pointer, ".tandem/blobs/input/raw/a b.csv.toml");
        assert_eq!(file_for_pointer(&pointer), Ok(file));
    }

    #[test]
    fn pointer_paths_cannot_escape_or_name_tandem_files() {
        assert!(file_for_pointer(".tandem/blobs/../../etc/passwd.toml").is_err());
        assert!(file_for_pointer(".tandem/blobs/.git/config.toml").is_err());
        assert!(file_for_pointer(".tandem/blobs/.tandem/project.toml.toml").is_err());
        assert!(file_for_pointer(".tandem/project.toml").is_err());
        assert!(file_for_pointer(".tandem/blobs/input/a.csv").is_err());
    }

    #[test]
    fn bad_hashes_and_pointers_are_refused() {
        assert!("abc".parse::<BlobHash>().is_err());
        assert!("zz".repeat(32).parse::<BlobHash>().is_err());
        assert!(Pointer::from_toml("hash = \"00\"\nsize = 1").is_err());
        assert!(Pointer::from_toml("size = -1").is_err());
    }

    #[test]
    fn policy_splits_data_and_code_at_their_thresholds() {
        let policy = BlobPolicy::default();
        assert!(policy.is_large(&path("input/big.csv"), 2 * 1024 * 1024));
        assert!(!policy.is_large(&path("input/small.csv"), 1024 * 1024));
        assert!(!policy.is_large(&path("code/model.py"), 2 * 1024 * 1024));
        assert!(policy.is_large(&path("code/weights.bin"), 60 * 1024 * 1024));
        assert!(!policy.is_large(&path(".tandem/project.toml"), 60 * 1024 * 1024));
        let custom = BlobPolicy::from_toml("data_threshold = 10").expect("valid policy");
        assert!(custom.is_large(&path("output/x"), 11));
        assert!(BlobPolicy::from_toml("threshold = 10").is_err());
    }
}
