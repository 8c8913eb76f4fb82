//! The API routes the web UI needs beyond the CLI's: uploading and
//! downloading files as bytes, importing an uploaded archive, starring and
//! hiding entries, restoring a version, a project's sync state, and the
//! node's settings.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::StreamExt;
use tandem_protocol::api::{MarkRequest, RestoreRequest, Settings};
use tokio::io::AsyncWriteExt;

use crate::error::{ServiceError, io_context};
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route(
            "/projects/{name}/upload/{*path}",
            put(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/projects/{name}/raw/{*path}", get(download))
        .route("/projects/{name}/sync-state", get(sync_state))
        .route("/projects/{name}/marks", get(marks).post(set_mark))
        .route("/projects/{name}/restore", post(restore))
        .route(
            "/import-upload",
            put(import_upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/settings", get(settings).put(save_settings))
}

async fn run<T: Send + 'static>(
    service: &Arc<Service>,
    f: impl FnOnce(&Service) -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    let service = service.clone();
    tokio::task::spawn_blocking(move || f(&service))
        .await
        .map_err(|e| ServiceError::BadRequest(format!("internal error: {e}")))?
}

/// Streams a request body into a new temporary file in the node's home;
/// nothing reaches a project until the whole body has arrived.
async fn receive(service: &Service, body: Body) -> Result<tempfile::TempPath, ServiceError> {
    let dir = service.home().tmp_dir();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(io_context("creating the temporary folder"))?;
    let (file, path) = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(&dir)
        .map_err(io_context("creating a temporary file"))?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ServiceError::BadRequest(format!("the upload was interrupted: {e}")))?;
        file.write_all(&chunk)
            .await
            .map_err(io_context("saving the upload"))?;
    }
    file.sync_all()
        .await
        .map_err(io_context("saving the upload"))?;
    Ok(path)
}

async fn upload(
    State(s): State<Arc<Service>>,
    Path((name, path)): Path<(String, String)>,
    body: Body,
) -> Response {
    // Refuse a bad project or path before taking in the bytes.
    let (n, p) = (name.clone(), path.clone());
    let checked = run(&s, move |s| {
        let dir = crate::service::lock(&*s.project(&n)?).dir.clone();
        crate::projects::browse::resolve(&dir, &p).map(|_| ())
    })
    .await;
    if let Err(e) = checked {
        return e.into_response();
    }
    let received = match receive(&s, body).await {
        Ok(received) => received,
        Err(e) => return e.into_response(),
    };
    match run(&s, move |s| s.place_upload(&name, &path, &received)).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn download(
    State(s): State<Arc<Service>>,
    Path((name, path)): Path<(String, String)>,
) -> Response {
    let raw = path.clone();
    // Opened beneath the project folder, never through a link; the
    // handle opened there is what is sent.
    let found = run(&s, move |s| {
        let dir = crate::service::lock(&*s.project(&name)?).dir.clone();
        crate::projects::browse::open_for_download(&dir, &raw)
    })
    .await;
    let file = match found {
        Ok(file) => tokio::fs::File::from_std(file),
        Err(e) => return e.into_response(),
    };
    let length = file.metadata().await.map(|m| m.len()).ok();
    let file_name = path.rsplit('/').next().unwrap_or("download");
    let mut response = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    if let Ok(value) = HeaderValue::from_str(&content_disposition(file_name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some(length) = length
        && let Ok(value) = HeaderValue::from_str(&length.to_string())
    {
        headers.insert(header::CONTENT_LENGTH, value);
    }
    response
}

/// `attachment` with an ASCII fallback name and the exact name encoded
/// (RFC 6266), so no file name can break out of the header.
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = tandem_web::layout::encode(name);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn sync_state(State(s): State<Arc<Service>>, Path(name): Path<String>) -> Response {
    match run(&s, move |s| s.sync_state(&name)).await {
        Ok(state) => Json(state).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn marks(State(s): State<Arc<Service>>, Path(name): Path<String>) -> Response {
    match run(&s, move |s| s.marks(&name)).await {
        Ok(marks) => Json(marks).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn set_mark(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(request): Json<MarkRequest>,
) -> Response {
    match run(&s, move |s| s.set_mark(&name, &request)).await {
        Ok(marks) => Json(marks).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn restore(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    Json(request): Json<RestoreRequest>,
) -> Response {
    match run(&s, move |s| s.restore(&name, &request.entry)).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct ImportQuery {
    #[serde(default)]
    name: Option<String>,
}

async fn import_upload(
    State(s): State<Arc<Service>>,
    Query(query): Query<ImportQuery>,
    body: Body,
) -> Response {
    let received = match receive(&s, body).await {
        Ok(received) => received,
        Err(e) => return e.into_response(),
    };
    let name = query.name.filter(|n| !n.trim().is_empty());
    match run(&s, move |s| s.import_project(&received, name.as_deref())).await {
        Ok(summary) => (StatusCode::OK, Json(summary)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn settings(State(s): State<Arc<Service>>) -> Json<Settings> {
    Json(s.settings())
}

async fn save_settings(State(s): State<Arc<Service>>, Json(settings): Json<Settings>) -> Response {
    match run(&s, move |s| s.save_settings(settings)).await {
        Ok(saved) => {
            s.dial_relay();
            Json(saved).into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_cannot_break_the_header() {
        let value = content_disposition("a\"b\r\nSet-Cookie: x.csv");
        assert!(!value.contains('\r') && !value.contains('\n'), "{value}");
        assert!(
            value.starts_with("attachment; filename=\"a_b__Set-Cookie: x.csv\""),
            "{value}"
        );
        assert!(HeaderValue::from_str(&value).is_ok());
        assert!(content_disposition("données.csv").contains("filename*=UTF-8''donn%C3%A9es.csv"));
    }
}
