//! Project containers: JupyterLab on the project folder, bound to loopback,
//! running as the folder's owner. Containers carry labels naming the node
//! and project, so a restarted node finds its own again and two nodes on
//! one engine never touch each other's.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, DeviceRequest, HostConfig, Mount, MountType, PortBinding,
};
use bollard::query_parameters::{ListContainersOptions, StopContainerOptions};

use super::EnvError;
use super::docker::{create_named, engine, remove};

const NODE_LABEL: &str = "tandem.node";
const PROJECT_LABEL: &str = "tandem.project";
const NAME_LABEL: &str = "tandem.project-name";
const TOKEN_LABEL: &str = "tandem.token";
const JUPYTER_PORT: &str = "8888/tcp";
/// How long JupyterLab gets to answer after its container starts.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// What to start.
pub struct LaunchSpec<'a> {
    /// Identifies this node's containers among others on the engine.
    pub node: &'a str,
    pub project_id: &'a str,
    pub project_name: &'a str,
    pub project_dir: &'a Path,
    pub image: &'a str,
    pub gpu: bool,
}

/// A running project container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub container: String,
    pub project_id: String,
    pub project_name: String,
    pub image: String,
    pub port: u16,
    pub token: String,
    pub started_ms: i64,
}

impl Running {
    /// Where JupyterLab answers, without the token.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The URL to open in a browser: it carries the token.
    pub fn lab_url(&self) -> String {
        format!("{}/lab?token={}", self.base_url(), self.token)
    }
}

/// Starts JupyterLab for a project, or returns the container already
/// running it.
pub async fn launch(docker: &Docker, spec: &LaunchSpec<'_>) -> Result<(Running, bool), EnvError> {
    for existing in list(docker, spec.node, true).await? {
        if existing.0.project_id != spec.project_id {
            continue;
        }
        if existing.1 && existing.0.image == spec.image {
            return Ok((existing.0, false));
        }
        // Stopped, or running an older image: replace it.
        remove(docker, &existing.0.container).await?;
    }
    let metadata = std::fs::metadata(spec.project_dir)
        .map_err(|e| EnvError::Docker(format!("reading {}: {e}", spec.project_dir.display())))?;
    let user = format!("{}:{}", metadata.uid(), metadata.gid());
    let token = hex::encode(crate::store::random_bytes::<24>());
    let name = format!(
        "tandem-{}-{}",
        spec.project_name,
        hex::encode(crate::store::random_bytes::<3>())
    );
    let labels = HashMap::from([
        (NODE_LABEL.to_owned(), spec.node.to_owned()),
        (PROJECT_LABEL.to_owned(), spec.project_id.to_owned()),
        (NAME_LABEL.to_owned(), spec.project_name.to_owned()),
        (TOKEN_LABEL.to_owned(), token.clone()),
    ]);
    let cmd = [
        "jupyter",
        "lab",
        "--ip=0.0.0.0",
        "--port=8888",
        "--no-browser",
        &format!("--IdentityProvider.token={token}"),
        "--ServerApp.root_dir=/mnt/project",
        // The host user may be root (a server, CI); the container is theirs.
        "--allow-root",
    ]
    .map(str::to_owned)
    .to_vec();
    let host_config = HostConfig {
        // A mount, not a `binds` string: any character may be in the path.
        mounts: Some(vec![Mount {
            source: Some(absolute(spec.project_dir).display().to_string()),
            target: Some("/mnt/project".to_owned()),
            typ: Some(MountType::BIND),
            ..Default::default()
        }]),
        port_bindings: Some(HashMap::from([(
            JUPYTER_PORT.to_owned(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".to_owned()),
                host_port: Some(String::new()),
            }]),
        )])),
        device_requests: spec.gpu.then(|| {
            vec![DeviceRequest {
                count: Some(-1),
                capabilities: Some(vec![vec!["gpu".to_owned()]]),
                ..Default::default()
            }]
        }),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.to_owned()),
        cmd: Some(cmd),
        user: Some(user),
        labels: Some(labels),
        exposed_ports: Some(vec![JUPYTER_PORT.to_owned()]),
        host_config: Some(host_config),
        ..Default::default()
    };
    create_named(docker, &name, body).await?;
    if let Err(e) = docker.start_container(&name, None).await {
        let _ = remove(docker, &name).await;
        return Err(engine(e));
    }
    let running = match inspect(docker, &name).await? {
        Some((running, true)) => running,
        _ => {
            let log = logs(docker, &name).await;
            let _ = remove(docker, &name).await;
            return Err(EnvError::LaunchFailed { log });
        }
    };
    if let Err(e) = wait_ready(docker, &running).await {
        let _ = remove(docker, &running.container).await;
        return Err(e);
    }
    Ok((running, true))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Polls JupyterLab's status route until it answers.
async fn wait_ready(docker: &Docker, running: &Running) -> Result<(), EnvError> {
    let http = super::docker::loopback_http()?;
    let url = format!("{}/api/status?token={}", running.base_url(), running.token);
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(answer) = http.get(&url).send().await
            && answer.status().is_success()
        {
            return Ok(());
        }
        let alive = matches!(inspect(docker, &running.container).await?, Some((_, true)));
        if !alive || Instant::now() > deadline {
            let log = logs(docker, &running.container).await;
            return Err(EnvError::LaunchFailed { log });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// This node's project containers, with whether each is running. With
/// `all` false, running ones only.
pub async fn list(
    docker: &Docker,
    node: &str,
    all: bool,
) -> Result<Vec<(Running, bool)>, EnvError> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{NODE_LABEL}={node}")])]);
    let summaries = docker
        .list_containers(Some(ListContainersOptions {
            all,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(engine)?;
    let mut out = Vec::new();
    for summary in summaries {
        let Some(id) = summary.id else { continue };
        if let Some(found) = inspect(docker, &id).await? {
            out.push(found);
        }
    }
    Ok(out)
}

/// Reads a container back into a [`Running`], with whether it runs.
async fn inspect(docker: &Docker, container: &str) -> Result<Option<(Running, bool)>, EnvError> {
    let info = match docker.inspect_container(container, None).await {
        Ok(info) => info,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            return Ok(None);
        }
        Err(e) => return Err(engine(e)),
    };
    let config = info.config.unwrap_or_default();
    let labels = config.labels.unwrap_or_default();
    let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
    let state = info.state.unwrap_or_default();
    let running = state.running.unwrap_or(false);
    let port = info
        .network_settings
        .and_then(|n| n.ports)
        .and_then(|ports| ports.get(JUPYTER_PORT).cloned().flatten())
        .and_then(|bindings| {
            bindings
                .into_iter()
                .find_map(|b| b.host_port.and_then(|p| p.parse().ok()))
        })
        .unwrap_or(0);
    let started_ms = state
        .started_at
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.timestamp_millis())
        .unwrap_or(0);
    Ok(Some((
        Running {
            container: info.id.unwrap_or_else(|| container.to_owned()),
            project_id: label(PROJECT_LABEL),
            project_name: label(NAME_LABEL),
            image: config.image.unwrap_or_default(),
            port,
            token: label(TOKEN_LABEL),
            started_ms,
        },
        running && port != 0,
    )))
}

/// Stops a container (JupyterLab gets a few seconds to save) and removes it.
pub async fn stop(docker: &Docker, container: &str) -> Result<(), EnvError> {
    match docker
        .stop_container(
            container,
            Some(StopContainerOptions {
                t: Some(5),
                ..Default::default()
            }),
        )
        .await
    {
        Ok(()) => {}
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304 | 404,
            ..
        }) => {}
        Err(e) => return Err(engine(e)),
    }
    remove(docker, container).await
}

/// The last lines a container printed, for an error message.
async fn logs(docker: &Docker, container: &str) -> Vec<String> {
    super::docker::output(docker, container, Some(30))
        .await
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}
