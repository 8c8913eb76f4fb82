//! The node's HTTP/JSON API, and the guard in front of it and the web UI.
//!
//! Every route needs the node's token: as `Authorization: Bearer` (the CLI),
//! or as a cookie set when a person first opens the URL that `tandem up`
//! printed (`/?token=…`). Requests whose `Host` is not one of the node's own
//! names are refused (DNS rebinding), and state-changing requests that rely
//! on the cookie must come from the node's own origin.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tandem_protocol::api::{
    ActivityQuery, AddFiles, ApiError, CreateProject, EntryView, ExportRequest, ImportRequest,
    MembersView, NoteRequest, ShareRequest, UpdateProfile, VisibilityRequest,
};

use crate::api::web_backend::WebBackend;
use crate::error::ServiceError;
use crate::service::Service;

pub const COOKIE: &str = "tandem_token";
/// The header in which the web UI's scripts send the CSRF token.
pub const CSRF_HEADER: &str = "x-tandem-csrf";

/// Who may talk to the node, and through which names.
#[derive(Clone)]
pub struct Guard {
    token: String,
    allowed_hosts: Arc<Vec<String>>,
}

impl Guard {
    /// `port` is the port the node listens on; the in-process client uses
    /// the host name `tandem.local`.
    pub fn new(token: String, port: u16) -> Self {
        let allowed = vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
            "tandem.local".to_owned(),
        ];
        Self {
            token,
            allowed_hosts: Arc::new(allowed),
        }
    }

    /// Also accepts `host` (for a node listening on a non-loopback address).
    pub fn with_host(mut self, host: String) -> Self {
        Arc::make_mut(&mut self.allowed_hosts).push(host);
        self
    }

    fn token_matches(&self, given: &str) -> bool {
        // Compare hashes so timing says nothing about the token.
        blake3::hash(given.as_bytes()) == blake3::hash(self.token.as_bytes())
    }

    /// The value web forms must echo back: derived from the token so it is
    /// secret too, but useless as a login.
    pub fn csrf(&self) -> String {
        blake3::derive_key("tandem web csrf v1", self.token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn csrf_matches(&self, given: &str) -> bool {
        blake3::hash(given.as_bytes()) == blake3::hash(self.csrf().as_bytes())
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let status = match &self {
            ServiceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServiceError::NoSuchProject(_) => StatusCode::NOT_FOUND,
            ServiceError::NoSuchFile(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Env(crate::env::EnvError::DockerUnavailable { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ServiceError::Env(crate::env::EnvError::BuildFailed { .. }) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ServiceError::Env(e) if e.is_users() => StatusCode::BAD_REQUEST,
            // The repository holds what Tandem refuses to obey: the user's to fix.
            ServiceError::Repo(e) if e.is_refusal() => StatusCode::CONFLICT,
            // A path refused for leading through a link or out of the project.
            ServiceError::Beneath(e) if e.is_refusal() => StatusCode::BAD_REQUEST,
            ServiceError::Track(e) if e.as_refusal().is_some() => StatusCode::BAD_REQUEST,
            ServiceError::Blobs(e) if e.as_refusal().is_some() => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "request failed");
        }
        (
            status,
            Json(ApiError {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ServiceError>;

async fn blocking<T: Send + 'static>(
    service: &Arc<Service>,
    f: impl FnOnce(&Service) -> Result<T, ServiceError> + Send + 'static,
) -> ApiResult<T> {
    let service = service.clone();
    tokio::task::spawn_blocking(move || f(&service))
        .await
        .map_err(|e| ServiceError::BadRequest(format!("internal error: {e}")))?
        .map(Json)
}

/// The whole application: JSON API under `/api`, pages elsewhere.
pub fn app(service: Arc<Service>, guard: Guard) -> Router {
    // Markdown and notebooks may not link to any name this node answers to.
    tandem_web::markdown::add_own_origins(guard.allowed_hosts.iter());
    let api = Router::new()
        .route("/health", get(health))
        .route("/identity", get(identity).put(update_identity))
        .route("/projects", get(list).post(create))
        .route("/import", post(import))
        .route("/projects/{name}", get(show).delete(delete))
        .route("/projects/{name}/files", post(add_files))
        .route("/projects/{name}/sweep", post(sweep))
        .route("/projects/{name}/activity", get(activity))
        .route("/projects/{name}/notes", post(note))
        .route("/projects/{name}/export", post(export))
        .route("/projects/{name}/members", get(members).post(share))
        .route(
            "/projects/{name}/members/{peer}",
            axum::routing::delete(revoke),
        )
        .route(
            "/projects/{name}/visibility",
            axum::routing::put(visibility),
        )
        .route("/projects/{name}/sync", post(sync))
        .route("/projects/{name}/fetch", post(fetch))
        .route("/transfers", get(transfers))
        .route("/projects/{name}/evict", post(evict))
        .route("/du", get(disk_usage))
        .route("/datasets", get(list_datasets).post(create_dataset))
        .route("/datasets/{name}", get(show_dataset))
        .route("/datasets/{name}/files", post(add_to_dataset))
        .route("/projects/{name}/datasets", post(link_dataset))
        .route("/clone", post(clone))
        .route("/offers", get(offers))
        .route("/peers", get(peers).post(add_peer))
        .route("/peers/self", get(own_addresses))
        .route("/bases", get(bases))
        .route("/bases/bootstrap", post(bootstrap_bases))
        .route("/projects/{name}/env", get(env_show))
        .route("/projects/{name}/env/packages", post(env_add))
        .route(
            "/projects/{name}/env/packages/{manager}/{package}",
            axum::routing::delete(env_remove),
        )
        .route("/projects/{name}/env/import", post(env_import))
        .route("/projects/{name}/env/snippets", post(snippet_add))
        .route(
            "/projects/{name}/env/snippets/{snippet}",
            axum::routing::delete(snippet_remove),
        )
        .route(
            "/projects/{name}/env/snippets/{snippet}/accept",
            post(snippet_accept),
        )
        .route("/projects/{name}/env/limits", post(env_limits))
        .route("/projects/{name}/env/outdated", get(env_outdated))
        .route("/projects/{name}/build", post(build))
        .route("/builds", get(builds))
        .route("/projects/{name}/launch", post(launch))
        .route("/projects/{name}/stop", post(stop))
        .route("/containers", get(containers))
        .route("/figures/{hash}", get(figure))
        .merge(crate::api::web_routes::routes())
        .with_state(service.clone());
    let web = tandem_web::router(Arc::new(WebBackend(service)), guard.csrf());
    Router::new()
        .nest("/api", api)
        .merge(web)
        .layer(middleware::from_fn_with_state(guard, check))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(ApiError {
            error: message.to_owned(),
        }),
    )
        .into_response()
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !guard.allowed_hosts.iter().any(|h| h == host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "unexpected Host header: open the node through 127.0.0.1 or localhost",
        );
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|t| guard.token_matches(t)) {
        return next.run(request).await;
    }
    let by_cookie = cookie_token(headers).is_some_and(|t| guard.token_matches(&t));
    if by_cookie {
        let safe = matches!(*request.method(), Method::GET | Method::HEAD);
        if !safe {
            let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
            let same_origin = origin.is_some_and(|o| o.strip_prefix("http://") == Some(host));
            if !same_origin {
                return refuse(StatusCode::FORBIDDEN, "cross-origin request refused");
            }
            // API calls from the pages carry the CSRF token in a header;
            // the plain forms outside /api check it in their body.
            let is_api = request.uri().path().starts_with("/api/");
            let csrf = headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if is_api && !guard.csrf_matches(csrf) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "missing or wrong CSRF token: reload the page and try again",
                );
            }
        }
        return next.run(request).await;
    }
    // First visit from the printed URL: trade the token for a cookie.
    let query_token = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    if request.method() == Method::GET && query_token.is_some_and(|t| guard.token_matches(t)) {
        let cookie = format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
            guard.token
        );
        let mut response = Redirect::to(request.uri().path()).into_response();
        if let Ok(value) = cookie.parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return response;
    }
    refuse(
        StatusCode::UNAUTHORIZED,
        "missing or wrong token: open the URL that `tandem up` printed (it carries the token)",
    )
}

#[derive(Serialize)]
struct Health {
    ok: bool,
    did: String,
}

async fn health(State(s): State<Arc<Service>>) -> Json<Health> {
    Json(Health {
        ok: true,
        did: s.key().public().to_did(),
    })
}

async fn identity(State(s): State<Arc<Service>>) -> ApiResult<tandem_protocol::api::IdentityInfo> {
    blocking(&s, |s| Ok(s.identity())).await
}

async fn update_identity(
    State(s): State<Arc<Service>>,
    Json(body): Json<UpdateProfile>,
) -> ApiResult<tandem_protocol::api::IdentityInfo> {
    blocking(&s, move |s| s.update_profile(body)).await
}

async fn list(
    State(s): State<Arc<Service>>,
) -> ApiResult<Vec<tandem_protocol::api::ProjectSummary>> {
    blocking(&s, |s| s.list_projects()).await
}

async fn create(
    State(s): State<Arc<Service>>,
    Json(body): Json<CreateProject>,
) -> ApiResult<tandem_protocol::api::ProjectSummary> {
    blocking(&s, move |s| {
        s.create_project(
            &body.name,
            body.description.as_deref().unwrap_or(""),
            body.base.as_deref(),
        )
    })
    .await
}

async fn show(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<tandem_protocol::api::ProjectDetail> {
    blocking(&s, move |s| s.show_project(&name)).await
}

async fn delete(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<serde_json::Value> {
    blocking(&s, move |s| {
        s.delete_project(&name)
            .map(|()| serde_json::json!({ "deleted": true }))
    })
    .await
}

async fn add_files(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<AddFiles>,
) -> ApiResult<tandem_protocol::api::SweepResult> {
    blocking(&s, move |s| s.add_files(&name, body.section, &body.paths)).await
}

async fn sweep(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<tandem_protocol::api::SweepResult> {
    blocking(&s, move |s| s.sweep(&name)).await
}

async fn activity(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Query(query): Query<ActivityQuery>,
) -> ApiResult<Vec<tandem_protocol::api::EntryView>> {
    blocking(&s, move |s| s.activity(&name, &query)).await
}

async fn note(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<NoteRequest>,
) -> ApiResult<tandem_protocol::api::EntryView> {
    blocking(&s, move |s| s.add_note(&name, &body.text, body.tags)).await
}

async fn export(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<ExportRequest>,
) -> ApiResult<tandem_protocol::api::ExportResult> {
    blocking(&s, move |s| {
        s.export_project(&name, &PathBuf::from(body.output))
    })
    .await
}

async fn import(
    State(s): State<Arc<Service>>,
    Json(body): Json<ImportRequest>,
) -> ApiResult<tandem_protocol::api::ProjectSummary> {
    blocking(&s, move |s| {
        s.import_project(&PathBuf::from(body.path), body.name.as_deref())
    })
    .await
}

async fn members(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<MembersView> {
    blocking(&s, move |s| s.members(&name)).await
}

async fn share(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<ShareRequest>,
) -> ApiResult<EntryView> {
    blocking(&s, move |s| {
        s.share(&name, &body.peer, &body.role, body.expires.as_deref())
    })
    .await
}

async fn revoke(
    State(s): State<Arc<Service>>,
    Path((name, peer)): Path<(String, String)>,
) -> ApiResult<EntryView> {
    blocking(&s, move |s| s.revoke(&name, &peer)).await
}

async fn visibility(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<VisibilityRequest>,
) -> ApiResult<EntryView> {
    blocking(&s, move |s| s.set_visibility(&name, body.public)).await
}

#[derive(serde::Deserialize)]
struct SyncRequest {
    #[serde(default)]
    resolve: Option<String>,
    /// Turns automatic sync on or off instead of syncing.
    #[serde(default)]
    auto: Option<bool>,
}

#[derive(Serialize)]
struct Resolved {
    message: String,
}

async fn sync(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<SyncRequest>,
) -> Response {
    if let Some(enabled) = body.auto {
        return blocking(&s, move |s| {
            s.set_autosync_enabled(&name, enabled).map(|on| Resolved {
                message: format!(
                    "Automatic sync is {} for {name}",
                    if on { "on" } else { "off" }
                ),
            })
        })
        .await
        .into_response();
    }
    match body.resolve {
        Some(how) => {
            let how: crate::sync::git::Resolution = match how.parse() {
                Ok(how) => how,
                Err(e) => return ServiceError::BadRequest(e).into_response(),
            };
            blocking(&s, move |s| {
                s.resolve_sync(&name, how)
                    .map(|message| Resolved { message })
            })
            .await
            .into_response()
        }
        None => match s.sync_project(&name).await {
            Ok(summary) => Json(summary).into_response(),
            Err(e) => e.into_response(),
        },
    }
}

#[derive(serde::Deserialize)]
struct CloneRequest {
    project: String,
    #[serde(default)]
    name: Option<String>,
    /// Leave large files on peers until `tandem fetch` asks for them.
    #[serde(default)]
    no_data: bool,
}

async fn clone(State(s): State<Arc<Service>>, Json(body): Json<CloneRequest>) -> Response {
    let id: tandem_protocol::ProjectId = match body.project.parse() {
        Ok(id) => id,
        Err(e) => return ServiceError::BadRequest(format!("{e}")).into_response(),
    };
    match s.clone_project(id, body.name, body.no_data).await {
        Ok(summary) => Json(summary).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn fetch(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<tandem_protocol::api::FetchRequest>,
) -> ApiResult<tandem_protocol::api::FetchResult> {
    Ok(Json(
        s.fetch_data(&name, body.paths, crate::data::files::FetchScope::Requested)
            .await?,
    ))
}

async fn evict(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<tandem_protocol::api::EvictRequest>,
) -> ApiResult<tandem_protocol::api::EvictResult> {
    Ok(Json(s.evict(&name, body).await?))
}

async fn disk_usage(State(s): State<Arc<Service>>) -> ApiResult<tandem_protocol::api::DiskUsage> {
    blocking(&s, |s| s.disk_usage()).await
}

async fn list_datasets(
    State(s): State<Arc<Service>>,
) -> ApiResult<Vec<tandem_protocol::api::DatasetSummary>> {
    blocking(&s, |s| s.list_datasets()).await
}

async fn create_dataset(
    State(s): State<Arc<Service>>,
    Json(body): Json<tandem_protocol::api::CreateDataset>,
) -> ApiResult<tandem_protocol::api::DatasetSummary> {
    blocking(&s, move |s| s.create_dataset(&body.name, &body.description)).await
}

#[derive(serde::Deserialize)]
struct VersionQuery {
    version: Option<u32>,
}

async fn show_dataset(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Query(query): Query<VersionQuery>,
) -> ApiResult<tandem_protocol::api::DatasetDetail> {
    blocking(&s, move |s| s.show_dataset(&name, query.version)).await
}

async fn add_to_dataset(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<tandem_protocol::api::AddToDataset>,
) -> ApiResult<tandem_protocol::api::VersionSummary> {
    blocking(&s, move |s| {
        s.add_to_dataset(&name, &body.paths, &body.message)
    })
    .await
}

async fn link_dataset(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<tandem_protocol::api::LinkRequest>,
) -> ApiResult<tandem_protocol::dataset::Link> {
    blocking(&s, move |s| s.link_dataset(&name, &body.dataset)).await
}

async fn transfers(State(s): State<Arc<Service>>) -> Json<Vec<tandem_protocol::api::TransferView>> {
    Json(s.transfers.list())
}

async fn offers(
    State(s): State<Arc<Service>>,
) -> ApiResult<Vec<crate::sync::replicate::PeerOffer>> {
    Ok(Json(s.offers().await?))
}

async fn peers(State(s): State<Arc<Service>>) -> ApiResult<Vec<crate::p2p::swarm::PeerInfo>> {
    Ok(Json(s.net()?.peers().await?))
}

#[derive(serde::Deserialize)]
struct AddPeer {
    address: String,
}

async fn add_peer(
    State(s): State<Arc<Service>>,
    Json(body): Json<AddPeer>,
) -> ApiResult<serde_json::Value> {
    let address = body.address.trim();
    // A key alone (did:key or PeerId) is looked up through connected peers.
    let key = if address.starts_with('/') {
        s.net()?.dial(address).await?
    } else {
        let key: tandem_protocol::PeerKey = address.parse().map_err(|_| {
            ServiceError::BadRequest(format!(
                "{address:?} is neither a multiaddr (/ip4/…/p2p/…) nor a peer's key (did:key:… or 12D3KooW…)"
            ))
        })?;
        s.net()?.find(&key).await?
    };
    Ok(Json(serde_json::json!({ "connected": key.to_did() })))
}

async fn own_addresses(State(s): State<Arc<Service>>) -> ApiResult<serde_json::Value> {
    let addresses = s.net()?.addresses().await?;
    let me = s.key().public();
    let blob_addresses: Vec<String> = s
        .blob_endpoint
        .get()
        .map(|e| e.bound().iter().map(|a| a.to_string()).collect())
        .unwrap_or_default();
    Ok(Json(serde_json::json!({
        "did": me.to_did(),
        "peer_id": me.to_peer_id(),
        "addresses": addresses,
        "blob_addresses": blob_addresses,
    })))
}

async fn bases(State(s): State<Arc<Service>>) -> Json<Vec<tandem_protocol::api::BaseView>> {
    Json(s.bases().await)
}

#[derive(Serialize)]
struct BootstrapResult {
    output: String,
}

async fn bootstrap_bases(State(s): State<Arc<Service>>) -> ApiResult<BootstrapResult> {
    Ok(Json(BootstrapResult {
        output: s.bootstrap_bases().await?,
    }))
}

async fn env_show(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<tandem_protocol::api::EnvView> {
    Ok(Json(s.env_show(&name).await?))
}

async fn env_add(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<tandem_protocol::api::AddPackages>,
) -> ApiResult<tandem_protocol::api::EnvChange> {
    Ok(Json(s.env_add(&name, &body.manager, &body.packages).await?))
}

async fn env_remove(
    State(s): State<Arc<Service>>,
    Path((name, manager, package)): Path<(String, String, String)>,
) -> ApiResult<tandem_protocol::api::EnvChange> {
    blocking(&s, move |s| s.env_remove(&name, &manager, &[package])).await
}

async fn env_import(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<tandem_protocol::api::ImportRequirements>,
) -> ApiResult<tandem_protocol::api::EnvChange> {
    Ok(Json(s.env_import(&name, &body.text).await?))
}

async fn snippet_add(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<tandem_protocol::api::SnippetRequest>,
) -> ApiResult<tandem_protocol::api::EnvChange> {
    blocking(&s, move |s| s.snippet_add(&name, &body.name, &body.lines)).await
}

async fn snippet_remove(
    State(s): State<Arc<Service>>,
    Path((name, snippet)): Path<(String, String)>,
) -> ApiResult<tandem_protocol::api::EnvChange> {
    blocking(&s, move |s| s.snippet_remove(&name, &snippet)).await
}

async fn snippet_accept(
    State(s): State<Arc<Service>>,
    Path((name, snippet)): Path<(String, String)>,
    Json(body): Json<tandem_protocol::api::AcceptSnippet>,
) -> ApiResult<tandem_protocol::api::EnvChange> {
    blocking(&s, move |s| s.snippet_accept(&name, &snippet, &body.hash)).await
}

async fn env_limits(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<tandem_protocol::api::LimitsRequest>,
) -> ApiResult<tandem_protocol::api::EnvChange> {
    blocking(&s, move |s| s.env_limits(&name, &body)).await
}

async fn env_outdated(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<Vec<tandem_protocol::api::OutdatedPackage>> {
    Ok(Json(s.env_outdated(&name).await?))
}

async fn build(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<tandem_protocol::api::BuildResult> {
    Ok(Json(s.build(&name).await?))
}

async fn builds(State(s): State<Arc<Service>>) -> Json<Vec<tandem_protocol::api::BuildProgress>> {
    Json(s.builds())
}

async fn launch(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(body): Json<tandem_protocol::api::LaunchRequest>,
) -> ApiResult<tandem_protocol::api::ContainerView> {
    Ok(Json(s.launch(&name, body.tool.as_deref()).await?))
}

async fn stop(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> ApiResult<Vec<tandem_protocol::api::ContainerView>> {
    Ok(Json(s.stop_container(&name).await?))
}

async fn containers(
    State(s): State<Arc<Service>>,
) -> ApiResult<Vec<tandem_protocol::api::ContainerView>> {
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
