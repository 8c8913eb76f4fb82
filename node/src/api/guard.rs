//! The guard in front of the API and the web UI.
//!
//! Every route needs the node's token: as `Authorization: Bearer` (the CLI),
//! or as a cookie set when a person first opens the URL that `tandem up`
//! printed (`/?token=…`). Requests whose `Host` is not one of the node's own
//! names are refused (DNS rebinding), and state-changing requests that rely
//! on the cookie must come from the node's own origin.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tandem_protocol::api::ApiError;

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

    /// The names the node answers to.
    pub fn allowed_hosts(&self) -> &[String] {
        &self.allowed_hosts
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

/// The middleware: lets a request through, or answers it with a refusal.
pub async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
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
