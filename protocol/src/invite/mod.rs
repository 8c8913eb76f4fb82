//! Invite links: a [`Ticket`] names a project, where its inviter listens,
//! the inviter's key and a single-use [`InviteSecret`]; the inviter's node
//! keeps only the secret's [`SecretHash`] in an [`Invite`], and decides
//! each `Join` with [`find`] and [`decide()`], pure functions of what it
//! stores, the clock and the presented secret.
//!
//! - [`ticket`]: the secret, its hash, and the `tandem:` link's codec;
//! - [`decide`](mod@decide): the stored invite and the join decision.
//!
//! Nothing in a ticket is trusted: the inviter judges the secret against
//! its own records (its role, the expiry it stored, whether the invite was
//! used), and the joiner checks that the node it reached is the key the
//! ticket names (the transport proves it).

pub mod decide;
pub mod ticket;

pub use decide::{Decision, Invite, JoinRefusal, Refusal, Standing, Use, decide, find};
pub use ticket::{
    InviteSecret, MAX_ADDRESS_LEN, MAX_ADDRESSES, MAX_TICKET_TEXT, SCHEME, SecretHash, Ticket,
    TicketError, VERSION,
};
