//! Figures recorded from notebooks travel with the feed: a member may fetch
//! any figure an entry of a project they can read shows, and a sync brings
//! the figures of entries it delivered.

use std::sync::Arc;

use crate::blobs::fetch::Fetcher;
use crate::error::ServiceError;
use crate::service::Service;

impl Service {
    /// Fetches the feed's figures that are not here from the project's
    /// members; returns how many arrived. Figures are small: one batched
    /// request per peer.
    pub(crate) async fn fetch_figures(self: &Arc<Self>, name: &str) -> Result<usize, ServiceError> {
        let (id, members, figures) = self
            .with_project(name, |_, project| {
                Ok((
                    project.id(),
                    crate::data::disk::readers(project),
                    project.feed.figures(),
                ))
            })
            .await?;
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
        let Some(endpoint) = self.data().endpoint() else {
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
        outcome.map_err(|source| ServiceError::Fetch {
            what: "fetching figures",
            source,
        })?;
        // Fetched for this project from its members: servable to its readers.
        let arrived = missing.clone();
        self.with_project(name, move |service, project| {
            service.note_fetched(project, &served, arrived);
            Ok(())
        })
        .await?;
        Ok(missing.len())
    }

    /// A figure's bytes and its media type, for the UI.
    pub async fn figure(
        self: &Arc<Self>,
        hash: &str,
    ) -> Result<(Vec<u8>, &'static str), ServiceError> {
        let hash: tandem_protocol::blob::BlobHash = hash
            .parse()
            .map_err(|_| ServiceError::BadRequest(format!("{hash:?} is not a blob hash")))?;
        let bytes = self
            .blob_store_async()
            .await?
            .read_bytes(&hash)
            .await
            .map_err(|_| ServiceError::NoSuchFile(format!("no figure {hash} here")))?;
        let mime = if bytes.starts_with(b"\x89PNG") {
            "image/png"
        } else if bytes.starts_with(b"\xff\xd8") {
            "image/jpeg"
        } else {
            "image/svg+xml"
        };
        Ok((bytes, mime))
    }
}
