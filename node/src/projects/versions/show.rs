//! Looking at a version: its files (large ones with where their bytes are
//! now), README, environment and dataset links, and one file's bytes.

use git2::Oid;
use tandem_protocol::api::{
    BlobInfo, EnvAtVersion, FileInfo, LinkAtVersion, PackageView, VersionDetail,
};
use tandem_protocol::blob::Pointer;
use tandem_protocol::path::SafePath;

use super::error::VersionError;
use super::pick;
use super::tree::{Snapshot, VersionFile};
use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::projects::summary::by_section;
use crate::service::{Service, lock};

impl Service {
    /// Runs `f` on the version `version` names, with the project locked
    /// (so no sync moves the history while it is read).
    pub(crate) fn with_version<T>(
        &self,
        name: &str,
        version: &str,
        f: impl FnOnce(&mut Project, &Snapshot<'_>, Oid) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let handle = self.project(name)?;
        let mut project = lock(&handle);
        let oid = pick::resolve(&project.repo, &project.feed, name, version)?;
        let head = pick::head(&project.repo).unwrap_or(oid);
        // The repository handle is shared with `f`, which may need the
        // project mutably (a restore): open a second one for the snapshot.
        let repo = crate::projects::repo::open(&project.dir)?;
        let snapshot = Snapshot::open(&repo, oid)?;
        f(&mut project, &snapshot, head)
    }

    /// A version's files, README, environment and links, as they were.
    pub fn version_detail(&self, name: &str, version: &str) -> Result<VersionDetail, ServiceError> {
        self.with_version(name, version, |project, snapshot, head| {
            let listed = snapshot.list();
            let mut unreadable = listed.unreadable;
            let infos = self.blob_infos(listed.large.iter().map(|(_, p)| *p).collect())?;
            let small = listed.small.into_iter().map(|(path, size)| FileInfo {
                path,
                size,
                blob: None,
            });
            let large = listed
                .large
                .iter()
                .zip(infos)
                .map(|((file, pointer), info)| FileInfo {
                    path: file.to_string(),
                    size: pointer.size,
                    blob: Some(info),
                });
            let env = snapshot.env(&mut unreadable).map(|spec| EnvAtVersion {
                base: spec.base.id.to_string(),
                revision: spec.base.revision,
                packages: spec
                    .packages
                    .iter()
                    .map(|p| PackageView {
                        manager: p.manager.as_str().to_owned(),
                        name: p.name.to_string(),
                        version: p.version.clone(),
                    })
                    .collect(),
                snippets: spec.snippets.iter().map(|s| s.name.clone()).collect(),
            });
            let datasets = snapshot
                .links(&mut unreadable)
                .into_iter()
                .map(|link| LinkAtVersion {
                    dataset: link.dataset.to_string(),
                    version: link.version,
                    collection: link.collection,
                    files: link.files.len(),
                    bytes: link.files.iter().map(|f| f.size).sum(),
                    name: link.name,
                })
                .collect();
            Ok(VersionDetail {
                project: project.name.to_string(),
                version: snapshot.summary(Some(head)),
                sections: by_section(small.chain(large)),
                readme: snapshot.readme(),
                env: env.unwrap_or_else(|| EnvAtVersion {
                    base: "unreadable".into(),
                    revision: 0,
                    packages: vec![],
                    snippets: vec![],
                }),
                datasets,
                unreadable,
            })
        })
    }

    /// Where each large file's bytes are now.
    pub(crate) fn blob_infos(&self, pointers: Vec<Pointer>) -> Result<Vec<BlobInfo>, ServiceError> {
        if pointers.is_empty() {
            return Ok(vec![]);
        }
        let presences = self
            .blob_store()?
            .presence_many(pointers.iter().map(|p| p.hash).collect());
        pointers
            .into_iter()
            .zip(presences)
            .map(|(pointer, presence)| {
                let presence = presence?;
                let state = presence.state();
                Ok(BlobInfo {
                    hash: pointer.hash,
                    state,
                    present: presence.bytes.min(pointer.size),
                })
            })
            .collect()
    }

    /// One file of a version: its bytes (up to `limit`) if Git holds
    /// them, or its pointer if it is a large file.
    pub fn version_file(
        &self,
        name: &str,
        version: &str,
        raw: &str,
        limit: usize,
    ) -> Result<VersionFile, ServiceError> {
        let path = SafePath::parse(raw)?;
        self.with_version(name, version, |_, snapshot, _| {
            match snapshot.file(&path, limit) {
                Ok(Some(file)) => Ok(file),
                Ok(None) => Err(VersionError::NoSuchFile {
                    path: raw.to_owned(),
                    short: pick::short(snapshot.oid()),
                }
                .into()),
                Err(size) => Err(ServiceError::BadRequest(format!(
                    "{raw} is {size} bytes, more than the {limit} shown here; download it instead"
                ))),
            }
        })
    }
}

impl Service {
    /// An open handle on a large file's bytes, for a download of an old
    /// version: fetched from members first if the store lacks them, then
    /// exported (verified) into a scratch file that is unlinked once open.
    pub async fn open_version_blob(
        self: &std::sync::Arc<Self>,
        name: &str,
        pointer: Pointer,
    ) -> Result<std::fs::File, ServiceError> {
        let store = self.blob_store_async().await?;
        if !store.presence_async(&pointer.hash).await?.complete
            && let Some((_, why)) = self.fetch_blobs(name, vec![pointer]).await?.pop()
        {
            return Err(ServiceError::NoSuchFile(format!(
                "this large file is neither here nor on a connected member ({why})"
            )));
        }
        self.blocking(move |s| {
            let tmp = s.home().tmp_dir();
            std::fs::create_dir_all(&tmp)
                .map_err(crate::error::io_context("making the temporary folder"))?;
            let scratch = tempfile::Builder::new()
                .prefix("version-")
                .tempdir_in(&tmp)
                .map_err(crate::error::io_context("making a scratch folder"))?;
            let root = crate::beneath::Beneath::open(scratch.path())?;
            s.blob_store()?.export(&root, &pointer.hash, "file", true)?;
            std::fs::File::open(scratch.path().join("file"))
                .map_err(crate::error::io_context("opening the exported file"))
        })
        .await
    }
}
