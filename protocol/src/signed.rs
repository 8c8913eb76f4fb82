//! Signed documents with domain separation.
//!
//! Every signed thing in Tandem (genesis, access statement, activity entry)
//! signs `DOMAIN \n canonical-json(payload)`. The domain tag makes a
//! signature for one kind of document useless as a signature for another;
//! the canonical JSON is serde's output for the payload's declared field
//! order, so signer and verifier derive the same bytes from the same value.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::identity::{PeerKey, SecretKey, Signature};

/// A payload type that can be signed: it names its domain and its signer.
pub trait Signable: Serialize + DeserializeOwned {
    /// Domain separation tag, e.g. `tandem/entry/v1`.
    const DOMAIN: &'static str;

    /// The key that must have produced the signature.
    fn signer(&self) -> &PeerKey;

    /// The exact bytes that are signed.
    fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(Self::DOMAIN.as_bytes());
        bytes.push(b'\n');
        // Serialising plain data structs to a Vec cannot fail.
        serde_json::to_writer(&mut bytes, self).unwrap_or_default();
        bytes
    }
}

/// Why a signed document was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignedError {
    #[error("signature does not verify against {0}")]
    BadSignature(String),
    #[error("malformed signed document: {0}")]
    Malformed(String),
}

/// A payload together with its signer's signature.
///
/// Holding a `Verified<T>` (see [`Signed::verify`]) is the only way other
/// modules accept signed input, so unverified data cannot slip through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    pub payload: T,
    pub signature: Signature,
}

impl<T: Signable> Signed<T> {
    pub fn sign(payload: T, key: &SecretKey) -> Result<Self, SignedError> {
        if payload.signer() != &key.public() {
            return Err(SignedError::Malformed(
                "the signer named in the document is not the signing key".into(),
            ));
        }
        let signature = key.sign(&payload.signing_bytes());
        Ok(Self { payload, signature })
    }

    pub fn verify(&self) -> Result<(), SignedError> {
        let signer = self.payload.signer();
        if signer.verify(&self.payload.signing_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(SignedError::BadSignature(signer.to_did()))
        }
    }

    /// Stable content hash of the signed document (payload and signature).
    pub fn hash(&self) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.payload.signing_bytes());
        hasher.update(&self.signature.to_bytes());
        hasher.finalize()
    }

    /// Compact JSON: how signed documents are stored and sent.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses and verifies in one step.
    pub fn from_json_verified(text: &str) -> Result<Self, SignedError> {
        let signed: Self =
            serde_json::from_str(text).map_err(|e| SignedError::Malformed(e.to_string()))?;
        signed.verify()?;
        Ok(signed)
    }
}
