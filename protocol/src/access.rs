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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::identity::{PeerKey, SecretKey};
use crate::project::ProjectId;
use crate::signed::{Signable, Signed, SignedError};

/// Most parents one statement may name (bounds work per statement).
pub const MAX_PARENTS: usize = 64;

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
pub struct Access {
    project: ProjectId,
    owner: PeerKey,
    nodes: Vec<Node>,
    index: HashMap<StatementId, usize>,
    by_subject: HashMap<PeerKey, Vec<usize>>,
    pending: HashMap<StatementId, Verified>,
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
        }
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

    /// The statements with no known successor: the parents of the next
    /// statement this peer issues.
    pub fn heads(&self) -> Vec<StatementId> {
        let mut is_parent = vec![false; self.nodes.len()];
        for node in &self.nodes {
            for parent in &node.statement.parents {
                if let Some(&i) = self.index.get(parent) {
                    is_parent[i] = true;
                }
            }
        }
        let mut heads: Vec<StatementId> = self
            .nodes
            .iter()
            .zip(is_parent)
            .filter(|(_, p)| !p)
            .map(|(n, _)| n.id)
            .collect();
        heads.sort();
        heads
    }

    /// Every statement in the DAG, in a topological order.
    pub fn statements(&self) -> impl Iterator<Item = (&StatementId, &Statement)> {
        self.nodes.iter().map(|n| (&n.id, &n.statement))
    }

    /// Every statement in the DAG with its signature, in a topological
    /// order: what a peer is sent so it can check them itself.
    pub fn signed_statements(&self) -> Vec<SignedStatement> {
        self.nodes
            .iter()
            .map(|n| Signed {
                payload: n.statement.clone(),
                signature: n.signature,
            })
            .collect()
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
            .filter(|(i, _)| !has_bit(&known, *i))
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

    fn parents_known(&self, statement: &Statement) -> bool {
        statement.parents.iter().all(|p| self.index.contains_key(p))
    }

    fn add(&mut self, verified: Verified) {
        let signature = verified.statement.signature;
        let statement = verified.statement.payload;
        let mut ancestors = Vec::new();
        for parent in &statement.parents {
            if let Some(&p) = self.index.get(parent) {
                union(&mut ancestors, &self.nodes[p].ancestors);
                set_bit(&mut ancestors, p);
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
