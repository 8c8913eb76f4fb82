//! A project's activity: the feed, notes, marks (stars and hidden
//! entries). Versions (browse, compare, restore) are in [`super::versions`].

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use tandem_protocol::api::{ActivityQuery, EntryView, MarkRequest, Marks, NoteRequest};

use super::status::ApiResult;
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/projects/{name}/activity", get(activity))
        .route("/projects/{name}/notes", post(note))
        .route("/projects/{name}/marks", get(marks).post(set_mark))
}

async fn activity(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Query(query): Query<ActivityQuery>,
) -> ApiResult<Vec<EntryView>> {
    s.blocking(move |s| s.activity(&name, &query))
        .await
        .map(Json)
}

async fn note(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<NoteRequest>,
) -> ApiResult<EntryView> {
    s.blocking(move |s| s.add_note(&name, &body.text, body.tags))
        .await
        .map(Json)
}

async fn marks(State(s): State<Arc<Service>>, Path(name): Path<String>) -> ApiResult<Marks> {
    s.blocking(move |s| s.marks(&name)).await.map(Json)
}

async fn set_mark(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(request): Json<MarkRequest>,
) -> ApiResult<Marks> {
    s.blocking(move |s| s.set_mark(&name, &request))
        .await
        .map(Json)
}
