//! The `tandem:` link and the secret it carries.
//!
//! A ticket is meant to be pasted into a chat, so it is short (binary, then
//! base58 behind `tandem:`) and read defensively: a length cap before any
//! decoding, a checksum so a ticket cut or changed in copying says so
//! rather than failing later at the inviter's node, a version byte, and
//! caps on the number and size of addresses.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::identity::PeerKey;
use crate::project::ProjectId;

/// What a ticket starts with, as a link.
pub const SCHEME: &str = "tandem:";
/// The ticket layout this code writes and reads.
pub const VERSION: u8 = 1;
/// Most addresses a ticket carries: enough for a LAN, a public address and
/// relays through a hub, few enough to paste.
pub const MAX_ADDRESSES: usize = 8;
/// Longest address (a binary multiaddr, a relayed one included).
pub const MAX_ADDRESS_LEN: usize = 200;
/// Longest ticket text read, before any decoding (the largest valid ticket
/// is about 2,400 characters).
pub const MAX_TICKET_TEXT: usize = 4096;
/// Bytes of checksum at the end of a ticket.
const CHECKSUM_LEN: usize = 4;
/// Version, project, inviter, secret, expiry, address count.
const FIXED_LEN: usize = 1 + 32 + 32 + 32 + 8 + 1;

/// The single-use secret of an invite: 32 random bytes. Its `Debug` hides
/// it, so it never reaches a log by accident; on the wire it is hex.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteSecret([u8; 32]);

impl InviteSecret {
    /// `bytes` must come from a cryptographic random source (the node's
    /// OS generator); the protocol itself draws no randomness.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// What the inviter's node stores instead of the secret.
    pub fn hash(&self) -> SecretHash {
        SecretHash(*self.keyed().as_bytes())
    }

    fn keyed(&self) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"tandem/invite-secret/v1");
        hasher.update(&self.0);
        hasher.finalize()
    }
}

impl fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteSecret(…)")
    }
}

impl Serialize for InviteSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for InviteSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(hex_32(d)?))
    }
}

/// BLAKE3 of an invite's secret (with a domain prefix): all the inviter
/// keeps, so its home never holds a usable secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Whether `secret` is the one this hash was made from, in constant
    /// time (`blake3::Hash`'s equality), so timing tells a prober nothing
    /// about how close a guess came.
    pub fn matches(&self, secret: &InviteSecret) -> bool {
        blake3::Hash::from_bytes(self.0) == secret.keyed()
    }

    /// A short name for an invite, to list and revoke it by: the start of
    /// the hash, which says nothing usable about the secret.
    pub fn short_id(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({})", self.short_id())
    }
}

impl Serialize for SecretHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(hex_32(d)?))
    }
}

fn hex_32<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    if text.len() != 64 {
        return Err(serde::de::Error::custom("expected 64 hex digits"));
    }
    let bytes = hex::decode(text.as_bytes()).map_err(serde::de::Error::custom)?;
    bytes
        .try_into()
        .map_err(|_| serde::de::Error::custom("expected 32 bytes"))
}

/// An invite link's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub project: ProjectId,
    /// The inviter's node: the only key the joiner will prove the secret to.
    pub inviter: PeerKey,
    pub secret: InviteSecret,
    /// When the inviter's node stops accepting it (its own record decides;
    /// this copy lets the joiner say so without asking).
    pub expires_ms: i64,
    /// Where the inviter listens: binary multiaddrs without the trailing
    /// `/p2p/<inviter>` (the joiner adds it from `inviter`). Opaque here;
    /// the node parses them.
    pub addresses: Vec<Vec<u8>>,
}

/// Why a text is not a ticket: said so that the person holding it knows to
/// copy it again or ask for a new one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("an invite ticket starts with {SCHEME:?}")]
    NoScheme,
    #[error("the ticket is {0} characters long; no invite ticket is longer than {MAX_TICKET_TEXT}")]
    TooLong(usize),
    #[error("the ticket is not base58 text: it was changed or cut in copying")]
    NotBase58,
    #[error("the ticket is too short: it was cut in copying")]
    Truncated,
    #[error("the ticket's checksum does not match: it was changed or cut in copying")]
    Checksum,
    #[error(
        "the ticket has layout version {0}; this Tandem reads version {VERSION} (update Tandem, or ask for a new ticket)"
    )]
    Version(u8),
    #[error("the ticket's inviter key is not a valid key")]
    BadKey,
    #[error("the ticket's project id is not a valid id")]
    BadProject,
    #[error("the ticket lists {0} addresses; at most {MAX_ADDRESSES} are allowed")]
    TooManyAddresses(usize),
    #[error("an address in the ticket is {0} bytes; at most {MAX_ADDRESS_LEN} are allowed")]
    AddressTooLong(usize),
    #[error("the ticket names no address of the inviter")]
    NoAddress,
    #[error("the ticket has {0} bytes left over after its content")]
    Trailing(usize),
}

impl Ticket {
    /// The `tandem:` link. Fails only when the ticket itself breaks the
    /// caps (the caller chose too many or too long addresses).
    pub fn encode(&self) -> Result<String, TicketError> {
        if self.addresses.is_empty() {
            return Err(TicketError::NoAddress);
        }
        if self.addresses.len() > MAX_ADDRESSES {
            return Err(TicketError::TooManyAddresses(self.addresses.len()));
        }
        let mut bytes = Vec::with_capacity(FIXED_LEN + 64 * self.addresses.len());
        bytes.push(VERSION);
        bytes.extend_from_slice(self.project.as_bytes());
        bytes.extend_from_slice(self.inviter.as_bytes());
        bytes.extend_from_slice(self.secret.as_bytes());
        bytes.extend_from_slice(&self.expires_ms.to_be_bytes());
        bytes.push(self.addresses.len() as u8);
        for address in &self.addresses {
            if address.len() > MAX_ADDRESS_LEN {
                return Err(TicketError::AddressTooLong(address.len()));
            }
            bytes.push(address.len() as u8);
            bytes.extend_from_slice(address);
        }
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        Ok(format!("{SCHEME}{}", bs58::encode(bytes).into_string()))
    }

    /// Reads a ticket from untrusted text (surrounding white space and
    /// angle brackets, as chat clients add them, are ignored).
    pub fn decode(text: &str) -> Result<Self, TicketError> {
        if text.len() > MAX_TICKET_TEXT {
            return Err(TicketError::TooLong(text.len()));
        }
        let text = text.trim().trim_start_matches('<').trim_end_matches('>');
        let encoded = text.strip_prefix(SCHEME).ok_or(TicketError::NoScheme)?;
        let bytes = bs58::decode(encoded.trim_start_matches("//"))
            .into_vec()
            .map_err(|_| TicketError::NotBase58)?;
        // The checksum first (every layout version ends in the same one),
        // so a ticket cut or changed in copying says so, whatever its
        // first byte became; then the version.
        if bytes.len() < 1 + CHECKSUM_LEN {
            return Err(TicketError::Truncated);
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if checksum(body) != sum {
            return Err(TicketError::Checksum);
        }
        match body.first() {
            Some(&VERSION) => {}
            Some(&other) => return Err(TicketError::Version(other)),
            None => return Err(TicketError::Truncated),
        }
        let mut reader = Reader(&body[1..]);
        let project = project_id(reader.array()?)?;
        let inviter = PeerKey::from_bytes(reader.array()?).map_err(|_| TicketError::BadKey)?;
        let secret = InviteSecret(reader.array()?);
        let expires_ms = i64::from_be_bytes(reader.array()?);
        let count = usize::from(reader.byte()?);
        if count > MAX_ADDRESSES {
            return Err(TicketError::TooManyAddresses(count));
        }
        if count == 0 {
            return Err(TicketError::NoAddress);
        }
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            let len = usize::from(reader.byte()?);
            if len > MAX_ADDRESS_LEN {
                return Err(TicketError::AddressTooLong(len));
            }
            addresses.push(reader.take(len)?.to_vec());
        }
        if !reader.0.is_empty() {
            return Err(TicketError::Trailing(reader.0.len()));
        }
        Ok(Self {
            project,
            inviter,
            secret,
            expires_ms,
            addresses,
        })
    }
}

/// `ProjectId` has no byte constructor; its text form is `tp` + base58,
/// which any 32 bytes make.
fn project_id(bytes: [u8; 32]) -> Result<ProjectId, TicketError> {
    format!("tp{}", bs58::encode(bytes).into_string())
        .parse()
        .map_err(|_| TicketError::BadProject)
}

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    let hash = blake3::hash(bytes);
    let mut sum = [0u8; CHECKSUM_LEN];
    sum.copy_from_slice(&hash.as_bytes()[..CHECKSUM_LEN]);
    sum
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TicketError> {
        if self.0.len() < n {
            return Err(TicketError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TicketError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, TicketError> {
        Ok(self.take(1)?[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{key, project};
    use proptest::prelude::*;

    fn ticket(addresses: Vec<Vec<u8>>) -> Ticket {
        Ticket {
            project: project(1),
            inviter: key(2),
            secret: InviteSecret::from_bytes([7; 32]),
            expires_ms: 1_800_000_000_000,
            addresses,
        }
    }

    /// `/ip4/127.0.0.1/tcp/4001` as a binary multiaddr.
    fn loopback() -> Vec<u8> {
        vec![4, 127, 0, 0, 1, 6, 0x0f, 0xa1]
    }

    /// Re-encodes raw ticket bytes with a fresh checksum: a forger's ticket.
    fn with_checksum(mut body: Vec<u8>) -> String {
        let sum = checksum(&body);
        body.extend_from_slice(&sum);
        format!("{SCHEME}{}", bs58::encode(body).into_string())
    }

    fn raw(text: &str) -> Vec<u8> {
        let bytes = bs58::decode(text.strip_prefix(SCHEME).expect("scheme"))
            .into_vec()
            .expect("base58");
        bytes[..bytes.len() - CHECKSUM_LEN].to_vec()
    }

    #[test]
    fn tickets_round_trip_and_stay_short() {
        let one = ticket(vec![loopback()]);
        let text = one.encode().expect("encode");
        assert!(text.starts_with("tandem:"), "{text}");
        assert!(text.len() < 180, "{} characters: {text}", text.len());
        assert_eq!(Ticket::decode(&text), Ok(one));
        let full = ticket(vec![vec![9; MAX_ADDRESS_LEN]; MAX_ADDRESSES]);
        let text = full.encode().expect("encode");
        assert!(text.len() < MAX_TICKET_TEXT, "{}", text.len());
        assert_eq!(Ticket::decode(&format!("  <{text}>\n")), Ok(full));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let good = ticket(vec![loopback()]).encode().expect("encode");
        let cases: Vec<(String, TicketError)> = vec![
            (String::new(), TicketError::NoScheme),
            ("https://example.org".into(), TicketError::NoScheme),
            ("tandem:".into(), TicketError::Truncated),
            ("tandem:0OIl".into(), TicketError::NotBase58),
            (good[..good.len() - 10].to_owned(), TicketError::Checksum),
            (good[..20].to_owned(), TicketError::Checksum),
            ("tandem:2".into(), TicketError::Truncated),
            (
                "x".repeat(MAX_TICKET_TEXT + 1),
                TicketError::TooLong(MAX_TICKET_TEXT + 1),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Ticket::decode(&text), Err(expected), "{text:?}");
        }
        // One character changed anywhere: the checksum catches it.
        for i in SCHEME.len()..good.len() {
            let mut chars: Vec<char> = good.chars().collect();
            chars[i] = if chars[i] == '2' { '3' } else { '2' };
            let changed: String = chars.into_iter().collect();
            assert!(Ticket::decode(&changed).is_err(), "changed at {i}");
        }
    }

    #[test]
    fn layout_violations_are_refused_even_with_a_valid_checksum() {
        let good = ticket(vec![loopback()]).encode().expect("encode");
        let body = raw(&good);
        let mut newer = body.clone();
        newer[0] = 2;
        assert_eq!(
            Ticket::decode(&with_checksum(newer)),
            Err(TicketError::Version(2))
        );
        let mut trailing = body.clone();
        trailing.push(0);
        assert_eq!(
            Ticket::decode(&with_checksum(trailing)),
            Err(TicketError::Trailing(1))
        );
        let count_at = FIXED_LEN - 1;
        let mut many = body.clone();
        many[count_at] = (MAX_ADDRESSES + 1) as u8;
        assert_eq!(
            Ticket::decode(&with_checksum(many)),
            Err(TicketError::TooManyAddresses(MAX_ADDRESSES + 1))
        );
        let mut none = body[..FIXED_LEN].to_vec();
        none[count_at] = 0;
        assert_eq!(
            Ticket::decode(&with_checksum(none)),
            Err(TicketError::NoAddress)
        );
        let mut long = body.clone();
        long[FIXED_LEN] = 250;
        assert_eq!(
            Ticket::decode(&with_checksum(long)),
            Err(TicketError::AddressTooLong(250))
        );
        let mut short = body.clone();
        short[FIXED_LEN] = 100;
        assert_eq!(
            Ticket::decode(&with_checksum(short)),
            Err(TicketError::Truncated)
        );
        // An inviter "key" that is no curve point (about half of all
        // 32-byte strings are not).
        let not_a_point = (0u8..=255)
            .map(|b| [b; 32])
            .find(|bytes| PeerKey::from_bytes(*bytes).is_err())
            .expect("some bytes are no ed25519 point");
        let mut bad_key = body.clone();
        bad_key[33..65].copy_from_slice(&not_a_point);
        assert_eq!(
            Ticket::decode(&with_checksum(bad_key)),
            Err(TicketError::BadKey)
        );
        assert_eq!(
            ticket(vec![]).encode(),
            Err(TicketError::NoAddress),
            "a ticket nobody can reach is not made"
        );
        assert_eq!(
            ticket(vec![vec![1; MAX_ADDRESS_LEN + 1]]).encode(),
            Err(TicketError::AddressTooLong(MAX_ADDRESS_LEN + 1))
        );
        assert_eq!(
            ticket(vec![loopback(); MAX_ADDRESSES + 1]).encode(),
            Err(TicketError::TooManyAddresses(MAX_ADDRESSES + 1))
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug_and_is_hex_on_the_wire() {
        let secret = InviteSecret::from_bytes([0xab; 32]);
        assert_eq!(format!("{secret:?}"), "InviteSecret(…)");
        assert!(!format!("{:?}", ticket(vec![loopback()])).contains("abab"));
        let text = serde_json::to_string(&secret).expect("encode");
        assert_eq!(text, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(
            serde_json::from_str::<InviteSecret>(&text).expect("decode"),
            secret
        );
        for bad in [
            "\"ab\"",
            "\"zz\"",
            "12",
            &format!("\"{}\"", "ab".repeat(33)),
        ] {
            assert!(serde_json::from_str::<InviteSecret>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Whatever the bytes, decoding answers (never panics), and
        /// whatever decodes encodes back to the same ticket.
        #[test]
        fn any_bytes_decode_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let text = format!("{SCHEME}{}", bs58::encode(&bytes).into_string());
            if let Ok(ticket) = Ticket::decode(&text) {
                prop_assert_eq!(Ticket::decode(&ticket.encode().expect("encode")), Ok(ticket));
            }
            let forged = with_checksum(bytes);
            if let Ok(ticket) = Ticket::decode(&forged) {
                prop_assert_eq!(ticket.encode().expect("encode"), forged);
            }
        }

        #[test]
        fn tickets_round_trip(
            secret in any::<[u8; 32]>(),
            expires_ms in any::<i64>(),
            addresses in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..=MAX_ADDRESS_LEN), 1..=MAX_ADDRESSES),
        ) {
            let ticket = Ticket {
                project: project(3),
                inviter: key(4),
                secret: InviteSecret::from_bytes(secret),
                expires_ms,
                addresses,
            };
            prop_assert_eq!(Ticket::decode(&ticket.encode().expect("encode")), Ok(ticket));
        }

        /// Only the exact secret matches its hash.
        #[test]
        fn hashes_match_only_their_secret(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let hash = InviteSecret::from_bytes(a).hash();
            prop_assert!(hash.matches(&InviteSecret::from_bytes(a)));
            prop_assert_eq!(hash.matches(&InviteSecret::from_bytes(b)), a == b);
        }
    }
}
