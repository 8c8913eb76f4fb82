//! The node's home folder (`$TANDEM_HOME`, default `~/.tandem`).
//!
//! ```text
//! identity.key      ed25519 secret, hex, mode 0600; never overwritten
//! profile.toml      display name and email (labels, not authority)
//! node.lock         held by whoever writes to this home (the node or a CLI)
//! node.json         while `tandem up` runs: its API URL and token, mode 0600
//! projects/<name>/  one Git working tree per project
//! feeds/<id>/       activity documents, one per writer, per project
//! access/<id>/      signed access statements, per project (enforced copy)
//! pins/<name>.toml  each project's manifest as pinned when it came here
//!                   (created, cloned, imported): its id and genesis win
//!                   over whatever the working tree says later
//! obtained/<id>     hashes of the blobs this node obtained for a project;
//!                   the blob gate serves nothing else
//! tmp/              staging for imports; emptied on start
//! ```

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tandem_protocol::{KeyError, SecretKey};

use crate::fsutil::{atomic_write, set_mode};

/// Why the home folder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no identity yet in {0}: run `tandem init --name \"Your Name\" --email you@example.org`"
    )]
    NoIdentity(PathBuf),
    #[error(
        "identity key {path} is unreadable or corrupt ({source}); restore it from a backup, or move it away and run `tandem init` to make a new identity"
    )]
    CorruptKey { path: PathBuf, source: KeyError },
    #[error("profile {path} is corrupt: {message}")]
    CorruptProfile { path: PathBuf, message: String },
    #[error(
        "another tandem process is using {0} (it holds node.lock); wait for it to finish or stop it"
    )]
    Busy(PathBuf),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

/// Attaches a human-readable context to I/O errors.
pub trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Io {
            context: context(),
            source,
        })
    }
}

/// The user's self-chosen labels, written into commits and entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub email: String,
}

/// What a running node publishes so CLIs can reach it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeInfo {
    pub url: String,
    pub token: String,
    pub pid: u32,
}

/// Paths inside one home folder.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `explicit`, else `$TANDEM_HOME`, else `~/.tandem`.
    pub fn locate(explicit: Option<PathBuf>) -> Self {
        let root = explicit
            .or_else(|| std::env::var_os("TANDEM_HOME").map(PathBuf::from))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".tandem")))
            .unwrap_or_else(|| PathBuf::from(".tandem"));
        Self { root }
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn key_path(&self) -> PathBuf {
        self.root.join("identity.key")
    }
    pub fn profile_path(&self) -> PathBuf {
        self.root.join("profile.toml")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("node.lock")
    }
    pub fn runtime_path(&self) -> PathBuf {
        self.root.join("node.json")
    }
    pub fn projects_dir(&self) -> PathBuf {
        self.root.join("projects")
    }
    pub fn feeds_dir(&self) -> PathBuf {
        self.root.join("feeds")
    }
    pub fn access_dir(&self) -> PathBuf {
        self.root.join("access")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    /// The iroh-blobs store shared by every project.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }
    /// Each project's pinned identity (see [`Home::pin_path`]).
    pub fn pins_dir(&self) -> PathBuf {
        self.root.join("pins")
    }
    /// The manifest pinned for the project folder `projects/<name>/`: kept
    /// outside the working tree, so nothing a peer commits can change it.
    pub fn pin_path(&self, name: &tandem_protocol::ProjectName) -> PathBuf {
        self.pins_dir().join(format!("{}.toml", name.as_str()))
    }
    /// Per project, the blobs this node obtained for it.
    pub fn obtained_dir(&self) -> PathBuf {
        self.root.join("obtained")
    }

    /// Creates the home folder with mode 0700, since it holds the identity
    /// key, every project and the API token; an existing one that other
    /// users may enter is made 0700, with a warning (files inside it were
    /// made with the default umask). A home that cannot be made private is
    /// an error, not silently used.
    #[cfg(unix)]
    fn ensure_root(&self) -> Result<(), StoreError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let root = &self.root;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
        }
        match fs::DirBuilder::new().mode(0o700).create(root) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).context(|| format!("creating {}", root.display())),
        }
        let mode = fs::metadata(root)
            .context(|| format!("reading {}", root.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            fs::set_permissions(root, fs::Permissions::from_mode(0o700)).context(|| {
                format!(
                    "making the home folder {} private (mode 0700; it is {mode:o}); run `chmod 700` on it",
                    root.display()
                )
            })?;
            tracing::warn!(
                home = %root.display(),
                was = %format!("{mode:o}"),
                "the home folder was open to other users; it is now mode 0700"
            );
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn ensure_root(&self) -> Result<(), StoreError> {
        fs::create_dir_all(&self.root).context(|| format!("creating {}", self.root.display()))
    }

    /// Creates the folder skeleton (idempotent).
    pub fn ensure_layout(&self) -> Result<(), StoreError> {
        self.ensure_root()?;
        for dir in [
            self.projects_dir(),
            self.feeds_dir(),
            self.access_dir(),
            self.tmp_dir(),
            self.pins_dir(),
            self.obtained_dir(),
        ] {
            fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
        }
        Ok(())
    }

    pub fn has_identity(&self) -> bool {
        self.key_path().exists()
    }

    pub fn load_key(&self) -> Result<SecretKey, StoreError> {
        let path = self.key_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoIdentity(self.root.clone()));
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(StoreError::CorruptKey {
                    path,
                    source: KeyError::BadSecret,
                });
            }
            Err(e) => return Err(e).context(|| format!("reading {}", path.display())),
        };
        SecretKey::from_hex(&text).map_err(|source| StoreError::CorruptKey { path, source })
    }

    /// Creates a key only when none exists: an existing key is never replaced.
    /// Returns the key and whether it was created now.
    pub fn create_key_if_missing(&self, random: [u8; 32]) -> Result<(SecretKey, bool), StoreError> {
        self.ensure_root()?;
        let path = self.key_path();
        let key = SecretKey::from_bytes(random);
        // create_new fails if the file exists, so two racing inits cannot
        // both write a key.
        let file = OpenOptions::new().write(true).create_new(true).open(&path);
        match file {
            Ok(file) => {
                set_mode(&file, 0o600).context(|| format!("protecting {}", path.display()))?;
                drop(file);
                atomic_write(&path, format!("{}\n", key.to_hex()).as_bytes(), Some(0o600))
                    .context(|| format!("writing {}", path.display()))?;
                Ok((key, true))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((self.load_key()?, false)),
            Err(e) => Err(e).context(|| format!("creating {}", path.display())),
        }
    }

    pub fn load_profile(&self) -> Result<Profile, StoreError> {
        let path = self.profile_path();
        match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| StoreError::CorruptProfile {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(default_profile()),
            Err(e) => Err(e).context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        let path = self.profile_path();
        let text = toml::to_string(profile).unwrap_or_default();
        atomic_write(&path, text.as_bytes(), None).context(|| format!("writing {}", path.display()))
    }

    /// Takes the home's write lock, waiting up to `wait` for another CLI
    /// command to finish. The lock is released when the returned file drops.
    pub fn lock(&self, wait: Duration) -> Result<HomeLock, StoreError> {
        self.ensure_root()?;
        let path = self.lock_path();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .context(|| format!("opening {}", path.display()))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(HomeLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Busy(self.root.clone()));
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(e).context(|| format!("locking {}", path.display()));
                }
            }
        }
    }

    pub fn read_runtime(&self) -> Option<RuntimeInfo> {
        let text = fs::read_to_string(self.runtime_path()).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write_runtime(&self, info: &RuntimeInfo) -> Result<(), StoreError> {
        let path = self.runtime_path();
        let text = serde_json::to_vec_pretty(info).unwrap_or_default();
        atomic_write(&path, &text, Some(0o600)).context(|| format!("writing {}", path.display()))
    }

    pub fn remove_runtime(&self) {
        let _ = fs::remove_file(self.runtime_path());
    }
}

/// Proof that this process holds the home's write lock.
#[derive(Debug)]
pub struct HomeLock {
    _file: File,
}

fn default_profile() -> Profile {
    let name = std::env::var("USER").unwrap_or_else(|_| "Tandem user".into());
    Profile {
        email: format!("{name}@localhost"),
        name,
    }
}

/// Fills a buffer from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source failing is unrecoverable for key generation.
    if getrandom::fill(&mut bytes).is_err() {
        panic!("the operating system's random number generator is unavailable");
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_home_is_made_0700_and_an_open_one_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = Home::at(dir.path().join("a/b/home"));
        fresh.lock(Duration::from_secs(1)).expect("lock");
        assert_eq!(mode(fresh.root()), 0o700);
        let open = Home::at(dir.path().join("open"));
        fs::create_dir(open.root()).expect("mkdir");
        fs::set_permissions(open.root(), fs::Permissions::from_mode(0o777)).expect("chmod");
        open.ensure_layout().expect("layout");
        assert_eq!(mode(open.root()), 0o700);
        open.create_key_if_missing([7; 32]).expect("key");
        assert_eq!(mode(open.root()), 0o700);
    }

    #[test]
    fn key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::at(dir.path());
        let (first, created) = home.create_key_if_missing([1; 32]).expect("create");
        assert!(created);
        let (second, created_again) = home.create_key_if_missing([2; 32]).expect("second");
        assert!(!created_again);
        assert_eq!(
            first.public(),
            second.public(),
            "an existing key must never be replaced"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(home.key_path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_key_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::at(dir.path());
        fs::write(home.key_path(), "not a key").expect("write");
        let err = home.load_key().expect_err("corrupt key must fail");
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::at(dir.path());
        let held = home.lock(Duration::ZERO).expect("first lock");
        assert!(matches!(
            home.lock(Duration::from_millis(100)),
            Err(StoreError::Busy(_))
        ));
        drop(held);
        home.lock(Duration::ZERO).expect("lock after release");
    }
}
