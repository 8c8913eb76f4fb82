//! A read-only copy of one version, for rerunning it: its files written
//! from Git objects into the node's home (never the working tree, whose
//! index is not touched either), its large files exported from the store
//! (fetched from members first if they are not here). Made once per
//! commit, in a scratch folder renamed into place when complete, so a
//! crash leaves either no copy or a whole one.

use std::path::PathBuf;
use std::sync::Arc;

use git2::build::CheckoutBuilder;
use tandem_protocol::api::ProjectVersion;
use tandem_protocol::blob::Pointer;
use tandem_protocol::env::EnvSpec;
use tandem_protocol::path::SafePath;

use super::error::VersionError;
use crate::beneath::Beneath;
use crate::error::{ServiceError, io_context};
use crate::service::Service;

/// Where a version's copy is, and what it names.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub dir: PathBuf,
    pub version: ProjectVersion,
    pub spec: EnvSpec,
    pub project_id: String,
}

/// What the blocking half found.
struct Planned {
    checkout: Checkout,
    large: Vec<(SafePath, Pointer)>,
    complete: bool,
}

impl Service {
    /// The read-only copy of the version `version` names (see the module
    /// notes).
    pub async fn version_checkout(
        self: &Arc<Self>,
        name: &str,
        version: &str,
    ) -> Result<Checkout, ServiceError> {
        let (n, v) = (name.to_owned(), version.to_owned());
        let planned = self.blocking(move |s| s.plan_checkout(&n, &v)).await?;
        if planned.complete {
            return Ok(planned.checkout);
        }
        let store = self.blob_store_async().await?;
        let mut lacking = Vec::new();
        for (_, pointer) in &planned.large {
            if !store.presence_async(&pointer.hash).await?.complete {
                lacking.push(*pointer);
            }
        }
        let failed = self.fetch_blobs(name, lacking).await?;
        if let Some((hash, why)) = failed.first() {
            let file = planned
                .large
                .iter()
                .find(|(_, p)| &p.hash == hash)
                .map(|(f, _)| f.to_string())
                .unwrap_or_default();
            return Err(ServiceError::BadRequest(format!(
                "{} large file(s) of that version are neither here nor on a connected member ({file}: {why}); connect to one that has them and try again",
                failed.len()
            )));
        }
        let n = name.to_owned();
        self.blocking(move |s| s.write_checkout(&n, planned)).await
    }

    fn plan_checkout(&self, name: &str, version: &str) -> Result<Planned, ServiceError> {
        self.with_version(name, version, |project, snapshot, head| {
            let project_id = project.id().to_string();
            let dir = self
                .home()
                .root()
                .join("versions")
                .join(&project_id)
                .join(snapshot.oid().to_string());
            let mut unreadable = Vec::new();
            let spec = snapshot.env(&mut unreadable).ok_or_else(|| {
                ServiceError::BadRequest(format!(
                    "that version's environment cannot be read: {}",
                    unreadable.join("; ")
                ))
            })?;
            let complete = dir.is_dir();
            Ok(Planned {
                large: if complete {
                    vec![]
                } else {
                    snapshot.list().large
                },
                checkout: Checkout {
                    dir,
                    version: snapshot.summary(Some(head)),
                    spec,
                    project_id,
                },
                complete,
            })
        })
    }

    fn write_checkout(&self, name: &str, planned: Planned) -> Result<Checkout, ServiceError> {
        let Planned {
            checkout, large, ..
        } = planned;
        let parent = checkout
            .dir
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| self.home().root().to_owned());
        std::fs::create_dir_all(&parent).map_err(io_context("making the versions folder"))?;
        let scratch = tempfile::Builder::new()
            .prefix(".partial-")
            .tempdir_in(&parent)
            .map_err(io_context("making a scratch folder"))?;
        let version = checkout.version.commit.clone();
        self.with_version(name, &version, |_, snapshot, _| {
            let repo = snapshot.repo();
            let mut options = CheckoutBuilder::new();
            options
                .force()
                .update_index(false)
                .target_dir(scratch.path());
            repo.checkout_tree(snapshot.tree().as_object(), Some(&mut options))
                .map_err(VersionError::git("writing the version's files"))?;
            Ok(())
        })?;
        if !large.is_empty() {
            let root = Beneath::open(scratch.path())?;
            let items = large
                .iter()
                .map(|(file, pointer)| (pointer.hash, file.as_str().to_owned()))
                .collect();
            for result in self.blob_store()?.export_many(&root, items, true) {
                result?;
            }
        }
        let scratch = scratch.keep();
        match std::fs::rename(&scratch, &checkout.dir) {
            Ok(()) => {}
            // Another launch finished the same copy first: use that one.
            Err(_) if checkout.dir.is_dir() => {
                let _ = std::fs::remove_dir_all(&scratch);
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(io_context("putting the version's copy in place")(e));
            }
        }
        Ok(checkout)
    }
}
