//! Messages between nodes, with explicit size bounds.
//!
//! Every exchange is one request and one response over an authenticated
//! connection (the requester's key is known from the transport). A node
//! answers [`Response::Denied`] alike for projects it does not have and for
//! projects the requester may not read, so a peer without a role learns
//! nothing, not even that the project exists.

use serde::{Deserialize, Serialize};

use crate::access::{Role, SignedStatement, StatementId};
use crate::activity::SignedFeedHeads;
use crate::identity::PeerKey;
use crate::invite::decide::JoinRefusal;
use crate::invite::ticket::InviteSecret;
use crate::project::ProjectId;
use crate::signed::{Signable, Signed, SignedError};

/// Protocol name on the wire; the version changes with incompatible edits.
pub const PROTOCOL: &str = "/tandem/sync/1";
/// Largest request accepted.
pub const MAX_REQUEST: u64 = 1024 * 1024;
/// Largest response accepted (a pack of history, a feed bundle).
pub const MAX_RESPONSE: u64 = 512 * 1024 * 1024;
/// Most refs one announcement may carry.
pub const MAX_REFS: usize = 1_000;
/// Most writers' refs one answer relays.
pub const MAX_RELAYED: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Which projects may I read on your node?
    Projects,
    /// Every access statement of a project.
    Access {
        project: ProjectId,
        /// The requester's access heads: only statements beyond them come back.
        #[serde(default)]
        have: Vec<StatementId>,
    },
    /// Your signed branch heads for a project.
    Refs { project: ProjectId },
    /// Git objects reachable from `want` and not from `have` (hex ids).
    Pack {
        project: ProjectId,
        want: Vec<String>,
        have: Vec<String>,
    },
    /// Activity changes beyond the heads I hold, per writer.
    Feed {
        project: ProjectId,
        have: Vec<WriterHeads>,
    },
    /// I have something new for this project; sync when you can. Answered
    /// with `Ack` whether or not the project is known, so it reveals nothing.
    Announce { project: ProjectId },
    /// Where does your blob endpoint listen? Blobs move over iroh, whose
    /// endpoint id is the same key as this connection's peer id.
    BlobEndpoint,
    /// I hold an invite ticket you made for this project: grant me its
    /// role (see `crate::invite`). A wrong secret is answered `Denied`,
    /// exactly as a project not held here.
    Join {
        project: ProjectId,
        secret: InviteSecret,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Projects {
        offers: Vec<Offer>,
    },
    Access {
        statements: Vec<SignedStatement>,
    },
    Refs {
        refs: SignedRefs,
        /// Other writers' refs this peer holds, each as its writer signed
        /// it: how a member that may not write (a hub's replica) passes on
        /// what writers did. At most [`MAX_RELAYED`].
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        relayed: Vec<SignedRefs>,
    },
    Pack {
        #[serde(with = "serde_bytes_compat")]
        pack: Vec<u8>,
    },
    Feed {
        bundles: Vec<FeedBundle>,
    },
    /// An announcement was received.
    Ack,
    /// The UDP port of the blob endpoint, and the addresses it is bound to
    /// (an unspecified address means every interface: use the one this
    /// connection came from).
    BlobEndpoint {
        port: u16,
        addresses: Vec<String>,
        /// The relay this endpoint can be reached through (its hub's, an
        /// `http(s)://` URL), for peers whose NATs keep them apart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        relay: Option<String>,
    },
    /// A join was accepted: the requester holds `role` now (and may clone).
    Joined {
        role: Role,
    },
    /// A join with the right secret was refused, and why.
    JoinRefused {
        reason: JoinRefusal,
    },
    /// Unknown project or no right to read it: deliberately the same.
    Denied,
    /// The request was understood but failed; the message is for logs.
    Failed {
        message: String,
    },
}

/// A project a peer may fetch from this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub project: ProjectId,
    pub name: String,
    pub owner: PeerKey,
    /// The requester's role, as this node evaluates it.
    pub role: Option<Role>,
}

/// One writer's document heads, as a requester holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterHeads {
    pub writer: PeerKey,
    pub heads: Vec<String>,
}

/// The missing part of one writer's document, and the heads it ends at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedBundle {
    pub heads: SignedFeedHeads,
    #[serde(with = "serde_bytes_compat")]
    pub bundle: Vec<u8>,
}

/// A Git object id as peers must name it: exactly 40 lowercase hex digits.
///
/// Git resolves anything shorter as an abbreviation (`git pack-objects`
/// would pack whatever object the prefix happens to match, named or not),
/// and libgit2 pads it with zeros; so ids from the wire are parsed into
/// this type before they reach either, and every other form is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(String);

/// Why a text is not a full object id. Holds at most the first 64
/// characters of the text, so a hostile megabyte never reaches a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{shown:?} is not a full Git object id (40 lowercase hex digits); abbreviated and other forms are refused"
)]
pub struct OidError {
    pub shown: String,
}

impl Oid {
    /// Length of a SHA-1 object id in hex.
    pub const LEN: usize = 40;

    pub fn parse(text: &str) -> Result<Self, OidError> {
        let full = text.len() == Self::LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if full {
            Ok(Self(text.to_owned()))
        } else {
            Err(OidError {
                shown: text.chars().take(64).collect(),
            })
        }
    }

    /// Parses every id of a list (a pack request's `want` or `have`),
    /// refusing the list if any one is not full.
    pub fn parse_all(texts: &[String]) -> Result<Vec<Self>, OidError> {
        texts.iter().map(|t| Self::parse(t)).collect()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Oid {
    type Err = OidError;

    fn from_str(text: &str) -> Result<Self, OidError> {
        Self::parse(text)
    }
}

impl std::fmt::Display for Oid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Oid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A peer's branch heads for one project, signed by that peer and pinned to
/// the project id, so they cannot be replayed elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refs {
    pub project: ProjectId,
    pub peer: PeerKey,
    /// Branch name to commit id (hex).
    pub heads: Vec<(String, String)>,
    pub time_ms: i64,
}

impl Signable for Refs {
    const DOMAIN: &'static str = "tandem/refs/v1";

    fn signer(&self) -> &PeerKey {
        &self.peer
    }
}

pub type SignedRefs = Signed<Refs>;

/// Why a peer's refs were not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RefsError {
    #[error("refs are for another project")]
    WrongProject,
    #[error("refs were signed by {signed}, not by the peer that sent them ({sent})")]
    WrongPeer { signed: String, sent: String },
    #[error("refs list {0} heads; the limit is {MAX_REFS}")]
    TooMany(usize),
    #[error("refs name a bad commit: {0}")]
    BadOid(OidError),
    #[error(transparent)]
    Signature(#[from] SignedError),
}

impl SignedRefs {
    /// Verifies that these refs came from `sender`, for `project`, intact.
    pub fn check(&self, project: &ProjectId, sender: &PeerKey) -> Result<(), RefsError> {
        if &self.payload.project != project {
            return Err(RefsError::WrongProject);
        }
        if &self.payload.peer != sender {
            return Err(RefsError::WrongPeer {
                signed: self.payload.peer.to_did(),
                sent: sender.to_did(),
            });
        }
        if self.payload.heads.len() > MAX_REFS {
            return Err(RefsError::TooMany(self.payload.heads.len()));
        }
        for (_, oid) in &self.payload.heads {
            Oid::parse(oid).map_err(RefsError::BadOid)?;
        }
        self.verify()?;
        Ok(())
    }

    /// The commit a branch points at.
    pub fn head(&self, branch: &str) -> Option<&str> {
        self.payload
            .heads
            .iter()
            .find(|(name, _)| name == branch)
            .map(|(_, oid)| oid.as_str())
    }
}

impl Request {
    /// Encodes for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes untrusted bytes, refusing oversized input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() as u64 > MAX_REQUEST {
            return Err(format!(
                "request of {} bytes exceeds {MAX_REQUEST}",
                bytes.len()
            ));
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// Byte buffers as base64-free JSON would be 3x larger; as a hex string
/// they are 2x. We keep JSON on the wire for debuggability and encode bytes
/// as hex.
mod serde_bytes_compat {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SecretKey;
    use crate::testing::project;

    #[test]
    fn refs_are_pinned_to_project_and_sender() {
        let peer = SecretKey::from_bytes([1; 32]);
        let refs = Refs {
            project: project(1),
            peer: peer.public(),
            heads: vec![("main".into(), "a".repeat(40))],
            time_ms: 5,
        };
        let signed = Signed::sign(refs, &peer).expect("sign");
        assert_eq!(signed.check(&project(1), &peer.public()), Ok(()));
        assert_eq!(
            signed.check(&project(2), &peer.public()),
            Err(RefsError::WrongProject)
        );
        let other = SecretKey::from_bytes([2; 32]).public();
        assert!(matches!(
            signed.check(&project(1), &other),
            Err(RefsError::WrongPeer { .. })
        ));
        let mut tampered = signed.clone();
        tampered.payload.heads[0].1 = "b".repeat(40);
        assert!(matches!(
            tampered.check(&project(1), &peer.public()),
            Err(RefsError::Signature(_))
        ));
        assert_eq!(signed.head("main"), Some("a".repeat(40).as_str()));
    }

    #[test]
    fn only_full_lowercase_object_ids_parse() {
        let full = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(Oid::parse(full).map(|o| o.to_string()), Ok(full.to_owned()));
        for bad in [
            "",
            "abc1234",                                  // an abbreviation git would resolve
            &full[..39],                                // one short
            &format!("{full}0"),                        // one long
            &full.to_uppercase(),                       // uppercase
            "HEAD",                                     // a name git would resolve
            "--all",                                    // an option to pack-objects
            "^0123456789abcdef0123456789abcdef0123456", // a negation
            "0123456789abcdef0123456789abcdef0123456\n", // a line break
            "0123456789abcdef0123456789abcdef012345é",  // 40 bytes, not hex
        ] {
            let err = Oid::parse(bad).expect_err(bad);
            assert!(
                err.to_string().contains("not a full Git object id"),
                "{err}"
            );
        }
        let long = "a".repeat(1_000_000);
        assert_eq!(Oid::parse(&long).expect_err("long").shown.len(), 64);
        assert!(Oid::parse_all(&[full.to_owned(), "abc".into()]).is_err());
        assert_eq!(Oid::parse_all(&[full.to_owned()]).map(|v| v.len()), Ok(1));
    }

    #[test]
    fn refs_with_an_abbreviated_or_uppercase_head_are_refused() {
        let peer = SecretKey::from_bytes([1; 32]);
        for head in ["abc1234".to_owned(), "A".repeat(40)] {
            let refs = Refs {
                project: project(1),
                peer: peer.public(),
                heads: vec![("main".into(), head)],
                time_ms: 5,
            };
            let signed = Signed::sign(refs, &peer).expect("sign");
            assert!(matches!(
                signed.check(&project(1), &peer.public()),
                Err(RefsError::BadOid(_))
            ));
        }
    }

    #[test]
    fn requests_round_trip_and_garbage_is_refused() {
        let request = Request::Pack {
            project: project(1),
            want: vec!["a".repeat(40)],
            have: vec![],
        };
        assert_eq!(Request::from_bytes(&request.to_bytes()), Ok(request));
        assert!(Request::from_bytes(br#"{"type":"nope"}"#).is_err());
        assert!(Request::from_bytes(&vec![b' '; MAX_REQUEST as usize + 1]).is_err());
        let response = Response::Pack {
            pack: vec![0, 1, 255],
        };
        let text = serde_json::to_string(&response).expect("encode");
        assert_eq!(
            serde_json::from_str::<Response>(&text).expect("decode"),
            response
        );
    }
}
