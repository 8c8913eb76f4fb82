//! Syncing a project with peers: one session per peer, driven by the
//! protocol's [`Session`] (the decisions are there; this module does the
//! I/O it asks for: network requests, packs, merges, feed bundles), and
//! what the user sees of it (a summary, an activity entry, settling a
//! conflict, the offers of connected peers).

use std::sync::Arc;

use tandem_protocol::access::Roles;
use tandem_protocol::activity::{Details, Kind};
use tandem_protocol::sync::{Effect, GitOutcome, LocalView, Report, Session};
use tandem_protocol::wire::{Request, Response, WriterHeads};
use tandem_protocol::{PeerKey, ProjectId};

use crate::error::ServiceError;
use crate::projects::project::{Project, ProjectOpenError};
use crate::service::{Service, now_ms};
use crate::sync::git::{self, MergeOutcome, Resolution};

/// What one `tandem sync` did, per peer: the API's answer, which the CLI
/// reads with the same type.
pub use tandem_protocol::api::{PeerOffer, PeerSync, SyncSummary};

/// Commits offered as `have` besides the head and the peer's last head:
/// enough to reach back 2^16 commits.
const HAVE_LANDMARKS: usize = 16;

/// A project held here, as the asking side of a session sees it (the
/// clone's check of its source, too).
pub(crate) struct LocalProject<'a>(pub(crate) &'a Project);

impl LocalView for LocalProject<'_> {
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

    fn taken_time(&self, writer: &PeerKey) -> Option<i64> {
        crate::sync::writer_refs::taken_time(self.0.repo.path(), writer)
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
            Effect::Merge { head, refs } => {
                git::store_peer_head(&project.repo, &peer.to_peer_id(), &head)?;
                // Kept to relay on, and as the floor for relayed refs.
                if let Err(e) = crate::sync::writer_refs::keep(project.repo.path(), &refs) {
                    tracing::warn!(error = %e, "a writer's refs were not kept: they are not relayed from here");
                }
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
    pub(crate) async fn sync_with(
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
        let started = self
            .with_project(name, move |_, project| {
                Ok(Session::start(id, peer, &LocalProject(project)))
            })
            .await;
        let (mut session, mut effects) = match started {
            Ok(started) => started,
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
                let label = label.clone();
                let applied = self
                    .with_project(name, move |service, project| {
                        let mut merge = None;
                        let mut entries = 0;
                        for effect in to_apply {
                            let (m, n) = service.apply(project, &peer, &label, effect)?;
                            merge = m.or(merge);
                            entries += n;
                        }
                        Ok((merge, entries))
                    })
                    .await;
                match applied {
                    Ok((merge, entries)) => {
                        result.merge = merge.or(result.merge.take());
                        result.new_entries += entries;
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
            let stepped = self
                .with_project(name, move |_, project| {
                    let effects = match response {
                        Ok(response) => session.on_response(response, &LocalProject(project)),
                        Err(e) => session.on_failure(e.to_string()),
                    };
                    Ok((session, effects))
                })
                .await;
            match stepped {
                Ok((s, e)) => {
                    session = s;
                    effects = e;
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
        let owned = name.to_owned();
        let (id, roles) = self
            .blocking(move |service| -> Result<(ProjectId, Roles), ServiceError> {
                service.sweep(&owned)?;
                let handle = service.project(&owned)?;
                let project = service.lock_project(&handle);
                if let Some(peer) = git::pending_conflict(&project.repo) {
                    return Err(git::GitSyncError::Pending { peer }.into());
                }
                Ok((project.id(), project.access.roles(now_ms())))
            })
            .await?;
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
                .fetch_data(name, vec![], crate::data::fetch::FetchScope::Automatic)
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
            let message = summary.message.clone();
            self.with_project(name, move |service, project| {
                service.record_sync(project, message)
            })
            .await?;
        }
        Ok(summary)
    }

    /// A sync entry linked to the branch head.
    pub(crate) fn record_sync(
        &self,
        project: &mut Project,
        message: String,
    ) -> Result<(), ServiceError> {
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
    /// `cells` settles a notebook's cell conflicts one by one (with
    /// `ours` or `theirs` for the rest).
    pub fn resolve_sync(
        &self,
        name: &str,
        how: Resolution,
        cells: &git::CellChoices,
    ) -> Result<String, ServiceError> {
        let handle = self.project(name)?;
        let mut project = self.lock_project(&handle);
        let (message, commit) = git::resolve(
            &project.repo,
            &self.signature()?,
            how,
            cells,
            &project.manifest,
        )?;
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
                let id = offer.project;
                let have_locally = self
                    .blocking(move |service| Ok(service.find_by_id(&id).ok().flatten().is_some()))
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
