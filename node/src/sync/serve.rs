//! Answering peers. Requests about a project are answered by the
//! protocol's serving function (`tandem_protocol::sync::serve`, which the
//! simulator runs too) over [`Served`], this node's view of the project;
//! the access gate and the writer filter are applied there. What is left
//! here is opening the project a request names and the requests about the
//! node itself: the projects it offers (each passing the same gate),
//! announcements and the blob endpoint.

use std::sync::{Arc, Mutex};

use tandem_protocol::access::{Access, Roles};
use tandem_protocol::signed::Signed;
use tandem_protocol::sync::{self as protocol, BRANCH, ServeView};
use tandem_protocol::wire::{FeedBundle, Offer, Oid, Refs, Request, Response, SignedRefs};
use tandem_protocol::{PeerKey, ProjectId};

use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::service::{Service, now_ms};
use crate::sync::git;

/// A project held here, as the serving code sees it: its roles are judged
/// once, when a request is taken up.
struct Served<'a> {
    service: &'a Service,
    project: &'a Project,
    roles: Roles,
}

impl<'a> Served<'a> {
    fn new(service: &'a Service, project: &'a Project) -> Self {
        Self {
            service,
            project,
            roles: project.access.roles(now_ms()),
        }
    }
}

impl ServeView for Served<'_> {
    type Error = ServiceError;

    fn project(&self) -> ProjectId {
        self.project.id()
    }

    fn name(&self) -> String {
        self.project.manifest.name.clone()
    }

    fn access(&self) -> &Access {
        &self.project.access
    }

    fn roles(&self) -> &Roles {
        &self.roles
    }

    fn signed_refs(&mut self) -> Result<SignedRefs, ServiceError> {
        self.service.signed_refs(self.project)
    }

    fn relayed_refs(&mut self) -> Vec<SignedRefs> {
        let me = self.service.key().public();
        crate::sync::writer_refs::load(self.project.repo.path())
            .into_values()
            .filter(|refs| refs.payload.peer != me)
            .collect()
    }

    fn pack(&mut self, want: &[Oid], have: &[Oid]) -> Result<Vec<u8>, ServiceError> {
        timed("build pack", || {
            git::build_pack_of(&self.project.repo, want, have)
        })
        .map_err(ServiceError::from)
    }

    fn feed_writers(&self) -> Vec<PeerKey> {
        self.project.feed.writers().copied().collect()
    }

    fn feed_beyond(
        &mut self,
        writer: &PeerKey,
        theirs: &[String],
    ) -> Result<Option<FeedBundle>, ServiceError> {
        let Some(bundle) = self.project.feed.bundle_beyond(writer, theirs)? else {
            return Ok(None);
        };
        let Some(heads) = self.project.feed.signed_heads(writer, self.service.key()) else {
            return Ok(None);
        };
        Ok(Some(FeedBundle { heads, bundle }))
    }
}

impl Service {
    fn open_by_id(&self, id: &ProjectId) -> Option<Arc<Mutex<Project>>> {
        let name = self.find_by_id(id).ok().flatten()?;
        self.project(name.as_str()).ok()
    }

    /// Answers a peer's request. Unknown projects and projects the peer may
    /// not read get the same `Denied`.
    pub fn serve(&self, requester: &PeerKey, request: Request) -> Response {
        match &request {
            Request::Announce { project } => {
                self.on_announce(requester, project);
                return Response::Ack;
            }
            Request::Projects => {
                return Response::Projects {
                    offers: self.offers_for(requester),
                };
            }
            Request::BlobEndpoint => return self.blob_endpoint_response(),
            Request::Join { project, secret } => {
                return self.serve_join(requester, project, secret);
            }
            Request::Access { .. }
            | Request::Refs { .. }
            | Request::Pack { .. }
            | Request::Feed { .. } => {}
        }
        let held = protocol::project_of(&request).and_then(|id| self.open_by_id(&id));
        let Some(handle) = held else {
            return protocol::serve::<Served>(requester, request, None);
        };
        let project = self.lock_project(&handle);
        let mut served = Served::new(self, &project);
        protocol::serve(requester, request, Some(&mut served))
    }

    /// The projects `requester` may read here (see `protocol::offer`): a
    /// peer without a role in any gets an empty list, as from a node that
    /// holds none.
    fn offers_for(&self, requester: &PeerKey) -> Vec<Offer> {
        let mut offers = Vec::new();
        for name in self.project_names().unwrap_or_default() {
            let Ok(handle) = self.project(name.as_str()) else {
                continue;
            };
            let project = self.lock_project(&handle);
            offers.extend(protocol::offer(requester, &Served::new(self, &project)));
        }
        offers
    }

    /// This node's branch head for the project, signed for it.
    pub(crate) fn signed_refs(&self, project: &Project) -> Result<SignedRefs, ServiceError> {
        let heads = git::head(&project.repo)
            .map(|h| vec![(BRANCH.to_owned(), h.to_string())])
            .unwrap_or_default();
        let refs = Refs {
            project: project.id(),
            peer: self.key().public(),
            heads,
            time_ms: now_ms(),
        };
        Signed::sign(refs, self.key()).map_err(|source| ServiceError::Sign {
            what: "refs",
            source,
        })
    }
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let out = f();
    tracing::debug!(elapsed = ?started.elapsed(), "{what}");
    out
}
