//! Who this node is to others: its key's did and peer id, and the name and
//! email it signs into activity entries and commits.

use tandem_protocol::api::{IdentityInfo, UpdateProfile};

use crate::error::ServiceError;
use crate::projects::repo::RepoError;
use crate::service::Service;

impl Service {
    pub fn identity(&self) -> IdentityInfo {
        let profile = self.profile();
        let public = self.key().public();
        IdentityInfo {
            did: public.to_did(),
            peer_id: public.to_peer_id(),
            name: profile.name,
            email: profile.email,
        }
    }

    pub fn update_profile(&self, update: UpdateProfile) -> Result<IdentityInfo, ServiceError> {
        let mut profile = self.profile();
        if let Some(name) = update.name {
            profile.name = validate_label("name", &name)?;
        }
        if let Some(email) = update.email {
            profile.email = validate_label("email", &email)?;
        }
        self.home().save_profile(&profile)?;
        self.set_profile(profile);
        Ok(self.identity())
    }

    pub(crate) fn signature(&self) -> Result<git2::Signature<'static>, ServiceError> {
        let profile = self.profile();
        Ok(git2::Signature::now(&profile.name, &profile.email).map_err(RepoError::from)?)
    }

    pub(crate) fn trailer(&self) -> String {
        format!("Tandem-Author: {}", self.key().public().to_did())
    }
}

pub fn validate_label(what: &str, text: &str) -> Result<String, ServiceError> {
    let text = text.trim();
    if text.is_empty()
        || text.chars().count() > 200
        || text.chars().any(|c| c.is_control() || c == '<' || c == '>')
    {
        return Err(ServiceError::BadRequest(format!(
            "{what} must be 1 to 200 characters, without control characters or angle brackets"
        )));
    }
    Ok(text.to_owned())
}
