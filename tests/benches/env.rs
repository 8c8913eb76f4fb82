//! `cargo build --release -p tandem-node && cargo bench -p tandem-e2e --bench env`
//!
//! Environment figures from a real `tandem up` and the real Docker engine,
//! each against a baseline from the same run:
//! - cached launch to JupyterLab answering HTTP (`tandem launch`) against
//!   `docker run` of the same image with the same command, polled the same
//!   way;
//! - `tandem build` of an unchanged environment;
//! - 1,000 tiny executions with the node recording every one and checking
//!   the container for drift after them, against the same 1,000 in a
//!   container no node follows (the drift checks made in the timed part
//!   are counted, so a figure without them cannot pass for one with).
//!
//! Needs the python3-minimal base to be buildable (run `tandem bases
//! bootstrap` first where no registry is in reach). `ENV_BENCH_RUNS`
//! changes the number of launches per side (default 5).

use std::process::Command;
use std::time::{Duration, Instant};

use tandem_e2e::jupyter::Jupyter;
use tandem_e2e::{TestNode, wait_for};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether JupyterLab's status route answers 200 (no panic when the port
/// is not open yet).
fn answers(address: &str, token: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "GET /api/status?token={token} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    );
    let mut head = [0u8; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1 200")
}

/// Polls JupyterLab's status route until it answers 200.
fn wait_http(address: &str, token: &str) {
    wait_for(Duration::from_secs(60), || {
        answers(address, token).then_some(())
    })
    .expect("JupyterLab answers");
}

/// `docker run` of `image` with the command `tandem launch` uses; returns
/// the time until JupyterLab answers, and the container's address.
fn docker_run(image: &str, dir: &std::path::Path, token: &str) -> (Duration, String, String) {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(dir).expect("project folder");
    let user = format!("{}:{}", owner.uid(), owner.gid());
    let started = Instant::now();
    let id = docker(&[
        "run",
        "-d",
        "-u",
        &user,
        "-v",
        &format!("{}:/mnt/project", dir.display()),
        "-p",
        "127.0.0.1::8888",
        image,
        "jupyter",
        "lab",
        "--ip=0.0.0.0",
        "--port=8888",
        "--no-browser",
        &format!("--IdentityProvider.token={token}"),
        "--ServerApp.root_dir=/mnt/project",
        "--allow-root",
    ]);
    let port = docker(&["port", &id, "8888/tcp"]);
    let address = port.lines().next().expect("a port").to_owned();
    wait_http(&address, token);
    (started.elapsed(), id, address)
}

fn main() {
    let runs: usize = std::env::var("ENV_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut node = TestNode::with_identity("Bench");
    node.start();
    node.run(&["project", "create", "bench", "--base", "python3-minimal"])
        .expect_ok("create");
    node.run(&["sync", "bench", "--auto", "off"])
        .expect_ok("auto off");
    let built = node
        .run(&["build", "bench", "--json"])
        .expect_ok("build")
        .json();
    let image = built["image"].as_str().expect("image").to_owned();
    let dir = node.project_dir("bench");

    // Unchanged build.
    let mut builds = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let again = node
            .run(&["build", "bench", "--json"])
            .expect_ok("build")
            .json();
        builds.push(started.elapsed());
        assert_eq!(again["rebuilt"], false);
    }
    let build = median(builds);

    // Cached launches, alternating sides.
    let mut tandem_launches = Vec::new();
    let mut docker_launches = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let view = node
            .run(&["launch", "bench", "--json"])
            .expect_ok("launch")
            .json();
        let jupyter = Jupyter::from_url(view["url"].as_str().expect("url"));
        wait_http(&jupyter.address, &jupyter.token);
        tandem_launches.push(started.elapsed());
        node.run(&["stop", "bench"]).expect_ok("stop");

        let (elapsed, id, _) = docker_run(&image, &dir, "benchtoken");
        docker_launches.push(elapsed);
        docker(&["rm", "-f", &id]);
    }
    let tandem_launch = median(tandem_launches);
    let docker_launch = median(docker_launches);

    // 1,000 tiny executions, recorded and not.
    const EXECUTIONS: usize = 1000;
    let view = node
        .run(&["launch", "bench", "--json"])
        .expect_ok("launch")
        .json();
    let recorded = Jupyter::from_url(view["url"].as_str().expect("url"));
    let kernel = recorded.start_kernel();
    wait_for(Duration::from_secs(20), || {
        let ps = node.run(&["ps", "--json"]).expect_ok("ps").json();
        (ps[0]["kernels_followed"].as_u64() >= Some(1)).then_some(())
    })
    .expect("kernel followed");
    let (_, id, address) = docker_run(&image, &dir, "benchtoken");
    let bare = Jupyter {
        address,
        token: "benchtoken".into(),
    };
    let bare_kernel = bare.start_kernel();
    recorded.execute_many(&kernel, "x = 1", 20); // warm up
    bare.execute_many(&bare_kernel, "x = 1", 20);
    // Both servers run throughout; the two sides alternate in rounds so
    // that drift in the machine's load falls on both alike.
    const ROUNDS: usize = 10;
    let drift_checks = || {
        node.run(&["env", "drift", "bench", "--json"])
            .expect_ok("drift")
            .json()["checks"]
            .as_u64()
            .unwrap_or(0)
    };
    let checks_before = drift_checks();
    let mut with_capture = Duration::ZERO;
    let mut without_capture = Duration::ZERO;
    for _ in 0..ROUNDS {
        with_capture += recorded.execute_many(&kernel, "x = 1", EXECUTIONS / ROUNDS);
        without_capture += bare.execute_many(&bare_kernel, "x = 1", EXECUTIONS / ROUNDS);
    }
    let checks = drift_checks() - checks_before;
    assert!(checks > 0, "no drift check ran while the cells did");
    docker(&["rm", "-f", &id]);

    // Every recorded execution reached the feed.
    let counted = wait_for(Duration::from_secs(60), || {
        let entries = node
            .run(&[
                "activity", "bench", "--kind", "code", "--limit", "5000", "--json",
            ])
            .expect_ok("activity")
            .json();
        let n = entries.as_array().map(Vec::len).unwrap_or(0);
        (n >= EXECUTIONS + 20).then_some(n)
    });
    node.run(&["stop", "bench"]).expect_ok("stop");

    println!("environment figures ({runs} runs each, medians):");
    println!(
        "  unchanged `tandem build`: {:.0} ms (goal < 1000 ms)",
        ms(build)
    );
    println!(
        "  cached launch to JupyterLab answering: tandem {:.0} ms, docker run {:.0} ms, ratio {:.2}x (goals < 5000 ms and <= 1.5x)",
        ms(tandem_launch),
        ms(docker_launch),
        tandem_launch.as_secs_f64() / docker_launch.as_secs_f64()
    );
    println!(
        "  {EXECUTIONS} tiny executions: recorded and drift-checked {:.0} ms, neither {:.0} ms, overhead {:+.1}% (goal < 5%); entries recorded: {}; drift checks made meanwhile: {checks}",
        ms(with_capture),
        ms(without_capture),
        (with_capture.as_secs_f64() / without_capture.as_secs_f64() - 1.0) * 100.0,
        counted.map_or("not all within 60 s".to_owned(), |n| n.to_string())
    );
}
