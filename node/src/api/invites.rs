//! Invite links: make, list and revoke a project's invites, and join a
//! project with someone's ticket.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{delete, post};
use axum::{Json, Router};
use tandem_protocol::api::{
    CreateInvite, Deleted, InviteCreated, InviteView, JoinRequest, ProjectSummary,
};

use super::status::ApiResult;
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/projects/{name}/invites", post(create).get(list))
        .route("/projects/{name}/invites/{id}", delete(revoke))
        .route("/join", post(join))
}

async fn create(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<CreateInvite>,
) -> ApiResult<InviteCreated> {
    Ok(Json(
        s.create_invite(&name, &body.role, body.expires.as_deref())
            .await?,
    ))
}

async fn list(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<Vec<InviteView>> {
    s.blocking(move |s| s.list_invites(&name)).await.map(Json)
}

async fn revoke(
    State(s): State<Arc<Service>>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Deleted> {
    s.blocking(move |s| s.revoke_invite(&name, &id))
        .await
        .map(|()| Json(Deleted { deleted: true }))
}

async fn join(
    State(s): State<Arc<Service>>,
    Json(body): Json<JoinRequest>,
) -> ApiResult<ProjectSummary> {
    Ok(Json(s.join(&body.ticket, body.name, body.no_data).await?))
}
