//! Project names and self-certifying project identities.
//!
//! A project's id is the hash of its signed genesis document (name, owner,
//! creation time, nonce). Anyone holding the genesis can check who founded
//! the project and that the id was not made up, without asking a server.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::identity::{PeerKey, SecretKey};
use crate::signed::{Signable, Signed, SignedError};

/// Longest project name accepted.
pub const MAX_NAME_LEN: usize = 100;
/// Longest project description accepted.
pub const MAX_DESCRIPTION_LEN: usize = 2_000;
/// Folder of a dataset that holds its files: part of the folder layout,
/// which the blob policy and the dataset listings both read.
pub const DATA_DIR: &str = "data";

/// Why a name or project document was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProjectError {
    #[error("project name is empty")]
    EmptyName,
    #[error("project name is {0} characters long; the limit is {MAX_NAME_LEN}")]
    NameTooLong(usize),
    #[error(
        "project name {0:?} is not allowed: use letters, digits, '-', '_' and '.', starting with a letter or digit (no spaces, no '..')"
    )]
    BadName(String),
    #[error("description is {0} characters long; the limit is {MAX_DESCRIPTION_LEN}")]
    DescriptionTooLong(usize),
    #[error("not a project id: {0:?}")]
    BadId(String),
    #[error("genesis signature invalid: {0}")]
    Genesis(#[from] SignedError),
    #[error("project id {claimed} does not match its genesis (which hashes to {actual})")]
    IdMismatch {
        claimed: ProjectId,
        actual: ProjectId,
    },
}

/// A validated local project name: safe as a folder name and in URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectName(String);

impl ProjectName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ProjectName {
    type Err = ProjectError;

    fn from_str(name: &str) -> Result<Self, ProjectError> {
        if name.is_empty() {
            return Err(ProjectError::EmptyName);
        }
        let len = name.chars().count();
        if len > MAX_NAME_LEN {
            return Err(ProjectError::NameTooLong(len));
        }
        let first_ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        let chars_ok = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !first_ok || !chars_ok || name.contains("..") || name.ends_with('.') {
            return Err(ProjectError::BadName(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ProjectName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProjectName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The founding document of a project, signed by its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Format version of this document.
    pub version: u32,
    pub name: String,
    pub owner: PeerKey,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Random bytes (hex) so two projects of the same name and second differ.
    pub nonce: String,
}

impl Signable for Genesis {
    const DOMAIN: &'static str = "tandem/genesis/v1";

    fn signer(&self) -> &PeerKey {
        &self.owner
    }
}

/// A genesis with its owner's signature.
pub type SignedGenesis = Signed<Genesis>;

impl Genesis {
    /// Creates and signs a genesis; time and nonce come from the caller.
    pub fn create(
        name: &ProjectName,
        owner: &SecretKey,
        created_ms: i64,
        nonce: [u8; 16],
    ) -> SignedGenesis {
        let genesis = Genesis {
            version: 1,
            name: name.as_str().to_owned(),
            owner: owner.public(),
            created_ms,
            nonce: hex::encode(nonce),
        };
        Signed {
            signature: owner.sign(&genesis.signing_bytes()),
            payload: genesis,
        }
    }
}

impl SignedGenesis {
    /// The id this genesis names, whether or not the signature verifies.
    pub fn project_id(&self) -> ProjectId {
        ProjectId(*self.hash().as_bytes())
    }

    /// Checks the owner's signature and that `claimed` is this genesis' id.
    pub fn verify_id(&self, claimed: &ProjectId) -> Result<(), ProjectError> {
        self.verify()?;
        let actual = self.project_id();
        if &actual != claimed {
            return Err(ProjectError::IdMismatch {
                claimed: *claimed,
                actual,
            });
        }
        Ok(())
    }
}

/// Self-certifying project identifier: BLAKE3 of the signed genesis.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectId([u8; 32]);

impl ProjectId {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tp{}", bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProjectId({self})")
    }
}

impl FromStr for ProjectId {
    type Err = ProjectError;

    fn from_str(text: &str) -> Result<Self, ProjectError> {
        let bad = || ProjectError::BadId(text.to_owned());
        let encoded = text.trim().strip_prefix("tp").ok_or_else(bad)?;
        let bytes = bs58::decode(encoded).into_vec().map_err(|_| bad())?;
        Ok(Self(bytes.try_into().map_err(|_| bad())?))
    }
}

impl Serialize for ProjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProjectId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Checks a description's length; descriptions are free text otherwise.
pub fn validate_description(text: &str) -> Result<(), ProjectError> {
    let len = text.chars().count();
    if len > MAX_DESCRIPTION_LEN {
        return Err(ProjectError::DescriptionTooLong(len));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> SecretKey {
        SecretKey::from_bytes([3; 32])
    }

    fn name(text: &str) -> ProjectName {
        text.parse().expect("valid name")
    }

    #[test]
    fn names_follow_the_rules() {
        for good in ["a", "my-project", "Survey_2026", "v1.2", &"x".repeat(100)] {
            assert!(good.parse::<ProjectName>().is_ok(), "{good:?} refused");
        }
        assert_eq!("".parse::<ProjectName>(), Err(ProjectError::EmptyName));
        assert_eq!(
            "y".repeat(101).parse::<ProjectName>(),
            Err(ProjectError::NameTooLong(101))
        );
        for bad in [
            "my project",
            "..",
            "a..b",
            ".hidden",
            "-x",
            "a/b",
            "a\\b",
            "é",
            "end.",
            "a\0",
        ] {
            assert!(
                matches!(bad.parse::<ProjectName>(), Err(ProjectError::BadName(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn genesis_id_is_self_certifying() {
        let genesis = Genesis::create(&name("survey"), &owner(), 1_700_000_000_000, [1; 16]);
        let id = genesis.project_id();
        assert_eq!(genesis.verify_id(&id), Ok(()));
        assert_eq!(id.to_string().parse::<ProjectId>(), Ok(id));

        let other = Genesis::create(&name("survey"), &owner(), 1_700_000_000_000, [2; 16]);
        assert_ne!(other.project_id(), id, "the nonce must make ids differ");
        assert!(matches!(
            other.verify_id(&id),
            Err(ProjectError::IdMismatch { .. })
        ));
    }

    #[test]
    fn tampered_genesis_fails_verification() {
        let mut genesis = Genesis::create(&name("survey"), &owner(), 1, [1; 16]);
        let id = genesis.project_id();
        genesis.payload.name = "stolen".into();
        assert!(matches!(
            genesis.verify_id(&id),
            Err(ProjectError::Genesis(_))
        ));

        // Re-signing by someone else changes the owner, so the id no longer matches.
        let thief = SecretKey::from_bytes([4; 32]);
        let forged = Genesis::create(&name("survey"), &thief, 1, [1; 16]);
        assert!(matches!(
            forged.verify_id(&id),
            Err(ProjectError::IdMismatch { .. })
        ));
    }

    #[test]
    fn genesis_json_round_trips_and_verifies() {
        let genesis = Genesis::create(&name("survey"), &owner(), 5, [9; 16]);
        let back = SignedGenesis::from_json_verified(&genesis.to_json()).expect("round trip");
        assert_eq!(back.project_id(), genesis.project_id());
    }

    #[test]
    fn bad_ids_are_refused() {
        for bad in ["", "tp", "tp0OIl", "abc", "tpzzzzzz"] {
            assert!(bad.parse::<ProjectId>().is_err(), "{bad:?} accepted");
        }
    }
}
