//! Figures recorded from notebooks travel with the feed: a member may fetch
//! any figure an entry of a project they can read shows, and a sync brings
//! the figures of entries it delivered.

use std::collections::HashSet;
use std::sync::Arc;

use tandem_protocol::activity::Filter;
use tandem_protocol::blob::BlobHash;

use crate::blobs::fetch::Fetcher;
use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::service::Service;

/// The figures a project's feed shows.
pub(crate) fn feed_figures(project: &Project) -> HashSet<BlobHash> {
    project
        .feed
        .query(&Filter::default(), usize::MAX)
        .into_iter()
        .flat_map(|entry| entry.payload.details.figures.iter())
        .filter_map(|hash| hash.parse().ok())
        .collect()
}

impl Service {
    /// Fetches the feed's figures that are not here from the project's
    /// members; returns how many arrived. Figures are small: one batched
    /// request per peer.
    pub(crate) async fn fetch_figures(self: &Arc<Self>, name: &str) -> Result<usize, ServiceError> {
        let service = self.clone();
        let owned = name.to_owned();
        let (id, members, figures) = tokio::task::spawn_blocking(move || {
            let handle = service.project(&owned)?;
            let project = service.lock_project(&handle);
            Ok::<_, ServiceError>((
                project.id(),
                crate::data::disk::readers(&project),
                feed_figures(&project),
            ))
        })
        .await
        .map_err(|e| ServiceError::BadRequest(e.to_string()))??;
        if figures.is_empty() {
            return Ok(0);
        }
        let store = self.blob_store_async().await?;
        let mut missing = Vec::new();
        for hash in figures {
            let complete = store.presence_async(&hash).await.is_ok_and(|p| p.complete);
            if !complete {
                missing.push(hash);
            }
        }
        let Some(endpoint) = self.blob_endpoint.get().cloned() else {
            return Ok(0);
        };
        if missing.is_empty() {
            return Ok(0);
        }
        for hash in &missing {
            store.keep_async(hash).await?;
        }
        let providers = self.providers(id, members.as_ref()).await;
        let fetcher = Fetcher::new(&endpoint, &store);
        let outcome = fetcher.fetch_many(&missing, &providers, |_| {}).await;
        let served = fetcher.served();
        fetcher.close().await;
        outcome.map_err(|e| ServiceError::BadRequest(format!("fetching figures: {e}")))?;
        // Fetched for this project from its members: servable to its readers.
        let service = self.clone();
        let owned = name.to_owned();
        let arrived = missing.clone();
        tokio::task::spawn_blocking(move || {
            let handle = service.project(&owned)?;
            let project = service.lock_project(&handle);
            service.note_fetched(&project, &served, arrived);
            Ok::<_, ServiceError>(())
        })
        .await
        .map_err(|e| ServiceError::BadRequest(e.to_string()))??;
        Ok(missing.len())
    }
}
