//! `cargo build --release -p tandem-node && cargo bench -p tandem-e2e --bench blobs`
//!
//! Large-file figures from real `tandem` processes on loopback, each with a
//! baseline from the same run:
//! - 1 GiB node to node through Tandem (`tandem fetch`: request, transfer,
//!   verify, write into the working tree) against a bare iroh-blobs fetch
//!   between two stores in this process, and against rsync over ssh when
//!   sshd and rsync are installed;
//! - ingest of a 1 GiB file (`tandem sweep`) against `cp` of the same file;
//! - 10,000 files of 10 KiB, node to node, as effective MB/s.
//!
//! `BLOB_BENCH_MIB` changes the large file's size (default 1024).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use iroh::endpoint::presets;
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, RelayMode, TransportAddr};
use iroh_blobs::BlobsProtocol;
use iroh_blobs::store::fs::FsStore;
use tandem_e2e::{TestNode, write_random};

const MIB: u64 = 1024 * 1024;

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

async fn offline_endpoint() -> Endpoint {
    Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("address")
        .bind()
        .await
        .expect("bind")
}

/// A bare iroh-blobs transfer of `file` between two fresh stores.
fn bare_iroh(file: &Path) -> Duration {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let provider_store = FsStore::load(dir.path().join("a")).await.expect("store a");
        let getter_store = FsStore::load(dir.path().join("b")).await.expect("store b");
        let tag = provider_store
            .add_path(std::path::absolute(file).expect("absolute"))
            .await
            .expect("add");
        let provider = offline_endpoint().await;
        let router = Router::builder(provider.clone())
            .accept(iroh_blobs::ALPN, BlobsProtocol::new(&provider_store, None))
            .spawn();
        let address: SocketAddr = provider.bound_sockets()[0];
        let getter = offline_endpoint().await;
        let started = Instant::now();
        let connection = getter
            .connect(
                EndpointAddr::from_parts(provider.id(), [TransportAddr::Ip(address)]),
                iroh_blobs::ALPN,
            )
            .await
            .expect("connect");
        getter_store
            .remote()
            .fetch(connection, tag.hash)
            .await
            .expect("fetch");
        let elapsed = started.elapsed();
        getter.close().await;
        router.shutdown().await.expect("shutdown");
        getter_store.shutdown().await.expect("shutdown");
        elapsed
    })
}

fn flush_disk() {
    let _ = Command::new("sync").status();
}

fn rsync_over_ssh(file: &Path) -> Option<Duration> {
    let have = |bin: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("rsync") || !Path::new("/usr/sbin/sshd").exists() {
        println!("rsync over ssh: skipped (install rsync and openssh-server to compare)");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let host_key = dir.path().join("host");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key)
        .status()
        .expect("ssh-keygen");
    let authorized = dir.path().join("authorized");
    std::fs::copy(key.with_extension("pub"), &authorized).expect("authorized keys");
    // sshd refuses to start without its privilege separation folder.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let mut sshd = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-p", &port.to_string(), "-h"])
        .arg(&host_key)
        .arg("-o")
        .arg(format!("AuthorizedKeysFile={}", authorized.display()))
        .args(["-o", "StrictModes=no", "-o", "ListenAddress=127.0.0.1"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sshd");
    std::thread::sleep(Duration::from_millis(500));
    let target = dir.path().join("copy.bin");
    let ssh = format!(
        "ssh -p {port} -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        key.display()
    );
    let started = Instant::now();
    let status = Command::new("rsync")
        .args(["-a", "-e", &ssh])
        .arg(file)
        .arg(format!("127.0.0.1:{}", target.display()))
        .status()
        .expect("rsync");
    let elapsed = started.elapsed();
    let _ = sshd.kill();
    let _ = sshd.wait();
    status.success().then_some(elapsed)
}

fn timed(what: &str, node: &TestNode, args: &[&str]) -> Duration {
    let started = Instant::now();
    node.run(args).expect_ok(what);
    started.elapsed()
}

fn large_file_figures(size: u64) {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    ada.run(&["project", "create", "big"]).expect_ok("create");
    ada.run(&["sync", "big", "--auto", "off"])
        .expect_ok("auto off");
    let scratch = tempfile::tempdir().expect("tempdir");
    let source = scratch.path().join("model.bin");
    write_random(&source, size, 42);

    // Ingest: the file is already in the working tree; a sweep hashes it
    // into the store. Baseline: cp of the same file on the same disk.
    let target = ada.project_dir("big").join("output/model.bin");
    std::fs::copy(&source, &target).expect("place file");
    flush_disk();
    let cp_started = Instant::now();
    std::fs::copy(&source, scratch.path().join("cp.bin")).expect("cp");
    flush_disk();
    let cp = cp_started.elapsed();
    let _ = std::fs::remove_file(scratch.path().join("cp.bin"));
    flush_disk();
    // Both timings include writing their copy to disk (`sync`), as the
    // store's copy must be durable.
    let ingest_started = Instant::now();
    ada.run(&["sweep", "big"]).expect_ok("sweep");
    flush_disk();
    let ingest = ingest_started.elapsed();
    println!(
        "ingest {} MiB: {:.0} ms = {:.0} MB/s (goal >= 500); cp of the same file {:.0} ms = {:.0} MB/s (both until on disk)",
        size / MIB,
        ingest.as_secs_f64() * 1e3,
        mb_per_s(size, ingest),
        cp.as_secs_f64() * 1e3,
        mb_per_s(size, cp)
    );

    ada.run(&["share", "big", &bob.did(), "--role", "reader"])
        .expect_ok("share");
    let id = ada.project_id("big");
    bob.run(&["project", "clone", &id, "--no-data"])
        .expect_ok("clone");
    // Dirty pages from writing the test file would otherwise be flushed
    // during whichever transfer runs first; flush them, and give the bare
    // baseline its best of two runs (one before Tandem's, one after).
    flush_disk();
    let bare_before = bare_iroh(&source);
    flush_disk();
    let tandem = timed("fetch", &bob, &["fetch", "big"]);
    flush_disk();
    let bare = bare_before.min(bare_iroh(&source));
    println!(
        "1 file of {} MiB node to node: tandem fetch {:.0} ms = {:.0} MB/s; bare iroh-blobs {:.0} ms = {:.0} MB/s; ratio {:.2}x of bare (goal >= 0.9)",
        size / MIB,
        tandem.as_secs_f64() * 1e3,
        mb_per_s(size, tandem),
        bare.as_secs_f64() * 1e3,
        mb_per_s(size, bare),
        bare.as_secs_f64() / tandem.as_secs_f64()
    );
    if let Some(rsync) = rsync_over_ssh(&source) {
        println!(
            "rsync over ssh: {:.0} ms = {:.0} MB/s; tandem is {:.2}x as fast (goal >= 1.5)",
            rsync.as_secs_f64() * 1e3,
            mb_per_s(size, rsync),
            rsync.as_secs_f64() / tandem.as_secs_f64()
        );
    }
}

fn small_files_figure() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    ada.run(&["project", "create", "many"]).expect_ok("create");
    ada.run(&["sync", "many", "--auto", "off"])
        .expect_ok("auto off");
    let dir = ada.project_dir("many");
    // Every file under input/ becomes a blob.
    std::fs::write(dir.join(".tandem/blobs.toml"), "data_threshold = 0\n").expect("policy");
    let count = 10_000u64;
    let size = 10 * 1024;
    for i in 0..count {
        write_random(
            &dir.join(format!("input/d{:02}/f{i:05}.bin", i % 100)),
            size,
            i + 1,
        );
    }
    let ingest = timed("sweep", &ada, &["sweep", "many"]);
    ada.run(&["share", "many", &bob.did(), "--role", "reader"])
        .expect_ok("share");
    let id = ada.project_id("many");
    bob.run(&["project", "clone", &id, "--no-data"])
        .expect_ok("clone");
    let fetch = timed("fetch", &bob, &["fetch", "many"]);
    let total = count * size;
    println!(
        "{count} files of 10 KiB: ingest {:.0} ms; node to node {:.0} ms = {:.1} MB/s effective (goal >= 50)",
        ingest.as_secs_f64() * 1e3,
        fetch.as_secs_f64() * 1e3,
        mb_per_s(total, fetch)
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("blobs: bench");
        return;
    }
    let size = std::env::var("BLOB_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
        * MIB;
    large_file_figures(size);
    small_files_figure();
}
