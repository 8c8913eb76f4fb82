//! The node on the network: the libp2p swarm and what guards it.
//!
//! - [`swarm`]: transports, behaviours, mDNS, the peer book and the driver
//!   loop;
//! - [`ratelimit`]: per-peer request budgets;
//! - [`wirelog`]: an audit trail of what peers sent.

pub mod ratelimit;
pub mod swarm;
pub mod wirelog;
