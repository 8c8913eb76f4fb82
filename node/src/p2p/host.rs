//! What the transport asks the node it runs in.
//!
//! The swarm moves bytes and keeps track of peers; every decision about a
//! project (what to answer, which announcement to relay, what to do when a
//! peer turns up) belongs to the node. The swarm holds a [`Host`] and asks
//! it, the way the blob endpoint asks its `Gate`; it never names the
//! service that implements it, so the node can be wired to something other
//! than libp2p (an in-memory network in tests) and libp2p to something
//! other than the node.

use tandem_protocol::PeerKey;
use tandem_protocol::wire::{Request, Response};

/// A received announcement, for the host to judge.
#[derive(Debug, Clone)]
pub struct Gossip {
    /// The key that published it (gossipsub signs messages), if any.
    pub source: Option<PeerKey>,
    pub topic: String,
    pub data: Vec<u8>,
}

/// What the host makes of a [`Gossip`]: only accepted messages are
/// relayed; rejected ones count against the peer that forwarded them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Ignore,
    Reject,
}

/// The node, as the transport sees it. `serve` and `judge` read the
/// node's store, so the transport calls them on a blocking thread and
/// never on its own task; `connected` and `disconnected` only take note and
/// return at once.
pub trait Host: Send + Sync + 'static {
    /// Answers a request from a peer. `peer` is authenticated (the noise
    /// handshake proved the key), everything in `request` is not: the host
    /// enforces access.
    fn serve(&self, peer: &PeerKey, request: Request) -> Response;

    /// Judges an announcement heard on a gossip topic.
    fn judge(&self, gossip: &Gossip) -> Verdict;

    /// A connection to `peer` was established (one call per connection).
    fn connected(&self, peer: &PeerKey);

    /// The last connection to `peer` closed.
    fn disconnected(&self, peer: &PeerKey);

    /// Hub only: whether `peer` may keep a relay slot here (be reachable
    /// through this hub). Called on a blocking thread.
    fn may_use_hub(&self, peer: &PeerKey) -> bool;

    /// Hub only: a circuit through this hub between two peers opened or
    /// closed. Returns at once.
    fn circuit(&self, src: &PeerKey, dst: &PeerKey, open: bool);
}
