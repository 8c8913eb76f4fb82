//! The peers this node is connected to, dialling one, and this node's
//! own addresses to hand to a colleague.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tandem_protocol::api::{AddPeer, OwnAddresses, PeerConnected, PeerInfo};

use super::status::ApiResult;
use crate::error::ServiceError;
use crate::service::Service;

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/peers", get(peers).post(add_peer))
        .route("/peers/self", get(own_addresses))
}

async fn peers(State(s): State<Arc<Service>>) -> ApiResult<Vec<PeerInfo>> {
    Ok(Json(s.net()?.peers().await?))
}

async fn add_peer(
    State(s): State<Arc<Service>>,
    Json(body): Json<AddPeer>,
) -> ApiResult<PeerConnected> {
    let address = body.address.trim();
    // A key alone (did:key or PeerId) is looked up through connected peers.
    let key = if address.starts_with('/') {
        s.net()?.dial(address).await?
    } else {
        let key: tandem_protocol::PeerKey = address.parse().map_err(|_| {
            ServiceError::BadRequest(format!(
                "{address:?} is neither a multiaddr (/ip4/…/p2p/…) nor a peer's key (did:key:… or 12D3KooW…)"
            ))
        })?;
        s.net()?.find(&key).await?
    };
    Ok(Json(PeerConnected {
        connected: key.to_did(),
    }))
}

async fn own_addresses(State(s): State<Arc<Service>>) -> ApiResult<OwnAddresses> {
    let addresses = s.net()?.addresses().await?;
    let me = s.key().public();
    let blob_addresses: Vec<String> = s
        .data()
        .endpoint()
        .map(|e| e.bound().iter().map(|a| a.to_string()).collect())
        .unwrap_or_default();
    let network = s.net()?.network().await?;
    Ok(Json(OwnAddresses {
        did: me.to_did(),
        hub: network.hub,
        peer_id: me.to_peer_id(),
        addresses,
        blob_addresses,
        reachability: Some(network.reachability),
    }))
}
