//! The simulated network: messages in flight with seeded latency, loss and
//! duplication, and their sizes as nodes would encode them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use tandem_protocol::PeerKey;
use tandem_protocol::access::SignedStatement;
use tandem_protocol::wire::{FeedBundle, Request, Response, WriterHeads};

use crate::Rng;
use crate::dag::Dag;

/// A message's kind, for the byte breakdown.
pub(crate) fn kind_of(payload: &Payload) -> &'static str {
    match payload {
        Payload::Request(r) => match r {
            Request::Projects => "request:projects",
            Request::Access { .. } => "request:access",
            Request::Refs { .. } => "request:refs",
            Request::Pack { .. } => "request:pack",
            Request::Feed { .. } => "request:feed",
            Request::Announce { .. } => "request:announce",
            Request::BlobEndpoint => "request:blob-endpoint",
            Request::Join { .. } => "request:join",
        },
        Payload::Response(r) => match r {
            Response::Projects { .. } => "response:projects",
            Response::Access { .. } => "response:access",
            Response::Refs { .. } => "response:refs",
            Response::Pack { .. } => "response:pack",
            Response::Feed { .. } => "response:feed",
            Response::Ack => "response:ack",
            Response::BlobEndpoint { .. } => "response:blob-endpoint",
            Response::Joined { .. } => "response:joined",
            Response::JoinRefused { .. } => "response:join-refused",
            Response::Denied => "response:denied",
            Response::Failed { .. } => "response:failed",
        },
    }
}

/// A message in flight.
#[derive(Clone)]
pub(crate) enum Payload {
    Request(Request),
    Response(Response),
}

#[derive(Clone)]
pub(crate) struct Envelope {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) session_id: u64,
    pub(crate) payload: Payload,
}

/// Wire sizes of messages: exactly `serde_json::to_vec(message).len()`,
/// the encoding nodes send, without encoding every message again.
///
/// Encoding for the count was most of the cost of large runs: every key in
/// a message is base58-encoded, and packs are hex-encoded. The large
/// messages are lists (statements, writers' heads, feed bundles) or bytes
/// (packs). A list's size is that of the message with the list empty, plus
/// each element's size and the commas between them. Elements recur across
/// messages (every peer is sent the same grants, every requester lists every
/// writer), so each element is encoded once with serde_json and its size
/// remembered; a remembered size is used only for an identical element.
/// [`Config::check_wire_sizes`] compares every count with the real encoding.
#[derive(Default)]
pub(crate) struct WireSizes {
    /// By signature, with the statement it was measured for.
    statements: HashMap<[u8; 64], (SignedStatement, usize)>,
    writer_heads: HashMap<PeerKey, HashMap<Vec<String>, usize>>,
    /// By writer and heads, with the bundle it was measured for.
    bundles: HashMap<PeerKey, HashMap<Vec<String>, (FeedBundle, usize)>>,
}

/// `serde_json::to_vec(value).len()` (a macro, to spare the simulator a
/// direct dependency on serde for the trait bound).
macro_rules! json_len {
    ($value:expr) => {
        serde_json::to_vec($value).map(|v| v.len()).unwrap_or(0)
    };
}

/// The size of a JSON list's elements and the commas between them.
fn list_len(sizes: impl Iterator<Item = usize>) -> usize {
    let (sum, n) = sizes.fold((0, 0usize), |(sum, n), size| (sum + size, n + 1));
    sum + n.saturating_sub(1)
}

impl WireSizes {
    fn request(&mut self, request: &Request) -> usize {
        match request {
            Request::Feed { project, have } => {
                let empty = json_len!(&Request::Feed {
                    project: *project,
                    have: vec![],
                });
                empty + list_len(have.iter().map(|h| self.writer_heads(h)))
            }
            // Small: a project id and a few hashes.
            other => json_len!(other),
        }
    }

    fn response(&mut self, response: &Response) -> usize {
        match response {
            Response::Access { statements } => {
                let empty = json_len!(&Response::Access { statements: vec![] });
                empty + list_len(statements.iter().map(|s| self.statement(s)))
            }
            Response::Feed { bundles } => {
                let empty = json_len!(&Response::Feed { bundles: vec![] });
                empty + list_len(bundles.iter().map(|b| self.bundle(b)))
            }
            // Small, or rare: signed refs, acks, denials.
            other => json_len!(other),
        }
    }

    /// A pack of commit numbers (see [`Peer::pack`]), counted as the JSON
    /// pack it stands for, hex-encoded in the response as pack bytes are
    /// (`wire::serde_bytes_compat`).
    fn pack(&mut self, pack: &[u8], dag: &Dag) -> usize {
        let json = 2 + list_len(Dag::unpack(pack).map(|c| dag.packed[c as usize].len()));
        json_len!(&Response::Pack { pack: vec![] }) + 2 * json
    }

    fn statement(&mut self, statement: &SignedStatement) -> usize {
        let key = statement.signature.to_bytes();
        match self.statements.get(&key) {
            Some((measured, size)) if measured == statement => *size,
            Some(_) => json_len!(statement),
            None => {
                let size = json_len!(statement);
                self.statements.insert(key, (statement.clone(), size));
                size
            }
        }
    }

    fn writer_heads(&mut self, heads: &WriterHeads) -> usize {
        let by_heads = self.writer_heads.entry(heads.writer).or_default();
        if let Some(size) = by_heads.get(&heads.heads[..]) {
            return *size;
        }
        let size = json_len!(heads);
        by_heads.insert(heads.heads.clone(), size);
        size
    }

    fn bundle(&mut self, bundle: &FeedBundle) -> usize {
        let by_heads = self.bundles.entry(bundle.heads.payload.writer).or_default();
        match by_heads.get(&bundle.heads.payload.heads[..]) {
            Some((measured, size)) if measured == bundle => *size,
            Some(_) => json_len!(bundle),
            None => {
                let size = json_len!(bundle);
                by_heads.insert(bundle.heads.payload.heads.clone(), (bundle.clone(), size));
                size
            }
        }
    }
}

/// The simulated network: delivery times, loss, duplication, counters.
pub(crate) struct Net {
    sizes: WireSizes,
    check_wire_sizes: bool,
    rng: Rng,
    loss_percent: u64,
    duplicate_percent: u64,
    max_latency_ms: u64,
    queue: BinaryHeap<Reverse<(u64, usize)>>,
    in_flight: HashMap<usize, Envelope>,
    next_id: usize,
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
    pub(crate) bytes_by_kind: BTreeMap<&'static str, u64>,
}

impl Net {
    pub(crate) fn new(config: &crate::Config) -> Self {
        Self {
            sizes: WireSizes::default(),
            check_wire_sizes: config.check_wire_sizes,
            rng: Rng::new(config.seed ^ 0x5eed),
            loss_percent: config.loss_percent,
            duplicate_percent: config.duplicate_percent,
            max_latency_ms: config.max_latency_ms,
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            next_id: 0,
            messages: 0,
            bytes: 0,
            bytes_by_kind: BTreeMap::new(),
        }
    }

    /// Counts the message, then loses, delays or duplicates it; `cut`
    /// messages cross a partition and never arrive.
    pub(crate) fn send(&mut self, env: Envelope, now: u64, cut: bool, dag: &Dag) {
        let (size, encoded) = match &env.payload {
            Payload::Request(r) => (
                self.sizes.request(r),
                self.check_wire_sizes.then(|| json_len!(r)),
            ),
            Payload::Response(Response::Pack { pack }) => (
                self.sizes.pack(pack, dag),
                self.check_wire_sizes.then(|| {
                    json_len!(&Response::Pack {
                        pack: dag.pack_json(pack)
                    })
                }),
            ),
            Payload::Response(r) => (
                self.sizes.response(r),
                self.check_wire_sizes.then(|| json_len!(r)),
            ),
        };
        if let Some(encoded) = encoded {
            assert_eq!(size, encoded, "counted wire size differs from the encoding");
        }
        self.messages += 1;
        self.bytes += size as u64;
        *self.bytes_by_kind.entry(kind_of(&env.payload)).or_default() += size as u64;
        if cut || self.rng.chance(self.loss_percent) {
            return;
        }
        if self.rng.chance(self.duplicate_percent) {
            self.deliver(env.clone(), now);
        }
        self.deliver(env, now);
    }

    fn deliver(&mut self, env: Envelope, now: u64) {
        let at = now + 1 + self.rng.below(self.max_latency_ms);
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight.insert(id, env);
        self.queue.push(Reverse((at, id)));
    }

    /// The next message due no later than `end`.
    pub(crate) fn next_due(&mut self, end: u64) -> Option<(u64, Envelope)> {
        loop {
            let Reverse((at, id)) = *self.queue.peek()?;
            if at > end {
                return None;
            }
            self.queue.pop();
            if let Some(env) = self.in_flight.remove(&id) {
                return Some((at, env));
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.in_flight.clear();
    }
}
