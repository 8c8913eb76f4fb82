//! A deterministic simulator of many Tandem peers running the real sync
//! state machine ([`tandem_protocol::sync::Session`]) and the real access
//! evaluation over a simulated network with seeded latency, loss,
//! reordering, duplication and partitions that heal.
//!
//! What is modelled: each peer's Git history as a commit DAG (a merge is
//! named by the work it contains, so merges of the same work are the same
//! commit: a stand-in for the fast-forwards by which Git histories settle), each writer's activity feed as a count of entries (a
//! bundle carries the missing range), and access statements as the real
//! signed statements. What is checked: every member converges to the same
//! head, the same feeds and the same roles, and no peer ever holds a commit
//! made by a reader other than that reader.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use tandem_protocol::access::{
    Access, Action, Inserted, Role, Roles, SignedStatement, Statement, StatementId, Verified,
};
use tandem_protocol::activity::FeedHeads;
use tandem_protocol::project::Genesis;
use tandem_protocol::signed::Signed;
use tandem_protocol::sync::{BRANCH, Effect, LocalView, Session};
use tandem_protocol::wire::{FeedBundle, Refs, Request, Response, WriterHeads};
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
    pub commits: usize,
    pub violations: Vec<String>,
}

struct Peer {
    key: SecretKey,
    access: Access,
    /// `access.roles(0)` and `access.heads()`, refreshed whenever a
    /// statement is added: they are asked for on every request served and
    /// every session, and evaluating them walks every statement.
    roles: Roles,
    access_heads: Vec<StatementId>,
    /// commit -> (parents, author)
    commits: BTreeMap<String, (Vec<String>, PeerKey)>,
    head: String,
    feeds: BTreeMap<PeerKey, u64>,
    session: Option<(usize, Session, u64)>,
}

struct View<'a>(&'a Peer);

impl LocalView for View<'_> {
    fn access_heads(&self) -> Vec<StatementId> {
        self.0.access_heads.clone()
    }
    fn has_commit(&self, oid: &str) -> bool {
        self.0.commits.contains_key(oid)
    }
    fn head(&self) -> Option<String> {
        Some(self.0.head.clone())
    }
    fn roles(&self) -> Roles {
        self.0.roles.clone()
    }
    fn feed_heads(&self) -> Vec<WriterHeads> {
        self.0
            .feeds
            .iter()
            .map(|(writer, n)| WriterHeads {
                writer: *writer,
                heads: vec![n.to_string()],
            })
            .collect()
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
    fn new(
        key: SecretKey,
        access: Access,
        commits: BTreeMap<String, (Vec<String>, PeerKey)>,
        head: String,
    ) -> Self {
        let mut peer = Self {
            key,
            roles: Roles {
                members: BTreeMap::new(),
                public: false,
            },
            access_heads: Vec::new(),
            access,
            commits,
            head,
            feeds: BTreeMap::new(),
            session: None,
        };
        peer.refresh_access();
        peer
    }

    fn refresh_access(&mut self) {
        self.roles = self.access.roles(0);
        self.access_heads = self.access.heads();
    }

    fn is_ancestor(&self, a: &str, b: &str) -> bool {
        let mut stack = vec![b.to_owned()];
        let mut seen = BTreeSet::new();
        while let Some(c) = stack.pop() {
            if c == a {
                return true;
            }
            if seen.insert(c.clone())
                && let Some((parents, _)) = self.commits.get(&c)
            {
                stack.extend(parents.iter().cloned());
            }
        }
        false
    }

    fn merge(&mut self, theirs: &str) {
        if self.head == theirs || self.is_ancestor(theirs, &self.head) {
            return;
        }
        if self.is_ancestor(&self.head, theirs) {
            self.head = theirs.to_owned();
            return;
        }
        // A merge is named by the work it contains (the non-merge commits it
        // reaches), so peers that merged the same work hold the same head:
        // a stand-in for the fast-forwards by which Git histories settle.
        let mut content = self.work_reachable(&self.head);
        content.extend(self.work_reachable(theirs));
        let mut parents = vec![self.head.clone(), theirs.to_owned()];
        parents.sort();
        let id = oid(&format!(
            "merge {}",
            content.into_iter().collect::<Vec<_>>().join(" ")
        ));
        if id == self.head {
            return;
        }
        // Merge commits carry no author's new content; attribute them to the
        // first writer-parent's author so the reader check stays meaningful.
        let author = self
            .commits
            .get(&self.head)
            .map(|c| c.1)
            .unwrap_or(self.key.public());
        self.commits.entry(id.clone()).or_insert((parents, author));
        self.head = id;
    }

    /// The non-merge commits reachable from `from`.
    fn work_reachable(&self, from: &str) -> BTreeSet<String> {
        let mut work = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        let mut seen = BTreeSet::new();
        while let Some(c) = stack.pop() {
            if !seen.insert(c.clone()) {
                continue;
            }
            if let Some((parents, _)) = self.commits.get(&c) {
                if parents.len() < 2 {
                    work.insert(c.clone());
                }
                stack.extend(parents.iter().cloned());
            }
        }
        work
    }

    fn missing_for(&self, want: &str, have: &[String]) -> Vec<(String, Vec<String>, PeerKey)> {
        let mut excluded = BTreeSet::new();
        let mut stack: Vec<String> = have
            .iter()
            .filter(|h| self.commits.contains_key(*h))
            .cloned()
            .collect();
        while let Some(c) = stack.pop() {
            if excluded.insert(c.clone())
                && let Some((parents, _)) = self.commits.get(&c)
            {
                stack.extend(parents.iter().cloned());
            }
        }
        let mut out = Vec::new();
        let mut stack = vec![want.to_owned()];
        let mut seen = BTreeSet::new();
        while let Some(c) = stack.pop() {
            if excluded.contains(&c) || !seen.insert(c.clone()) {
                continue;
            }
            if let Some((parents, author)) = self.commits.get(&c) {
                out.push((c.clone(), parents.clone(), *author));
                stack.extend(parents.iter().cloned());
            }
        }
        out
    }

    fn serve(&self, project: ProjectId, requester: &PeerKey, request: Request) -> Response {
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
            Request::Access { have, .. } => Response::Access {
                statements: self.access.statements_beyond(&have),
            },
            Request::Refs { .. } => {
                let refs = Refs {
                    project,
                    peer: self.key.public(),
                    heads: vec![(BRANCH.into(), self.head.clone())],
                    time_ms: 0,
                };
                match Signed::sign(refs, &self.key) {
                    Ok(refs) => Response::Refs { refs },
                    Err(e) => Response::Failed {
                        message: e.to_string(),
                    },
                }
            }
            Request::Pack { want, have, .. } => {
                let commits: Vec<_> = want
                    .iter()
                    .flat_map(|w| self.missing_for(w, &have))
                    .collect();
                Response::Pack {
                    pack: serde_json::to_vec(&commits).unwrap_or_default(),
                }
            }
            Request::Feed { have, .. } => {
                // What the requester holds, by writer (first listing wins), so
                // answering is linear in the number of writers.
                let mut theirs_by_writer: HashMap<PeerKey, u64> = HashMap::new();
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

    fn apply(&mut self, effect: &Effect, project: &ProjectId, verdicts: &mut Verdicts) {
        match effect {
            Effect::ApplyAccess(statements) => {
                let mut added = false;
                for s in statements {
                    let Some(v) = verdicts.check(s, project) else {
                        continue;
                    };
                    if self.access.contains(&v.id) {
                        continue;
                    }
                    added |= matches!(self.access.insert(v), Inserted::Added { .. });
                }
                if added {
                    self.refresh_access();
                }
            }
            Effect::ApplyPack(pack) => {
                let commits: Vec<(String, Vec<String>, PeerKey)> =
                    serde_json::from_slice(pack).unwrap_or_default();
                for (id, parents, author) in commits {
                    self.commits.entry(id).or_insert((parents, author));
                }
            }
            Effect::Merge { head, .. } => {
                if self.commits.contains_key(head) {
                    self.merge(head);
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

/// The simulated network: delivery times, loss, duplication, counters.
struct Net {
    rng: Rng,
    loss_percent: u64,
    duplicate_percent: u64,
    max_latency_ms: u64,
    queue: BinaryHeap<Reverse<(u64, usize)>>,
    in_flight: HashMap<usize, Envelope>,
    next_id: usize,
    messages: u64,
    bytes: u64,
}

impl Net {
    /// Counts the message, then loses, delays or duplicates it; `cut`
    /// messages cross a partition and never arrive.
    fn send(&mut self, env: Envelope, now: u64, cut: bool) {
        let size = match &env.payload {
            Payload::Request(r) => serde_json::to_vec(r).map(|v| v.len()).unwrap_or(0),
            Payload::Response(r) => serde_json::to_vec(r).map(|v| v.len()).unwrap_or(0),
        };
        self.messages += 1;
        self.bytes += size as u64;
        if cut || self.rng.chance(self.loss_percent) {
            return;
        }
        let copies = if self.rng.chance(self.duplicate_percent) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = now + 1 + self.rng.below(self.max_latency_ms);
            let id = self.next_id;
            self.next_id += 1;
            self.in_flight.insert(id, env.clone());
            self.queue.push(Reverse((at, id)));
        }
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
    let root = oid("genesis");
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
            let mut commits = BTreeMap::new();
            commits.insert(root.clone(), (vec![], owner.public()));
            let access = if i == 0 {
                let mut a = Access::new(project, owner.public());
                for s in owner_access.signed_statements() {
                    a.insert(Verified::check(s, &project).expect("valid"));
                }
                a
            } else {
                Access::new(project, owner.public())
            };
            Peer::new(key.clone(), access, commits, root.clone())
        })
        .collect();

    let mut net = Net {
        rng: Rng::new(config.seed ^ 0x5eed),
        loss_percent: config.loss_percent,
        duplicate_percent: config.duplicate_percent,
        max_latency_ms: config.max_latency_ms,
        queue: BinaryHeap::new(),
        in_flight: HashMap::new(),
        next_id: 0,
        messages: 0,
        bytes: 0,
    };
    let mut verdicts = Verdicts::default();
    let mut next_session = 0u64;
    let mut now = 0u64;
    let mut partition: Option<(BTreeSet<usize>, u64)> = None;
    let round_ms = config.max_latency_ms * 10;
    let mut quiet_rounds = 0;
    let mut round = 0u64;
    let mut reader_commits: Vec<(usize, String)> = Vec::new();

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
                    let parent = peers[i].head.clone();
                    let id = oid(&format!("{}-{}-{}", config.seed, i, round));
                    let author = peers[i].key.public();
                    peers[i].commits.insert(id.clone(), (vec![parent], author));
                    peers[i].head = id.clone();
                    if i >= first_reader {
                        reader_commits.push((i, id));
                    } else {
                        *peers[i].feeds.entry(author).or_default() += 1;
                    }
                }
            }
        }
        // Every idle peer starts a session with a random other peer.
        for i in 0..config.peers {
            if peers[i].session.is_some() {
                continue;
            }
            let mut j = rng.below(config.peers as u64) as usize;
            if j == i {
                j = (j + 1) % config.peers;
            }
            let (session, effects) = Session::start(project, keys[j].public(), &View(&peers[i]));
            next_session += 1;
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
                    let response = peers[env.to].serve(project, &requester, request);
                    net.send(
                        Envelope {
                            from: env.to,
                            to: env.from,
                            session_id: env.session_id,
                            payload: Payload::Response(response),
                        },
                        now,
                        cut,
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
                    let effects = session.on_response(response, &View(peer));
                    let mut next_request = None;
                    for e in &effects {
                        match e {
                            Effect::Send(r) => next_request = Some(r.clone()),
                            Effect::Finished(_) => {}
                            other => peer.apply(other, &project, &mut verdicts),
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
    for (author, commit) in &reader_commits {
        for (i, peer) in peers.iter().enumerate() {
            if i != *author && peer.commits.contains_key(commit) {
                violations.push(format!("peer {i} took reader {author}'s commit {commit}"));
            }
        }
    }
    Outcome {
        converged: converged(&peers, first_reader),
        rounds: quiet_rounds,
        messages: net.messages,
        bytes: net.bytes,
        commits: peers[0].commits.len(),
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
