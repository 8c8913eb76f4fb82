//! How the CLI reaches a node: over HTTP when `tandem up` is running for the
//! home, otherwise by serving the same API in-process while holding the
//! home's lock. Either way every command goes through the one API, so the
//! CLI and a running node can never write the same state at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tandem_protocol::api::ApiError;
use tower::ServiceExt;

use crate::api::{Guard, app};
use crate::error::ServiceError;
use crate::home::{Home, HomeLock, RuntimeInfo, StoreError, random_bytes};
use crate::service::Service;

/// How long a CLI command waits for another one to release the home.
const LOCK_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error meant for the user.
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("cannot reach the node at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("unexpected answer from the node: {0}")]
    Decode(String),
}

pub enum Client {
    Remote {
        url: String,
        token: String,
        http: reqwest::Client,
    },
    Local {
        app: Router,
        token: String,
        service: Arc<Service>,
        _lock: HomeLock,
    },
}

async fn running_node(home: &Home) -> Option<(RuntimeInfo, reqwest::Client)> {
    let info = home.read_runtime()?;
    // iroh turns on reqwest's TLS without a crypto provider; the node only
    // speaks plain HTTP to itself, but reqwest insists on one being set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .connect_timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .ok()?;
    let answer = http
        .get(format!("{}/api/health", info.url))
        .bearer_auth(&info.token)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    answer.status().is_success().then_some((info, http))
}

impl Client {
    /// Connects to the running node, or opens the home in-process.
    pub async fn connect(home: &Home) -> Result<Self, ClientError> {
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            if let Some((info, http)) = running_node(home).await {
                return Ok(Client::Remote {
                    url: info.url,
                    token: info.token,
                    http,
                });
            }
            match home.lock(Duration::ZERO) {
                Ok(lock) => {
                    let home = home.clone();
                    let service = tokio::task::spawn_blocking(move || Service::open(home))
                        .await
                        .map_err(|e| ClientError::Decode(e.to_string()))??;
                    let service = Arc::new(service);
                    let token = hex::encode(random_bytes::<32>());
                    let app = app(service.clone(), Guard::new(token.clone(), 0));
                    return Ok(Client::Local {
                        app,
                        token,
                        service,
                        _lock: lock,
                    });
                }
                Err(StoreError::Busy(path)) if Instant::now() >= deadline => {
                    return Err(StoreError::Busy(path).into());
                }
                Err(StoreError::Busy(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, Client::Remote { .. })
    }

    /// The in-process service, when there is no running node.
    pub fn local_service(&self) -> Option<&Arc<Service>> {
        match self {
            Client::Local { service, .. } => Some(service),
            Client::Remote { .. } => None,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Vec<u8>), ClientError> {
        match self {
            Client::Remote { url, token, http } => {
                let mut request = http
                    .request(method, format!("{url}{path}"))
                    .bearer_auth(token);
                if let Some(body) = body {
                    request = request
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(body);
                }
                let response = request.send().await.map_err(|e| ClientError::Unreachable {
                    url: url.clone(),
                    message: e.to_string(),
                })?;
                let status = response.status();
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| ClientError::Unreachable {
                        url: url.clone(),
                        message: e.to_string(),
                    })?;
                Ok((
                    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
                    bytes.to_vec(),
                ))
            }
            Client::Local { app, token, .. } => {
                let request = Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::HOST, "tandem.local")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.map(Body::from).unwrap_or_else(Body::empty))
                    .map_err(|e| ClientError::Decode(e.to_string()))?;
                let response = app
                    .clone()
                    .oneshot(request)
                    .await
                    .map_err(|e| ClientError::Decode(e.to_string()))?;
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .map_err(|e| ClientError::Decode(e.to_string()))?;
                Ok((status, bytes.to_vec()))
            }
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.send(method, path, body).await?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ApiError>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ClientError::Api {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.call(Method::PUT, path, Some(body)).await
    }
}
