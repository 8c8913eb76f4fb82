//! Datasets: create, add files as new versions, list, and pin a version
//! into a project, where its files appear read-only under `input/<name>/`.

use std::collections::BTreeMap;

use iroh_blobs::format::collection::Collection;
use tandem_protocol::activity::{Details, Kind};
use tandem_protocol::api::{DatasetDetail, DatasetSummary, FetchFailure, VersionSummary};
use tandem_protocol::blob::Pointer;
use tandem_protocol::dataset::{DATA_DIR, Link, Version, VersionFile, parse_reference};
use tandem_protocol::path::SafePath;

use super::listings;
use crate::beneath::{Beneath, WriteOptions};
use crate::blobs::Tracker;
use crate::blobs::store::{from_iroh, to_iroh};
use crate::error::{ServiceError, io_context};
use crate::projects::project::{Project, ProjectKind};
use crate::service::{Service, now_ms};

/// A project's own folder, for reading and writing its listings.
fn work_tree(project: &Project) -> Result<Beneath, ServiceError> {
    Ok(Beneath::open(&project.dir)?)
}

/// Linked files still missing (pointers at their project paths) and the
/// ones refused on the way.
type LinkMaterialised = (Vec<(SafePath, Pointer)>, Vec<FetchFailure>);

impl Service {
    fn dataset(
        &self,
        name: &str,
    ) -> Result<std::sync::Arc<std::sync::Mutex<Project>>, ServiceError> {
        let handle = self.project(name)?;
        if self.lock_project(&handle).manifest.kind != ProjectKind::Dataset {
            return Err(ServiceError::BadRequest(format!(
                "{name} is a project, not a dataset (see `tandem dataset list`)"
            )));
        }
        Ok(handle)
    }

    pub fn create_dataset(
        &self,
        name: &str,
        description: &str,
    ) -> Result<DatasetSummary, ServiceError> {
        self.create(name, description, ProjectKind::Dataset, None)?;
        let handle = self.dataset(name)?;
        let project = self.lock_project(&handle);
        self.dataset_summary(&project)
    }

    fn dataset_summary(&self, project: &Project) -> Result<DatasetSummary, ServiceError> {
        let versions = listings::versions(&project.dir)?;
        Ok(DatasetSummary {
            name: project.name.to_string(),
            id: project.id().to_string(),
            description: project.manifest.description.clone(),
            owner: project.manifest.genesis.payload.owner.to_did(),
            role: project.access.role_of(&self.key().public(), now_ms()),
            version_count: versions.len() as u32,
            latest: versions.last().map(VersionSummary::from),
        })
    }

    pub fn list_datasets(&self) -> Result<Vec<DatasetSummary>, ServiceError> {
        let mut out = Vec::new();
        for name in self.project_names()? {
            let Ok(handle) = self.project(name.as_str()) else {
                continue;
            };
            let project = self.lock_project(&handle);
            if project.manifest.kind == ProjectKind::Dataset {
                out.push(self.dataset_summary(&project)?);
            }
        }
        Ok(out)
    }

    /// A dataset's versions and the files of one of them (the latest by
    /// default).
    pub fn show_dataset(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<DatasetDetail, ServiceError> {
        let handle = self.dataset(name)?;
        let project = self.lock_project(&handle);
        let all = listings::versions(&project.dir)?;
        let shown = match version {
            Some(n) => Some(all.iter().find(|v| v.number == n).ok_or_else(|| {
                ServiceError::NoSuchFile(format!(
                    "{name} has no version {n} (see `tandem dataset versions {name}`)"
                ))
            })?),
            None => all.last(),
        };
        Ok(DatasetDetail {
            summary: self.dataset_summary(&project)?,
            versions: all.iter().map(VersionSummary::from).collect(),
            shown: shown.map(|v| v.number),
            files: shown.map(|v| v.files.clone()).unwrap_or_default(),
        })
    }

    /// Copies files into the dataset and records the result as its next
    /// version (nothing new if the content is unchanged).
    pub fn add_to_dataset(
        &self,
        name: &str,
        paths: &[String],
        message: &str,
    ) -> Result<VersionSummary, ServiceError> {
        let handle = self.dataset(name)?;
        let mut project = self.lock_project(&handle);
        if !paths.is_empty() {
            let plan = crate::projects::sweep::plan_copies(&project, DATA_DIR, paths)?;
            let root = work_tree(&project)?;
            for (source, dest) in &plan {
                root.copy_tree_in(source, dest)
                    .map_err(io_context(format!("copying {}", source.display())))?;
            }
        }
        self.sweep_locked(&mut project)?;
        let version = self.record_version(&mut project, message)?;
        Ok(VersionSummary::from(&version))
    }

    /// Turns the dataset's current files into a version: an iroh-blobs
    /// collection, kept by a tag, and its listing committed to Git.
    fn record_version(
        &self,
        project: &mut Project,
        message: &str,
    ) -> Result<Version, ServiceError> {
        let pointers = Tracker::new(&project.dir).pointers()?;
        let files: Vec<VersionFile> = pointers
            .iter()
            .filter_map(|(file, pointer)| {
                let inside = file.as_str().strip_prefix(&format!("{DATA_DIR}/"))?;
                Some(VersionFile {
                    path: inside.to_owned(),
                    hash: pointer.hash,
                    size: pointer.size,
                })
            })
            .collect();
        let existing = listings::versions(&project.dir)?;
        if let Some(latest) = existing.last()
            && latest.files == files
        {
            return Ok(latest.clone());
        }
        let number = existing.last().map_or(1, |v| v.number + 1);
        let collection: Collection = files
            .iter()
            .map(|f| (f.path.clone(), to_iroh(&f.hash)))
            .collect();
        let store = self.blob_store()?;
        let tag_name = format!("version/{}/{number}", project.id());
        let root = tokio::runtime::Handle::current().block_on(async {
            let temp = collection
                .store(store.inner())
                .await
                .map_err(|e| ServiceError::failed("storing the version", e))?;
            store
                .inner()
                .tags()
                .set(tag_name, temp.hash_and_format())
                .await
                .map_err(|e| ServiceError::failed("storing the version", e))?;
            Ok::<_, ServiceError>(temp.hash())
        })?;
        let version = Version {
            number,
            collection: from_iroh(&root),
            created_ms: now_ms(),
            message: message.trim().to_owned(),
            files,
        };
        let text = format!(
            "Version {number} of {}: {} files, {}",
            project.name,
            version.files.len(),
            tandem_protocol::text::byte_size(version.bytes())
        );
        let summary = if version.message.is_empty() {
            text
        } else {
            format!("{text}: {}", version.message)
        };
        self.commit_dataset_file(project, &Version::path(number), &version.to_toml(), summary)?;
        // Made here from the dataset's own files.
        self.note_obtained(project, [version.collection]);
        Ok(version)
    }

    /// Pins a dataset version into a project; its files appear read-only
    /// under `input/<dataset>/` (fetched from peers if not here).
    pub fn link_dataset(&self, project_name: &str, reference: &str) -> Result<Link, ServiceError> {
        let (dataset_name, number) = parse_reference(reference)?;
        let (dataset_id, version) = {
            let handle = self.dataset(&dataset_name)?;
            let dataset = self.lock_project(&handle);
            let all = listings::versions(&dataset.dir)?;
            let version = match number {
                Some(n) => all.into_iter().find(|v| v.number == n),
                None => all.into_iter().next_back(),
            }
            .ok_or_else(|| {
                ServiceError::NoSuchFile(format!(
                    "{dataset_name} has no {} (see `tandem dataset versions {dataset_name}`)",
                    number.map_or("version yet".to_owned(), |n| format!("version {n}"))
                ))
            })?;
            (dataset.id(), version)
        };
        let handle = self.project(project_name)?;
        let mut project = self.lock_project(&handle);
        if project.manifest.kind == ProjectKind::Dataset {
            return Err(ServiceError::BadRequest(
                "datasets link into projects, not into other datasets".into(),
            ));
        }
        let link = Link {
            dataset: dataset_id,
            name: dataset_name.clone(),
            version: version.number,
            collection: version.collection,
            files: version.files.clone(),
        };
        // The folder the files go to must be a real folder of the project,
        // not a link (one made from the container, say) leading elsewhere.
        work_tree(&project)?.create_dir_all(&link.folder())?;
        let summary = format!(
            "Linked dataset {dataset_name} version {} ({} files, {}) at {}/",
            version.number,
            version.files.len(),
            tandem_protocol::text::byte_size(version.bytes()),
            link.folder()
        );
        self.commit_dataset_file(
            &mut project,
            &Link::path(&dataset_name),
            &link.to_toml(),
            summary,
        )?;
        // The user links, here, a dataset they hold into this project: its
        // readers may fetch the pinned files from this node.
        self.note_obtained(
            &project,
            std::iter::once(link.collection).chain(link.files.iter().map(|f| f.hash)),
        );
        self.materialise_links(&mut project, &|_| true)?;
        Ok(link)
    }

    /// Writes one of Tandem's dataset files (a version listing or a link),
    /// commits it alone and records the change.
    fn commit_dataset_file(
        &self,
        project: &mut Project,
        relative: &str,
        contents: &str,
        summary: String,
    ) -> Result<(), ServiceError> {
        work_tree(project)?.write(
            relative,
            contents.as_bytes(),
            WriteOptions {
                mode: None,
                sync: true,
            },
        )?;
        let commit = crate::projects::repo::commit_paths(
            &project.repo,
            &self.signature()?,
            &format!("[tandem:dataset] {summary}\n\n{}", self.trailer()),
            &[relative],
        )?;
        self.append(
            project,
            Kind::Dataset,
            summary,
            Some(commit.to_string()),
            Details::default(),
            vec![],
        )?;
        Ok(())
    }

    /// Writes linked datasets' files that the store holds into the
    /// project, read-only, and removes those of versions no longer
    /// linked. Returns what is missing, as pointers at their project paths,
    /// and what was refused (a link on the way). Every path is reached
    /// beneath the project folder without following links.
    pub(crate) fn materialise_links(
        &self,
        project: &mut Project,
        wanted: &dyn Fn(&SafePath) -> bool,
    ) -> Result<LinkMaterialised, ServiceError> {
        let tracker = Tracker::new(&project.dir);
        let root = tracker.beneath()?;
        let mut state = tracker.load_state()?;
        let before = state.clone();
        let mut expected: BTreeMap<String, Pointer> = BTreeMap::new();
        for link in listings::links(&project.dir)? {
            for file in &link.files {
                expected.insert(
                    format!("{}/{}", link.folder(), file.path),
                    Pointer {
                        hash: file.hash,
                        size: file.size,
                    },
                );
            }
        }
        let mut missing = Vec::new();
        let mut refused = Vec::new();
        for (relative, pointer) in &expected {
            let Ok(safe) = SafePath::parse(relative) else {
                continue;
            };
            let on_disk = match crate::blobs::track::stat(root, safe.as_str()) {
                Ok(on_disk) => on_disk,
                Err(e) => match e.as_refusal() {
                    Some(why) => {
                        refused.push(crate::data::materialise::refusal(relative, why));
                        continue;
                    }
                    None => return Err(e.into()),
                },
            };
            if let Some(known) = state.linked.get(relative)
                && known.matches(on_disk)
                && known.hash == pointer.hash
            {
                continue;
            }
            if !wanted(&safe) {
                continue;
            }
            let store = self.blob_store()?;
            if !store.presence(&pointer.hash)?.complete {
                missing.push((safe, *pointer));
                continue;
            }
            if on_disk.is_some() {
                let _ = root.remove_file(safe.as_str());
            }
            match store.export(root, &pointer.hash, safe.as_str(), true) {
                Ok(written) => {
                    state.linked.insert(
                        relative.clone(),
                        crate::blobs::track::Materialised {
                            hash: pointer.hash,
                            size: written.size,
                            mtime_ns: written.mtime_ns,
                        },
                    );
                }
                Err(e) => match e.as_refusal() {
                    Some(why) => refused.push(crate::data::materialise::refusal(relative, why)),
                    None => return Err(e.into()),
                },
            }
        }
        let gone: Vec<String> = state
            .linked
            .keys()
            .filter(|k| !expected.contains_key(*k))
            .cloned()
            .collect();
        for relative in gone {
            if let Some(known) = state.linked.remove(&relative)
                && let Ok(safe) = SafePath::parse(&relative)
                && let Ok(on_disk) = crate::blobs::track::stat(root, safe.as_str())
                && known.matches(on_disk)
            {
                let _ = root.remove_file(safe.as_str());
            }
        }
        let pointers = tracker.pointers()?;
        tracker.write_exclude(pointers.keys())?;
        if state != before {
            tracker.save_state(&state)?;
        }
        for failure in &refused {
            tracing::warn!(project = %project.name, path = %failure.path, reason = %failure.reason, "not written");
        }
        Ok((missing, refused))
    }
}
