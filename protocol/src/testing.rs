//! Keys and project ids for the crate's unit tests, one way for all.

use crate::identity::{PeerKey, SecretKey};
use crate::project::{Genesis, ProjectId};

/// The secret key made of `seed` repeated.
pub fn secret(seed: u8) -> SecretKey {
    SecretKey::from_bytes([seed; 32])
}

/// The public key of [`secret`]`(seed)`.
pub fn key(seed: u8) -> PeerKey {
    secret(seed).public()
}

/// The id of a project named `p` founded by [`secret`]`(seed)`.
pub fn project(seed: u8) -> ProjectId {
    Genesis::create(&"p".parse().expect("name"), &secret(seed), 0, [seed; 16]).project_id()
}
