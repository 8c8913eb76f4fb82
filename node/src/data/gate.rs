//! Who may fetch what from this node: only blobs obtained for a project
//! (hashed here for it, or fetched for it from its members), and only by
//! peers who may read that project now. Also the blob endpoint's start and
//! what this node tells peers about it.

use std::net::SocketAddr;
use std::sync::Arc;

use tandem_protocol::blob::BlobHash;
use tandem_protocol::identity::PeerKey;
use tandem_protocol::wire::Response;

use crate::blobs::{BlobEndpoint, Gate};
use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::service::{Service, now_ms};

impl Service {
    /// What this node tells peers about its blob endpoint.
    pub(crate) fn blob_endpoint_response(&self) -> Response {
        match self.data().endpoint() {
            Some(endpoint) => Response::BlobEndpoint {
                port: endpoint.port(),
                addresses: endpoint.bound().iter().map(|a| a.to_string()).collect(),
                relay: endpoint.relay().map(|url| url.to_string()),
            },
            None => Response::Denied,
        }
    }

    /// Starts serving and fetching blobs (only `tandem up` does).
    pub async fn start_blob_endpoint(
        self: &Arc<Self>,
        bind: SocketAddr,
    ) -> Result<(), ServiceError> {
        let store = self.blob_store_async().await?;
        let gate: Arc<dyn Gate> = Arc::new(ServiceGate(Arc::downgrade(self)));
        let endpoint = BlobEndpoint::start(self.key(), bind, &store, gate).await?;
        self.data().set_endpoint(endpoint);
        Ok(())
    }

    /// Whether `peer` may fetch every one of `hashes`: each must be in the
    /// record of obtained blobs of some project the peer may read now. What
    /// a project's pointers, links or figures name does not count (any
    /// writer can name any hash); only what this node got for the project
    /// does (see `blobs::obtained`). Judged from memory: the records are
    /// read once, and only projects that hold a hash asked for are looked
    /// at. A hash this node lacks and one the peer may not have get the
    /// same answer.
    fn may_fetch(&self, peer: &PeerKey, hashes: &[BlobHash]) -> bool {
        if hashes.is_empty() {
            return false;
        }
        self.load_obtained();
        let holders = self.data().obtained().holders(hashes);
        let mut answered = vec![false; hashes.len()];
        let mut left = hashes.len();
        for holder in holders {
            if holder.positions.iter().all(|&i| answered[i]) {
                continue;
            }
            let Ok(handle) = self.project(holder.name.as_str()) else {
                continue;
            };
            let project = self.lock_project(&handle);
            // The folder may have been replaced by another project since.
            if project.id() != holder.id
                || !tandem_protocol::sync::may_read(&project.access.roles(now_ms()), peer)
            {
                continue;
            }
            drop(project);
            for i in holder.positions {
                if !answered[i] {
                    answered[i] = true;
                    left -= 1;
                }
            }
            if left == 0 {
                return true;
            }
        }
        false
    }

    /// Reads every project's record of obtained blobs, once per process.
    fn load_obtained(&self) {
        self.data().obtained().load_all_once(|| {
            for name in self.project_names().unwrap_or_default() {
                let Ok(handle) = self.project(name.as_str()) else {
                    continue;
                };
                let project = self.lock_project(&handle);
                if let Err(e) = self.data().obtained().load(&project.id(), &project.name) {
                    tracing::warn!(project = %name, error = %e, "its blobs are not served");
                }
            }
        });
    }

    /// Records blobs this node obtained for the project (hashed here for
    /// it, or fetched for it from its members), so the gate serves them to
    /// its readers. A failure to record only means they are not served
    /// from here.
    pub(crate) fn note_obtained(
        &self,
        project: &Project,
        hashes: impl IntoIterator<Item = BlobHash>,
    ) {
        if let Err(e) = self
            .data()
            .obtained()
            .record(&project.id(), &project.name, hashes)
        {
            tracing::warn!(project = %project.name, error = %e, "blobs not recorded as obtained; they are not served from here");
        }
    }

    /// Records blobs fetched for the project, if every peer that sent
    /// bytes holds a role in it: a public project can be fetched from any
    /// reader, but only what its members sent counts as obtained for it.
    pub(crate) fn note_fetched(
        &self,
        project: &Project,
        served: &[PeerKey],
        hashes: impl IntoIterator<Item = BlobHash>,
    ) {
        let roles = project.access.roles(now_ms());
        if served.is_empty() {
            return;
        }
        if let Some(stranger) = served.iter().find(|p| roles.role_of(p).is_none()) {
            tracing::info!(
                project = %project.name,
                peer = %stranger.short(),
                "fetched from a peer with no role: not served on from here"
            );
            return;
        }
        self.note_obtained(project, hashes);
    }

    /// Records the blobs a fetch for the project brought, those complete in
    /// the store now (see [`Service::note_fetched`]).
    pub(crate) fn note_arrived(
        &self,
        project: &Project,
        served: &[PeerKey],
        arrived: Vec<BlobHash>,
    ) -> Result<(), ServiceError> {
        if arrived.is_empty() || served.is_empty() {
            return Ok(());
        }
        let presences = self.blob_store()?.presence_many(arrived.clone());
        let complete: Vec<BlobHash> = arrived
            .into_iter()
            .zip(presences)
            .filter(|(_, p)| p.as_ref().is_ok_and(|p| p.complete))
            .map(|(hash, _)| hash)
            .collect();
        self.note_fetched(project, served, complete);
        Ok(())
    }
}

/// The gate holds the service weakly: the endpoint must not keep it alive.
struct ServiceGate(std::sync::Weak<Service>);

impl Gate for ServiceGate {
    fn may_fetch(&self, peer: &PeerKey, hashes: &[BlobHash]) -> bool {
        self.0
            .upgrade()
            .is_some_and(|service| service.may_fetch(peer, hashes))
    }
}
