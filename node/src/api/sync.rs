//! Syncing with peers: sync now, settle a conflict, automatic sync on or
//! off, clone what a peer offers, and a project's sync state.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tandem_protocol::api::{
    CloneRequest, PeerOffer, ProjectSummary, SyncMessage, SyncRequest, SyncStateView,
};

use super::status::ApiResult;
use crate::error::ServiceError;
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/projects/{name}/sync", post(sync))
        .route("/projects/{name}/sync-state", get(sync_state))
        .route("/clone", post(clone))
        .route("/offers", get(offers))
}

/// One route, three answers (see [`SyncRequest`]): a [`SyncMessage`] for
/// `auto` and `resolve`, a sync summary otherwise.
async fn sync(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<SyncRequest>,
) -> Result<Response, ServiceError> {
    if let Some(enabled) = body.auto {
        let message = s
            .blocking(move |s| {
                s.set_autosync_enabled(&name, enabled)
                    .map(|on| SyncMessage {
                        message: format!(
                            "Automatic sync is {} for {name}",
                            if on { "on" } else { "off" }
                        ),
                    })
            })
            .await?;
        return Ok(Json(message).into_response());
    }
    match body.resolve {
        Some(how) => {
            let how: crate::sync::git::Resolution =
                how.parse().map_err(ServiceError::BadRequest)?;
            let cells = body.cells;
            let message = s
                .blocking(move |s| {
                    s.resolve_sync(&name, how, &cells)
                        .map(|message| SyncMessage { message })
                })
                .await?;
            Ok(Json(message).into_response())
        }
        None => Ok(Json(s.sync_project(&name).await?).into_response()),
    }
}

async fn clone(
    State(s): State<Arc<Service>>,
    Json(body): Json<CloneRequest>,
) -> ApiResult<ProjectSummary> {
    let id: tandem_protocol::ProjectId = body.project.parse()?;
    Ok(Json(s.clone_project(id, body.name, body.no_data).await?))
}

async fn sync_state(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<SyncStateView> {
    s.blocking(move |s| s.sync_state(&name)).await.map(Json)
}

async fn offers(State(s): State<Arc<Service>>) -> ApiResult<Vec<PeerOffer>> {
    Ok(Json(s.offers().await?))
}
