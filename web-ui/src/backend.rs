//! What the pages need from the node: the [`Backend`] it implements, the
//! [`UiError`] its calls fail with, and the state every handler shares.
//! Its own module, so that the handlers and pages name it here rather than
//! through the crate root, which names them.

use std::sync::Arc;

use tandem_protocol::api::{
    ActivityQuery, BaseView, ContainerView, DatasetDetail, DatasetSummary, DiskUsage, DriftReport,
    EntryView, EnvView, HubView, IdentityInfo, Marks, MembersView, PeerInfo, PeerOffer,
    ProjectDetail, ProjectSummary, Settings, SyncStateView, VersionDetail, VersionDiff,
};

/// An error to show a person: what happened, with an HTTP status.
#[derive(Debug, Clone)]
pub struct UiError {
    pub status: u16,
    pub message: String,
}

impl UiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// What the pages read from the node. Calls may block (Git, disk, a
/// question to the network task); the router runs them off the async
/// threads.
pub trait Backend: Send + Sync + 'static {
    fn identity(&self) -> IdentityInfo;
    fn projects(&self) -> Result<Vec<ProjectSummary>, UiError>;
    /// Projects connected peers offer to this node.
    fn offers(&self) -> Result<Vec<PeerOffer>, UiError>;
    fn bases(&self) -> Result<Vec<BaseView>, UiError>;
    fn project(&self, name: &str) -> Result<ProjectDetail, UiError>;
    /// The project's README (Markdown), if it has one.
    fn readme(&self, name: &str) -> Result<Option<String>, UiError>;
    fn environment(&self, name: &str) -> Result<EnvView, UiError>;
    /// The newest commit that changed a file, for "What changed last".
    fn last_change(&self, name: &str, path: &str) -> Result<Option<String>, UiError>;
    /// Packages the running container gained or lost against the
    /// environment (drift), not yet pinned or ignored.
    fn drift(&self, name: &str) -> Result<DriftReport, UiError>;
    /// The project's running container, if any.
    fn container(&self, name: &str) -> Result<Option<ContainerView>, UiError>;
    fn sync_state(&self, name: &str) -> Result<SyncStateView, UiError>;
    fn members(&self, name: &str) -> Result<MembersView, UiError>;
    fn activity(&self, name: &str, query: &ActivityQuery) -> Result<Vec<EntryView>, UiError>;
    fn marks(&self, name: &str) -> Result<Marks, UiError>;
    /// One version as it was (`version` as a person typed it).
    fn version(&self, name: &str, version: &str) -> Result<VersionDetail, UiError>;
    /// What changed from one version to another.
    fn compare(&self, name: &str, from: &str, to: &str) -> Result<VersionDiff, UiError>;
    /// Up to `limit` bytes of a file of the project (`section/path`).
    fn read_file(&self, name: &str, path: &str, limit: u64) -> Result<Vec<u8>, UiError>;
    fn peers(&self) -> Result<Vec<PeerInfo>, UiError>;
    /// This node's dialable addresses.
    fn own_addresses(&self) -> Result<Vec<String>, UiError>;
    fn datasets(&self) -> Result<Vec<DatasetSummary>, UiError>;
    fn dataset(&self, name: &str, version: Option<u32>) -> Result<DatasetDetail, UiError>;
    fn disk_usage(&self) -> Result<DiskUsage, UiError>;
    fn settings(&self) -> Result<Settings, UiError>;
    /// For the form that works without JavaScript.
    fn create_project(&self, name: &str, description: &str) -> Result<ProjectSummary, UiError>;
    /// For the form that works without JavaScript.
    fn add_note(&self, name: &str, text: &str, tags: Vec<String>) -> Result<EntryView, UiError>;
    /// Whether this node runs as a hub (the header then links the Hub
    /// page). A backend that is never a hub need not say.
    fn is_hub(&self) -> bool {
        false
    }
    /// A hub's account of itself (the Hub page); `None` on a plain node.
    fn hub(&self) -> Result<Option<HubView>, UiError> {
        Ok(None)
    }
}

pub(crate) struct Ui<B> {
    pub backend: Arc<B>,
    pub csrf: String,
}

impl<B> Clone for Ui<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            csrf: self.csrf.clone(),
        }
    }
}
