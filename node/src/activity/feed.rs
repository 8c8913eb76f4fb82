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

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ChangeHash, ROOT, ReadDoc, ScalarValueRef, ValueRef};
use tandem_protocol::activity::{
    Details, Entry, EntryError, FeedHeads, Filter, Kind, SignedEntry, SignedFeedHeads,
};
use tandem_protocol::signed::Signed;
use tandem_protocol::{PeerKey, ProjectId, SecretKey};

use crate::fsutil::{atomic_write, open_append};

/// Log chunks after which the log is folded into the snapshot.
const COMPACT_AFTER_CHUNKS: usize = 2_000;
/// Largest single log frame accepted when reading (a corrupt length field
/// must not make us allocate gigabytes).
const MAX_FRAME: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("activity store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("activity document {path} is unreadable: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("activity document update refused: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error("{0}")]
    Rejected(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FeedError + '_ {
    move |source| FeedError::Io {
        path: path.to_owned(),
        source,
    }
}

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

struct WriterDoc {
    writer: PeerKey,
    /// Loaded on first use: a feed that was shut down cleanly is read from
    /// its entry index alone, which is several times faster.
    doc: OnceCell<Automerge>,
    snapshot: PathBuf,
    log_path: PathBuf,
    index_path: PathBuf,
    log: File,
    log_chunks: usize,
    next_seq: u64,
    /// Latest heads signed by the writer, for documents of other writers.
    signed_heads: Option<SignedHeads>,
}

impl WriterDoc {
    fn doc(&self) -> Result<&Automerge, FeedError> {
        if let Some(doc) = self.doc.get() {
            return Ok(doc);
        }
        let mut doc = match fs::read(&self.snapshot) {
            Ok(bytes) => Automerge::load(&bytes).map_err(|e| FeedError::Corrupt {
                path: self.snapshot.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Automerge::new(),
            Err(e) => return Err(io_err(&self.snapshot)(e)),
        };
        replay_log(&self.log_path, &mut doc)?;
        doc.set_actor(ActorId::from(self.writer.as_bytes()));
        Ok(self.doc.get_or_init(|| doc))
    }

    fn doc_mut(&mut self) -> Result<&mut Automerge, FeedError> {
        self.doc()?;
        self.doc
            .get_mut()
            .ok_or_else(|| FeedError::Rejected("activity document failed to load".into()))
    }
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

fn seq_key(seq: u64) -> String {
    format!("{seq:012}")
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

    fn writer_paths(&self, writer: &PeerKey) -> (PathBuf, PathBuf, PathBuf) {
        let stem = hex::encode(writer.as_bytes());
        (
            self.dir.join(format!("{stem}.am")),
            self.dir.join(format!("{stem}.log")),
            self.dir.join(format!("{stem}.heads")),
        )
    }

    fn load_writer(&self, writer: PeerKey) -> Result<(WriterDoc, Vec<SignedEntry>), FeedError> {
        let (snapshot, log_path, heads_path) = self.writer_paths(&writer);
        let index_path = snapshot.with_extension("idx");
        let signed_heads = match fs::read_to_string(&heads_path) {
            Ok(text) => serde_json::from_str(&text).ok(),
            Err(_) => None,
        };
        let log = open_append(&log_path).map_err(io_err(&log_path))?;
        let mut doc = WriterDoc {
            writer,
            doc: OnceCell::new(),
            snapshot,
            log_path,
            index_path,
            log,
            log_chunks: 0,
            next_seq: 1,
            signed_heads,
        };
        let entries = match read_index(&doc, &self.project)? {
            Some(entries) => entries,
            None => {
                let loaded = doc.doc()?;
                let raw = raw_entries(loaded, 0);
                doc.log_chunks = count_frames(&doc.log_path);
                parse_entries(&raw, &writer, &self.project)
            }
        };
        doc.next_seq = entries.iter().map(|e| e.payload.seq + 1).max().unwrap_or(1);
        Ok((doc, entries))
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
        let (_, _, heads_path) = self.writer_paths(&writer_key);
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
}

/// The stored JSON strings of a document from sequence `from` on.
fn raw_entries(doc: &Automerge, from: u64) -> Vec<(String, String)> {
    doc.map_range(ROOT, seq_key(from)..)
        .filter_map(|item| match &item.value {
            ValueRef::Scalar(ScalarValueRef::Str(json)) => {
                Some((item.key.to_string(), json.to_string()))
            }
            _ => None,
        })
        .collect()
}

/// Parses stored entries, keeping only those that carry the key they are
/// stored under, belong to the project, are authored by the document's
/// writer and respect the limits.
fn parse_entries(
    raw: &[(String, String)],
    writer: &PeerKey,
    project: &ProjectId,
) -> Vec<SignedEntry> {
    let parse = |chunk: &[(String, String)]| -> Vec<SignedEntry> {
        chunk
            .iter()
            .filter_map(|(key, json)| {
                let entry = serde_json::from_str::<SignedEntry>(json).ok()?;
                let well_formed = seq_key(entry.payload.seq) == *key
                    && &entry.payload.author == writer
                    && &entry.payload.project == project
                    && entry.payload.validate().is_ok();
                well_formed.then_some(entry)
            })
            .collect()
    };
    // Parsing dominates loading a large feed; spread it over the cores.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if raw.len() < 4_096 || threads < 2 {
        return parse(raw);
    }
    let chunk = raw.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = raw
            .chunks(chunk)
            .map(|c| scope.spawn(move || parse(c)))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_default())
            .collect()
    })
}

const INDEX_HEADER: &str = "tandem-feed-index v1";

/// The entry index written beside a snapshot: a header naming the BLAKE3
/// hash of the snapshot it was made from, then one stored entry per line
/// (`key<TAB>json`). It is used only when it matches the snapshot and the
/// log is empty; otherwise the document itself is read.
fn read_index(
    writer: &WriterDoc,
    project: &ProjectId,
) -> Result<Option<Vec<SignedEntry>>, FeedError> {
    let log_empty = fs::metadata(&writer.log_path)
        .map(|m| m.len() == 0)
        .unwrap_or(true);
    if !log_empty {
        return Ok(None);
    }
    let Ok(index) = fs::read_to_string(&writer.index_path) else {
        return Ok(None);
    };
    let Ok(snapshot) = fs::read(&writer.snapshot) else {
        return Ok(None);
    };
    let mut lines = index.lines();
    let expected = format!("{INDEX_HEADER} {}", blake3::hash(&snapshot).to_hex());
    if lines.next() != Some(expected.as_str()) {
        return Ok(None);
    }
    let mut raw = Vec::new();
    for line in lines {
        let Some((key, json)) = line.split_once('\t') else {
            return Ok(None);
        };
        raw.push((key.to_owned(), json.to_owned()));
    }
    let entries = parse_entries(&raw, &writer.writer, project);
    if entries.len() != raw.len() {
        return Ok(None);
    }
    Ok(Some(entries))
}

fn write_index(writer: &WriterDoc, doc: &Automerge, snapshot: &[u8]) -> Result<(), FeedError> {
    let raw = raw_entries(doc, 0);
    let mut text = String::with_capacity(
        raw.iter()
            .map(|(k, j)| k.len() + j.len() + 2)
            .sum::<usize>()
            + 64,
    );
    text.push_str(&format!(
        "{INDEX_HEADER} {}\n",
        blake3::hash(snapshot).to_hex()
    ));
    for (key, json) in raw {
        text.push_str(&key);
        text.push('\t');
        text.push_str(&json);
        text.push('\n');
    }
    atomic_write(&writer.index_path, text.as_bytes(), None).map_err(io_err(&writer.index_path))
}

fn count_frames(path: &Path) -> usize {
    let Ok(bytes) = fs::read(path) else { return 0 };
    let mut at = 0;
    let mut count = 0;
    while at + 12 <= bytes.len() {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        at += 12 + len;
        count += 1;
    }
    count
}

/// Frames are `len (u32 le) | blake3(data)[..8] | data`: a torn or corrupt
/// tail after a crash is detected and cut off instead of poisoning the load.
fn append_frame(log: &mut File, path: &Path, data: &[u8], durable: bool) -> Result<(), FeedError> {
    let mut frame = Vec::with_capacity(12 + data.len());
    frame.extend_from_slice(&(data.len() as u32).to_le_bytes());
    frame.extend_from_slice(&blake3::hash(data).as_bytes()[..8]);
    frame.extend_from_slice(data);
    log.write_all(&frame).map_err(io_err(path))?;
    if durable {
        log.sync_data().map_err(io_err(path))?;
    }
    Ok(())
}

fn replay_log(path: &Path, doc: &mut Automerge) -> Result<usize, FeedError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes).map_err(io_err(path))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(path)(e)),
    }
    let mut at = 0;
    let mut chunks = 0;
    while at + 12 <= bytes.len() {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let end = at + 12 + len;
        if len > MAX_FRAME || end > bytes.len() {
            break;
        }
        let data = &bytes[at + 12..end];
        if blake3::hash(data).as_bytes()[..8] != bytes[at + 4..at + 12] {
            break;
        }
        doc.load_incremental(data).map_err(|e| FeedError::Corrupt {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        at = end;
        chunks += 1;
    }
    if at < bytes.len() {
        tracing::warn!(path = %path.display(), kept = at, dropped = bytes.len() - at, "cutting a torn tail off an activity log");
        let file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        file.set_len(at as u64).map_err(io_err(path))?;
        file.sync_all().map_err(io_err(path))?;
    }
    Ok(chunks)
}

/// Writes a fresh snapshot, then empties the log. A crash between the two
/// only replays changes the snapshot already has, which is harmless.
fn compact(writer: &mut WriterDoc) -> Result<(), FeedError> {
    let doc = writer.doc()?;
    let bytes = doc.save();
    atomic_write(&writer.snapshot, &bytes, None).map_err(io_err(&writer.snapshot))?;
    write_index(writer, doc, &bytes)?;
    writer.log.set_len(0).map_err(io_err(&writer.log_path))?;
    writer.log.sync_all().map_err(io_err(&writer.log_path))?;
    writer.log_chunks = 0;
    Ok(())
}

#[cfg(test)]
mod tests {
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
