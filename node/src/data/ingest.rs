//! Large files into the blob store when a project is swept: new or changed
//! files beneath the project folder are hashed from the handle opened there
//! and replaced, for Git, by pointers.

use std::path::Path;

use tandem_protocol::activity::{FileAction, FileChange};
use tandem_protocol::blob::Pointer;
use tandem_protocol::path::SafePath;

use crate::blobs::track::{Materialised, Tracker, stat};
use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::service::Service;

impl Service {
    /// Moves new or changed large files into the blob store and points Git
    /// at them instead. Runs at the start of every sweep, under the project
    /// lock, so Git never sees a large file's bytes.
    ///
    /// Every file is reached beneath the project folder without following
    /// links, and hashed from the handle that was opened there; a path that
    /// leads through a link is left out and reported. A pointer never makes
    /// the node ingest a file it did not write or hash here itself (a
    /// writer could otherwise name an untracked file of the user's).
    ///
    /// Also returns the pending changes it looked at when it changed
    /// nothing Git can see, so the sweep need not ask Git for them again.
    pub(crate) fn prepare_blobs(&self, project: &mut Project) -> Result<Prepared, ServiceError> {
        let tracker = Tracker::new(&project.dir);
        let root = tracker.beneath()?;
        let policy = tracker.policy()?;
        let mut pointers = tracker.pointers()?;
        let mut state = tracker.load_state()?;
        let before = state.clone();
        // Files to hash into the store.
        let mut to_ingest: Vec<SafePath> = Vec::new();
        let mut refused: Vec<String> = Vec::new();
        let mut touched = false;

        for file in pointers.keys().cloned().collect::<Vec<_>>() {
            let Some(on_disk) = refusing(stat(root, file.as_str()), &mut refused)? else {
                continue;
            };
            match (state.files.get(file.as_str()), on_disk) {
                (Some(known), _) if known.matches(on_disk) => {}
                (Some(_), None) => {
                    // Deleted by the user: the pointer goes with it.
                    touched = true;
                    tracker.remove_pointer(&file)?;
                    state.files.remove(file.as_str());
                    pointers.remove(&file);
                }
                // Never fetched here: it stays a remote file.
                (None, None) => {}
                // Edited here since this node wrote or hashed it.
                (Some(_), Some(_)) => to_ingest.push(file),
                (None, Some(_)) => {
                    let Some(pointer) = pointers.get(&file).copied() else {
                        continue;
                    };
                    // A file this node never recorded, named by a pointer
                    // (from a peer, perhaps): recorded only if it already
                    // holds exactly the pointer's bytes (a lost record),
                    // never hashed into the store on the pointer's word.
                    match refusing(same_content(root, &file, &pointer), &mut refused)? {
                        Some(Some(entry)) => {
                            state.files.insert(
                                file.as_str().to_owned(),
                                Materialised {
                                    hash: pointer.hash,
                                    size: entry.size,
                                    mtime_ns: entry.mtime_ns,
                                },
                            );
                        }
                        Some(None) => refused.push(format!(
                            "{file}: a pointer names this file, but this node did not write or record it; left out (move it aside to record it under another name)"
                        )),
                        None => {}
                    }
                }
            }
        }

        let mut index = project
            .repo
            .index()
            .map_err(crate::projects::repo::RepoError::from)?;
        let mut index_changed = false;
        let (pending, links) = crate::projects::repo::pending_changes_and_links(&project.repo)?;
        refused.extend(links);
        for change in &pending {
            if change.action == FileAction::Deleted {
                continue;
            }
            let Ok(file) = SafePath::parse(&change.path) else {
                continue;
            };
            if pointers.contains_key(&file) {
                continue;
            }
            let Some(Some((size, _))) = refusing(stat(root, file.as_str()), &mut refused)? else {
                continue;
            };
            if !policy.is_large(&file, size) {
                continue;
            }
            if index.get_path(Path::new(file.as_str()), 0).is_some() {
                index
                    .remove_path(Path::new(file.as_str()))
                    .map_err(crate::projects::repo::RepoError::from)?;
                index_changed = true;
            }
            to_ingest.push(file);
        }

        if !to_ingest.is_empty() {
            touched = true;
            let files = to_ingest.iter().map(|f| f.as_str().to_owned()).collect();
            let results = self.blob_store()?.ingest_beneath(root, files);
            let mut ingested = Vec::new();
            for (file, result) in to_ingest.into_iter().zip(results) {
                let done = match result {
                    Ok(done) => done,
                    Err(e) => match e.as_refusal() {
                        Some(why) => {
                            refused.push(why.to_string());
                            continue;
                        }
                        None => return Err(e.into()),
                    },
                };
                ingested.push(done.hash);
                let pointer = Pointer {
                    hash: done.hash,
                    size: done.size,
                };
                if pointers.get(&file) != Some(&pointer) {
                    tracker.write_pointer(&file, &pointer)?;
                    pointers.insert(file.clone(), pointer);
                }
                state.files.insert(
                    file.as_str().to_owned(),
                    Materialised {
                        hash: done.hash,
                        size: done.size,
                        mtime_ns: done.mtime_ns,
                    },
                );
            }
            // Hashed from this project's own folder: obtained for it.
            self.note_obtained(project, ingested);
        }
        if index_changed {
            index
                .write()
                .map_err(crate::projects::repo::RepoError::from)?;
        }
        touched |= tracker.write_exclude(pointers.keys())?;
        if state != before {
            tracker.save_state(&state)?;
        }
        for why in &refused {
            tracing::warn!(project = %project.name, refused = %why, "left out of the sweep");
        }
        Ok(Prepared {
            unchanged: (!touched).then_some(pending),
            refused,
        })
    }
}

/// What a sweep's first step found: the pending changes it looked at when
/// nothing Git sees changed, and the paths it left out, each with why.
pub(crate) struct Prepared {
    pub unchanged: Option<Vec<FileChange>>,
    pub refused: Vec<String>,
}

/// `Ok(Some(value))`, or `Ok(None)` after noting a refused path (a link or
/// an escape) in `refused`; other errors pass through.
fn refusing<T>(
    result: Result<T, crate::blobs::track::TrackError>,
    refused: &mut Vec<String>,
) -> Result<Option<T>, ServiceError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) => match e.as_refusal() {
            Some(why) => {
                refused.push(why.to_string());
                Ok(None)
            }
            None => Err(e.into()),
        },
    }
}

/// Whether the file at `file` holds exactly the pointer's bytes: its entry
/// if so. The file is hashed from the handle opened beneath the root.
fn same_content(
    root: &crate::beneath::Beneath,
    file: &SafePath,
    pointer: &Pointer,
) -> Result<Option<crate::beneath::Entry>, crate::blobs::track::TrackError> {
    let Some((mut handle, entry)) = root.open_file(file.as_str())? else {
        return Ok(None);
    };
    if entry.size != pointer.size {
        return Ok(None);
    }
    let mut hasher = blake3::Hasher::new();
    std::io::copy(&mut handle, &mut hasher).map_err(|source| {
        crate::blobs::track::TrackError::Io {
            path: file.as_str().into(),
            source,
        }
    })?;
    Ok((hasher.finalize().as_bytes() == pointer.hash.as_bytes()).then_some(entry))
}
