//! Datasets: versioned sets of large files, shared like projects and pinned
//! into projects by version.
//!
//! A dataset is a project of kind `dataset` whose files live under `data/`,
//! every one of them a blob. Each version is an iroh-blobs collection; its
//! listing (path, hash, size per file) is also tracked in Git at
//! `.tandem/versions/<n>.toml`, so plain Git tells what each version held.
//! A project pins a version at `.tandem/datasets/<name>.toml`, carrying the
//! same listing, so its members can fetch the files without a role in the
//! dataset itself.

use serde::{Deserialize, Serialize};

use crate::blob::BlobHash;
use crate::path::SafePath;
pub use crate::project::DATA_DIR;
use crate::project::ProjectId;

/// Folder of a dataset's version listings.
pub const VERSIONS_DIR: &str = ".tandem/versions";
/// Folder of a project's pinned datasets.
pub const LINKS_DIR: &str = ".tandem/datasets";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatasetError {
    #[error("not a valid version listing: {0}")]
    BadVersion(String),
    #[error("not a valid dataset link: {0}")]
    BadLink(String),
    #[error("{0:?} is not NAME or NAME@VERSION (a version is a number, e.g. survey@3)")]
    BadReference(String),
}

/// One file of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionFile {
    /// Relative to the dataset's `data/` folder.
    pub path: String,
    pub hash: BlobHash,
    pub size: u64,
}

impl VersionFile {
    pub fn safe_path(&self) -> Option<SafePath> {
        SafePath::parse(&self.path).ok()
    }
}

/// `.tandem/versions/<n>.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub number: u32,
    /// The iroh-blobs collection (hash sequence) of this version's files.
    pub collection: BlobHash,
    pub created_ms: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub files: Vec<VersionFile>,
}

impl Version {
    /// The files' total size; saturating, since the sizes come from a
    /// listing anyone with the dataset could have written.
    pub fn bytes(&self) -> u64 {
        self.files
            .iter()
            .fold(0, |total, f| total.saturating_add(f.size))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    pub fn from_toml(text: &str) -> Result<Self, DatasetError> {
        let version: Self =
            toml::from_str(text).map_err(|e| DatasetError::BadVersion(e.message().to_owned()))?;
        if version.files.iter().any(|f| f.safe_path().is_none()) {
            return Err(DatasetError::BadVersion(
                "a file path leaves the dataset".into(),
            ));
        }
        Ok(version)
    }

    /// Where the listing lives in the dataset's repository.
    pub fn path(number: u32) -> String {
        format!("{VERSIONS_DIR}/{number:06}.toml")
    }
}

/// `.tandem/datasets/<name>.toml` in a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub dataset: ProjectId,
    pub name: String,
    pub version: u32,
    pub collection: BlobHash,
    #[serde(default)]
    pub files: Vec<VersionFile>,
}

impl Link {
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    pub fn from_toml(text: &str) -> Result<Self, DatasetError> {
        let link: Self =
            toml::from_str(text).map_err(|e| DatasetError::BadLink(e.message().to_owned()))?;
        if link.files.iter().any(|f| f.safe_path().is_none()) {
            return Err(DatasetError::BadLink(
                "a file path leaves the dataset".into(),
            ));
        }
        if link.name.parse::<crate::project::ProjectName>().is_err() {
            return Err(DatasetError::BadLink(format!(
                "{:?} is not a dataset name",
                link.name
            )));
        }
        Ok(link)
    }

    pub fn path(name: &str) -> String {
        format!("{LINKS_DIR}/{name}.toml")
    }

    /// Where the linked files appear in the project.
    pub fn folder(&self) -> String {
        format!("input/{}", self.name)
    }
}

/// `NAME` or `NAME@VERSION`.
pub fn parse_reference(text: &str) -> Result<(String, Option<u32>), DatasetError> {
    match text.split_once('@') {
        None => Ok((text.to_owned(), None)),
        Some((name, version)) => {
            let number = version
                .parse()
                .map_err(|_| DatasetError::BadReference(text.to_owned()))?;
            Ok((name.to_owned(), Some(number)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_and_without_version() {
        assert_eq!(parse_reference("gps"), Ok(("gps".into(), None)));
        assert_eq!(parse_reference("gps@3"), Ok(("gps".into(), Some(3))));
        assert!(parse_reference("gps@latest").is_err());
    }

    #[test]
    fn listings_with_escaping_paths_are_refused() {
        let version = Version {
            number: 1,
            collection: BlobHash::of(b"c"),
            created_ms: 0,
            message: String::new(),
            files: vec![VersionFile {
                path: "../../etc/passwd".into(),
                hash: BlobHash::of(b"x"),
                size: 1,
            }],
        };
        assert!(Version::from_toml(&version.to_toml()).is_err());
        let fine = Version {
            files: vec![VersionFile {
                path: "a/b.csv".into(),
                hash: BlobHash::of(b"x"),
                size: 1,
            }],
            ..version
        };
        assert_eq!(Version::from_toml(&fine.to_toml()), Ok(fine));
    }

    #[test]
    fn a_listing_of_huge_sizes_does_not_overflow() {
        let file = |n: u8| {
            format!(
                "[[files]]\npath = \"f{n}\"\nhash = \"{}\"\nsize = {}\n",
                BlobHash::of(&[n]),
                i64::MAX
            )
        };
        let text = format!(
            "number = 1\ncollection = \"{}\"\ncreated_ms = 0\n{}{}{}",
            BlobHash::of(b"c"),
            file(1),
            file(2),
            file(3)
        );
        let version = Version::from_toml(&text).expect("a valid listing");
        assert_eq!(version.bytes(), u64::MAX);
    }
}
