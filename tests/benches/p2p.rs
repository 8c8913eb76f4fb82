//! `cargo build --release -p tandem-node && cargo bench -p tandem-e2e --bench p2p`
//!
//! Peer-to-peer figures from real `tandem` processes on loopback, each with
//! a baseline from the same run:
//! - clone of a 10,000-commit project, node to node, against `git clone`
//!   of the same repository from `git daemon`;
//! - a no-op sync of a project with 1,000 commits, against a bare HTTP
//!   round trip to the same node (`/api/health`);
//! - LAN discovery (mDNS) to first connection;
//! - the idle cost of a node with 10 peers and 10 projects.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tandem_e2e::{TestNode, add_commits, git, wait_for};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn time_http(node: &TestNode, method: &str, path: &str, body: &str, rounds: u32) -> Duration {
    let token = format!("Bearer {}", node.token.clone().expect("token"));
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let started = Instant::now();
        let (status, text) = node.http(
            method,
            path,
            &[
                ("Authorization", &token),
                ("Content-Type", "application/json"),
            ],
            body,
        );
        assert_eq!(status, 200, "{path}: {text}");
        best = best.min(started.elapsed());
    }
    best
}

fn target_pid_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "tandem-bench-git-daemon-{}.pid",
        std::process::id()
    ))
}

fn clone_figure() {
    let mut ada = TestNode::with_identity("Ada");
    let mut bob = TestNode::with_identity("Bob");
    ada.run(&["project", "create", "big"]).expect_ok("create");
    add_commits(&ada, "big", 10_000);
    ada.run(&["share", "big", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    ada.start();
    bob.start();
    bob.connect(&ada);
    let id = ada
        .run(&["project", "show", "big", "--json"])
        .expect_ok("show")
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let started = Instant::now();
    bob.run(&["project", "clone", &id]).expect_ok("clone");
    let tandem = started.elapsed();
    let commits = git(&bob.project_dir("big"), &["rev-list", "--count", "HEAD"]);

    let port = 19_418 + (std::process::id() % 1000) as u16;
    let pid_file = target_pid_file();
    let mut daemon = Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
        ])
        .arg(format!("--pid-file={}", pid_file.display()))
        .stdout(Stdio::null())
        .arg(format!(
            "--base-path={}",
            ada.home().join("projects").display()
        ))
        .arg(ada.home().join("projects"))
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon");
    let target = tempfile::tempdir().expect("tempdir");
    wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("git daemon listening");
    let started = Instant::now();
    let status = Command::new("git")
        .args(["clone", "-q", &format!("git://127.0.0.1:{port}/big")])
        .arg(target.path().join("big"))
        .status()
        .expect("git clone");
    let baseline = started.elapsed();
    // `git daemon` runs git-daemon as a child: stop that one by its pid file.
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(status.success(), "git clone from git daemon failed");
    println!(
        "clone of {} commits node to node: {:.0} ms; git clone from git daemon on loopback: {:.0} ms; ratio {:.2}x (goal <= 1.5x)",
        commits.trim(),
        ms(tandem),
        ms(baseline),
        tandem.as_secs_f64() / baseline.as_secs_f64()
    );
}

fn noop_sync_figure() {
    let mut ada = TestNode::with_identity("Ada");
    let mut bob = TestNode::with_identity("Bob");
    ada.run(&["project", "create", "mid"]).expect_ok("create");
    add_commits(&ada, "mid", 1_000);
    ada.run(&["share", "mid", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    ada.start();
    bob.start();
    bob.connect(&ada);
    let id = ada
        .run(&["project", "show", "mid", "--json"])
        .expect_ok("show")
        .json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    bob.run(&["project", "clone", &id]).expect_ok("clone");
    bob.run(&["sync", "mid", "--auto", "off"])
        .expect_ok("auto off");
    ada.run(&["sync", "mid", "--auto", "off"])
        .expect_ok("auto off");
    let sync = time_http(&bob, "POST", "/api/projects/mid/sync", "{}", 20);
    let health = time_http(&bob, "GET", "/api/health", "", 20);
    println!(
        "no-op sync of a 1,000-commit project with one peer (best of 20): {:.1} ms (goal < 100 ms); bare API round trip to the same node: {:.2} ms",
        ms(sync),
        ms(health)
    );
}

fn discovery_figure() {
    let mut ada = TestNode::with_identity("Ada");
    let mut bob = TestNode::with_identity("Bob");
    let up = |node: &mut TestNode| {
        let mut child = node
            .command()
            .args([
                "up",
                "--listen",
                "127.0.0.1:0",
                "--p2p-listen",
                "/ip4/0.0.0.0/tcp/0",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("start");
        let runtime = node.home().join("node.json");
        wait_for(Duration::from_secs(30), || runtime.exists().then_some(())).expect("node started");
        std::thread::sleep(Duration::from_millis(100));
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&runtime).expect("node.json")).expect("json");
        node.url = info["url"].as_str().map(str::to_owned);
        node.token = info["token"].as_str().map(str::to_owned);
        let _ = child.stdout.take();
        child
    };
    let mut a = up(&mut ada);
    let started = Instant::now();
    let mut b = up(&mut bob);
    let ada_did = ada.did();
    let found = wait_for(Duration::from_secs(10), || {
        let token = format!("Bearer {}", bob.token.clone().unwrap_or_default());
        let (_, body) = bob.http("GET", "/api/peers", &[("Authorization", &token)], "");
        let peers: serde_json::Value = serde_json::from_str(&body).ok()?;
        peers
            .as_array()?
            .iter()
            .any(|p| p["did"] == ada_did.as_str() && p["connected"] == true)
            .then(|| started.elapsed())
    });
    let _ = a.kill();
    let _ = b.kill();
    let _ = a.wait();
    let _ = b.wait();
    match found {
        Some(elapsed) => println!(
            "LAN discovery (mDNS) from node start to first connection: {:.0} ms (goal < 2 s)",
            ms(elapsed)
        ),
        None => println!(
            "LAN discovery (mDNS): no connection within 10 s on this machine (is multicast available?)"
        ),
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn idle_figure() {
    let mut hub = TestNode::with_identity("Hub");
    for i in 0..10 {
        hub.run(&["project", "create", &format!("p{i}")])
            .expect_ok("create");
    }
    let mut others: Vec<TestNode> = (0..10)
        .map(|i| TestNode::with_identity(&format!("Peer{i}")))
        .collect();
    for (i, other) in others.iter().enumerate() {
        hub.run(&["share", &format!("p{i}"), &other.did(), "--role", "writer"])
            .expect_ok("share");
    }
    hub.start();
    for other in &mut others {
        other.start();
        other.connect(&hub);
    }
    std::thread::sleep(Duration::from_secs(3));
    let pid = hub.pid().expect("pid");
    let ticks_per_s = 100.0;
    let before = cpu_ticks(pid);
    let window = Duration::from_secs(20);
    std::thread::sleep(window);
    let cpu = (cpu_ticks(pid) - before) as f64 / ticks_per_s / window.as_secs_f64() * 100.0;
    println!(
        "idle node with 10 connected peers and 10 projects: RSS {:.1} MiB, CPU {:.2}% of one core over {} s",
        rss_kib(pid) as f64 / 1024.0,
        cpu,
        window.as_secs()
    );
}

fn main() {
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if run("clone") {
        clone_figure();
    }
    if run("noop") {
        noop_sync_figure();
    }
    if run("discovery") {
        discovery_figure();
    }
    if run("idle") {
        idle_figure();
    }
}
