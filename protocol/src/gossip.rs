//! Announcements over gossipsub: "this member's branch heads for this
//! project are now these", signed and pinned to the project.
//!
//! A node tells its project's members about new work by publishing its
//! signed heads ([`SignedRefs`]) on the project's topic; members relay it
//! through the mesh, so a member hears of a change even when it is not
//! connected to the writer. Three rules keep this private:
//!
//! - The topic is a hash of the project's [`Secret`] *and* its current
//!   access heads ([`topic`]), so it says nothing about the project. The
//!   secret comes from the genesis nonce, which travels only inside the
//!   project's history: the project id, which is shared more freely
//!   (invitations, offers, a revoked member's memory), is not enough.
//!   Members whose access views differ for a moment are on different
//!   topics; the node's direct announcement covers them until they agree.
//! - Gossipsub tells every connected peer which topics a node is on, so
//!   anyone may learn a topic string and subscribe to it. The payload is
//!   therefore sealed (XChaCha20-Poly1305) with a key derived from the same
//!   secret inputs in another context ([`key`]): only a node that holds the
//!   project's genesis and its current access heads can read it. The access
//!   heads change with every grant and revocation and are only sent to
//!   members, so a revoked member cannot read anything published after the
//!   revocation, and a peer without a role never could.
//! - A receiver checks that the publisher signed the heads, that the
//!   message's transport-level source is that same key, and (in the node)
//!   that the key holds a role in the project before it acts or relays.

use chacha20poly1305::aead::Aead;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};

use crate::access::StatementId;
use crate::identity::PeerKey;
use crate::project::{ProjectId, SignedGenesis};
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
    #[error("announcement cannot be opened with this project's current key")]
    Sealed,
    #[error("announcement is for another project")]
    WrongProject,
}

/// Bytes of the random nonce that starts every sealed announcement.
pub const NONCE_LEN: usize = 24;

/// What only holders of a project know: derived from its genesis, whose
/// random nonce reaches a node only with the project's history (served to
/// members alone). Never sent anywhere.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret([u8; 32]);

impl Secret {
    /// The secret of the project this genesis founds.
    pub fn of(genesis: &SignedGenesis) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("tandem gossip secret v1");
        hasher.update(genesis.project_id().as_bytes());
        hasher.update(genesis.payload.nonce.as_bytes());
        Self(*hasher.finalize().as_bytes())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn access_digest(context: &str, secret: &Secret, access_heads: &[StatementId]) -> [u8; 32] {
    let mut heads: Vec<&[u8; 32]> = access_heads.iter().map(StatementId::as_bytes).collect();
    heads.sort();
    heads.dedup();
    let mut hasher = blake3::Hasher::new_derive_key(context);
    hasher.update(&secret.0);
    for head in heads {
        hasher.update(head);
    }
    *hasher.finalize().as_bytes()
}

/// The key that seals announcements while the project's access is at
/// these heads.
pub fn key(secret: &Secret, access_heads: &[StatementId]) -> [u8; 32] {
    access_digest("tandem gossip key v2", secret, access_heads)
}

/// The gossipsub topic of a project as its members see it now.
///
/// Order of `access_heads` does not matter; the result reveals neither the
/// project id nor the secret.
pub fn topic(secret: &Secret, access_heads: &[StatementId]) -> String {
    let digest = access_digest("tandem gossip topic v2", secret, access_heads);
    format!("tandem/p/{}", hex::encode(digest))
}

/// The bytes to publish: the signed heads sealed with the project's
/// current key. `nonce` must be fresh random bytes (the caller's, so this
/// crate stays free of I/O).
pub fn encode(
    refs: &SignedRefs,
    secret: &Secret,
    access_heads: &[StatementId],
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, GossipError> {
    if refs.payload.heads.len() > MAX_REFS {
        return Err(GossipError::TooManyRefs(refs.payload.heads.len()));
    }
    let plain = refs.to_json().into_bytes();
    let cipher = XChaCha20Poly1305::new(&key(secret, access_heads).into());
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), plain.as_slice())
        .map_err(|_| GossipError::Sealed)?;
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&sealed);
    if bytes.len() > MAX_ANNOUNCEMENT {
        return Err(GossipError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// Checks a received announcement: size, shape, signature, and that the
/// key which published it (gossipsub's signed `source`) is the key that
/// signed the heads, so no one can re-publish another member's heads as
/// their own or forge someone else's.
pub fn decode(
    bytes: &[u8],
    source: Option<&PeerKey>,
    project: &ProjectId,
    secret: &Secret,
    access_heads: &[StatementId],
) -> Result<Refs, GossipError> {
    if bytes.len() > MAX_ANNOUNCEMENT {
        return Err(GossipError::TooLarge(bytes.len()));
    }
    let source = source.ok_or(GossipError::Anonymous)?;
    if bytes.len() < NONCE_LEN {
        return Err(GossipError::Sealed);
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(&key(secret, access_heads).into());
    let plain = cipher
        .decrypt(XNonce::from_slice(nonce), sealed)
        .map_err(|_| GossipError::Sealed)?;
    let signed: SignedRefs =
        serde_json::from_slice(&plain).map_err(|e| GossipError::Malformed(e.to_string()))?;
    if signed.payload.heads.len() > MAX_REFS {
        return Err(GossipError::TooManyRefs(signed.payload.heads.len()));
    }
    signed.verify()?;
    if &signed.payload.project != project {
        return Err(GossipError::WrongProject);
    }
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

    fn genesis(byte: u8) -> SignedGenesis {
        crate::project::Genesis::create(
            &"p".parse().expect("test fixture"),
            &SecretKey::from_bytes([0x44; 32]),
            0,
            [byte; 16],
        )
    }

    fn project(byte: u8) -> ProjectId {
        genesis(byte).project_id()
    }

    fn secret(byte: u8) -> Secret {
        Secret::of(&genesis(byte))
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
        .expect("test fixture")
    }

    fn statement_id(byte: u8) -> StatementId {
        hex::encode([byte; 32]).parse().expect("test fixture")
    }

    #[test]
    fn topic_depends_on_the_secret_and_access_but_not_order() {
        let (a, b) = (statement_id(1), statement_id(2));
        let s = secret(7);
        assert_eq!(topic(&s, &[a, b]), topic(&s, &[b, a]));
        assert_ne!(
            topic(&s, &[a]),
            topic(&s, &[a, b]),
            "a grant moves the topic"
        );
        assert_ne!(topic(&s, &[a]), topic(&secret(8), &[a]));
        let p = project(7);
        assert!(!topic(&s, &[a]).contains(&p.to_string()));
        assert!(!topic(&s, &[a]).contains(&hex::encode(p.as_bytes())));
        assert_ne!(
            key(&s, &[a]).to_vec(),
            hex::decode(topic(&s, &[a]).trim_start_matches("tandem/p/")).expect("test fixture"),
            "the topic, which anyone may see, is not the key"
        );
    }

    #[test]
    fn the_project_id_alone_derives_nothing() {
        // Whoever knows the id and the heads (a stranger who was told the
        // id, say) but not the genesis cannot make a secret from them:
        // the id is an input to the secret, never the secret itself.
        let g = genesis(3);
        let mut forged = g.clone();
        forged.payload.nonce = hex::encode([0u8; 16]);
        assert_ne!(Secret::of(&g), Secret::of(&forged));
        assert_ne!(
            Secret::of(&g).0,
            *g.project_id().as_bytes(),
            "the secret is not the id"
        );
        assert!(!format!("{:?}", Secret::of(&g)).contains(&hex::encode(Secret::of(&g).0)));
    }

    #[test]
    fn round_trip_checks_seal_signature_and_source() {
        let alice = SecretKey::from_bytes([0x11; 32]);
        let mallory = SecretKey::from_bytes([0x22; 32]);
        let (p, s) = (project(1), secret(1));
        let access = [statement_id(1)];
        let refs = heads_of(&alice, p, "abc");
        let bytes = encode(&refs, &s, &access, [7; NONCE_LEN]).expect("test fixture");
        assert!(
            !String::from_utf8_lossy(&bytes).contains("abc"),
            "the heads travel sealed"
        );
        assert_eq!(
            decode(&bytes, Some(&alice.public()), &p, &s, &access).expect("test fixture"),
            refs.payload
        );
        assert!(matches!(
            decode(&bytes, Some(&mallory.public()), &p, &s, &access),
            Err(GossipError::WrongSource { .. })
        ));
        assert_eq!(
            decode(&bytes, None, &p, &s, &access),
            Err(GossipError::Anonymous)
        );

        // A forged body signed by nobody, sealed with the right key.
        let mut forged = refs.clone();
        forged.payload.heads[0].1 = "def".into();
        let bytes = encode(&forged, &s, &access, [8; NONCE_LEN]).expect("test fixture");
        assert!(matches!(
            decode(&bytes, Some(&alice.public()), &p, &s, &access),
            Err(GossipError::Signature(_))
        ));

        // Heads signed for another project, sealed with this one's key.
        let other = heads_of(&alice, project(2), "abc");
        let mut sealed_here = encode(&other, &s, &access, [9; NONCE_LEN]).expect("test fixture");
        let cipher = XChaCha20Poly1305::new(&key(&s, &access).into());
        let plain = other.to_json().into_bytes();
        sealed_here.truncate(NONCE_LEN);
        sealed_here.extend(
            cipher
                .encrypt(XNonce::from_slice(&[9; NONCE_LEN]), plain.as_slice())
                .expect("test fixture"),
        );
        assert_eq!(
            decode(&sealed_here, Some(&alice.public()), &p, &s, &access),
            Err(GossipError::WrongProject)
        );
    }

    #[test]
    fn a_revoked_member_cannot_open_what_comes_after() {
        let alice = SecretKey::from_bytes([0x11; 32]);
        let (p, s) = (project(1), secret(1));
        let before = [statement_id(1)];
        let after = [statement_id(1), statement_id(3)];
        let bytes =
            encode(&heads_of(&alice, p, "abc"), &s, &after, [1; NONCE_LEN]).expect("test fixture");
        assert_eq!(
            decode(&bytes, Some(&alice.public()), &p, &s, &before),
            Err(GossipError::Sealed),
            "who knows only the old access heads learns nothing"
        );
        assert_eq!(
            decode(&bytes, Some(&alice.public()), &p, &secret(9), &after),
            Err(GossipError::Sealed),
            "who knows the id and the heads but not the genesis learns nothing"
        );
    }

    #[test]
    fn bad_input_is_refused_without_panicking() {
        let alice = SecretKey::from_bytes([0x33; 32]);
        let me = Some(alice.public());
        let (p, s) = (project(1), secret(1));
        let access = [statement_id(1)];
        for bytes in [&b""[..], b"{", b"null", &[0xff; 40], &[0; NONCE_LEN]] {
            assert_eq!(
                decode(bytes, me.as_ref(), &p, &s, &access),
                Err(GossipError::Sealed)
            );
        }
        let huge = vec![b' '; MAX_ANNOUNCEMENT + 1];
        assert!(matches!(
            decode(&huge, me.as_ref(), &p, &s, &access),
            Err(GossipError::TooLarge(_))
        ));
        // Sealed garbage: opens, but is not a signed heads document.
        let cipher = XChaCha20Poly1305::new(&key(&s, &access).into());
        let mut bytes = vec![5; NONCE_LEN];
        bytes.extend(
            cipher
                .encrypt(XNonce::from_slice(&[5; NONCE_LEN]), &b"[1,2]"[..])
                .expect("test fixture"),
        );
        assert!(matches!(
            decode(&bytes, me.as_ref(), &p, &s, &access),
            Err(GossipError::Malformed(_))
        ));
        let mut refs = heads_of(&alice, p, "abc").payload;
        refs.heads = (0..=MAX_REFS)
            .map(|i| (format!("b{i}"), "0".into()))
            .collect();
        let signed = Signed::sign(refs, &alice).expect("test fixture");
        assert!(matches!(
            encode(&signed, &s, &access, [0; NONCE_LEN]),
            Err(GossipError::TooManyRefs(_))
        ));
    }
}
