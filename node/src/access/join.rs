//! Invite links, the joiner's side: `tandem join TICKET` reaches the
//! inviter at the ticket's addresses, proves the secret with a `Join`
//! request, and once granted clones the project as `tandem project clone`
//! does. Two people who never exchanged a key work together in one step.
//!
//! The ticket is not trusted for anything but where to ask: the transport
//! proves the node reached holds the ticket's key (the address ends in its
//! `/p2p/` id), the inviter's node judges the secret against its own
//! records, and the clone checks everything it receives as any clone does.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tandem_protocol::PeerKey;
use tandem_protocol::access::Role;
use tandem_protocol::api::ProjectSummary;
use tandem_protocol::invite::{JoinRefusal, Ticket, TicketError};
use tandem_protocol::wire::{Request, Response};

use crate::access::invites::rfc3339;
use crate::error::{Fault, ServiceError};
use crate::p2p::handle::{NetError, NetHandle};
use crate::service::{Service, now_ms};

/// How long one address may take to connect.
const DIAL_FOR: Duration = Duration::from_secs(10);
/// How long the inviter's node may take to answer the join (it signs and
/// commits the grant).
const ANSWER_FOR: Duration = Duration::from_secs(30);

/// Why a join did not get a role: said for the person holding the ticket.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("this is not a usable invite ticket: {0}")]
    Ticket(#[from] TicketError),
    #[error("this invite expired at {at}; ask the inviter for a new one")]
    Expired { at: String },
    #[error("this invite was made by this node: give it to the person you invite")]
    Own,
    #[error("this project is already here ({name}); nothing to join")]
    AlreadyHere { name: String },
    #[error(
        "could not reach the inviter ({inviter}) at any of the ticket's addresses: is their node running (`tandem up`)? Tried: {tried}"
    )]
    Unreachable { inviter: String, tried: String },
    #[error(
        "the inviter's node does not accept this invite: the ticket is not one it made, was revoked, or the project is no longer there. Ask the inviter for a new one"
    )]
    NotAccepted,
    #[error("{0}")]
    Refused(JoinRefusal),
    #[error("the inviter's node answered the join with {0}")]
    Unexpected(&'static str),
}

impl From<JoinError> for ServiceError {
    fn from(e: JoinError) -> Self {
        match e {
            JoinError::AlreadyHere { .. } => ServiceError::Conflict(e.to_string()),
            JoinError::Unreachable { .. } => ServiceError::Net(NetError::Request(e.to_string())),
            _ => ServiceError::refused(e),
        }
    }
}

impl Service {
    /// `tandem join TICKET`: asks the inviter's node for the ticket's role,
    /// then clones the project (as `name` if given).
    pub async fn join(
        self: &Arc<Self>,
        ticket: &str,
        name: Option<String>,
        no_data: bool,
    ) -> Result<ProjectSummary, ServiceError> {
        let ticket = Ticket::decode(ticket).map_err(JoinError::from)?;
        if ticket.expires_ms <= now_ms() {
            return Err(JoinError::Expired {
                at: rfc3339(ticket.expires_ms),
            }
            .into());
        }
        if ticket.inviter == self.key().public() {
            return Err(JoinError::Own.into());
        }
        let project = ticket.project;
        if let Some(here) = self.blocking(move |s| s.find_by_id(&project)).await? {
            return Err(JoinError::AlreadyHere {
                name: here.to_string(),
            }
            .into());
        }
        let net = self.net()?.clone();
        reach(&net, &ticket).await?;
        let request = Request::Join {
            project,
            secret: ticket.secret.clone(),
        };
        let answer = tokio::time::timeout(ANSWER_FOR, net.request(&ticket.inviter, request))
            .await
            .map_err(|_| {
                NetError::Request(format!(
                    "the inviter's node did not answer the join within {} s",
                    ANSWER_FOR.as_secs()
                ))
            })??;
        let role = granted(answer)?;
        tracing::info!(%project, %role, "joined with an invite; cloning");
        self.clone_project(project, name, no_data)
            .await
            .map_err(|e| after_grant(e, role, &ticket.inviter, &project.to_string()))
    }
}

/// The role the inviter's answer grants, or why it does not.
fn granted(answer: Response) -> Result<Role, ServiceError> {
    match answer {
        Response::Joined { role } => Ok(role),
        Response::JoinRefused { reason } => Err(JoinError::Refused(reason).into()),
        Response::Denied => Err(JoinError::NotAccepted.into()),
        Response::Failed { message } => Err(NetError::Request(message).into()),
        Response::Projects { .. } => Err(JoinError::Unexpected("a project list").into()),
        Response::Access { .. }
        | Response::Refs { .. }
        | Response::Pack { .. }
        | Response::Feed { .. }
        | Response::Ack
        | Response::BlobEndpoint { .. } => Err(JoinError::Unexpected("something else").into()),
    }
}

/// A clone that failed after the role was granted: said with what the
/// person has now and how to finish, with the fault of the failure.
fn after_grant(e: ServiceError, role: Role, inviter: &PeerKey, id: &str) -> ServiceError {
    let message = format!(
        "{} granted you the {role} role, but the clone failed: {e}. Finish with `tandem project clone {id}` while their node is running",
        inviter.short()
    );
    match e.fault() {
        Fault::Conflict => ServiceError::Conflict(message),
        Fault::BadRequest | Fault::NotFound | Fault::Unprocessable => {
            ServiceError::BadRequest(message)
        }
        Fault::Unavailable => ServiceError::Net(NetError::Request(message)),
        Fault::Node => ServiceError::failed(message, e),
    }
}

/// Connects to the inviter: every address of the ticket at once, done as
/// soon as one connects; then, if none did, through the peers this node is
/// connected to (a hub knows where its members are).
async fn reach(net: &NetHandle, ticket: &Ticket) -> Result<(), ServiceError> {
    let inviter = ticket.inviter;
    if net.connected().await?.contains(&inviter) {
        return Ok(());
    }
    let id = inviter.to_peer_id();
    let addresses: Vec<String> = ticket
        .addresses
        .iter()
        .filter_map(|bytes| libp2p::Multiaddr::try_from(bytes.clone()).ok())
        .map(|addr| format!("{addr}/p2p/{id}"))
        .collect();
    let mut dials: futures::stream::FuturesUnordered<_> = addresses
        .iter()
        .map(|address| async move {
            let result = tokio::time::timeout(DIAL_FOR, net.dial(address)).await;
            (address, result)
        })
        .collect();
    let mut tried = Vec::new();
    while let Some((address, result)) = dials.next().await {
        match result {
            Ok(Ok(key)) if key == inviter => return Ok(()),
            Ok(Ok(_)) => tried.push(format!("{address} (another node answered)")),
            Ok(Err(e)) => tried.push(format!("{address} ({e})")),
            Err(_) => tried.push(format!("{address} (no answer in {} s)", DIAL_FOR.as_secs())),
        }
        // A failed dial fails every pending dial of the same peer, even
        // one whose connection then comes up: ask the network itself.
        if net.connected().await?.contains(&inviter) {
            return Ok(());
        }
    }
    match tokio::time::timeout(DIAL_FOR, net.find(&inviter)).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => tried.push(format!("through connected peers ({e})")),
        Err(_) => tried.push("through connected peers (no answer)".into()),
    }
    if net.connected().await?.contains(&inviter) {
        return Ok(());
    }
    Err(JoinError::Unreachable {
        inviter: inviter.short(),
        tried: tried.join("; "),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::world::World;
    use tandem_protocol::invite::InviteSecret;

    const PROJECT: &str = "survey";

    /// `/ip4/127.0.0.1/tcp/4001`: the in-memory network dials nothing, and
    /// the joiner is connected to the inviter already.
    fn address() -> Vec<Vec<u8>> {
        vec![
            libp2p::Multiaddr::from(std::net::Ipv4Addr::LOCALHOST)
                .with(libp2p::multiaddr::Protocol::Tcp(4001))
                .to_vec(),
        ]
    }

    /// The ticket with another secret: what a prober or forger holds.
    fn forged(ticket: &str, secret: [u8; 32]) -> String {
        let mut ticket = Ticket::decode(ticket).expect("ticket");
        ticket.secret = InviteSecret::from_bytes(secret);
        ticket.encode().expect("encode")
    }

    /// Ada invites Bob by ticket alone (no key exchanged, no share): he
    /// joins as writer and holds the project; the ticket then works for
    /// nobody else; a wrong secret is answered as an unknown project.
    #[tokio::test]
    async fn a_ticket_joins_once_and_a_wrong_one_learns_nothing() {
        let mut world = World::new();
        let ada = world.add("Ada");
        let bob = world.add("Bob");
        let cy = world.add("Cy");
        world.connect(ada, bob);
        world.connect(ada, cy);
        world[ada]
            .service
            .create_project(PROJECT, "A field survey", None)
            .expect("create");
        world[ada].commit_file(PROJECT, "code/analysis.py", "print(1)\n");
        let invite = world[ada]
            .service
            .make_invite(PROJECT, "writer", None, address())
            .expect("invite");
        assert!(invite.ticket.starts_with("tandem:"), "{}", invite.ticket);
        assert!(invite.ticket.len() < 200, "short: {}", invite.ticket);
        let stored = std::fs::read_to_string(
            world[ada]
                .service
                .home()
                .root()
                .join(crate::access::invites::FILE),
        )
        .expect("invites.json");
        let secret = Ticket::decode(&invite.ticket).expect("ticket").secret;
        assert!(
            !stored.contains(&hex::encode(secret.as_bytes())),
            "only a hash of the secret is kept"
        );

        // Probing: a wrong secret for the project, and any secret for a
        // project that does not exist, get the same answer.
        let probe = world[cy]
            .service
            .join(&forged(&invite.ticket, [9; 32]), None, true)
            .await
            .expect_err("wrong secret");
        assert!(
            probe.to_string().contains("does not accept this invite"),
            "{probe}"
        );
        let nowhere = Request::Join {
            project: tandem_protocol::project::Genesis::create(
                &"elsewhere".parse().expect("name"),
                &tandem_protocol::SecretKey::from_bytes([4; 32]),
                0,
                [4; 16],
            )
            .project_id(),
            secret: InviteSecret::from_bytes([9; 32]),
        };
        let unknown = world[cy]
            .net
            .request(&world[ada].key(), nowhere)
            .await
            .expect("answered");
        let answers: Vec<Response> = world
            .network
            .exchanges()
            .into_iter()
            .filter(|e| matches!(e.request, Request::Join { .. }))
            .map(|e| e.response)
            .collect();
        assert_eq!(answers, vec![Response::Denied, Response::Denied]);
        assert_eq!(unknown, Response::Denied);

        // Bob joins: the grant is an ordinary one, and he holds the project.
        let joined = world[bob]
            .service
            .join(&invite.ticket, None, true)
            .await
            .expect("join");
        assert_eq!(joined.name, PROJECT);
        assert_eq!(joined.role, Some(Role::Writer));
        assert_eq!(world[bob].head(PROJECT), world[ada].head(PROJECT));
        let members = world[ada].service.members(PROJECT).expect("members");
        let bob_did = world[bob].did();
        let member = members
            .members
            .iter()
            .find(|m| m.did == bob_did)
            .expect("Bob is a member");
        assert_eq!(member.role, Role::Writer);
        assert_eq!(member.granted_by, world[ada].did());
        let feed = world[ada]
            .service
            .activity(PROJECT, &Default::default())
            .expect("activity");
        assert!(
            feed.iter()
                .any(|e| e.entry.message.starts_with("Granted writer to")),
            "the grant is in the activity"
        );

        // Once used, the ticket works for nobody else; Bob cannot join
        // twice; nothing more was granted.
        let again = world[cy]
            .service
            .join(&invite.ticket, None, true)
            .await
            .expect_err("used");
        assert!(again.to_string().contains("already used"), "{again}");
        let twice = world[bob]
            .service
            .join(&invite.ticket, None, true)
            .await
            .expect_err("already here");
        assert_eq!(twice.fault(), Fault::Conflict);
        let cy_did = world[cy].did();
        let after = world[ada].service.members(PROJECT).expect("members");
        assert!(after.members.iter().all(|m| m.did != cy_did));
        assert_eq!(after.members.len(), 2);
        assert_eq!(
            world[ada].service.list_invites(PROJECT).expect("list")[0].used_by,
            Some(bob_did)
        );
    }

    /// A reader's invite gives reading only; an invite revoked, or expired
    /// by the inviter's own record whatever the ticket says, is refused;
    /// only a manager invites.
    #[tokio::test]
    async fn roles_expiry_and_revocation_are_the_inviters_to_decide() {
        let mut world = World::new();
        let ada = world.add("Ada");
        let rex = world.add("Rex");
        let cy = world.add("Cy");
        world.connect(ada, rex);
        world.connect(ada, cy);
        world[ada]
            .service
            .create_project(PROJECT, "", None)
            .expect("create");
        world[ada].commit_file(PROJECT, "code/a.py", "print(1)\n");
        let reader = world[ada]
            .service
            .make_invite(PROJECT, "reader", Some("2h"), address())
            .expect("invite");
        let joined = world[rex]
            .service
            .join(&reader.ticket, None, true)
            .await
            .expect("join");
        assert_eq!(joined.role, Some(Role::Reader));
        // A reader cannot invite.
        let refused = world[rex]
            .service
            .make_invite(PROJECT, "writer", None, address())
            .expect_err("a reader invites");
        assert!(
            refused.to_string().contains("only admins and the owner"),
            "{refused}"
        );
        assert!(
            world[ada]
                .service
                .make_invite(PROJECT, "owner", None, address())
                .is_err()
        );

        // Revoked: the ticket is then unknown.
        let revoked = world[ada]
            .service
            .make_invite(PROJECT, "writer", None, address())
            .expect("invite");
        world[ada]
            .service
            .revoke_invite(PROJECT, &revoked.id)
            .expect("revoke");
        let e = world[cy]
            .service
            .join(&revoked.ticket, None, true)
            .await
            .expect_err("revoked");
        assert!(e.to_string().contains("does not accept"), "{e}");

        // Expired by Ada's record, though the ticket still claims a day.
        let expiring = world[ada]
            .service
            .make_invite(PROJECT, "writer", Some("1d"), address())
            .expect("invite");
        let path = world[ada]
            .service
            .home()
            .root()
            .join(crate::access::invites::FILE);
        let mut file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        for invite in file["invites"].as_array_mut().expect("invites") {
            invite["expires_ms"] = serde_json::json!(now_ms() - 1_000);
        }
        std::fs::write(&path, serde_json::to_vec(&file).expect("encode")).expect("write");
        let e = world[cy]
            .service
            .join(&expiring.ticket, None, true)
            .await
            .expect_err("expired");
        assert!(e.to_string().contains("expired"), "{e}");
        // A ticket whose own expiry passed is refused without asking.
        let mut old = Ticket::decode(&expiring.ticket).expect("ticket");
        old.expires_ms = now_ms() - 1_000;
        let e = world[cy]
            .service
            .join(&old.encode().expect("encode"), None, true)
            .await
            .expect_err("expired ticket");
        assert!(e.to_string().contains("expired at"), "{e}");
        let garbage = world[cy]
            .service
            .join("tandem:nonsense", None, true)
            .await
            .expect_err("garbage");
        assert!(
            garbage.to_string().contains("not a usable invite ticket"),
            "{garbage}"
        );
        assert!(
            world[cy].service.project(PROJECT).is_err(),
            "Cy has nothing"
        );
    }

    #[test]
    fn each_answer_says_what_happened() {
        assert_eq!(
            granted(Response::Joined { role: Role::Writer }).ok(),
            Some(Role::Writer)
        );
        let denied = granted(Response::Denied).expect_err("denied");
        assert!(
            denied.to_string().contains("does not accept this invite"),
            "{denied}"
        );
        assert_eq!(denied.fault(), Fault::BadRequest);
        let used = granted(Response::JoinRefused {
            reason: JoinRefusal::Used,
        })
        .expect_err("used");
        assert!(used.to_string().contains("already used"), "{used}");
        let failed = granted(Response::Failed {
            message: "disk full".into(),
        })
        .expect_err("failed");
        assert_eq!(failed.fault(), Fault::Unavailable);
        assert!(granted(Response::Ack).is_err());
    }

    #[test]
    fn a_clone_failing_after_the_grant_says_how_to_finish() {
        let inviter = tandem_protocol::SecretKey::from_bytes([1; 32]).public();
        let e = after_grant(
            ServiceError::Conflict("a project named \"survey\" already exists".into()),
            Role::Writer,
            &inviter,
            "tp123",
        );
        assert_eq!(e.fault(), Fault::Conflict);
        let text = e.to_string();
        assert!(text.contains("granted you the writer role"), "{text}");
        assert!(text.contains("tandem project clone tp123"), "{text}");
    }
}
