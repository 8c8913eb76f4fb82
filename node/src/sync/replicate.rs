//! Syncing projects with peers: serving requests (with access enforced),
//! running a sync session per peer, and cloning.
//!
//! The decisions live in `tandem_protocol::sync::Session`; this module does
//! the I/O it asks for: network requests, packs, merges, feed bundles.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tandem_protocol::access::Roles;
use tandem_protocol::activity::{Details, Kind};
use tandem_protocol::signed::Signed;
use tandem_protocol::sync::{BRANCH, Effect, GitOutcome, LocalView, Report, Session};
use tandem_protocol::wire::{FeedBundle, Offer, Refs, Request, Response, WriterHeads};
use tandem_protocol::{PeerKey, ProjectId};

use crate::error::ServiceError;
use crate::projects::project::{Manifest, Project, ProjectOpenError};
use crate::projects::repo;
use crate::service::{Service, now_ms};
use crate::sync::git::{self, MergeOutcome, Resolution};

/// What one `tandem sync` did, per peer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncSummary {
    pub peers: Vec<PeerSync>,
    /// Files in conflict, when a merge needs the user.
    pub conflicts: Vec<String>,
    pub message: String,
    /// Large files brought from peers after the merge.
    #[serde(default)]
    pub data: tandem_protocol::api::FetchResult,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerSync {
    pub peer: String,
    pub name: Option<String>,
    pub denied: bool,
    pub merge: Option<MergeOutcome>,
    pub new_entries: usize,
    pub problems: Vec<String>,
}

pub use tandem_protocol::api::PeerOffer;

/// Commits offered as `have` besides the head and the peer's last head:
/// enough to reach back 2^16 commits.
const HAVE_LANDMARKS: usize = 16;

struct View<'a>(&'a Project);

impl LocalView for View<'_> {
    fn access(&self) -> &tandem_protocol::access::Access {
        &self.0.access
    }

    fn now_ms(&self) -> i64 {
        now_ms()
    }

    fn access_heads(&self) -> Vec<tandem_protocol::access::StatementId> {
        self.0.access.heads()
    }

    fn has_commit(&self, oid: &str) -> bool {
        git::has_commit(&self.0.repo, oid)
    }

    fn head(&self) -> Option<String> {
        git::head(&self.0.repo).map(|o| o.to_string())
    }

    fn roles(&self) -> Roles {
        self.0.access.roles(now_ms())
    }

    fn feed_heads(&self) -> Vec<WriterHeads> {
        self.0
            .feed
            .all_heads()
            .unwrap_or_default()
            .into_iter()
            .map(|(writer, heads)| WriterHeads { writer, heads })
            .collect()
    }

    fn haves_for(&self, peer: &PeerKey) -> Vec<String> {
        let peer_id = peer.to_peer_id();
        let mut haves: Vec<String> = git::peer_heads(&self.0.repo)
            .into_iter()
            .filter(|(id, _, _)| *id == peer_id)
            .map(|(_, head, _)| head.to_string())
            .collect();
        if let Some(head) = git::head(&self.0.repo) {
            haves.extend(
                git::landmarks(&self.0.repo, head, HAVE_LANDMARKS)
                    .into_iter()
                    .map(|c| c.to_string()),
            );
        }
        haves
    }
}

impl Service {
    fn open_by_id(&self, id: &ProjectId) -> Option<Arc<std::sync::Mutex<Project>>> {
        let name = self.find_by_id(id).ok().flatten()?;
        self.project(name.as_str()).ok()
    }

    /// Answers a peer's request. Unknown projects and projects the peer may
    /// not read get the same `Denied`.
    pub fn serve(&self, requester: &PeerKey, request: Request) -> Response {
        let project_id = match &request {
            Request::Announce { project } => {
                self.on_announce(requester, project);
                return Response::Ack;
            }
            Request::Projects => {
                return Response::Projects {
                    offers: self.offers_for(requester),
                };
            }
            Request::BlobEndpoint => return self.blob_endpoint_response(),
            Request::Access { project, .. }
            | Request::Refs { project }
            | Request::Pack { project, .. }
            | Request::Feed { project, .. } => *project,
        };
        let Some(handle) = self.open_by_id(&project_id) else {
            return Response::Denied;
        };
        let project = self.lock_project(&handle);
        let roles = project.access.roles(now_ms());
        if !roles.can_read(requester) {
            return Response::Denied;
        }
        let result = match request {
            Request::Projects | Request::Announce { .. } | Request::BlobEndpoint => {
                Ok(Response::Ack)
            }
            Request::Access { have, .. } => Ok(Response::Access {
                statements: project.access.statements_beyond(&have),
            }),
            Request::Refs { .. } => self
                .signed_refs(&project)
                .map(|refs| Response::Refs { refs }),
            Request::Pack { want, have, .. } => timed("build pack", || {
                git::build_pack(&project.repo, &want, &have)
            })
            .map(|pack| Response::Pack { pack })
            .map_err(ServiceError::from),
            Request::Feed { have, .. } => self
                .feed_beyond(&project, &roles, &have)
                .map(|bundles| Response::Feed { bundles }),
        };
        result.unwrap_or_else(|e| Response::Failed {
            message: e.to_string(),
        })
    }

    fn offers_for(&self, requester: &PeerKey) -> Vec<Offer> {
        let mut offers = Vec::new();
        for name in self.project_names().unwrap_or_default() {
            let Ok(handle) = self.project(name.as_str()) else {
                continue;
            };
            let project = self.lock_project(&handle);
            let roles = project.access.roles(now_ms());
            if roles.can_read(requester) {
                offers.push(Offer {
                    project: project.id(),
                    name: project.manifest.name.clone(),
                    owner: project.access.owner(),
                    role: roles.role_of(requester),
                });
            }
        }
        offers
    }

    pub(crate) fn signed_refs(
        &self,
        project: &Project,
    ) -> Result<tandem_protocol::wire::SignedRefs, ServiceError> {
        let heads = git::head(&project.repo)
            .map(|h| vec![(BRANCH.to_owned(), h.to_string())])
            .unwrap_or_default();
        let refs = Refs {
            project: project.id(),
            peer: self.key().public(),
            heads,
            time_ms: now_ms(),
        };
        Signed::sign(refs, self.key()).map_err(|e| ServiceError::BadRequest(e.to_string()))
    }

    /// Bundles of writers' documents the requester lacks; documents of keys
    /// that may not write are never served.
    fn feed_beyond(
        &self,
        project: &Project,
        roles: &Roles,
        have: &[WriterHeads],
    ) -> Result<Vec<FeedBundle>, ServiceError> {
        let mut bundles = Vec::new();
        let writers: Vec<PeerKey> = project.feed.writers().copied().collect();
        for writer in writers {
            if !roles.can_write(&writer) {
                continue;
            }
            let theirs: &[String] = have
                .iter()
                .find(|h| h.writer == writer)
                .map(|h| h.heads.as_slice())
                .unwrap_or(&[]);
            let Some(bundle) = project.feed.bundle_beyond(&writer, theirs)? else {
                continue;
            };
            let Some(heads) = project.feed.signed_heads(&writer, self.key()) else {
                continue;
            };
            bundles.push(FeedBundle { heads, bundle });
        }
        Ok(bundles)
    }

    /// Carries out one effect of a session (everything but `Send` and
    /// `Finished`), returning what a merge did and how many entries came.
    fn apply(
        &self,
        project: &mut Project,
        peer: &PeerKey,
        peer_label: &str,
        effect: Effect,
    ) -> Result<(Option<MergeOutcome>, usize), ServiceError> {
        match effect {
            Effect::ApplyAccess(statements) => {
                // The session kept only statements that count or that
                // counting ones need (see `Access::admit`).
                for verified in statements {
                    if !project.access.contains(&verified.id) {
                        project
                            .access_store
                            .save_to_store(&verified)
                            .map_err(ProjectOpenError::from)?;
                        project.access.insert(verified);
                    }
                }
                Ok((None, 0))
            }
            Effect::ApplyPack(pack) => {
                git::ingest_pack(&project.repo, &pack)?;
                Ok((None, 0))
            }
            Effect::Merge { head, .. } => {
                git::store_peer_head(&project.repo, &peer.to_peer_id(), &head)?;
                let outcome = git::merge(
                    &project.repo,
                    &self.signature()?,
                    &head,
                    &peer.to_peer_id(),
                    peer_label,
                    &project.manifest,
                )?;
                // Access statements that arrived with the history.
                project.access = project
                    .access_store
                    .load(project.id(), project.access.owner())
                    .map_err(ProjectOpenError::from)?;
                Ok((Some(outcome), 0))
            }
            Effect::ApplyFeed(bundles) => {
                let mut count = 0;
                for bundle in bundles {
                    match project.feed.apply_bundle(&bundle.bundle, &bundle.heads) {
                        Ok(n) => count += n,
                        Err(e) => tracing::warn!(error = %e, "feed bundle refused"),
                    }
                }
                Ok((None, count))
            }
            Effect::Send(_) | Effect::Finished(_) => Ok((None, 0)),
        }
    }

    /// Runs one session with one peer to the end.
    async fn sync_with(
        self: &Arc<Self>,
        name: &str,
        id: ProjectId,
        peer: PeerKey,
        peer_name: Option<String>,
    ) -> PeerSync {
        let label = peer_name.clone().unwrap_or_else(|| peer.short());
        let mut result = PeerSync {
            peer: peer.to_did(),
            name: peer_name,
            denied: false,
            merge: None,
            new_entries: 0,
            problems: vec![],
        };
        let net = match self.net() {
            Ok(net) => net.clone(),
            Err(e) => {
                result.problems.push(e.to_string());
                return result;
            }
        };
        let started = {
            let (service, name) = (self.clone(), name.to_owned());
            tokio::task::spawn_blocking(move || -> Result<(Session, Vec<Effect>), ServiceError> {
                let handle = service.project(&name)?;
                let project = service.lock_project(&handle);
                Ok(Session::start(id, peer, &View(&project)))
            })
            .await
        };
        let (mut session, mut effects) = match started {
            Ok(Ok(started)) => started,
            Ok(Err(e)) => {
                result.problems.push(e.to_string());
                return result;
            }
            Err(e) => {
                result.problems.push(e.to_string());
                return result;
            }
        };
        loop {
            let mut request = None;
            let mut to_apply = Vec::new();
            let mut report: Option<Report> = None;
            for effect in effects {
                match effect {
                    Effect::Send(r) => request = Some(r),
                    Effect::Finished(r) => report = Some(r),
                    other => to_apply.push(other),
                }
            }
            if !to_apply.is_empty() {
                let service = self.clone();
                let (name, label) = (name.to_owned(), label.clone());
                let applied = tokio::task::spawn_blocking(
                    move || -> Result<(Option<MergeOutcome>, usize), ServiceError> {
                        let handle = service.project(&name)?;
                        let mut project = service.lock_project(&handle);
                        let mut merge = None;
                        let mut entries = 0;
                        for effect in to_apply {
                            let (m, n) = service.apply(&mut project, &peer, &label, effect)?;
                            merge = m.or(merge);
                            entries += n;
                        }
                        Ok((merge, entries))
                    },
                )
                .await;
                match applied {
                    Ok(Ok((merge, entries))) => {
                        result.merge = merge.or(result.merge.take());
                        result.new_entries += entries;
                    }
                    Ok(Err(e)) => {
                        result.problems.push(e.to_string());
                        return result;
                    }
                    Err(e) => {
                        result.problems.push(e.to_string());
                        return result;
                    }
                }
            }
            if let Some(report) = report {
                result.denied = report.denied;
                if report.git == GitOutcome::NotAWriter {
                    result
                        .problems
                        .push("this peer may not write: its commits were not taken".into());
                }
                result.problems.extend(report.problems);
                return result;
            }
            let Some(request) = request else {
                return result;
            };
            let response = net.request(&peer, request).await;
            let service = self.clone();
            let name = name.to_owned();
            let stepped = tokio::task::spawn_blocking(
                move || -> Result<(Session, Vec<Effect>), ServiceError> {
                    let handle = service.project(&name)?;
                    let project = service.lock_project(&handle);
                    let effects = match response {
                        Ok(response) => session.on_response(response, &View(&project)),
                        Err(e) => session.on_failure(e.to_string()),
                    };
                    Ok((session, effects))
                },
            )
            .await;
            match stepped {
                Ok(Ok((s, e))) => {
                    session = s;
                    effects = e;
                }
                Ok(Err(e)) => {
                    result.problems.push(e.to_string());
                    return result;
                }
                Err(e) => {
                    result.problems.push(e.to_string());
                    return result;
                }
            }
        }
    }

    /// Sweep, then fetch from every connected peer that holds a role in the
    /// project (in this node's view: anyone else is sent nothing that
    /// names it), merge, and record what happened.
    pub async fn sync_project(self: &Arc<Self>, name: &str) -> Result<SyncSummary, ServiceError> {
        let net = self.net()?.clone();
        let service = self.clone();
        let owned = name.to_owned();
        let (id, roles) =
            tokio::task::spawn_blocking(move || -> Result<(ProjectId, Roles), ServiceError> {
                service.sweep(&owned)?;
                let handle = service.project(&owned)?;
                let project = service.lock_project(&handle);
                if let Some(peer) = git::pending_conflict(&project.repo) {
                    return Err(git::GitSyncError::Pending { peer }.into());
                }
                Ok((project.id(), project.access.roles(now_ms())))
            })
            .await
            .map_err(|e| ServiceError::BadRequest(e.to_string()))??;
        let mut summary = SyncSummary::default();
        let members = net
            .connected_peers()
            .await?
            .into_iter()
            .filter(|(peer, _)| roles.role_of(peer).is_some());
        for (peer, info) in members {
            let result = self.sync_with(name, id, peer, info.name.clone()).await;
            if let Some(MergeOutcome::Conflicts { files }) = &result.merge {
                summary.conflicts = files.clone();
            }
            summary.peers.push(result);
            if !summary.conflicts.is_empty() {
                break;
            }
        }
        if summary.conflicts.is_empty() {
            if let Err(e) = self.fetch_figures(name).await {
                tracing::warn!(project = %name, error = %e, "figures not fetched");
            }
            match self
                .fetch_data(name, vec![], crate::data::files::FetchScope::Automatic)
                .await
            {
                Ok(data) => summary.data = data,
                Err(e) => summary
                    .data
                    .failed
                    .push(tandem_protocol::api::FetchFailure {
                        path: String::new(),
                        reason: e.to_string(),
                    }),
            }
        }
        summary.message = describe(&summary);
        // Only new history is worth an entry: recording feed-only syncs would
        // make two peers answer each other's sync entries forever.
        let changed = summary.peers.iter().any(|p| {
            matches!(
                p.merge,
                Some(MergeOutcome::FastForward { .. } | MergeOutcome::Merged { .. })
            )
        });
        if changed || !summary.conflicts.is_empty() {
            let service = self.clone();
            let (name, message) = (name.to_owned(), summary.message.clone());
            tokio::task::spawn_blocking(move || -> Result<(), ServiceError> {
                let handle = service.project(&name)?;
                let mut project = service.lock_project(&handle);
                service.record_sync(&mut project, message)?;
                Ok(())
            })
            .await
            .map_err(|e| ServiceError::BadRequest(e.to_string()))??;
        }
        Ok(summary)
    }

    /// A sync entry linked to the branch head.
    fn record_sync(&self, project: &mut Project, message: String) -> Result<(), ServiceError> {
        let commit = git::head(&project.repo).map(|h| h.to_string());
        self.append(
            project,
            Kind::Sync,
            message,
            commit,
            Details::default(),
            vec![],
        )?;
        Ok(())
    }

    /// Settles a pending sync conflict.
    pub fn resolve_sync(&self, name: &str, how: Resolution) -> Result<String, ServiceError> {
        let handle = self.project(name)?;
        let mut project = self.lock_project(&handle);
        let (message, commit) =
            git::resolve(&project.repo, &self.signature()?, how, &project.manifest)?;
        self.append(
            &mut project,
            Kind::Sync,
            message.clone(),
            commit.map(|c| c.to_string()),
            Details::default(),
            vec![],
        )?;
        Ok(message)
    }

    /// Projects that connected peers offer to this node. Peers are asked
    /// at once, and one that does not answer within a few seconds is
    /// skipped, so a stuck peer cannot hold up the list.
    pub async fn offers(self: &Arc<Self>) -> Result<Vec<PeerOffer>, ServiceError> {
        const ASK_FOR: std::time::Duration = std::time::Duration::from_secs(5);
        let net = self.net()?.clone();
        let asks = net
            .connected_peers()
            .await?
            .into_iter()
            .map(|(peer, info)| {
                let net = net.clone();
                async move {
                    let answer =
                        tokio::time::timeout(ASK_FOR, net.request(&peer, Request::Projects)).await;
                    match answer {
                        Ok(Ok(Response::Projects { offers })) => Some((info, offers)),
                        _ => None,
                    }
                }
            });
        let answers = futures::future::join_all(asks).await;
        let mut offers = Vec::new();
        for (info, list) in answers.into_iter().flatten() {
            for offer in list {
                let service = self.clone();
                let id = offer.project;
                let have_locally = tokio::task::spawn_blocking(move || {
                    service.find_by_id(&id).ok().flatten().is_some()
                })
                .await
                .unwrap_or(false);
                offers.push(PeerOffer {
                    peer: info.did.clone(),
                    peer_name: info.name.clone(),
                    offer,
                    have_locally,
                });
            }
        }
        Ok(offers)
    }

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
        // Prefer the owner: a reader also offers the project, but only a
        // writer's history can be trusted for a first clone.
        let mut offered: Vec<&PeerOffer> =
            offers.iter().filter(|o| o.offer.project == id).collect();
        offered.sort_by_key(|o| o.peer != o.offer.owner.to_did());
        let Some(found) = offered.first().copied() else {
            return Err(ServiceError::NoSuchProject(format!(
                "{id}: no connected peer offers it to you (is it shared with you, and is the peer online? see `tandem peers`)"
            )));
        };
        if found.have_locally {
            return Err(ServiceError::Conflict(
                "this project is already here".into(),
            ));
        }
        let peer: PeerKey = found
            .peer
            .parse()
            .map_err(|_| ServiceError::BadRequest("bad peer key".into()))?;
        let refs = match net.request(&peer, Request::Refs { project: id }).await {
            Ok(Response::Refs { refs }) => refs,
            Ok(_) => {
                return Err(ServiceError::BadRequest(
                    "the peer refused to send the project's history".into(),
                ));
            }
            Err(e) => return Err(ServiceError::BadRequest(e.to_string())),
        };
        refs.check(&id, &peer)
            .map_err(|e| ServiceError::BadRequest(format!("the peer's refs are invalid: {e}")))?;
        let head = refs
            .head(BRANCH)
            .ok_or_else(|| {
                ServiceError::BadRequest("the peer has no history for this project".into())
            })?
            .to_owned();
        let pack = match net
            .request(
                &peer,
                Request::Pack {
                    project: id,
                    want: vec![head.clone()],
                    have: vec![],
                },
            )
            .await
        {
            Ok(Response::Pack { pack }) => pack,
            Ok(_) => {
                return Err(ServiceError::BadRequest(
                    "the peer refused to send the project's history".into(),
                ));
            }
            Err(e) => return Err(ServiceError::BadRequest(e.to_string())),
        };
        let service = self.clone();
        tracing::debug!(elapsed = ?started.elapsed(), bytes = pack.len(), "clone: pack received");
        let peer_label = found.peer_name.clone().unwrap_or_else(|| peer.short());
        let name = tokio::task::spawn_blocking(move || {
            service.materialise_clone(id, &head, &pack, &peer, local_name)
        })
        .await
        .map_err(|e| ServiceError::BadRequest(e.to_string()))??;
        tracing::debug!(elapsed = ?started.elapsed(), "clone: materialised");
        let result = self
            .sync_with(&name, id, peer, found.peer_name.clone())
            .await;
        tracing::debug!(elapsed = ?started.elapsed(), "clone: synced");
        if no_data {
            let service = self.clone();
            let name = name.clone();
            tokio::task::spawn_blocking(move || -> Result<(), ServiceError> {
                let handle = service.project(&name)?;
                let project = service.lock_project(&handle);
                service.set_on_demand(&project, true)
            })
            .await
            .map_err(|e| ServiceError::BadRequest(e.to_string()))??;
        }
        if let Err(e) = self.fetch_figures(&name).await {
            tracing::warn!(project = %name, error = %e, "figures not fetched");
        }
        let data = self
            .fetch_data(&name, vec![], crate::data::files::FetchScope::Automatic)
            .await;
        let service = self.clone();
        tokio::task::spawn_blocking(
            move || -> Result<tandem_protocol::api::ProjectSummary, ServiceError> {
                let handle = service.project(&name)?;
                let mut project = service.lock_project(&handle);
                let mut message =
                    format!("Cloned project {} from {peer_label}", project.manifest.name);
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
                service.record_sync(&mut project, message)?;
                service.summary(&project)
            },
        )
        .await
        .map_err(|e| ServiceError::BadRequest(e.to_string()))?
    }

    /// Builds the clone in staging and moves it into place once its genesis
    /// checks out and the serving peer may write.
    fn materialise_clone(
        &self,
        id: ProjectId,
        head: &str,
        pack: &[u8],
        peer: &PeerKey,
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
        if manifest.id != id {
            return Err(ServiceError::BadRequest(
                "the peer sent another project's history".into(),
            ));
        }
        let name: tandem_protocol::ProjectName =
            local_name.as_deref().unwrap_or(&manifest.name).parse()?;
        let dest = self.project_dir(&name);
        if dest.exists() {
            return Err(ServiceError::Conflict(format!(
                "a project named {name:?} already exists; clone with --as NEW_NAME"
            )));
        }
        for section in ["code", "input", "output"] {
            let _ = std::fs::create_dir_all(work.join(section).join("untracked"));
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
        if !project.access.roles(now_ms()).can_write(peer) {
            drop(project);
            let _ = std::fs::remove_dir_all(&dest);
            crate::projects::project::unpin(self.home(), &name);
            return Err(ServiceError::BadRequest(
                "the only peer offering this project may not write to it, so its history cannot be trusted; try again when a writer is online".into(),
            ));
        }
        self.register(project);
        Ok(name.to_string())
    }
}

fn describe(summary: &SyncSummary) -> String {
    if summary.peers.is_empty() {
        return "No peer with this project is connected; nothing to sync".into();
    }
    let mut parts = Vec::new();
    for p in &summary.peers {
        if p.denied {
            continue;
        }
        let who = p
            .name
            .clone()
            .unwrap_or_else(|| p.peer.chars().take(20).collect());
        let git = match &p.merge {
            Some(MergeOutcome::FastForward { commits, .. })
            | Some(MergeOutcome::Merged { commits, .. }) => format!("{commits} new commit(s)"),
            Some(MergeOutcome::Conflicts { files }) => {
                format!("{} conflicted file(s)", files.len())
            }
            _ => "history up to date".into(),
        };
        parts.push(format!(
            "{who}: {git}, {} new activity entries",
            p.new_entries
        ));
    }
    if parts.is_empty() {
        return "No connected peer shares this project with you".into();
    }
    let mut message = format!("Synced with {}", parts.join("; "));
    let data = &summary.data;
    if !data.fetched.is_empty() {
        message.push_str(&format!(
            "; fetched {} large file(s), {:.1} MB",
            data.fetched.len(),
            data.bytes_received as f64 / 1e6
        ));
    }
    // Files refused for where they would go (a link on the way) are named:
    // the user must see what was not written, and why.
    let (refused, failed): (Vec<_>, Vec<_>) = data
        .failed
        .iter()
        .partition(|f| f.reason.starts_with("refused: "));
    if !failed.is_empty() {
        message.push_str(&format!("; {} large file(s) not fetched yet", failed.len()));
    }
    if !refused.is_empty() {
        let named: Vec<&str> = refused
            .iter()
            .take(5)
            .map(|f| f.reason.trim_start_matches("refused: "))
            .collect();
        message.push_str(&format!(
            "; {} large file(s) refused: {}",
            refused.len(),
            named.join("; ")
        ));
    }
    message
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let out = f();
    tracing::debug!(elapsed = ?started.elapsed(), "{what}");
    out
}
