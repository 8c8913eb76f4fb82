//! One sync with one peer, as a sans-IO state machine.
//!
//! The node (and the simulator) drive a [`Session`]: they send the requests
//! it emits, feed it the responses, and carry out its effects (apply access
//! statements, ingest a pack, merge, apply feed bundles) in order. What the
//! session needs to know about local state it asks through [`LocalView`],
//! after the previous effects were applied. Decisions that protect the
//! project live here, so every driver enforces them alike:
//! - access statements are taken first, so roles are current before
//!   anything else is judged;
//! - refs count only if signed by the sending peer for this project, and
//!   are merged only if that peer may write (a reader's commits are never
//!   accepted);
//! - feed bundles are applied only for writers who may write.

use crate::access::{Roles, SignedStatement, StatementId};
use crate::identity::PeerKey;
use crate::project::ProjectId;
use crate::wire::{FeedBundle, Request, Response, SignedRefs, WriterHeads};

/// The branch that is synced.
pub const BRANCH: &str = "main";

/// What the session needs to know about this node's copy of the project.
pub trait LocalView {
    fn access_heads(&self) -> Vec<StatementId>;
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
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send(Request),
    ApplyAccess(Vec<SignedStatement>),
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
    /// the project's access statements.
    pub fn start(project: ProjectId, peer: PeerKey, local: &dyn LocalView) -> (Self, Vec<Effect>) {
        let session = Self {
            project,
            report: Report {
                peer,
                denied: false,
                git: GitOutcome::Nothing,
                feed_bundles: 0,
                rejected_bundles: 0,
                problems: Vec::new(),
            },
            step: Step::Access,
            refs: None,
        };
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

    /// Feeds the peer's answer to the last request.
    pub fn on_response(&mut self, response: Response, local: &dyn LocalView) -> Vec<Effect> {
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
            (Step::Access, Response::Access { statements }) => {
                self.step = Step::Refs;
                vec![
                    Effect::ApplyAccess(statements),
                    Effect::Send(Request::Refs {
                        project: self.project,
                    }),
                ]
            }
            (Step::Refs, Response::Refs { refs }) => self.on_refs(refs, local),
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

    fn on_refs(&mut self, refs: SignedRefs, local: &dyn LocalView) -> Vec<Effect> {
        if let Err(e) = refs.check(&self.project, &self.report.peer) {
            self.report.problems.push(format!("refs refused: {e}"));
            return vec![self.ask_feed(local)];
        }
        if !local.roles().can_write(&self.report.peer) {
            self.report.git = GitOutcome::NotAWriter;
            return vec![self.ask_feed(local)];
        }
        let Some(head) = refs.head(BRANCH).map(str::to_owned) else {
            return vec![self.ask_feed(local)];
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

    fn setup(peer_role: Option<Role>) -> (ProjectId, SecretKey, View, Vec<SignedStatement>) {
        let owner = SecretKey::from_bytes([1; 32]);
        let peer = SecretKey::from_bytes([2; 32]);
        let project = Genesis::create(&"p".parse().expect("name"), &owner, 0, [0; 16]).project_id();
        let mut statements = vec![];
        if let Some(role) = peer_role {
            statements.push(
                Statement::create(
                    project,
                    peer.public(),
                    Action::Grant { role },
                    &owner,
                    vec![],
                    0,
                    None,
                )
                .expect("grant"),
            );
        }
        let view = View {
            access: Access::new(project, owner.public()),
            commits: vec!["1".repeat(40)],
            known: vec![],
        };
        (project, peer, view, statements)
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
                for s in statements {
                    view.access
                        .insert(Verified::check(s.clone(), &view.access.project()).expect("valid"));
                }
            }
        }
    }

    #[test]
    fn a_writers_new_commits_are_fetched_and_merged() {
        let (project, peer, mut view, statements) = setup(Some(Role::Writer));
        let (mut session, first) = Session::start(project, peer.public(), &view);
        assert_eq!(
            first,
            vec![Effect::Send(Request::Access {
                project,
                have: vec![]
            })]
        );
        let effects = session.on_response(Response::Access { statements }, &view);
        apply(&mut view, &effects);
        let effects = session.on_response(
            Response::Refs {
                refs: refs(project, &peer, &"2".repeat(40)),
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
        let (project, peer, mut view, statements) = setup(Some(Role::Reader));
        let (mut session, _) = Session::start(project, peer.public(), &view);
        let effects = session.on_response(Response::Access { statements }, &view);
        apply(&mut view, &effects);
        let effects = session.on_response(
            Response::Refs {
                refs: refs(project, &peer, &"2".repeat(40)),
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
        let (project, peer, mut view, statements) = setup(Some(Role::Writer));
        let (mut session, _) = Session::start(project, peer.public(), &view);
        let effects = session.on_response(Response::Access { statements }, &view);
        apply(&mut view, &effects);
        let impostor = SecretKey::from_bytes([3; 32]);
        let effects = session.on_response(
            Response::Refs {
                refs: refs(project, &impostor, &"2".repeat(40)),
            },
            &view,
        );
        assert!(matches!(&effects[..], [Effect::Send(Request::Feed { .. })]));
    }

    #[test]
    fn denial_and_surprises_end_the_session() {
        let (project, peer, view, _) = setup(None);
        let (mut session, _) = Session::start(project, peer.public(), &view);
        let effects = session.on_response(Response::Denied, &view);
        assert!(matches!(&effects[..], [Effect::Finished(r)] if r.denied));
        let (mut session, _) = Session::start(project, peer.public(), &view);
        let effects = session.on_response(Response::Pack { pack: vec![] }, &view);
        assert!(matches!(&effects[..], [Effect::Finished(r)] if !r.problems.is_empty()));
    }

    #[test]
    fn a_pack_request_names_what_the_peer_is_known_to_have() {
        let (project, peer, mut view, statements) = setup(Some(Role::Writer));
        // Our head is a merge the peer never saw; its last head is here.
        view.commits.push("3".repeat(40));
        view.known = vec!["1".repeat(40)];
        let (mut session, _) = Session::start(project, peer.public(), &view);
        let effects = session.on_response(Response::Access { statements }, &view);
        apply(&mut view, &effects);
        let effects = session.on_response(
            Response::Refs {
                refs: refs(project, &peer, &"2".repeat(40)),
            },
            &view,
        );
        let [Effect::Send(Request::Pack { have, .. })] = &effects[..] else {
            panic!("expected a pack request: {effects:?}");
        };
        assert_eq!(have, &vec!["3".repeat(40), "1".repeat(40)]);
    }
}
