//! What went wrong in a node operation, sorted by whose fault it is.
//!
//! Every error says whose fault it is ([`ServiceError::fault`]), and that
//! one answer picks the HTTP status for the JSON API and for the web UI
//! alike:
//!
//! - the user's ([`Fault::BadRequest`], [`Fault::NotFound`],
//!   [`Fault::Conflict`], [`Fault::Unprocessable`]): the request names
//!   something that is not there or asks for what Tandem refuses; the
//!   message says what to change;
//! - [`Fault::Unavailable`] (503): something the node needs is not there
//!   right now (Docker, the running node's network, the home another
//!   process holds, the peers that hold a file); the same request may
//!   work later;
//! - the node's own ([`Fault::Node`], 500): a bug, a full or broken disk,
//!   a task that died. It is logged where it is answered
//!   ([`ServiceError::answer`]), so none goes unseen.
//!
//! Errors keep what they are about as fields and their cause as a source,
//! rather than flattened into text, so the classification can look inside.

use tandem_protocol::access::AccessError;
use tandem_protocol::activity::EntryError;
use tandem_protocol::dataset::DatasetError;
use tandem_protocol::identity::KeyError;
use tandem_protocol::path::PathError;
use tandem_protocol::project::ProjectError;
use tandem_protocol::signed::SignedError;

use crate::activity::feed::FeedError;
use crate::blobs::endpoint::EndpointError;
use crate::blobs::fetch::FetchError;
use crate::env::EnvError;
use crate::home::StoreError;
use crate::p2p::NetError;
use crate::projects::project::ProjectOpenError;
use crate::projects::repo::RepoError;
use crate::projects::versions::error::VersionError;

/// A typed cause kept behind a box: for error types of modules that
/// themselves name [`ServiceError`] (naming theirs here would make an
/// import circle), and for library errors of many types.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Whose fault an error is, which decides how it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request is wrong: bad input, or something Tandem refuses (400).
    BadRequest,
    /// The request names something that is not here (404).
    NotFound,
    /// The request clashes with the state it would change (409).
    Conflict,
    /// The request was fine but its content did not work out, like an
    /// environment whose build fails (422).
    Unprocessable,
    /// Something the node needs is not there right now (503).
    Unavailable,
    /// The node itself failed (500); logged.
    Node,
}

impl Fault {
    /// The HTTP status that answers it.
    pub fn status(self) -> u16 {
        match self {
            Fault::BadRequest => 400,
            Fault::NotFound => 404,
            Fault::Conflict => 409,
            Fault::Unprocessable => 422,
            Fault::Unavailable => 503,
            Fault::Node => 500,
        }
    }
}

/// What went wrong in a node operation; [`ServiceError::fault`] says whose
/// fault it is.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    // The user's: said in a sentence that tells them what to do.
    #[error("{0}")]
    BadRequest(String),
    #[error("no project named {0:?} (see `tandem project list`)")]
    NoSuchProject(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NoSuchFile(String),
    /// Input that did not parse or was refused, said with what it was.
    #[error("{what}: {source}")]
    Invalid {
        what: String,
        #[source]
        source: Cause,
    },
    /// A typed refusal from a module below (an archive, a sync conflict).
    #[error("{0}")]
    Refused(#[source] Cause),
    #[error("{source}. Ask your colleague for the key that `tandem id` prints.")]
    PeerKey {
        #[source]
        source: KeyError,
    },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// Refused by the access rules, or the node's own signature failed.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// An activity entry refused, or the node's own signature failed.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// A version that is not there, or a restore that cannot run now.
    #[error(transparent)]
    Version(#[from] VersionError),

    // Unavailable: the same request may work later.
    /// Only `tandem up` runs the network and the blob endpoint.
    #[error("{what} needs the running node: start it with `tandem up`, then try again")]
    NotRunning { what: &'static str },
    /// No peer could give what was asked for.
    #[error("{what}: {source}")]
    Fetch {
        what: &'static str,
        #[source]
        source: FetchError,
    },

    // The node's own.
    /// A blocking task panicked or was cancelled.
    #[error("internal error: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// Signing with the node's own key failed.
    #[error("signing {what}: {source}")]
    Sign {
        what: &'static str,
        #[source]
        source: SignedError,
    },
    /// A step of the node's own work failed, said with what it was doing.
    #[error("{doing}: {source}")]
    Failed {
        doing: String,
        #[source]
        source: Cause,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    // Sorted by what they say (see `fault`).
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(transparent)]
    Blobs(#[from] crate::blobs::BlobStoreError),
    #[error(transparent)]
    Track(#[from] crate::blobs::track::TrackError),
    /// A path beneath a project refused or unusable (see `beneath`).
    #[error(transparent)]
    Beneath(#[from] crate::beneath::BeneathError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Open(#[from] ProjectOpenError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Env(#[from] EnvError),
}

/// Here rather than in `env`, so that `env` never names this module.
impl From<tandem_protocol::env::EnvError> for ServiceError {
    fn from(e: tandem_protocol::env::EnvError) -> Self {
        ServiceError::Env(EnvError::Spec(e))
    }
}

impl ServiceError {
    /// Input that did not parse or was refused: `what` says which.
    pub fn invalid(what: impl Into<String>, source: impl Into<Cause>) -> Self {
        ServiceError::Invalid {
            what: what.into(),
            source: source.into(),
        }
    }

    /// A typed refusal (the user's fault) from a module below.
    pub fn refused(source: impl Into<Cause>) -> Self {
        ServiceError::Refused(source.into())
    }

    /// The node's own failure while `doing` something.
    pub fn failed(doing: impl Into<String>, source: impl Into<Cause>) -> Self {
        ServiceError::Failed {
            doing: doing.into(),
            source: source.into(),
        }
    }

    /// Whose fault this is: the one place that decides, for the API and
    /// the web UI alike.
    pub fn fault(&self) -> Fault {
        use ServiceError as E;
        match self {
            E::BadRequest(_)
            | E::Invalid { .. }
            | E::Refused(_)
            | E::PeerKey { .. }
            | E::Path(_)
            | E::Project(_)
            | E::Dataset(_) => Fault::BadRequest,
            E::NoSuchProject(_) | E::NoSuchFile(_) => Fault::NotFound,
            E::Conflict(_) => Fault::Conflict,
            // What the node signs itself must sign; failing is its fault.
            E::Access(AccessError::Signature(_)) | E::Entry(EntryError::Signature(_)) => {
                Fault::Node
            }
            E::Access(_) | E::Entry(_) => Fault::BadRequest,
            E::Version(e) if e.is_not_found() => Fault::NotFound,
            E::Version(e) if e.is_clash() => Fault::Conflict,
            E::Version(_) => Fault::Node,
            E::NotRunning { .. } | E::Fetch { .. } => Fault::Unavailable,
            E::Join(_) | E::Sign { .. } | E::Failed { .. } | E::Io { .. } => Fault::Node,
            E::Net(NetError::BadAddress(_)) => Fault::BadRequest,
            // A peer that cannot be dialled or does not answer.
            E::Net(NetError::Request(_)) => Fault::Unavailable,
            E::Net(NetError::Stopped | NetError::Setup(_)) => Fault::Node,
            E::Endpoint(EndpointError::Connect { .. }) => Fault::Unavailable,
            E::Endpoint(EndpointError::Bind { .. }) => Fault::Node,
            E::Env(EnvError::DockerUnavailable { .. }) => Fault::Unavailable,
            E::Env(EnvError::BuildFailed { .. }) => Fault::Unprocessable,
            E::Env(EnvError::NoDrift(_)) => Fault::NotFound,
            E::Env(e) if e.is_users() => Fault::BadRequest,
            // The repository holds what Tandem refuses to obey: the user's to fix.
            E::Repo(e) if e.is_refusal() => Fault::Conflict,
            // A path refused for leading through a link or out of the project.
            E::Beneath(e) if e.is_refusal() => Fault::BadRequest,
            E::Track(e) if e.as_refusal().is_some() => Fault::BadRequest,
            E::Blobs(e) if e.as_refusal().is_some() => Fault::BadRequest,
            // Another tandem process holds the home for now.
            E::Store(StoreError::Busy(_)) => Fault::Unavailable,
            E::Env(_)
            | E::Repo(_)
            | E::Beneath(_)
            | E::Track(_)
            | E::Blobs(_)
            | E::Store(_)
            | E::Open(_)
            | E::Feed(_) => Fault::Node,
        }
    }

    /// The HTTP status that answers this error. The API and the web UI
    /// answer every error through here, so a node fault is logged (with
    /// its causes) exactly once, as it is answered.
    pub fn answer(&self) -> u16 {
        let fault = self.fault();
        match fault {
            Fault::Node => tracing::error!(error = %self, causes = %causes(self), "request failed"),
            Fault::Unavailable => tracing::info!(error = %self, "request could not be served now"),
            _ => {}
        }
        fault.status()
    }
}

/// The chain of causes beneath an error, for the log.
fn causes(error: &dyn std::error::Error) -> String {
    let mut chain = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        chain.push(cause.to_string());
        next = cause.source();
    }
    chain.join(" <- ")
}

pub fn io_context(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServiceError {
    let context = context.into();
    move |source| ServiceError::Io { context, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whose_fault_picks_the_status() {
        let user = ServiceError::BadRequest("name at least one package".into());
        assert_eq!(user.answer(), 400);
        assert_eq!(ServiceError::NoSuchProject("x".into()).answer(), 404);
        assert_eq!(ServiceError::Conflict("here".into()).answer(), 409);
        let offline = ServiceError::NotRunning { what: "this" };
        assert_eq!(offline.fault(), Fault::Unavailable);
        assert_eq!(
            offline.to_string(),
            "this needs the running node: start it with `tandem up`, then try again"
        );
        let docker = ServiceError::Env(EnvError::DockerUnavailable {
            address: "unix:///nowhere".into(),
            detail: "refused".into(),
        });
        assert_eq!(docker.answer(), 503);
        assert_eq!(ServiceError::from(NetError::Stopped).answer(), 500);
        let busy = StoreError::Busy(std::path::PathBuf::from("/home/ada/.tandem"));
        assert_eq!(ServiceError::from(busy).answer(), 503);
        assert_eq!(
            ServiceError::from(NetError::BadAddress("x".into())).answer(),
            400
        );
        let signature = || SignedError::Malformed("no".into());
        assert_eq!(
            ServiceError::from(AccessError::Signature(signature())).fault(),
            Fault::Node
        );
        assert_eq!(
            ServiceError::from(AccessError::UnknownRole("boss".into())).fault(),
            Fault::BadRequest
        );
        assert_eq!(
            ServiceError::Sign {
                what: "refs",
                source: signature()
            }
            .fault(),
            Fault::Node
        );
    }

    #[test]
    fn context_stays_a_field_and_the_words_stay() {
        let e = ServiceError::invalid("a/../b", PathError::Climbs("a/../b".into()));
        assert_eq!(
            e.to_string(),
            "a/../b: path \"a/../b\" climbs out of its folder with '..'"
        );
        let source = std::error::Error::source(&e).expect("kept as a source");
        assert!(source.downcast_ref::<PathError>().is_some());
        let key = "nope"
            .parse::<tandem_protocol::PeerKey>()
            .expect_err("not a key");
        let e = ServiceError::PeerKey { source: key };
        assert!(
            e.to_string()
                .ends_with(". Ask your colleague for the key that `tandem id` prints."),
            "{e}"
        );
        assert_eq!(e.fault(), Fault::BadRequest);
        let failed = ServiceError::failed("storing the version", "disk full".to_owned());
        assert_eq!(failed.to_string(), "storing the version: disk full");
        assert_eq!(failed.fault(), Fault::Node);
        assert_eq!(causes(&failed), "disk full");
    }
}
