//! The node's blob store: one iroh-blobs `FsStore` for every project, so the
//! same content is stored once however many files or projects name it.
//!
//! The store's API is async; the service runs on blocking threads, so each
//! call here blocks on the runtime that opened the store.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use iroh_blobs::api::blobs::{AddPathOptions, AddProgressItem, BlobStatus, ImportMode};
use iroh_blobs::store::GcConfig;
use iroh_blobs::store::fs::FsStore;
use iroh_blobs::store::fs::options::Options;
use iroh_blobs::{BlobFormat, Hash, HashAndFormat};
use tandem_protocol::blob::BlobHash;
use tokio::runtime::Handle;

use crate::beneath::{Beneath, BeneathError, Entry};

#[derive(Debug, thiserror::Error)]
pub enum BlobStoreError {
    #[error("the blob store needs the node's async runtime")]
    NoRuntime,
    #[error("cannot open the blob store at {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("cannot store {path} as a blob: {message}")]
    Ingest { path: PathBuf, message: String },
    #[error("cannot write blob {hash} to {path}: {message}")]
    Export {
        hash: BlobHash,
        path: PathBuf,
        message: String,
    },
    /// The target or source path leads through a link or out of the
    /// project (see [`crate::beneath`]), or cannot be opened.
    #[error("{source}")]
    Path {
        hash: Option<BlobHash>,
        #[source]
        source: BeneathError,
    },
    #[error("the blob store failed: {0}")]
    Store(String),
}

impl BlobStoreError {
    /// A path refused for what it is (a link, an escape): callers skip and
    /// report it rather than stopping on it.
    pub fn as_refusal(&self) -> Option<&BeneathError> {
        match self {
            Self::Path { source, .. } if source.is_refusal() => Some(source),
            _ => None,
        }
    }
}

/// A file hashed into the store from a project's working tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub hash: BlobHash,
    /// Size and modification time of the file as opened for hashing.
    pub size: u64,
    pub mtime_ns: i128,
}

/// Whether `/proc/self/fd` can name an open file (it lets the store read
/// exactly the file that was opened beneath the project, by descriptor).
fn proc_fd_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

/// Files hashed or written at once.
const CONCURRENCY: usize = 8;

fn keep_tag(hash: &BlobHash) -> String {
    format!("blob/{hash}")
}

/// How often untagged blobs are collected: `TANDEM_BLOB_GC_SECS`, else
/// every ten minutes.
fn gc_interval() -> std::time::Duration {
    let seconds = std::env::var("TANDEM_BLOB_GC_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s: &u64| *s > 0)
        .unwrap_or(600);
    std::time::Duration::from_secs(seconds)
}

pub fn to_iroh(hash: &BlobHash) -> Hash {
    Hash::from_bytes(hash.0)
}

pub fn from_iroh(hash: &Hash) -> BlobHash {
    BlobHash(*hash.as_bytes())
}

/// How much of a blob is here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    pub complete: bool,
    /// Verified bytes held.
    pub bytes: u64,
}

impl Presence {
    /// Where the bytes are, as the API says it.
    pub fn state(&self) -> tandem_protocol::api::DataState {
        use tandem_protocol::api::DataState;
        if self.complete {
            DataState::Local
        } else if self.bytes > 0 {
            DataState::Partial
        } else {
            DataState::Remote
        }
    }
}

#[derive(Clone)]
pub struct BlobStore {
    store: FsStore,
    runtime: Handle,
    /// The store's folder (its data files are read for fast exports).
    dir: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Opens (or creates) the store in `dir`; `tmp` must be on the same
    /// filesystem as the projects, for atomic renames into working trees.
    pub fn open(dir: &Path, tmp: &Path) -> Result<Self, BlobStoreError> {
        let runtime = Handle::try_current().map_err(|_| BlobStoreError::NoRuntime)?;
        // Blobs are kept by a tag each (`blob/<hash>`); collection runs drop
        // the untagged ones, which is how `tandem evict` frees space.
        let mut options = Options::new(dir);
        options.gc = Some(GcConfig {
            interval: gc_interval(),
            add_protected: None,
        });
        let store = runtime
            .block_on(FsStore::load_with_opts(dir.join("blobs.db"), options))
            .map_err(|e| BlobStoreError::Open {
                path: dir.to_owned(),
                message: e.to_string(),
            })?;
        Ok(Self {
            store,
            runtime,
            dir: dir.to_owned(),
            tmp: tmp.to_owned(),
        })
    }

    pub fn inner(&self) -> &FsStore {
        &self.store
    }

    /// Copies a file into the store and returns its hash and size. A named
    /// tag per hash keeps it once garbage collection runs.
    pub fn ingest(&self, path: &Path) -> Result<(BlobHash, u64), BlobStoreError> {
        self.runtime.block_on(self.ingest_async(path.to_owned()))
    }

    /// Ingests many files at once: the store hashes them on its own
    /// threads, so thousands of small files do not wait on one another.
    /// Results come back in the order of `paths`.
    pub fn ingest_many(&self, paths: Vec<PathBuf>) -> Vec<Result<(BlobHash, u64), BlobStoreError>> {
        self.runtime.block_on(
            futures::stream::iter(paths)
                .map(|path| self.ingest_async(path))
                .buffered(CONCURRENCY)
                .collect(),
        )
    }

    /// Hashes files of a project's working tree into the store. Each file
    /// is opened beneath the root (never through a link) and the store
    /// reads that open file, by descriptor: what is hashed is the file that
    /// was checked, even if a link is swapped in meanwhile. Results come
    /// back in the order of `files`.
    pub fn ingest_beneath(
        &self,
        root: &Beneath,
        files: Vec<String>,
    ) -> Vec<Result<Ingested, BlobStoreError>> {
        self.runtime.block_on(
            futures::stream::iter(files)
                .map(|file| self.ingest_one_beneath(root, file))
                .buffered(CONCURRENCY)
                .collect(),
        )
    }

    async fn ingest_one_beneath(
        &self,
        root: &Beneath,
        file: String,
    ) -> Result<Ingested, BlobStoreError> {
        let refused = |source| BlobStoreError::Path { hash: None, source };
        let (handle, entry) =
            root.open_file(&file)
                .map_err(refused)?
                .ok_or_else(|| BlobStoreError::Ingest {
                    path: PathBuf::from(&file),
                    message: "the file disappeared before it was stored".into(),
                })?;
        let (hash, _) = if proc_fd_available() {
            use std::os::fd::AsRawFd;
            let by_fd = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()));
            let stored = self.ingest_path_async(by_fd, PathBuf::from(&file)).await;
            drop(handle);
            stored?
        } else {
            // No /proc: copy the open file to a staging file of the node's
            // own, and store that.
            let staging = self.tmp.join(format!(
                "ingest-{}",
                hex::encode(crate::home::random_bytes::<6>())
            ));
            let copied = (|| {
                let mut handle = handle;
                let mut out = std::fs::File::create(&staging)?;
                std::io::copy(&mut handle, &mut out).map(|_| ())
            })();
            if let Err(e) = copied {
                let _ = std::fs::remove_file(&staging);
                return Err(BlobStoreError::Ingest {
                    path: PathBuf::from(&file),
                    message: e.to_string(),
                });
            }
            let stored = self
                .ingest_path_async(staging.clone(), PathBuf::from(&file))
                .await;
            let _ = std::fs::remove_file(&staging);
            stored?
        };
        Ok(Ingested {
            hash,
            size: entry.size,
            mtime_ns: entry.mtime_ns,
        })
    }

    async fn ingest_async(&self, path: PathBuf) -> Result<(BlobHash, u64), BlobStoreError> {
        self.ingest_path_async(path.clone(), path).await
    }

    /// Stores the file at `path`; errors name `shown`.
    async fn ingest_path_async(
        &self,
        path: PathBuf,
        shown: PathBuf,
    ) -> Result<(BlobHash, u64), BlobStoreError> {
        let fail = |message: String| BlobStoreError::Ingest {
            path: shown.clone(),
            message,
        };
        let absolute = std::path::absolute(&path).map_err(|e| fail(e.to_string()))?;
        let progress = self.store.add_path_with_opts(AddPathOptions {
            path: absolute,
            format: BlobFormat::Raw,
            mode: ImportMode::Copy,
        });
        let mut items = std::pin::pin!(progress.stream().await);
        let mut size = 0;
        while let Some(item) = items.next().await {
            match item {
                AddProgressItem::Size(n) => size = n,
                AddProgressItem::Done(tag) => {
                    let hash = from_iroh(&tag.hash());
                    self.keep_async(&hash)
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                    drop(tag);
                    return Ok((hash, size));
                }
                AddProgressItem::Error(e) => return Err(fail(e.to_string())),
                _ => {}
            }
        }
        Err(fail("the store stopped before finishing".into()))
    }

    /// Stores bytes held in memory (a figure from a notebook, say) and keeps
    /// them like any ingested file.
    pub async fn ingest_bytes(&self, bytes: Vec<u8>) -> Result<BlobHash, BlobStoreError> {
        let fail = |message: String| BlobStoreError::Ingest {
            path: PathBuf::from("<memory>"),
            message,
        };
        let tag = self
            .store
            .add_bytes(bytes)
            .temp_tag()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let hash = from_iroh(&tag.hash());
        self.keep_async(&hash)
            .await
            .map_err(|e| fail(e.to_string()))?;
        drop(tag);
        Ok(hash)
    }

    /// A whole blob's bytes, for small blobs such as figures.
    pub async fn read_bytes(&self, hash: &BlobHash) -> Result<Vec<u8>, BlobStoreError> {
        self.store
            .get_bytes(to_iroh(hash))
            .await
            .map(|b| b.to_vec())
            .map_err(|e| BlobStoreError::Ingest {
                path: PathBuf::from(hash.to_string()),
                message: e.to_string(),
            })
    }

    /// How much of a blob is here.
    pub fn presence(&self, hash: &BlobHash) -> Result<Presence, BlobStoreError> {
        self.runtime.block_on(self.presence_async(hash))
    }

    /// How much of each blob is here, asked concurrently.
    pub fn presence_many(&self, hashes: Vec<BlobHash>) -> Vec<Result<Presence, BlobStoreError>> {
        self.runtime.block_on(async {
            futures::stream::iter(hashes.iter())
                .map(|hash| self.presence_async(hash))
                .buffered(64)
                .collect()
                .await
        })
    }

    pub async fn presence_async(&self, hash: &BlobHash) -> Result<Presence, BlobStoreError> {
        let hash = to_iroh(hash);
        let status = self
            .store
            .status(hash)
            .await
            .map_err(|e| BlobStoreError::Store(e.to_string()))?;
        Ok(match status {
            BlobStatus::Complete { size } => Presence {
                complete: true,
                bytes: size,
            },
            BlobStatus::NotFound => Presence {
                complete: false,
                bytes: 0,
            },
            BlobStatus::Partial { .. } => {
                let bitfield = self
                    .store
                    .observe(hash)
                    .await
                    .map_err(|e| BlobStoreError::Store(e.to_string()))?;
                Presence {
                    complete: false,
                    bytes: bitfield.total_bytes(),
                }
            }
        })
    }

    /// Writes complete blobs to files of a project's working tree,
    /// atomically each: the bytes go to a staging file of the node's own
    /// first and are renamed into a folder opened beneath the root (never
    /// through a link), so a crash never leaves half a file where the
    /// user's file belongs and nothing lands outside the project. Folders
    /// are flushed once at the end rather than once per file. Each result
    /// is the written file's size and modification time; `read_only` makes
    /// the files read-only (pinned dataset files).
    pub fn export_many(
        &self,
        root: &Beneath,
        items: Vec<(BlobHash, String)>,
        read_only: bool,
    ) -> Vec<Result<Entry, BlobStoreError>> {
        let results: Vec<Result<Entry, BlobStoreError>> = self.runtime.block_on(
            futures::stream::iter(items.iter().cloned())
                .map(|(hash, target)| self.export_async(root, hash, target, read_only))
                .buffered(CONCURRENCY)
                .collect(),
        );
        let folders: std::collections::BTreeSet<&str> = items
            .iter()
            .map(|(_, t)| t.rsplit_once('/').map_or("", |(folder, _)| folder))
            .collect();
        for folder in folders {
            root.sync_dir(folder);
        }
        results
    }

    pub fn export(
        &self,
        root: &Beneath,
        hash: &BlobHash,
        target: &str,
        read_only: bool,
    ) -> Result<Entry, BlobStoreError> {
        self.export_many(root, vec![(*hash, target.to_owned())], read_only)
            .pop()
            .unwrap_or_else(|| Err(BlobStoreError::Store("nothing was written".into())))
    }

    async fn export_async(
        &self,
        root: &Beneath,
        hash: BlobHash,
        target: String,
        read_only: bool,
    ) -> Result<Entry, BlobStoreError> {
        let fail = |message: String| BlobStoreError::Export {
            hash,
            path: PathBuf::from(&target),
            message,
        };
        // Refused before any bytes are copied: a link on the way is the
        // common hostile case, and it costs one lookup to find.
        root.create_dir_all(target.rsplit_once('/').map_or("", |(folder, _)| folder))
            .map_err(|source| BlobStoreError::Path {
                hash: Some(hash),
                source,
            })?;
        let name = format!(
            "export-{}-{}",
            hash.short(),
            hex::encode(crate::home::random_bytes::<6>())
        );
        let staging = std::path::absolute(self.tmp.join(name)).map_err(|e| fail(e.to_string()))?;
        if !self.copy_owned_data(&hash, &staging).await {
            self.store
                .export(to_iroh(&hash), &staging)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        let staged = (|| {
            if read_only {
                crate::fsutil::make_read_only(&staging)?;
            }
            std::fs::symlink_metadata(&staging)
        })();
        let meta = match staged {
            Ok(meta) => meta,
            Err(e) => {
                let _ = std::fs::remove_file(&staging);
                return Err(fail(e.to_string()));
            }
        };
        // The rename keeps the staging file's size and time.
        let entry = Entry::from_metadata(&meta);
        if let Err(source) = root.rename_into(&staging, &target) {
            let _ = std::fs::remove_file(&staging);
            return Err(BlobStoreError::Path {
                hash: Some(hash),
                source,
            });
        }
        Ok(entry)
    }

    /// The fast path for writing a complete blob out: a kernel-side copy
    /// of the store's own data file (iroh-blobs' `export` copies through
    /// user space in small steps, at a fraction of the disk's speed).
    /// Complete entries never change, and the copy is checked against the
    /// blob's size; anything unexpected falls back to `export`.
    async fn copy_owned_data(&self, hash: &BlobHash, staging: &Path) -> bool {
        let Ok(Presence {
            complete: true,
            bytes,
        }) = self.presence_async(hash).await
        else {
            return false;
        };
        let source = self.dir.join("data").join(format!("{hash}.data"));
        let staging = staging.to_owned();
        let copied = tokio::task::spawn_blocking(move || {
            let length = std::fs::metadata(&source).ok()?.len();
            if length != bytes {
                return None;
            }
            let written = std::fs::copy(&source, &staging).ok()?;
            (written == bytes).then_some(())
        })
        .await;
        matches!(copied, Ok(Some(())))
    }

    /// Keeps a blob (and any partial download of it) through collection.
    pub async fn keep_async(&self, hash: &BlobHash) -> Result<(), BlobStoreError> {
        self.store
            .tags()
            .set(keep_tag(hash), HashAndFormat::raw(to_iroh(hash)))
            .await
            .map_err(|e| BlobStoreError::Store(e.to_string()))
    }

    /// Lets the next collection run drop a blob.
    pub fn release(&self, hash: &BlobHash) -> Result<(), BlobStoreError> {
        self.runtime
            .block_on(self.store.tags().delete(keep_tag(hash)))
            .map(|_| ())
            .map_err(|e| BlobStoreError::Store(e.to_string()))
    }

    /// Every blob the store keeps.
    pub fn kept(&self) -> Result<Vec<BlobHash>, BlobStoreError> {
        self.runtime.block_on(async {
            let mut tags = std::pin::pin!(
                self.store
                    .tags()
                    .list_prefix("blob/")
                    .await
                    .map_err(|e| BlobStoreError::Store(e.to_string()))?
            );
            let mut out = Vec::new();
            while let Some(tag) = tags.next().await {
                let tag = tag.map_err(|e| BlobStoreError::Store(e.to_string()))?;
                out.push(from_iroh(&tag.hash));
            }
            Ok(out)
        })
    }

    /// Flushes and stops the store; later calls fail.
    pub async fn shutdown(&self) {
        let _ = self.store.shutdown().await;
    }
}
