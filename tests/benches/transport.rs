//! `cargo bench -p tandem-e2e --bench transport`
//!
//! Bare iroh-blobs transfers of one file between two stores in this
//! process, with iroh's default QUIC transport and with variants of it
//! (flow-control windows, MTU discovery's upper bound), each run several
//! times: the evidence for the transport settings the blob endpoint uses.
//! On this project's 2-core VM none of them beat the default beyond the
//! run-to-run spread, so the endpoint keeps iroh's defaults; stream windows
//! of 4 MiB and more lost the connection mid-transfer ("connection lost"),
//! which `TRANSPORT_WINDOW_MIB=4` shows.
//! `TRANSPORT_BENCH_MIB` sets the file's size (default 512),
//! `TRANSPORT_BENCH_RUNS` the runs per variant (default 3).

use iroh::endpoint::{MtuDiscoveryConfig, QuicTransportConfig, VarInt};
use tandem_e2e::write_random;

const MIB: u64 = 1024 * 1024;

fn windows() -> iroh::endpoint::QuicTransportConfigBuilder {
    let mib: u32 = std::env::var("TRANSPORT_WINDOW_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    QuicTransportConfig::builder()
        .stream_receive_window(VarInt::from_u32(mib << 20))
        .send_window(u64::from(mib) << 22)
}

fn mtu(upper: u16) -> MtuDiscoveryConfig {
    let mut config = MtuDiscoveryConfig::default();
    config.upper_bound(upper);
    config
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("transport: bench");
        return;
    }
    let size = std::env::var("TRANSPORT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
        * MIB;
    let runs: usize = std::env::var("TRANSPORT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("data.bin");
    write_random(&file, size, 9);
    type Variant = (&'static str, Box<dyn Fn() -> Option<QuicTransportConfig>>);
    let variants: Vec<Variant> = vec![
        ("iroh default", Box::new(|| None)),
        (
            "larger flow-control windows",
            Box::new(|| Some(windows().build())),
        ),
        (
            "windows + MTU up to 9000",
            Box::new(|| Some(windows().mtu_discovery_config(Some(mtu(9000))).build())),
        ),
        (
            "windows + MTU up to 16384",
            Box::new(|| Some(windows().mtu_discovery_config(Some(mtu(16384))).build())),
        ),
        (
            "windows + MTU up to 65527",
            Box::new(|| Some(windows().mtu_discovery_config(Some(mtu(65527))).build())),
        ),
    ];
    let only = std::env::var("TRANSPORT_ONLY").ok();
    for (name, transport) in &variants {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let times: Vec<f64> = (0..runs)
            .map(|_| tandem_e2e::bare_iroh::transfer(&file, transport).as_secs_f64())
            .collect();
        let rates: Vec<String> = times
            .iter()
            .map(|t| format!("{:.0}", size as f64 / 1e6 / t))
            .collect();
        println!(
            "{name}: {} MB/s ({} MiB, {runs} runs)",
            rates.join(", "),
            size / MIB
        );
    }
}
