//! The listings a project folder holds, read beneath its root: a
//! dataset's versions, the datasets a project pins, and any folder of
//! `*.toml` files (the environment's packages and snippets too). Nothing
//! here follows a link, to the folder or to a listing.

use std::path::Path;

use tandem_protocol::dataset::{LINKS_DIR, Link, VERSIONS_DIR, Version};

use crate::beneath::{Beneath, BeneathError};

/// Largest listing read from a version or link file.
const MAX_LISTING: u64 = 64 * 1024 * 1024;

/// Reads every `*.toml` in the folder `rel` of a project, beneath its root:
/// no link is followed, neither to the folder nor to a listing.
pub(crate) fn read_listings_beneath(
    root: &Beneath,
    rel: &str,
) -> Result<Vec<(String, String)>, BeneathError> {
    let mut out = Vec::new();
    for (name, kind) in root.list(rel)? {
        let Some(stem) = name.strip_suffix(".toml") else {
            continue;
        };
        if kind != crate::beneath::Kind::File {
            if kind == crate::beneath::Kind::Symlink {
                tracing::warn!(folder = rel, name = %name, "ignoring a listing that is a symbolic link");
            }
            continue;
        }
        match root.read(&format!("{rel}/{name}"), MAX_LISTING) {
            Ok(Some(bytes)) => out.push((
                stem.to_owned(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )),
            Ok(None) => {}
            Err(e @ (BeneathError::TooLarge { .. } | BeneathError::NotAFile { .. })) => {
                tracing::warn!(problem = %e, "ignoring a listing");
            }
            Err(e) if e.is_refusal() => tracing::warn!(problem = %e, "ignoring a listing"),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A dataset's versions, oldest first, from the dataset folder `dir`.
pub(crate) fn versions(dir: &Path) -> Result<Vec<Version>, BeneathError> {
    let mut out = Vec::new();
    for (stem, text) in read_listings_beneath(&Beneath::open(dir)?, VERSIONS_DIR)? {
        match Version::from_toml(&text) {
            Ok(version) => out.push(version),
            Err(problem) => {
                tracing::warn!(version = %stem, %problem, "ignoring a malformed version listing")
            }
        }
    }
    out.sort_by_key(|v| v.number);
    Ok(out)
}

/// The datasets the project folder `dir` pins.
pub(crate) fn links(dir: &Path) -> Result<Vec<Link>, BeneathError> {
    let mut out = Vec::new();
    for (stem, text) in read_listings_beneath(&Beneath::open(dir)?, LINKS_DIR)? {
        match Link::from_toml(&text) {
            Ok(link) if link.name == stem => out.push(link),
            Ok(_) => {
                tracing::warn!(link = %stem, "ignoring a dataset link not named after its file")
            }
            Err(problem) => {
                tracing::warn!(link = %stem, %problem, "ignoring a malformed dataset link")
            }
        }
    }
    Ok(out)
}
