//! The NAT matrix's scenario, shared by the end-to-end test
//! (`tests/nat.rs`) and the bench (`benches/nat.rs`): a hub on the public
//! segment, two nodes behind two sites that use it, and what one matrix
//! cell does between them — find by key, share, clone, edit both sides,
//! sync both ways, a large file each way — with the timings the issue
//! asks for.
//!
//! Every step that talks to a node has a deadline and returns an error
//! naming the step, so one broken cell is reported without hanging or
//! hiding the others. Each node's log goes to its own file (level from
//! `NAT_LOG`, default `info`); a failed step carries the logs' tails.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::netns::{HUB_IP, Host, SiteKind, Topology, TopologyBuilder};
use crate::{Run, TestNode, git, same_bytes, write_random};

pub const MIB: u64 = 1024 * 1024;

/// The hub's fixed ports, as an operator would open them.
pub const HUB_P2P_PORT: u16 = 4001;

/// Two sites of every kind, one host each: enough for every cell of the
/// matrix, a same-kind cell using two separate sites.
pub fn matrix_topology() -> TopologyBuilder {
    let mut builder = Topology::builder();
    for kind in SiteKind::ALL {
        builder = builder.site(kind, 1).site(kind, 1);
    }
    builder
}

/// Every unordered pair of kinds: the ten cells.
pub fn cells() -> Vec<(SiteKind, SiteKind)> {
    let mut cells = Vec::new();
    for (i, a) in SiteKind::ALL.iter().enumerate() {
        for b in &SiteKind::ALL[i..] {
            cells.push((*a, *b));
        }
    }
    cells
}

/// The hosts a cell runs on: the first site of each kind, the second one
/// for the other side of a same-kind cell.
pub fn hosts_for(topology: &Topology, a: SiteKind, b: SiteKind) -> Option<(&Host, &Host)> {
    let host_a = topology.site(a, 0)?.hosts.first()?;
    let host_b = topology
        .site(b, if a == b { 1 } else { 0 })?
        .hosts
        .first()?;
    Some((host_a, host_b))
}

/// How a cell's connection must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The NATs allow it: direct, or hole-punched.
    Direct,
    /// They do not: through the hub's relay.
    Relayed,
    /// Not decided by the issue (double NAT with a cone or another double
    /// NAT): reported, not asserted.
    Report,
}

pub fn expected(a: SiteKind, b: SiteKind) -> Expect {
    use SiteKind::*;
    match (a, b) {
        (Public, _) | (_, Public) | (Cone, Cone) => Expect::Direct,
        (Symmetric, _) | (_, Symmetric) => Expect::Relayed,
        _ => Expect::Report,
    }
}

/// Whether a `connection` value of `tandem peers --json` is a direct path.
pub fn is_direct(kind: &str) -> bool {
    kind == "direct" || kind == "hole-punched"
}

/// A folder of one log per node; removed at the end unless a step failed
/// (or `NAT_KEEP_LOGS` is set), so a failure's logs can be read after.
pub struct Logs {
    dir: PathBuf,
    keep: bool,
}

impl Logs {
    pub fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tandem-nat-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a folder for the nodes' logs");
        Logs {
            dir,
            keep: std::env::var_os("NAT_KEEP_LOGS").is_some(),
        }
    }

    pub fn path(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.log"))
    }

    /// The last `lines` lines of a node's log.
    pub fn tail(&self, node: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.path(node)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Keeps the folder after the run and says where it is.
    pub fn keep(&mut self) {
        if !self.keep {
            eprintln!("node logs kept in {}", self.dir.display());
        }
        self.keep = true;
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `tandem up` for `node` with its standard error in its own log
/// file, at the level `NAT_LOG` names (default `info`).
pub fn start_logged(node: &mut TestNode, logs: &Logs, label: &str, network: &[&str]) {
    let base = node.command();
    let mut command = Command::new("sh");
    // `exec` keeps the process id: stopping the node stops `tandem`.
    command
        .arg("-c")
        .arg("exec \"$@\" 2>>\"$0\"")
        .arg(logs.path(label))
        .arg(base.get_program())
        .args(base.get_args());
    for (key, value) in base.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
        .env(
            "TANDEM_LOG",
            std::env::var("NAT_LOG").unwrap_or_else(|_| "info".into()),
        )
        // Plain text in the log files.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    node.start_command(command, network);
}

/// Runs one CLI command, killed after `timeout`: a stalled transfer fails
/// its cell instead of hanging the run.
pub fn run_for(node: &TestNode, args: &[&str], timeout: Duration) -> Result<Run, String> {
    let what = format!("`tandem {}`", args.join(" "));
    let child = node
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => Ok(Run {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            Err(format!("{what} gave no answer within {timeout:?}"))
        }
    }
}

/// [`run_for`], and an error unless the command succeeded.
pub fn run_ok(node: &TestNode, args: &[&str], timeout: Duration) -> Result<Run, String> {
    let run = run_for(node, args, timeout)?;
    if run.ok {
        Ok(run)
    } else {
        Err(format!(
            "`tandem {}` failed ({:?}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            run.code,
            run.stdout.trim(),
            run.stderr.trim()
        ))
    }
}

/// Retries a command until it succeeds or `within` passes; returns the
/// run and how many tries it took.
fn retry_ok(node: &TestNode, args: &[&str], within: Duration) -> Result<(Run, u32), String> {
    let deadline = Instant::now() + within;
    let mut tries = 0;
    loop {
        tries += 1;
        match run_ok(node, args, within) {
            Ok(run) => return Ok((run, tries)),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("after {tries} tries in {within:?}: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A running hub on the topology's hub host.
pub struct Hub {
    pub node: TestNode,
    pub did: String,
    /// Its TCP multiaddr with `/p2p/…`, for `--hub-address`.
    pub address: String,
}

/// Starts `tandem up --hub` on the hub host, open to anyone, on fixed
/// ports as an operator would run it.
pub fn start_hub(topology: &Topology, logs: &Logs) -> Hub {
    start_hub_with(topology, logs, &["--open"])
}

/// Starts the hub with these access options (`--open`, or `--allow KEY`
/// for each key; none: only members of the projects it keeps).
pub fn start_hub_with(topology: &Topology, logs: &Logs, access: &[&str]) -> Hub {
    let mut node = TestNode::with_identity("Hub");
    node.netns = Some(topology.hub.netns.clone());
    let ip = HUB_IP.to_string();
    start_logged(
        &mut node,
        logs,
        "hub",
        &[
            "--hub",
            "--external-address",
            &ip,
            "--no-mdns",
            "--p2p-listen",
            &format!("/ip4/0.0.0.0/tcp/{HUB_P2P_PORT}"),
            "--p2p-listen",
            &format!("/ip4/0.0.0.0/udp/{HUB_P2P_PORT}/quic-v1"),
            "--blob-listen",
            "0.0.0.0:4002",
            "--relay-listen",
            "0.0.0.0:3340",
        ]
        .iter()
        .chain(access)
        .copied()
        .collect::<Vec<_>>(),
    );
    let me = node
        .run(&["id", "--json"])
        .expect_ok("hub: tandem id")
        .json();
    let peer_id = me["peer_id"]
        .as_str()
        .expect("`tandem id --json` names the peer id")
        .to_owned();
    let did = me["did"]
        .as_str()
        .expect("`tandem id --json` names the key")
        .to_owned();
    Hub {
        node,
        did,
        address: format!("/ip4/{ip}/tcp/{HUB_P2P_PORT}/p2p/{peer_id}"),
    }
}

/// Starts a node on `host` that uses `hub` (DHT on; LAN discovery only
/// with `mdns`), listening on TCP and QUIC.
pub fn start_member(name: &str, host: &Host, hub: &Hub, mdns: bool, logs: &Logs) -> TestNode {
    start_member_node(TestNode::with_identity(name), name, host, hub, mdns, logs)
}

/// [`start_member`] for a node whose identity already exists (its key was
/// needed before the hub started).
pub fn start_member_node(
    mut node: TestNode,
    name: &str,
    host: &Host,
    hub: &Hub,
    mdns: bool,
    logs: &Logs,
) -> TestNode {
    node.netns = Some(host.netns.clone());
    let mut network = vec![
        "--hub-address",
        hub.address.as_str(),
        "--p2p-listen",
        "/ip4/0.0.0.0/tcp/0",
        "--p2p-listen",
        "/ip4/0.0.0.0/udp/0/quic-v1",
    ];
    if !mdns {
        network.push("--no-mdns");
    }
    start_logged(&mut node, logs, name, &network);
    node
}

/// `node`'s entry for the peer with key `did` in `tandem peers --json`.
pub fn peer_entry(node: &TestNode, did: &str) -> Option<serde_json::Value> {
    let run = run_for(node, &["peers", "--json"], Duration::from_secs(10)).ok()?;
    let list: serde_json::Value = serde_json::from_str(&run.stdout).ok()?;
    list.as_array()?.iter().find(|p| p["did"] == did).cloned()
}

/// How `node` is connected to `did` now: `None` when not connected, the
/// `connection` field otherwise (`"(unreported)"` when the node has none).
pub fn connection(node: &TestNode, did: &str) -> Option<String> {
    let entry = peer_entry(node, did)?;
    if entry["connected"] != true {
        return None;
    }
    Some(
        entry["connection"]
            .as_str()
            .unwrap_or("(unreported)")
            .to_owned(),
    )
}

/// Whether the running node advertises a relayed address (a reservation
/// on the hub).
pub fn has_relayed_address(node: &TestNode) -> bool {
    run_for(
        node,
        &["peers", "--self", "--json"],
        Duration::from_secs(10),
    )
    .ok()
    .and_then(|run| serde_json::from_str::<serde_json::Value>(&run.stdout).ok())
    .and_then(|me| {
        me["addresses"].as_array().map(|a| {
            a.iter()
                .any(|x| x.as_str().is_some_and(|s| s.contains("/p2p-circuit")))
        })
    })
    .unwrap_or(false)
}

/// How long a node took to be reachable through the hub.
#[derive(Debug, Clone, Default)]
pub struct Ready {
    /// Until it was connected to the hub.
    pub hub: Option<Duration>,
    /// Until it advertised a relayed address (nodes behind NAT only).
    pub reserved: Option<Duration>,
}

/// Waits (up to `within`) until `node` is connected to the hub and, when
/// `behind_nat`, advertises a relayed address.
pub fn wait_ready(node: &TestNode, hub: &Hub, behind_nat: bool, within: Duration) -> Ready {
    let started = Instant::now();
    let deadline = started + within;
    let mut ready = Ready::default();
    while Instant::now() < deadline {
        if ready.hub.is_none() && connection(node, &hub.did).is_some() {
            ready.hub = Some(started.elapsed());
        }
        if behind_nat && ready.reserved.is_none() && has_relayed_address(node) {
            ready.reserved = Some(started.elapsed());
        }
        if ready.hub.is_some() && (!behind_nat || ready.reserved.is_some()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ready
}

/// One large file's trip.
#[derive(Debug, Clone, Default)]
pub struct Transfer {
    pub size: u64,
    /// From the receiver's `sync` (which brings the pointer) to the bytes
    /// in its working tree.
    pub elapsed: Duration,
    /// What `tandem fetch --json` says it received (0 when the sync had
    /// brought the file already).
    pub received: u64,
}

impl Transfer {
    pub fn mb_per_s(&self) -> f64 {
        self.size as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What one cell's exercise measured.
#[derive(Debug, Clone, Default)]
pub struct Exercise {
    /// `peer add` until it succeeded.
    pub found: Duration,
    pub peer_add_tries: u32,
    /// `peer add` until the other side's clone (its first sync) completed.
    pub first_sync: Duration,
    /// How each side saw the connection right after the clone (A's view,
    /// B's view).
    pub connection_first: [Option<String>; 2],
    /// And at the end.
    pub connection_end: [Option<String>; 2],
    pub a_to_b: Transfer,
    pub b_to_a: Transfer,
}

fn head(node: &TestNode, project: &str) -> String {
    git(&node.project_dir(project), &["rev-parse", "HEAD"])
        .trim()
        .to_owned()
}

const STEP: Duration = Duration::from_secs(60);
const TRANSFER: Duration = Duration::from_secs(300);

/// A cell's work between two running nodes: A creates `project`, finds B
/// with `peer add find` (B's key through the hub, or an address on
/// loopback), shares it as writer; B clones; both edit and sync both ways;
/// a `size` file goes each way, byte-identical. `expect` says how long to
/// give the connection to end direct.
pub fn exercise(
    a: &TestNode,
    b: &TestNode,
    find: &str,
    project: &str,
    size: u64,
    expect: Expect,
) -> Result<Exercise, String> {
    let mut report = Exercise::default();
    let (a_did, b_did) = (a.did(), b.did());
    run_ok(a, &["project", "create", project], STEP)?;
    run_ok(a, &["sync", project, "--auto", "off"], STEP)?;
    std::fs::write(a.project_dir(project).join("code/start.py"), "print(0)\n")
        .map_err(|e| format!("write start.py: {e}"))?;
    run_ok(a, &["sweep", project], STEP)?;
    let id = a.project_id(project);

    let started = Instant::now();
    let (_, tries) = retry_ok(a, &["peer", "add", find], Duration::from_secs(30))
        .map_err(|e| format!("A finds B by `peer add {find}`: {e}"))?;
    report.found = started.elapsed();
    report.peer_add_tries = tries;
    run_ok(a, &["share", project, &b_did, "--role", "writer"], STEP)?;
    retry_ok(b, &["project", "clone", &id], Duration::from_secs(60))
        .map_err(|e| format!("B clones: {e}"))?;
    report.first_sync = started.elapsed();
    report.connection_first = [connection(a, &b_did), connection(b, &a_did)];
    run_ok(b, &["sync", project, "--auto", "off"], STEP)?;
    if head(a, project) != head(b, project) {
        return Err("B's clone is not at A's head".into());
    }

    // Both edit different files, then sync both ways until they agree.
    std::fs::write(a.project_dir(project).join("code/from_a.py"), "a = 1\n")
        .map_err(|e| format!("write from_a.py: {e}"))?;
    std::fs::write(b.project_dir(project).join("code/from_b.py"), "b = 2\n")
        .map_err(|e| format!("write from_b.py: {e}"))?;
    for _ in 0..4 {
        run_ok(a, &["sync", project], STEP)?;
        run_ok(b, &["sync", project], STEP)?;
        if head(a, project) == head(b, project) {
            break;
        }
    }
    if head(a, project) != head(b, project) {
        return Err("heads did not converge after four rounds of sync".into());
    }
    for (node, file) in [(a, "code/from_b.py"), (b, "code/from_a.py")] {
        if !node.project_dir(project).join(file).is_file() {
            return Err(format!("{file} did not arrive"));
        }
    }

    report.a_to_b = large_file(a, b, project, "input/from_a.bin", size, 1)?;
    report.b_to_a = large_file(b, a, project, "input/from_b.bin", size, 2)?;

    // Hole punching has had the whole exercise to happen; give a direct
    // path a last moment to be reported where one is possible.
    let ends = || [connection(a, &b_did), connection(b, &a_did)];
    report.connection_end = if expect == Expect::Relayed {
        ends()
    } else {
        let mut last = ends();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !last.iter().all(|c| c.as_deref().is_some_and(is_direct)) && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(250));
            last = ends();
        }
        last
    };
    Ok(report)
}

/// `from` adds a `size` file at `path`; `to` syncs and fetches it; the
/// copy must be byte-identical.
fn large_file(
    from: &TestNode,
    to: &TestNode,
    project: &str,
    path: &str,
    size: u64,
    seed: u64,
) -> Result<Transfer, String> {
    let original = from.project_dir(project).join(path);
    write_random(&original, size, seed);
    run_ok(from, &["sweep", project], STEP)?;
    run_ok(from, &["sync", project], STEP)?;
    let started = Instant::now();
    run_ok(to, &["sync", project], TRANSFER)?;
    let fetched = run_ok(to, &["fetch", project, path, "--json"], TRANSFER)?;
    let elapsed = started.elapsed();
    let received = serde_json::from_str::<serde_json::Value>(&fetched.stdout)
        .ok()
        .and_then(|v| v["bytes_received"].as_u64())
        .unwrap_or(0);
    let copy = to.project_dir(project).join(path);
    if !same_bytes(&original, &copy) {
        return Err(format!(
            "{path}: the fetched copy differs from the original (fetch said: {})",
            fetched.stdout.trim()
        ));
    }
    Ok(Transfer {
        size,
        elapsed,
        received,
    })
}

/// One matrix cell's outcome.
#[derive(Debug, Clone)]
pub struct CellReport {
    pub a: SiteKind,
    pub b: SiteKind,
    pub ready: [Ready; 2],
    pub exercise: Exercise,
    pub total: Duration,
}

/// Runs cell `(a, b)` on the matrix topology: two fresh nodes, ready
/// through the hub, then [`exercise`] with B found by key.
pub fn run_cell(
    topology: &Topology,
    hub: &Hub,
    cell: usize,
    (a, b): (SiteKind, SiteKind),
    size: u64,
    logs: &Logs,
) -> Result<CellReport, String> {
    let started = Instant::now();
    let (host_a, host_b) =
        hosts_for(topology, a, b).ok_or("the topology lacks a site for this cell")?;
    let (log_a, log_b) = (format!("c{cell}-a"), format!("c{cell}-b"));
    let node_a = start_member(&log_a, host_a, hub, false, logs);
    let node_b = start_member(&log_b, host_b, hub, false, logs);
    let within = Duration::from_secs(20);
    let ready = [
        wait_ready(&node_a, hub, a != SiteKind::Public, within),
        wait_ready(&node_b, hub, b != SiteKind::Public, within),
    ];
    let with_logs = |e: String| {
        format!(
            "{e}\n--- A's log ({log_a}) ---\n{}\n--- B's log ({log_b}) ---\n{}\n--- hub's log ---\n{}",
            logs.tail(&log_a, 40),
            logs.tail(&log_b, 40),
            logs.tail("hub", 20)
        )
    };
    if ready.iter().any(|r| r.hub.is_none()) {
        return Err(with_logs(format!(
            "a node did not connect to the hub within {within:?}: {ready:?}"
        )));
    }
    let find = node_b.did();
    let exercise = exercise(
        &node_a,
        &node_b,
        &find,
        &format!("cell{cell}"),
        size,
        expected(a, b),
    )
    .map_err(with_logs)?;
    Ok(CellReport {
        a,
        b,
        ready,
        exercise,
        total: started.elapsed(),
    })
}

/// Formats a duration as milliseconds, or `-` when absent.
pub fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{}", d.as_millis()))
        .unwrap_or_else(|| "-".into())
}
