//! A node using a hub: once connected to it, learn where its blob relay
//! is, so this node's large files can cross NATs too. The hub's libp2p
//! side (relay slot, circuits, hole punching) is the swarm's; see
//! `p2p::traversal`.

use std::sync::Arc;

use tandem_protocol::PeerKey;
use tandem_protocol::wire::{Request, Response};

use crate::service::Service;

/// A relay URL a peer named, if it is one this node will dial: `http` or
/// `https`, with a host, and nothing that could smuggle credentials.
pub fn relay_url(text: &str) -> Option<iroh::RelayUrl> {
    let url = url::Url::parse(text).ok()?;
    let fine = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    fine.then(|| url.into())
}

impl Service {
    /// The key of the hub set in the settings, if any.
    pub fn hub_key(&self) -> Option<PeerKey> {
        let address: libp2p::Multiaddr = self.settings().relay?.parse().ok()?;
        let peer = crate::p2p::traversal::last_peer(&address)?;
        crate::p2p::peer_key(&peer)
    }

    /// A peer connected: if it is our hub, ask it where its blob relay is.
    pub fn on_connected_for_hub(self: &Arc<Self>, peer: &PeerKey) {
        if self.hub_key().as_ref() == Some(peer) {
            let service = self.clone();
            let hub = *peer;
            tokio::spawn(async move { service.learn_blob_relay(&hub).await });
        }
    }

    /// Hub: serve the blob relay at `url`, and be reachable through it too
    /// (nodes learn the URL from this endpoint's answer).
    pub async fn serve_blob_relay(&self, url: &str) {
        if let Some(hub) = self.hub_state() {
            let _ = hub.blob_relay.set(url.to_owned());
        }
        if let (Some(endpoint), Some(url)) = (self.data().endpoint(), relay_url(url)) {
            endpoint.use_relay(url).await;
        }
    }

    /// Asks the hub for its blob relay and uses it. Quietly does nothing if
    /// the hub does not run one or cannot be asked now: the next connection
    /// asks again.
    pub async fn learn_blob_relay(&self, hub: &PeerKey) {
        let (Ok(net), Some(endpoint)) = (self.net(), self.data().endpoint()) else {
            return;
        };
        let relay = match net.request(hub, Request::BlobEndpoint).await {
            Ok(Response::BlobEndpoint {
                relay: Some(relay), ..
            }) => relay,
            Ok(_) => return,
            Err(e) => {
                tracing::info!(error = %e, "cannot ask the hub for its blob relay now");
                return;
            }
        };
        let Some(url) = relay_url(&relay) else {
            tracing::warn!(%relay, "the hub named a blob relay that is not an http(s) URL: not used");
            return;
        };
        if endpoint.relay().as_ref() != Some(&url) {
            tracing::info!(%url, "large files can now cross NAT through the hub's blob relay");
            endpoint.use_relay(url.clone()).await;
        }
        let _ = net.note_hub_relay(url.to_string()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_relay_urls_are_dialled() {
        assert!(relay_url("http://198.51.100.1:3340").is_some());
        assert!(relay_url("https://hub.example.org").is_some());
        for bad in [
            "file:///etc/passwd",
            "ws://x:1",
            "http://user:pw@hub:1",
            "http://hub:1/?token=x",
            "not a url",
            "http://",
        ] {
            assert!(relay_url(bad).is_none(), "{bad} was accepted");
        }
    }
}
