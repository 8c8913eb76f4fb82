//! Socket probes run inside the namespaces, to check that a topology
//! behaves as its NATs should before any node is tested on it: who can
//! open a connection to whom, and which public address and port the far
//! side sees.
//!
//! The probes are a few lines of Python run with `ip netns exec` (a test
//! process cannot enter a namespace itself without unsafe code).

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::netns::{Host, NetnsError};

/// `connect-tcp HOST PORT TIMEOUT`: exits 0 when connected.
/// `listen-tcp|listen-udp PORT TIMEOUT`: prints `ready`, then
/// `from IP:PORT` for the first peer, or `nothing` after TIMEOUT.
/// `send-udp SRC_PORT HOST:PORT…`: from one local port to each target.
const SCRIPT: &str = r#"
import socket, sys
mode, args = sys.argv[1], sys.argv[2:]
if mode == "connect-tcp":
    try:
        socket.create_connection((args[0], int(args[1])), timeout=float(args[2])).close()
    except OSError as e:
        print("failed:", e)
        sys.exit(1)
    print("connected")
elif mode in ("listen-tcp", "listen-udp"):
    kind = socket.SOCK_STREAM if mode == "listen-tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(args[0])))
    if kind == socket.SOCK_STREAM:
        s.listen(8)
    s.settimeout(float(args[1]))
    print("ready", flush=True)
    try:
        if kind == socket.SOCK_STREAM:
            _, peer = s.accept()
        else:
            _, peer = s.recvfrom(64)
        print("from %s:%d" % peer, flush=True)
    except socket.timeout:
        print("nothing", flush=True)
elif mode == "send-udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(args[0])))
    for target in args[1:]:
        host, port = target.rsplit(":", 1)
        for _ in range(3):
            s.sendto(b"probe", (host, int(port)))
"#;

fn python(host: &Host, args: &[&str]) -> std::process::Command {
    let mut command = host.command("python3");
    command
        .arg("-c")
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::null());
    command
}

fn unavailable(e: std::io::Error) -> NetnsError {
    NetnsError::Unavailable {
        what: "run python3 inside a namespace".into(),
        reason: e.to_string(),
    }
}

/// Whether `from` can open a TCP connection to `to` within `timeout`.
pub fn tcp_connects(from: &Host, to: SocketAddrV4, timeout: Duration) -> Result<bool, NetnsError> {
    let out = python(
        from,
        &[
            "connect-tcp",
            &to.ip().to_string(),
            &to.port().to_string(),
            &timeout.as_secs_f64().to_string(),
        ],
    )
    .output()
    .map_err(unavailable)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() && !stdout.contains("failed:") {
        // Not a refused or timed-out connection: python itself is missing
        // or broke.
        return Err(NetnsError::Unavailable {
            what: "run python3 inside a namespace".into(),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.status.success())
}

/// A listening probe; reports the first peer's address as it saw it.
pub struct Listener {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Listener {
    pub fn tcp(on: &Host, port: u16, wait: Duration) -> Result<Self, NetnsError> {
        Self::start(on, "listen-tcp", port, wait)
    }

    pub fn udp(on: &Host, port: u16, wait: Duration) -> Result<Self, NetnsError> {
        Self::start(on, "listen-udp", port, wait)
    }

    fn start(on: &Host, mode: &str, port: u16, wait: Duration) -> Result<Self, NetnsError> {
        let mut child = python(
            on,
            &[mode, &port.to_string(), &wait.as_secs_f64().to_string()],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(unavailable)?;
        let stdout = child.stdout.take().ok_or_else(|| NetnsError::Setup {
            command: format!("python3 {mode}"),
            stderr: "no stdout".into(),
        })?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut listener = Listener { child, lines };
        match listener.lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line == "ready" => Ok(listener),
            other => {
                let _ = listener.child.kill();
                let stderr = listener
                    .child
                    .stderr
                    .take()
                    .map(|s| {
                        BufReader::new(s)
                            .lines()
                            .map_while(Result::ok)
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                Err(NetnsError::Unavailable {
                    what: format!("listen with python3 in {}", on.netns),
                    reason: format!("{other:?} {stderr}"),
                })
            }
        }
    }

    /// The first peer's address as this listener saw it, or `None` when
    /// nothing arrived in time.
    pub fn peer(self) -> Option<SocketAddrV4> {
        let line = self.lines.recv_timeout(Duration::from_secs(30)).ok()?;
        line.strip_prefix("from ")?.parse().ok()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends UDP from `from`'s port `src_port` to `port` on each of `targets`
/// and returns the source address each target saw: one NAT mapping per
/// destination under symmetric NAT, the same one for all under a cone.
pub fn udp_mappings(
    from: &Host,
    src_port: u16,
    targets: &[&Host],
    port: u16,
) -> Result<Vec<Option<SocketAddrV4>>, NetnsError> {
    let listeners = targets
        .iter()
        .map(|t| Listener::udp(t, port, Duration::from_secs(5)))
        .collect::<Result<Vec<_>, _>>()?;
    let destinations: Vec<SocketAddrV4> = targets
        .iter()
        .map(|t| SocketAddrV4::new(t.ip, port))
        .collect();
    send_udp(from, src_port, &destinations)?;
    Ok(listeners.into_iter().map(Listener::peer).collect())
}

/// Sends a few UDP datagrams from `from`'s port `src_port` to each of
/// `destinations`, whether or not anyone listens.
pub fn send_udp(
    from: &Host,
    src_port: u16,
    destinations: &[SocketAddrV4],
) -> Result<(), NetnsError> {
    let mut args = vec!["send-udp".to_owned(), src_port.to_string()];
    args.extend(destinations.iter().map(SocketAddrV4::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = python(from, &args).output().map_err(unavailable)?;
    if !out.status.success() {
        return Err(NetnsError::Setup {
            command: format!("python3 send-udp in {}", from.netns),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Opens a TCP connection from `from` to a listener on `to` and returns
/// the source address the listener saw (`None`: no connection).
pub fn tcp_source(from: &Host, to: &Host, port: u16) -> Result<Option<SocketAddrV4>, NetnsError> {
    let listener = Listener::tcp(to, port, Duration::from_secs(5))?;
    if !tcp_connects(from, SocketAddrV4::new(to.ip, port), Duration::from_secs(3))? {
        return Ok(None);
    }
    Ok(listener.peer())
}

/// Whether `from` can open a TCP connection to port `port` of `address`
/// while `target` listens on it: how the hub would try to reach a host
/// (`address` is the host's public or private address).
pub fn can_open_to(
    from: &Host,
    target: &Host,
    address: Ipv4Addr,
    port: u16,
) -> Result<bool, NetnsError> {
    let _listener = Listener::tcp(target, port, Duration::from_secs(5))?;
    tcp_connects(
        from,
        SocketAddrV4::new(address, port),
        Duration::from_secs(2),
    )
}
