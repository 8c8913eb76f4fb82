//! A project's activity feed: one automerge document per writer.
//!
//! Why this shape (measured, see `shared/notes/automerge-feed.md`): a loaded
//! automerge document degrades quadratically when operations land among its
//! existing ones, so each writer's document is changed only by its author and
//! every entry is one compact JSON string under a key that only grows (the
//! zero-padded sequence number). Appends go to a framed log with
//! `save_after(heads)`; the log is folded into a snapshot now and then.
//! Peers catch up by exchanging the missing changes as one bundle applied
//! with `load_incremental`, accepted only when it ends exactly at heads the
//! writer signed: automerge changes are hash-linked, so signed heads
//! authenticate the whole document.
//!
//! Entries are verified before they are stored; what is on disk is trusted.
//!
//! This file merges the writers' documents into one history; each
//! document's own files live in [`super::writer`].

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT, ReadDoc};
use tandem_protocol::activity::{
    Details, Entry, FeedHeads, Filter, Kind, SignedEntry, SignedFeedHeads,
};
use tandem_protocol::blob::BlobHash;
use tandem_protocol::signed::Signed;
use tandem_protocol::{PeerKey, ProjectId, SecretKey};

pub use super::error::FeedError;
use super::error::io_err;
use super::writer::{
    COMPACT_AFTER_CHUNKS, WriterDoc, append_frame, compact, parse_entries, raw_entries, seq_key,
};
use crate::fsutil::atomic_write;

/// The heads of one writer's document, signed by that writer.
pub type DocHeads = FeedHeads;

pub type SignedHeads = SignedFeedHeads;

/// A writer's whole document and its signed heads, as exported.
pub type ExportedDoc = (PeerKey, Vec<u8>, Option<SignedHeads>);

/// An entry not yet numbered or signed.
#[derive(Debug, Clone)]
pub struct Draft {
    pub kind: Kind,
    pub message: String,
    pub commit: Option<String>,
    pub details: Details,
    pub tags: Vec<String>,
    pub time_ms: i64,
}

/// All writers' documents of one project, plus an in-memory index of entries
/// ordered by time (oldest first).
pub struct Feed {
    dir: PathBuf,
    project: ProjectId,
    writers: BTreeMap<PeerKey, WriterDoc>,
    /// Shared so that re-sorting moves pointers, not entries.
    entries: Vec<Arc<SignedEntry>>,
    durable: bool,
}

fn sort_key(entry: &SignedEntry) -> (i64, PeerKey, u64) {
    (
        entry.payload.time_ms,
        entry.payload.author,
        entry.payload.seq,
    )
}

fn sorted_heads(doc: &Automerge) -> Vec<String> {
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    heads
}

impl Feed {
    /// Opens (or starts) the feed stored in `dir`.
    pub fn open(dir: &Path, project: ProjectId) -> Result<Self, FeedError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut feed = Feed {
            dir: dir.to_owned(),
            project,
            writers: BTreeMap::new(),
            entries: Vec::new(),
            durable: true,
        };
        let mut writers = Vec::new();
        for item in fs::read_dir(dir).map_err(io_err(dir))? {
            let path = item.map_err(io_err(dir))?.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let Ok(bytes) = hex::decode(stem) else {
                continue;
            };
            let Ok(bytes) = <[u8; 32]>::try_from(bytes) else {
                continue;
            };
            let Ok(writer) = PeerKey::from_bytes(bytes) else {
                continue;
            };
            if !writers.contains(&writer) {
                writers.push(writer);
            }
        }
        for writer in writers {
            let (doc, entries) = feed.load_writer(writer)?;
            feed.entries.extend(entries.into_iter().map(Arc::new));
            feed.writers.insert(writer, doc);
        }
        feed.entries.sort_by_key(|e| sort_key(e));
        Ok(feed)
    }

    fn load_writer(&self, writer: PeerKey) -> Result<(WriterDoc, Vec<SignedEntry>), FeedError> {
        WriterDoc::load(&self.dir, &self.project, writer)
    }

    fn writer_mut(&mut self, writer: PeerKey) -> Result<&mut WriterDoc, FeedError> {
        if !self.writers.contains_key(&writer) {
            let (doc, entries) = self.load_writer(writer)?;
            self.merge_sorted(entries);
            self.writers.insert(writer, doc);
        }
        self.writers
            .get_mut(&writer)
            .ok_or_else(|| FeedError::Rejected("writer document vanished".into()))
    }

    /// Whether each append is flushed to disk before it returns (the
    /// default). Only bulk loaders that can redo their work turn it off.
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    pub fn project(&self) -> ProjectId {
        self.project
    }

    /// Appends an entry authored by `key` (this node's own document).
    pub fn append(
        &mut self,
        key: &SecretKey,
        author_name: &str,
        draft: Draft,
    ) -> Result<SignedEntry, FeedError> {
        let project = self.project;
        let durable = self.durable;
        let writer = self.writer_mut(key.public())?;
        let entry = Entry {
            version: 1,
            project,
            author: key.public(),
            author_name: author_name.to_owned(),
            seq: writer.next_seq,
            time_ms: draft.time_ms,
            kind: draft.kind,
            message: draft.message,
            commit: draft.commit,
            details: draft.details,
            tags: draft.tags,
        };
        let signed = entry.sign(key)?;
        let doc = writer.doc_mut()?;
        let before = doc.get_heads();
        let mut tx = doc.transaction();
        tx.put(ROOT, seq_key(signed.payload.seq), signed.to_json())?;
        tx.commit();
        let chunk = doc.save_after(&before);
        append_frame(&mut writer.log, &writer.log_path, &chunk, durable)?;
        writer.log_chunks += 1;
        writer.next_seq += 1;
        if writer.log_chunks >= COMPACT_AFTER_CHUNKS {
            compact(writer)?;
        }
        let at = self
            .entries
            .partition_point(|e| sort_key(e) <= sort_key(&signed));
        self.entries.insert(at, Arc::new(signed.clone()));
        Ok(signed)
    }

    /// Folds every writer's log into its snapshot.
    pub fn compact_all(&mut self) -> Result<(), FeedError> {
        for writer in self.writers.values_mut() {
            if writer.log_chunks > 0 {
                compact(writer)?;
            }
        }
        Ok(())
    }

    /// Adds entries to the time-ordered index in one linear merge.
    fn merge_sorted(&mut self, fresh: Vec<SignedEntry>) {
        let mut fresh: Vec<Arc<SignedEntry>> = fresh.into_iter().map(Arc::new).collect();
        fresh.sort_by_key(|e| sort_key(e));
        let old = std::mem::take(&mut self.entries);
        let mut merged = Vec::with_capacity(old.len() + fresh.len());
        let mut old = old.into_iter().peekable();
        let mut fresh = fresh.into_iter().peekable();
        loop {
            let take_old = match (old.peek(), fresh.peek()) {
                (Some(a), Some(b)) => sort_key(a) <= sort_key(b),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_old { old.next() } else { fresh.next() };
            merged.extend(next);
        }
        self.entries = merged;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn latest(&self) -> Option<&SignedEntry> {
        self.entries.last().map(|e| &**e)
    }

    /// The entry with this id (as `activity::entry_id` gives it).
    pub fn find(&self, id: &str) -> Option<&SignedEntry> {
        self.entries
            .iter()
            .rev()
            .map(|e| &**e)
            .find(|e| tandem_protocol::activity::entry_id(e) == id)
    }

    /// Newest first, filtered, at most `limit`.
    pub fn query(&self, filter: &Filter, limit: usize) -> Vec<&SignedEntry> {
        self.entries
            .iter()
            .rev()
            .map(|e| &**e)
            .filter(|e| filter.matches(&e.payload))
            .take(limit)
            .collect()
    }

    pub fn writers(&self) -> impl Iterator<Item = &PeerKey> {
        self.writers.keys()
    }

    /// Current heads of a writer's document (empty if unknown).
    pub fn heads(&self, writer: &PeerKey) -> Result<Vec<ChangeHash>, FeedError> {
        match self.writers.get(writer) {
            Some(w) => Ok(w.doc()?.get_heads()),
            None => Ok(Vec::new()),
        }
    }

    /// The changes of `writer`'s document that a peer at `since` lacks.
    pub fn bundle_since(
        &self,
        writer: &PeerKey,
        since: &[ChangeHash],
    ) -> Result<Vec<u8>, FeedError> {
        match self.writers.get(writer) {
            Some(w) => Ok(w.doc()?.save_after(since)),
            None => Ok(Vec::new()),
        }
    }

    /// Heads of every writer's document, hex, sorted: what this node tells
    /// a peer it already has.
    pub fn all_heads(&self) -> Result<Vec<(PeerKey, Vec<String>)>, FeedError> {
        self.writers
            .iter()
            .map(|(key, w)| Ok((*key, sorted_heads(w.doc()?))))
            .collect()
    }

    /// The changes of `writer`'s document beyond `have` (hex heads sent by
    /// a peer; unknown ones are ignored), or `None` when the peer is
    /// already up to date.
    pub fn bundle_beyond(
        &self,
        writer: &PeerKey,
        have: &[String],
    ) -> Result<Option<Vec<u8>>, FeedError> {
        let Some(w) = self.writers.get(writer) else {
            return Ok(None);
        };
        let doc = w.doc()?;
        let mut known: Vec<ChangeHash> = have
            .iter()
            .filter_map(|h| h.parse::<ChangeHash>().ok())
            .filter(|h| doc.get_change_by_hash(h).is_some())
            .collect();
        known.sort();
        // A writer's document only grows along one line: heads we have never
        // seen mean the peer is ahead of us, so we have nothing to offer.
        if !have.is_empty() && known.is_empty() {
            return Ok(None);
        }
        let mut current = doc.get_heads();
        current.sort();
        if known == current {
            return Ok(None);
        }
        Ok(Some(doc.save_after(&known)))
    }

    /// Signed heads for a writer's document: freshly signed for our own,
    /// the last ones received for others'.
    pub fn signed_heads(&self, writer: &PeerKey, own: &SecretKey) -> Option<SignedHeads> {
        let doc = self.writers.get(writer)?;
        if writer == &own.public() {
            let heads = DocHeads {
                project: self.project,
                writer: *writer,
                heads: sorted_heads(doc.doc().ok()?),
            };
            Signed::sign(heads, own).ok()
        } else {
            doc.signed_heads.clone()
        }
    }

    /// Applies a bundle of `writer`'s changes. It is accepted only if the
    /// writer signed the heads it ends at and every new entry is well formed,
    /// belongs to this project and is authored by that writer; otherwise the
    /// document is left exactly as it was. Returns the number of new entries.
    pub fn apply_bundle(&mut self, bundle: &[u8], heads: &SignedHeads) -> Result<usize, FeedError> {
        heads
            .verify()
            .map_err(|e| FeedError::Rejected(format!("feed heads: {e}")))?;
        if heads.payload.project != self.project {
            return Err(FeedError::Rejected(
                "feed heads belong to another project".into(),
            ));
        }
        let writer_key = heads.payload.writer;
        let project = self.project;
        let writer = self.writer_mut(writer_key)?;
        let first_new = writer.next_seq;
        let doc = writer.doc_mut()?;
        // Already at (or past) the signed heads: nothing to take.
        let already = heads.payload.heads.iter().all(|h| {
            h.parse::<ChangeHash>()
                .is_ok_and(|h| doc.get_change_by_hash(&h).is_some())
        });
        if already {
            return Ok(0);
        }
        let outcome = doc
            .load_incremental(bundle)
            .map_err(FeedError::from)
            .and_then(|_| {
                if sorted_heads(doc) != heads.payload.heads {
                    return Err(FeedError::Rejected(
                        "bundle does not end at the heads its writer signed".into(),
                    ));
                }
                let fresh = parse_entries(&raw_entries(doc, first_new), &writer_key, &project);
                let expected = doc.length(ROOT) as u64;
                if fresh.len() as u64 + first_new - 1 != expected {
                    return Err(FeedError::Rejected(
                        "bundle holds entries that are malformed or out of sequence".into(),
                    ));
                }
                Ok(fresh)
            });
        let fresh = match outcome {
            Ok(fresh) => fresh,
            Err(e) => {
                // Roll back to what is on disk: nothing of the bundle stays.
                let (doc, _) = self.load_writer(writer_key)?;
                self.writers.insert(writer_key, doc);
                return Err(e);
            }
        };
        // The bundle applied cleanly, so it is itself a valid log chunk.
        append_frame(&mut writer.log, &writer.log_path, bundle, true)?;
        writer.log_chunks += 1;
        writer.next_seq = fresh
            .iter()
            .map(|e| e.payload.seq + 1)
            .max()
            .unwrap_or(first_new);
        let (_, _, heads_path) = WriterDoc::paths(&self.dir, &writer_key);
        atomic_write(&heads_path, heads.to_json().as_bytes(), None).map_err(io_err(&heads_path))?;
        if let Some(w) = self.writers.get_mut(&writer_key) {
            w.signed_heads = Some(heads.clone());
        }
        let count = fresh.len();
        self.merge_sorted(fresh);
        Ok(count)
    }

    /// Whole documents with their signed heads, for export.
    pub fn export_docs(&self, own: &SecretKey) -> Result<Vec<ExportedDoc>, FeedError> {
        self.writers
            .iter()
            .map(|(key, w)| Ok((*key, w.doc()?.save(), self.signed_heads(key, own))))
            .collect()
    }

    /// Imports a whole writer document (from an archive) into an empty
    /// feed, with the same checks as [`Feed::apply_bundle`].
    pub fn import_doc(&mut self, doc: &[u8], heads: &SignedHeads) -> Result<usize, FeedError> {
        self.apply_bundle(doc, heads)
    }

    /// Every figure the feed's entries name (their blob hashes).
    pub fn figures(&self) -> HashSet<BlobHash> {
        self.query(&Filter::default(), usize::MAX)
            .into_iter()
            .flat_map(|entry| entry.payload.details.figures.iter())
            .filter_map(|hash| hash.parse().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use tandem_protocol::project::Genesis;

    fn setup() -> (tempfile::TempDir, ProjectId, SecretKey) {
        let key = SecretKey::from_bytes([5; 32]);
        let project = Genesis::create(&"p".parse().expect("name"), &key, 0, [0; 16]).project_id();
        (tempfile::tempdir().expect("tempdir"), project, key)
    }

    fn draft(i: i64) -> Draft {
        Draft {
            kind: Kind::Note,
            message: format!("note {i}"),
            commit: None,
            details: Details::default(),
            tags: vec![],
            time_ms: i,
        }
    }

    #[test]
    fn entries_survive_reopen_and_compaction() {
        let (dir, project, key) = setup();
        let mut feed = Feed::open(dir.path(), project).expect("open");
        for i in 0..5 {
            feed.append(&key, "Ada", draft(i)).expect("append");
        }
        feed.compact_all().expect("compact");
        feed.append(&key, "Ada", draft(5))
            .expect("append after compact");
        drop(feed);
        let feed = Feed::open(dir.path(), project).expect("reopen");
        assert_eq!(feed.len(), 6);
        let newest = feed.query(&Filter::default(), 1);
        assert_eq!(newest[0].payload.message, "note 5");
        assert_eq!(newest[0].payload.seq, 6);
    }

    #[test]
    fn index_is_used_only_when_it_matches_the_snapshot() {
        let (dir, project, key) = setup();
        let mut feed = Feed::open(dir.path(), project).expect("open");
        for i in 0..3 {
            feed.append(&key, "Ada", draft(i)).expect("append");
        }
        feed.compact_all().expect("compact");
        drop(feed);
        let stem = hex::encode(key.public().as_bytes());
        let index = dir.path().join(format!("{stem}.idx"));
        assert!(index.exists());
        let from_index: Vec<String> = Feed::open(dir.path(), project)
            .expect("reopen from index")
            .query(&Filter::default(), 10)
            .iter()
            .map(|e| e.payload.message.clone())
            .collect();
        assert_eq!(from_index, vec!["note 2", "note 1", "note 0"]);
        // An index made from another snapshot is ignored, not trusted.
        let text = fs::read_to_string(&index).expect("index");
        let stale = text.replacen("v1 ", "v1 00", 1).replace("note 1", "stale");
        fs::write(&index, stale).expect("write");
        let mut feed = Feed::open(dir.path(), project).expect("reopen");
        assert_eq!(
            feed.query(&Filter::default(), 10)[1].payload.message,
            "note 1",
            "stale index ignored"
        );
        feed.append(&key, "Ada", draft(3))
            .expect("append loads the document lazily");
        assert_eq!(feed.len(), 4);
    }

    #[test]
    fn torn_log_tail_is_cut_and_the_rest_kept() {
        let (dir, project, key) = setup();
        let mut feed = Feed::open(dir.path(), project).expect("open");
        feed.append(&key, "Ada", draft(1)).expect("append");
        feed.append(&key, "Ada", draft(2)).expect("append");
        drop(feed);
        let log = dir
            .path()
            .join(format!("{}.log", hex::encode(key.public().as_bytes())));
        let mut file = fs::OpenOptions::new().append(true).open(&log).expect("log");
        file.write_all(&[200, 0, 0, 0, 1, 2, 3])
            .expect("torn write");
        drop(file);
        let mut feed = Feed::open(dir.path(), project).expect("reopen after torn write");
        assert_eq!(feed.len(), 2);
        feed.append(&key, "Ada", draft(3))
            .expect("append after repair");
        drop(feed);
        assert_eq!(Feed::open(dir.path(), project).expect("reopen").len(), 3);
    }

    #[test]
    fn bundles_apply_only_at_signed_heads() {
        let (dir, project, key) = setup();
        let other_dir = tempfile::tempdir().expect("tempdir");
        let mut source = Feed::open(dir.path(), project).expect("open");
        let mut sink = Feed::open(other_dir.path(), project).expect("open");
        for i in 0..3 {
            source.append(&key, "Ada", draft(i)).expect("append");
        }
        let writer = key.public();
        let heads = source.signed_heads(&writer, &key).expect("heads");
        let bundle = source
            .bundle_since(&writer, &sink.heads(&writer).expect("heads"))
            .expect("bundle");

        // Heads signed by someone else are refused.
        let mallory = SecretKey::from_bytes([9; 32]);
        let mut forged = heads.clone();
        forged.payload.writer = mallory.public();
        assert!(sink.apply_bundle(&bundle, &forged).is_err());
        // Heads that do not match the bundle are refused and nothing stays.
        source.append(&key, "Ada", draft(9)).expect("append");
        let later = source.signed_heads(&writer, &key).expect("heads");
        assert!(sink.apply_bundle(&bundle, &later).is_err());
        assert_eq!(sink.len(), 0);

        assert_eq!(sink.apply_bundle(&bundle, &heads).expect("apply"), 3);
        let rest = source
            .bundle_since(&writer, &sink.heads(&writer).expect("heads"))
            .expect("bundle");
        assert_eq!(sink.apply_bundle(&rest, &later).expect("apply rest"), 1);
        drop(sink);
        assert_eq!(
            Feed::open(other_dir.path(), project).expect("reopen").len(),
            4
        );
    }
}
