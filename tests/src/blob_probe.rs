//! A stand-alone iroh-blobs client for tests: it fetches one blob from a
//! node's blob endpoint under any identity, so a test can check what the
//! node serves to whom, byte for byte, without going through a node.

use std::net::SocketAddr;
use std::path::Path;

use iroh::endpoint::presets;
use iroh::{Endpoint, EndpointAddr, RelayMode, TransportAddr};

/// What the probe got: the blob's bytes, or why it got nothing.
pub type ProbeResult = Result<Vec<u8>, String>;

/// The secret key stored in a test node's home.
pub fn secret_of(home: &Path) -> [u8; 32] {
    let text = std::fs::read_to_string(home.join("identity.key")).expect("identity key");
    let mut bytes = [0u8; 32];
    let hex = text.trim();
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).expect("hex key");
    }
    bytes
}

/// Fetches `hash` (hex) from the endpoint of `server_public` (32 bytes) at
/// `address`, presenting `secret` as this client's identity.
pub fn fetch(
    secret: [u8; 32],
    server_public: [u8; 32],
    address: SocketAddr,
    hash: &str,
) -> ProbeResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let endpoint = Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Disabled)
            .clear_address_lookup()
            .clear_ip_transports()
            .secret_key(iroh::SecretKey::from_bytes(&secret))
            .bind_addr("127.0.0.1:0")
            .map_err(|e| e.to_string())?
            .bind()
            .await
            .map_err(|e| e.to_string())?;
        let server = iroh::PublicKey::from_bytes(&server_public).map_err(|e| e.to_string())?;
        let addr = EndpointAddr::from_parts(server, [TransportAddr::Ip(address)]);
        let connection = endpoint
            .connect(addr, iroh_blobs::ALPN)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let hash: iroh_blobs::Hash = hash.parse().map_err(|e| format!("hash: {e:?}"))?;
        let result = iroh_blobs::get::request::get_blob(connection.clone(), hash)
            .bytes_and_stats()
            .await;
        connection.close(0u32.into(), b"done");
        endpoint.close().await;
        result
            .map(|(bytes, _)| bytes.to_vec())
            .map_err(|e| e.to_string())
    })
}

/// Where a running test node's blob endpoint listens, on loopback.
pub fn address_of(node: &crate::TestNode) -> SocketAddr {
    let me = node.api_get("/api/peers/self");
    let bound: SocketAddr = me["blob_addresses"][0]
        .as_str()
        .expect("a blob address")
        .parse()
        .expect("socket address");
    SocketAddr::new([127, 0, 0, 1].into(), bound.port())
}

/// A test node's public key (its blob endpoint's id).
pub fn public_of(node: &crate::TestNode) -> [u8; 32] {
    tandem_protocol::SecretKey::from_bytes(secret_of(node.home()))
        .public()
        .as_bytes()
        .to_owned()
}

/// Asks for `hash` like [`fetch`] and then reads nothing for `hold`: a peer
/// too slow to take what it asked for. Returns whether the request was
/// sent (the node accepted the connection and the stream).
pub fn stall(
    secret: [u8; 32],
    server_public: [u8; 32],
    address: SocketAddr,
    hash: &str,
    hold: std::time::Duration,
) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let Ok(endpoint) = Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Disabled)
            .clear_address_lookup()
            .clear_ip_transports()
            .secret_key(iroh::SecretKey::from_bytes(&secret))
            .bind_addr("127.0.0.1:0")
            .expect("loopback address")
            .bind()
            .await
        else {
            return false;
        };
        let Ok(server) = iroh::PublicKey::from_bytes(&server_public) else {
            return false;
        };
        let addr = EndpointAddr::from_parts(server, [TransportAddr::Ip(address)]);
        let Ok(connection) = endpoint.connect(addr, iroh_blobs::ALPN).await else {
            return false;
        };
        let Ok(hash) = hash.parse::<iroh_blobs::Hash>() else {
            return false;
        };
        let request = iroh_blobs::protocol::GetRequest::blob(hash);
        let initial = iroh_blobs::get::fsm::start(connection.clone(), request, Default::default());
        let sent = match initial.next().await {
            Ok(connected) => connected.next().await.is_ok(),
            Err(_) => false,
        };
        tokio::time::sleep(hold).await;
        connection.close(0u32.into(), b"done");
        endpoint.close().await;
        sent
    })
}
