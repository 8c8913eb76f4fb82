//! A deterministic simulator of many Tandem peers running the real sync
//! state machine ([`tandem_protocol::sync::Session`]) and the real access
//! evaluation over a simulated network with seeded latency, loss,
//! reordering, duplication and partitions that heal.
//!
//! What is modelled: each peer's Git history as a commit DAG (a merge is
//! named by the work it contains, so merges of the same work are the same
//! commit: a stand-in for the fast-forwards by which Git histories settle),
//! each writer's activity feed as a count of entries (a bundle carries the
//! missing range), and access statements as the real signed statements.
//! What is checked: every member converges to the same head, the same feeds
//! and the same roles, and no peer ever holds a commit made by a reader
//! other than that reader. Bytes are counted as serde_json encodes each
//! message, as nodes send them.
//!
//! What makes 1,000 peers affordable, without changing what is simulated:
//! commits are stored once for the run and peers hold sets of commit numbers
//! (`Dag`); each distinct access statement is verified once and the
//! verdict shared (`Verdicts`); roles and access heads are re-evaluated
//! only when a peer's statements change; message sizes are summed from
//! remembered element sizes instead of re-encoding (`WireSizes`). Each
//! peer syncs with one random peer per round, chosen among those that hold
//! a role in its view (a node names a project only to its members), so
//! work per round is linear in the number of peers (times what one sync
//! carries, which grows with it). Optionally some readers flood their
//! access answers with junk (`Config::flooding_readers`); no member may
//! keep any of it.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use tandem_protocol::access::{
    Access, Action, Inserted, Role, Roles, SignedStatement, Statement, StatementId, Verified,
};
use tandem_protocol::activity::FeedHeads;
use tandem_protocol::project::Genesis;
use tandem_protocol::signed::Signed;
use tandem_protocol::sync::{BRANCH, Effect, LocalView, Session};
use tandem_protocol::wire::{FeedBundle, Refs, Request, Response, SignedRefs, WriterHeads};
use tandem_protocol::{PeerKey, ProjectId, SecretKey};

/// A small, fast, seedable generator (xorshift64*), so runs replay exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Knobs of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub peers: usize,
    pub readers: usize,
    pub seed: u64,
    pub loss_percent: u64,
    pub duplicate_percent: u64,
    pub max_latency_ms: u64,
    /// Rounds during which peers make changes and partitions come and go.
    pub busy_rounds: u64,
    /// Rounds allowed after that to converge.
    pub max_quiet_rounds: u64,
    /// Also encode every message with serde_json and panic if the counted
    /// size differs (see `WireSizes`). Slow; for tests.
    pub check_wire_sizes: bool,
    /// Readers whose answers to access requests also carry 70 validly
    /// signed statements from throw-away keys (the flood of issue 13):
    /// no member may keep one, and every member must still converge.
    pub flooding_readers: usize,
}

impl Config {
    pub fn new(peers: usize, seed: u64) -> Self {
        Self {
            peers,
            readers: (peers / 5).max(1),
            seed,
            loss_percent: 5,
            duplicate_percent: 3,
            max_latency_ms: 40,
            busy_rounds: 20,
            max_quiet_rounds: 200,
            check_wire_sizes: false,
            flooding_readers: 0,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub converged: bool,
    /// Quiet rounds until every member agreed.
    pub rounds: u64,
    pub messages: u64,
    pub bytes: u64,
    /// Bytes by message kind (`request:feed`, `response:pack`, …): what
    /// the traffic is made of.
    pub bytes_by_kind: BTreeMap<&'static str, u64>,
    pub commits: usize,
    pub violations: Vec<String>,
}

/// A message's kind, for the byte breakdown.
fn kind_of(payload: &Payload) -> &'static str {
    match payload {
        Payload::Request(r) => match r {
            Request::Projects => "request:projects",
            Request::Access { .. } => "request:access",
            Request::Refs { .. } => "request:refs",
            Request::Pack { .. } => "request:pack",
            Request::Feed { .. } => "request:feed",
            Request::Announce { .. } => "request:announce",
            Request::BlobEndpoint => "request:blob-endpoint",
        },
        Payload::Response(r) => match r {
            Response::Projects { .. } => "response:projects",
            Response::Access { .. } => "response:access",
            Response::Refs { .. } => "response:refs",
            Response::Pack { .. } => "response:pack",
            Response::Feed { .. } => "response:feed",
            Response::Ack => "response:ack",
            Response::BlobEndpoint { .. } => "response:blob-endpoint",
            Response::Denied => "response:denied",
            Response::Failed { .. } => "response:failed",
        },
    }
}

struct Peer {
    key: SecretKey,
    access: Access,
    /// `access.roles(0)` and `access.heads()`, refreshed whenever a
    /// statement is added: they are asked for on every request served and
    /// every session, and evaluating them walks every statement.
    roles: Roles,
    access_heads: Vec<StatementId>,
    /// The commits this peer holds (numbers in the [`Dag`]); always closed
    /// under ancestry, as a Git repository is.
    holds: Bits,
    head: u32,
    feeds: BTreeMap<PeerKey, u64>,
    session: Option<(usize, Session, u64)>,
    /// The signed refs last served, with the head they name: ed25519
    /// signatures are deterministic and refs carry no clock here, so signing
    /// the same head again would give the same bytes.
    signed_refs: Option<(u32, SignedRefs)>,
    /// Each peer's head as last merged from it: the node keeps these under
    /// `refs/tandem/peers/`, and a session offers them as `have`.
    known: HashMap<PeerKey, u32>,
    /// Junk this (hostile) peer adds to every access answer.
    flood: Vec<SignedStatement>,
}

struct View<'a> {
    peer: &'a Peer,
    dag: &'a Dag,
    verdicts: &'a RefCell<Verdicts>,
}

impl LocalView for View<'_> {
    fn access(&self) -> &Access {
        &self.peer.access
    }
    fn now_ms(&self) -> i64 {
        0
    }
    fn verify(&self, statement: SignedStatement, project: &ProjectId) -> Option<Verified> {
        self.verdicts.borrow_mut().check(&statement, project)
    }
    fn access_heads(&self) -> Vec<StatementId> {
        self.peer.access_heads.clone()
    }
    fn has_commit(&self, oid: &str) -> bool {
        self.dag
            .lookup(oid)
            .is_some_and(|c| self.peer.holds.contains(c))
    }
    fn head(&self) -> Option<String> {
        Some(self.dag.ids[self.peer.head as usize].clone())
    }
    fn roles(&self) -> Roles {
        self.peer.roles.clone()
    }
    fn role_of(&self, peer: &PeerKey) -> Option<Role> {
        self.peer.roles.role_of(peer)
    }
    fn haves_for(&self, peer: &PeerKey) -> Vec<String> {
        // As the node does: the peer's last head, then commits along the
        // first-parent line at distances 1, 2, 4, 8, ….
        let mut haves: Vec<String> = self
            .peer
            .known
            .get(peer)
            .map(|&c| self.dag.ids[c as usize].clone())
            .into_iter()
            .collect();
        let (mut at, mut step, mut next) = (self.peer.head, 0u64, 1u64);
        while haves.len() < 17 {
            let Some(parent) = self.dag.first_parent[at as usize] else {
                break;
            };
            at = parent;
            step += 1;
            if step == next {
                haves.push(self.dag.ids[at as usize].clone());
                next *= 2;
            }
        }
        haves
    }
    fn feed_heads(&self) -> Vec<WriterHeads> {
        self.peer
            .feeds
            .iter()
            .map(|(writer, n)| WriterHeads {
                writer: *writer,
                heads: vec![n.to_string()],
            })
            .collect()
    }
}

/// A set of commit numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn contains(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn insert(&mut self, i: u32) {
        let word = i as usize / 64;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (i % 64);
    }

    fn union_with(&mut self, other: &Bits) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    fn intersect_with(&mut self, other: &Bits) {
        self.0.truncate(other.0.len());
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }

    fn subtract(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= !b;
        }
    }

    fn is_subset_of(&self, other: &Bits) -> bool {
        self.0
            .iter()
            .enumerate()
            .all(|(i, w)| w & !other.0.get(i).copied().unwrap_or(0) == 0)
    }

    fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            (0..64u32)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| i as u32 * 64 + b)
        })
    }

    /// The words without trailing zeros: equal sets give equal slices.
    fn canonical(&self) -> &[u64] {
        let end = self.0.iter().rposition(|w| *w != 0).map_or(0, |i| i + 1);
        &self.0[..end]
    }
}

/// Every commit made in a run, stored once.
///
/// A commit id names content, so a commit is the same object wherever it is
/// held: its parents, author and ancestry belong to the id and are worked
/// out once, when it is first made, instead of by walking string-keyed maps
/// in every peer on every merge. Peers record only which commits they hold.
/// Merges are named by their work, so peers that merge the same work make
/// the same commit; its parents are those of whoever made it first, and a
/// later maker takes that commit and its (same-work) history, as Git would
/// fast-forward to it.
#[derive(Default)]
struct Dag {
    ids: Vec<String>,
    index: HashMap<String, u32>,
    authors: Vec<PeerKey>,
    /// Each commit's strict ancestors (all numbered lower).
    ancestors: Vec<Bits>,
    /// Each commit's first parent, for landmarks offered as `have`.
    first_parent: Vec<Option<u32>>,
    /// The non-merge commits: the work a merge is named by.
    work: Bits,
    /// Each commit as a pack lists it: the JSON of `(id, parents, author)`,
    /// made once; a pack is counted as the JSON list of these.
    packed: Vec<Vec<u8>>,
}

impl Dag {
    fn lookup(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// Adds a commit, or returns the number of the one with that id.
    fn add(&mut self, id: String, parents: Vec<u32>, author: PeerKey) -> u32 {
        if let Some(c) = self.lookup(&id) {
            return c;
        }
        let c = self.ids.len() as u32;
        let mut ancestors = Bits::default();
        for &p in &parents {
            ancestors.union_with(&self.ancestors[p as usize]);
            ancestors.insert(p);
        }
        let parent_ids: Vec<&str> = parents
            .iter()
            .map(|&p| self.ids[p as usize].as_str())
            .collect();
        // Serialising strings and a key to a Vec cannot fail.
        let packed = serde_json::to_vec(&(&id, parent_ids, author)).unwrap_or_default();
        if parents.len() < 2 {
            self.work.insert(c);
        }
        self.index.insert(id.clone(), c);
        self.ids.push(id);
        self.authors.push(author);
        self.ancestors.push(ancestors);
        self.first_parent.push(parents.first().copied());
        self.packed.push(packed);
        c
    }

    /// The commit numbers a pack lists.
    fn unpack(pack: &[u8]) -> impl Iterator<Item = u32> + '_ {
        pack.chunks_exact(4)
            .filter_map(|n| <[u8; 4]>::try_from(n).ok())
            .map(u32::from_le_bytes)
    }

    /// The JSON list of `(id, parents, author)` a pack stands for.
    fn pack_json(&self, pack: &[u8]) -> Vec<u8> {
        let mut json = vec![b'['];
        for c in Self::unpack(pack) {
            if json.len() > 1 {
                json.push(b',');
            }
            json.extend_from_slice(&self.packed[c as usize]);
        }
        json.push(b']');
        json
    }

    fn is_ancestor(&self, a: u32, b: u32) -> bool {
        self.ancestors[b as usize].contains(a)
    }

    /// `c` and its ancestors.
    fn closure(&self, c: u32) -> Bits {
        let mut bits = self.ancestors[c as usize].clone();
        bits.insert(c);
        bits
    }
}

fn oid(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..40].to_owned()
}

/// Verdicts on access statements, shared by all simulated peers.
///
/// Whether a statement verifies is a pure function of its bytes, so every
/// peer reaches the same verdict on the same statement; the simulator checks
/// each distinct statement once (with the real [`Verified::check`]) and hands
/// the result to every peer that receives a byte-identical copy. Each peer
/// still inserts it into its own [`Access`] and evaluates roles itself.
/// Without this, N peers each verifying N grants is N^2 signature checks.
#[derive(Default)]
struct Verdicts(HashMap<[u8; 64], Verified>);

impl Verdicts {
    fn check(&mut self, statement: &SignedStatement, project: &ProjectId) -> Option<Verified> {
        // Keyed by signature, but a hit counts only if the whole statement is
        // identical, so a tampered copy is checked afresh.
        let key = statement.signature.to_bytes();
        if let Some(v) = self.0.get(&key)
            && v.statement == *statement
        {
            return Some(v.clone());
        }
        let verified = Verified::check(statement.clone(), project).ok()?;
        self.0.insert(key, verified.clone());
        Some(verified)
    }
}

impl Peer {
    fn new(key: SecretKey, access: Access, root: u32) -> Self {
        let mut holds = Bits::default();
        holds.insert(root);
        let mut peer = Self {
            key,
            roles: Roles {
                members: BTreeMap::new(),
                public: false,
            },
            access_heads: Vec::new(),
            access,
            holds,
            head: root,
            feeds: BTreeMap::new(),
            session: None,
            signed_refs: None,
            known: HashMap::new(),
            flood: Vec::new(),
        };
        peer.refresh_access();
        peer
    }

    fn refresh_access(&mut self) {
        self.roles = self.access.roles(0);
        self.access_heads = self.access.heads();
    }

    /// Makes a commit on top of the head.
    fn commit(&mut self, dag: &mut Dag, id: String) -> u32 {
        let c = dag.add(id, vec![self.head], self.key.public());
        self.holds.insert(c);
        self.head = c;
        c
    }

    fn merge(&mut self, dag: &mut Dag, theirs: u32) {
        let head = self.head;
        if head == theirs || dag.is_ancestor(theirs, head) {
            return;
        }
        if dag.is_ancestor(head, theirs) {
            self.head = theirs;
            return;
        }
        // A merge is named by the work it contains (the non-merge commits it
        // reaches), so peers that merged the same work hold the same head:
        // a stand-in for the fast-forwards by which Git histories settle.
        let mut content = dag.closure(head);
        content.union_with(&dag.closure(theirs));
        content.intersect_with(&dag.work);
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"merge");
        for word in content.canonical() {
            hasher.update(&word.to_le_bytes());
        }
        let id = hasher.finalize().to_hex()[..40].to_owned();
        if dag.lookup(&id) == Some(head) {
            return;
        }
        let mut parents = vec![head, theirs];
        parents.sort_by(|a, b| dag.ids[*a as usize].cmp(&dag.ids[*b as usize]));
        // Merge commits carry no author's new content; attribute them to the
        // first writer-parent's author so the reader check stays meaningful.
        let author = dag.authors[head as usize];
        let merged = dag.add(id, parents, author);
        self.holds.union_with(&dag.closure(merged));
        self.head = merged;
    }

    /// The pack answering `want` and `have`: the commits reachable from
    /// `want` and not from `have`, as their numbers in the [`Dag`] (four
    /// bytes each, little-endian). It stands for, and is counted as, the
    /// JSON list of their `(id, parents, author)` (see `WireSizes::pack`);
    /// numbers spare encoding and parsing that list, which was the largest
    /// cost of large runs. Unknown haves are ignored, as
    /// `gitsync::build_pack` does in the node; a session's own head is
    /// often a merge this peer never saw, so it also offers the head it last
    /// merged from this peer, which this peer does have.
    fn pack(&self, dag: &Dag, want: &[String], have: &[String]) -> Vec<u8> {
        let mut excluded = Bits::default();
        for h in have {
            if let Some(c) = dag.lookup(h).filter(|c| self.holds.contains(*c)) {
                excluded.union_with(&dag.closure(c));
            }
        }
        let mut pack = Vec::new();
        for w in want {
            let Some(c) = dag.lookup(w).filter(|c| self.holds.contains(*c)) else {
                continue;
            };
            let mut missing = dag.closure(c);
            missing.subtract(&excluded);
            for m in missing.iter() {
                pack.extend_from_slice(&m.to_le_bytes());
            }
        }
        pack
    }

    fn serve(
        &mut self,
        dag: &Dag,
        project: ProjectId,
        requester: &PeerKey,
        request: Request,
    ) -> Response {
        let roles = &self.roles;
        if matches!(request, Request::Announce { .. }) {
            return Response::Ack;
        }
        if matches!(request, Request::Projects) || !roles.can_read(requester) {
            return Response::Denied;
        }
        match request {
            Request::Projects | Request::Announce { .. } | Request::BlobEndpoint => {
                Response::Denied
            }
            Request::Access { have, .. } => {
                let mut statements = self.access.statements_beyond(&have);
                statements.extend(self.flood.iter().cloned());
                Response::Access { statements }
            }
            Request::Refs { .. } => {
                if let Some((head, refs)) = &self.signed_refs
                    && *head == self.head
                {
                    return Response::Refs { refs: refs.clone() };
                }
                let refs = Refs {
                    project,
                    peer: self.key.public(),
                    heads: vec![(BRANCH.into(), dag.ids[self.head as usize].clone())],
                    time_ms: 0,
                };
                match Signed::sign(refs, &self.key) {
                    Ok(refs) => {
                        self.signed_refs = Some((self.head, refs.clone()));
                        Response::Refs { refs }
                    }
                    Err(e) => Response::Failed {
                        message: e.to_string(),
                    },
                }
            }
            Request::Pack { want, have, .. } => Response::Pack {
                pack: self.pack(dag, &want, &have),
            },
            Request::Feed { have, .. } => {
                // What the requester holds, by writer (first listing wins), so
                // answering is linear in the number of writers.
                let mut theirs_by_writer: HashMap<PeerKey, u64> =
                    HashMap::with_capacity(have.len());
                for h in &have {
                    if let Some(n) = h.heads.first().and_then(|n| n.parse::<u64>().ok()) {
                        theirs_by_writer.entry(h.writer).or_insert(n);
                    }
                }
                let bundles = self
                    .feeds
                    .iter()
                    .filter(|(writer, _)| roles.can_write(writer))
                    .filter_map(|(writer, n)| {
                        let theirs = theirs_by_writer.get(writer).copied().unwrap_or(0);
                        (theirs < *n).then(|| FeedBundle {
                            // Heads in the model are counts; writers sign them
                            // in the real system, here the bundle is trusted
                            // once the session has checked the writer's role.
                            heads: Signed {
                                payload: FeedHeads {
                                    project,
                                    writer: *writer,
                                    heads: vec![n.to_string()],
                                },
                                signature: tandem_protocol::Signature::from_bytes([0; 64]),
                            },
                            bundle: n.to_le_bytes().to_vec(),
                        })
                    })
                    .collect();
                Response::Feed { bundles }
            }
        }
    }

    fn apply(&mut self, effect: &Effect, dag: &mut Dag) {
        match effect {
            Effect::ApplyAccess(statements) => {
                // The session already checked them and kept only what counts.
                let mut added = false;
                for v in statements {
                    if self.access.contains(&v.id) {
                        continue;
                    }
                    added |= matches!(self.access.insert(v.clone()), Inserted::Added { .. });
                }
                if added {
                    self.refresh_access();
                }
            }
            Effect::ApplyPack(pack) => {
                let received: Vec<u32> = Dag::unpack(pack)
                    .filter(|&c| (c as usize) < dag.ids.len())
                    .collect();
                for &c in &received {
                    self.holds.insert(c);
                }
                debug_assert!(
                    received
                        .iter()
                        .all(|&c| dag.ancestors[c as usize].is_subset_of(&self.holds)),
                    "a pack left history incomplete"
                );
            }
            Effect::Merge { refs, head } => {
                if let Some(c) = dag.lookup(head).filter(|c| self.holds.contains(*c)) {
                    self.known.insert(refs.payload.peer, c);
                    self.merge(dag, c);
                }
            }
            Effect::ApplyFeed(bundles) => {
                for b in bundles {
                    let n = b
                        .bundle
                        .get(..8)
                        .and_then(|s| <[u8; 8]>::try_from(s).ok())
                        .map(u64::from_le_bytes)
                        .unwrap_or(0);
                    let mine = self.feeds.entry(b.heads.payload.writer).or_default();
                    *mine = (*mine).max(n);
                }
            }
            Effect::Send(_) | Effect::Finished(_) => {}
        }
    }
}

/// A message in flight.
#[derive(Clone)]
enum Payload {
    Request(Request),
    Response(Response),
}

#[derive(Clone)]
struct Envelope {
    from: usize,
    to: usize,
    session_id: u64,
    payload: Payload,
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
struct WireSizes {
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
struct Net {
    sizes: WireSizes,
    check_wire_sizes: bool,
    rng: Rng,
    loss_percent: u64,
    duplicate_percent: u64,
    max_latency_ms: u64,
    queue: BinaryHeap<Reverse<(u64, usize)>>,
    in_flight: HashMap<usize, Envelope>,
    next_id: usize,
    messages: u64,
    bytes: u64,
    bytes_by_kind: BTreeMap<&'static str, u64>,
}

impl Net {
    /// Counts the message, then loses, delays or duplicates it; `cut`
    /// messages cross a partition and never arrive.
    fn send(&mut self, env: Envelope, now: u64, cut: bool, dag: &Dag) {
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
    fn next_due(&mut self, end: u64) -> Option<(u64, Envelope)> {
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

    fn clear(&mut self) {
        self.queue.clear();
        self.in_flight.clear();
    }
}

/// Runs one simulation.
pub fn run(config: &Config) -> Outcome {
    let mut rng = Rng::new(config.seed);
    let keys: Vec<SecretKey> = (0..config.peers)
        .map(|i| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            b[8..16].copy_from_slice(&config.seed.to_le_bytes());
            SecretKey::from_bytes(b)
        })
        .collect();
    let owner = &keys[0];
    let project = Genesis::create(&"sim".parse().expect("name"), owner, 0, [1; 16]).project_id();
    let mut dag = Dag::default();
    let root = dag.add(oid("genesis"), vec![], owner.public());
    let mut owner_access = Access::new(project, owner.public());
    let first_reader = config.peers - config.readers;
    for (i, key) in keys.iter().enumerate().skip(1) {
        let role = if i >= first_reader {
            Role::Reader
        } else {
            Role::Writer
        };
        let s = Statement::create(
            project,
            key.public(),
            Action::Grant { role },
            owner,
            owner_access.heads(),
            i as i64,
            None,
        )
        .expect("grant");
        owner_access.insert(Verified::check(s, &project).expect("valid"));
    }
    let mut peers: Vec<Peer> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let access = if i == 0 {
                let mut a = Access::new(project, owner.public());
                for s in owner_access.signed_statements() {
                    a.insert(Verified::check(s, &project).expect("valid"));
                }
                a
            } else {
                Access::new(project, owner.public())
            };
            Peer::new(key.clone(), access, root)
        })
        .collect();

    let mut junk = Vec::new();
    for n in 0..config.flooding_readers.min(config.readers) {
        let flood: Vec<SignedStatement> = (0..70u64)
            .map(|k| {
                let mut b = [0xee; 32];
                b[..8].copy_from_slice(&(n as u64 * 1_000 + k).to_le_bytes());
                b[8..16].copy_from_slice(&config.seed.to_le_bytes());
                let throwaway = SecretKey::from_bytes(b);
                Statement::create(
                    project,
                    throwaway.public(),
                    Action::Grant { role: Role::Admin },
                    &throwaway,
                    vec![],
                    k as i64,
                    None,
                )
                .expect("junk statement")
            })
            .collect();
        junk.extend(flood.iter().map(StatementId::of));
        peers[first_reader + n].flood = flood;
    }

    let mut net = Net {
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
    };
    let verdicts = RefCell::new(Verdicts::default());
    let index_of: HashMap<PeerKey, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.public(), i))
        .collect();
    let mut next_session = 0u64;
    let mut now = 0u64;
    let mut partition: Option<(BTreeSet<usize>, u64)> = None;
    let round_ms = config.max_latency_ms * 10;
    let mut quiet_rounds = 0;
    let mut round = 0u64;
    let mut reader_commits: Vec<(usize, u32)> = Vec::new();

    loop {
        round += 1;
        let busy = round <= config.busy_rounds;
        // Partitions come and go while busy, and heal after.
        if busy && partition.is_none() && rng.chance(30) {
            let side: BTreeSet<usize> = (0..config.peers).filter(|_| rng.chance(50)).collect();
            partition = Some((side, round + 1 + rng.below(4)));
        }
        if partition
            .as_ref()
            .is_some_and(|(_, until)| round >= *until || !busy)
        {
            partition = None;
        }
        // Local work while busy: writers commit and write entries; readers
        // commit too, which nobody must ever take.
        if busy {
            for i in 0..config.peers {
                if rng.chance(20) {
                    let id = oid(&format!("{}-{}-{}", config.seed, i, round));
                    let c = peers[i].commit(&mut dag, id);
                    if i >= first_reader {
                        reader_commits.push((i, c));
                    } else {
                        let author = peers[i].key.public();
                        *peers[i].feeds.entry(author).or_default() += 1;
                    }
                }
            }
        }
        // Every idle peer starts a session with a random other peer among
        // those that hold a role in its view, as the node does (it names a
        // project only to its members).
        for i in 0..config.peers {
            if peers[i].session.is_some() {
                continue;
            }
            let members: Vec<usize> = peers[i]
                .roles
                .members
                .keys()
                .filter_map(|k| index_of.get(k).copied())
                .filter(|&j| j != i)
                .collect();
            if members.is_empty() {
                continue;
            }
            let j = members[rng.below(members.len() as u64) as usize];
            let (session, effects) = Session::start(
                project,
                keys[j].public(),
                &View {
                    peer: &peers[i],
                    dag: &dag,
                    verdicts: &verdicts,
                },
            );
            next_session += 1;
            if session.is_done() {
                continue;
            }
            peers[i].session = Some((j, session, next_session));
            for e in effects {
                if let Effect::Send(request) = e {
                    let cut = partition
                        .as_ref()
                        .is_some_and(|(side, _)| side.contains(&i) != side.contains(&j));
                    net.send(
                        Envelope {
                            from: i,
                            to: j,
                            session_id: next_session,
                            payload: Payload::Request(request),
                        },
                        now,
                        cut,
                        &dag,
                    );
                }
            }
        }
        // Deliver everything due within this round; sessions still waiting at
        // its end have timed out.
        let end = now + round_ms;
        while let Some((at, env)) = net.next_due(end) {
            now = at;
            let cut = partition
                .as_ref()
                .is_some_and(|(side, _)| side.contains(&env.from) != side.contains(&env.to));
            match env.payload {
                Payload::Request(request) => {
                    let requester = keys[env.from].public();
                    let response = peers[env.to].serve(&dag, project, &requester, request);
                    net.send(
                        Envelope {
                            from: env.to,
                            to: env.from,
                            session_id: env.session_id,
                            payload: Payload::Response(response),
                        },
                        now,
                        cut,
                        &dag,
                    );
                }
                Payload::Response(response) => {
                    let peer = &mut peers[env.to];
                    let Some((other, mut session, sid)) = peer.session.take() else {
                        continue;
                    };
                    if sid != env.session_id || other != env.from {
                        peer.session = Some((other, session, sid));
                        continue;
                    }
                    let effects = session.on_response(
                        response,
                        &View {
                            peer,
                            dag: &dag,
                            verdicts: &verdicts,
                        },
                    );
                    let mut next_request = None;
                    for e in effects {
                        match e {
                            Effect::Send(r) => next_request = Some(r),
                            Effect::Finished(_) => {}
                            other => peer.apply(&other, &mut dag),
                        }
                    }
                    if let Some(request) = next_request {
                        peer.session = Some((other, session, sid));
                        net.send(
                            Envelope {
                                from: env.to,
                                to: other,
                                session_id: sid,
                                payload: Payload::Request(request),
                            },
                            now,
                            cut,
                            &dag,
                        );
                    }
                }
            }
        }
        now = end;
        for peer in &mut peers {
            if let Some((_, mut session, _)) = peer.session.take() {
                let _ = session.on_failure("timed out".into());
            }
        }
        net.clear();
        if busy {
            continue;
        }
        quiet_rounds += 1;
        if converged(&peers, first_reader) || quiet_rounds >= config.max_quiet_rounds {
            break;
        }
    }

    let mut violations = Vec::new();
    for (i, peer) in peers.iter().enumerate() {
        if let Some(id) = junk.iter().find(|id| peer.access.contains(id)) {
            violations.push(format!("peer {i} kept the junk statement {id}"));
        }
    }
    for (author, commit) in &reader_commits {
        for (i, peer) in peers.iter().enumerate() {
            if i != *author && peer.holds.contains(*commit) {
                let commit = &dag.ids[*commit as usize];
                violations.push(format!("peer {i} took reader {author}'s commit {commit}"));
            }
        }
    }
    Outcome {
        converged: converged(&peers, first_reader),
        rounds: quiet_rounds,
        messages: net.messages,
        bytes: net.bytes,
        bytes_by_kind: net.bytes_by_kind,
        commits: peers[0].holds.len(),
        violations,
    }
}

/// Every writer (and the owner) holds the same head and feeds, and every
/// peer evaluates the same roles.
fn converged(peers: &[Peer], first_reader: usize) -> bool {
    let writers = &peers[..first_reader];
    let head = &writers[0].head;
    let feeds = &writers[0].feeds;
    let roles = &peers[0].roles;
    debug_assert!(
        peers.iter().all(|p| p.roles == p.access.roles(0)),
        "cached roles are stale"
    );
    writers.iter().all(|p| &p.head == head && &p.feeds == feeds)
        && peers.iter().all(|p| p.roles == *roles)
        && peers[first_reader..].iter().all(|p| p.feeds == *feeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_replay_exactly() {
        let a = run(&Config::new(6, 42));
        let b = run(&Config::new(6, 42));
        assert_eq!(a, b);
    }

    #[test]
    fn counted_wire_sizes_are_the_encoded_sizes() {
        for (peers, seed) in [(10, 0), (10, 1), (10, 2), (40, 3)] {
            let config = Config {
                check_wire_sizes: true,
                ..Config::new(peers, seed)
            };
            let checked = run(&config);
            assert!(checked.converged, "{checked:?}");
            assert_eq!(checked, run(&Config::new(peers, seed)));
        }
    }

    #[test]
    fn a_flooding_reader_changes_nothing() {
        for seed in 0..20 {
            let outcome = run(&Config {
                flooding_readers: 1,
                ..Config::new(10, seed)
            });
            assert!(outcome.converged, "seed {seed}: {outcome:?}");
            assert!(outcome.violations.is_empty(), "seed {seed}: {outcome:?}");
        }
    }

    #[test]
    fn ten_peers_converge_for_200_seeds_and_readers_never_write() {
        for seed in 0..200 {
            let outcome = run(&Config::new(10, seed));
            assert!(
                outcome.converged,
                "seed {seed} did not converge: {outcome:?}"
            );
            assert!(
                outcome.violations.is_empty(),
                "seed {seed}: {:?}",
                outcome.violations
            );
            assert!(outcome.commits > 1, "seed {seed}: nothing happened");
        }
    }
}
