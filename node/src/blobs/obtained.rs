//! Which blobs this node obtained for which project: the only thing the
//! blob gate trusts.
//!
//! A pointer, a dataset link or a figure in a project names a hash; anyone
//! who may write to the project can name any hash, including one of another
//! project's files they learnt somehow. So naming a hash never makes it
//! servable. A hash is recorded for a project only when this node got the
//! bytes *for that project*: hashed them in a sweep (or `tandem add`, an
//! upload, a figure capture, a dataset version), imported them with the
//! project's archive, or fetched and verified them from the project's
//! members while fetching its files. The gate serves a hash to a peer only
//! if some project the peer may read has it here.
//!
//! One file per project, `$TANDEM_HOME/obtained/<project-id>`: a header,
//! then one 40-byte record per hash (the hash and a checksum of it). New
//! hashes are appended and flushed before they count; a record torn by a
//! crash fails its checksum and is dropped when the file is next read (the
//! file is then rewritten whole, atomically). A record holds at most
//! [`MAX_PER_PROJECT`] hashes; beyond that nothing more is recorded (those
//! blobs stay usable here, peers get them from other members).
//!
//! Everything is read once per project and kept in memory, so the gate
//! judges a batch of hashes without touching the disk.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tandem_protocol::blob::BlobHash;
use tandem_protocol::{ProjectId, ProjectName};

/// Most hashes recorded for one project (40 MiB of record at most).
pub const MAX_PER_PROJECT: usize = 1 << 20;

const MAGIC: &[u8; 16] = b"tandem-obtained1";
const RECORD: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum ObtainedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is not a record of obtained blobs (unknown header); move it away and this node serves that project's blobs again once it obtains them anew"
    )]
    BadHeader { path: PathBuf },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ObtainedError + '_ {
    move |source| ObtainedError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One project's hashes, and the local name its folder had when loaded
/// (so the gate can find the project without scanning the home).
struct Record {
    name: ProjectName,
    hashes: HashSet<BlobHash>,
}

#[derive(Default)]
struct Inner {
    projects: HashMap<ProjectId, Record>,
}

/// The records of every project, loaded on first use of each.
pub struct Obtained {
    dir: PathBuf,
    inner: Mutex<Inner>,
    /// Set once every project of the home was loaded (the gate's first use).
    all_loaded: Mutex<bool>,
}

/// A project holding some of the hashes asked about: its id, its name, and
/// the positions (in the question) of the hashes it holds.
pub struct Holder {
    pub id: ProjectId,
    pub name: ProjectName,
    pub positions: Vec<usize>,
}

fn checksum(hash: &BlobHash) -> [u8; 8] {
    let digest = blake3::hash(hash.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest.as_bytes()[..8]);
    out
}

fn encode(hash: &BlobHash, out: &mut Vec<u8>) {
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(&checksum(hash));
}

/// The hashes in a record file's bytes, and whether any record was damaged.
fn decode(bytes: &[u8]) -> (Vec<BlobHash>, bool) {
    let mut out = Vec::with_capacity(bytes.len() / RECORD);
    let mut damaged = !bytes.len().is_multiple_of(RECORD);
    for chunk in bytes.chunks_exact(RECORD).take(MAX_PER_PROJECT) {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&chunk[..32]);
        let hash = BlobHash(raw);
        if chunk[32..] == checksum(&hash) {
            out.push(hash);
        } else {
            damaged = true;
        }
    }
    (out, damaged)
}

fn file_bytes(hashes: &[BlobHash]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(MAGIC.len() + hashes.len() * RECORD);
    bytes.extend_from_slice(MAGIC);
    for hash in hashes {
        encode(hash, &mut bytes);
    }
    bytes
}

/// Writes a project's first record (for a project that came here before
/// records existed), unless it has one. Atomic.
pub fn seed(dir: &Path, id: &ProjectId, hashes: &[BlobHash]) -> Result<(), ObtainedError> {
    let path = dir.join(id.to_string());
    if path.exists() {
        return Ok(());
    }
    let hashes: Vec<BlobHash> = hashes
        .iter()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .take(MAX_PER_PROJECT)
        .collect();
    crate::fsutil::atomic_write(&path, &file_bytes(&hashes), Some(0o600)).map_err(io_at(&path))
}

/// Reads a record file: missing means nothing obtained yet.
fn read(path: &Path) -> Result<HashSet<BlobHash>, ObtainedError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(io_at(path)(e)),
    };
    let Some(body) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return Err(ObtainedError::BadHeader {
            path: path.to_owned(),
        });
    };
    let (hashes, damaged) = decode(body);
    if damaged {
        // A crash tore the last append: keep what checks out, so the next
        // append lands on a record boundary.
        tracing::warn!(path = %path.display(), kept = hashes.len(), "dropping damaged records of obtained blobs");
        crate::fsutil::atomic_write(path, &file_bytes(&hashes), Some(0o600))
            .map_err(io_at(path))?;
    }
    Ok(hashes.into_iter().collect())
}

impl Obtained {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            inner: Mutex::new(Inner::default()),
            all_loaded: Mutex::new(false),
        }
    }

    fn path(&self, id: &ProjectId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the project's record into memory unless it is there already.
    pub fn load(&self, id: &ProjectId, name: &ProjectName) -> Result<(), ObtainedError> {
        let mut inner = self.inner();
        if let Some(record) = inner.projects.get_mut(id) {
            record.name = name.clone();
            return Ok(());
        }
        let hashes = read(&self.path(id))?;
        inner.projects.insert(
            *id,
            Record {
                name: name.clone(),
                hashes,
            },
        );
        Ok(())
    }

    /// Runs `load_every` once per process (it loads every project of the
    /// home); later calls return at once.
    pub fn load_all_once(&self, load_every: impl FnOnce()) {
        let mut done = self.all_loaded.lock().unwrap_or_else(|e| e.into_inner());
        if !*done {
            load_every();
            *done = true;
        }
    }

    /// Records hashes obtained for a project, durably, before they count.
    /// Returns how many were new.
    pub fn record(
        &self,
        id: &ProjectId,
        name: &ProjectName,
        hashes: impl IntoIterator<Item = BlobHash>,
    ) -> Result<usize, ObtainedError> {
        self.load(id, name)?;
        let mut inner = self.inner();
        let Some(record) = inner.projects.get_mut(id) else {
            return Ok(0);
        };
        let mut fresh: Vec<BlobHash> = Vec::new();
        let mut seen = HashSet::new();
        for hash in hashes {
            if !record.hashes.contains(&hash) && seen.insert(hash) {
                fresh.push(hash);
            }
        }
        let room = MAX_PER_PROJECT.saturating_sub(record.hashes.len());
        if fresh.len() > room {
            tracing::warn!(
                project = %id,
                dropped = fresh.len() - room,
                "the record of obtained blobs is full: these are not served from this node"
            );
            fresh.truncate(room);
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        let path = self.path(id);
        fs::create_dir_all(&self.dir).map_err(io_at(&self.dir))?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + fresh.len() * RECORD);
        let new_file = !path.exists();
        if new_file {
            bytes.extend_from_slice(MAGIC);
        }
        for hash in &fresh {
            encode(hash, &mut bytes);
        }
        if new_file {
            crate::fsutil::atomic_write(&path, &bytes, Some(0o600)).map_err(io_at(&path))?;
        } else {
            let mut file = crate::fsutil::open_append(&path).map_err(io_at(&path))?;
            file.write_all(&bytes).map_err(io_at(&path))?;
            file.sync_data().map_err(io_at(&path))?;
        }
        record.hashes.extend(fresh.iter().copied());
        Ok(fresh.len())
    }

    /// Forgets a deleted project's record, on disk and in memory.
    pub fn forget(&self, id: &ProjectId) {
        self.inner().projects.remove(id);
        let _ = fs::remove_file(self.path(id));
    }

    /// Whether the project's record holds `hash` (loaded records only).
    pub fn holds(&self, id: &ProjectId, hash: &BlobHash) -> bool {
        self.inner()
            .projects
            .get(id)
            .is_some_and(|r| r.hashes.contains(hash))
    }

    /// The loaded projects that hold any of `hashes`, with which ones; none
    /// if some hash is held by no project at all (the request cannot pass).
    pub fn holders(&self, hashes: &[BlobHash]) -> Vec<Holder> {
        let inner = self.inner();
        let mut covered = vec![false; hashes.len()];
        let mut out = Vec::new();
        for (id, record) in &inner.projects {
            let positions: Vec<usize> = hashes
                .iter()
                .enumerate()
                .filter(|(_, h)| record.hashes.contains(*h))
                .map(|(i, _)| i)
                .collect();
            if positions.is_empty() {
                continue;
            }
            for &i in &positions {
                covered[i] = true;
            }
            out.push(Holder {
                id: *id,
                name: record.name.clone(),
                positions,
            });
        }
        if covered.iter().all(|c| *c) {
            out
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ProjectId {
        let genesis = tandem_protocol::project::Genesis::create(
            &"p".parse().expect("name"),
            &tandem_protocol::SecretKey::from_bytes([n; 32]),
            0,
            [n; 16],
        );
        genesis.project_id()
    }

    #[test]
    fn records_survive_a_restart_and_a_torn_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let name: ProjectName = "p".parse().expect("name");
        let (a, b) = (id(1), id(2));
        let obtained = Obtained::new(dir.path().to_owned());
        let h1 = BlobHash::of(b"one");
        let h2 = BlobHash::of(b"two");
        assert_eq!(obtained.record(&a, &name, [h1, h1]).expect("record"), 1);
        assert_eq!(obtained.record(&a, &name, [h1, h2]).expect("record"), 1);
        // A crash in the middle of the next append leaves half a record.
        let mut file = crate::fsutil::open_append(&dir.path().join(a.to_string())).expect("open");
        file.write_all(&[7u8; 17]).expect("torn");
        drop(file);

        let reopened = Obtained::new(dir.path().to_owned());
        reopened.load(&a, &name).expect("load");
        assert!(reopened.holds(&a, &h1) && reopened.holds(&a, &h2));
        assert!(!reopened.holds(&b, &h1), "records are per project");
        // The torn tail is gone, so a new append lines up again.
        let h3 = BlobHash::of(b"three");
        reopened.record(&a, &name, [h3]).expect("record");
        let again = Obtained::new(dir.path().to_owned());
        again.load(&a, &name).expect("load");
        assert!(again.holds(&a, &h3));
        assert_eq!(again.holders(&[h1, h3]).len(), 1);
        assert!(
            again.holders(&[h1, BlobHash::of(b"never")]).is_empty(),
            "a hash nobody obtained fails the whole request"
        );
    }

    #[test]
    fn a_seed_never_overwrites_a_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let name: ProjectName = "p".parse().expect("name");
        let a = id(3);
        let h1 = BlobHash::of(b"one");
        seed(dir.path(), &a, &[h1]).expect("seed");
        seed(dir.path(), &a, &[BlobHash::of(b"two")]).expect("second seed");
        let obtained = Obtained::new(dir.path().to_owned());
        obtained.load(&a, &name).expect("load");
        assert!(obtained.holds(&a, &h1));
        assert!(!obtained.holds(&a, &BlobHash::of(b"two")));
    }
}
