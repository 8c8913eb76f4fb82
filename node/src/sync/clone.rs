//! Cloning a project a peer shares with this node: the steps and their
//! checks are the protocol's [`CloneSession`] (which the simulator drives
//! too); this module gathers the offers, builds the copy in staging,
//! installs it, then runs an ordinary session with the same peer and
//! fetches what the checkout needs.

use std::sync::Arc;

use tandem_protocol::sync::{BRANCH, CloneError, CloneSession, CloneStep};
use tandem_protocol::wire::Offer;
use tandem_protocol::{PeerKey, ProjectId};

use crate::error::ServiceError;
use crate::projects::project::{Manifest, Project};
use crate::projects::repo;
use crate::service::Service;
use crate::sync::git;
use crate::sync::session::LocalProject;

impl Service {
    /// Fetches a project shared with this node from a peer that offers it,
    /// verifies its genesis, then syncs access and activity.
    pub async fn clone_project(
        self: &Arc<Self>,
        id: ProjectId,
        local_name: Option<String>,
        no_data: bool,
    ) -> Result<tandem_protocol::api::ProjectSummary, ServiceError> {
        let net = self.net()?.clone();
        let started = std::time::Instant::now();
        let offers = self.offers().await?;
        tracing::debug!(elapsed = ?started.elapsed(), "clone: offers");
        let offered: Vec<(PeerKey, Offer)> = offers
            .iter()
            .filter_map(|o| Some((o.peer.parse().ok()?, o.offer.clone())))
            .collect();
        // The protocol picks the source (the owner if it offers it).
        let (mut clone, mut request) = CloneSession::start(id, &offered).map_err(clone_error)?;
        if offers
            .iter()
            .any(|o| o.offer.project == id && o.have_locally)
        {
            return Err(ServiceError::Conflict(
                "this project is already here".into(),
            ));
        }
        let peer = clone.source();
        let peer_name = offers
            .iter()
            .find(|o| o.offer.project == id && o.peer == peer.to_did())
            .and_then(|o| o.peer_name.clone());
        let (head, pack) = loop {
            let response = net.request(&peer, request).await?;
            match clone.on_response(response).map_err(clone_error)? {
                CloneStep::Send(next) => request = next,
                CloneStep::Unpack { head, pack } => break (head, pack),
            }
        };
        tracing::debug!(elapsed = ?started.elapsed(), bytes = pack.len(), "clone: pack received");
        let peer_label = peer_name.clone().unwrap_or_else(|| peer.short());
        let name = self
            .blocking(move |service| service.materialise_clone(&clone, &head, &pack, local_name))
            .await?;
        tracing::debug!(elapsed = ?started.elapsed(), "clone: materialised");
        // Then an ordinary session with the same peer: access, activity.
        let result = self.sync_with(&name, id, peer, peer_name).await;
        tracing::debug!(elapsed = ?started.elapsed(), "clone: synced");
        if no_data {
            self.with_project(&name, |service, project| {
                service.set_on_demand(project, true)
            })
            .await?;
        }
        if let Err(e) = self.fetch_figures(&name).await {
            tracing::warn!(project = %name, error = %e, "figures not fetched");
        }
        let data = self
            .fetch_data(&name, vec![], crate::data::fetch::FetchScope::Automatic)
            .await;
        self.with_project(&name, move |service, project| {
            let mut message = format!("Cloned project {} from {peer_label}", project.manifest.name);
            if !result.problems.is_empty() {
                message.push_str(&format!(" (sync problems: {})", result.problems.join("; ")));
            }
            match &data {
                Ok(data) if !data.fetched.is_empty() => message.push_str(&format!(
                    ", with {} large {}",
                    data.fetched.len(),
                    if data.fetched.len() == 1 {
                        "file"
                    } else {
                        "files"
                    }
                )),
                Ok(data) if !data.failed.is_empty() => message.push_str(&format!(
                    "; {} large files could not be fetched yet (`tandem fetch`)",
                    data.failed.len()
                )),
                Err(e) => message.push_str(&format!("; large files not fetched: {e}")),
                Ok(_) => {}
            }
            service.record_sync(project, message)?;
            service.summary(project)
        })
        .await
    }

    /// Builds the clone in staging and moves it into place once its genesis
    /// checks out and the serving peer may write (both judged by `clone`).
    fn materialise_clone(
        &self,
        clone: &CloneSession,
        head: &str,
        pack: &[u8],
        local_name: Option<String>,
    ) -> Result<String, ServiceError> {
        let staging = tempfile::Builder::new()
            .prefix("clone-")
            .tempdir_in(self.home().tmp_dir())
            .map_err(crate::error::io_context("creating a staging folder"))?;
        let work = staging.path().join("work");
        let repository = repo::init(&work)?;
        git::ingest_pack(&repository, pack)?;
        let oid = git::parse_oid(head)?;
        repository
            .find_commit(oid)
            .map_err(|_| git::GitSyncError::Missing(head.to_owned()))?;
        repository
            .reference(&format!("refs/heads/{BRANCH}"), oid, true, "tandem clone")
            .map_err(repo::RepoError::from)?;
        // No link or submodule is ever checked out (see `IncomingLinks`).
        let tree = repository
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(repo::RepoError::from)?;
        if let Some(links) =
            git::incoming_links(&repository, None, &tree).map_err(repo::RepoError::from)?
        {
            return Err(ServiceError::BadRequest(format!(
                "the clone was not made: {links}"
            )));
        }
        drop(tree);
        repository
            .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .map_err(repo::RepoError::from)?;
        let text = repo::read_at_head(&repository, crate::projects::project::MANIFEST)?
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ServiceError::BadRequest("the history has no project manifest".into())
            })?;
        let manifest = Manifest::parse(
            &text,
            std::path::Path::new(crate::projects::project::MANIFEST),
        )?;
        clone.check_unpacked(&manifest.id).map_err(clone_error)?;
        let name: tandem_protocol::ProjectName =
            local_name.as_deref().unwrap_or(&manifest.name).parse()?;
        let dest = self.project_dir(&name);
        if dest.exists() {
            return Err(ServiceError::Conflict(format!(
                "a project named {name:?} already exists; clone with --as NEW_NAME"
            )));
        }
        for section in tandem_protocol::api::Section::ALL {
            let _ = std::fs::create_dir_all(work.join(section.as_str()).join("untracked"));
        }
        drop(repository);
        // Pinned from the history's manifest, checked above to be the
        // project asked for: no later commit can change it.
        crate::projects::project::pin(self.home(), &name, &manifest)?;
        if let Err(e) = std::fs::rename(&work, &dest) {
            crate::projects::project::unpin(self.home(), &name);
            return Err(crate::error::io_context("moving the clone into place")(e));
        }
        let project = Project::open(name.clone(), dest.clone(), self.home())?;
        if let Err(e) = clone.check_installed(&LocalProject(&project)) {
            drop(project);
            let _ = std::fs::remove_dir_all(&dest);
            crate::projects::project::unpin(self.home(), &name);
            return Err(clone_error(e));
        }
        if let Some(refs) = clone.vouched()
            && let Err(e) = crate::sync::writer_refs::keep(project.repo.path(), refs)
        {
            tracing::warn!(error = %e, "the cloned head's refs were not kept");
        }
        self.register(project);
        Ok(name.to_string())
    }
}

/// A refused clone, said as the node always said it: the source's doing
/// is the user's to retry elsewhere, nobody offering it is "not found".
fn clone_error(e: CloneError) -> ServiceError {
    match e {
        CloneError::NotOffered { .. } => ServiceError::NoSuchProject(e.to_string()),
        CloneError::BadRefs(source) => ServiceError::invalid("the peer's refs are invalid", source),
        CloneError::Transport(_) | CloneError::Over => ServiceError::failed("cloning", e),
        CloneError::Refused
        | CloneError::NoHistory
        | CloneError::OtherProject
        | CloneError::NotAWriter => ServiceError::refused(e),
    }
}
