//! rsync over ssh on loopback, the tool a user would pick instead of
//! Tandem for moving data: the baseline of the blob bench. A private sshd
//! runs on a free port with a key made for the run, and stops when this is
//! dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running sshd that accepts one freshly made key.
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed");
}

impl Sshd {
    /// Starts sshd on loopback, or says why it cannot and returns none
    /// (rsync or openssh-server not installed).
    pub fn start() -> Option<Self> {
        if !installed("rsync") || !Path::new("/usr/sbin/sshd").exists() {
            println!("rsync over ssh: skipped (install rsync and openssh-server to compare)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key");
        keygen(&key);
        let host_key = dir.path().join("host");
        keygen(&host_key);
        let authorized = dir.path().join("authorized");
        std::fs::copy(key.with_extension("pub"), &authorized).expect("authorized keys");
        // sshd refuses to start without its privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-p", &port.to_string(), "-h"])
            .arg(&host_key)
            .arg("-o")
            .arg(format!("AuthorizedKeysFile={}", authorized.display()))
            .args(["-o", "StrictModes=no", "-o", "ListenAddress=127.0.0.1"])
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let sshd = Self { dir, port, child };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not listen within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(sshd)
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key")
    }

    /// `rsync -a FROM 127.0.0.1:TO` over ssh; a folder is given with a
    /// trailing slash to copy what it holds. Returns the time it took.
    pub fn rsync(&self, from: &Path, to: &Path, folder: bool) -> Duration {
        let ssh = format!(
            "ssh -p {} -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.port,
            self.key().display()
        );
        let slash = if folder { "/" } else { "" };
        let started = Instant::now();
        let status = Command::new("rsync")
            .args(["-a", "-e", &ssh])
            .arg(format!("{}{slash}", from.display()))
            .arg(format!("127.0.0.1:{}{slash}", to.display()))
            .status()
            .expect("run rsync");
        let elapsed = started.elapsed();
        assert!(status.success(), "rsync failed");
        elapsed
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
