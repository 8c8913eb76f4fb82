//! Answering a peer's requests for a project, as one sans-IO function: the
//! serving side of sync.
//!
//! The node answers over its projects on disk and the simulator over its
//! in-memory peers, each through a [`ServeView`]; both call [`serve`], so
//! the simulator tests the server the node runs. The decisions that protect
//! a project live here:
//! - the access gate ([`may_read`]): a peer that may not read the project,
//!   and a request for a project that is not here, get the same
//!   [`Response::Denied`], before anything of the project is looked at, so
//!   a stranger or a revoked member cannot tell the two apart;
//! - the writer filter: feed documents are served only for keys that may
//!   write now (a reader's or a revoked writer's document is never passed
//!   on, whoever asks);
//! - object ids from the wire are full ones ([`Oid`]) before a view sees
//!   them: an abbreviation would make Git pack whatever it happens to match.
//!
//! Requests about the node rather than a project (`Projects`, `Announce`,
//! `BlobEndpoint`) are the driver's, but the list of projects it offers is
//! made of [`offer`]s, which pass the same gate.

use std::collections::{HashMap, HashSet};

use crate::access::{Access, Roles};
use crate::identity::PeerKey;
use crate::project::ProjectId;
use crate::wire::{FeedBundle, Offer, Oid, Request, Response, SignedRefs};

/// The one access decision of serving: may `peer` learn anything of a
/// project whose roles are `roles` (its history, access statements,
/// feed, blobs, announcements)? Members may, and anyone if the project is
/// public. Every place that serves or names a project asks this.
pub fn may_read(roles: &Roles, peer: &PeerKey) -> bool {
    roles.can_read(peer)
}

/// Everyone [`may_read`] admits, as a set of keys: `None` when anyone may
/// (a public project). For choosing whom to fetch a project's blobs from.
pub fn readers(roles: &Roles) -> Option<HashSet<PeerKey>> {
    if roles.public {
        None
    } else {
        Some(
            roles
                .members
                .keys()
                .filter(|key| may_read(roles, key))
                .copied()
                .collect(),
        )
    }
}

/// What serving needs to know of one project held here. Methods that read
/// storage may fail; the failure's text goes back as
/// [`Response::Failed`] (it is for the peer's logs).
pub trait ServeView {
    type Error: std::fmt::Display;
    fn project(&self) -> ProjectId;
    /// The project's name, as its manifest gives it.
    fn name(&self) -> String;
    fn access(&self) -> &Access;
    /// The roles now (expiring grants are judged at the driver's clock).
    fn roles(&self) -> &Roles;
    /// This node's branch heads for the project, signed by this node.
    fn signed_refs(&mut self) -> Result<SignedRefs, Self::Error>;
    /// Writers' refs held here, each as its writer signed it (the latest
    /// taken from each), to relay to members: see `sync::relay`.
    fn relayed_refs(&mut self) -> Vec<SignedRefs> {
        Vec::new()
    }
    /// The objects reachable from `want` and not from `have`; haves this
    /// node lacks are ignored.
    fn pack(&mut self, want: &[Oid], have: &[Oid]) -> Result<Vec<u8>, Self::Error>;
    /// Keys whose feed documents are held here.
    fn feed_writers(&self) -> Vec<PeerKey>;
    /// The part of `writer`'s document beyond the heads the requester
    /// holds (`theirs`), with the heads it ends at, signed; `None` if it
    /// holds everything.
    fn feed_beyond(
        &mut self,
        writer: &PeerKey,
        theirs: &[String],
    ) -> Result<Option<FeedBundle>, Self::Error>;
}

/// The project a request is about, if it is about one (`Access`, `Refs`,
/// `Pack` and `Feed` are answered by [`serve`]).
pub fn project_of(request: &Request) -> Option<ProjectId> {
    match request {
        Request::Access { project, .. }
        | Request::Refs { project }
        | Request::Pack { project, .. }
        | Request::Feed { project, .. } => Some(*project),
        Request::Projects
        | Request::Announce { .. }
        | Request::BlobEndpoint
        | Request::Join { .. } => None,
    }
}

/// Answers `requester`'s request about a project. `view` is the project the
/// request names, or `None` if it is not held here; either way, a requester
/// that may not read it gets [`Response::Denied`] and nothing else, as does
/// a request that is not about a project, or about another project than
/// `view`'s.
pub fn serve<V: ServeView>(
    requester: &PeerKey,
    request: Request,
    view: Option<&mut V>,
) -> Response {
    let Some(view) = view else {
        return Response::Denied;
    };
    if project_of(&request) != Some(view.project()) || !may_read(view.roles(), requester) {
        return Response::Denied;
    }
    let answer = match request {
        Request::Access { have, .. } => Ok(Response::Access {
            statements: view.access().statements_beyond(&have),
        }),
        Request::Refs { .. } => view.signed_refs().map(|refs| {
            let mut relayed = view.relayed_refs();
            relayed.truncate(crate::wire::MAX_RELAYED);
            Response::Refs { refs, relayed }
        }),
        Request::Pack { want, have, .. } => {
            let ids = Oid::parse_all(&want).and_then(|want| Ok((want, Oid::parse_all(&have)?)));
            match ids {
                Ok((want, have)) => view.pack(&want, &have).map(|pack| Response::Pack { pack }),
                Err(e) => {
                    return Response::Failed {
                        message: e.to_string(),
                    };
                }
            }
        }
        Request::Feed { have, .. } => feed_beyond(view, &have),
        Request::Projects
        | Request::Announce { .. }
        | Request::BlobEndpoint
        | Request::Join { .. } => {
            return Response::Denied;
        }
    };
    answer.unwrap_or_else(|e| Response::Failed {
        message: e.to_string(),
    })
}

/// Bundles of writers' documents beyond what the requester holds; documents
/// of keys that may not write are never served. The requester's heads are
/// looked up by writer (its first listing counts), so answering is linear
/// in the number of writers.
fn feed_beyond<V: ServeView>(
    view: &mut V,
    have: &[crate::wire::WriterHeads],
) -> Result<Response, V::Error> {
    let mut theirs: HashMap<PeerKey, &[String]> = HashMap::with_capacity(have.len());
    for heads in have {
        theirs.entry(heads.writer).or_insert(heads.heads.as_slice());
    }
    let mut bundles = Vec::new();
    for writer in view.feed_writers() {
        if !view.roles().can_write(&writer) {
            continue;
        }
        let held = theirs.get(&writer).copied().unwrap_or(&[]);
        if let Some(bundle) = view.feed_beyond(&writer, held)? {
            bundles.push(bundle);
        }
    }
    Ok(Response::Feed { bundles })
}

/// The project as it is offered to `requester` in a `Projects` answer, if
/// it [`may_read`] it: a stranger's list never names it.
pub fn offer<V: ServeView>(requester: &PeerKey, view: &V) -> Option<Offer> {
    let roles = view.roles();
    may_read(roles, requester).then(|| Offer {
        project: view.project(),
        name: view.name(),
        owner: view.access().owner(),
        role: roles.role_of(requester),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Action, Role};
    use crate::activity::FeedHeads;
    use crate::identity::SecretKey;
    use crate::project::Genesis;
    use crate::signed::Signed;
    use crate::sync::{BRANCH, Effect, GitOutcome, LocalView, Session};
    use crate::wire::{Refs, WriterHeads};

    /// A project held in memory: commits are a list (each one's history is
    /// the commits before it), feeds a count of entries per writer.
    struct Held {
        key: SecretKey,
        access: Access,
        roles: Roles,
        commits: Vec<String>,
        feeds: Vec<(PeerKey, u64)>,
        packs_built: usize,
    }

    impl Held {
        fn refresh(&mut self) {
            self.roles = self.access.roles(0);
        }
    }

    impl ServeView for Held {
        type Error = String;
        fn project(&self) -> ProjectId {
            self.access.project()
        }
        fn name(&self) -> String {
            "survey".into()
        }
        fn access(&self) -> &Access {
            &self.access
        }
        fn roles(&self) -> &Roles {
            &self.roles
        }
        fn signed_refs(&mut self) -> Result<SignedRefs, String> {
            let refs = Refs {
                project: self.project(),
                peer: self.key.public(),
                heads: self
                    .commits
                    .last()
                    .map(|head| vec![(BRANCH.to_owned(), head.clone())])
                    .unwrap_or_default(),
                time_ms: 0,
            };
            Signed::sign(refs, &self.key).map_err(|e| e.to_string())
        }
        fn pack(&mut self, want: &[Oid], have: &[Oid]) -> Result<Vec<u8>, String> {
            self.packs_built += 1;
            let upto = |oid: &Oid| self.commits.iter().position(|c| c == oid.as_str());
            let end = want.iter().filter_map(upto).max().map_or(0, |i| i + 1);
            let start = have.iter().filter_map(upto).max().map_or(0, |i| i + 1);
            Ok(self.commits[start.min(end)..end].join(",").into_bytes())
        }
        fn feed_writers(&self) -> Vec<PeerKey> {
            self.feeds.iter().map(|(w, _)| *w).collect()
        }
        fn feed_beyond(
            &mut self,
            writer: &PeerKey,
            theirs: &[String],
        ) -> Result<Option<FeedBundle>, String> {
            let Some((_, n)) = self.feeds.iter().find(|(w, _)| w == writer) else {
                return Ok(None);
            };
            let held: u64 = theirs.first().and_then(|t| t.parse().ok()).unwrap_or(0);
            Ok((held < *n).then(|| FeedBundle {
                heads: Signed {
                    payload: FeedHeads {
                        project: self.project(),
                        writer: *writer,
                        heads: vec![n.to_string()],
                    },
                    signature: crate::Signature::from_bytes([0; 64]),
                },
                bundle: n.to_le_bytes().to_vec(),
            }))
        }
    }

    /// The same copy, as the asking side of a session sees it.
    struct Client<'a>(&'a Held);

    impl LocalView for Client<'_> {
        fn access(&self) -> &Access {
            &self.0.access
        }
        fn now_ms(&self) -> i64 {
            0
        }
        fn access_heads(&self) -> Vec<crate::access::StatementId> {
            self.0.access.heads()
        }
        fn has_commit(&self, oid: &str) -> bool {
            self.0.commits.iter().any(|c| c == oid)
        }
        fn head(&self) -> Option<String> {
            self.0.commits.last().cloned()
        }
        fn roles(&self) -> Roles {
            self.0.roles.clone()
        }
        fn feed_heads(&self) -> Vec<WriterHeads> {
            vec![]
        }
    }

    const OWNER: u8 = 1;
    const WRITER: u8 = 2;
    const READER: u8 = 3;
    const REVOKED: u8 = 4;
    const STRANGER: u8 = 5;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_bytes([n; 32])
    }

    /// The owner's copy of a project with a writer, a reader and a revoked
    /// writer; `holder` is whose copy it is (its access view is the
    /// owner's).
    fn held(holder: u8) -> Held {
        let owner = key(OWNER);
        let project =
            Genesis::create(&"survey".parse().expect("name"), &owner, 0, [7; 16]).project_id();
        let mut access = Access::new(project, owner.public());
        let say = |access: &mut Access, subject: u8, action: Action| {
            for v in access
                .issue(key(subject).public(), action, &owner, 0, None)
                .expect("statement")
            {
                access.insert(v);
            }
        };
        say(&mut access, WRITER, Action::Grant { role: Role::Writer });
        say(&mut access, READER, Action::Grant { role: Role::Reader });
        say(&mut access, REVOKED, Action::Grant { role: Role::Writer });
        say(&mut access, REVOKED, Action::Revoke);
        let mut held = Held {
            key: key(holder),
            roles: access.roles(0),
            access,
            commits: vec!["a".repeat(40), "b".repeat(40)],
            feeds: [OWNER, WRITER, READER, REVOKED]
                .into_iter()
                .map(|n| (key(n).public(), 3))
                .collect(),
            packs_built: 0,
        };
        held.refresh();
        held
    }

    fn every_request(project: ProjectId) -> Vec<Request> {
        vec![
            Request::Access {
                project,
                have: vec![],
            },
            Request::Refs { project },
            Request::Pack {
                project,
                want: vec!["b".repeat(40)],
                have: vec![],
            },
            Request::Feed {
                project,
                have: vec![],
            },
        ]
    }

    #[test]
    fn a_stranger_or_a_revoked_peer_gets_nothing_that_names_the_project() {
        let mut view = held(OWNER);
        let project = view.project();
        let secrets = [
            project.to_string(),
            hex::encode(project.as_bytes()),
            "b".repeat(40),
            key(WRITER).public().to_did(),
        ];
        for asker in [STRANGER, REVOKED] {
            let asker = key(asker).public();
            for request in every_request(project) {
                let response = serve(&asker, request.clone(), Some(&mut view));
                assert_eq!(response, Response::Denied, "{request:?}");
                // The same answer as for a project this node does not hold.
                assert_eq!(serve::<Held>(&asker, request, None), Response::Denied);
                let text = serde_json::to_string(&response).expect("encodes");
                for secret in &secrets {
                    assert!(!text.contains(secret.as_str()), "{text}");
                }
            }
            assert_eq!(offer(&asker, &view), None);
        }
        assert_eq!(view.packs_built, 0, "nothing was read for them");
    }

    #[test]
    fn members_are_served_and_offered_the_project() {
        let mut view = held(OWNER);
        let project = view.project();
        let reader = key(READER).public();
        for request in every_request(project) {
            let response = serve(&reader, request.clone(), Some(&mut view));
            assert!(
                !matches!(response, Response::Denied | Response::Failed { .. }),
                "{request:?}: {response:?}"
            );
        }
        let offered = offer(&reader, &view).expect("offered to a reader");
        assert_eq!(offered.project, project);
        assert_eq!(offered.role, Some(Role::Reader));
        assert_eq!(offered.owner, key(OWNER).public());
    }

    #[test]
    fn a_request_naming_another_project_than_the_view_is_denied() {
        let mut view = held(OWNER);
        let other =
            Genesis::create(&"other".parse().expect("name"), &key(9), 0, [9; 16]).project_id();
        for request in every_request(other) {
            assert_eq!(
                serve(&key(WRITER).public(), request, Some(&mut view)),
                Response::Denied
            );
        }
        let not_scoped = [
            Request::Projects,
            Request::BlobEndpoint,
            Request::Announce {
                project: view.project(),
            },
        ];
        for request in not_scoped {
            assert_eq!(project_of(&request), None);
            assert_eq!(
                serve(&key(WRITER).public(), request, Some(&mut view)),
                Response::Denied
            );
        }
    }

    #[test]
    fn the_writer_filter_drops_documents_of_keys_that_may_not_write() {
        let mut view = held(OWNER);
        let project = view.project();
        // The asker holds the writer's document already (first listing
        // counts, a later one claiming less is ignored).
        let have = vec![
            WriterHeads {
                writer: key(WRITER).public(),
                heads: vec!["3".into()],
            },
            WriterHeads {
                writer: key(WRITER).public(),
                heads: vec!["0".into()],
            },
        ];
        let response = serve(
            &key(READER).public(),
            Request::Feed { project, have },
            Some(&mut view),
        );
        let Response::Feed { bundles } = response else {
            panic!("a feed answer: {response:?}");
        };
        let writers: Vec<PeerKey> = bundles.iter().map(|b| b.heads.payload.writer).collect();
        // The reader's and the revoked writer's documents are never served.
        assert_eq!(writers, vec![key(OWNER).public()]);
    }

    #[test]
    fn abbreviated_ids_are_refused_before_the_view_packs() {
        let mut view = held(OWNER);
        let project = view.project();
        for (want, have) in [
            (vec!["bbbbbbb".to_owned()], vec![]),
            (vec!["b".repeat(40)], vec!["HEAD".to_owned()]),
        ] {
            let response = serve(
                &key(WRITER).public(),
                Request::Pack {
                    project,
                    want,
                    have,
                },
                Some(&mut view),
            );
            assert!(
                matches!(&response, Response::Failed { message } if message.contains("not a full Git object id")),
                "{response:?}"
            );
        }
        assert_eq!(view.packs_built, 0);
    }

    /// Runs a session of `client` with `server` to the end, each request
    /// answered by [`serve`]; returns the effects that are not sends.
    fn pull(client: &Held, server: &mut Held) -> Vec<Effect> {
        let asker = client.key.public();
        let (mut session, mut effects) =
            Session::start(client.project(), server.key.public(), &Client(client));
        let mut applied = Vec::new();
        loop {
            let mut next = None;
            for effect in effects {
                match effect {
                    Effect::Send(request) => next = Some(request),
                    other => applied.push(other),
                }
            }
            let Some(request) = next else {
                return applied;
            };
            let response = serve(&asker, request, Some(&mut *server));
            effects = session.on_response(response, &Client(client));
        }
    }

    #[test]
    fn a_readers_push_is_refused() {
        // The reader made a commit and announces it; the writer pulls from
        // the reader with the same code both sides run.
        let mut reader = held(READER);
        reader.commits.push("c".repeat(40));
        let writer = held(WRITER);
        let effects = pull(&writer, &mut reader);
        assert!(
            !effects
                .iter()
                .any(|e| matches!(e, Effect::ApplyPack(_) | Effect::Merge { .. })),
            "a reader's commits were taken: {effects:?}"
        );
        assert_eq!(reader.packs_built, 0, "no pack was even asked for");
        let Some(Effect::Finished(report)) = effects.last() else {
            panic!("finished: {effects:?}");
        };
        assert_eq!(report.git, GitOutcome::NotAWriter);
        // The reader's feed document is not taken either.
        assert!(effects.iter().all(|e| {
            match e {
                Effect::ApplyFeed(bundles) => bundles
                    .iter()
                    .all(|b| b.heads.payload.writer != key(READER).public()),
                _ => true,
            }
        }));

        // The same commit from a writer is fetched and merged.
        let other = held(WRITER);
        let mut from_writer = held(OWNER);
        from_writer.commits.push("c".repeat(40));
        let effects = pull(&other, &mut from_writer);
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::Merge { head, .. } if head == &"c".repeat(40))),
            "{effects:?}"
        );
        assert_eq!(from_writer.packs_built, 1);
    }

    #[test]
    fn readers_are_the_keys_may_read_admits() {
        let mut view = held(OWNER);
        let admitted = readers(view.roles()).expect("a private project");
        for n in [OWNER, WRITER, READER, REVOKED, STRANGER] {
            let peer = key(n).public();
            assert_eq!(
                admitted.contains(&peer),
                may_read(view.roles(), &peer),
                "{n}"
            );
        }
        assert!(!admitted.contains(&key(STRANGER).public()));
        let owner = key(OWNER);
        for v in view
            .access
            .issue(
                owner.public(),
                Action::Visibility { public: true },
                &owner,
                1,
                None,
            )
            .expect("visibility")
        {
            view.access.insert(v);
        }
        view.refresh();
        assert_eq!(readers(view.roles()), None);
        assert!(may_read(view.roles(), &key(STRANGER).public()));
    }
}
