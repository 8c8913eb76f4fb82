//! Activity entries: what was done in a project, by whom, signed.
//!
//! Entries live in one automerge document per writer (see the node's feed
//! store); this module holds the entry schema, its signature, the limits an
//! entry must respect, and the pure filter used to query a feed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::identity::{PeerKey, SecretKey};
use crate::project::ProjectId;
use crate::signed::{Signable, Signed, SignedError};

pub const MAX_MESSAGE_LEN: usize = 10_000;
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_LEN: usize = 64;
pub const MAX_FILES_PER_ENTRY: usize = 10_000;
/// Text output captured from code is cut to this many characters.
pub const MAX_OUTPUT_LEN: usize = 64 * 1024;

/// What kind of work an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Code,
    Environment,
    Input,
    Output,
    Dataset,
    Note,
    Sync,
    Access,
    Milestone,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Code,
        Kind::Environment,
        Kind::Input,
        Kind::Output,
        Kind::Dataset,
        Kind::Note,
        Kind::Sync,
        Kind::Access,
        Kind::Milestone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Code => "code",
            Kind::Environment => "environment",
            Kind::Input => "input",
            Kind::Output => "output",
            Kind::Dataset => "dataset",
            Kind::Note => "note",
            Kind::Sync => "sync",
            Kind::Access => "access",
            Kind::Milestone => "milestone",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = EntryError;

    fn from_str(text: &str) -> Result<Self, EntryError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| EntryError::UnknownKind(text.to_owned()))
    }
}

/// How a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileAction {
    Added,
    Modified,
    Deleted,
}

impl FileAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FileAction::Added => "added",
            FileAction::Modified => "modified",
            FileAction::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: String,
    pub action: FileAction,
}

/// What an entry carries beyond its message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    #[serde(default)]
    pub files: Vec<FileChange>,
    /// Code that was executed (for cell executions).
    #[serde(default)]
    pub code: Option<String>,
    /// Text output, capped at [`MAX_OUTPUT_LEN`].
    #[serde(default)]
    pub output: Option<String>,
    /// Figures by blob hash.
    #[serde(default)]
    pub figures: Vec<String>,
}

/// One activity entry, before signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub version: u32,
    /// Binds the entry to one project: replaying it into another fails.
    pub project: ProjectId,
    pub author: PeerKey,
    /// The author's self-chosen display name: a label, never authority.
    pub author_name: String,
    /// Per-author sequence number; the key under which the entry is stored.
    pub seq: u64,
    pub time_ms: i64,
    pub kind: Kind,
    pub message: String,
    pub commit: Option<String>,
    #[serde(default)]
    pub details: Details,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Signable for Entry {
    const DOMAIN: &'static str = "tandem/entry/v1";

    fn signer(&self) -> &PeerKey {
        &self.author
    }
}

/// An entry with its author's signature: the only form that is stored.
pub type SignedEntry = Signed<Entry>;

/// The heads of one writer's feed document, signed by that writer.
///
/// Automerge changes are hash-linked, so heads signed by the writer
/// authenticate the whole document: any member may relay it, and a receiver
/// accepts a bundle only if applying it ends exactly at signed heads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedHeads {
    pub project: ProjectId,
    pub writer: PeerKey,
    /// Change hashes, hex, sorted.
    pub heads: Vec<String>,
}

impl Signable for FeedHeads {
    const DOMAIN: &'static str = "tandem/feed-heads/v1";

    fn signer(&self) -> &PeerKey {
        &self.writer
    }
}

pub type SignedFeedHeads = Signed<FeedHeads>;

/// Why an entry was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    #[error(
        "unknown activity kind {0:?}; expected one of code, environment, input, output, dataset, note, sync, access, milestone"
    )]
    UnknownKind(String),
    #[error("message is empty")]
    EmptyMessage,
    #[error("message is {0} characters; the limit is {MAX_MESSAGE_LEN}")]
    MessageTooLong(usize),
    #[error(
        "bad tag {0:?}: tags are 1 to {MAX_TAG_LEN} characters without spaces, at most {MAX_TAGS} per entry"
    )]
    BadTag(String),
    #[error("entry lists {0} files; the limit is {MAX_FILES_PER_ENTRY}")]
    TooManyFiles(usize),
    #[error("entry belongs to project {found}, not {expected}")]
    WrongProject {
        expected: ProjectId,
        found: ProjectId,
    },
    #[error(transparent)]
    Signature(#[from] SignedError),
}

/// A short, stable id for an entry (hex of the first 12 bytes of its hash).
pub fn entry_id(entry: &SignedEntry) -> String {
    hex::encode(&entry.hash().as_bytes()[..12])
}

/// Checks a tag list against the limits; used for notes typed by users.
pub fn validate_tags(tags: &[String]) -> Result<(), EntryError> {
    if tags.len() > MAX_TAGS {
        return Err(EntryError::BadTag(format!("{} tags", tags.len())));
    }
    for tag in tags {
        let ok = !tag.is_empty()
            && tag.chars().count() <= MAX_TAG_LEN
            && !tag.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(EntryError::BadTag(tag.clone()));
        }
    }
    Ok(())
}

impl Entry {
    /// Enforces the size limits on an entry's fields.
    pub fn validate(&self) -> Result<(), EntryError> {
        if self.message.trim().is_empty() {
            return Err(EntryError::EmptyMessage);
        }
        let len = self.message.chars().count();
        if len > MAX_MESSAGE_LEN {
            return Err(EntryError::MessageTooLong(len));
        }
        validate_tags(&self.tags)?;
        if self.details.files.len() > MAX_FILES_PER_ENTRY {
            return Err(EntryError::TooManyFiles(self.details.files.len()));
        }
        Ok(())
    }

    /// Validates and signs.
    pub fn sign(self, key: &SecretKey) -> Result<SignedEntry, EntryError> {
        self.validate()?;
        Ok(Signed::sign(self, key)?)
    }

    /// The line that goes into the commit message so `git log` alone stays
    /// readable and greppable: `[tandem:input] 3 new files in input/: …`.
    pub fn summary_line(&self) -> String {
        let first = self.message.lines().next().unwrap_or_default();
        let mut line = format!("[tandem:{}] {}", self.kind, first);
        if line.chars().count() > 120 {
            line = line.chars().take(119).collect::<String>() + "…";
        }
        line
    }
}

impl SignedEntry {
    /// Full acceptance check for an entry arriving from anywhere: signature,
    /// project binding and limits.
    pub fn accept(&self, project: &ProjectId) -> Result<(), EntryError> {
        if &self.payload.project != project {
            return Err(EntryError::WrongProject {
                expected: *project,
                found: self.payload.project,
            });
        }
        self.payload.validate()?;
        self.verify()?;
        Ok(())
    }
}

/// A feed query; every field narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub kind: Option<Kind>,
    /// Authors to keep (already resolved from names or keys).
    pub authors: Option<Vec<PeerKey>>,
    /// Keep entries that touched this path or anything under it.
    pub path: Option<String>,
    /// Case-insensitive text in message, tags, code, output or file paths.
    pub search: Option<String>,
    pub since_ms: Option<i64>,
}

impl Filter {
    /// Lower-cases the search text once so matching does not repeat it.
    pub fn prepared(mut self) -> Self {
        self.search = self.search.map(|s| s.to_lowercase());
        self
    }

    /// Whether an entry passes; expects a filter from [`Filter::prepared`].
    pub fn matches(&self, entry: &Entry) -> bool {
        if self.kind.is_some_and(|k| k != entry.kind) {
            return false;
        }
        if self.since_ms.is_some_and(|since| entry.time_ms < since) {
            return false;
        }
        if let Some(authors) = &self.authors
            && !authors.contains(&entry.author)
        {
            return false;
        }
        if let Some(path) = &self.path {
            let path = path.trim_end_matches('/');
            let touched = entry.details.files.iter().any(|f| {
                f.path == path
                    || (f.path.starts_with(path)
                        && f.path.as_bytes().get(path.len()) == Some(&b'/'))
            });
            if !touched {
                return false;
            }
        }
        if let Some(needle) = &self.search {
            let contains = |hay: &str| contains_ignore_case(hay, needle);
            let found = contains(&entry.message)
                || entry.tags.iter().any(|t| contains(t))
                || entry.details.code.as_deref().is_some_and(contains)
                || entry.details.output.as_deref().is_some_and(contains)
                || entry.details.files.iter().any(|f| contains(&f.path));
            if !found {
                return false;
            }
        }
        true
    }
}

/// Case-insensitive substring test that avoids allocating for ASCII text.
fn contains_ignore_case(hay: &str, lower_needle: &str) -> bool {
    if lower_needle.is_empty() {
        return true;
    }
    if hay.is_ascii() && lower_needle.is_ascii() {
        let needle = lower_needle.as_bytes();
        return hay
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle));
    }
    hay.to_lowercase().contains(lower_needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{Genesis, ProjectName};

    fn project(seed: u8) -> ProjectId {
        let name: ProjectName = "p".parse().expect("valid");
        Genesis::create(&name, &SecretKey::from_bytes([seed; 32]), 0, [seed; 16]).project_id()
    }

    fn entry(author: &SecretKey, project: ProjectId, kind: Kind, message: &str) -> Entry {
        Entry {
            version: 1,
            project,
            author: author.public(),
            author_name: "Ada".into(),
            seq: 1,
            time_ms: 1_000,
            kind,
            message: message.into(),
            commit: None,
            details: Details {
                files: vec![FileChange {
                    path: "input/data/a.csv".into(),
                    action: FileAction::Added,
                }],
                ..Details::default()
            },
            tags: vec!["survey".into()],
        }
    }

    #[test]
    fn signed_entries_verify_and_bind_to_their_project() {
        let key = SecretKey::from_bytes([1; 32]);
        let signed = entry(&key, project(1), Kind::Input, "1 new file")
            .sign(&key)
            .expect("signs");
        assert_eq!(signed.accept(&project(1)), Ok(()));
        assert!(matches!(
            signed.accept(&project(2)),
            Err(EntryError::WrongProject { .. })
        ));
        let back = SignedEntry::from_json_verified(&signed.to_json()).expect("round trip");
        assert_eq!(entry_id(&back), entry_id(&signed));
    }

    #[test]
    fn tampered_or_misattributed_entries_are_refused() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut signed = entry(&key, project(1), Kind::Note, "hello")
            .sign(&key)
            .expect("signs");
        signed.payload.message = "goodbye".into();
        assert!(matches!(
            signed.accept(&project(1)),
            Err(EntryError::Signature(_))
        ));

        let mallory = SecretKey::from_bytes([2; 32]);
        let claimed = entry(&key, project(1), Kind::Note, "hi");
        assert!(
            claimed.sign(&mallory).is_err(),
            "signing as someone else must fail"
        );
    }

    #[test]
    fn limits_are_enforced() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut e = entry(&key, project(1), Kind::Note, " ");
        assert_eq!(e.validate(), Err(EntryError::EmptyMessage));
        e.message = "x".repeat(MAX_MESSAGE_LEN + 1);
        assert!(matches!(e.validate(), Err(EntryError::MessageTooLong(_))));
        e.message = "ok".into();
        e.tags = vec!["two words".into()];
        assert!(matches!(e.validate(), Err(EntryError::BadTag(_))));
        assert!("nope".parse::<Kind>().is_err());
    }

    #[test]
    fn filter_matches_each_field() {
        let key = SecretKey::from_bytes([1; 32]);
        let e = entry(&key, project(1), Kind::Input, "Added Survey results");
        let pass = |f: Filter| f.prepared().matches(&e);
        assert!(pass(Filter::default()));
        assert!(pass(Filter {
            kind: Some(Kind::Input),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            kind: Some(Kind::Code),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            search: Some("SURVEY res".into()),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            search: Some("a.csv".into()),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            search: Some("absent".into()),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            path: Some("input/data".into()),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            path: Some("input/data/".into()),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            path: Some("input/dat".into()),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            since_ms: Some(1_000),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            since_ms: Some(1_001),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            authors: Some(vec![key.public()]),
            ..Filter::default()
        }));
        let other = SecretKey::from_bytes([5; 32]).public();
        assert!(!pass(Filter {
            authors: Some(vec![other]),
            ..Filter::default()
        }));
    }

    #[test]
    fn summary_line_is_greppable_and_short() {
        let key = SecretKey::from_bytes([1; 32]);
        let mut e = entry(
            &key,
            project(1),
            Kind::Input,
            "3 new files in input/: a, b, c\nmore",
        );
        assert_eq!(
            e.summary_line(),
            "[tandem:input] 3 new files in input/: a, b, c"
        );
        e.message = "y".repeat(500);
        assert_eq!(e.summary_line().chars().count(), 120);
    }
}
