//! The web UI's view of the node: [`tandem_web::Backend`] over [`Service`].

use std::sync::Arc;

use tandem_protocol::api::{ActivityQuery, EntryView, IdentityInfo, ProjectDetail, ProjectSummary};
use tandem_web::{Backend, UiError};

use crate::service::{Service, ServiceError};

pub struct WebBackend(pub Arc<Service>);

impl From<ServiceError> for UiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::BadRequest(_) => 400,
            ServiceError::NoSuchProject(_) => 404,
            ServiceError::Conflict(_) => 409,
            _ => 500,
        };
        UiError {
            status,
            message: e.to_string(),
        }
    }
}

impl Backend for WebBackend {
    fn identity(&self) -> IdentityInfo {
        self.0.identity()
    }

    fn projects(&self) -> Result<Vec<ProjectSummary>, UiError> {
        Ok(self.0.list_projects()?)
    }

    fn project(&self, name: &str) -> Result<ProjectDetail, UiError> {
        Ok(self.0.show_project(name)?)
    }

    fn activity(&self, name: &str, query: &ActivityQuery) -> Result<Vec<EntryView>, UiError> {
        Ok(self.0.activity(name, query)?)
    }

    fn create_project(&self, name: &str, description: &str) -> Result<ProjectSummary, UiError> {
        Ok(self.0.create_project(name, description, None)?)
    }

    fn add_note(&self, name: &str, text: &str, tags: Vec<String>) -> Result<EntryView, UiError> {
        Ok(self.0.add_note(name, text, tags)?)
    }
}
