//! The hub's relay for blob endpoints: iroh's own relay server, embedded.
//!
//! Two blob endpoints behind NATs that keep them apart reach each other
//! through it, and iroh then tries to punch a direct path. It speaks plain
//! HTTP: what it carries is QUIC between the endpoints, encrypted end to
//! end, so TLS to the relay would only hide from an observer that the
//! endpoints use this relay, which their IP addresses show anyway. An
//! operator who wants TLS puts the hub behind a TLS-terminating proxy.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use iroh_relay::server::{Access, AccessControl, ClientRequest, RelayConfig, Server, ServerConfig};
use tandem_protocol::PeerKey;

use crate::service::Service;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(
        "cannot start the blob relay on {address}: {message} (is the port in use? pick another with --relay-listen)"
    )]
    Start {
        address: SocketAddr,
        message: String,
    },
}

/// The running relay; dropping it stops it.
pub struct BlobRelay {
    server: Server,
    url: String,
}

impl BlobRelay {
    pub async fn start(service: &Arc<Service>, listen: SocketAddr) -> Result<Self, RelayError> {
        let fail = |message: String| RelayError::Start {
            address: listen,
            message,
        };
        let mut relay = RelayConfig::new(listen);
        relay.key_cache_capacity = Some(4096);
        relay.access = Arc::new(HubAccess(Arc::downgrade(service)));
        let mut config = ServerConfig::default();
        config.relay = Some(relay);
        let server = Server::spawn(config)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let bound = server
            .http_addr()
            .ok_or_else(|| fail("it bound no HTTP address".into()))?;
        let url = match service.hub() {
            Some(hub) => hub.relay_url(bound),
            None => format!("http://{bound}"),
        };
        tracing::info!(%url, "blob relay listening");
        Ok(Self { server, url })
    }

    /// The URL peers dial, with the hub's public address.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn stop(self) {
        if let Err(e) = self.server.shutdown().await {
            tracing::warn!(error = %e, "the blob relay did not stop cleanly");
        }
    }
}

/// Admits the endpoints the hub's users may use it for (see
/// [`super::users`]); the endpoint id is proven by the relay handshake and
/// is the same key as the peer's libp2p identity.
#[derive(Debug)]
struct HubAccess(Weak<Service>);

impl AccessControl for HubAccess {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        let Some(service) = self.0.upgrade() else {
            return Access::Deny { reason: None };
        };
        let Ok(peer) = PeerKey::from_bytes(*request.endpoint_id().as_bytes()) else {
            return Access::Deny { reason: None };
        };
        let allowed = tokio::task::spawn_blocking(move || service.may_use_blob_relay(&peer))
            .await
            .unwrap_or(false);
        if allowed {
            Access::Allow
        } else {
            tracing::info!(peer = %peer.short(), "refused the blob relay: not a user of this hub");
            Access::Deny {
                reason: Some("this hub relays only for its users".into()),
            }
        }
    }
}
