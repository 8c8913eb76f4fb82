//! Environments: bases, packages, Dockerfile snippets, limits, builds,
//! JupyterLab containers, and the figures their notebooks made.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use tandem_protocol::api::{
    AcceptSnippet, AddPackages, BaseView, BootstrapResult, BuildProgress, BuildResult,
    ContainerView, DriftOutcome, DriftReport, DriftRequest, EnvChange, EnvView, ImportRequirements,
    LaunchRequest, LimitsRequest, OutdatedPackage, SnippetRequest,
};

use super::status::ApiResult;
use crate::error::ServiceError;
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/bases", get(bases))
        .route("/bases/bootstrap", post(bootstrap_bases))
        .route("/projects/{name}/env", get(env_show))
        .route("/projects/{name}/env/packages", post(env_add))
        .route(
            "/projects/{name}/env/packages/{manager}/{package}",
            delete(env_remove),
        )
        .route("/projects/{name}/env/import", post(env_import))
        .route("/projects/{name}/env/snippets", post(snippet_add))
        .route(
            "/projects/{name}/env/snippets/{snippet}",
            delete(snippet_remove),
        )
        .route(
            "/projects/{name}/env/snippets/{snippet}/accept",
            post(snippet_accept),
        )
        .route("/projects/{name}/env/limits", post(env_limits))
        .route("/projects/{name}/env/outdated", get(env_outdated))
        .route(
            "/projects/{name}/env/drift",
            get(env_drift).post(env_drift_choose),
        )
        .route("/projects/{name}/build", post(build))
        .route("/builds", get(builds))
        .route("/projects/{name}/launch", post(launch))
        .route("/projects/{name}/stop", post(stop))
        .route("/containers", get(containers))
        .route("/figures/{hash}", get(figure))
}

async fn bases(State(s): State<Arc<Service>>) -> Json<Vec<BaseView>> {
    Json(s.bases().await)
}

async fn bootstrap_bases(State(s): State<Arc<Service>>) -> ApiResult<BootstrapResult> {
    Ok(Json(BootstrapResult {
        output: s.bootstrap_bases().await?,
    }))
}

async fn env_show(State(s): State<Arc<Service>>, Path(name): Path<String>) -> ApiResult<EnvView> {
    Ok(Json(s.env_show(&name).await?))
}

async fn env_add(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<AddPackages>,
) -> ApiResult<EnvChange> {
    Ok(Json(s.env_add(&name, &body.manager, &body.packages).await?))
}

async fn env_remove(
    State(s): State<Arc<Service>>,
    Path((name, manager, package)): Path<(String, String, String)>,
) -> ApiResult<EnvChange> {
    s.blocking(move |s| s.env_remove(&name, &manager, &[package]))
        .await
        .map(Json)
}

async fn env_import(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<ImportRequirements>,
) -> ApiResult<EnvChange> {
    Ok(Json(s.env_import(&name, &body.text).await?))
}

async fn snippet_add(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<SnippetRequest>,
) -> ApiResult<EnvChange> {
    s.blocking(move |s| s.snippet_add(&name, &body.name, &body.lines))
        .await
        .map(Json)
}

async fn snippet_remove(
    State(s): State<Arc<Service>>,
    Path((name, snippet)): Path<(String, String)>,
) -> ApiResult<EnvChange> {
    s.blocking(move |s| s.snippet_remove(&name, &snippet))
        .await
        .map(Json)
}

async fn snippet_accept(
    State(s): State<Arc<Service>>,
    Path((name, snippet)): Path<(String, String)>,
    Json(body): Json<AcceptSnippet>,
) -> ApiResult<EnvChange> {
    s.blocking(move |s| s.snippet_accept(&name, &snippet, &body.hash))
        .await
        .map(Json)
}

async fn env_limits(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<LimitsRequest>,
) -> ApiResult<EnvChange> {
    s.blocking(move |s| s.env_limits(&name, &body))
        .await
        .map(Json)
}

async fn env_outdated(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<Vec<OutdatedPackage>> {
    Ok(Json(s.env_outdated(&name).await?))
}

async fn env_drift(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<DriftReport> {
    s.blocking(move |s| s.env_drift(&name)).await.map(Json)
}

async fn env_drift_choose(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<DriftRequest>,
) -> ApiResult<DriftOutcome> {
    Ok(Json(s.env_drift_choose(&name, body).await?))
}

async fn build(State(s): State<Arc<Service>>, Path(name): Path<String>) -> ApiResult<BuildResult> {
    Ok(Json(s.build(&name).await?))
}

async fn builds(State(s): State<Arc<Service>>) -> Json<Vec<BuildProgress>> {
    Json(s.builds())
}

async fn launch(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<LaunchRequest>,
) -> ApiResult<ContainerView> {
    Ok(Json(
        s.launch(&name, body.tool.as_deref(), body.at.as_deref())
            .await?,
    ))
}

async fn stop(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<Vec<ContainerView>> {
    Ok(Json(s.stop_container(&name).await?))
}

async fn containers(State(s): State<Arc<Service>>) -> ApiResult<Vec<ContainerView>> {
    Ok(Json(s.containers().await?))
}

/// Figures are served inert: an SVG from a notebook may carry script, so
/// it gets a policy that runs none and may not be sniffed into HTML.
async fn figure(
    State(s): State<Arc<Service>>,
    Path(hash): Path<String>,
) -> Result<Response, ServiceError> {
    let (bytes, mime) = s.figure(&hash).await?;
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable",
            ),
        ],
        bytes,
    )
        .into_response())
}
