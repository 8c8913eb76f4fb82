//! A bare iroh-blobs transfer of one file between two fresh stores in this
//! process, with no Tandem in between: the baseline the blob benches set
//! Tandem's transfers against.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use iroh::endpoint::{QuicTransportConfig, presets};
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, RelayMode, TransportAddr};
use iroh_blobs::BlobsProtocol;
use iroh_blobs::store::fs::FsStore;

async fn endpoint(transport: Option<QuicTransportConfig>) -> Endpoint {
    let mut builder = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("loopback address");
    if let Some(transport) = transport {
        builder = builder.transport_config(transport);
    }
    builder.bind().await.expect("bind")
}

/// Times fetching `file` from one store into another over loopback QUIC,
/// each endpoint with the transport `transport` makes (iroh's default for
/// none). The file is added to the first store, and the disk flushed,
/// before the clock starts; the fetch is checked to have moved every byte.
pub fn transfer(file: &Path, transport: impl Fn() -> Option<QuicTransportConfig>) -> Duration {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let provider_store = FsStore::load(dir.path().join("a")).await.expect("store a");
        let getter_store = FsStore::load(dir.path().join("b")).await.expect("store b");
        let tag = provider_store
            .add_path(std::path::absolute(file).expect("absolute"))
            .await
            .expect("add");
        let provider = endpoint(transport()).await;
        let router = Router::builder(provider.clone())
            .accept(iroh_blobs::ALPN, BlobsProtocol::new(&provider_store, None))
            .spawn();
        let address: SocketAddr = provider.bound_sockets()[0];
        let getter = endpoint(transport()).await;
        let _ = std::process::Command::new("sync").status();
        let started = Instant::now();
        let connection = getter
            .connect(
                EndpointAddr::from_parts(provider.id(), [TransportAddr::Ip(address)]),
                iroh_blobs::ALPN,
            )
            .await
            .expect("connect");
        let stats = getter_store
            .remote()
            .fetch(connection, tag.hash)
            .await
            .expect("fetch");
        let elapsed = started.elapsed();
        assert!(stats.payload_bytes_read >= std::fs::metadata(file).expect("size").len());
        getter.close().await;
        router.shutdown().await.expect("shutdown");
        getter_store.shutdown().await.expect("shutdown");
        elapsed
    })
}
