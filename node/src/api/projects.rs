//! Projects themselves: list, create, show, delete, add files, sweep,
//! export and import (an archive on this machine; an uploaded one is in
//! [`super::files`]).

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use tandem_protocol::api::{
    AddFiles, CreateProject, Deleted, ExportRequest, ExportResult, ImportRequest, ProjectDetail,
    ProjectSummary, SweepResult,
};

use super::status::ApiResult;
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/projects", get(list).post(create))
        .route("/import", post(import))
        .route("/projects/{name}", get(show).delete(delete))
        .route("/projects/{name}/files", post(add_files))
        .route("/projects/{name}/sweep", post(sweep))
        .route("/projects/{name}/export", post(export))
}

async fn list(State(s): State<Arc<Service>>) -> ApiResult<Vec<ProjectSummary>> {
    s.blocking(|s| s.list_projects()).await.map(Json)
}

async fn create(
    State(s): State<Arc<Service>>,
    Json(body): Json<CreateProject>,
) -> ApiResult<ProjectSummary> {
    s.blocking(move |s| {
        s.create_project(
            &body.name,
            body.description.as_deref().unwrap_or(""),
            body.base.as_deref(),
        )
    })
    .await
    .map(Json)
}

async fn show(State(s): State<Arc<Service>>, Path(name): Path<String>) -> ApiResult<ProjectDetail> {
    s.blocking(move |s| s.show_project(&name)).await.map(Json)
}

async fn delete(State(s): State<Arc<Service>>, Path(name): Path<String>) -> ApiResult<Deleted> {
    s.blocking(move |s| s.delete_project(&name).map(|()| Deleted { deleted: true }))
        .await
        .map(Json)
}

async fn add_files(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<AddFiles>,
) -> ApiResult<SweepResult> {
    s.blocking(move |s| s.add_files(&name, body.section, &body.paths))
        .await
        .map(Json)
}

async fn sweep(State(s): State<Arc<Service>>, Path(name): Path<String>) -> ApiResult<SweepResult> {
    s.blocking(move |s| s.sweep(&name)).await.map(Json)
}

async fn export(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<ExportRequest>,
) -> ApiResult<ExportResult> {
    s.blocking(move |s| s.export_project(&name, &PathBuf::from(body.output)))
        .await
        .map(Json)
}

async fn import(
    State(s): State<Arc<Service>>,
    Json(body): Json<ImportRequest>,
) -> ApiResult<ProjectSummary> {
    s.blocking(move |s| s.import_project(&PathBuf::from(body.path), body.name.as_deref()))
        .await
        .map(Json)
}
