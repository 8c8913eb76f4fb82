//! Tandem's web UI: server-rendered pages over a [`Backend`].
//!
//! The node implements [`Backend`] for reading; every action a page offers
//! is a call to the node's JSON API made by a little plain JavaScript
//! (`assets/app.js`) that carries the page's CSRF token and shows progress
//! and the result. Pages work with no internet (no external fonts, scripts
//! or styles), escape everything they show (maud escapes by default;
//! Markdown and notebook HTML are sanitised), and the two plain forms that
//! work without JavaScript check the CSRF token too.

mod handlers;
pub mod layout;
pub mod markdown;
pub mod notebook;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tandem_protocol::api::{
    ActivityQuery, BaseView, ContainerView, DatasetDetail, DatasetSummary, DiskUsage, EntryView,
    EnvView, IdentityInfo, Marks, MembersView, PeerInfo, PeerOffer, ProjectDetail, ProjectSummary,
    Settings, SyncStateView,
};

/// An error to show a person: what happened, with an HTTP status.
#[derive(Debug, Clone)]
pub struct UiError {
    pub status: u16,
    pub message: String,
}

impl UiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// What the pages read from the node. Calls may block (Git, disk, a
/// question to the network task); the router runs them off the async
/// threads.
pub trait Backend: Send + Sync + 'static {
    fn identity(&self) -> IdentityInfo;
    fn projects(&self) -> Result<Vec<ProjectSummary>, UiError>;
    /// Projects connected peers offer to this node.
    fn offers(&self) -> Result<Vec<PeerOffer>, UiError>;
    fn bases(&self) -> Result<Vec<BaseView>, UiError>;
    fn project(&self, name: &str) -> Result<ProjectDetail, UiError>;
    /// The project's README (Markdown), if it has one.
    fn readme(&self, name: &str) -> Result<Option<String>, UiError>;
    fn environment(&self, name: &str) -> Result<EnvView, UiError>;
    /// The project's running container, if any.
    fn container(&self, name: &str) -> Result<Option<ContainerView>, UiError>;
    fn sync_state(&self, name: &str) -> Result<SyncStateView, UiError>;
    fn members(&self, name: &str) -> Result<MembersView, UiError>;
    fn activity(&self, name: &str, query: &ActivityQuery) -> Result<Vec<EntryView>, UiError>;
    fn marks(&self, name: &str) -> Result<Marks, UiError>;
    /// Up to `limit` bytes of a file of the project (`section/path`).
    fn read_file(&self, name: &str, path: &str, limit: u64) -> Result<Vec<u8>, UiError>;
    fn peers(&self) -> Result<Vec<PeerInfo>, UiError>;
    /// This node's dialable addresses.
    fn own_addresses(&self) -> Result<Vec<String>, UiError>;
    fn datasets(&self) -> Result<Vec<DatasetSummary>, UiError>;
    fn dataset(&self, name: &str, version: Option<u32>) -> Result<DatasetDetail, UiError>;
    fn disk_usage(&self) -> Result<DiskUsage, UiError>;
    fn settings(&self) -> Result<Settings, UiError>;
    /// For the form that works without JavaScript.
    fn create_project(&self, name: &str, description: &str) -> Result<ProjectSummary, UiError>;
    /// For the form that works without JavaScript.
    fn add_note(&self, name: &str, text: &str, tags: Vec<String>) -> Result<EntryView, UiError>;
}

pub(crate) struct Ui<B> {
    pub backend: Arc<B>,
    pub csrf: String,
}

impl<B> Clone for Ui<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            csrf: self.csrf.clone(),
        }
    }
}

/// The page routes. `csrf` is the token every action must carry (the
/// `X-Tandem-CSRF` header for API calls, a form field for plain forms).
pub fn router<B: Backend>(backend: Arc<B>, csrf: String) -> Router {
    use handlers::*;
    Router::new()
        .route("/", get(projects::<B>))
        .route("/projects", post(create_form::<B>))
        .route("/p/{name}", get(overview::<B>))
        .route("/p/{name}/files", get(files::<B>))
        .route("/p/{name}/notebook/{*path}", get(notebook_view::<B>))
        .route("/p/{name}/env", get(environment::<B>))
        .route("/p/{name}/activity", get(activity::<B>))
        .route("/p/{name}/events", get(events::<B>))
        .route("/p/{name}/members", get(members::<B>))
        .route("/p/{name}/sync", get(sync::<B>))
        .route("/p/{name}/notes", post(note_form::<B>))
        .route("/peers", get(peers::<B>))
        .route("/datasets", get(datasets::<B>))
        .route("/datasets/{name}", get(dataset::<B>))
        .route("/settings", get(settings::<B>))
        .route("/static/style.css", get(style))
        .route("/static/app.js", get(script))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(Ui { backend, csrf })
}

/// What the browser may do on these pages: only this node's own scripts,
/// styles and connections, images from here or inline `data:` figures,
/// no framing. A slip in escaping still cannot run injected script.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
