//! The web UI's view of the node: [`tandem_web::Backend`] over [`Service`].
//!
//! The router calls these on blocking threads; the few that need the
//! network task or Docker wait for it there with the runtime's handle.

use std::sync::Arc;

use tandem_protocol::api::{
    ActivityQuery, BaseView, ContainerView, DatasetDetail, DatasetSummary, DiskUsage, DriftReport,
    EntryView, EnvView, HubView, IdentityInfo, Marks, MembersView, PeerInfo, PeerOffer,
    ProjectDetail, ProjectSummary, Settings, SyncStateView, VersionDetail, VersionDiff,
};
use tandem_web::{Backend, UiError};

use crate::error::ServiceError;
use crate::service::Service;

pub struct WebBackend(pub Arc<Service>);

/// A page answers an error with the status the API gives it (and a node
/// fault is logged the same way): both ask [`ServiceError::answer`].
impl From<ServiceError> for UiError {
    fn from(e: ServiceError) -> Self {
        UiError {
            status: e.answer(),
            message: e.to_string(),
        }
    }
}

/// Waits for async node work from one of the router's blocking threads.
fn wait<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Handle::current().block_on(future)
}

impl Backend for WebBackend {
    fn identity(&self) -> IdentityInfo {
        self.0.identity()
    }

    fn projects(&self) -> Result<Vec<ProjectSummary>, UiError> {
        Ok(self.0.list_projects()?)
    }

    fn offers(&self) -> Result<Vec<PeerOffer>, UiError> {
        Ok(wait(self.0.offers())?)
    }

    fn bases(&self) -> Result<Vec<BaseView>, UiError> {
        Ok(wait(self.0.bases()))
    }

    fn project(&self, name: &str) -> Result<ProjectDetail, UiError> {
        Ok(self.0.show_project(name)?)
    }

    fn version(&self, name: &str, version: &str) -> Result<VersionDetail, UiError> {
        Ok(self.0.version_detail(name, version)?)
    }

    fn compare(&self, name: &str, from: &str, to: &str) -> Result<VersionDiff, UiError> {
        Ok(self.0.version_diff(name, from, to)?)
    }

    fn readme(&self, name: &str) -> Result<Option<String>, UiError> {
        Ok(self.0.readme(name)?)
    }

    fn environment(&self, name: &str) -> Result<EnvView, UiError> {
        Ok(wait(self.0.env_show(name))?)
    }

    fn last_change(&self, name: &str, path: &str) -> Result<Option<String>, UiError> {
        Ok(self.0.last_change(name, path)?)
    }

    fn drift(&self, name: &str) -> Result<DriftReport, UiError> {
        Ok(self.0.env_drift(name)?)
    }

    fn container(&self, name: &str) -> Result<Option<ContainerView>, UiError> {
        Ok(wait(self.0.containers())?
            .into_iter()
            .find(|c| c.project == name))
    }

    fn sync_state(&self, name: &str) -> Result<SyncStateView, UiError> {
        Ok(self.0.sync_state(name)?)
    }

    fn members(&self, name: &str) -> Result<MembersView, UiError> {
        Ok(self.0.members(name)?)
    }

    fn activity(&self, name: &str, query: &ActivityQuery) -> Result<Vec<EntryView>, UiError> {
        Ok(self.0.activity(name, query)?)
    }

    fn marks(&self, name: &str) -> Result<Marks, UiError> {
        Ok(self.0.marks(name)?)
    }

    fn read_file(&self, name: &str, path: &str, limit: u64) -> Result<Vec<u8>, UiError> {
        Ok(self.0.read_file(name, path, limit)?)
    }

    fn peers(&self) -> Result<Vec<PeerInfo>, UiError> {
        let net = self.0.net()?.clone();
        Ok(wait(net.peers()).map_err(ServiceError::from)?)
    }

    fn own_addresses(&self) -> Result<Vec<String>, UiError> {
        let net = self.0.net()?.clone();
        Ok(wait(net.addresses()).map_err(ServiceError::from)?)
    }

    fn datasets(&self) -> Result<Vec<DatasetSummary>, UiError> {
        Ok(self.0.list_datasets()?)
    }

    fn dataset(&self, name: &str, version: Option<u32>) -> Result<DatasetDetail, UiError> {
        Ok(self.0.show_dataset(name, version)?)
    }

    fn disk_usage(&self) -> Result<DiskUsage, UiError> {
        Ok(self.0.disk_usage()?)
    }

    fn settings(&self) -> Result<Settings, UiError> {
        Ok(self.0.settings())
    }

    fn create_project(&self, name: &str, description: &str) -> Result<ProjectSummary, UiError> {
        Ok(self.0.create_project(name, description, None)?)
    }

    fn add_note(&self, name: &str, text: &str, tags: Vec<String>) -> Result<EntryView, UiError> {
        Ok(self.0.add_note(name, text, tags)?)
    }

    fn is_hub(&self) -> bool {
        self.0.hub().is_some()
    }

    fn hub(&self) -> Result<Option<HubView>, UiError> {
        if self.0.hub().is_none() {
            return Ok(None);
        }
        Ok(Some(self.0.hub_view()?))
    }
}
