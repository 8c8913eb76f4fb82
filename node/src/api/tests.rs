//! The whole application in-process: whose fault an error is decides its
//! status, the same on the JSON API and on the web UI's pages, and a node
//! fault is logged.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::{Guard, app};
use crate::home::random_bytes;

/// A node's home and its application, with no network: what the CLI
/// runs in-process when no node is up.
struct Node {
    dir: tempfile::TempDir,
    app: Router,
    token: String,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("home folder");
        let service = crate::testkit::open_service(dir.path(), "Ada");
        let token = hex::encode(random_bytes::<32>());
        let app = app(service, Guard::new(token.clone(), 0));
        Self { dir, app, token }
    }

    async fn send(&self, method: &str, path: &str, body: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "tandem.local")
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .expect("request");
        let response = self.app.clone().oneshot(request).await.expect("answered");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        self.send("GET", path, "").await
    }
}

/// Log lines written while the guard returned by [`capture_logs`] lives,
/// on this thread (the tests run on a current-thread runtime).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (logs, guard)
}

#[tokio::test]
async fn user_faults_answer_as_they_always_did_on_both_sides() {
    let node = Node::new();
    let (logs, _guard) = capture_logs();
    let (status, body) = node.get("/api/projects/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("no project named \\\"nowhere\\\""), "{body}");
    let (status, page) = node.get("/p/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    assert!(page.contains("no project named"), "{page}");

    let (status, body) = node
        .send("POST", "/api/projects", r#"{"name":"lab"}"#)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = node
        .send("POST", "/api/projects", r#"{"name":"lab"}"#)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = node
        .send("POST", "/api/projects", r#"{"name":"../lab"}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = node
        .send(
            "POST",
            "/api/projects/lab/fetch",
            r#"{"paths":["input/../../x"]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("climbs out of its folder"), "{body}");
    assert!(
        !logs.text().contains("request failed"),
        "a user's fault is not the node's: {}",
        logs.text()
    );
}

#[tokio::test]
async fn without_the_network_the_api_and_the_pages_say_unavailable() {
    let node = Node::new();
    let (status, body) = node.get("/api/peers").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("this needs the running node: start it with `tandem up`"),
        "{body}"
    );
    let (status, page) = node.get("/peers").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(page.contains("this needs the running node"), "{page}");
}

#[tokio::test]
async fn a_node_fault_answers_500_and_is_logged() {
    let node = Node::new();
    // Uploads are received in the home's tmp folder; make it unusable.
    let tmp = node.dir.path().join("tmp");
    std::fs::remove_dir_all(&tmp).expect("remove tmp");
    std::fs::write(&tmp, "not a folder").expect("block tmp");
    let (logs, _guard) = capture_logs();
    let (status, body) = node.send("PUT", "/api/import-upload", "PK").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("creating the temporary folder"), "{body}");
    let logged = logs.text();
    assert!(
        logged.contains("ERROR") && logged.contains("request failed"),
        "{logged}"
    );
    assert!(logged.contains("creating the temporary folder"), "{logged}");

    // A folder among the projects that is none: the same status on a page.
    std::fs::create_dir_all(node.dir.path().join("projects/stray")).expect("stray folder");
    let (status, body) = node.get("/api/projects/stray").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let (status, page) = node.get("/p/stray").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{page}");
    assert!(page.contains("is not a Tandem project"), "{page}");
}
