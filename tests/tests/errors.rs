//! Whose fault an error is, through a real `tandem up`: the user's (400,
//! 404, 409, as they always were), something the node needs being away
//! (503: Docker here), or the node's own (500, and logged).

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tandem_e2e::{TestNode, wait_for};

/// Starts `node` with Docker pointed at a socket nobody listens on, and
/// its log (stderr) going to a file; returns the log's path.
fn start_without_docker(node: &mut TestNode) -> std::path::PathBuf {
    let log = node.home().join("stderr.log");
    let closed = node.home().join("no-docker.sock");
    let base = node.command();
    // `sh` only redirects the node's stderr, then becomes the node.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("exec \"$0\" \"$@\" 2>>\"$TANDEM_TEST_STDERR\"")
        .arg(base.get_program())
        .args(base.get_args());
    for (key, value) in base.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
        .env("TANDEM_TEST_STDERR", &log)
        .env("DOCKER_HOST", format!("unix://{}", closed.display()))
        .stdin(std::process::Stdio::null());
    node.start_command(
        command,
        &[
            "--p2p-listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--no-dht",
        ],
    );
    log
}

#[test]
fn faults_are_told_apart_and_node_faults_are_logged() {
    let mut node = TestNode::with_identity("Ada");
    let log = start_without_docker(&mut node);
    let bearer = format!("Bearer {}", node.token.clone().expect("token"));
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    node.api_post("/api/projects", &json!({ "name": "lab" }));

    // The user's faults, as before.
    let (status, body) = node.http("GET", "/api/projects/nowhere", &auth, "");
    assert_eq!(status, 404, "{body}");
    let (status, body) = node.http(
        "POST",
        "/api/projects",
        &auth,
        &json!({ "name": "lab" }).to_string(),
    );
    assert_eq!(status, 409, "{body}");
    let (status, body) = node.http(
        "POST",
        "/api/projects/lab/env/packages",
        &auth,
        &json!({ "manager": "pip", "packages": [] }).to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("name at least one package"), "{body}");

    // Docker away: unavailable, not the node's fault.
    for (method, path) in [
        ("GET", "/api/containers"),
        ("POST", "/api/projects/lab/build"),
    ] {
        let (status, body) = node.http(method, path, &auth, "{}");
        assert_eq!(status, 503, "{method} {path}: {body}");
        assert!(
            body.contains("Docker is not running or cannot be reached"),
            "{body}"
        );
    }
    // The environment page still opens, and says what is wrong.
    let (status, page) = node.http("GET", "/p/lab/env", &auth[..1], "");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Docker is not running"), "{page}");

    // The node's own fault: 500, and in its log.
    let tmp = node.home().join("tmp");
    std::fs::remove_dir_all(&tmp).expect("remove tmp");
    std::fs::write(&tmp, "not a folder").expect("block tmp");
    let (status, body) = node.http("PUT", "/api/import-upload", &auth[..1], "PK");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("creating the temporary folder"), "{body}");
    let logged = wait_for(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("request failed").then_some(text)
    });
    let logged = logged.unwrap_or_else(|| std::fs::read_to_string(&log).unwrap_or_default());
    assert!(
        logged.contains("request failed") && logged.contains("creating the temporary folder"),
        "the node logs its own fault: {logged}"
    );
    assert!(
        !logged
            .lines()
            .any(|line| line.contains("ERROR") && line.contains("Docker")),
        "Docker being away is not logged as the node's fault: {logged}"
    );
}
