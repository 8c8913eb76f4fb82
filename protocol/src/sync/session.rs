//! One sync with one peer, as a sans-IO state machine: the asking side.
//!
//! The node (and the simulator) drive a [`Session`]: they send the requests
//! it emits, feed it the responses, and carry out its effects (apply access
//! statements, ingest a pack, merge, apply feed bundles) in order. What the
//! session needs to know about local state it asks through [`LocalView`],
//! after the previous effects were applied. Decisions that protect the
//! project live here, so every driver enforces them alike:
//! - a session starts only with a peer that holds a role in this node's
//!   view: nothing naming the project (its id, access heads, feed heads,
//!   member keys) goes to anyone else;
//! - access statements are taken first, so roles are current before
//!   anything else is judged; they are taken only from a peer that holds a
//!   role, and of those only the ones that count, or are ancestors of ones
//!   that do, are kept (`Access::admit`). A peer still in our view may
//!   pass on its own revocation: it is kept, and then nothing more is asked
//!   of that peer (fail closed);
//! - refs count only if signed by the sending peer for this project, and
//!   are merged only if that peer may write (a reader's commits are never
//!   accepted);
//! - feed bundles are applied only for writers who may write.

use crate::access::{Access, MAX_RECEIVED, Role, Roles, SignedStatement, StatementId, Verified};
use crate::identity::PeerKey;
use crate::project::ProjectId;
use crate::wire::{FeedBundle, Request, Response, SignedRefs, WriterHeads};

use super::relay::{self, RelayJudge};

/// The branch that is synced.
pub const BRANCH: &str = "main";

/// What the session needs to know about this node's copy of the project.
pub trait LocalView {
    /// The project's access statements as held here.
    fn access(&self) -> &Access;
    /// The time roles are judged at (expiring grants).
    fn now_ms(&self) -> i64;
    /// Checks a received statement; a driver may remember verdicts.
    fn verify(&self, statement: SignedStatement, project: &ProjectId) -> Option<Verified> {
        Verified::check(statement, project).ok()
    }
    fn access_heads(&self) -> Vec<StatementId>;
    /// The role `peer` holds here (a driver with cached roles may answer
    /// without cloning them).
    fn role_of(&self, peer: &PeerKey) -> Option<Role> {
        self.roles().role_of(peer)
    }
    fn has_commit(&self, oid: &str) -> bool;
    fn head(&self) -> Option<String>;
    fn roles(&self) -> Roles;
    fn feed_heads(&self) -> Vec<WriterHeads>;
    /// Commits held here to offer `peer` as `have`, besides the head: the
    /// head recorded at the last sync with it, and landmarks further back
    /// in our history. Our own head is often a merge the peer never saw,
    /// and a server ignores haves it lacks, so without these a pack would
    /// carry the whole history.
    fn haves_for(&self, _peer: &PeerKey) -> Vec<String> {
        Vec::new()
    }
    /// The signed time of the latest refs taken from `writer` (directly
    /// or relayed), so a relay cannot hand back older ones.
    fn taken_time(&self, _writer: &PeerKey) -> Option<i64> {
        None
    }
}

/// Judges relayed refs against this node's view of the project.
struct Judge<'a>(&'a dyn LocalView);

impl RelayJudge for Judge<'_> {
    fn may_write(&self, writer: &PeerKey) -> bool {
        self.0.role_of(writer).is_some_and(Role::can_write)
    }

    fn taken_time(&self, writer: &PeerKey) -> Option<i64> {
        self.0.taken_time(writer)
    }

    fn has_commit(&self, oid: &str) -> bool {
        self.0.has_commit(oid)
    }
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send(Request),
    /// Statements to store and insert, parents first; each was checked
    /// and counts or is an ancestor of one that does.
    ApplyAccess(Vec<Verified>),
    ApplyPack(Vec<u8>),
    /// The peer's head is present locally: merge it into the branch.
    Merge {
        refs: SignedRefs,
        head: String,
    },
    ApplyFeed(Vec<FeedBundle>),
    Finished(Report),
}

/// What happened to the Git history in one sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitOutcome {
    /// The peer's branch was already here.
    UpToDate,
    /// New commits arrived and a merge was asked for.
    Fetched { head: String },
    /// The peer may not write: its commits are not taken.
    NotAWriter,
    /// The peer sent no usable refs.
    Nothing,
}

/// The result of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub peer: PeerKey,
    pub denied: bool,
    /// The peer holds no role in this node's view: nothing was sent to it.
    pub no_role: bool,
    pub git: GitOutcome,
    pub feed_bundles: usize,
    pub rejected_bundles: usize,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Access,
    Refs,
    Pack,
    Feed,
    Done,
}

pub struct Session {
    project: ProjectId,
    report: Report,
    step: Step,
    refs: Option<(SignedRefs, String)>,
}

impl Session {
    /// Starts a sync of `project` with `peer`; the first effect asks for
    /// the project's access statements. A peer without a role in this
    /// node's view is sent nothing: the session ends at once.
    pub fn start(project: ProjectId, peer: PeerKey, local: &dyn LocalView) -> (Self, Vec<Effect>) {
        let mut session = Self {
            project,
            report: Report {
                peer,
                denied: false,
                no_role: false,
                git: GitOutcome::Nothing,
                feed_bundles: 0,
                rejected_bundles: 0,
                problems: Vec::new(),
            },
            step: Step::Access,
            refs: None,
        };
        if local.role_of(&peer).is_none() {
            session.report.no_role = true;
            let done = session.finish();
            return (session, vec![done]);
        }
        let have = local.access_heads();
        (
            session,
            vec![Effect::Send(Request::Access { project, have })],
        )
    }

    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    fn finish(&mut self) -> Effect {
        self.step = Step::Done;
        Effect::Finished(self.report.clone())
    }

    fn ask_feed(&mut self, local: &dyn LocalView) -> Effect {
        self.step = Step::Feed;
        Effect::Send(Request::Feed {
            project: self.project,
            have: local.feed_heads(),
        })
    }

    /// A transport failure: the session ends, reporting it.
    pub fn on_failure(&mut self, message: String) -> Vec<Effect> {
        self.report.problems.push(message);
        vec![self.finish()]
    }

    /// Feeds the peer's answer to the last request. If the peer lost its
    /// role meanwhile (another session brought its revocation), nothing
    /// more is sent to it.
    pub fn on_response(&mut self, response: Response, local: &dyn LocalView) -> Vec<Effect> {
        let mut effects = self.step_on(response, local);
        let sends = effects.iter().any(|e| matches!(e, Effect::Send(_)));
        if sends && local.role_of(&self.report.peer).is_none() {
            effects.retain(|e| !matches!(e, Effect::Send(_)));
            self.report.no_role = true;
            self.report.problems.push(format!(
                "{} no longer holds a role in this project: nothing more is asked of it",
                self.report.peer.to_did()
            ));
            effects.push(self.finish());
        }
        effects
    }

    fn step_on(&mut self, response: Response, local: &dyn LocalView) -> Vec<Effect> {
        match (self.step, response) {
            (Step::Done, _) => vec![],
            (_, Response::Denied) => {
                self.report.denied = true;
                vec![self.finish()]
            }
            (_, Response::Failed { message }) => {
                self.report.problems.push(format!("peer failed: {message}"));
                vec![self.finish()]
            }
            (Step::Access, Response::Access { statements }) => self.on_access(statements, local),
            (Step::Refs, Response::Refs { refs, relayed }) => self.on_refs(refs, relayed, local),
            (Step::Pack, Response::Pack { pack }) => {
                let mut effects = vec![Effect::ApplyPack(pack)];
                if let Some((refs, head)) = self.refs.clone() {
                    self.report.git = GitOutcome::Fetched { head: head.clone() };
                    effects.push(Effect::Merge { refs, head });
                }
                effects.push(self.ask_feed(local));
                effects
            }
            (Step::Feed, Response::Feed { bundles }) => {
                let roles = local.roles();
                let (kept, dropped): (Vec<FeedBundle>, Vec<FeedBundle>) =
                    bundles.into_iter().partition(|b| {
                        b.heads.payload.project == self.project
                            && roles.can_write(&b.heads.payload.writer)
                    });
                self.report.feed_bundles = kept.len();
                self.report.rejected_bundles = dropped.len();
                vec![Effect::ApplyFeed(kept), self.finish()]
            }
            (step, other) => {
                self.report.problems.push(format!(
                    "unexpected answer in step {step:?}: {}",
                    kind(&other)
                ));
                vec![self.finish()]
            }
        }
    }

    /// Takes the statements that count from a peer that holds a role, and
    /// goes on only if it still holds one with them applied.
    fn on_access(
        &mut self,
        statements: Vec<SignedStatement>,
        local: &dyn LocalView,
    ) -> Vec<Effect> {
        let peer = self.report.peer;
        if local.role_of(&peer).is_none() {
            self.report.no_role = true;
            self.report.problems.push(format!(
                "access statements from {} refused: it holds no role in this project here",
                peer.to_did()
            ));
            return vec![self.finish()];
        }
        let received = statements.len();
        let access = local.access();
        let mut invalid = 0;
        let verified: Vec<Verified> = statements
            .into_iter()
            .take(MAX_RECEIVED)
            .filter(|s| !access.contains(&StatementId::of(s)))
            .filter_map(|s| {
                let checked = local.verify(s, &self.project);
                invalid += usize::from(checked.is_none());
                checked
            })
            .collect();
        let admission = access.admit(verified);
        let dropped = admission.dropped() + invalid + received.saturating_sub(MAX_RECEIVED);
        if dropped > 0 {
            self.report.problems.push(format!(
                "{dropped} of {received} access statements from {} were not kept ({} do not count, {} wait for parents that did not come, {} over the caps, {invalid} invalid, {} beyond the {MAX_RECEIVED} taken at once)",
                peer.to_did(),
                admission.uncounted,
                admission.waiting,
                admission.over_cap,
                received.saturating_sub(MAX_RECEIVED),
            ));
        }
        let still_member = admission.after.role_of(&peer, local.now_ms()).is_some();
        let mut effects = Vec::new();
        if !admission.kept.is_empty() {
            effects.push(Effect::ApplyAccess(admission.kept));
        }
        if !still_member {
            self.report.no_role = true;
            self.report.problems.push(format!(
                "{} no longer holds a role in this project: nothing more is asked of it",
                peer.to_did()
            ));
            effects.push(self.finish());
            return effects;
        }
        self.step = Step::Refs;
        effects.push(Effect::Send(Request::Refs {
            project: self.project,
        }));
        effects
    }

    /// A writer's own refs are taken; from a member that may not write,
    /// only the writers' refs it relays, each as its writer signed it and
    /// newer than any taken from that writer (see `sync::relay`).
    fn on_refs(
        &mut self,
        refs: SignedRefs,
        relayed: Vec<SignedRefs>,
        local: &dyn LocalView,
    ) -> Vec<Effect> {
        if let Err(e) = refs.check(&self.project, &self.report.peer) {
            self.report.problems.push(format!("refs refused: {e}"));
            return vec![self.ask_feed(local)];
        }
        let (refs, head) = if local
            .role_of(&self.report.peer)
            .is_some_and(Role::can_write)
        {
            let Some(head) = refs.head(BRANCH).map(str::to_owned) else {
                return vec![self.ask_feed(local)];
            };
            (refs, head)
        } else {
            match relay::pick(&self.project, BRANCH, &relayed, &Judge(local)) {
                Some(vouched) => (vouched.refs, vouched.head),
                None => {
                    // Nothing newer from any writer. The peer's own
                    // commits are never taken: say so if it has some we
                    // lack, else we are up to date with it.
                    let own_held = refs.head(BRANCH).is_none_or(|own| local.has_commit(own));
                    self.report.git = if own_held {
                        GitOutcome::UpToDate
                    } else {
                        GitOutcome::NotAWriter
                    };
                    return vec![self.ask_feed(local)];
                }
            }
        };
        if local.has_commit(&head) {
            self.report.git = if local.head().as_deref() == Some(head.as_str()) {
                GitOutcome::UpToDate
            } else {
                GitOutcome::Fetched { head: head.clone() }
            };
            return vec![Effect::Merge { refs, head }, self.ask_feed(local)];
        }
        self.step = Step::Pack;
        self.refs = Some((refs, head.clone()));
        let mut have: Vec<String> = local.head().into_iter().collect();
        for known in local.haves_for(&self.report.peer) {
            if !have.contains(&known) && known != head {
                have.push(known);
            }
        }
        vec![Effect::Send(Request::Pack {
            project: self.project,
            want: vec![head],
            have,
        })]
    }
}

fn kind(response: &Response) -> &'static str {
    match response {
        Response::Projects { .. } => "projects",
        Response::Access { .. } => "access",
        Response::Refs { .. } => "refs",
        Response::Pack { .. } => "pack",
        Response::Feed { .. } => "feed",
        Response::Ack => "ack",
        Response::BlobEndpoint { .. } => "blob endpoint",
        Response::Joined { .. } => "joined",
        Response::JoinRefused { .. } => "join refused",
        Response::Denied => "denied",
        Response::Failed { .. } => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Access, Action, Role, Statement, Verified};
    use crate::identity::SecretKey;
    use crate::project::Genesis;
    use crate::signed::Signed;
    use crate::wire::Refs;

    struct View {
        access: Access,
        commits: Vec<String>,
        known: Vec<String>,
    }

    impl LocalView for View {
        fn access(&self) -> &Access {
            &self.access
        }
        fn now_ms(&self) -> i64 {
            0
        }
        fn access_heads(&self) -> Vec<StatementId> {
            self.access.heads()
        }
        fn has_commit(&self, oid: &str) -> bool {
            self.commits.iter().any(|c| c == oid)
        }
        fn head(&self) -> Option<String> {
            self.commits.last().cloned()
        }
        fn roles(&self) -> Roles {
            self.access.roles(0)
        }
        fn feed_heads(&self) -> Vec<WriterHeads> {
            vec![]
        }
        fn haves_for(&self, _peer: &PeerKey) -> Vec<String> {
            self.known.clone()
        }
    }

    struct Setup {
        project: ProjectId,
        owner: SecretKey,
        peer: SecretKey,
        view: View,
    }

    /// A view that already holds the peer's grant (as a node does that
    /// learned it earlier), or none.
    fn setup(peer_role: Option<Role>) -> Setup {
        let owner = SecretKey::from_bytes([1; 32]);
        let peer = SecretKey::from_bytes([2; 32]);
        let project = Genesis::create(&"p".parse().expect("name"), &owner, 0, [0; 16]).project_id();
        let mut access = Access::new(project, owner.public());
        if let Some(role) = peer_role {
            for v in access
                .issue(peer.public(), Action::Grant { role }, &owner, 0, None)
                .expect("grant")
            {
                access.insert(v);
            }
        }
        let view = View {
            access,
            commits: vec!["1".repeat(40)],
            known: vec![],
        };
        Setup {
            project,
            owner,
            peer,
            view,
        }
    }

    impl Setup {
        /// A statement by the owner on top of what the view holds.
        fn owner_says(&self, subject: PeerKey, action: Action) -> SignedStatement {
            self.view
                .access
                .issue(subject, action, &self.owner, 1, None)
                .expect("statement")
                .remove(0)
                .statement
        }
    }

    fn refs(project: ProjectId, peer: &SecretKey, head: &str) -> SignedRefs {
        Signed::sign(
            Refs {
                project,
                peer: peer.public(),
                heads: vec![(BRANCH.into(), head.into())],
                time_ms: 0,
            },
            peer,
        )
        .expect("sign")
    }

    fn apply(view: &mut View, effects: &[Effect]) {
        for effect in effects {
            if let Effect::ApplyAccess(statements) = effect {
                for v in statements {
                    view.access.insert(v.clone());
                }
            }
        }
    }

    fn sends(effects: &[Effect]) -> Vec<&Request> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_writers_new_commits_are_fetched_and_merged() {
        let Setup {
            project,
            peer,
            mut view,
            ..
        } = setup(Some(Role::Writer));
        let (mut session, first) = Session::start(project, peer.public(), &view);
        assert_eq!(
            first,
            vec![Effect::Send(Request::Access {
                project,
                have: view.access.heads()
            })]
        );
        let effects = session.on_response(Response::Access { statements: vec![] }, &view);
        apply(&mut view, &effects);
        let effects = session.on_response(
            Response::Refs {
                refs: refs(project, &peer, &"2".repeat(40)),
                relayed: vec![],
            },
            &view,
        );
        assert!(
            matches!(&effects[..], [Effect::Send(Request::Pack { want, .. })] if want == &vec!["2".repeat(40)])
        );
        let effects = session.on_response(
            Response::Pack {
                pack: vec![1, 2, 3],
            },
            &view,
        );
        assert!(matches!(effects[0], Effect::ApplyPack(_)));
        assert!(matches!(effects[1], Effect::Merge { .. }));
        let effects = session.on_response(Response::Feed { bundles: vec![] }, &view);
        let Some(Effect::Finished(report)) = effects.last() else {
            panic!("finished")
        };
        assert_eq!(
            report.git,
            GitOutcome::Fetched {
                head: "2".repeat(40)
            }
        );
        assert!(session.is_done());
    }

    #[test]
    fn a_readers_commits_are_never_taken() {
        let Setup {
            project,
            peer,
            mut view,
            ..
        } = setup(Some(Role::Reader));
        let (mut session, _) = Session::start(project, peer.public(), &view);
        let effects = session.on_response(Response::Access { statements: vec![] }, &view);
        apply(&mut view, &effects);
        let effects = session.on_response(
            Response::Refs {
                refs: refs(project, &peer, &"2".repeat(40)),
                relayed: vec![],
            },
            &view,
        );
        assert!(
            matches!(&effects[..], [Effect::Send(Request::Feed { .. })]),
            "{effects:?}"
        );
        let effects = session.on_response(Response::Feed { bundles: vec![] }, &view);
        let Some(Effect::Finished(report)) = effects.last() else {
            panic!("finished")
        };
        assert_eq!(report.git, GitOutcome::NotAWriter);
    }

    #[test]
    fn refs_signed_by_someone_else_are_refused() {
        let Setup {
            project,
            peer,
            mut view,
            ..
        } = setup(Some(Role::Writer));
        let (mut session, _) = Session::start(project, peer.public(), &view);
        let effects = session.on_response(Response::Access { statements: vec![] }, &view);
        apply(&mut view, &effects);
        let impostor = SecretKey::from_bytes([3; 32]);
        let effects = session.on_response(
            Response::Refs {
                refs: refs(project, &impostor, &"2".repeat(40)),
                relayed: vec![],
            },
            &view,
        );
        assert!(matches!(&effects[..], [Effect::Send(Request::Feed { .. })]));
    }

    #[test]
    fn denial_and_surprises_end_the_session() {
        let Setup {
            project,
            peer,
            view,
            ..
        } = setup(Some(Role::Reader));
        let (mut session, _) = Session::start(project, peer.public(), &view);
        let effects = session.on_response(Response::Denied, &view);
        assert!(matches!(&effects[..], [Effect::Finished(r)] if r.denied));
        let (mut session, _) = Session::start(project, peer.public(), &view);
        let effects = session.on_response(Response::Pack { pack: vec![] }, &view);
        assert!(matches!(&effects[..], [Effect::Finished(r)] if !r.problems.is_empty()));
    }

    #[test]
    fn a_pack_request_names_what_the_peer_is_known_to_have() {
        let Setup {
            project,
            peer,
            mut view,
            ..
        } = setup(Some(Role::Writer));
        // Our head is a merge the peer never saw; its last head is here.
        view.commits.push("3".repeat(40));
        view.known = vec!["1".repeat(40)];
        let (mut session, _) = Session::start(project, peer.public(), &view);
        let effects = session.on_response(Response::Access { statements: vec![] }, &view);
        apply(&mut view, &effects);
        let effects = session.on_response(
            Response::Refs {
                refs: refs(project, &peer, &"2".repeat(40)),
                relayed: vec![],
            },
            &view,
        );
        let [Effect::Send(Request::Pack { have, .. })] = &effects[..] else {
            panic!("expected a pack request: {effects:?}");
        };
        assert_eq!(have, &vec!["3".repeat(40), "1".repeat(40)]);
    }

    #[test]
    fn a_stranger_or_a_revoked_member_is_sent_nothing() {
        let stranger = setup(None);
        let (session, effects) =
            Session::start(stranger.project, stranger.peer.public(), &stranger.view);
        assert!(sends(&effects).is_empty(), "{effects:?}");
        assert!(matches!(&effects[..], [Effect::Finished(r)] if r.no_role));
        assert!(session.is_done());

        let mut revoked = setup(Some(Role::Reader));
        let revoke = revoked.owner_says(revoked.peer.public(), Action::Revoke);
        let project = revoked.project;
        revoked
            .view
            .access
            .insert(Verified::check(revoke, &project).expect("valid"));
        let (_, effects) = Session::start(project, revoked.peer.public(), &revoked.view);
        assert!(sends(&effects).is_empty(), "{effects:?}");
    }

    #[test]
    fn statements_are_refused_from_a_peer_revoked_meanwhile() {
        let mut s = setup(Some(Role::Reader));
        let (mut session, _) = Session::start(s.project, s.peer.public(), &s.view);
        // Another session brought the revocation before this answer came.
        let revoke = s.owner_says(s.peer.public(), Action::Revoke);
        s.view
            .access
            .insert(Verified::check(revoke, &s.project).expect("valid"));
        let admin = s.owner_says(s.peer.public(), Action::Grant { role: Role::Admin });
        let effects = session.on_response(
            Response::Access {
                statements: vec![admin],
            },
            &s.view,
        );
        assert!(
            matches!(&effects[..], [Effect::Finished(r)] if r.no_role),
            "{effects:?}"
        );
    }

    #[test]
    fn a_peer_revoked_during_the_session_is_asked_nothing_more() {
        let mut s = setup(Some(Role::Writer));
        let (mut session, _) = Session::start(s.project, s.peer.public(), &s.view);
        session.on_response(Response::Access { statements: vec![] }, &s.view);
        let revoke = s.owner_says(s.peer.public(), Action::Revoke);
        s.view
            .access
            .insert(Verified::check(revoke, &s.project).expect("valid"));
        let effects = session.on_response(
            Response::Refs {
                refs: refs(s.project, &s.peer, &"2".repeat(40)),
                relayed: vec![],
            },
            &s.view,
        );
        assert!(sends(&effects).is_empty(), "{effects:?}");
        assert!(matches!(effects.last(), Some(Effect::Finished(r)) if r.no_role));
    }

    #[test]
    fn a_peer_whose_answer_revokes_it_is_asked_nothing_more() {
        let s = setup(Some(Role::Writer));
        let (mut session, _) = Session::start(s.project, s.peer.public(), &s.view);
        // The peer (fairly) passes on its own revocation: it is kept, and
        // the session ends before the project's refs or feed are named.
        let revoke = s.owner_says(s.peer.public(), Action::Revoke);
        let effects = session.on_response(
            Response::Access {
                statements: vec![revoke.clone()],
            },
            &s.view,
        );
        assert!(sends(&effects).is_empty(), "{effects:?}");
        assert!(
            matches!(&effects[..], [Effect::ApplyAccess(kept), Effect::Finished(r)]
                if kept.len() == 1 && kept[0].statement == revoke && r.no_role),
            "{effects:?}"
        );
    }

    #[test]
    fn a_members_flood_of_junk_is_dropped_and_reported() {
        let mut s = setup(Some(Role::Reader));
        let (mut session, _) = Session::start(s.project, s.peer.public(), &s.view);
        let heads = s.view.access.heads();
        let mut flood: Vec<SignedStatement> = (0..70u8)
            .map(|n| {
                let throwaway = SecretKey::from_bytes([100 + n; 32]);
                Statement::create(
                    s.project,
                    throwaway.public(),
                    Action::Grant { role: Role::Admin },
                    &throwaway,
                    heads.clone(),
                    5,
                    None,
                )
                .expect("signed")
            })
            .collect();
        // A tampered copy counts as invalid.
        let mut tampered = flood[0].clone();
        tampered.payload.issued_ms = 6;
        flood.push(tampered);
        let effects = session.on_response(Response::Access { statements: flood }, &s.view);
        apply(&mut s.view, &effects);
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::ApplyAccess(_))),
            "junk is never applied: {effects:?}"
        );
        assert!(matches!(&effects[..], [Effect::Send(Request::Refs { .. })]));
        assert_eq!(s.view.access.heads(), heads);
        session.on_response(
            Response::Refs {
                refs: refs(s.project, &s.peer, &"1".repeat(40)),
                relayed: vec![],
            },
            &s.view,
        );
        let effects = session.on_response(Response::Feed { bundles: vec![] }, &s.view);
        let Some(Effect::Finished(report)) = effects.last() else {
            panic!("finished: {effects:?}");
        };
        assert!(
            report.problems.iter().any(|p| p.contains("71 of 71")
                && p.contains("70 do not count")
                && p.contains("1 invalid")),
            "{:?}",
            report.problems
        );
    }
}
