//! Node settings a person changes from the Settings page
//! (`settings.json` in the home), and acting on them: a relay or hub
//! address is dialled at start and whenever it changes.

use tandem_protocol::api::Settings;

use crate::error::{ServiceError, io_context};
use crate::fsutil::atomic_write;
use crate::service::Service;

impl Service {
    pub fn settings(&self) -> Settings {
        std::fs::read(self.home().root().join("settings.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Checks and saves new settings; an empty relay clears it.
    pub fn save_settings(&self, mut settings: Settings) -> Result<Settings, ServiceError> {
        settings.relay = settings
            .relay
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if let Some(relay) = &settings.relay {
            let parsed: Result<libp2p::Multiaddr, _> = relay.parse();
            let names_peer = parsed.is_ok_and(|a| {
                a.iter()
                    .any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
            });
            if !names_peer {
                return Err(ServiceError::BadRequest(format!(
                    "not a relay address {relay:?}: expected a multiaddr ending in /p2p/<peer id>"
                )));
            }
        }
        let bytes = serde_json::to_vec_pretty(&settings).unwrap_or_default();
        atomic_write(&self.home().root().join("settings.json"), &bytes, None)
            .map_err(io_context("saving the settings"))?;
        Ok(settings)
    }

    /// Connects to the configured relay, if any (in the background: a
    /// node must start and work without the internet).
    pub fn dial_relay(self: &std::sync::Arc<Self>) {
        let (Some(relay), Ok(net)) = (self.settings().relay, self.net().cloned()) else {
            return;
        };
        let hub = self.hub_key();
        let service = self.clone();
        tokio::spawn(async move {
            if let Err(e) = net.use_relay(&relay).await {
                tracing::info!(%relay, error = %e, "cannot reach the hub now; will retry");
            }
            // Already connected (the hub changed in Settings): no new
            // connection will prompt asking for its blob relay, so ask now.
            if let Some(hub) = hub
                && net
                    .connected()
                    .await
                    .is_ok_and(|peers| peers.contains(&hub))
            {
                service.learn_blob_relay(&hub).await;
            }
        });
    }
}
