//! Where a project stands against each peer it synced with (ahead and
//! behind, from the heads recorded under `refs/tandem/peers/`), and any
//! conflict waiting for the user: what the Sync page shows.

use tandem_protocol::api::{ConflictView, PeerHeadView, SyncStateView};

use crate::error::ServiceError;
use crate::service::{Service, lock};
use crate::sync::git;

impl Service {
    pub fn sync_state(&self, name: &str) -> Result<SyncStateView, ServiceError> {
        let autosync = self.autosync_enabled(name)?;
        let names = self.peer_names();
        let handle = self.project(name)?;
        let project = lock(&handle);
        let repo = &project.repo;
        let head = git::head(repo);
        let mut peers: Vec<PeerHeadView> = git::peer_heads(repo)
            .into_iter()
            .map(|(peer_id, theirs, when)| {
                let (ahead, behind) = head
                    .and_then(|ours| repo.graph_ahead_behind(ours, theirs).ok())
                    .unwrap_or((0, 0));
                PeerHeadView {
                    name: names
                        .iter()
                        .find(|(id, _)| *id == peer_id)
                        .and_then(|(_, n)| n.clone()),
                    peer_id,
                    head: theirs.to_string(),
                    ahead,
                    behind,
                    last_sync_ms: when,
                }
            })
            .collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name).then(a.peer_id.cmp(&b.peer_id)));
        let conflict =
            git::pending_conflict_files(repo).map(|(peer, files)| ConflictView { peer, files });
        Ok(SyncStateView {
            autosync,
            head: head.map(|h| h.to_string()),
            peers,
            conflict,
        })
    }

    /// Peer ids and names from the peer book (`peers.json`), read from
    /// disk so this works without the network task.
    fn peer_names(&self) -> Vec<(String, Option<String>)> {
        let path = self.home().root().join("peers.json");
        let Ok(bytes) = std::fs::read(path) else {
            return Vec::new();
        };
        let Ok(book) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return Vec::new();
        };
        book["peers"]
            .as_object()
            .map(|peers| {
                peers
                    .values()
                    .map(|p| {
                        (
                            p["peer_id"].as_str().unwrap_or_default().to_owned(),
                            p["name"].as_str().map(str::to_owned),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}
