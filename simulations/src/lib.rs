//! A deterministic simulator of many Tandem peers running the real sync
//! code over a simulated network with seeded latency, loss, reordering,
//! duplication and partitions that heal: the asking side
//! ([`tandem_protocol::sync::Session`]), the serving side the node runs
//! ([`tandem_protocol::sync::serve()`], with its access gate and writer
//! filter), the clone driver ([`tandem_protocol::sync::CloneSession`]) and
//! the real access evaluation.
//!
//! - [`dag`]: every commit of a run, stored once;
//! - [`peer`]: one peer's copy, the serving view over it, and the
//!   sessions and clones it drives;
//! - [`net`]: messages in flight and their sizes on the wire.
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
//! keep any of it. Optionally some members join by cloning
//! (`Config::cloning_peers`): they ask every peer what it offers, clone from
//! the owner (or the first to offer), and must converge like the rest.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use tandem_protocol::access::{
    Access, Action, Role, SignedStatement, Statement, StatementId, Verified,
};
use tandem_protocol::project::Genesis;
use tandem_protocol::wire::Response;
use tandem_protocol::{PeerKey, SecretKey};

mod dag;
mod net;
mod peer;

use dag::{Dag, oid};
use net::{Envelope, Net, Payload};
use peer::{Outgoing, Peer, Verdicts};

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
    /// Members (the first writers after the owner, then readers) that hold
    /// no copy at the start and join by cloning it from a peer that offers
    /// it, as `tandem project clone` does.
    pub cloning_peers: usize,
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
            cloning_peers: 0,
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
            } else if i <= config.cloning_peers {
                return Peer::without_copy(key.clone(), project, owner.public());
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

    let mut net = Net::new(config);
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
                // (A peer without a copy yet has nothing to commit to.)
                if rng.chance(20) && peers[i].has_copy {
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
        // project only to its members); one without a copy clones first.
        for i in 0..config.peers {
            if peers[i].driver.is_some() {
                continue;
            }
            let outgoing = if peers[i].has_copy {
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
                next_session += 1;
                peers[i]
                    .start_session((j, keys[j].public()), next_session, &dag, &verdicts)
                    .into_iter()
                    .collect()
            } else {
                next_session += 1;
                let others: Vec<(usize, PeerKey)> = (0..config.peers)
                    .filter(|&j| j != i)
                    .map(|j| (j, keys[j].public()))
                    .collect();
                peers[i].start_clone(&others, next_session)
            };
            for out in outgoing {
                send_request(&mut net, &dag, &partition, i, out, now);
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
                    let response = peers[env.to].answer(&dag, &requester, request);
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
                    // A clone's history carries the access statements its
                    // source committed (see `Peer::install`).
                    let history_access = if matches!(response, Response::Pack { .. })
                        && peers[env.to].awaits_history(env.from, env.session_id)
                    {
                        peers[env.from].access.signed_statements()
                    } else {
                        Vec::new()
                    };
                    let next = peers[env.to].on_response(
                        (env.from, keys[env.from].public()),
                        env.session_id,
                        response,
                        &mut dag,
                        &verdicts,
                        history_access,
                    );
                    if let Some(out) = next {
                        send_request(&mut net, &dag, &partition, env.to, out, now);
                    }
                }
            }
        }
        now = end;
        for peer in &mut peers {
            peer.time_out();
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

/// Sends a request from peer `from`; it never arrives if it crosses the
/// partition.
fn send_request(
    net: &mut Net,
    dag: &Dag,
    partition: &Option<(BTreeSet<usize>, u64)>,
    from: usize,
    out: Outgoing,
    now: u64,
) {
    let cut = partition
        .as_ref()
        .is_some_and(|(side, _)| side.contains(&from) != side.contains(&out.to));
    net.send(
        Envelope {
            from,
            to: out.to,
            session_id: out.session_id,
            payload: Payload::Request(out.request),
        },
        now,
        cut,
        dag,
    );
}

/// Every peer holds a copy, every writer (and the owner) the same head and
/// feeds, and every peer evaluates the same roles.
fn converged(peers: &[Peer], first_reader: usize) -> bool {
    let writers = &peers[..first_reader];
    let head = &writers[0].head;
    let feeds = &writers[0].feeds;
    let roles = &peers[0].roles;
    debug_assert!(
        peers.iter().all(|p| p.roles == p.access.roles(0)),
        "cached roles are stale"
    );
    peers.iter().all(|p| p.has_copy)
        && writers.iter().all(|p| &p.head == head && &p.feeds == feeds)
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
    fn members_that_join_by_cloning_converge() {
        for seed in 0..30 {
            let outcome = run(&Config {
                cloning_peers: 4,
                check_wire_sizes: seed < 3,
                ..Config::new(10, seed)
            });
            assert!(outcome.converged, "seed {seed}: {outcome:?}");
            assert!(outcome.violations.is_empty(), "seed {seed}: {outcome:?}");
            assert!(
                outcome.bytes_by_kind.contains_key("response:projects"),
                "seed {seed}: nobody was asked for offers: {outcome:?}"
            );
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
