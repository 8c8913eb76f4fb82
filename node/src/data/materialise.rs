//! Pointers into the working tree: the large files (and linked datasets'
//! files) whose bytes the store holds are written beneath the project
//! folder, and what is missing is reported for a fetch.

use std::collections::BTreeMap;

use tandem_protocol::api::{BlobInfo, FetchFailure};
use tandem_protocol::blob::Pointer;
use tandem_protocol::path::SafePath;

use crate::blobs::track::{Materialised, Tracker, stat};
use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::service::Service;

/// Why a fetch was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchScope {
    /// After a sync or clone: everything; for a project cloned with
    /// `--no-data`, only new versions of files already here.
    Automatic,
    /// The user asked: everything named (or everything, if nothing is).
    Requested,
}

/// A blob that a working tree needs and the store lacks.
#[derive(Debug, Clone)]
pub(crate) struct Needed {
    pub(crate) file: SafePath,
    pub(crate) pointer: Pointer,
    /// An older version is in the working tree: the user wants this file,
    /// so even an on-demand project brings the new version.
    pub(crate) was_local: bool,
}

impl Service {
    /// Brings the working tree in line with the pointers, using what the
    /// store already holds. Returns what it could not write for lack of
    /// bytes, and what it refused to write (a link on the way). Files
    /// edited here since they were written are left alone (the next sweep
    /// records them); files whose pointer was removed by a peer are
    /// removed too, unless edited here.
    fn materialise_blobs(
        &self,
        project: &mut Project,
        bring_back: &dyn Fn(&SafePath) -> bool,
    ) -> Result<(Vec<Needed>, Vec<FetchFailure>), ServiceError> {
        let tracker = Tracker::new(&project.dir);
        let root = tracker.beneath()?;
        let pointers = tracker.pointers()?;
        let mut state = tracker.load_state()?;
        let before = state.clone();
        let mut needed = Vec::new();
        let mut refused = Vec::new();
        let mut stale_files = Vec::new();
        let mut exports = Vec::new();
        for (file, pointer) in &pointers {
            if state.evicted.contains(file.as_str()) {
                if !bring_back(file) {
                    continue;
                }
                state.evicted.remove(file.as_str());
            }
            let on_disk = match stat(root, file.as_str()) {
                Ok(on_disk) => on_disk,
                Err(e) => match e.as_refusal() {
                    Some(why) => {
                        refused.push(refusal(file.as_str(), why));
                        continue;
                    }
                    None => return Err(e.into()),
                },
            };
            let known = state.files.get(file.as_str()).copied();
            let stale = match (known, on_disk) {
                (Some(known), _) if known.matches(on_disk) => known.hash != pointer.hash,
                (Some(_), Some(_)) | (None, Some(_)) => false,
                (_, None) => true,
            };
            if !stale {
                continue;
            }
            stale_files.push((file.clone(), *pointer, known.is_some()));
        }
        if !stale_files.is_empty() {
            let store = self.blob_store()?;
            let hashes = stale_files.iter().map(|(_, p, _)| p.hash).collect();
            for ((file, pointer, was_local), presence) in
                stale_files.into_iter().zip(store.presence_many(hashes))
            {
                if presence?.complete {
                    exports.push((file, pointer.hash));
                } else {
                    needed.push(Needed {
                        file,
                        pointer,
                        was_local,
                    });
                }
            }
        }
        if !exports.is_empty() {
            let results = self.blob_store()?.export_many(
                root,
                exports
                    .iter()
                    .map(|(file, hash)| (*hash, file.as_str().to_owned()))
                    .collect(),
                false,
            );
            for ((file, hash), result) in exports.into_iter().zip(results) {
                match result {
                    Ok(written) => {
                        state.files.insert(
                            file.as_str().to_owned(),
                            Materialised {
                                hash,
                                size: written.size,
                                mtime_ns: written.mtime_ns,
                            },
                        );
                    }
                    Err(e) => match e.as_refusal() {
                        Some(why) => refused.push(refusal(file.as_str(), why)),
                        None => return Err(e.into()),
                    },
                }
            }
        }
        let gone: Vec<String> = state
            .files
            .keys()
            .filter(|f| SafePath::parse(f).map_or(true, |f| !pointers.contains_key(&f)))
            .cloned()
            .collect();
        for file in gone {
            let Some(known) = state.files.remove(&file) else {
                continue;
            };
            let Ok(safe) = SafePath::parse(&file) else {
                continue;
            };
            let on_disk = match stat(root, safe.as_str()) {
                Ok(on_disk) => on_disk,
                Err(e) => match e.as_refusal() {
                    Some(why) => {
                        refused.push(refusal(&file, why));
                        continue;
                    }
                    None => return Err(e.into()),
                },
            };
            if known.matches(on_disk) {
                root.remove_file(safe.as_str())?;
            }
        }
        tracker.write_exclude(pointers.keys())?;
        if state != before {
            tracker.save_state(&state)?;
        }
        for failure in &refused {
            tracing::warn!(project = %project.name, path = %failure.path, reason = %failure.reason, "not written");
        }
        Ok((needed, refused))
    }

    /// Writes every large file whose bytes the store holds into the
    /// working tree (after an import or a clone).
    pub(crate) fn write_stored_blobs(&self, project: &mut Project) -> Result<(), ServiceError> {
        self.materialise(project, FetchScope::Requested, &[])?;
        Ok(())
    }

    /// Writes what the store holds of the project's large files and linked
    /// datasets into the working tree; returns what is still missing, and
    /// whether the project fetches only on demand. A requested fetch also
    /// brings back the evicted files it names.
    pub(crate) fn materialise(
        &self,
        project: &mut Project,
        scope: FetchScope,
        wanted: &[SafePath],
    ) -> Result<(Vec<Needed>, bool, Vec<FetchFailure>), ServiceError> {
        let bring_back = |file: &SafePath| scope == FetchScope::Requested && covers(wanted, file);
        let (mut needed, mut refused) = self.materialise_blobs(project, &bring_back)?;
        let on_demand = Tracker::new(&project.dir).load_state()?.on_demand;
        let links_wanted = link_filter(scope, on_demand, &bring_back);
        let (missing, links_refused) = self.materialise_links(project, &links_wanted)?;
        needed.extend(missing.into_iter().map(|(file, pointer)| Needed {
            file,
            pointer,
            was_local: true,
        }));
        refused.extend(links_refused);
        Ok((needed, on_demand, refused))
    }

    /// Each large file's hash and whether its bytes are here.
    pub(crate) fn blob_files(
        &self,
        project: &Project,
    ) -> Result<BTreeMap<String, (Pointer, BlobInfo)>, ServiceError> {
        let tracker = Tracker::new(&project.dir);
        let pointers = tracker.pointers()?;
        let mut out = BTreeMap::new();
        if pointers.is_empty() {
            return Ok(out);
        }
        let local = tracker.load_state()?;
        let presences = self
            .blob_store()?
            .presence_many(pointers.values().map(|p| p.hash).collect());
        for ((file, pointer), presence) in pointers.into_iter().zip(presences) {
            let mut presence = presence?;
            if local.evicted.contains(file.as_str()) {
                // Dropped by the user; the store lets go at its next run.
                presence = crate::blobs::store::Presence {
                    complete: false,
                    bytes: 0,
                };
            }
            let state = presence.state();
            out.insert(
                file.as_str().to_owned(),
                (
                    pointer,
                    BlobInfo {
                        hash: pointer.hash,
                        state,
                        present: presence.bytes.min(pointer.size),
                    },
                ),
            );
        }
        Ok(out)
    }

    /// Marks a project as fetching its large files only when asked.
    pub(crate) fn set_on_demand(&self, project: &Project, on: bool) -> Result<(), ServiceError> {
        let tracker = Tracker::new(&project.dir);
        let mut state = tracker.load_state()?;
        state.on_demand = on;
        tracker.save_state(&state)?;
        Ok(())
    }
}

/// Which linked datasets' files a fetch writes: all of them after a sync,
/// unless the project is on demand; what was asked for otherwise.
fn link_filter<'a>(
    scope: FetchScope,
    on_demand: bool,
    requested: &'a dyn Fn(&SafePath) -> bool,
) -> impl Fn(&SafePath) -> bool + 'a {
    move |file| match scope {
        FetchScope::Automatic => !on_demand,
        FetchScope::Requested => requested(file),
    }
}

/// Whether `file` is one of `wanted` or inside one of them; nothing
/// wanted means everything.
pub(super) fn covers(wanted: &[SafePath], file: &SafePath) -> bool {
    wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == file || file.as_str().starts_with(&format!("{}/", w.as_str())))
}

/// A file refused for writing, as a fetch reports it.
pub(crate) fn refusal(path: &str, why: &crate::beneath::BeneathError) -> FetchFailure {
    FetchFailure {
        path: path.to_owned(),
        reason: format!("refused: {why}"),
    }
}
