//! The node on the network: a libp2p swarm and what guards it. The swarm
//! never holds the node: it asks a [`Host`] what to answer, which
//! announcements to relay and what to make of a new peer, and the rest of
//! the node reaches the network through a [`NetHandle`].
//!
//! - [`host`]: the trait the node implements, and the gossip it judges;
//! - [`handle`]: the handle and the commands it sends (any network that
//!   answers them will do: the swarm, or a test's in-memory network);
//! - [`driver`]: starting the swarm and the one task that runs it;
//! - [`behaviour`]: transports and protocols, and the node's libp2p key;
//! - [`peer_book`]: the peers met, remembered across restarts and capped;
//! - [`mdns`]: finding peers on a LAN with no configuration;
//! - [`ratelimit`]: per-peer request budgets;
//! - [`traversal`]: the hub link, AutoNAT's verdict, and how each
//!   connection was made (direct, hole-punched, relayed);
//! - [`wirelog`]: an audit trail of what peers sent.

pub mod behaviour;
pub mod driver;
pub mod handle;
pub mod host;
pub mod mdns;
pub mod peer_book;
pub mod ratelimit;
pub mod traversal;
pub mod wirelog;

pub use behaviour::{Role, keypair};
pub use driver::{NetOptions, start};
pub use handle::{Command, NetError, NetHandle, PeerInfo, peer_key};
pub use host::{Gossip, Host, Verdict};
