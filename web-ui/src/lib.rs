//! Tandem's web UI: server-rendered pages over a [`Backend`].
//!
//! The node implements [`Backend`] for reading; every action a page offers
//! is a call to the node's JSON API made by a little plain JavaScript
//! (`assets/app.js`) that carries the page's CSRF token and shows progress
//! and the result. Pages work with no internet (no external fonts, scripts
//! or styles), escape everything they show (maud escapes by default;
//! Markdown and notebook HTML are sanitised), and the two plain forms that
//! work without JavaScript check the CSRF token too.

pub mod backend;
mod handlers;
pub mod layout;
pub mod markdown;
pub mod notebook;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use backend::Ui;
pub use backend::{Backend, UiError};

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
        .route("/p/{name}/v/{version}", get(version::<B>))
        .route("/p/{name}/compare", get(compare::<B>))
        .route("/p/{name}/events", get(events::<B>))
        .route("/p/{name}/members", get(members::<B>))
        .route("/p/{name}/sync", get(sync::<B>))
        .route("/p/{name}/notes", post(note_form::<B>))
        .route("/peers", get(peers::<B>))
        .route("/datasets", get(datasets::<B>))
        .route("/datasets/{name}", get(dataset::<B>))
        .route("/settings", get(settings::<B>))
        .route("/hub", get(hub::<B>))
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
