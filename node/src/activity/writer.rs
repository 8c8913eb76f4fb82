//! One writer's automerge document on disk: a snapshot, a framed log of
//! the changes since, and an index of its entries read instead of the
//! document when it matches; loading, appending frames and compaction.

use std::cell::OnceCell;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use automerge::{ActorId, Automerge, ROOT, ReadDoc, ScalarValueRef, ValueRef};
use tandem_protocol::activity::{SignedEntry, SignedFeedHeads};
use tandem_protocol::{PeerKey, ProjectId};

use super::error::{FeedError, io_err};
use crate::fsutil::{atomic_write, open_append};

/// Log chunks after which the log is folded into the snapshot.
pub(super) const COMPACT_AFTER_CHUNKS: usize = 2_000;
/// Largest single log frame accepted when reading (a corrupt length field
/// must not make us allocate gigabytes).
const MAX_FRAME: usize = 256 * 1024 * 1024;

/// One writer's document and the files it lives in.
pub(super) struct WriterDoc {
    writer: PeerKey,
    /// Loaded on first use: a feed that was shut down cleanly is read from
    /// its entry index alone, which is several times faster.
    doc: OnceCell<Automerge>,
    snapshot: PathBuf,
    pub(super) log_path: PathBuf,
    index_path: PathBuf,
    pub(super) log: File,
    pub(super) log_chunks: usize,
    pub(super) next_seq: u64,
    /// Latest heads signed by the writer, for documents of other writers.
    pub(super) signed_heads: Option<SignedFeedHeads>,
}

impl WriterDoc {
    pub(super) fn doc(&self) -> Result<&Automerge, FeedError> {
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

    pub(super) fn doc_mut(&mut self) -> Result<&mut Automerge, FeedError> {
        self.doc()?;
        self.doc
            .get_mut()
            .ok_or_else(|| FeedError::Rejected("activity document failed to load".into()))
    }

    /// The snapshot, log and signed-heads files of `writer` in `dir`.
    pub(super) fn paths(dir: &Path, writer: &PeerKey) -> (PathBuf, PathBuf, PathBuf) {
        let stem = hex::encode(writer.as_bytes());
        (
            dir.join(format!("{stem}.am")),
            dir.join(format!("{stem}.log")),
            dir.join(format!("{stem}.heads")),
        )
    }

    /// Opens `writer`'s document in `dir`, with its entries: from the
    /// index when it matches, else from the document itself.
    pub(super) fn load(
        dir: &Path,
        project: &ProjectId,
        writer: PeerKey,
    ) -> Result<(WriterDoc, Vec<SignedEntry>), FeedError> {
        let (snapshot, log_path, heads_path) = Self::paths(dir, &writer);
        let index_path = snapshot.with_extension("idx");
        let signed_heads = match fs::read_to_string(&heads_path) {
            Ok(text) => serde_json::from_str(&text).ok(),
            Err(_) => None,
        };
        let log = open_append(&log_path).map_err(io_err(&log_path))?;
        let mut doc = Self {
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
        let entries = match read_index(&doc, project)? {
            Some(entries) => entries,
            None => {
                let loaded = doc.doc()?;
                let raw = raw_entries(loaded, 0);
                doc.log_chunks = count_frames(&doc.log_path);
                parse_entries(&raw, &writer, project)
            }
        };
        doc.next_seq = entries.iter().map(|e| e.payload.seq + 1).max().unwrap_or(1);
        Ok((doc, entries))
    }
}

pub(super) fn seq_key(seq: u64) -> String {
    format!("{seq:012}")
}

/// The stored JSON strings of a document from sequence `from` on.
pub(super) fn raw_entries(doc: &Automerge, from: u64) -> Vec<(String, String)> {
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
pub(super) fn parse_entries(
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
pub(super) fn append_frame(
    log: &mut File,
    path: &Path,
    data: &[u8],
    durable: bool,
) -> Result<(), FeedError> {
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
pub(super) fn compact(writer: &mut WriterDoc) -> Result<(), FeedError> {
    let doc = writer.doc()?;
    let bytes = doc.save();
    atomic_write(&writer.snapshot, &bytes, None).map_err(io_err(&writer.snapshot))?;
    write_index(writer, doc, &bytes)?;
    writer.log.set_len(0).map_err(io_err(&writer.log_path))?;
    writer.log.sync_all().map_err(io_err(&writer.log_path))?;
    writer.log_chunks = 0;
    Ok(())
}
