//! Test helpers that start and drive real `tandem` processes.
//!
//! A [`TestNode`] is a temporary home plus the real binary: run CLI commands
//! against it, start `tandem up` on an ephemeral loopback port, talk to its
//! HTTP API, stop it with SIGTERM or SIGKILL. Nothing is mocked.

pub mod bare_iroh;
pub mod blob_probe;
pub mod browser;
pub mod docker;
pub mod http;
pub mod jupyter;
pub mod netns;
pub mod rsync;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `tandem` binary: `$TANDEM_BIN`, else the one cargo built next to
/// this test executable.
pub fn tandem_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TANDEM_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join("tandem");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p tandem-node` (`cargo test --workspace` does)",
        bin.display()
    );
    bin
}

/// The result of one CLI command.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            ok: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with both streams when the command failed.
    pub fn expect_ok(self, what: &str) -> Self {
        assert!(
            self.ok,
            "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the command failed with a message containing `needle`.
    pub fn expect_err(self, what: &str, needle: &str) -> Self {
        assert!(
            !self.ok,
            "{what} should have failed but succeeded:\n{}",
            self.stdout
        );
        assert!(
            self.stderr.contains(needle),
            "{what}: error should mention {needle:?}, got:\n{}",
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// A node's home folder, and the node process when it is running.
pub struct TestNode {
    /// Network namespace every command of this node runs in, if any.
    pub netns: Option<String>,
    home: tempfile::TempDir,
    process: Option<Child>,
    pub url: Option<String>,
    pub token: Option<String>,
    /// Where the node records every message peers send it, if anywhere.
    wire_log: Option<PathBuf>,
}

impl Default for TestNode {
    fn default() -> Self {
        Self::new()
    }
}

impl TestNode {
    /// A fresh, empty home (no identity yet).
    pub fn new() -> Self {
        Self {
            netns: None,
            home: tempfile::tempdir().expect("temporary home"),
            process: None,
            url: None,
            token: None,
            wire_log: None,
        }
    }

    /// A fresh home with an identity named `name`.
    pub fn with_identity(name: &str) -> Self {
        let node = Self::new();
        node.run(&[
            "init",
            "--name",
            name,
            "--email",
            &format!("{}@example.org", name.to_lowercase()),
        ])
        .expect_ok("tandem init");
        node
    }

    /// From now on the node records every message peers send it
    /// (`TANDEM_WIRE_LOG`); returns the log's path. Call before `start`.
    pub fn record_wire(&mut self) -> PathBuf {
        let log = self.home().join("wire-log.jsonl");
        self.wire_log = Some(log.clone());
        log
    }

    /// A node with an identity, already running (see [`TestNode::start`]).
    pub fn started(name: &str) -> Self {
        let mut node = Self::with_identity(name);
        node.start();
        node
    }

    /// The id (`tp…`) of one of this node's projects.
    pub fn project_id(&self, project: &str) -> String {
        self.run(&["project", "show", project, "--json"])
            .expect_ok("project show")
            .json()["id"]
            .as_str()
            .expect("the project has an id")
            .to_owned()
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn project_dir(&self, name: &str) -> PathBuf {
        self.home().join("projects").join(name)
    }

    pub fn command(&self) -> Command {
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(tandem_bin());
                c
            }
            None => Command::new(tandem_bin()),
        };
        command
            .env("TANDEM_HOME", self.home())
            .env_remove("TANDEM_LOG")
            .stdin(Stdio::null());
        if let Some(log) = &self.wire_log {
            command.env("TANDEM_WIRE_LOG", log);
        }
        command
    }

    /// Runs one CLI command to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().expect("run tandem"))
    }

    /// Starts `tandem up` on ephemeral loopback ports, without LAN
    /// discovery or the DHT (so a test decides who connects to whom), and
    /// waits until it has printed its URL.
    pub fn start(&mut self) {
        self.start_with(&[
            "--p2p-listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--no-dht",
        ]);
    }

    /// Starts `tandem up` with these network options.
    pub fn start_with(&mut self, network: &[&str]) {
        let command = self.command();
        self.start_command(command, network);
    }

    /// Starts `tandem up` from `command`: [`TestNode::command`], possibly
    /// rebuilt to run under another program (`setpriv`, say).
    pub fn start_command(&mut self, mut command: Command, network: &[&str]) {
        let mut child = command
            .args(["up", "--listen", "127.0.0.1:0"])
            .args(network)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tandem up");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("tandem up printed its web UI URL within 30 s");
            if let Some(url) = line.strip_prefix("Web UI: ") {
                let (base, token) = url.split_once("/?token=").expect("URL carries the token");
                self.url = Some(base.to_owned());
                self.token = Some(token.to_owned());
                break;
            }
        }
        self.process = Some(child);
    }

    /// This node's key (`did:key:`).
    pub fn did(&self) -> String {
        self.run(&["id", "--json"]).expect_ok("tandem id").json()["did"]
            .as_str()
            .expect("did")
            .to_owned()
    }

    /// The first peer address of the running node.
    pub fn p2p_address(&self) -> String {
        let me = self
            .run(&["peers", "--self", "--json"])
            .expect_ok("peers --self")
            .json();
        me["addresses"][0].as_str().expect("an address").to_owned()
    }

    /// Connects this running node to another running node.
    pub fn connect(&self, other: &TestNode) {
        self.run(&["peer", "add", &other.p2p_address()])
            .expect_ok("peer add");
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    /// SIGTERM, then waits for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.process.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// The web UI's address with the token, as `tandem up` prints it.
    pub fn web_url(&self) -> String {
        format!(
            "{}/?token={}",
            self.url.as_deref().expect("node is running"),
            self.token.as_deref().expect("node is running")
        )
    }

    /// The web UI's base address (no token), for pages after the first.
    pub fn base_url(&self) -> String {
        self.url.clone().expect("node is running")
    }

    /// An HTTP request to the running node, with exactly these headers;
    /// returns status and body.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let url = self.url.as_deref().expect("node is running");
        let address = url.strip_prefix("http://").expect("http URL");
        http_request(address, method, path, headers, body)
    }

    /// An authenticated POST of a JSON body; panics unless it answers 200.
    pub fn api_post(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let token = format!("Bearer {}", self.token.as_deref().expect("node is running"));
        let (status, answer) = self.http(
            "POST",
            path,
            &[
                ("Authorization", &token),
                ("Content-Type", "application/json"),
            ],
            &body.to_string(),
        );
        assert_eq!(status, 200, "POST {path}: {answer}");
        serde_json::from_str(&answer).expect("JSON body")
    }

    /// An authenticated GET of the API, answered with its status and bytes
    /// as they came (a download).
    pub fn api_get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let token = format!("Bearer {}", self.token.as_deref().expect("node is running"));
        let url = self.url.as_deref().expect("node is running");
        let address = url.strip_prefix("http://").expect("http URL");
        http::request(
            address,
            "GET",
            path,
            &[("Authorization", &token)],
            vec![],
            HTTP_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("HTTP request to the node: {e}"))
    }

    /// An authenticated GET of the API; panics unless it answers 200.
    pub fn api_get(&self, path: &str) -> serde_json::Value {
        let token = format!("Bearer {}", self.token.as_deref().expect("node is running"));
        let (status, body) = self.http("GET", path, &[("Authorization", &token)], "");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("JSON body")
    }
}

/// How long the node (or JupyterLab) may take to answer one request.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP request to `address` (host:port), with exactly this path and
/// these headers (a `Host` among them replaces the real one); returns
/// status and body.
/// Panics when there is no answer.
pub fn http_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (status, body) = http::request(
        address,
        method,
        path,
        headers,
        body.as_bytes().to_vec(),
        HTTP_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("HTTP request to the node: {e}"));
    (status, String::from_utf8_lossy(&body).into_owned())
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `git` in `dir` and returns its standard output; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Appends `count` commits to the project's main branch with git
/// fast-import (each changes one small file), then lets the node see them.
pub fn add_commits(node: &TestNode, project: &str, count: usize) {
    let dir = node.project_dir(project);
    let mut child = Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    let parent = git(&dir, &["rev-parse", "HEAD"]).trim().to_owned();
    let mut stream = String::new();
    for i in 0..count {
        let body = format!("row {i}\n");
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter Bench <bench@example.org> {} +0000\ndata {}\n[tandem:code] step {i}\n",
            1_700_000_000 + i,
            format!("[tandem:code] step {i}\n").len()
        ));
        if i == 0 {
            stream.push_str(&format!("from {parent}\n"));
        }
        stream.push_str(&format!(
            "M 100644 inline code/data-{}.txt\ndata {}\n{body}\n",
            i % 100,
            body.len()
        ));
    }
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream.as_bytes())
        .expect("feed fast-import");
    assert!(child.wait().expect("wait").success(), "fast-import failed");
    git(&dir, &["reset", "--hard", "-q", "main"]);
}

impl TestNode {
    /// SIGKILL: no shutdown, no cleanup, as in a power cut.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes `size` pseudo-random bytes (xorshift, seeded) to `path`: fast to
/// make, incompressible, and different for every seed.
pub fn write_random(path: &Path, size: u64, seed: u64) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent folder");
    }
    let mut file = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).expect("create data file"),
    );
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).expect("write data");
        left -= n as u64;
    }
    file.flush().expect("flush data");
}

/// A file's BLAKE3 hash in hex, as the blob store names content.
pub fn blake3_of(path: &Path) -> String {
    let mut hasher = blake3::Hasher::new();
    let file = std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("open {} to hash it: {e}", path.display()));
    hasher
        .update_reader(file)
        .unwrap_or_else(|e| panic!("hash {}: {e}", path.display()));
    hasher.finalize().to_hex().to_string()
}

/// Whether two files hold the same bytes (compared block by block).
pub fn same_bytes(a: &Path, b: &Path) -> bool {
    let open =
        |p: &Path| std::fs::File::open(p).map(|f| std::io::BufReader::with_capacity(1 << 20, f));
    let (Ok(mut a), Ok(mut b)) = (open(a), open(b)) else {
        return false;
    };
    let mut left = vec![0u8; 1 << 16];
    let mut right = vec![0u8; 1 << 16];
    loop {
        let n = match a.read(&mut left) {
            Ok(n) => n,
            Err(_) => return false,
        };
        if n == 0 {
            return b.read(&mut right).map(|m| m == 0).unwrap_or(false);
        }
        if b.read_exact(&mut right[..n]).is_err() || left[..n] != right[..n] {
            return false;
        }
    }
}

/// The hash (hex) and size that Git's pointer for `file` names at HEAD.
pub fn blob_pointer(node: &TestNode, project: &str, file: &str) -> (String, u64) {
    blob_pointer_in(&node.project_dir(project), file)
}

/// [`blob_pointer`] in the repository at `dir`.
pub fn blob_pointer_in(dir: &Path, file: &str) -> (String, u64) {
    let text = git(dir, &["show", &format!("HEAD:.tandem/blobs/{file}.toml")]);
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("hash = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("pointer names a hash")
        .to_owned();
    let size = text
        .lines()
        .find_map(|l| l.strip_prefix("size = "))
        .and_then(|l| l.parse().ok())
        .expect("pointer names a size");
    (hash, size)
}

/// A project on `owner` with automatic sync off, so nothing moves unless a
/// test asks.
pub fn quiet_project(owner: &TestNode, name: &str) {
    owner.run(&["project", "create", name]).expect_ok("create");
    owner
        .run(&["sync", name, "--auto", "off"])
        .expect_ok("auto off");
}

/// `tandem fetch PROJECT --json [PATHS]`, parsed (it may have failed).
pub fn fetch_json(node: &TestNode, project: &str, paths: &[&str]) -> serde_json::Value {
    let mut args = vec!["fetch", project, "--json"];
    args.extend_from_slice(paths);
    let run = node.run(&args);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|_| panic!("fetch printed JSON: {}\n{}", run.stdout, run.stderr))
}
