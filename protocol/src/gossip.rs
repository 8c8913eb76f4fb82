//! Announcements over gossipsub: "this member's branch heads for this
//! project are now these", signed and pinned to the project.
//!
//! A node tells its project's members about new work by publishing its
//! signed heads ([`SignedRefs`]) on the project's topic; members relay it
//! through the mesh, so a member hears of a change even when it is not
//! connected to the writer. Two rules keep this private:
//!
//! - The topic is a hash of the project id *and* the project's current
//!   access heads ([`topic`]). The project id is known only to those who
//!   were ever members, and the access heads change with every grant and
//!   revocation, so a revoked member cannot compute the topic any more,
//!   and a peer without a role never could. Members whose access views
//!   differ for a moment are on different topics; the node's direct
//!   announcement covers them until they agree.
//! - A receiver checks that the publisher signed the heads, that the
//!   message's transport-level source is that same key, and (in the node)
//!   that the key holds a role in the project before it acts or relays.

use crate::access::StatementId;
use crate::identity::PeerKey;
use crate::project::ProjectId;
use crate::signed::SignedError;
use crate::wire::{MAX_REFS, Refs, SignedRefs};

/// Largest announcement accepted or sent.
pub const MAX_ANNOUNCEMENT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GossipError {
    #[error("announcement of {0} bytes is larger than the {MAX_ANNOUNCEMENT}-byte limit")]
    TooLarge(usize),
    #[error("announcement is not a signed heads document: {0}")]
    Malformed(String),
    #[error("announcement carries {0} refs, more than the {MAX_REFS} allowed")]
    TooManyRefs(usize),
    #[error(transparent)]
    Signature(#[from] SignedError),
    #[error("announcement signed by {signer} but published by {source_key}")]
    WrongSource {
        signer: Box<PeerKey>,
        source_key: Box<PeerKey>,
    },
    #[error("announcement has no publisher: unsigned gossip is not accepted")]
    Anonymous,
}

/// The gossipsub topic of a project as its members see it now.
///
/// Order of `access_heads` does not matter; the result does not reveal
/// the project id.
pub fn topic(project: &ProjectId, access_heads: &[StatementId]) -> String {
    let mut heads: Vec<&[u8; 32]> = access_heads.iter().map(StatementId::as_bytes).collect();
    heads.sort();
    heads.dedup();
    let mut hasher = blake3::Hasher::new_derive_key("tandem gossip topic v1");
    hasher.update(project.as_bytes());
    for head in heads {
        hasher.update(head);
    }
    format!("tandem/p/{}", hasher.finalize().to_hex())
}

/// The bytes to publish.
pub fn encode(refs: &SignedRefs) -> Result<Vec<u8>, GossipError> {
    let bytes = refs.to_json().into_bytes();
    if bytes.len() > MAX_ANNOUNCEMENT {
        return Err(GossipError::TooLarge(bytes.len()));
    }
    if refs.payload.heads.len() > MAX_REFS {
        return Err(GossipError::TooManyRefs(refs.payload.heads.len()));
    }
    Ok(bytes)
}

/// Checks a received announcement: size, shape, signature, and that the
/// key which published it (gossipsub's signed `source`) is the key that
/// signed the heads, so no one can re-publish another member's heads as
/// their own or forge someone else's.
pub fn decode(bytes: &[u8], source: Option<&PeerKey>) -> Result<Refs, GossipError> {
    if bytes.len() > MAX_ANNOUNCEMENT {
        return Err(GossipError::TooLarge(bytes.len()));
    }
    let source = source.ok_or(GossipError::Anonymous)?;
    let signed: SignedRefs =
        serde_json::from_slice(bytes).map_err(|e| GossipError::Malformed(e.to_string()))?;
    if signed.payload.heads.len() > MAX_REFS {
        return Err(GossipError::TooManyRefs(signed.payload.heads.len()));
    }
    signed.verify()?;
    if &signed.payload.peer != source {
        return Err(GossipError::WrongSource {
            signer: Box::new(signed.payload.peer),
            source_key: Box::new(*source),
        });
    }
    Ok(signed.payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;
    use crate::signed::Signed;

    fn project(byte: u8) -> ProjectId {
        format!("tp{}", bs58::encode([byte; 32]).into_string())
            .parse()
            .unwrap()
    }

    fn heads_of(key: &SecretKey, project: ProjectId, head: &str) -> SignedRefs {
        Signed::sign(
            Refs {
                project,
                peer: key.public(),
                heads: vec![("main".into(), head.into())],
                time_ms: 1,
            },
            key,
        )
        .unwrap()
    }

    fn statement_id(byte: u8) -> StatementId {
        hex::encode([byte; 32]).parse().unwrap()
    }

    #[test]
    fn topic_depends_on_project_and_access_but_not_order() {
        let (a, b) = (statement_id(1), statement_id(2));
        let p = project(7);
        assert_eq!(topic(&p, &[a, b]), topic(&p, &[b, a]));
        assert_ne!(
            topic(&p, &[a]),
            topic(&p, &[a, b]),
            "a grant moves the topic"
        );
        assert_ne!(topic(&p, &[a]), topic(&project(8), &[a]));
        assert!(!topic(&p, &[a]).contains(&p.to_string()));
    }

    #[test]
    fn round_trip_checks_signature_and_source() {
        let alice = SecretKey::from_bytes([0x11; 32]);
        let mallory = SecretKey::from_bytes([0x22; 32]);
        let refs = heads_of(&alice, project(1), "abc");
        let bytes = encode(&refs).unwrap();
        assert_eq!(decode(&bytes, Some(&alice.public())).unwrap(), refs.payload);
        assert!(matches!(
            decode(&bytes, Some(&mallory.public())),
            Err(GossipError::WrongSource { .. })
        ));
        assert_eq!(decode(&bytes, None), Err(GossipError::Anonymous));

        let mut forged = refs.clone();
        forged.payload.heads[0].1 = "def".into();
        let bytes = serde_json::to_vec(&forged).unwrap();
        assert!(matches!(
            decode(&bytes, Some(&alice.public())),
            Err(GossipError::Signature(_))
        ));
    }

    #[test]
    fn bad_input_is_refused_without_panicking() {
        let alice = SecretKey::from_bytes([0x33; 32]);
        let me = Some(alice.public());
        for bytes in [&b""[..], b"{", b"null", b"[1,2]", &[0xff; 40]] {
            assert!(matches!(
                decode(bytes, me.as_ref()),
                Err(GossipError::Malformed(_))
            ));
        }
        let huge = vec![b' '; MAX_ANNOUNCEMENT + 1];
        assert!(matches!(
            decode(&huge, me.as_ref()),
            Err(GossipError::TooLarge(_))
        ));
        let mut refs = heads_of(&alice, project(1), "abc").payload;
        refs.heads = (0..=MAX_REFS)
            .map(|i| (format!("b{i}"), "0".into()))
            .collect();
        let signed = Signed::sign(refs, &alice).unwrap();
        let bytes = serde_json::to_vec(&signed).unwrap();
        assert!(matches!(
            decode(&bytes, me.as_ref()),
            Err(GossipError::TooManyRefs(_))
        ));
    }
}
