//! Who may do what in a project, decided by signatures alone.
//!
//! Access is a set of signed statements ("grant Bob writer", "revoke Eve")
//! forming a causal DAG: each statement names, as parents, the statements
//! its issuer had seen. Evaluation is a pure function of the *set* of
//! statements (never of arrival order), so every peer that holds the same
//! statements computes the same roles without asking anyone.
//!
//! The rules:
//! - The genesis signer is the owner, always; statements about the owner are
//!   ignored, and only the genesis makes an owner.
//! - A statement counts only if its signature verifies, it names this
//!   project, its parents are all known (until then it waits), and its
//!   issuer held admin or owner in the state formed by its causal past.
//! - When an admin is revoked, the statements they issued that are not in
//!   the causal past of that revoke no longer count. Revokes that are part
//!   of a cycle (two admins revoking each other concurrently) all take
//!   effect: access fails closed, and the owner can re-grant.
//! - For one subject, the statements that count and that no other counting
//!   statement about the subject has in its past decide the role: a revoke
//!   among them beats any concurrent grant; among concurrent grants the
//!   lowest role wins.
//! - Expired grants stop counting at their expiry (judged at the issue time
//!   of a later statement, and at the evaluation time for current roles).
//! - Visibility is private unless a counting statement made it public;
//!   concurrent disagreement resolves to private.
//!
//! What a node keeps (see [`Access::admit`]): a statement whose issuer
//! was not authorised in its causal past changes no role, so it is kept
//! only while it is an ancestor of one that was; otherwise it is dropped,
//! never stored, never served and never named as a parent. Anyone can sign
//! such statements with throw-away keys, so without this a peer could
//! bloat a project's access DAG (and its heads, which the next statement
//! must name) without end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::identity::{PeerKey, SecretKey};
use crate::project::ProjectId;
use crate::signed::{Signable, Signed, SignedError};

/// Most parents one statement may name (bounds work per statement). A
/// node with more heads than this first issues merge statements (see
/// [`Access::issue`]), so the limit never stops a grant or a revoke.
pub const MAX_PARENTS: usize = 64;
/// Most statements taken from one peer's answer; the rest arrive in a
/// later sync (answers list parents first).
pub const MAX_RECEIVED: usize = 10_000;
/// Most statements that do not count (kept only as ancestors of ones that
/// do) one batch from one sender may add.
pub const MAX_UNCOUNTED_PER_SENDER: usize = 64;
/// Most statements that do not count a project keeps in all. Honest nodes
/// never name such statements as parents, so only a misbehaving admin can
/// come near this.
pub const MAX_UNCOUNTED: usize = 256;

/// What a member may do. Ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Writer,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn can_write(self) -> bool {
        self >= Role::Writer
    }

    pub fn can_manage(self) -> bool {
        self >= Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccessError;

    /// Parses a role that can be granted (not `owner`).
    fn from_str(text: &str) -> Result<Self, AccessError> {
        match text {
            "reader" => Ok(Role::Reader),
            "writer" => Ok(Role::Writer),
            "admin" => Ok(Role::Admin),
            "owner" => Err(AccessError::OwnerNotGrantable),
            _ => Err(AccessError::UnknownRole(text.to_owned())),
        }
    }
}

/// What a statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "action")]
pub enum Action {
    Grant {
        role: Role,
    },
    Revoke,
    /// Makes the project readable by anyone (`true`) or members only.
    Visibility {
        public: bool,
    },
}

/// Names a statement: BLAKE3 of the signed statement.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatementId([u8; 32]);

impl StatementId {
    /// The id of a signed statement.
    pub fn of(statement: &SignedStatement) -> Self {
        Self(*statement.hash().as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for StatementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for StatementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatementId({})", &self.to_hex()[..12])
    }
}

impl FromStr for StatementId {
    type Err = AccessError;

    fn from_str(text: &str) -> Result<Self, AccessError> {
        let bytes = hex::decode(text).map_err(|_| AccessError::BadStatementId(text.to_owned()))?;
        Ok(Self(bytes.try_into().map_err(|_| {
            AccessError::BadStatementId(text.to_owned())
        })?))
    }
}

impl Serialize for StatementId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for StatementId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One access statement, before signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub version: u32,
    pub project: ProjectId,
    pub subject: PeerKey,
    #[serde(flatten)]
    pub action: Action,
    pub issuer: PeerKey,
    /// Statements the issuer had seen, sorted and without duplicates.
    pub parents: Vec<StatementId>,
    pub issued_ms: i64,
    #[serde(default)]
    pub expires_ms: Option<i64>,
}

impl Signable for Statement {
    const DOMAIN: &'static str = "tandem/access/v1";

    fn signer(&self) -> &PeerKey {
        &self.issuer
    }
}

pub type SignedStatement = Signed<Statement>;

/// Why a statement or access request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    #[error("unknown role {0:?}: use reader, writer or admin")]
    UnknownRole(String),
    #[error("the owner role cannot be granted: a project has exactly one owner, its founder")]
    OwnerNotGrantable,
    #[error("not a statement id: {0:?}")]
    BadStatementId(String),
    #[error("statement belongs to project {found}, not {expected}")]
    WrongProject {
        expected: ProjectId,
        found: ProjectId,
    },
    #[error("statement names {0} parents; the limit is {MAX_PARENTS}")]
    TooManyParents(usize),
    #[error("statement parents must be sorted and without duplicates")]
    UnsortedParents,
    #[error("statement version {0} is not supported")]
    Version(u32),
    #[error(transparent)]
    Signature(#[from] SignedError),
    #[error("malformed statement: {0}")]
    Malformed(String),
}

impl Statement {
    /// Builds and signs a statement; parents are sorted for the caller.
    pub fn create(
        project: ProjectId,
        subject: PeerKey,
        action: Action,
        issuer: &SecretKey,
        mut parents: Vec<StatementId>,
        issued_ms: i64,
        expires_ms: Option<i64>,
    ) -> Result<SignedStatement, AccessError> {
        parents.sort();
        parents.dedup();
        let statement = Statement {
            version: 1,
            project,
            subject,
            action,
            issuer: issuer.public(),
            parents,
            issued_ms,
            expires_ms,
        };
        statement.check_shape()?;
        Ok(Signed::sign(statement, issuer)?)
    }

    fn check_shape(&self) -> Result<(), AccessError> {
        if self.version != 1 {
            return Err(AccessError::Version(self.version));
        }
        if self.parents.len() > MAX_PARENTS {
            return Err(AccessError::TooManyParents(self.parents.len()));
        }
        if self.parents.windows(2).any(|w| w[0] >= w[1]) {
            return Err(AccessError::UnsortedParents);
        }
        if matches!(self.action, Action::Grant { role: Role::Owner }) {
            return Err(AccessError::OwnerNotGrantable);
        }
        Ok(())
    }
}

/// A statement whose signature, shape and project were checked: the only
/// kind [`Access`] takes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub statement: SignedStatement,
    pub id: StatementId,
}

impl Verified {
    pub fn check(statement: SignedStatement, project: &ProjectId) -> Result<Self, AccessError> {
        if &statement.payload.project != project {
            return Err(AccessError::WrongProject {
                expected: *project,
                found: statement.payload.project,
            });
        }
        statement.payload.check_shape()?;
        statement.verify()?;
        let id = StatementId(*statement.hash().as_bytes());
        Ok(Self { statement, id })
    }

    /// Parses untrusted bytes (a file, a network message) and checks them.
    pub fn decode(bytes: &[u8], project: &ProjectId) -> Result<Self, AccessError> {
        let statement: SignedStatement =
            serde_json::from_slice(bytes).map_err(|e| AccessError::Malformed(e.to_string()))?;
        Self::check(statement, project)
    }
}

/// One member's current standing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub key: PeerKey,
    pub role: Role,
    /// Who made the statement that decided the role (the owner for itself).
    pub granted_by: PeerKey,
    pub since_ms: i64,
    pub expires_ms: Option<i64>,
    pub statement: Option<StatementId>,
}

/// The evaluated access state at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    pub members: BTreeMap<PeerKey, Member>,
    pub public: bool,
}

impl Roles {
    pub fn role_of(&self, key: &PeerKey) -> Option<Role> {
        self.members.get(key).map(|m| m.role)
    }

    /// Whether `key` may learn anything of the project.
    pub fn can_read(&self, key: &PeerKey) -> bool {
        self.public || self.members.contains_key(key)
    }

    pub fn can_write(&self, key: &PeerKey) -> bool {
        self.role_of(key).is_some_and(Role::can_write)
    }
}

/// What happened to a statement handed to [`Access::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Now part of the DAG (and so are `unblocked` waiting statements).
    Added { unblocked: usize },
    /// Waiting for parents that have not arrived.
    Pending,
    /// Already known.
    Duplicate,
}

#[derive(Clone)]
struct Node {
    statement: Statement,
    signature: crate::identity::Signature,
    id: StatementId,
    /// Bit i set: node i is a strict ancestor.
    ancestors: Vec<u64>,
    /// Issuer held admin or owner in this statement's causal past.
    authorized: bool,
}

/// The statements of one project and their incremental evaluation.
///
/// Nodes are numbered in an arrival-dependent topological order, but every
/// answer depends only on ancestry, never on the numbering.
#[derive(Clone)]
pub struct Access {
    project: ProjectId,
    owner: PeerKey,
    nodes: Vec<Node>,
    index: HashMap<StatementId, usize>,
    by_subject: HashMap<PeerKey, Vec<usize>>,
    pending: HashMap<StatementId, Verified>,
    /// Bit i set: node i is authorized or an ancestor of one that is: what
    /// is served and may be stored.
    kept: Vec<u64>,
    /// Bit i set: node i is a strict ancestor of an authorized node, so it
    /// is not a head.
    covered: Vec<u64>,
    /// Kept nodes that are not authorized (ancestors of ones that are).
    uncounted: usize,
}

/// What [`Access::admit`] makes of statements received from one sender.
pub struct Admission {
    /// The statements to keep, parents first: each counts (its issuer held
    /// admin or owner in its causal past) or is an ancestor of one that
    /// does.
    pub kept: Vec<Verified>,
    /// Already held here.
    pub known: usize,
    /// Do not count and no kept statement follows them: dropped.
    pub uncounted: usize,
    /// Name parents that neither this node nor the batch holds: dropped
    /// (the sender offers them again once it can send the parents too).
    pub waiting: usize,
    /// Would count, but need more statements that do not count than the
    /// caps allow ([`MAX_UNCOUNTED_PER_SENDER`], [`MAX_UNCOUNTED`]).
    pub over_cap: usize,
    /// This access state with `kept` added.
    pub after: Access,
}

impl Admission {
    /// How many received statements were dropped.
    pub fn dropped(&self) -> usize {
        self.uncounted + self.waiting + self.over_cap
    }
}

fn has_bit(bits: &[u64], i: usize) -> bool {
    bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn set_bit(bits: &mut Vec<u64>, i: usize) {
    if bits.len() <= i / 64 {
        bits.resize(i / 64 + 1, 0);
    }
    bits[i / 64] |= 1 << (i % 64);
}

fn union(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a |= b;
    }
}

/// A downset of the DAG: everything (the current state) or the strict
/// ancestors of one node (the state a statement was issued in).
#[derive(Clone, Copy)]
enum Scope<'a> {
    All,
    Past(&'a [u64]),
}

impl Scope<'_> {
    fn contains(&self, i: usize) -> bool {
        match self {
            Scope::All => true,
            Scope::Past(bits) => has_bit(bits, i),
        }
    }
}

impl Access {
    pub fn new(project: ProjectId, owner: PeerKey) -> Self {
        Self {
            project,
            owner,
            nodes: Vec::new(),
            index: HashMap::new(),
            by_subject: HashMap::new(),
            pending: HashMap::new(),
            kept: Vec::new(),
            covered: Vec::new(),
            uncounted: 0,
        }
    }

    /// Builds the access state of a project from statements read from
    /// disk, keeping only what [`Access::admit`] keeps (without the
    /// per-sender cap: they are this node's own files).
    pub fn from_verified(
        project: ProjectId,
        owner: PeerKey,
        statements: Vec<Verified>,
    ) -> Admission {
        Self::new(project, owner).admit_capped(statements, MAX_UNCOUNTED)
    }

    pub fn project(&self) -> ProjectId {
        self.project
    }

    pub fn owner(&self) -> PeerKey {
        self.owner
    }

    /// Statements in the DAG (not counting pending ones).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn contains(&self, id: &StatementId) -> bool {
        self.index.contains_key(id) || self.pending.contains_key(id)
    }

    /// The counting statements that no counting statement follows: the
    /// parents of the next statement this peer issues. A statement that
    /// does not count is never a head, so junk cannot grow this list.
    pub fn heads(&self) -> Vec<StatementId> {
        let mut heads: Vec<StatementId> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| n.authorized && !has_bit(&self.covered, *i))
            .map(|(_, n)| n.id)
            .collect();
        heads.sort();
        heads
    }

    /// Kept statements that do not count (ancestors of ones that do).
    pub fn uncounted(&self) -> usize {
        self.uncounted
    }

    /// Every kept statement (see [`Access::admit`]), in a topological order.
    pub fn statements(&self) -> impl Iterator<Item = (&StatementId, &Statement)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| has_bit(&self.kept, *i))
            .map(|(_, n)| (&n.id, &n.statement))
    }

    /// Every kept statement with its signature, in a topological order:
    /// what a peer is sent so it can check them itself.
    pub fn signed_statements(&self) -> Vec<SignedStatement> {
        self.statements_beyond(&[])
    }

    /// The statements that are not `have` nor in their causal past: what a
    /// peer at `have` is missing. Unknown ids are ignored, so a peer that is
    /// ahead still gets everything it might lack.
    pub fn statements_beyond(&self, have: &[StatementId]) -> Vec<SignedStatement> {
        let mut known: Vec<u64> = Vec::new();
        for id in have {
            if let Some(&i) = self.index.get(id) {
                union(&mut known, &self.nodes[i].ancestors);
                set_bit(&mut known, i);
            }
        }
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| has_bit(&self.kept, *i) && !has_bit(&known, *i))
            .map(|(_, n)| Signed {
                payload: n.statement.clone(),
                signature: n.signature,
            })
            .collect()
    }

    /// Adds a verified statement. Statements whose parents are missing wait
    /// and are added once the parents arrive.
    pub fn insert(&mut self, verified: Verified) -> Inserted {
        if self.contains(&verified.id) {
            return Inserted::Duplicate;
        }
        if !self.parents_known(&verified.statement.payload) {
            self.pending.insert(verified.id, verified);
            return Inserted::Pending;
        }
        self.add(verified);
        let mut unblocked = 0;
        loop {
            let ready: Vec<StatementId> = self
                .pending
                .iter()
                .filter(|(_, v)| self.parents_known(&v.statement.payload))
                .map(|(id, _)| *id)
                .collect();
            if ready.is_empty() {
                break;
            }
            let mut ready: Vec<Verified> = ready
                .iter()
                .filter_map(|id| self.pending.remove(id))
                .collect();
            ready.sort_by_key(|v| v.id);
            for verified in ready {
                self.add(verified);
                unblocked += 1;
            }
        }
        Inserted::Added { unblocked }
    }

    /// Judges statements received from one sender (a peer's answer, or
    /// files read from disk) against this state, without changing it.
    ///
    /// The statements are placed in the DAG in an order where parents come
    /// first; those whose parents are missing wait and are dropped. Of the
    /// placed ones, a statement is kept if it counts (its issuer held admin
    /// or owner in its causal past) or is an ancestor of one that does;
    /// the others change no role, so they are dropped: they never become
    /// heads, are never stored and never served. Statements that do not
    /// count but are ancestors of ones that do are capped, per sender
    /// ([`MAX_UNCOUNTED_PER_SENDER`]) and per project ([`MAX_UNCOUNTED`]);
    /// a counting statement that would exceed a cap is dropped with its
    /// descendants. Honest nodes only name counting statements as parents,
    /// so the caps only bind a misbehaving admin.
    pub fn admit(&self, received: Vec<Verified>) -> Admission {
        self.admit_capped(received, MAX_UNCOUNTED_PER_SENDER)
    }

    fn admit_capped(&self, received: Vec<Verified>, per_sender: usize) -> Admission {
        let mut known = 0;
        let mut seen = HashSet::new();
        let mut batch: Vec<Option<Verified>> = Vec::new();
        for verified in received {
            if self.index.contains_key(&verified.id) || !seen.insert(verified.id) {
                known += 1;
                continue;
            }
            batch.push(Some(verified));
        }
        let position: HashMap<StatementId, usize> = batch
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.as_ref().map(|v| (v.id, k)))
            .collect();
        // Kahn's algorithm: a statement is placed once its parents are.
        let mut missing = vec![0usize; batch.len()];
        let mut unplaceable = vec![false; batch.len()];
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); batch.len()];
        for (k, verified) in batch.iter().enumerate() {
            let Some(verified) = verified else { continue };
            for parent in &verified.statement.payload.parents {
                if self.index.contains_key(parent) {
                    continue;
                }
                match position.get(parent) {
                    Some(&q) => {
                        missing[k] += 1;
                        children[q].push(k);
                    }
                    None => unplaceable[k] = true,
                }
            }
        }
        let mut ready: std::collections::VecDeque<usize> = (0..batch.len())
            .filter(|&k| missing[k] == 0 && !unplaceable[k])
            .collect();
        let mut scratch = self.clone();
        let base = scratch.nodes.len();
        while let Some(k) = ready.pop_front() {
            if let Some(verified) = batch[k].take() {
                scratch.add(verified);
            }
            for &c in &children[k] {
                missing[c] -= 1;
                if missing[c] == 0 && !unplaceable[c] {
                    ready.push_back(c);
                }
            }
        }
        let waiting = batch.iter().filter(|v| v.is_some()).count();

        // Keep the counting statements, in topological order, with the
        // ancestors they need, as far as the caps allow.
        let mut keep = self.kept.clone();
        let mut skipped: Vec<u64> = Vec::new();
        let mut added_uncounted = 0;
        for i in base..scratch.nodes.len() {
            let node = &scratch.nodes[i];
            if !node.authorized {
                continue;
            }
            if node.ancestors.iter().zip(&skipped).any(|(a, s)| a & s != 0) {
                set_bit(&mut skipped, i);
                continue;
            }
            let needed: usize = node
                .ancestors
                .iter()
                .enumerate()
                .map(|(w, a)| (a & !keep.get(w).copied().unwrap_or(0)).count_ones() as usize)
                .sum();
            if needed > 0
                && (added_uncounted + needed > per_sender
                    || self.uncounted + added_uncounted + needed > MAX_UNCOUNTED)
            {
                set_bit(&mut skipped, i);
                continue;
            }
            added_uncounted += needed;
            union(&mut keep, &node.ancestors);
            set_bit(&mut keep, i);
        }
        let mut kept = Vec::new();
        let (mut uncounted, mut over_cap) = (0, 0);
        for i in base..scratch.nodes.len() {
            let node = &scratch.nodes[i];
            if has_bit(&keep, i) {
                kept.push(Verified {
                    statement: Signed {
                        payload: node.statement.clone(),
                        signature: node.signature,
                    },
                    id: node.id,
                });
            } else if node.authorized {
                over_cap += 1;
            } else {
                uncounted += 1;
            }
        }
        let after = if kept.len() == scratch.nodes.len() - base {
            scratch
        } else {
            let mut after = self.clone();
            for verified in &kept {
                after.add(verified.clone());
            }
            after
        };
        Admission {
            kept,
            known,
            uncounted,
            waiting,
            over_cap,
            after,
        }
    }

    /// Signs a statement by `issuer` on top of every head, ready to be
    /// stored and inserted in the order returned.
    ///
    /// When there are more heads than one statement may name, merge
    /// statements gather them first, [`MAX_PARENTS`] at a time: each is the
    /// issuer granting itself reader, which evaluation ignores (a self
    /// grant never counts, and statements about the owner are ignored), so
    /// it changes no role on any node, old or new. However many heads
    /// concurrent work left, the owner or an admin can always act.
    pub fn issue(
        &self,
        subject: PeerKey,
        action: Action,
        issuer: &SecretKey,
        issued_ms: i64,
        expires_ms: Option<i64>,
    ) -> Result<Vec<Verified>, AccessError> {
        let mut out = Vec::new();
        let mut heads = self.heads();
        while heads.len() > MAX_PARENTS {
            let mut next = Vec::new();
            for chunk in heads.chunks(MAX_PARENTS) {
                if let [single] = chunk {
                    next.push(*single);
                    continue;
                }
                let merge = Statement::create(
                    self.project,
                    issuer.public(),
                    Action::Grant { role: Role::Reader },
                    issuer,
                    chunk.to_vec(),
                    issued_ms,
                    None,
                )?;
                let merge = Verified::check(merge, &self.project)?;
                next.push(merge.id);
                out.push(merge);
            }
            heads = next;
        }
        let statement = Statement::create(
            self.project,
            subject,
            action,
            issuer,
            heads,
            issued_ms,
            expires_ms,
        )?;
        out.push(Verified::check(statement, &self.project)?);
        Ok(out)
    }

    fn parents_known(&self, statement: &Statement) -> bool {
        statement.parents.iter().all(|p| self.index.contains_key(p))
    }

    fn add(&mut self, verified: Verified) {
        let signature = verified.statement.signature;
        let statement = verified.statement.payload;
        let mut ancestors = Vec::new();
        let mut parents = Vec::with_capacity(statement.parents.len());
        for parent in &statement.parents {
            if let Some(&p) = self.index.get(parent) {
                union(&mut ancestors, &self.nodes[p].ancestors);
                set_bit(&mut ancestors, p);
                parents.push(p);
            }
        }
        let authorized = statement.issuer == self.owner
            || self
                .role_in(
                    &statement.issuer,
                    Scope::Past(&ancestors),
                    statement.issued_ms,
                )
                .is_some_and(|(role, _)| role.can_manage());
        let i = self.nodes.len();
        if authorized {
            self.cover_parents_of(&parents);
            set_bit(&mut self.kept, i);
        }
        self.index.insert(verified.id, i);
        self.by_subject
            .entry(statement.subject)
            .or_default()
            .push(i);
        self.nodes.push(Node {
            statement,
            signature,
            id: verified.id,
            ancestors,
            authorized,
        });
    }

    /// Marks the strict ancestors of a new authorized node as covered and
    /// kept, counting the unauthorized ones newly kept.
    ///
    /// The ancestors of a node are its parents and their ancestors. A parent
    /// that is authorized or already covered has all its ancestors covered
    /// (they are ancestors of an authorized node), so only the parent itself
    /// may be new: the usual case costs a few bit operations instead of a
    /// pass over the whole DAG's bitset.
    fn cover_parents_of(&mut self, parents: &[usize]) {
        for &p in parents {
            if !self.nodes[p].authorized && !has_bit(&self.covered, p) {
                let ancestors = std::mem::take(&mut self.nodes[p].ancestors);
                for (w, word) in ancestors.iter().enumerate() {
                    let mut fresh = word & !self.covered.get(w).copied().unwrap_or(0);
                    while fresh != 0 {
                        let bit = fresh.trailing_zeros() as usize;
                        fresh &= fresh - 1;
                        self.cover(w * 64 + bit);
                    }
                }
                self.nodes[p].ancestors = ancestors;
            }
            self.cover(p);
        }
    }

    /// Node `i` is a strict ancestor of an authorized node.
    fn cover(&mut self, i: usize) {
        if has_bit(&self.covered, i) {
            return;
        }
        set_bit(&mut self.covered, i);
        if !has_bit(&self.kept, i) {
            set_bit(&mut self.kept, i);
            if !self.nodes[i].authorized {
                self.uncounted += 1;
            }
        }
    }

    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        has_bit(&self.nodes[b].ancestors, a)
    }

    /// The statements of `set` that no other statement of `set` follows.
    fn maximal(&self, set: &[usize]) -> Vec<usize> {
        set.iter()
            .copied()
            .filter(|&i| !set.iter().any(|&j| j != i && self.is_ancestor(i, j)))
            .collect()
    }

    /// Whether statement `i` still counts within `scope`: it was authorized,
    /// and no counting revoke of its issuer in scope lacks it in its past.
    /// `visiting` breaks cycles of mutual revokes by treating a revoke under
    /// evaluation as counting, so such revokes all take effect.
    fn counts(&self, i: usize, scope: Scope<'_>, visiting: &mut HashSet<usize>) -> bool {
        let node = &self.nodes[i];
        if !node.authorized {
            return false;
        }
        let issuer = node.statement.issuer;
        if issuer == self.owner {
            return true;
        }
        if !visiting.insert(i) {
            return true;
        }
        let mut counted = true;
        if let Some(about_issuer) = self.by_subject.get(&issuer) {
            for &r in about_issuer {
                let revoke = &self.nodes[r];
                if r == i
                    || !scope.contains(r)
                    || revoke.statement.action != Action::Revoke
                    || self.is_ancestor(i, r)
                {
                    continue;
                }
                if self.counts(r, scope, visiting) {
                    counted = false;
                    break;
                }
            }
        }
        visiting.remove(&i);
        counted
    }

    /// The role of `key` in `scope` at time `now_ms`, with the deciding
    /// statement (none for the owner).
    fn role_in(
        &self,
        key: &PeerKey,
        scope: Scope<'_>,
        now_ms: i64,
    ) -> Option<(Role, Option<usize>)> {
        if key == &self.owner {
            return Some((Role::Owner, None));
        }
        let about = self.by_subject.get(key)?;
        let counting: Vec<usize> = about
            .iter()
            .copied()
            .filter(|&i| scope.contains(i))
            .filter(|&i| {
                let s = &self.nodes[i].statement;
                let self_grant = s.issuer == s.subject && matches!(s.action, Action::Grant { .. });
                matches!(s.action, Action::Grant { .. } | Action::Revoke) && !self_grant
            })
            .filter(|&i| self.counts(i, scope, &mut HashSet::new()))
            .collect();
        let maximal = self.maximal(&counting);
        if maximal
            .iter()
            .any(|&i| self.nodes[i].statement.action == Action::Revoke)
        {
            return None;
        }
        maximal
            .into_iter()
            .filter_map(|i| {
                let s = &self.nodes[i].statement;
                let live = s.expires_ms.is_none_or(|e| now_ms < e);
                match s.action {
                    Action::Grant { role } if live => Some((role, Some(i))),
                    _ => None,
                }
            })
            .min_by_key(|(role, i)| (*role, i.map(|i| self.nodes[i].id)))
    }

    /// The current roles and visibility at time `now_ms`.
    pub fn roles(&self, now_ms: i64) -> Roles {
        let mut members = BTreeMap::new();
        members.insert(
            self.owner,
            Member {
                key: self.owner,
                role: Role::Owner,
                granted_by: self.owner,
                since_ms: 0,
                expires_ms: None,
                statement: None,
            },
        );
        for key in self.by_subject.keys() {
            if let Some((role, Some(i))) = self.role_in(key, Scope::All, now_ms) {
                let node = &self.nodes[i];
                members.insert(
                    *key,
                    Member {
                        key: *key,
                        role,
                        granted_by: node.statement.issuer,
                        since_ms: node.statement.issued_ms,
                        expires_ms: node.statement.expires_ms,
                        statement: Some(node.id),
                    },
                );
            }
        }
        Roles {
            members,
            public: self.public(),
        }
    }

    /// The role of one key now.
    pub fn role_of(&self, key: &PeerKey, now_ms: i64) -> Option<Role> {
        self.role_in(key, Scope::All, now_ms).map(|(role, _)| role)
    }

    fn public(&self) -> bool {
        let counting: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| matches!(self.nodes[i].statement.action, Action::Visibility { .. }))
            .filter(|&i| self.counts(i, Scope::All, &mut HashSet::new()))
            .collect();
        let maximal = self.maximal(&counting);
        !maximal.is_empty()
            && maximal
                .iter()
                .all(|&i| self.nodes[i].statement.action == Action::Visibility { public: true })
    }
}

/// Evaluates a set of statements from scratch: verifies each, drops the
/// invalid ones, and returns the roles at `now_ms`.
pub fn evaluate(
    project: ProjectId,
    owner: PeerKey,
    statements: impl IntoIterator<Item = SignedStatement>,
    now_ms: i64,
) -> Roles {
    let mut access = Access::new(project, owner);
    for statement in statements {
        if let Ok(verified) = Verified::check(statement, &project) {
            access.insert(verified);
        }
    }
    access.roles(now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Genesis;

    fn key(n: u32) -> SecretKey {
        let mut bytes = [7u8; 32];
        bytes[..4].copy_from_slice(&n.to_le_bytes());
        SecretKey::from_bytes(bytes)
    }

    struct World {
        project: ProjectId,
        owner: SecretKey,
        access: Access,
    }

    impl World {
        fn new() -> Self {
            let owner = key(0);
            let project =
                Genesis::create(&"p".parse().expect("name"), &owner, 0, [0; 16]).project_id();
            Self {
                access: Access::new(project, owner.public()),
                project,
                owner,
            }
        }

        /// Issues a statement as a node does, and inserts it.
        fn act(&mut self, issuer: &SecretKey, subject: PeerKey, action: Action, at: i64) {
            let issued = self
                .access
                .issue(subject, action, issuer, at, None)
                .expect("statement can be issued");
            for verified in issued {
                self.access.insert(verified);
            }
        }

        /// A validly signed statement from a throw-away key: it never counts.
        fn junk(&self, n: u32, parents: Vec<StatementId>) -> Verified {
            let stranger = key(10_000 + n);
            let s = Statement::create(
                self.project,
                stranger.public(),
                Action::Grant { role: Role::Admin },
                &stranger,
                parents,
                n as i64,
                None,
            )
            .expect("signed");
            Verified::check(s, &self.project).expect("valid signature")
        }
    }

    #[test]
    fn a_flood_of_junk_from_throwaway_keys_is_dropped_and_the_owner_still_acts() {
        let mut w = World::new();
        let (rex, bob) = (key(1), key(2));
        let owner = w.owner.clone();
        w.act(
            &owner,
            rex.public(),
            Action::Grant { role: Role::Reader },
            1,
        );
        let heads = w.access.heads();
        let flood: Vec<Verified> = (0..70).map(|n| w.junk(n, heads.clone())).collect();
        let admission = w.access.admit(flood);
        assert!(admission.kept.is_empty(), "junk is never kept");
        assert_eq!(admission.uncounted, 70);
        assert_eq!(admission.after.heads(), heads, "junk never becomes a head");
        assert_eq!(admission.after.signed_statements().len(), 1);

        // Even inserted raw (an older node's store), junk is neither a
        // head nor served, and the owner's next statement names one parent.
        for n in 0..70 {
            let junk = w.junk(n, heads.clone());
            w.access.insert(junk);
        }
        assert_eq!(w.access.heads(), heads);
        assert_eq!(w.access.statements_beyond(&[]).len(), 1);
        w.act(&owner, rex.public(), Action::Revoke, 2);
        w.act(
            &owner,
            bob.public(),
            Action::Grant { role: Role::Writer },
            3,
        );
        assert_eq!(w.access.role_of(&rex.public(), 10), None);
        assert_eq!(w.access.role_of(&bob.public(), 10), Some(Role::Writer));
        assert_eq!(w.access.heads().len(), 1);
    }

    #[test]
    fn a_writers_statements_never_count_and_are_dropped() {
        let mut w = World::new();
        let (wendy, mallory) = (key(1), key(2));
        let owner = w.owner.clone();
        w.act(
            &owner,
            wendy.public(),
            Action::Grant { role: Role::Writer },
            1,
        );
        let grants: Vec<Verified> = (0..50)
            .map(|n| {
                let s = Statement::create(
                    w.project,
                    key(100 + n).public(),
                    Action::Grant { role: Role::Admin },
                    &wendy,
                    w.access.heads(),
                    2 + n as i64,
                    None,
                )
                .expect("signed");
                Verified::check(s, &w.project).expect("valid")
            })
            .collect();
        let revoke = Statement::create(
            w.project,
            owner.public(),
            Action::Revoke,
            &mallory,
            w.access.heads(),
            3,
            None,
        )
        .expect("signed");
        let mut received = grants;
        received.push(Verified::check(revoke, &w.project).expect("valid"));
        let admission = w.access.admit(received);
        assert!(admission.kept.is_empty());
        assert_eq!(admission.uncounted, 51);
        assert_eq!(admission.after.roles(10), w.access.roles(10));
    }

    #[test]
    fn junk_that_a_counting_statement_names_is_kept_within_the_caps() {
        let w = World::new();
        let owner = w.owner.clone();
        let bob = key(1);
        let base = w.access.heads();
        // An older node stored three junk statements and named them.
        let junk: Vec<Verified> = (0..3).map(|n| w.junk(n, base.clone())).collect();
        let grant = Statement::create(
            w.project,
            bob.public(),
            Action::Grant { role: Role::Writer },
            &owner,
            junk.iter().map(|j| j.id).collect(),
            5,
            None,
        )
        .expect("signed");
        let grant = Verified::check(grant, &w.project).expect("valid");
        let mut received = junk.clone();
        received.push(grant.clone());
        // Order does not matter: parents are placed first.
        received.reverse();
        let admission = w.access.admit(received);
        assert_eq!(admission.kept.len(), 4);
        assert_eq!(admission.kept.last().map(|v| v.id), Some(grant.id));
        assert_eq!(admission.after.heads(), vec![grant.id]);
        assert_eq!(admission.after.uncounted(), 3);
        assert_eq!(
            admission.after.role_of(&bob.public(), 10),
            Some(Role::Writer)
        );

        // One sender may not bring more than its share of such ancestors.
        let many: Vec<Verified> = (0..MAX_UNCOUNTED_PER_SENDER as u32 + 1)
            .map(|n| w.junk(100 + n, base.clone()))
            .collect();
        let greedy = Statement::create(
            w.project,
            bob.public(),
            Action::Grant { role: Role::Admin },
            &owner,
            many.iter().take(MAX_PARENTS).map(|j| j.id).collect(),
            6,
            None,
        )
        .expect("signed");
        let greedy = Verified::check(greedy, &w.project).expect("valid");
        let on_top = Statement::create(
            w.project,
            key(3).public(),
            Action::Grant { role: Role::Reader },
            &owner,
            vec![greedy.id],
            7,
            None,
        )
        .expect("signed");
        let on_top = Verified::check(on_top, &w.project).expect("valid");
        let mut received = many;
        received.push(greedy);
        received.push(on_top);
        // Exactly one sender's cap: kept, with the one junk it does not
        // name dropped.
        let admission = w.access.admit(received);
        assert_eq!((admission.over_cap, admission.uncounted), (0, 1));
        assert_eq!(admission.kept.len(), MAX_UNCOUNTED_PER_SENDER + 2);

        // Once the project holds its cap of such ancestors, no more come in.
        let more: Vec<Verified> = (0..2).map(|n| w.junk(500 + n, base.clone())).collect();
        let again = Statement::create(
            w.project,
            key(4).public(),
            Action::Grant { role: Role::Reader },
            &owner,
            more.iter().map(|j| j.id).collect(),
            8,
            None,
        )
        .expect("signed");
        let again = Verified::check(again, &w.project).expect("valid");
        let mut fill = admission.after;
        let mut n = 1_000;
        while fill.uncounted() + 2 <= MAX_UNCOUNTED {
            let batch: Vec<Verified> = (0..2).map(|k| w.junk(n + k, base.clone())).collect();
            let s = Statement::create(
                w.project,
                key(n + 5).public(),
                Action::Grant { role: Role::Reader },
                &owner,
                batch.iter().map(|j| j.id).collect(),
                n as i64,
                None,
            )
            .expect("signed");
            let mut received = batch;
            received.push(Verified::check(s, &w.project).expect("valid"));
            fill = fill.admit(received).after;
            n += 10;
        }
        let mut received = more;
        received.push(again.clone());
        let admission = fill.admit(received);
        assert_eq!(admission.over_cap, 1, "the project's cap holds");
        assert!(!admission.after.contains(&again.id));
    }

    #[test]
    fn statements_whose_parents_never_arrive_are_dropped() {
        let w = World::new();
        let phantom: StatementId = hex::encode([9u8; 32]).parse().expect("id");
        let orphan = w.junk(1, vec![phantom]);
        let admission = w.access.admit(vec![orphan]);
        assert_eq!(admission.waiting, 1);
        assert!(admission.kept.is_empty());
        assert_eq!(admission.after.pending(), 0);
    }

    #[test]
    fn an_admin_flooding_real_grants_cannot_stop_the_owner() {
        let mut w = World::new();
        let owner = w.owner.clone();
        let admin = key(1);
        w.act(
            &owner,
            admin.public(),
            Action::Grant { role: Role::Admin },
            1,
        );
        // 300 concurrent grants, all on the same heads: they count.
        let heads = w.access.heads();
        for n in 0..300 {
            let s = Statement::create(
                w.project,
                key(100 + n).public(),
                Action::Grant { role: Role::Reader },
                &admin,
                heads.clone(),
                2,
                None,
            )
            .expect("signed");
            w.access
                .insert(Verified::check(s, &w.project).expect("valid"));
        }
        assert_eq!(w.access.heads().len(), 300);
        let before = w.access.roles(10);
        let issued = w
            .access
            .issue(admin.public(), Action::Revoke, &owner, 3, None)
            .expect("the owner can always act");
        assert!(issued.len() > 1, "merge statements gather the heads");
        assert!(
            issued
                .iter()
                .all(|v| v.statement.payload.parents.len() <= MAX_PARENTS)
        );
        // Another node, receiving them in any order, agrees.
        let mut other = w.access.clone();
        let admission = other.admit(issued.iter().rev().cloned().collect());
        assert_eq!(admission.kept.len(), issued.len());
        other = admission.after;
        for v in issued {
            w.access.insert(v);
        }
        assert_eq!(w.access.heads().len(), 1);
        assert_eq!(other.heads(), w.access.heads());
        assert_eq!(w.access.role_of(&admin.public(), 10), None);
        // The merges changed nothing else: every grant still stands.
        let after = w.access.roles(10);
        assert_eq!(after.members.len(), before.members.len() - 1);
        assert_eq!(other.roles(10), after);
    }
}
