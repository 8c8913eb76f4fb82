//! Invite links, the inviter's side: `tandem invite` makes a ticket (see
//! `tandem_protocol::invite`), and a peer's `Join` request presenting its
//! secret is answered here.
//!
//! The home keeps only a hash of each secret, in `invites.json`, written
//! whole through a temporary file and a rename. A join that is accepted
//! marks its invite used *before* the grant is signed (and unmarks it if
//! signing fails), so a crash between the two wastes the ticket rather
//! than letting a second person use it. Every read-modify-write of the
//! file happens under one lock, so two joins racing with one ticket cannot
//! both find it unused.
//!
//! Probing costs a stranger the same as anyone: the driver's per-peer
//! request budget applies to `Join` like every request, a 256-bit secret
//! cannot be guessed, and a wrong secret is answered `Denied` before the
//! project is even looked up, as a request about an unknown project is.

use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tandem_protocol::access::Role;
use tandem_protocol::api::{InviteCreated, InviteView};
use tandem_protocol::invite::{
    self, Decision, Invite, InviteSecret, MAX_ADDRESS_LEN, MAX_ADDRESSES, Standing, Ticket, Use,
};
use tandem_protocol::wire::Response;
use tandem_protocol::{PeerKey, ProjectId};

use crate::error::{ServiceError, io_context};
use crate::fsutil::atomic_write;
use crate::service::{Service, lock, now_ms};

/// Where the invites live, in the home's root.
pub const FILE: &str = "invites.json";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// How long a ticket works when no expiry is given.
pub const DEFAULT_EXPIRY_MS: i64 = 7 * DAY_MS;
/// The longest a ticket may work: a forgotten link should not open a
/// project for months.
pub const MAX_EXPIRY_MS: i64 = 90 * DAY_MS;
/// Most invites kept at once (pending and recently used or expired).
pub const MAX_INVITES: usize = 1_000;
/// Used and expired invites are kept this long (so a late joiner hears
/// "used" or "expired" rather than nothing), then dropped.
const KEEP_MS: i64 = 30 * DAY_MS;
/// Largest `invites.json` read: `MAX_INVITES` entries fit well within it.
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// Every read-modify-write of `invites.json` in this process holds this
/// (one process holds a home at a time).
static FILE_LOCK: Mutex<()> = Mutex::new(());

/// Why an invite could not be made, listed or revoked: the user's to fix,
/// except a damaged file, which the message names.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error(
        "cannot read the expiry {text:?}: use YYYY-MM-DD (the end of that day, UTC), YYYY-MM-DDTHH:MMZ, an RFC 3339 time, or a span like 3d or 12h"
    )]
    BadExpiry { text: String },
    #[error("the expiry {text:?} is not in the future")]
    PastExpiry { text: String },
    #[error("an invite may work for at most 90 days; {text:?} is later")]
    LongExpiry { text: String },
    #[error("invites give the reader, writer or admin role; the project has one owner")]
    Owner,
    #[error(
        "you are a {role} of {project}: only admins and the owner can invite (ask one of them, or for the admin role)"
    )]
    NotManager { role: Role, project: String },
    #[error("you have no role in {project}")]
    NoRole { project: String },
    #[error(
        "this node keeps {MAX_INVITES} invites already; revoke unused ones first (`tandem invite {project} --list`)"
    )]
    TooMany { project: String },
    #[error("this node has no address a colleague could dial yet (is `tandem up` listening?)")]
    NoAddress,
    #[error("{project} has no invite {id:?}; see `tandem invite {project} --list`")]
    NoSuchInvite { project: String, id: String },
    #[error("{path} is damaged ({detail}); move it away to start with no invites")]
    Damaged { path: String, detail: String },
}

impl From<InviteError> for ServiceError {
    fn from(e: InviteError) -> Self {
        match e {
            InviteError::NoSuchInvite { .. } => ServiceError::NoSuchFile(e.to_string()),
            InviteError::TooMany { .. } => ServiceError::Conflict(e.to_string()),
            InviteError::NoAddress => {
                ServiceError::Net(crate::p2p::handle::NetError::Request(e.to_string()))
            }
            InviteError::Damaged { .. } => ServiceError::failed("reading the invites", e),
            _ => ServiceError::refused(e),
        }
    }
}

/// The file's content: a version for later layouts, and the invites.
#[derive(Debug, Default, Serialize, Deserialize)]
struct InviteFile {
    version: u32,
    invites: Vec<Invite>,
}

impl Service {
    fn invites_path(&self) -> PathBuf {
        self.home().root().join(FILE)
    }

    /// The invites on disk (none when there is no file yet). Callers hold
    /// [`FILE_LOCK`].
    fn load_invites(&self) -> Result<InviteFile, ServiceError> {
        let path = self.invites_path();
        let damaged = |detail: String| InviteError::Damaged {
            path: path.display().to_string(),
            detail,
        };
        let bytes = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(InviteFile::default()),
            Err(e) => return Err(io_context(format!("reading {}", path.display()))(e)),
            Ok(meta) if meta.len() > MAX_FILE => {
                return Err(damaged(format!("{} bytes, more than {MAX_FILE}", meta.len())).into());
            }
            Ok(_) => {
                std::fs::read(&path).map_err(io_context(format!("reading {}", path.display())))?
            }
        };
        let file: InviteFile =
            serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        Ok(file)
    }

    /// Writes the invites whole, dropping those used or expired long ago.
    /// Callers hold [`FILE_LOCK`].
    fn save_invites(&self, file: &mut InviteFile, now: i64) -> Result<(), ServiceError> {
        file.version = 1;
        file.invites.retain(|i| {
            let done = i
                .used
                .as_ref()
                .map_or(i.expires_ms, |u| u.at_ms.min(i.expires_ms));
            now - done < KEEP_MS
        });
        let bytes = serde_json::to_vec_pretty(file)
            .map_err(|e| ServiceError::failed("encoding the invites", e))?;
        let path = self.invites_path();
        atomic_write(&path, &bytes, Some(0o600))
            .map_err(io_context(format!("writing {}", path.display())))
    }

    /// The project's id, after checking this node may grant roles in it.
    fn inviting(&self, name: &str) -> Result<ProjectId, ServiceError> {
        let handle = self.project(name)?;
        let project = self.lock_project(&handle);
        match project.access.role_of(&self.key().public(), now_ms()) {
            Some(role) if role.can_manage() => Ok(project.id()),
            Some(role) => Err(InviteError::NotManager {
                role,
                project: project.name.to_string(),
            }
            .into()),
            None => Err(InviteError::NoRole {
                project: project.name.to_string(),
            }
            .into()),
        }
    }

    /// `tandem invite NAME --role R [--expires E]`: a new single-use
    /// ticket for the project, naming where this node listens now.
    pub async fn create_invite(
        self: &std::sync::Arc<Self>,
        name: &str,
        role: &str,
        expires: Option<&str>,
    ) -> Result<InviteCreated, ServiceError> {
        let listening = self.net()?.addresses().await?;
        let addresses = ticket_addresses(&listening, &self.key().public());
        let (name, role, expires) = (name.to_owned(), role.to_owned(), expires.map(str::to_owned));
        self.blocking(move |s| s.make_invite(&name, &role, expires.as_deref(), addresses))
            .await
    }

    /// An invite naming `addresses` (see [`ticket_addresses`]): checks the
    /// role, the expiry and this node's right to grant, stores the hash of
    /// a fresh secret, and encodes the ticket.
    pub(crate) fn make_invite(
        &self,
        name: &str,
        role: &str,
        expires: Option<&str>,
        addresses: Vec<Vec<u8>>,
    ) -> Result<InviteCreated, ServiceError> {
        let role: Role = role.parse()?;
        if role == Role::Owner {
            return Err(InviteError::Owner.into());
        }
        let now = now_ms();
        let expires_ms = match expires {
            Some(text) => parse_expiry(text, now)?,
            None => now + DEFAULT_EXPIRY_MS,
        };
        let project = self.inviting(name)?;
        if addresses.is_empty() {
            return Err(InviteError::NoAddress.into());
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| {
            ServiceError::failed("drawing an invite secret", std::io::Error::other(e))
        })?;
        let secret = InviteSecret::from_bytes(secret);
        let invite = Invite::new(project, &secret, role, now, expires_ms);
        let id = invite.secret_hash.short_id();
        // Encoded before it is stored, so no invite is kept whose ticket
        // could not be made.
        let ticket = Ticket {
            project,
            inviter: self.key().public(),
            secret,
            expires_ms,
            addresses,
        }
        .encode()
        .map_err(|e| ServiceError::failed("encoding the ticket", e))?;
        {
            let _guard = lock(&FILE_LOCK);
            let mut file = self.load_invites()?;
            if file.invites.len() >= MAX_INVITES {
                return Err(InviteError::TooMany {
                    project: name.to_owned(),
                }
                .into());
            }
            file.invites.push(invite);
            self.save_invites(&mut file, now)?;
        }
        let expires = rfc3339(expires_ms);
        Ok(InviteCreated {
            message: format!(
                "Invite to {name} as {role} for one person, until {expires}. They paste it under \"Join with an invite\" on their Projects page (or run `tandem join TICKET`) while this node is running: {ticket}"
            ),
            ticket,
            id,
            role,
            expires,
            expires_ms,
        })
    }

    /// `tandem invite NAME --list`: the project's invites, newest first.
    pub fn list_invites(&self, name: &str) -> Result<Vec<InviteView>, ServiceError> {
        let project = self.inviting(name)?;
        let _guard = lock(&FILE_LOCK);
        let mut views: Vec<InviteView> = self
            .load_invites()?
            .invites
            .iter()
            .filter(|i| i.project == project)
            .map(|i| InviteView {
                id: i.secret_hash.short_id(),
                role: i.role,
                created_ms: i.created_ms,
                expires_ms: i.expires_ms,
                used_by: i.used.as_ref().map(|u| u.by.to_did()),
                used_ms: i.used.as_ref().map(|u| u.at_ms),
            })
            .collect();
        views.sort_by_key(|v| std::cmp::Reverse(v.created_ms));
        Ok(views)
    }

    /// `tandem invite NAME --revoke ID`: the ticket stops working (a role
    /// it already gave stays; `tandem revoke` takes that).
    pub fn revoke_invite(&self, name: &str, id: &str) -> Result<(), ServiceError> {
        let project = self.inviting(name)?;
        let _guard = lock(&FILE_LOCK);
        let mut file = self.load_invites()?;
        let before = file.invites.len();
        file.invites
            .retain(|i| !(i.project == project && i.secret_hash.short_id() == id));
        if file.invites.len() == before {
            return Err(InviteError::NoSuchInvite {
                project: name.to_owned(),
                id: id.chars().take(64).collect(),
            }
            .into());
        }
        self.save_invites(&mut file, now_ms())
    }

    /// Answers a peer's `Join`: `Joined` once the grant is signed, the
    /// reason when the secret was right but the invite cannot be taken,
    /// and `Denied`, as for an unknown project, otherwise.
    pub fn serve_join(
        &self,
        joiner: &PeerKey,
        project: &ProjectId,
        secret: &InviteSecret,
    ) -> Response {
        match self.answer_join(joiner, project, secret) {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(joiner = %joiner.short(), error = %e, "a join failed");
                Response::Failed {
                    message: format!("the inviter's node could not take the invite: {e}"),
                }
            }
        }
    }

    fn answer_join(
        &self,
        joiner: &PeerKey,
        project: &ProjectId,
        secret: &InviteSecret,
    ) -> Result<Response, ServiceError> {
        let _guard = lock(&FILE_LOCK);
        let mut file = self.load_invites()?;
        let Some(at) = invite::find(&file.invites, project, secret) else {
            return Ok(Response::Denied);
        };
        let now = now_ms();
        let name = self.find_by_id(project)?;
        let standing = match &name {
            Some(name) => {
                let handle = self.project(name.as_str())?;
                let held = self.lock_project(&handle);
                let roles = held.access.roles(now);
                Some(Standing {
                    inviter: roles.role_of(&self.key().public()),
                    joiner: roles.role_of(joiner),
                })
            }
            None => None,
        };
        let (role, grant) = match invite::decide(&file.invites[at], joiner, now, standing) {
            Decision::Accept { role, grant } => (role, grant),
            Decision::Refuse(refusal) => {
                return Ok(match refusal.told() {
                    Some(reason) => Response::JoinRefused { reason },
                    None => Response::Denied,
                });
            }
        };
        let Some(name) = name else {
            return Ok(Response::Denied);
        };
        if file.invites[at].used.is_none() {
            file.invites[at].used = Some(Use {
                by: *joiner,
                at_ms: now,
            });
            self.save_invites(&mut file, now)?;
        }
        if grant && let Err(e) = self.share(name.as_str(), &joiner.to_did(), role.as_str(), None) {
            // Give the ticket back: nothing was granted. Find it again,
            // since saving may have dropped others around it.
            if let Some(at) = invite::find(&file.invites, project, secret) {
                file.invites[at].used = None;
                if let Err(undo) = self.save_invites(&mut file, now) {
                    tracing::warn!(error = %undo, "an invite stays marked used");
                }
            }
            return Err(e);
        }
        tracing::info!(project = %name, joiner = %joiner.short(), %role, "granted a role for an invite");
        Ok(Response::Joined { role })
    }
}

/// The addresses a ticket carries: each of this node's, as a binary
/// multiaddr without the trailing `/p2p/<this node>` (the ticket names the
/// key once). Public ones first, then relayed, then the LAN, then loopback,
/// so the cap drops the least useful.
fn ticket_addresses(listening: &[String], me: &PeerKey) -> Vec<Vec<u8>> {
    use libp2p::Multiaddr;
    use libp2p::multiaddr::Protocol;
    let me = me.to_peer_id();
    let mut addresses: Vec<(u8, Vec<u8>)> = listening
        .iter()
        .filter_map(|text| {
            let mut addr: Multiaddr = text.parse().ok()?;
            if let Some(Protocol::P2p(id)) = addr.iter().last()
                && id.to_base58() == me
            {
                addr.pop();
            }
            let rank = rank(&addr);
            let bytes = addr.to_vec();
            (!bytes.is_empty() && bytes.len() <= MAX_ADDRESS_LEN).then_some((rank, bytes))
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
        .into_iter()
        .take(MAX_ADDRESSES)
        .map(|(_, bytes)| bytes)
        .collect()
}

/// How useful an address is to someone elsewhere: lower is better.
fn rank(addr: &libp2p::Multiaddr) -> u8 {
    use libp2p::multiaddr::Protocol;
    if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
        return 1;
    }
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) if ip.is_loopback() => 3,
        Some(Protocol::Ip6(ip)) if ip.is_loopback() => 3,
        Some(Protocol::Ip4(ip)) if ip.is_private() || ip.is_link_local() => 2,
        Some(Protocol::Ip6(ip)) if ip.is_unicast_link_local() || ip.is_unique_local() => 2,
        Some(Protocol::Ip4(ip)) if ip.is_unspecified() => 4,
        Some(Protocol::Ip6(ip)) if ip.is_unspecified() => 4,
        _ => 0,
    }
}

/// An invite's expiry from what a person types: `YYYY-MM-DD` (the end of
/// that day, UTC: "until the 31st" includes the 31st), `YYYY-MM-DDTHH:MMZ`,
/// RFC 3339, or a span from now (`30m`, `12h`, `3d`). It must be in the
/// future and at most [`MAX_EXPIRY_MS`] away.
pub fn parse_expiry(text: &str, now_ms: i64) -> Result<i64, InviteError> {
    let trimmed = text.trim();
    let bad = || InviteError::BadExpiry {
        text: trimmed.chars().take(64).collect(),
    };
    let at = if let Some(span) = parse_span(trimmed) {
        now_ms.checked_add(span).ok_or_else(bad)?
    } else if let Ok(time) = chrono::DateTime::parse_from_rfc3339(trimmed) {
        time.timestamp_millis()
    } else if let Ok(time) = chrono::NaiveDateTime::parse_from_str(
        trimmed.trim_end_matches('Z').trim_end_matches('z'),
        "%Y-%m-%dT%H:%M",
    ) {
        time.and_utc().timestamp_millis()
    } else if let Ok(date) = chrono::NaiveDate::parse_from_str(trimmed, "%Y-%m-%d") {
        let next = date.succ_opt().ok_or_else(bad)?;
        next.and_hms_opt(0, 0, 0)
            .ok_or_else(bad)?
            .and_utc()
            .timestamp_millis()
    } else {
        return Err(bad());
    };
    if at <= now_ms {
        return Err(InviteError::PastExpiry {
            text: trimmed.chars().take(64).collect(),
        });
    }
    if at - now_ms > MAX_EXPIRY_MS {
        return Err(InviteError::LongExpiry {
            text: trimmed.chars().take(64).collect(),
        });
    }
    Ok(at)
}

/// `30m`, `12h`, `3d` as milliseconds.
fn parse_span(text: &str) -> Option<i64> {
    let unit = match text.chars().last()? {
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => DAY_MS,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(unit)
}

/// A time as RFC 3339 in UTC, to the minute.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000_000; // 2026-05-28

    #[test]
    fn expiries_people_type() {
        let day = |text: &str| parse_expiry(text, NOW).expect(text);
        assert_eq!(day("3d"), NOW + 3 * DAY_MS);
        assert_eq!(day("12h"), NOW + 12 * 3_600_000);
        assert_eq!(day("30m"), NOW + 30 * 60_000);
        let end_of_day = chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
            .expect("time")
            .timestamp_millis();
        assert_eq!(day("2026-05-31"), end_of_day, "the whole day counts");
        let noon = chrono::DateTime::parse_from_rfc3339("2026-05-31T12:00:00Z")
            .expect("time")
            .timestamp_millis();
        assert_eq!(day("2026-05-31T12:00Z"), noon);
        assert_eq!(day("2026-05-31T12:00:00Z"), noon);
        assert_eq!(day("2026-05-31T14:00:00+02:00"), noon);
        for bad in [
            "",
            "soon",
            "3w",
            "d",
            "-3d",
            "1234567d",
            "2026-13-01",
            "31/05/2026",
        ] {
            assert!(
                matches!(parse_expiry(bad, NOW), Err(InviteError::BadExpiry { .. })),
                "{bad:?}"
            );
        }
        for past in ["2020-01-01", "0m"] {
            assert!(
                matches!(parse_expiry(past, NOW), Err(InviteError::PastExpiry { .. })),
                "{past:?}"
            );
        }
        assert!(matches!(
            parse_expiry("91d", NOW),
            Err(InviteError::LongExpiry { .. })
        ));
        assert_eq!(day("90d"), NOW + MAX_EXPIRY_MS);
        assert_eq!(rfc3339(noon), "2026-05-31T12:00Z");
    }

    #[test]
    fn tickets_carry_the_useful_addresses_first_without_the_own_id() {
        let me = tandem_protocol::SecretKey::from_bytes([3; 32]).public();
        let id = me.to_peer_id();
        let listening = vec![
            format!("/ip4/127.0.0.1/tcp/4001/p2p/{id}"),
            format!("/ip4/192.168.1.20/tcp/4001/p2p/{id}"),
            format!("/ip4/203.0.113.5/udp/4001/quic-v1/p2p/{id}"),
            format!(
                "/ip4/198.51.100.1/tcp/4001/p2p/12D3KooWGzHUtz5NKxf3cY1Uj6KTy5N6DTM4uq2HtwxRBxSbZRzc/p2p-circuit/p2p/{id}"
            ),
            "not an address".into(),
        ];
        let addresses: Vec<String> = ticket_addresses(&listening, &me)
            .into_iter()
            .map(|b| {
                libp2p::Multiaddr::try_from(b)
                    .expect("multiaddr")
                    .to_string()
            })
            .collect();
        assert_eq!(
            addresses,
            vec![
                "/ip4/203.0.113.5/udp/4001/quic-v1".to_owned(),
                "/ip4/198.51.100.1/tcp/4001/p2p/12D3KooWGzHUtz5NKxf3cY1Uj6KTy5N6DTM4uq2HtwxRBxSbZRzc/p2p-circuit".into(),
                "/ip4/192.168.1.20/tcp/4001".into(),
                "/ip4/127.0.0.1/tcp/4001".into(),
            ]
        );
        let many: Vec<String> = (0..20)
            .map(|i| format!("/ip4/10.0.0.{i}/tcp/4001/p2p/{id}"))
            .collect();
        assert_eq!(ticket_addresses(&many, &me).len(), MAX_ADDRESSES);
    }
}
