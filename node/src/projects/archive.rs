//! Export a project to a zip and import it back, safely.
//!
//! The archive holds the Git object database (`repo.git/`), one document per
//! activity writer with its signed heads (`feed/`), and a small manifest.
//! Import never trusts the archive: every name is checked before anything is
//! written, links and special files are refused, sizes are capped, Git
//! history is fetched object by object into a fresh repository (so no hook
//! or config from the archive survives), the genesis is verified against the
//! project id, and every activity document must end at heads its writer
//! signed. All of it happens in a staging folder that is renamed into place
//! only when every check has passed.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use git2::Repository;
use serde::{Deserialize, Serialize};
use tandem_protocol::ProjectId;
use tandem_protocol::ProjectName;
use tandem_protocol::activity::{Details, Kind};
use tandem_protocol::api::{ExportResult, ProjectSummary};
use tandem_protocol::path::SafePath;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::activity::feed::{Feed, SignedHeads};
use crate::error::{ServiceError, io_context};
use crate::projects::project::{MANIFEST, Manifest, Project};
use crate::projects::repo::{self, RepoError};
use crate::service::Service;

const FORMAT: u32 = 1;
const ARCHIVE_MANIFEST: &str = "tandem-export.json";
/// Caps that keep a hostile archive from filling the disk.
const MAX_ENTRIES: usize = 1_000_000;
const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct ArchiveManifest {
    format: u32,
    project: ProjectId,
    name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0} is not a readable zip archive: {1}")]
    NotZip(PathBuf, String),
    #[error("unsafe archive, nothing was imported: {0}")]
    Unsafe(String),
    #[error("invalid Tandem archive, nothing was imported: {0}")]
    Invalid(String),
}

impl From<ArchiveError> for ServiceError {
    fn from(e: ArchiveError) -> Self {
        ServiceError::refused(e)
    }
}

impl Service {
    pub fn export_project(&self, name: &str, output: &Path) -> Result<ExportResult, ServiceError> {
        let project = self.project(name)?;
        let mut project = self.lock_project(&project);
        self.sweep_project(&mut project)?;
        let parent = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(ServiceError::BadRequest(format!(
                "cannot write {}: folder {} does not exist",
                output.display(),
                parent.display()
            )));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".tandem-export-")
            .tempfile_in(parent)
            .map_err(io_context(format!("writing into {}", parent.display())))?;
        write_archive(&project, self, tmp.as_file()).map_err(io_context("writing the archive"))?;
        tmp.as_file()
            .sync_all()
            .map_err(io_context("writing the archive"))?;
        tmp.persist(output)
            .map_err(|e| e.error)
            .map_err(io_context(format!("writing {}", output.display())))?;
        let bytes = fs::metadata(output).map(|m| m.len()).unwrap_or(0);
        Ok(ExportResult {
            path: output.display().to_string(),
            bytes,
        })
    }

    pub fn import_project(
        &self,
        archive: &Path,
        name: Option<&str>,
    ) -> Result<ProjectSummary, ServiceError> {
        let staging = tempfile::Builder::new()
            .prefix("import-")
            .tempdir_in(self.home().tmp_dir())
            .map_err(io_context("creating a staging folder"))?;
        let unpacked = staging.path().join("unpacked");
        extract(archive, &unpacked)?;
        let manifest_text = fs::read_to_string(unpacked.join(ARCHIVE_MANIFEST))
            .map_err(|_| ArchiveError::Invalid(format!("{ARCHIVE_MANIFEST} is missing")))?;
        let meta: ArchiveManifest = serde_json::from_str(&manifest_text)
            .map_err(|e| ArchiveError::Invalid(format!("{ARCHIVE_MANIFEST}: {e}")))?;
        if meta.format != FORMAT {
            return Err(ArchiveError::Invalid(format!(
                "archive format {} is not supported (expected {FORMAT})",
                meta.format
            ))
            .into());
        }
        let name: ProjectName = name.unwrap_or(&meta.name).parse()?;
        let dest = self.project_dir(&name);
        if dest.exists() {
            return Err(ServiceError::Conflict(format!(
                "a project named {name:?} already exists; import with --as NEW_NAME"
            )));
        }
        if let Some(existing) = self.find_by_id(&meta.project)? {
            return Err(ServiceError::Conflict(format!(
                "this project is already here as {existing:?}"
            )));
        }

        // Git: fetch into a fresh repository, then check out.
        let work = staging.path().join("work");
        let repository = repo::init(&work)?;
        let source = unpacked.join("repo.git");
        if !source.is_dir() {
            return Err(ArchiveError::Invalid("repo.git/ is missing".into()).into());
        }
        fetch_all(&repository, &source)
            .map_err(|e| ArchiveError::Invalid(format!("the Git history is unreadable: {e}")))?;
        repository
            .set_head(&format!("refs/heads/{}", repo::BRANCH))
            .map_err(RepoError::from)?;
        // No link or submodule is ever checked out (see `IncomingLinks`).
        let tree = repository
            .head()
            .and_then(|h| h.peel_to_tree())
            .map_err(|e| ArchiveError::Invalid(format!("the Git history is unreadable: {e}")))?;
        if let Some(links) = crate::sync::git::incoming_links(&repository, None, &tree)
            .map_err(|e| ArchiveError::Invalid(format!("the Git history is unreadable: {e}")))?
        {
            return Err(ArchiveError::Unsafe(links.to_string()).into());
        }
        drop(tree);
        repository
            .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .map_err(RepoError::from)?;
        let committed = repo::read_at_head(&repository, MANIFEST)?.ok_or_else(|| {
            ArchiveError::Invalid(format!("{MANIFEST} is missing from the history"))
        })?;
        let committed = String::from_utf8(committed)
            .map_err(|_| ArchiveError::Invalid(format!("{MANIFEST} is not text")))?;
        let manifest = Manifest::parse(&committed, Path::new(MANIFEST))
            .map_err(|e| ArchiveError::Invalid(e.to_string()))?;
        if manifest.id != meta.project {
            return Err(ArchiveError::Invalid(
                "the archive's project id does not match its genesis".into(),
            )
            .into());
        }
        for section in tandem_protocol::api::Section::ALL {
            let _ = fs::create_dir_all(work.join(section.as_str()).join("untracked"));
        }
        drop(repository);

        // Activity: every writer's document must end at heads it signed.
        let feed_dir = staging.path().join("feed");
        let mut feed = Feed::open(&feed_dir, manifest.id)?;
        let docs = unpacked.join("feed");
        if let Ok(items) = fs::read_dir(&docs) {
            for item in items.flatten() {
                let path = item.path();
                if path.extension().and_then(|e| e.to_str()) != Some("am") {
                    continue;
                }
                let bytes = fs::read(&path).map_err(io_context("reading an activity document"))?;
                let heads_path = path.with_extension("heads");
                let heads: SignedHeads = fs::read_to_string(&heads_path)
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .ok_or_else(|| {
                        ArchiveError::Invalid("an activity document has no signed heads".into())
                    })?;
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                if stem != hex::encode(heads.payload.writer.as_bytes()) {
                    return Err(ArchiveError::Invalid(
                        "an activity document is filed under the wrong writer".into(),
                    )
                    .into());
                }
                feed.import_doc(&bytes, &heads).map_err(|e| {
                    ArchiveError::Invalid(format!(
                        "activity of {}: {e}",
                        heads.payload.writer.short()
                    ))
                })?;
            }
        }
        drop(feed);

        // Large files: each must hash to its name before it is stored.
        let blobs = unpacked.join("blobs");
        let mut imported = Vec::new();
        if blobs.is_dir() {
            for item in fs::read_dir(&blobs).map_err(io_context("reading the archive's blobs"))? {
                let item = item.map_err(io_context("reading the archive's blobs"))?;
                let name = item.file_name().to_string_lossy().into_owned();
                let expected: tandem_protocol::blob::BlobHash = name.parse().map_err(|_| {
                    ArchiveError::Invalid(format!("blobs/{name} is not named by a BLAKE3 hash"))
                })?;
                let mut hasher = blake3::Hasher::new();
                let mut reader = File::open(item.path()).map_err(io_context("reading a blob"))?;
                io::copy(&mut reader, &mut hasher).map_err(io_context("reading a blob"))?;
                if hasher.finalize().as_bytes() != expected.as_bytes() {
                    return Err(ArchiveError::Invalid(format!(
                        "blobs/{name} does not match its hash (the archive is damaged)"
                    ))
                    .into());
                }
                self.blob_store()?.ingest(&item.path())?;
                imported.push(expected);
            }
        }

        // Everything checked: move into place.
        let feed_dest = self.home().feeds_dir().join(manifest.id.to_string());
        let _ = fs::remove_dir_all(&feed_dest);
        fs::rename(&feed_dir, &feed_dest).map_err(io_context("storing the activity"))?;
        // Pinned from the history's manifest, checked above against the
        // archive's project id.
        crate::projects::project::pin(self.home(), &name, &manifest)?;
        if let Err(e) = fs::rename(&work, &dest) {
            crate::projects::project::unpin(self.home(), &name);
            return Err(io_context(format!(
                "moving the project to {}",
                dest.display()
            ))(e));
        }
        let project = Project::open(name.clone(), dest, self.home())?;
        let handle = self.register(project);
        let mut project = self.lock_project(&handle);
        // The archive's own bytes (each checked against its name above).
        self.note_obtained(&project, imported);
        self.write_stored_blobs(&mut project)?;
        let message = format!(
            "Imported project {name} from {}",
            archive
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("an archive")
        );
        project.feed.append(
            self.key(),
            &self.profile().name,
            crate::activity::feed::Draft {
                kind: Kind::Milestone,
                message,
                commit: None,
                details: Details::default(),
                tags: vec![],
                time_ms: crate::service::now_ms(),
            },
        )?;
        self.summary(&project)
    }
}

fn write_archive(project: &Project, service: &Service, file: &File) -> io::Result<()> {
    let mut zip = ZipWriter::new(file);
    let deflate = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let meta = ArchiveManifest {
        format: FORMAT,
        project: project.id(),
        name: project.name.to_string(),
    };
    zip.start_file(ARCHIVE_MANIFEST, deflate)?;
    zip.write_all(&serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?)?;

    // The object database and refs; hooks, config, index and logs stay home.
    let git_dir = project.repo.path().to_owned();
    zip.start_file("repo.git/HEAD", deflate)?;
    zip.write_all(format!("ref: refs/heads/{}\n", repo::BRANCH).as_bytes())?;
    zip.start_file("repo.git/config", deflate)?;
    zip.write_all(b"[core]\n\trepositoryformatversion = 0\n\tbare = true\n")?;
    for top in ["objects", "refs", "packed-refs"] {
        let root = git_dir.join(top);
        if !root.exists() {
            continue;
        }
        for item in walkdir::WalkDir::new(&root).follow_links(false) {
            let item = item.map_err(io::Error::other)?;
            if !item.file_type().is_file() {
                continue;
            }
            let relative = item
                .path()
                .strip_prefix(&git_dir)
                .map_err(io::Error::other)?;
            let name = format!("repo.git/{}", relative.to_string_lossy().replace('\\', "/"));
            zip.start_file(name, stored)?;
            io::copy(&mut File::open(item.path())?, &mut zip)?;
        }
    }
    for (writer, bytes, heads) in project
        .feed
        .export_docs(service.key())
        .map_err(io::Error::other)?
    {
        let Some(heads) = heads else { continue };
        let stem = hex::encode(writer.as_bytes());
        zip.start_file(format!("feed/{stem}.am"), stored)?;
        zip.write_all(&bytes)?;
        zip.start_file(format!("feed/{stem}.heads"), deflate)?;
        zip.write_all(heads.to_json().as_bytes())?;
    }
    // Large files travel with the archive (each content once), so a
    // project carried on a USB stick arrives whole.
    let tracker = crate::blobs::Tracker::new(&project.dir);
    let state = tracker.load_state().map_err(io::Error::other)?;
    let mut written = std::collections::HashSet::new();
    let root = tracker.beneath().map_err(io::Error::other)?;
    for (file, pointer) in tracker.pointers().map_err(io::Error::other)? {
        let Some(known) = state.files.get(file.as_str()) else {
            continue;
        };
        if known.hash != pointer.hash || written.contains(&pointer.hash) {
            continue;
        }
        // Opened beneath the project (never through a link) and checked
        // to be the file this node recorded, then read from that handle.
        let Ok(Some((mut handle, entry))) = root.open_file(file.as_str()) else {
            continue;
        };
        if !known.matches(Some((entry.size, entry.mtime_ns))) {
            continue;
        }
        written.insert(pointer.hash);
        zip.start_file(format!("blobs/{}", pointer.hash), stored)?;
        io::copy(&mut handle, &mut zip)?;
    }
    zip.finish()?;
    Ok(())
}

/// Checks every entry of an archive without writing anything: each name is
/// a safe relative path, no entry is a link or special file, and the
/// declared sizes stay under the caps. Returns, per entry, its index, path
/// and whether it is a folder. (Public for the fuzz target.)
pub fn check_entries<R: io::Read + io::Seek>(
    zip: &mut ZipArchive<R>,
    archive: &Path,
) -> Result<Vec<(usize, SafePath, bool)>, ArchiveError> {
    if zip.len() > MAX_ENTRIES {
        return Err(ArchiveError::Unsafe(format!(
            "{} entries is more than the limit of {MAX_ENTRIES}",
            zip.len()
        )));
    }
    let mut plan = Vec::with_capacity(zip.len());
    let mut total = 0u64;
    for index in 0..zip.len() {
        let entry = zip
            .by_index_raw(index)
            .map_err(|e| ArchiveError::NotZip(archive.to_owned(), e.to_string()))?;
        let raw = entry.name().to_owned();
        let path = SafePath::parse(&raw).map_err(|e| ArchiveError::Unsafe(e.to_string()))?;
        let mode = entry.unix_mode().unwrap_or(0);
        let kind = mode & 0o170000;
        if entry.is_symlink() || (kind != 0 && kind != 0o100000 && kind != 0o040000) {
            return Err(ArchiveError::Unsafe(format!(
                "{raw:?} is a link or special file"
            )));
        }
        total = total.saturating_add(entry.size());
        if total > MAX_TOTAL_BYTES {
            return Err(ArchiveError::Unsafe(
                "the archive unpacks to more than 64 GiB".into(),
            ));
        }
        plan.push((index, path, entry.is_dir()));
    }
    Ok(plan)
}

/// Checks every entry of the archive, then extracts it under `dest`.
/// Nothing is written unless every entry is safe.
fn extract(archive: &Path, dest: &Path) -> Result<(), ServiceError> {
    let file =
        File::open(archive).map_err(|e| ArchiveError::NotZip(archive.to_owned(), e.to_string()))?;
    let mut zip = ZipArchive::new(file)
        .map_err(|e| ArchiveError::NotZip(archive.to_owned(), e.to_string()))?;
    let plan = check_entries(&mut zip, archive)?;
    fs::create_dir_all(dest).map_err(io_context("creating a staging folder"))?;
    // Every entry is written beneath the staging folder through folder
    // handles, each file created new: an entry can neither follow a link
    // nor overwrite another entry.
    let root = crate::beneath::Beneath::open(dest)?;
    let unpacking = |e: crate::beneath::BeneathError| {
        ArchiveError::Unsafe(format!("cannot unpack {}: {e}", e.path()))
    };
    for (index, path, is_dir) in plan {
        if is_dir {
            root.create_dir_all(path.as_str()).map_err(unpacking)?;
            continue;
        }
        let mut entry = zip
            .by_index(index)
            .map_err(|e| ArchiveError::NotZip(archive.to_owned(), e.to_string()))?;
        let mut out = root.create_new(path.as_str()).map_err(unpacking)?;
        // Read at most the declared size (plus one byte to detect a lie).
        let declared = entry.size();
        // A read error here is the archive's fault (a bad checksum, a
        // truncated file), not the node's.
        let copied = io::copy(&mut (&mut entry).take(declared + 1), &mut out).map_err(|e| {
            ArchiveError::Invalid(format!(
                "{path} cannot be read ({e}): the archive is damaged"
            ))
        })?;
        if copied > declared {
            return Err(ArchiveError::Unsafe(format!(
                "{path} is larger than the archive declares"
            ))
            .into());
        }
    }
    Ok(())
}

fn fetch_all(repository: &Repository, source: &Path) -> Result<(), git2::Error> {
    let url = source
        .to_str()
        .ok_or_else(|| git2::Error::from_str("staging path is not valid UTF-8"))?;
    let mut remote = repository.remote_anonymous(url)?;
    remote.fetch(&["+refs/heads/*:refs/heads/*"], None, None)?;
    Ok(())
}
