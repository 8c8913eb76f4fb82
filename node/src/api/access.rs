//! Who may read and write a project: members, sharing, revoking, and
//! making it public.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use tandem_protocol::api::{EntryView, MembersView, ShareRequest, VisibilityRequest};

use super::status::ApiResult;
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/projects/{name}/members", get(members).post(share))
        .route("/projects/{name}/members/{peer}", delete(revoke))
        .route("/projects/{name}/visibility", put(visibility))
}

async fn members(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<MembersView> {
    s.blocking(move |s| s.members(&name)).await.map(Json)
}

async fn share(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<ShareRequest>,
) -> ApiResult<EntryView> {
    s.blocking(move |s| s.share(&name, &body.peer, &body.role, body.expires.as_deref()))
        .await
        .map(Json)
}

async fn revoke(
    State(s): State<Arc<Service>>,
    Path((name, peer)): Path<(String, String)>,
) -> ApiResult<EntryView> {
    s.blocking(move |s| s.revoke(&name, &peer)).await.map(Json)
}

async fn visibility(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<VisibilityRequest>,
) -> ApiResult<EntryView> {
    s.blocking(move |s| s.set_visibility(&name, body.public))
        .await
        .map(Json)
}
