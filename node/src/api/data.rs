//! Large files and datasets: fetching and evicting copies, transfers in
//! progress, disk use, and datasets with their versions and links.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use tandem_protocol::api::{
    AddToDataset, CreateDataset, DatasetDetail, DatasetSummary, DiskUsage, EvictRequest,
    EvictResult, FetchRequest, FetchResult, LinkRequest, TransferView, VersionQuery,
    VersionSummary,
};
use tandem_protocol::dataset::Link;

use super::status::ApiResult;
use crate::data::fetch::FetchScope;
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/projects/{name}/fetch", post(fetch))
        .route("/projects/{name}/evict", post(evict))
        .route("/transfers", get(transfers))
        .route("/du", get(disk_usage))
        .route("/datasets", get(list_datasets).post(create_dataset))
        .route("/datasets/{name}", get(show_dataset))
        .route("/datasets/{name}/files", post(add_to_dataset))
        .route("/projects/{name}/datasets", post(link_dataset))
}

async fn fetch(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<FetchRequest>,
) -> ApiResult<FetchResult> {
    Ok(Json(
        s.fetch_data(&name, body.paths, FetchScope::Requested)
            .await?,
    ))
}

async fn evict(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<EvictRequest>,
) -> ApiResult<EvictResult> {
    Ok(Json(s.evict(&name, body).await?))
}

async fn transfers(State(s): State<Arc<Service>>) -> Json<Vec<TransferView>> {
    Json(s.data().transfers().list())
}

async fn disk_usage(State(s): State<Arc<Service>>) -> ApiResult<DiskUsage> {
    s.blocking(|s| s.disk_usage()).await.map(Json)
}

async fn list_datasets(State(s): State<Arc<Service>>) -> ApiResult<Vec<DatasetSummary>> {
    s.blocking(|s| s.list_datasets()).await.map(Json)
}

async fn create_dataset(
    State(s): State<Arc<Service>>,
    Json(body): Json<CreateDataset>,
) -> ApiResult<DatasetSummary> {
    s.blocking(move |s| s.create_dataset(&body.name, &body.description))
        .await
        .map(Json)
}

async fn show_dataset(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Query(query): Query<VersionQuery>,
) -> ApiResult<DatasetDetail> {
    s.blocking(move |s| s.show_dataset(&name, query.version))
        .await
        .map(Json)
}

async fn add_to_dataset(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<AddToDataset>,
) -> ApiResult<VersionSummary> {
    s.blocking(move |s| s.add_to_dataset(&name, &body.paths, &body.message))
        .await
        .map(Json)
}

async fn link_dataset(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<LinkRequest>,
) -> ApiResult<Link> {
    s.blocking(move |s| s.link_dataset(&name, &body.dataset))
        .await
        .map(Json)
}
