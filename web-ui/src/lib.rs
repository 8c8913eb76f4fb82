//! Tandem's web UI: server-rendered pages over a [`Backend`].
//!
//! The node implements [`Backend`]; this crate only renders. Pages work with
//! no internet (no external fonts, scripts or styles), escape everything
//! they show (maud escapes by default), and every form carries a CSRF token.

mod pages;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tandem_protocol::api::{ActivityQuery, EntryView, IdentityInfo, ProjectDetail, ProjectSummary};

/// An error to show a person: what happened, with an HTTP status.
#[derive(Debug, Clone)]
pub struct UiError {
    pub status: u16,
    pub message: String,
}

/// What the pages need from the node. Calls may block (Git, disk); the
/// router runs them off the async threads.
pub trait Backend: Send + Sync + 'static {
    fn identity(&self) -> IdentityInfo;
    fn projects(&self) -> Result<Vec<ProjectSummary>, UiError>;
    fn project(&self, name: &str) -> Result<ProjectDetail, UiError>;
    fn activity(&self, name: &str, query: &ActivityQuery) -> Result<Vec<EntryView>, UiError>;
    fn create_project(&self, name: &str, description: &str) -> Result<ProjectSummary, UiError>;
    fn add_note(&self, name: &str, text: &str, tags: Vec<String>) -> Result<EntryView, UiError>;
}

struct Ui<B> {
    backend: Arc<B>,
    csrf: String,
}

impl<B> Clone for Ui<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            csrf: self.csrf.clone(),
        }
    }
}

/// The page routes. `csrf` is the token every form must echo back.
pub fn router<B: Backend>(backend: Arc<B>, csrf: String) -> Router {
    Router::new()
        .route("/", get(index::<B>))
        .route("/projects", post(create::<B>))
        .route("/p/{name}", get(project::<B>))
        .route("/p/{name}/notes", post(note::<B>))
        .route("/static/style.css", get(style))
        .with_state(Ui { backend, csrf })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UiError> + Send + 'static,
) -> Result<T, UiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(UiError {
            status: 500,
            message: format!("internal error: {e}"),
        })
    })
}

fn error_page(error: UiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Html(pages::error(&error.message).into_string())).into_response()
}

async fn index<B: Backend>(State(ui): State<Ui<B>>) -> Response {
    let backend = ui.backend.clone();
    match blocking(move || Ok((backend.identity(), backend.projects()?))).await {
        Ok((me, projects)) => {
            Html(pages::index(&me, &projects, &ui.csrf, None).into_string()).into_response()
        }
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
struct CreateForm {
    csrf: String,
    name: String,
    #[serde(default)]
    description: String,
}

fn csrf_ok(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn csrf_rejected() -> Response {
    error_page(UiError {
        status: 403,
        message: "This form has expired or came from another site. Reload the page and try again."
            .into(),
    })
}

async fn create<B: Backend>(State(ui): State<Ui<B>>, Form(form): Form<CreateForm>) -> Response {
    if !csrf_ok(&ui.csrf, &form.csrf) {
        return csrf_rejected();
    }
    let backend = ui.backend.clone();
    let (name, description) = (form.name.trim().to_owned(), form.description);
    let result = blocking(move || backend.create_project(&name, &description)).await;
    match result {
        Ok(project) => Redirect::to(&format!("/p/{}", project.name)).into_response(),
        Err(e) => {
            let backend = ui.backend.clone();
            match blocking(move || Ok((backend.identity(), backend.projects()?))).await {
                Ok((me, projects)) => {
                    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
                    (
                        status,
                        Html(
                            pages::index(&me, &projects, &ui.csrf, Some(&e.message)).into_string(),
                        ),
                    )
                        .into_response()
                }
                Err(e) => error_page(e),
            }
        }
    }
}

async fn project<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
    Query(query): Query<ActivityQuery>,
) -> Response {
    let backend = ui.backend.clone();
    let shown = query.clone();
    let result =
        blocking(move || Ok((backend.project(&name)?, backend.activity(&name, &query)?))).await;
    match result {
        Ok((detail, entries)) => {
            Html(pages::project(&detail, &entries, &shown, &ui.csrf, None).into_string())
                .into_response()
        }
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
struct NoteForm {
    csrf: String,
    text: String,
    #[serde(default)]
    tags: String,
}

async fn note<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
    Form(form): Form<NoteForm>,
) -> Response {
    if !csrf_ok(&ui.csrf, &form.csrf) {
        return csrf_rejected();
    }
    let backend = ui.backend.clone();
    let tags: Vec<String> = form
        .tags
        .split([',', ' '])
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let target = name.clone();
    match blocking(move || backend.add_note(&target, &form.text, tags)).await {
        Ok(_) => Redirect::to(&format!("/p/{name}")).into_response(),
        Err(e) => error_page(e),
    }
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE,
    )
}
