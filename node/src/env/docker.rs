//! Reaching the Docker engine, with an error that tells a person what to do
//! when it is not running.

use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, LogsOptions, RemoveContainerOptions};
use futures::StreamExt;

use super::error::EnvError;

/// How long the engine gets to answer a ping before we call it absent.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the local engine (`DOCKER_HOST` or the default socket) and
/// checks that it answers.
pub async fn connect() -> Result<Docker, EnvError> {
    let address =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let unavailable = |detail: String| EnvError::DockerUnavailable {
        address: address.clone(),
        detail,
    };
    let docker = Docker::connect_with_local_defaults().map_err(|e| unavailable(e.to_string()))?;
    match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
        Ok(Ok(_)) => Ok(docker),
        Ok(Err(e)) => Err(unavailable(e.to_string())),
        Err(_) => Err(unavailable(format!(
            "no answer within {}s",
            PING_TIMEOUT.as_secs()
        ))),
    }
}

/// Whether an image (by tag or id) is in the local engine.
pub async fn image_id(docker: &Docker, image: &str) -> Result<Option<String>, EnvError> {
    match docker.inspect_image(image).await {
        Ok(info) => Ok(info.id),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(EnvError::Docker(e.to_string())),
    }
}

/// An error from the engine, worded for the user.
pub fn engine(e: bollard::errors::Error) -> EnvError {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            EnvError::Docker(message)
        }
        other => EnvError::Docker(other.to_string()),
    }
}

/// An HTTP client for JupyterLab on loopback: no proxy, short timeouts.
pub fn loopback_http() -> Result<reqwest::Client, EnvError> {
    // iroh turns on reqwest's TLS without a crypto provider; plain HTTP
    // still needs one installed before a client is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| EnvError::Docker(format!("cannot make an HTTP client: {e}")))
}

/// Creates a container under a name of our choosing.
pub async fn create_named(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> Result<(), EnvError> {
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_owned()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map(|_| ())
        .map_err(engine)
}

/// Removes a container, running or not; one already gone is fine.
pub async fn remove(docker: &Docker, container: &str) -> Result<(), EnvError> {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    match docker.remove_container(container, Some(options)).await {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => Ok(()),
        Err(e) => Err(engine(e)),
    }
}

/// What a container printed (the last `tail` lines, or all).
pub async fn output(
    docker: &Docker,
    container: &str,
    tail: Option<usize>,
) -> Result<String, EnvError> {
    let mut stream = docker.logs(
        container,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_owned(), |n| n.to_string()),
            ..Default::default()
        }),
    );
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        text.push_str(&item.map_err(engine)?.to_string());
    }
    Ok(text)
}
