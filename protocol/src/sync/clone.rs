//! Cloning a project from a peer that offers it, as a sans-IO driver next
//! to [`Session`](super::Session).
//!
//! The node (and the simulator) gather `Projects` offers from the peers
//! they reach, then drive a [`CloneSession`]: it picks the source, asks for
//! its signed refs and the pack of its history, and has the driver unpack
//! that into a staging copy and install it, checking each step; once the
//! copy is installed, the driver runs an ordinary [`Session`] with the same
//! peer (access statements, then the activity feed). What protects the
//! cloner lives here, so every driver enforces it alike:
//! - the owner's offer is preferred: a reader also offers the project, but
//!   only a writer's history can be trusted for a first clone;
//! - refs count only if the source signed them for this project;
//! - the history must be the project asked for (its manifest names the
//!   same id);
//! - the copy is kept only if whoever signed the head cloned may write in
//!   the access view that came with the history: the source itself, or a
//!   writer whose signed refs the source relays (a hub's replica, a
//!   reader, serves a clone that way; see `sync::relay`).
//!
//! [`Session`]: super::Session

use crate::access::Role;
use crate::identity::PeerKey;
use crate::project::ProjectId;
use crate::wire::{Offer, RefsError, Request, Response, SignedRefs};

use crate::sync::session::{BRANCH, LocalView};

/// Why a clone was not made. Each is the source's doing or the network's,
/// except [`CloneError::NotOffered`] (nobody reachable offers it).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloneError {
    #[error(
        "{project}: no connected peer offers it to you (is it shared with you, and is the peer online? see `tandem peers`)"
    )]
    NotOffered { project: ProjectId },
    /// The source answered with a denial or something else than asked.
    #[error("the peer refused to send the project's history")]
    Refused,
    /// The request did not reach the source, or its answer did not come.
    #[error("{0}")]
    Transport(String),
    #[error("the peer's refs are invalid: {0}")]
    BadRefs(RefsError),
    #[error("the peer has no history for this project")]
    NoHistory,
    #[error("the peer sent another project's history")]
    OtherProject,
    #[error(
        "no writer vouches for the history the peer offers (it may not write, and relays no writer's signed head), so it cannot be trusted; try again when a writer is online"
    )]
    NotAWriter,
    /// The driver fed an answer after the clone was over.
    #[error("the clone is already over")]
    Over,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneStep {
    /// Send this request to the source and feed back its answer.
    Send(Request),
    /// Unpack the history into a staging copy whose branch points at
    /// `head`, then call [`CloneSession::check_unpacked`] with the id its
    /// manifest names.
    Unpack { head: String, pack: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Refs,
    Pack { head: String },
    Unpacking,
}

/// One clone of one project from one source.
#[derive(Debug, Clone)]
pub struct CloneSession {
    project: ProjectId,
    source: PeerKey,
    /// The owner the source's offer names (only a preference: the head
    /// cloned must still be signed by a writer).
    owner: PeerKey,
    step: Step,
    /// The refs whose head is cloned: the source's, or a writer's it
    /// relayed.
    vouched: Option<SignedRefs>,
}

impl CloneSession {
    /// Picks the source among `offers` (what each peer answered to
    /// `Projects`), preferring the owner and otherwise the first to offer
    /// `project`; the first request asks for its signed refs.
    pub fn start(
        project: ProjectId,
        offers: &[(PeerKey, Offer)],
    ) -> Result<(Self, Request), CloneError> {
        let offered = || offers.iter().filter(|(_, o)| o.project == project);
        let (source, owner) = offered()
            .find(|(peer, o)| *peer == o.owner)
            .or_else(|| offered().next())
            .map(|(peer, o)| (*peer, o.owner))
            .ok_or(CloneError::NotOffered { project })?;
        let session = Self {
            project,
            source,
            owner,
            step: Step::Refs,
            vouched: None,
        };
        Ok((session, Request::Refs { project }))
    }

    /// The peer the history comes from.
    pub fn source(&self) -> PeerKey {
        self.source
    }

    pub fn project(&self) -> ProjectId {
        self.project
    }

    /// Feeds the source's answer to the last request.
    pub fn on_response(&mut self, response: Response) -> Result<CloneStep, CloneError> {
        match (&self.step, response) {
            (Step::Refs, Response::Refs { refs, relayed }) => {
                refs.check(&self.project, &self.source)
                    .map_err(CloneError::BadRefs)?;
                // Whose head to clone: the owner's own refs if the owner is
                // the source; else the newest writer's refs the source
                // relays (a reader's own refs count for nothing, and a
                // writer source's own head comes with the ordinary sync
                // that follows); else the source's own. Whose signature
                // counts is judged once the access view has arrived with
                // the history (`check_installed`).
                let relayed_newest = relayed
                    .iter()
                    .take(crate::wire::MAX_RELAYED)
                    .filter(|r| r.payload.peer != self.source)
                    .filter(|r| r.check(&self.project, &r.payload.peer).is_ok())
                    .filter(|r| r.head(BRANCH).is_some())
                    .max_by_key(|r| r.payload.time_ms);
                let chosen = match relayed_newest {
                    Some(relayed) if self.source != self.owner => relayed.clone(),
                    _ => refs,
                };
                let head = chosen.head(BRANCH).ok_or(CloneError::NoHistory)?.to_owned();
                self.vouched = Some(chosen);
                self.step = Step::Pack { head: head.clone() };
                Ok(CloneStep::Send(Request::Pack {
                    project: self.project,
                    want: vec![head],
                    have: vec![],
                }))
            }
            (Step::Pack { head }, Response::Pack { pack }) => {
                let head = head.clone();
                self.step = Step::Unpacking;
                Ok(CloneStep::Unpack { head, pack })
            }
            (Step::Unpacking, _) => Err(CloneError::Over),
            (_, _) => Err(CloneError::Refused),
        }
    }

    /// A request that did not reach the source, or whose answer did not
    /// come: the clone is over.
    pub fn on_failure(&mut self, message: String) -> CloneError {
        self.step = Step::Unpacking;
        CloneError::Transport(message)
    }

    /// Checks the unpacked history is the project asked for: `found` is the
    /// id its manifest names (the driver reads it from the history).
    pub fn check_unpacked(&self, found: &ProjectId) -> Result<(), CloneError> {
        if *found == self.project {
            Ok(())
        } else {
            Err(CloneError::OtherProject)
        }
    }

    /// Decides whether the installed copy is kept: whoever signed the head
    /// cloned (the source, or the writer whose refs it relayed) must be
    /// able to write in the access view that came with the history
    /// (`local`). The driver removes the copy otherwise.
    pub fn check_installed(&self, local: &dyn LocalView) -> Result<(), CloneError> {
        let signer = self
            .vouched
            .as_ref()
            .map_or(self.source, |refs| refs.payload.peer);
        if local.role_of(&signer).is_some_and(Role::can_write) {
            Ok(())
        } else {
            Err(CloneError::NotAWriter)
        }
    }

    /// The refs whose head was cloned, to keep as taken from their writer.
    pub fn vouched(&self) -> Option<&SignedRefs> {
        self.vouched.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Access, Action, Roles, StatementId};
    use crate::identity::SecretKey;
    use crate::project::Genesis;
    use crate::signed::Signed;
    use crate::wire::{Refs, SignedRefs, WriterHeads};

    fn key(n: u8) -> SecretKey {
        SecretKey::from_bytes([n; 32])
    }

    fn project(n: u8) -> ProjectId {
        Genesis::create(&"survey".parse().expect("name"), &key(n), 0, [n; 16]).project_id()
    }

    fn offer(project: ProjectId, owner: u8) -> Offer {
        Offer {
            project,
            name: "survey".into(),
            owner: key(owner).public(),
            role: Some(Role::Reader),
        }
    }

    fn refs(project: ProjectId, signer: &SecretKey, head: Option<&str>) -> SignedRefs {
        Signed::sign(
            Refs {
                project,
                peer: signer.public(),
                heads: head
                    .map(|h| vec![(BRANCH.to_owned(), h.to_owned())])
                    .unwrap_or_default(),
                time_ms: 0,
            },
            signer,
        )
        .expect("sign")
    }

    struct Copy(Access);

    impl LocalView for Copy {
        fn access(&self) -> &Access {
            &self.0
        }
        fn now_ms(&self) -> i64 {
            0
        }
        fn access_heads(&self) -> Vec<StatementId> {
            self.0.heads()
        }
        fn has_commit(&self, _: &str) -> bool {
            false
        }
        fn head(&self) -> Option<String> {
            None
        }
        fn roles(&self) -> Roles {
            self.0.roles(0)
        }
        fn feed_heads(&self) -> Vec<WriterHeads> {
            vec![]
        }
    }

    #[test]
    fn the_owner_is_preferred_and_a_project_nobody_offers_is_refused() {
        let id = project(1);
        let offers = vec![
            (key(3).public(), offer(id, 1)),
            (key(4).public(), offer(project(9), 9)),
            (key(1).public(), offer(id, 1)),
        ];
        let (clone, first) = CloneSession::start(id, &offers).expect("offered");
        assert_eq!(clone.source(), key(1).public());
        assert_eq!(first, Request::Refs { project: id });
        // Without the owner, the first to offer it.
        let (clone, _) = CloneSession::start(id, &offers[..2]).expect("offered");
        assert_eq!(clone.source(), key(3).public());
        let err = CloneSession::start(project(2), &offers).expect_err("not offered");
        assert_eq!(
            err,
            CloneError::NotOffered {
                project: project(2)
            }
        );
        assert!(err.to_string().contains("no connected peer offers it"));
    }

    #[test]
    fn a_clone_asks_refs_then_the_whole_history_and_checks_each_answer() {
        let id = project(1);
        let owner = key(1);
        let offers = vec![(owner.public(), offer(id, 1))];
        let head = "a".repeat(40);
        let (mut clone, _) = CloneSession::start(id, &offers).expect("offered");
        let next = clone
            .on_response(Response::Refs {
                refs: refs(id, &owner, Some(&head)),
                relayed: vec![],
            })
            .expect("refs taken");
        assert_eq!(
            next,
            CloneStep::Send(Request::Pack {
                project: id,
                want: vec![head.clone()],
                have: vec![],
            })
        );
        let next = clone
            .on_response(Response::Pack { pack: vec![1, 2] })
            .expect("pack taken");
        assert_eq!(
            next,
            CloneStep::Unpack {
                head,
                pack: vec![1, 2]
            }
        );
        assert_eq!(clone.check_unpacked(&id), Ok(()));
        assert_eq!(
            clone.check_unpacked(&project(2)),
            Err(CloneError::OtherProject)
        );
        assert_eq!(
            clone.on_response(Response::Pack { pack: vec![] }),
            Err(CloneError::Over)
        );
    }

    #[test]
    fn bad_refs_denials_and_empty_histories_end_the_clone() {
        let id = project(1);
        let owner = key(1);
        let offers = vec![(owner.public(), offer(id, 1))];
        let start = || CloneSession::start(id, &offers).expect("offered").0;
        let impostor = key(5);
        let signed_by_another = Response::Refs {
            refs: refs(id, &impostor, Some(&"a".repeat(40))),
            relayed: vec![],
        };
        assert!(matches!(
            start().on_response(signed_by_another),
            Err(CloneError::BadRefs(RefsError::WrongPeer { .. }))
        ));
        let for_another_project = Response::Refs {
            refs: refs(project(2), &owner, Some(&"a".repeat(40))),
            relayed: vec![],
        };
        assert!(matches!(
            start().on_response(for_another_project),
            Err(CloneError::BadRefs(RefsError::WrongProject))
        ));
        let abbreviated = Response::Refs {
            refs: refs(id, &owner, Some("abc1234")),
            relayed: vec![],
        };
        assert!(matches!(
            start().on_response(abbreviated),
            Err(CloneError::BadRefs(RefsError::BadOid(_)))
        ));
        let empty = Response::Refs {
            refs: refs(id, &owner, None),
            relayed: vec![],
        };
        assert_eq!(start().on_response(empty), Err(CloneError::NoHistory));
        assert_eq!(
            start().on_response(Response::Denied),
            Err(CloneError::Refused)
        );
        assert_eq!(
            start().on_failure("timed out".into()),
            CloneError::Transport("timed out".into())
        );
    }

    /// The access of a project founded by `owner`, where key 2 writes and
    /// key 3 reads.
    fn owner_writer_reader(id: ProjectId, owner: &SecretKey) -> Copy {
        let mut access = Access::new(id, owner.public());
        for (n, role) in [(2, Role::Writer), (3, Role::Reader)] {
            for v in access
                .issue(key(n).public(), Action::Grant { role }, owner, 0, None)
                .expect("grant")
            {
                access.insert(v);
            }
        }
        Copy(access)
    }

    #[test]
    fn a_copy_is_kept_only_if_its_source_may_write() {
        let id = project(1);
        let owner = key(1);
        let copy = owner_writer_reader(id, &owner);
        for (source, kept) in [(1, true), (2, true), (3, false), (4, false)] {
            let offers = vec![(key(source).public(), offer(id, 1))];
            let (clone, _) = CloneSession::start(id, &offers).expect("offered");
            let verdict = clone.check_installed(&copy);
            assert_eq!(verdict.is_ok(), kept, "source {source}: {verdict:?}");
            if !kept {
                assert_eq!(verdict, Err(CloneError::NotAWriter));
            }
        }
    }

    /// A hub's replica (a reader) serves a clone: the head cloned is the
    /// newest one a writer signed and the reader relays, and the copy is
    /// kept because that writer may write; the reader's own head, or a
    /// head only a reader or a stranger signed, is never kept.
    #[test]
    fn a_reader_serves_a_clone_only_of_a_head_a_writer_signed() {
        let id = project(1);
        let (owner, writer, reader, stranger) = (key(1), key(2), key(3), key(4));
        let copy = owner_writer_reader(id, &owner);
        let offers = vec![(reader.public(), offer(id, 1))];
        let signed = |who: &SecretKey, head: char, time_ms: i64| {
            let mut r = refs(id, who, Some(&head.to_string().repeat(40)));
            if r.payload.time_ms != time_ms {
                r = Signed::sign(
                    Refs {
                        time_ms,
                        ..r.payload.clone()
                    },
                    who,
                )
                .expect("signed");
            }
            r
        };
        let ask = |relayed: Vec<SignedRefs>| {
            let (mut clone, _) = CloneSession::start(id, &offers).expect("offered");
            let step = clone
                .on_response(Response::Refs {
                    refs: signed(&reader, 'c', 99),
                    relayed,
                })
                .expect("refs taken");
            (clone, step)
        };
        let want = |step: CloneStep| match step {
            CloneStep::Send(Request::Pack { want, .. }) => want,
            other => panic!("expected a pack request, got {other:?}"),
        };
        // The newest writer head is cloned, not the reader's own.
        let (clone, step) = ask(vec![signed(&owner, 'a', 10), signed(&writer, 'b', 20)]);
        assert_eq!(want(step), vec!["b".repeat(40)]);
        assert_eq!(clone.check_installed(&copy), Ok(()));
        // Only the reader's own head, or a stranger's: not kept.
        let (clone, _) = ask(vec![]);
        assert_eq!(clone.check_installed(&copy), Err(CloneError::NotAWriter));
        let (clone, step) = ask(vec![signed(&stranger, 'd', 50)]);
        assert_eq!(want(step), vec!["d".repeat(40)]);
        assert_eq!(clone.check_installed(&copy), Err(CloneError::NotAWriter));
        // A head the relay altered no longer carries the writer's signature.
        let mut forged = signed(&writer, 'b', 20);
        forged.payload.heads[0].1 = "e".repeat(40);
        let (_, step) = ask(vec![forged]);
        assert_eq!(want(step), vec!["c".repeat(40)], "forged refs are skipped");
    }
}
