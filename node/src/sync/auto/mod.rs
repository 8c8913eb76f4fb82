//! Automatic sync (on by default, per project): after a local change the
//! node announces it to members, a member that hears an announcement
//! syncs, a new connection triggers a sync, and every project is synced
//! now and then anyway.
//!
//! Announcements travel two ways. Gossipsub carries the node's signed
//! heads on the project's private topic (see `tandem_protocol::gossip`:
//! topic and seal derive from the genesis nonce and the access heads, which
//! only members hold), so members relay news to members the writer is not
//! connected to; connected members not (yet) on that topic get a direct
//! `Announce` request, which carries only the project id. Either way only
//! peers who may read the project hear of it.
//!
//! - [`schedule`]: when to announce and when to sync, a state machine
//!   that is given the time and returns its wishes (tested in virtual
//!   time);
//! - [`run`]: the task that feeds it and carries its wishes out;
//! - [`judge`]: what a member's announcement is worth, and the topics;
//! - [`switch`]: turning automatic sync off and on per project.

pub mod judge;
pub mod run;
pub mod schedule;
pub mod switch;
