//! The node itself: is it up, whose is it, and its settings.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tandem_protocol::api::{Health, IdentityInfo, Settings, UpdateProfile};

use super::status::ApiResult;
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/health", get(health))
        .route("/identity", get(identity).put(update_identity))
        .route("/settings", get(settings).put(save_settings))
}

async fn health(State(s): State<Arc<Service>>) -> Json<Health> {
    Json(Health {
        ok: true,
        did: s.key().public().to_did(),
    })
}

async fn identity(State(s): State<Arc<Service>>) -> ApiResult<IdentityInfo> {
    s.blocking(|s| Ok(s.identity())).await.map(Json)
}

async fn update_identity(
    State(s): State<Arc<Service>>,
    Json(body): Json<UpdateProfile>,
) -> ApiResult<IdentityInfo> {
    s.blocking(move |s| s.update_profile(body)).await.map(Json)
}

async fn settings(State(s): State<Arc<Service>>) -> Json<Settings> {
    Json(s.settings())
}

async fn save_settings(
    State(s): State<Arc<Service>>,
    Json(settings): Json<Settings>,
) -> ApiResult<Settings> {
    let saved = s.blocking(move |s| s.save_settings(settings)).await?;
    s.dial_relay();
    Ok(Json(saved))
}
