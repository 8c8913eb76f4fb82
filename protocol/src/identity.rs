//! Keys and their text forms.
//!
//! One 32-byte ed25519 secret is a peer's whole identity: it signs project
//! genesis documents, access statements and activity entries, and (in the
//! networking layer) it is also the libp2p and iroh identity, so a peer has
//! one key everywhere. Text forms are the `did:key:` method (for humans and
//! documents) and the libp2p `PeerId` (for network addresses); both parse
//! back to the same [`PeerKey`].

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, Verifier};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Multicodec prefix of an ed25519 public key (varint 0xed).
const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];
/// Identity multihash (code 0, length 36) of the libp2p protobuf
/// `PublicKey { Type: Ed25519 (1), Data: <32 bytes> }`.
const PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/// Why a key, signature or key file could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a peer key: expected a `did:key:z6Mk…` or a libp2p PeerId `12D3KooW…`, got {0:?}")]
    UnrecognisedForm(String),
    #[error("malformed key {0:?}: {1}")]
    Malformed(String, &'static str),
    #[error("secret key must be 32 bytes of hex (64 characters)")]
    BadSecret,
    #[error("signature must be 64 bytes of hex (128 characters)")]
    BadSignature,
}

/// The secret half of an identity. Never serialised except to the key file.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// Builds a key from 32 secret bytes; the caller supplies the randomness so
    /// this crate stays free of I/O and tests stay deterministic.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&bytes))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Parses the key file's hex form; whitespace around it is tolerated.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| KeyError::BadSecret)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadSecret)?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    pub fn public(&self) -> PeerKey {
        PeerKey(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public())
    }
}

/// A peer's public key: who signed something, who holds a role.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey([u8; 32]);

impl PeerKey {
    /// Accepts only points that ed25519 can verify against, so a `PeerKey`
    /// in hand is always usable.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| KeyError::Malformed(hex::encode(bytes), "not a valid ed25519 point"))?;
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `did:key:z…` (multibase base58btc of the multicodec-tagged key).
    pub fn to_did(&self) -> String {
        let mut bytes = Vec::with_capacity(34);
        bytes.extend_from_slice(&ED25519_MULTICODEC);
        bytes.extend_from_slice(&self.0);
        format!("did:key:z{}", bs58::encode(bytes).into_string())
    }

    /// The libp2p PeerId text form (`12D3KooW…`).
    pub fn to_peer_id(&self) -> String {
        let mut bytes = Vec::with_capacity(38);
        bytes.extend_from_slice(&PEER_ID_PREFIX);
        bytes.extend_from_slice(&self.0);
        bs58::encode(bytes).into_string()
    }

    /// A short form for display only (never for authority).
    pub fn short(&self) -> String {
        let did = self.to_did();
        format!("{}…{}", &did[..14], &did[did.len() - 6..])
    }

    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &signature).is_ok() && key.verify(message, &signature).is_ok()
    }

    fn from_prefixed(text: &str, encoded: &str, prefix: &[u8]) -> Result<Self, KeyError> {
        let bytes = bs58::decode(encoded)
            .into_vec()
            .map_err(|_| KeyError::Malformed(text.to_owned(), "not base58"))?;
        let key = bytes
            .strip_prefix(prefix)
            .ok_or(KeyError::Malformed(text.to_owned(), "not an ed25519 key"))?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| KeyError::Malformed(text.to_owned(), "wrong length"))?;
        Self::from_bytes(key)
    }
}

impl FromStr for PeerKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if let Some(encoded) = text.strip_prefix("did:key:z") {
            Self::from_prefixed(text, encoded, &ED25519_MULTICODEC)
        } else if text.starts_with("12D3KooW") {
            Self::from_prefixed(text, text, &PEER_ID_PREFIX)
        } else {
            Err(KeyError::UnrecognisedForm(text.to_owned()))
        }
    }
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_did())
    }
}

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerKey({})", self.short())
    }
}

impl Serialize for PeerKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_did())
    }
}

impl<'de> Deserialize<'de> for PeerKey {
    /// Parses without checking that the key is a valid curve point: that
    /// costs microseconds per key, and an invalid key can never verify a
    /// signature anyway ([`PeerKey::verify`] checks). Feeds hold one key per
    /// entry, so this keeps loading them fast.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        // Documents repeat the same few keys thousands of times; base58
        // decoding dominates parsing, so remember the last key per thread.
        thread_local! {
            static LAST: std::cell::RefCell<Option<(String, PeerKey)>> = const { std::cell::RefCell::new(None) };
        }
        let cached = LAST.with(|last| {
            last.borrow()
                .as_ref()
                .filter(|(t, _)| *t == text)
                .map(|(_, k)| *k)
        });
        if let Some(key) = cached {
            return Ok(key);
        }
        let malformed = || serde::de::Error::custom(KeyError::UnrecognisedForm(text.to_string()));
        let encoded = text.strip_prefix("did:key:z").ok_or_else(malformed)?;
        let mut bytes = [0u8; 34];
        let len = bs58::decode(encoded)
            .onto(&mut bytes[..])
            .map_err(|_| malformed())?;
        if len != 34 || bytes[..2] != ED25519_MULTICODEC {
            return Err(malformed());
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[2..]);
        let key = Self(key);
        LAST.with(|last| *last.borrow_mut() = Some((text.to_string(), key)));
        Ok(key)
    }
}

/// An ed25519 signature, hex in text form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 64]);

impl Signature {
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..8]))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes =
            hex::decode(&text).map_err(|_| serde::de::Error::custom(KeyError::BadSignature))?;
        let bytes: [u8; 64] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom(KeyError::BadSignature))?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_bytes([seed; 32])
    }

    #[test]
    fn did_and_peer_id_round_trip_to_the_same_key() {
        let public = key(7).public();
        let did = public.to_did();
        assert!(did.starts_with("did:key:z6Mk"), "{did}");
        let peer_id = public.to_peer_id();
        assert!(peer_id.starts_with("12D3KooW"), "{peer_id}");
        assert_eq!(did.parse::<PeerKey>(), Ok(public));
        assert_eq!(peer_id.parse::<PeerKey>(), Ok(public));
    }

    #[test]
    fn known_did_key_vector() {
        // Test vector from the did:key specification (ed25519 section).
        let did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
        let key: PeerKey = did.parse().expect("spec vector parses");
        assert_eq!(key.to_did(), did);
    }

    #[test]
    fn malformed_keys_are_clear_errors() {
        for bad in [
            "",
            "bob",
            "did:key:z",
            "did:key:zzzz",
            "12D3KooWxyz",
            "did:key:z6Mk0OIl",
        ] {
            assert!(bad.parse::<PeerKey>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(SecretKey::from_hex("abcd").err(), Some(KeyError::BadSecret));
        assert_eq!(
            SecretKey::from_hex(&"zz".repeat(32)).err(),
            Some(KeyError::BadSecret)
        );
    }

    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let signer = key(1);
        let signature = signer.sign(b"hello");
        assert!(signer.public().verify(b"hello", &signature));
        assert!(!signer.public().verify(b"hellO", &signature));
        assert!(!key(2).public().verify(b"hello", &signature));
    }

    #[test]
    fn secret_hex_round_trips() {
        let secret = key(9);
        let back = SecretKey::from_hex(&format!(" {}\n", secret.to_hex())).expect("hex parses");
        assert_eq!(back.public(), secret.public());
    }
}
