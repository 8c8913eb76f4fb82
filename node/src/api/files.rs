//! A project's files as bytes, for the web UI: uploading one, downloading
//! one, and importing an uploaded archive. Bytes are streamed, never held
//! whole in memory, and every path is opened beneath the project.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use futures::StreamExt;
use tandem_protocol::api::{ProjectSummary, SweepResult};
use tokio::io::AsyncWriteExt;

use super::status::ApiResult;
use crate::error::{ServiceError, io_context};
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route(
            "/projects/{name}/upload/{*path}",
            put(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/projects/{name}/raw/{*path}", get(download))
        .route(
            "/import-upload",
            put(import_upload).layer(DefaultBodyLimit::disable()),
        )
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
        let chunk = chunk.map_err(|e| ServiceError::invalid("the upload was interrupted", e))?;
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
) -> ApiResult<SweepResult> {
    // Refuse a bad project or path before taking in the bytes.
    let p = path.clone();
    s.with_project(&name, move |_, project| {
        crate::projects::browse::resolve(&project.dir, &p).map(|_| ())
    })
    .await?;
    let received = receive(&s, body).await?;
    s.blocking(move |s| s.place_upload(&name, &path, &received))
        .await
        .map(Json)
}

async fn download(
    State(s): State<Arc<Service>>,
    Path((name, path)): Path<(String, String)>,
) -> Result<Response, ServiceError> {
    let raw = path.clone();
    // Opened beneath the project folder, never through a link; the
    // handle opened there is what is sent.
    let file = s
        .with_project(&name, move |_, project| {
            crate::projects::browse::open_for_download(&project.dir, &raw)
        })
        .await?;
    let file = tokio::fs::File::from_std(file);
    let length = file.metadata().await.map(|m| m.len()).ok();
    let file_name = path.rsplit('/').next().unwrap_or("download");
    Ok(attachment(
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
        file_name,
        length,
    ))
}

/// A download: bytes the browser saves and never renders, under a name
/// that cannot break out of the header.
pub(super) fn attachment(body: Body, file_name: &str, length: Option<u64>) -> Response {
    let mut response = body.into_response();
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

#[derive(serde::Deserialize)]
struct ImportQuery {
    #[serde(default)]
    name: Option<String>,
}

async fn import_upload(
    State(s): State<Arc<Service>>,
    Query(query): Query<ImportQuery>,
    body: Body,
) -> ApiResult<ProjectSummary> {
    let received = receive(&s, body).await?;
    let name = query.name.filter(|n| !n.trim().is_empty());
    s.blocking(move |s| s.import_project(&received, name.as_deref()))
        .await
        .map(Json)
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
