//! Snippets this node's user has accepted, kept in the node's home (never
//! in the project's folder, which peers and the container write): one file
//! per project holding the hashes of accepted snippets, one a line.
//!
//! A snippet's Dockerfile lines run as root at build time, so lines that
//! arrived from a peer are built only once the user has seen and accepted
//! them. The user's own snippets are accepted as they are written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::error::EnvError;

/// The accepted snippets of one project.
pub struct Accepted {
    path: PathBuf,
}

impl Accepted {
    pub fn new(home: &Path, project_id: &str) -> Self {
        Accepted {
            path: home
                .join("env")
                .join("accepted-snippets")
                .join(format!("{project_id}.txt")),
        }
    }

    fn error(&self) -> impl FnOnce(std::io::Error) -> EnvError + '_ {
        |source| EnvError::Accepted {
            path: self.path.clone(),
            source,
        }
    }

    /// The accepted hashes; lines that are not a hash are skipped.
    pub fn load(&self) -> Result<BTreeSet<String>, EnvError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(self.error()(e)),
        };
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
            .collect())
    }

    /// Adds a hash (the caller holds `EnvState::accept_lock`).
    pub fn add(&self, hash: &str) -> Result<(), EnvError> {
        let mut hashes = self.load()?;
        if !hashes.insert(hash.to_owned()) {
            return Ok(());
        }
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(self.error())?;
        }
        let mut text = String::new();
        for hash in &hashes {
            text.push_str(hash);
            text.push('\n');
        }
        crate::fsutil::atomic_write(&self.path, text.as_bytes(), Some(0o600)).map_err(self.error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_kept_per_project_and_junk_lines_are_ignored() {
        let home = tempfile::tempdir().expect("tempdir");
        let one = Accepted::new(home.path(), "tpone");
        let two = Accepted::new(home.path(), "tptwo");
        let hash = "a".repeat(64);
        one.add(&hash).expect("add");
        one.add(&hash).expect("twice is fine");
        assert!(one.load().expect("load").contains(&hash));
        assert!(two.load().expect("load").is_empty());
        std::fs::write(&one.path, format!("{hash}\nnot a hash\n../x\n")).expect("write");
        assert_eq!(one.load().expect("load").len(), 1);
    }
}
