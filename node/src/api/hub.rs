//! A hub's account of itself, `GET /api/hub`: who may use it, what it sees
//! and what it keeps (see [`Service::hub_view`]). Behind the same token as
//! the rest of the API: it lists the projects the hub keeps, which only its
//! operator may learn. A plain node answers 404.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tandem_protocol::api::HubView;

use super::status::ApiResult;
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new().route("/hub", get(show))
}

async fn show(State(s): State<Arc<Service>>) -> ApiResult<HubView> {
    s.blocking(|s| s.hub_view()).await.map(Json)
}
