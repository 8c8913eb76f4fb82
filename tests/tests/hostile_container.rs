//! The container boundary: code in a project's JupyterLab is anyone's who
//! can write the project, so it must not reach past the project's files.
//!
//! - a cell cannot write `.git` (where `core.worktree` would make the next
//!   sweep commit host files and sync them to every member) nor `.tandem`;
//! - config planted in `.git/config` on the host (by a container from
//!   before) is not obeyed: the sweep refuses and names the key;
//! - the container runs with `no-new-privileges`, no capabilities, and the
//!   pids and memory limits the project sets;
//! - a Dockerfile snippet that arrived from a peer is not built or launched
//!   until this node's user accepts the lines they were shown;
//! - the drift check runs what the container calls `python3`: a flood or
//!   a hang in its place is read no further than the bounds, reported,
//!   and never makes the packages look removed.
//!
//! These tests need Docker. They never skip: without an engine they fail,
//! saying so.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tandem_e2e::docker::{Cleanup, docker_is_running, docker_node, jupyter_of, quiet_env_project};
use tandem_e2e::jupyter::Jupyter;
use tandem_e2e::{TestNode, git, wait_for};

fn inspect(container: &str) -> serde_json::Value {
    let out = Command::new("docker")
        .args(["inspect", container])
        .output()
        .expect("docker inspect");
    assert!(out.status.success(), "docker inspect {container}");
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    all[0].clone()
}

fn tracked(dir: &Path) -> String {
    git(dir, &["ls-tree", "-r", "--name-only", "HEAD"])
}

/// Runs `code` in a fresh kernel of the JupyterLab `view` describes and
/// returns what it printed.
fn run_cell(view: &serde_json::Value, code: &str) -> String {
    let jupyter = Jupyter::from_url(view["url"].as_str().expect("url"));
    let kernel = jupyter.start_kernel();
    let reply = jupyter.execute(&kernel, code);
    assert_eq!(reply.status, "ok", "{reply:?}");
    reply.stdout
}

const ATTACK: &str = r##"
import errno, os
def attempt(action):
    try:
        action()
        return "written"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def append(path, text):
    with open(path, "a") as f:
        f.write(text)
# What `git config core.worktree /tmp/x` writes (the base has no git).
print("git-config", attempt(lambda: append(".git/config", "[core]\n\tworktree = /tmp/x\n")))
print("git-hook", attempt(lambda: append(".git/hooks/post-checkout", "#!/bin/sh\ntouch /tmp/pwned\n")))
print("git-ref", attempt(lambda: append(".git/refs/heads/evil", "0" * 40 + "\n")))
print("git-rename", attempt(lambda: os.rename(".git", "moved-git")))
print("tandem-manifest", attempt(lambda: append(".tandem/project.toml", "\n")))
# Lifting its own limits, or adding a snippet for the next build.
print("tandem-limits", attempt(lambda: append(".tandem/env/limits.toml", "pids = 1000000\n")))
print("tandem-mkdir", attempt(lambda: os.makedirs(".tandem/env/snippets")))
print("tandem-rename", attempt(lambda: os.rename(".tandem", "moved-tandem")))
print("code", attempt(lambda: append("code/ok.txt", "fine\n")))
for line in open("/proc/self/status"):
    if line.startswith(("NoNewPrivs", "CapEff", "CapPrm")):
        print(line.strip().replace("\t", " "))
"##;

#[test]
fn a_cell_cannot_write_git_or_tandem_and_planted_config_is_not_obeyed() {
    docker_is_running();
    let mut ada = TestNode::with_identity("Ada");
    ada.run(&["bases", "bootstrap"])
        .expect_ok("bootstrap the Debian image");
    ada.start();
    let _cleanup = Cleanup(ada.did());
    ada.run(&["project", "create", "lab"]).expect_ok("create");
    ada.run(&["sync", "lab", "--auto", "off"])
        .expect_ok("auto off");
    let dir = ada.project_dir("lab");
    let manifest = std::fs::read(dir.join(".tandem/project.toml")).expect("manifest");
    let launched = ada
        .run(&["launch", "lab", "--json"])
        .expect_ok("launch")
        .json();

    // The cell tries what a hostile notebook would.
    let printed = run_cell(&launched, ATTACK);
    let result = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not reported: {printed}"))
            .to_owned()
    };
    for name in [
        "git-config",
        "git-hook",
        "git-ref",
        "tandem-manifest",
        "tandem-limits",
        "tandem-mkdir",
    ] {
        assert_eq!(
            result(name),
            "EROFS",
            "{name} from the container: {printed}"
        );
    }
    // Mount points cannot be moved away to put a writable copy in place.
    assert_eq!(result("git-rename"), "EBUSY", "{printed}");
    assert_eq!(result("tandem-rename"), "EBUSY", "{printed}");
    // The project's own files stay the cell's to write.
    assert_eq!(result("code"), "written", "{printed}");
    assert_eq!(
        std::fs::read_to_string(dir.join("code/ok.txt")).expect("written on the host"),
        "fine\n"
    );
    assert!(printed.contains("NoNewPrivs: 1"), "{printed}");
    assert!(printed.contains("CapEff: 0000000000000000"), "{printed}");
    assert!(printed.contains("CapPrm: 0000000000000000"), "{printed}");
    let config = std::fs::read_to_string(dir.join(".git/config")).expect("config");
    assert!(!config.contains("worktree"), "{config}");
    assert!(!dir.join(".git/hooks/post-checkout").exists());
    assert!(dir.join(".git").is_dir() && !dir.join("moved-git").exists());
    assert_eq!(
        std::fs::read(dir.join(".tandem/project.toml")).expect("manifest"),
        manifest
    );

    // A container from before could write `.git/config`: plant what it
    // would have, pointing the work tree at a host folder with a secret.
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("secret.txt"), "host secret\n").expect("secret");
    std::fs::create_dir_all(outside.path().join("code")).expect("mkdir");
    std::fs::write(outside.path().join("code/stolen.py"), "key = 1\n").expect("write");
    let target = outside.path().to_str().expect("utf-8 path").to_owned();
    git(&dir, &["config", "core.worktree", &target]);
    // Such a container, started by a node from before (no confinement
    // label, `.git` writable), is not adopted by a restarted node: it is
    // stopped, so its code cannot go on writing `.git`.
    let old = Command::new("docker")
        .args(["run", "-d", "-p", "127.0.0.1::8888"])
        .args(["--label", &format!("tandem.node={}", ada.did())])
        .args([
            "--label",
            &format!("tandem.project={}", ada.project_id("lab")),
        ])
        .args(["--label", "tandem.project-name=lab"])
        .args(["--label", "tandem.token=old"])
        .arg("--mount")
        .arg(format!("type=bind,src={},dst=/mnt/project", dir.display()))
        .arg(launched["image"].as_str().expect("image"))
        .args(["sleep", "600"])
        .output()
        .expect("docker run");
    assert!(old.status.success(), "{old:?}");
    let old = String::from_utf8_lossy(&old.stdout).trim().to_owned();
    // A restarted node opens the project afresh (and sweeps at start-up).
    ada.kill();
    ada.start();
    let stopped = wait_for(Duration::from_secs(30), || {
        let out = Command::new("docker")
            .args(["ps", "-q", "--no-trunc", "--filter", &format!("id={old}")])
            .output()
            .expect("docker ps");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .is_empty()
            .then_some(())
    });
    assert!(stopped.is_some(), "the unconfined container was stopped");
    let ps = ada.run(&["ps", "--json"]).expect_ok("ps").json();
    assert_eq!(ps[0]["container"], launched["container"], "{ps}");
    let refused = ada
        .run(&["sweep", "lab"])
        .expect_err("the sweep refuses the planted config", "core.worktree");
    assert!(refused.stderr.contains(&target), "{}", refused.stderr);
    let files = tracked(&dir);
    assert!(
        !files.contains("secret.txt") && !files.contains("stolen.py"),
        "host files were committed: {files}"
    );
    assert!(
        files.contains("README.md"),
        "the project's files are still there: {files}"
    );
    // Config that would run programs on the host is refused the same way.
    git(&dir, &["config", "--unset", "core.worktree"]);
    git(
        &dir,
        &["config", "core.fsmonitor", "touch /tmp/tandem-pwned"],
    );
    ada.run(&["sweep", "lab"])
        .expect_err("fsmonitor refused", "core.fsmonitor");
    git(&dir, &["config", "--unset", "core.fsmonitor"]);
    // Clean again: the sweep records the cell's file from the project.
    ada.run(&["sweep", "lab"]).expect_ok("sweep");
    let files = tracked(&dir);
    assert!(files.contains("code/ok.txt"), "{files}");
    assert!(!files.contains("secret.txt"), "{files}");

    // The engine confirms the confinement, with the default limits.
    let info = inspect(launched["container"].as_str().expect("container"));
    let host = &info["HostConfig"];
    let security = host["SecurityOpt"].to_string();
    assert!(security.contains("no-new-privileges"), "{security}");
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]), "{host}");
    assert!(
        host["CapAdd"].is_null() || host["CapAdd"] == serde_json::json!([]),
        "{host}"
    );
    assert_eq!(host["Privileged"], false);
    assert_eq!(host["PidsLimit"], 4096, "{host}");
    assert!(host["Memory"].as_i64().unwrap_or(0) > 0, "{host}");
    let mounts = info["Mounts"].as_array().expect("mounts").clone();
    for (target, writable) in [
        ("/mnt/project", true),
        ("/mnt/project/.git", false),
        ("/mnt/project/.tandem", false),
    ] {
        let mount = mounts
            .iter()
            .find(|m| m["Destination"] == target)
            .unwrap_or_else(|| panic!("{target} mounted: {mounts:?}"));
        assert_eq!(mount["RW"], writable, "{target}: {mount}");
    }

    // The project sets its own limits; nonsense is refused by name.
    ada.run(&["env", "limits", "lab", "--memory", "12 parsecs"])
        .expect_err("bad unit", "memory");
    ada.run(&["env", "limits", "lab", "--memory", "1MiB"])
        .expect_err("too little", "at least 256 MiB");
    ada.run(&["env", "limits", "lab", "--pids", "3"])
        .expect_err("too few", "between 64");
    ada.run(&["env", "limits", "lab", "--memory", "1GiB", "--pids", "512"])
        .expect_ok("set limits");
    assert!(tracked(&dir).contains(".tandem/env/limits.toml"));
    let shown = ada.run(&["env", "limits", "lab"]).expect_ok("show limits");
    assert!(
        shown.stdout.contains("1 GiB") && shown.stdout.contains("512"),
        "{}",
        shown.stdout
    );
    // Launching again replaces the container with one under the new limits.
    let relaunched = ada
        .run(&["launch", "lab", "--json"])
        .expect_ok("relaunch")
        .json();
    assert_eq!(relaunched["started_now"], true, "{relaunched}");
    let host = inspect(relaunched["container"].as_str().expect("container"))["HostConfig"].clone();
    assert_eq!(host["Memory"], 1 << 30, "{host}");
    assert_eq!(host["MemorySwap"], 1 << 30, "{host}");
    assert_eq!(host["PidsLimit"], 512, "{host}");
    // A fork bomb stops at the limit instead of taking the host down.
    let printed = run_cell(
        &relaunched,
        r#"
import subprocess
children, refused = [], None
try:
    for _ in range(2000):
        children.append(subprocess.Popen(["sleep", "30"]))
except OSError as e:
    refused = e.errno
print("started", len(children), "refused", refused)
for c in children:
    c.kill()
"#,
    );
    let started: usize = printed
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{printed}"));
    assert!(started < 512, "{printed}");
    assert!(
        printed.contains("refused 11"),
        "EAGAIN at the limit: {printed}"
    );
}

#[test]
fn a_snippet_from_a_peer_is_built_only_once_accepted() {
    docker_is_running();
    let mut ada = TestNode::with_identity("Ada");
    ada.run(&["bases", "bootstrap"])
        .expect_ok("bootstrap the Debian image");
    ada.start();
    let _cleanup = Cleanup(ada.did());
    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    ada.run(&["project", "create", "lab"]).expect_ok("create");
    ada.run(&["sync", "lab", "--auto", "off"])
        .expect_ok("auto off");
    ada.run(&["share", "lab", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    bob.run(&["project", "clone", &ada.project_id("lab")])
        .expect_ok("clone");
    bob.run(&["sync", "lab", "--auto", "off"])
        .expect_ok("auto off");

    // Bob adds a snippet: his own, so accepted on his node.
    let lines = bob.home().join("tools.docker");
    std::fs::write(&lines, "RUN echo bob-was-here > /etc/bob\n").expect("snippet");
    bob.run(&[
        "env",
        "snippet",
        "add",
        "lab",
        lines.to_str().expect("path"),
    ])
    .expect_ok("bob's snippet");
    let bobs = bob
        .run(&["env", "show", "lab", "--json"])
        .expect_ok("show")
        .json();
    assert_eq!(bobs["snippets"][0]["accepted"], true, "{bobs}");

    // It reaches Ada by sync; her node shows it and builds nothing.
    let dir = ada.project_dir("lab");
    let arrived = wait_for(Duration::from_secs(30), || {
        ada.run(&["sync", "lab"]).expect_ok("sync");
        dir.join(".tandem/env/snippets/tools.toml")
            .is_file()
            .then_some(())
    });
    assert!(arrived.is_some(), "Bob's snippet reached Ada");
    let env = ada
        .run(&["env", "show", "lab", "--json"])
        .expect_ok("show")
        .json();
    assert_eq!(env["snippets"][0]["accepted"], false, "{env}");
    let shown = ada.run(&["env", "show", "lab"]).expect_ok("show");
    assert!(shown.stdout.contains("not accepted"), "{}", shown.stdout);
    for command in ["build", "launch"] {
        let refused = ada
            .run(&[command, "lab"])
            .expect_err("unaccepted snippet", "not accepted");
        assert!(
            refused.stderr.contains("snippet tools")
                && refused.stderr.contains("echo bob-was-here > /etc/bob")
                && refused
                    .stderr
                    .contains("tandem env snippet accept lab tools"),
            "{command}: {}",
            refused.stderr
        );
    }
    assert_eq!(
        ada.run(&["ps", "--json"]).expect_ok("ps").json(),
        serde_json::json!([]),
        "nothing was launched"
    );

    // The web UI's Environment page shows the lines and an Accept button
    // that carries the hash of exactly those lines.
    let cookie = format!("tandem_token={}", ada.token.as_deref().expect("token"));
    let (status, page) = ada.http("GET", "/p/lab/env", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Accept these lines"), "{page}");
    assert!(page.contains("echo bob-was-here &gt; /etc/bob"), "{page}");
    let hash = env["snippets"][0]["hash"]
        .as_str()
        .expect("hash")
        .to_owned();
    assert!(page.contains(&hash), "the button names the lines shown");
    // Accepting other lines than the current ones is refused.
    let bearer = format!("Bearer {}", ada.token.as_deref().expect("token"));
    let (status, body) = ada.http(
        "POST",
        "/api/projects/lab/env/snippets/tools/accept",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        &serde_json::json!({ "hash": "0".repeat(64) }).to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not the one you were shown"), "{body}");

    // Accepted on the CLI: the lines are printed and the build runs them.
    let accepted = ada
        .run(&["env", "snippet", "accept", "lab", "tools"])
        .expect_ok("accept");
    assert!(
        accepted.stdout.contains("echo bob-was-here"),
        "{}",
        accepted.stdout
    );
    let built = ada
        .run(&["build", "lab", "--json"])
        .expect_ok("build once accepted")
        .json();
    assert!(
        built["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("tandem-env:"))
    );
    // Nothing about acceptance is in the project: it is this node's.
    assert!(!tracked(&dir).contains("accept"), "{}", tracked(&dir));

    // Bob changes the lines: accepted were the old ones, so Ada's node
    // refuses again until she accepts the new ones.
    std::fs::write(&lines, "RUN echo changed-by-bob > /etc/bob\n").expect("snippet");
    bob.run(&[
        "env",
        "snippet",
        "add",
        "lab",
        lines.to_str().expect("path"),
    ])
    .expect_ok("bob changes his snippet");
    let changed = wait_for(Duration::from_secs(30), || {
        ada.run(&["sync", "lab"]).expect_ok("sync");
        std::fs::read_to_string(dir.join(".tandem/env/snippets/tools.toml"))
            .ok()
            .filter(|t| t.contains("changed-by-bob"))
    });
    assert!(changed.is_some(), "the change reached Ada");
    ada.run(&["build", "lab"])
        .expect_err("changed lines", "changed-by-bob");
    // The button for the new lines works like the CLI.
    let env = ada
        .run(&["env", "show", "lab", "--json"])
        .expect_ok("show")
        .json();
    let answer = ada.api_post(
        "/api/projects/lab/env/snippets/tools/accept",
        &serde_json::json!({ "hash": env["snippets"][0]["hash"] }),
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Accepted"),
        "{answer}"
    );
    ada.run(&["build", "lab"])
        .expect_ok("build the accepted lines");

    // Ada's own snippets need no acceptance.
    let mine = ada.home().join("mine.docker");
    std::fs::write(&mine, "ENV ADA_WAS_HERE=1\n").expect("snippet");
    ada.run(&["env", "snippet", "add", "lab", mine.to_str().expect("path")])
        .expect_ok("own snippet");
    ada.run(&["build", "lab"]).expect_ok("own snippet builds");
}

/// Replaces the venv's `python3` (the container's user may: the venv is
/// theirs so `%pip install` works) with `script`, and touches
/// `site-packages` so the next drift check lists again.
fn plant_python(jupyter: &Jupyter, kernel: &str, script: &str) {
    let code = format!(
        "import os, sysconfig, time\n\
         fake = '/opt/venv/bin/python3'\n\
         os.remove(fake)\n\
         open(fake, 'w').write({script:?})\n\
         os.chmod(fake, 0o755)\n\
         purelib = sysconfig.get_paths()['purelib']\n\
         open(os.path.join(purelib, 'touched-%d' % time.time_ns()), 'w').write('x')\n"
    );
    let reply = jupyter.execute(kernel, &code);
    assert_eq!(reply.status, "ok", "{reply:?}");
}

#[test]
fn a_container_that_floods_or_stalls_the_drift_listing_is_reported_not_obeyed() {
    let (node, _cleanup) = docker_node("Ada");
    quiet_env_project(&node, "listing", "python3-minimal");
    let view = node
        .run(&["launch", "listing", "--json"])
        .expect_ok("launch")
        .json();
    let jupyter = jupyter_of(&view);
    let kernel = jupyter.start_kernel();
    let drift = || {
        node.run(&["env", "drift", "listing", "--json"])
            .expect_ok("env drift")
            .json()
    };
    let first = jupyter.execute(&kernel, "x = 1");
    assert_eq!(first.status, "ok");
    wait_for(Duration::from_secs(30), || drift()["checked_ms"].as_i64()).expect("a first check");

    // 8 MB of listing: read to 4 MiB, judged on nothing, said so.
    plant_python(
        &jupyter,
        &kernel,
        "#!/bin/sh\nyes 'pip\tflood\t1.0' | head -c 8000000\n",
    );
    let flooded = wait_for(Duration::from_secs(60), || {
        let report = drift();
        report["problem"]
            .as_str()
            .is_some_and(|p| p.contains("more packages than tandem reads"))
            .then_some(report)
    })
    .unwrap_or_else(|| panic!("the flood reported: {}", drift()));
    assert_eq!(flooded["items"], serde_json::json!([]), "{flooded}");

    // A python3 that never answers: killed inside, pip not judged, and
    // not every Python package "removed".
    plant_python(&jupyter, &kernel, "#!/bin/sh\nexec sleep 1000\n");
    let stalled = wait_for(Duration::from_secs(120), || {
        let report = drift();
        report["problem"]
            .as_str()
            .is_some_and(|p| p.contains("pip packages could not be listed"))
            .then_some(report)
    })
    .unwrap_or_else(|| panic!("the stall reported: {}", drift()));
    assert_eq!(stalled["items"], serde_json::json!([]), "{stalled}");
    let container = view["container"].as_str().expect("container");
    let left = Command::new("docker")
        .args(["top", container])
        .output()
        .expect("docker top");
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains("sleep 1000"),
        "the stalled lister was killed: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    // The node answers as ever.
    node.run(&["ps", "--json"]).expect_ok("ps");
}
