//! One simulated peer: its copy of the project, the node's serving code
//! over it ([`Served`]), and the sessions and clones it drives.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use tandem_protocol::access::{
    Access, Inserted, Role, Roles, SignedStatement, StatementId, Verified,
};
use tandem_protocol::activity::FeedHeads;
use tandem_protocol::signed::Signed;
use tandem_protocol::sync::{
    BRANCH, CloneSession, CloneStep, Effect, LocalView, ServeView, Session, offer, serve,
};
use tandem_protocol::wire::{
    FeedBundle, Offer, Oid, Refs, Request, Response, SignedRefs, WriterHeads,
};
use tandem_protocol::{PeerKey, ProjectId, SecretKey};

use crate::dag::{Bits, Dag};

/// What a peer is in the middle of with another peer.
pub(crate) enum Driver {
    /// Both boxed: a session is several times larger than a clone, and a
    /// clone holds the refs it chose (a few hundred bytes).
    Sync(Box<Session>),
    Clone(Box<CloneSession>),
}

/// A request to send: to which peer, in which exchange.
pub(crate) struct Outgoing {
    pub(crate) to: usize,
    pub(crate) session_id: u64,
    pub(crate) request: Request,
}

pub(crate) struct Peer {
    pub(crate) key: SecretKey,
    pub(crate) access: Access,
    /// `access.roles(0)` and `access.heads()`, refreshed whenever a
    /// statement is added: they are asked for on every request served and
    /// every session, and evaluating them walks every statement.
    pub(crate) roles: Roles,
    access_heads: Vec<StatementId>,
    /// Whether this peer holds a copy of the project: one that joins by
    /// cloning has none until its clone is installed, and answers every
    /// request about the project as a node does that lacks it.
    pub(crate) has_copy: bool,
    /// The commits this peer holds (numbers in the [`Dag`]); always closed
    /// under ancestry, as a Git repository is.
    pub(crate) holds: Bits,
    pub(crate) head: u32,
    pub(crate) feeds: BTreeMap<PeerKey, u64>,
    /// The exchange under way: with which peer, what, and its id.
    pub(crate) driver: Option<(usize, Driver, u64)>,
    /// While cloning: the id of the `Projects` round asked, and the offers
    /// heard in it (by peer).
    pub(crate) asked: Option<u64>,
    pub(crate) offers: Vec<(PeerKey, Offer)>,
    /// The signed refs last served, with the head they name: ed25519
    /// signatures are deterministic and refs carry no clock here, so signing
    /// the same head again would give the same bytes.
    signed_refs: Option<(u32, SignedRefs)>,
    /// Each peer's head as last merged from it: the node keeps these under
    /// `refs/tandem/peers/`, and a session offers them as `have`.
    known: HashMap<PeerKey, u32>,
    /// Junk this (hostile) peer adds to every access answer.
    pub(crate) flood: Vec<SignedStatement>,
}

/// A peer's copy as the asking side of a session sees it.
pub(crate) struct View<'a> {
    pub(crate) peer: &'a Peer,
    pub(crate) dag: &'a Dag,
    pub(crate) verdicts: &'a RefCell<Verdicts>,
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

/// A peer's copy as the serving side sees it: what the node's serving
/// function ([`serve`]) asks of the project.
struct Served<'a> {
    peer: &'a mut Peer,
    dag: &'a Dag,
}

impl ServeView for Served<'_> {
    type Error = String;

    fn project(&self) -> ProjectId {
        self.peer.access.project()
    }

    fn name(&self) -> String {
        "sim".into()
    }

    fn access(&self) -> &Access {
        &self.peer.access
    }

    fn roles(&self) -> &Roles {
        &self.peer.roles
    }

    fn signed_refs(&mut self) -> Result<SignedRefs, String> {
        let peer = &mut *self.peer;
        if let Some((head, refs)) = &peer.signed_refs
            && *head == peer.head
        {
            return Ok(refs.clone());
        }
        let refs = Refs {
            project: peer.access.project(),
            peer: peer.key.public(),
            heads: vec![(BRANCH.into(), self.dag.ids[peer.head as usize].clone())],
            time_ms: 0,
        };
        let refs = Signed::sign(refs, &peer.key).map_err(|e| e.to_string())?;
        peer.signed_refs = Some((peer.head, refs.clone()));
        Ok(refs)
    }

    fn pack(&mut self, want: &[Oid], have: &[Oid]) -> Result<Vec<u8>, String> {
        Ok(self.peer.pack(self.dag, want, have))
    }

    fn feed_writers(&self) -> Vec<PeerKey> {
        self.peer.feeds.keys().copied().collect()
    }

    fn feed_beyond(
        &mut self,
        writer: &PeerKey,
        theirs: &[String],
    ) -> Result<Option<FeedBundle>, String> {
        let Some(&n) = self.peer.feeds.get(writer) else {
            return Ok(None);
        };
        let held = theirs
            .first()
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0);
        Ok((held < n).then(|| FeedBundle {
            // Heads in the model are counts; writers sign them in the real
            // system, here the bundle is trusted once the session has
            // checked the writer's role.
            heads: Signed {
                payload: FeedHeads {
                    project: self.peer.access.project(),
                    writer: *writer,
                    heads: vec![n.to_string()],
                },
                signature: tandem_protocol::Signature::from_bytes([0; 64]),
            },
            bundle: n.to_le_bytes().to_vec(),
        }))
    }
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
pub(crate) struct Verdicts(HashMap<[u8; 64], Verified>);

impl Verdicts {
    pub(crate) fn check(
        &mut self,
        statement: &SignedStatement,
        project: &ProjectId,
    ) -> Option<Verified> {
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
    pub(crate) fn new(key: SecretKey, access: Access, root: u32) -> Self {
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
            has_copy: true,
            holds,
            head: root,
            feeds: BTreeMap::new(),
            driver: None,
            asked: None,
            offers: Vec::new(),
            signed_refs: None,
            known: HashMap::new(),
            flood: Vec::new(),
        };
        peer.refresh_access();
        peer
    }

    /// A peer that will join by cloning: it knows the project's id and
    /// owner (from the invitation) and holds nothing of it.
    pub(crate) fn without_copy(key: SecretKey, project: ProjectId, owner: PeerKey) -> Self {
        let mut peer = Self::new(key, Access::new(project, owner), 0);
        peer.discard();
        peer
    }

    /// Forgets the copy (a refused clone is removed, as the node removes
    /// it).
    fn discard(&mut self) {
        self.access = Access::new(self.access.project(), self.access.owner());
        self.refresh_access();
        self.has_copy = false;
        self.holds = Bits::default();
        self.head = 0;
        self.feeds.clear();
        self.known.clear();
        self.signed_refs = None;
    }

    /// The round is over: an exchange still waiting has timed out (offers
    /// heard are kept for the next round's clone).
    pub(crate) fn time_out(&mut self) {
        match self.driver.take() {
            Some((_, Driver::Sync(mut session), _)) => {
                let _ = session.on_failure("timed out".into());
            }
            Some((_, Driver::Clone(mut clone), _)) => {
                let _ = clone.on_failure("timed out".into());
            }
            None => {}
        }
    }

    fn refresh_access(&mut self) {
        self.roles = self.access.roles(0);
        self.access_heads = self.access.heads();
    }

    pub(crate) fn view<'a>(&'a self, dag: &'a Dag, verdicts: &'a RefCell<Verdicts>) -> View<'a> {
        View {
            peer: self,
            dag,
            verdicts,
        }
    }

    /// Makes a commit on top of the head.
    pub(crate) fn commit(&mut self, dag: &mut Dag, id: String) -> u32 {
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
    /// `git::build_pack` does in the node; a session's own head is
    /// often a merge this peer never saw, so it also offers the head it last
    /// merged from this peer, which this peer does have.
    fn pack(&self, dag: &Dag, want: &[Oid], have: &[Oid]) -> Vec<u8> {
        let mut excluded = Bits::default();
        for h in have {
            if let Some(c) = dag.lookup(h.as_str()).filter(|c| self.holds.contains(*c)) {
                excluded.union_with(&dag.closure(c));
            }
        }
        let mut pack = Vec::new();
        for w in want {
            let Some(c) = dag.lookup(w.as_str()).filter(|c| self.holds.contains(*c)) else {
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

    /// Answers a request from `requester` with the node's serving code; a
    /// hostile (flooding) peer then adds its junk to access answers.
    pub(crate) fn answer(&mut self, dag: &Dag, requester: &PeerKey, request: Request) -> Response {
        match request {
            Request::Announce { .. } => Response::Ack,
            Request::Projects => {
                let offers = if self.has_copy {
                    offer(requester, &Served { peer: self, dag })
                        .into_iter()
                        .collect()
                } else {
                    Vec::new()
                };
                Response::Projects { offers }
            }
            // Blobs are not simulated.
            Request::BlobEndpoint => Response::Denied,
            scoped => {
                let has_copy = self.has_copy;
                let mut held = Served { peer: self, dag };
                let mut response = serve(requester, scoped, has_copy.then_some(&mut held));
                if let Response::Access { statements } = &mut response {
                    statements.extend(self.flood.iter().cloned());
                }
                response
            }
        }
    }

    /// Starts a sync session with peer `other`; returns the request to send,
    /// if the session did not end at once.
    pub(crate) fn start_session(
        &mut self,
        other: (usize, PeerKey),
        session_id: u64,
        dag: &Dag,
        verdicts: &RefCell<Verdicts>,
    ) -> Option<Outgoing> {
        let project = self.access.project();
        let (session, effects) = Session::start(project, other.1, &self.view(dag, verdicts));
        if session.is_done() {
            return None;
        }
        self.driver = Some((other.0, Driver::Sync(Box::new(session)), session_id));
        effects.into_iter().find_map(|e| match e {
            Effect::Send(request) => Some(Outgoing {
                to: other.0,
                session_id,
                request,
            }),
            _ => None,
        })
    }

    /// Starts a clone from the offers heard, or asks `peers` for offers
    /// (every peer it reaches, as the node asks every connected peer).
    pub(crate) fn start_clone(
        &mut self,
        peers: &[(usize, PeerKey)],
        session_id: u64,
    ) -> Vec<Outgoing> {
        let offers = std::mem::take(&mut self.offers);
        self.asked = None;
        if let Ok((clone, request)) = CloneSession::start(self.access.project(), &offers)
            && let Some(&(to, _)) = peers.iter().find(|(_, key)| *key == clone.source())
        {
            self.driver = Some((to, Driver::Clone(Box::new(clone)), session_id));
            return vec![Outgoing {
                to,
                session_id,
                request,
            }];
        }
        self.asked = Some(session_id);
        peers
            .iter()
            .map(|&(to, _)| Outgoing {
                to,
                session_id,
                request: Request::Projects,
            })
            .collect()
    }

    /// Whether an answer from `from` in exchange `session_id` would carry
    /// the history of a clone (its caller then hands over the access
    /// statements that history holds).
    pub(crate) fn awaits_history(&self, from: usize, session_id: u64) -> bool {
        matches!(&self.driver, Some((other, Driver::Clone(_), id)) if *other == from && *id == session_id)
    }

    /// Takes an answer from peer `from` (whose key is `from_key`) in
    /// exchange `session_id`; returns what to send next. `history_access`
    /// stands for the access statements committed in a clone's history
    /// (see [`Peer::install`]).
    pub(crate) fn on_response(
        &mut self,
        (from, from_key): (usize, PeerKey),
        session_id: u64,
        response: Response,
        dag: &mut Dag,
        verdicts: &RefCell<Verdicts>,
        history_access: Vec<SignedStatement>,
    ) -> Option<Outgoing> {
        if let Response::Projects { offers } = &response {
            if self.asked == Some(session_id) {
                self.offers
                    .extend(offers.iter().map(|offer| (from_key, offer.clone())));
            }
            return None;
        }
        let (other, driver, id) = self.driver.take()?;
        if id != session_id || other != from {
            self.driver = Some((other, driver, id));
            return None;
        }
        let next = match driver {
            Driver::Sync(mut session) => {
                let effects = session.on_response(response, &self.view(dag, verdicts));
                let mut next = None;
                for e in effects {
                    match e {
                        Effect::Send(r) => next = Some(r),
                        Effect::Finished(_) => {}
                        other => self.apply(&other, dag),
                    }
                }
                if next.is_some() {
                    self.driver = Some((other, Driver::Sync(session), id));
                }
                next
            }
            Driver::Clone(mut clone) => match clone.on_response(response) {
                Ok(CloneStep::Send(request)) => {
                    self.driver = Some((other, Driver::Clone(clone), id));
                    Some(request)
                }
                Ok(CloneStep::Unpack { head, pack }) => {
                    if !self.install(&clone, &head, &pack, history_access, dag, verdicts) {
                        return None;
                    }
                    // Then an ordinary session with the same peer, as the
                    // node runs after every clone.
                    return self.start_session((other, from_key), id, dag, verdicts);
                }
                // Over; asked again next round.
                Err(_) => None,
            },
        };
        next.map(|request| Outgoing {
            to: other,
            session_id: id,
            request,
        })
    }

    /// Unpacks and installs a clone's history as the node does, checking
    /// what the clone driver asks: the branch head came in the pack, the
    /// history is this project's, and its source may write in the access
    /// view that came with it. The access statements committed in the
    /// history (`.tandem/access/` in the node) are modelled by the source's
    /// own statements, loaded as the node loads them: verified, and only
    /// those that count kept. A refused copy is removed.
    fn install(
        &mut self,
        clone: &CloneSession,
        head: &str,
        pack: &[u8],
        history_access: Vec<SignedStatement>,
        dag: &Dag,
        verdicts: &RefCell<Verdicts>,
    ) -> bool {
        let mut holds = Bits::default();
        for c in Dag::unpack(pack).filter(|&c| (c as usize) < dag.ids.len()) {
            holds.insert(c);
        }
        let Some(head) = dag.lookup(head).filter(|&c| holds.contains(c)) else {
            return false;
        };
        // Every history in the model is this project's: its manifest names it.
        if clone.check_unpacked(&self.access.project()).is_err() {
            return false;
        }
        let project = self.access.project();
        let mut access = Access::new(project, self.access.owner());
        let verified: Vec<Verified> = history_access
            .iter()
            .filter_map(|s| verdicts.borrow_mut().check(s, &project))
            .collect();
        for v in access.admit(verified).kept {
            access.insert(v);
        }
        self.access = access;
        self.refresh_access();
        self.holds = holds;
        self.head = head;
        self.has_copy = true;
        if clone.check_installed(&self.view(dag, verdicts)).is_err() {
            self.discard();
            return false;
        }
        true
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

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_protocol::access::Action;
    use tandem_protocol::project::Genesis;

    const OWNER: usize = 0;
    const WRITER: usize = 1;
    const READER: usize = 2;
    const STRANGER: usize = 3;
    const CLONER: usize = 4;

    struct World {
        keys: Vec<SecretKey>,
        dag: Dag,
        verdicts: RefCell<Verdicts>,
        project: ProjectId,
        access: Access,
    }

    fn world() -> World {
        let keys: Vec<SecretKey> = (1..=5u8).map(|n| SecretKey::from_bytes([n; 32])).collect();
        let owner = &keys[OWNER];
        let project =
            Genesis::create(&"sim".parse().expect("name"), owner, 0, [1; 16]).project_id();
        let mut access = Access::new(project, owner.public());
        for (who, role) in [
            (WRITER, Role::Writer),
            (READER, Role::Reader),
            (CLONER, Role::Writer),
        ] {
            for v in access
                .issue(keys[who].public(), Action::Grant { role }, owner, 0, None)
                .expect("grant")
            {
                access.insert(v);
            }
        }
        let mut dag = Dag::default();
        dag.add(crate::dag::oid("genesis"), vec![], owner.public());
        World {
            keys,
            dag,
            verdicts: RefCell::default(),
            project,
            access,
        }
    }

    impl World {
        /// `who`'s copy, holding every statement and the root commit.
        fn copy(&self, who: usize) -> Peer {
            let mut access = Access::new(self.project, self.keys[OWNER].public());
            for s in self.access.signed_statements() {
                access.insert(Verified::check(s, &self.project).expect("valid"));
            }
            Peer::new(self.keys[who].clone(), access, 0)
        }

        /// Carries `out` from `asker` to `server` and the answer back.
        fn exchange(
            &mut self,
            (asker, asking): (&mut Peer, usize),
            (server, serving): (&mut Peer, usize),
            out: Outgoing,
        ) -> Option<Outgoing> {
            assert_eq!(out.to, serving);
            let response = server.answer(&self.dag, &self.keys[asking].public(), out.request);
            let history = if asker.awaits_history(serving, out.session_id) {
                server.access.signed_statements()
            } else {
                Vec::new()
            };
            asker.on_response(
                (serving, self.keys[serving].public()),
                out.session_id,
                response,
                &mut self.dag,
                &self.verdicts,
                history,
            )
        }
    }

    #[test]
    fn the_serving_code_tells_a_stranger_nothing() {
        let w = world();
        let mut owner = w.copy(OWNER);
        let project = w.project;
        let scoped = [
            Request::Access {
                project,
                have: vec![],
            },
            Request::Refs { project },
            Request::Pack {
                project,
                want: vec![w.dag.ids[0].clone()],
                have: vec![],
            },
            Request::Feed {
                project,
                have: vec![],
            },
        ];
        let stranger = w.keys[STRANGER].public();
        for request in scoped.clone() {
            assert_eq!(owner.answer(&w.dag, &stranger, request), Response::Denied);
        }
        assert_eq!(
            owner.answer(&w.dag, &stranger, Request::Projects),
            Response::Projects { offers: vec![] }
        );
        let reader = w.keys[READER].public();
        for request in scoped {
            let response = owner.answer(&w.dag, &reader, request);
            assert!(!matches!(response, Response::Denied), "{response:?}");
        }
        let Response::Projects { offers } = owner.answer(&w.dag, &reader, Request::Projects) else {
            panic!("a projects answer");
        };
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0].project, project);
        assert_eq!(offers[0].role, Some(Role::Reader));
        // A peer without a copy answers as a node that lacks the project.
        let mut cloner =
            Peer::without_copy(w.keys[CLONER].clone(), project, w.keys[OWNER].public());
        assert_eq!(
            cloner.answer(&w.dag, &reader, Request::Refs { project }),
            Response::Denied
        );
    }

    #[test]
    fn a_clone_from_a_reader_is_refused_and_leaves_nothing() {
        let mut w = world();
        let mut reader = w.copy(READER);
        let readers_commit = reader.commit(&mut w.dag, crate::dag::oid("reader's work"));
        let mut cloner =
            Peer::without_copy(w.keys[CLONER].clone(), w.project, w.keys[OWNER].public());
        let reachable = [(READER, w.keys[READER].public())];
        // First a round of asking, then the clone from what was offered.
        let asks = cloner.start_clone(&reachable, 1);
        assert!(matches!(
            &asks[..],
            [Outgoing {
                request: Request::Projects,
                ..
            }]
        ));
        for ask in asks {
            assert!(
                w.exchange((&mut cloner, CLONER), (&mut reader, READER), ask)
                    .is_none()
            );
        }
        let mut next = cloner.start_clone(&reachable, 2).pop();
        assert!(matches!(
            next,
            Some(Outgoing {
                request: Request::Refs { .. },
                ..
            })
        ));
        while let Some(out) = next {
            next = w.exchange((&mut cloner, CLONER), (&mut reader, READER), out);
        }
        assert!(!cloner.has_copy, "a reader's history was kept");
        assert!(!cloner.holds.contains(readers_commit));
        assert!(cloner.driver.is_none());
    }

    #[test]
    fn a_clone_from_the_owner_is_installed_then_synced() {
        let mut w = world();
        let mut owner = w.copy(OWNER);
        let work = owner.commit(&mut w.dag, crate::dag::oid("owner's work"));
        let mut cloner =
            Peer::without_copy(w.keys[CLONER].clone(), w.project, w.keys[OWNER].public());
        cloner.offers = vec![(
            w.keys[OWNER].public(),
            offer(
                &w.keys[CLONER].public(),
                &Served {
                    peer: &mut owner,
                    dag: &w.dag,
                },
            )
            .expect("offered to a member"),
        )];
        let mut next = cloner
            .start_clone(&[(OWNER, w.keys[OWNER].public())], 1)
            .pop();
        let mut asked = Vec::new();
        while let Some(out) = next {
            asked.push(crate::net::kind_of(&crate::net::Payload::Request(
                out.request.clone(),
            )));
            next = w.exchange((&mut cloner, CLONER), (&mut owner, OWNER), out);
        }
        assert!(cloner.has_copy);
        assert_eq!(cloner.head, work);
        assert_eq!(cloner.roles, owner.roles);
        // Refs and the whole history, then the session every clone ends with.
        assert_eq!(
            asked[..3],
            ["request:refs", "request:pack", "request:access"]
        );
    }
}
