//! Project containers: JupyterLab on the project folder, bound to loopback,
//! running as the folder's owner. Containers carry labels naming the node
//! and project, so a restarted node finds its own again and two nodes on
//! one engine never touch each other's.
//!
//! Code in the container is the project's, and a project's code comes from
//! every member; so the container cannot reach past the folder's files:
//! `.git` and `.tandem` are mounted read-only over the project (history,
//! repository config, manifest and pointers are the node's to write), it
//! runs directly as the folder's owner with no capabilities and
//! `no-new-privileges`, and a pids and a memory limit keep a runaway cell
//! from taking the host down.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, DeviceRequest, HostConfig, Mount, MountType, PortBinding,
};
use bollard::query_parameters::{ListContainersOptions, StopContainerOptions};

use super::docker::{create_named, engine, remove};
use super::error::EnvError;

const NODE_LABEL: &str = "tandem.node";
const PROJECT_LABEL: &str = "tandem.project";
const NAME_LABEL: &str = "tandem.project-name";
const TOKEN_LABEL: &str = "tandem.token";
/// The confinement a container was started with: containers from before
/// (or with other limits) are replaced, never reused or adopted.
const CONFINEMENT_LABEL: &str = "tandem.confinement";
/// The commit a read-only container on an old version shows; absent on
/// the working tree's container.
const VERSION_LABEL: &str = "tandem.version";
/// Raised whenever the confinement below changes.
const CONFINEMENT: &str = "2";
/// Where the project is inside the container.
const PROJECT_MOUNT: &str = "/mnt/project";
/// Folders of the project the container may read but not write.
const READ_ONLY: [&str; 2] = [".git", ".tandem"];
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
    /// Bytes of memory (swap included) the container may use.
    pub memory: i64,
    /// Processes and threads the container may run.
    pub pids: i64,
    /// A read-only checkout of this commit instead of the working tree
    /// (`project_dir` is then that checkout).
    pub version: Option<&'a str>,
}

impl LaunchSpec<'_> {
    /// What [`CONFINEMENT_LABEL`] holds for this launch.
    fn confinement(&self) -> String {
        format!("{CONFINEMENT};memory={};pids={}", self.memory, self.pids)
    }
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
    /// The confinement label it was started with (empty: before labels).
    pub confinement: String,
    /// The commit it shows read-only, for a container on an old version.
    pub version: Option<String>,
}

impl Running {
    /// Whether it was started with the current read-only mounts and
    /// security options (whatever its limits).
    pub fn confined(&self) -> bool {
        self.confinement.split(';').next() == Some(CONFINEMENT)
    }

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
        if existing.0.project_id != spec.project_id || existing.0.version.as_deref() != spec.version
        {
            continue;
        }
        if existing.1
            && existing.0.image == spec.image
            && existing.0.confinement == spec.confinement()
        {
            return Ok((existing.0, false));
        }
        // Stopped, running an older image, or started with other limits or
        // an older confinement: replace it.
        remove(docker, &existing.0.container).await?;
    }
    let metadata = std::fs::metadata(spec.project_dir)
        .map_err(|e| EnvError::Docker(format!("reading {}: {e}", spec.project_dir.display())))?;
    // Run directly as the folder's owner: no step drops privileges, so the
    // container needs no capability at all.
    let user = format!("{}:{}", metadata.uid(), metadata.gid());
    let mounts = match spec.version {
        Some(_) => vec![read_only_mount(spec.project_dir)?],
        None => mounts(spec.project_dir)?,
    };
    let token = hex::encode(crate::home::random_bytes::<24>());
    let at = spec
        .version
        .map(|v| format!("at-{}-", &v[..v.len().min(7)]))
        .unwrap_or_default();
    let name = format!(
        "tandem-{}-{at}{}",
        spec.project_name,
        hex::encode(crate::home::random_bytes::<3>())
    );
    let mut labels = HashMap::from([
        (NODE_LABEL.to_owned(), spec.node.to_owned()),
        (PROJECT_LABEL.to_owned(), spec.project_id.to_owned()),
        (NAME_LABEL.to_owned(), spec.project_name.to_owned()),
        (TOKEN_LABEL.to_owned(), token.clone()),
        (CONFINEMENT_LABEL.to_owned(), spec.confinement()),
    ]);
    if let Some(version) = spec.version {
        labels.insert(VERSION_LABEL.to_owned(), version.to_owned());
    }
    let cmd = [
        "jupyter",
        "lab",
        "--ip=0.0.0.0",
        "--port=8888",
        "--no-browser",
        &format!("--IdentityProvider.token={token}"),
        &format!("--ServerApp.root_dir={PROJECT_MOUNT}"),
        // The host user may be root (a server, CI); the container is theirs.
        "--allow-root",
    ]
    .map(str::to_owned)
    .to_vec();
    let host_config = HostConfig {
        mounts: Some(mounts),
        security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
        cap_drop: Some(vec!["ALL".to_owned()]),
        pids_limit: Some(spec.pids),
        memory: Some(spec.memory),
        // Swap counts towards the limit, so it limits.
        memory_swap: Some(spec.memory),
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

/// The project read-write, then `.git` and `.tandem` read-only over it (the
/// engine mounts in order, so the nested mounts come after their parent).
/// Mounts, not `binds` strings: any character may be in the path. Each
/// source must be a real folder: the engine would follow a symlink and
/// mount whatever it names.
fn mounts(project_dir: &Path) -> Result<Vec<Mount>, EnvError> {
    let root = absolute(project_dir);
    let mut mounts = vec![Mount {
        source: Some(root.display().to_string()),
        target: Some(PROJECT_MOUNT.to_owned()),
        typ: Some(MountType::BIND),
        ..Default::default()
    }];
    for name in READ_ONLY {
        let source = root.join(name);
        let unsafe_mount = |what| EnvError::UnsafeMount {
            path: source.clone(),
            what,
        };
        match std::fs::symlink_metadata(&source) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(unsafe_mount("a symbolic link"));
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(unsafe_mount("not a folder")),
            Err(_) => return Err(unsafe_mount("missing")),
        }
        mounts.push(Mount {
            source: Some(source.display().to_string()),
            target: Some(format!("{PROJECT_MOUNT}/{name}")),
            typ: Some(MountType::BIND),
            read_only: Some(true),
            ..Default::default()
        });
    }
    Ok(mounts)
}

/// A version's checkout, all of it read-only: nothing run on an old
/// version can change it.
fn read_only_mount(checkout: &Path) -> Result<Mount, EnvError> {
    let root = absolute(checkout);
    match std::fs::symlink_metadata(&root) {
        Ok(meta) if meta.is_dir() => {}
        _ => {
            return Err(EnvError::UnsafeMount {
                path: root,
                what: "not a folder",
            });
        }
    }
    Ok(Mount {
        source: Some(root.display().to_string()),
        target: Some(PROJECT_MOUNT.to_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(true),
        ..Default::default()
    })
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
            confinement: label(CONFINEMENT_LABEL),
            version: labels.get(VERSION_LABEL).cloned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_and_tandem_are_mounted_read_only_after_the_project() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".git")).expect("mkdir");
        std::fs::create_dir(dir.path().join(".tandem")).expect("mkdir");
        let mounts = mounts(dir.path()).expect("mounts");
        let targets: Vec<(&str, bool)> = mounts
            .iter()
            .map(|m| {
                (
                    m.target.as_deref().unwrap_or_default(),
                    m.read_only.unwrap_or(false),
                )
            })
            .collect();
        assert_eq!(
            targets,
            [
                ("/mnt/project", false),
                ("/mnt/project/.git", true),
                ("/mnt/project/.tandem", true)
            ]
        );
    }

    #[test]
    fn a_linked_or_missing_git_folder_is_not_mounted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".tandem")).expect("mkdir");
        let err = mounts(dir.path()).expect_err("missing");
        assert!(err.to_string().contains(".git is missing"), "{err}");
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(".git")).expect("link");
        let err = mounts(dir.path()).expect_err("link");
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}
