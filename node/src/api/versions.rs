//! Versions of a project: one shown, one file of it downloaded, two
//! compared, one restored. A version is named as the user typed it (an
//! activity entry id, a commit or a date); see `projects::versions::pick`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use tandem_protocol::api::{RestoreRequest, RestoreResult, VersionDetail, VersionDiff};

use super::files::attachment;
use super::status::ApiResult;
use crate::error::ServiceError;
use crate::projects::versions::tree::VersionFile;
use crate::service::Service;

/// Largest small file sent from Git in one piece (small files are below
/// the large-file threshold, so this is only a guard).
const SMALL_FILE_LIMIT: usize = 256 * 1024 * 1024;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/projects/{name}/versions/{version}", get(show))
        .route(
            "/projects/{name}/versions/{version}/raw/{*path}",
            get(download),
        )
        .route("/projects/{name}/compare", get(compare))
        .route("/projects/{name}/restore", post(restore))
}

async fn show(
    State(s): State<Arc<Service>>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<VersionDetail> {
    s.blocking(move |s| s.version_detail(&name, &version))
        .await
        .map(Json)
}

async fn download(
    State(s): State<Arc<Service>>,
    Path((name, version, path)): Path<(String, String, String)>,
) -> Result<Response, ServiceError> {
    let (n, raw) = (name.clone(), path.clone());
    let file = s
        .blocking(move |s| s.version_file(&n, &version, &raw, SMALL_FILE_LIMIT))
        .await?;
    let file_name = path.rsplit('/').next().unwrap_or("download");
    match file {
        VersionFile::Small(bytes) => {
            let length = bytes.len() as u64;
            Ok(attachment(Body::from(bytes), file_name, Some(length)))
        }
        VersionFile::Large(pointer) => {
            let file = tokio::fs::File::from_std(s.open_version_blob(&name, pointer).await?);
            Ok(attachment(
                Body::from_stream(tokio_util::io::ReaderStream::new(file)),
                file_name,
                Some(pointer.size),
            ))
        }
    }
}

#[derive(serde::Deserialize)]
struct CompareQuery {
    from: String,
    #[serde(default = "current")]
    to: String,
}

fn current() -> String {
    "current".into()
}

async fn compare(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Query(query): Query<CompareQuery>,
) -> ApiResult<VersionDiff> {
    s.blocking(move |s| s.version_diff(&name, &query.from, &query.to))
        .await
        .map(Json)
}

async fn restore(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(request): Json<RestoreRequest>,
) -> ApiResult<RestoreResult> {
    s.restore_and_fetch(&name, &request.version).await.map(Json)
}
