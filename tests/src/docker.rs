//! What the tests that need the real Docker engine share: a check that it
//! runs (they fail, never skip, without one), a guard that removes a node's
//! containers whatever happens, and a started node with the Debian base
//! bootstrapped.

use std::process::Command;

use crate::TestNode;
use crate::jupyter::Jupyter;

/// Panics, saying why, unless a Docker engine answers.
pub fn docker_is_running() {
    let answer = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match answer {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "these tests need a running Docker engine: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("these tests need Docker (the docker command failed: {e})"),
    }
}

pub fn image_exists(tag: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", tag])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `docker ARGS`, which must succeed; its standard output, trimmed.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes the node's containers whatever happens to the test.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=tandem.node={}", self.0),
            ])
            .output();
        if let Ok(ids) = ids {
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
    }
}

/// A started node with the Debian base bootstrapped; its containers go
/// when the guard drops.
pub fn docker_node(name: &str) -> (TestNode, Cleanup) {
    docker_is_running();
    let mut node = TestNode::with_identity(name);
    node.run(&["bases", "bootstrap"])
        .expect_ok("bootstrap the Debian image");
    node.start();
    let cleanup = Cleanup(node.did());
    (node, cleanup)
}

/// A project on `base` whose syncs the test drives itself.
pub fn quiet_env_project(node: &TestNode, project: &str, base: &str) {
    node.run(&["project", "create", project, "--base", base])
        .expect_ok("create");
    node.run(&["sync", project, "--auto", "off"])
        .expect_ok("auto off");
}

/// The JupyterLab a `launch --json` answer names.
pub fn jupyter_of(view: &serde_json::Value) -> Jupyter {
    Jupyter::from_url(view["url"].as_str().expect("url"))
}

/// The project's activity entries of one kind.
pub fn entries(node: &TestNode, project: &str, kind: &str) -> Vec<serde_json::Value> {
    node.run(&["activity", project, "--kind", kind, "--json"])
        .expect_ok("activity")
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}
