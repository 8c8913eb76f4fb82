//! Automatic sync is on by default; a person can turn it off per project
//! (a marker file `autosync/<project id>.off` in the home).

use tandem_protocol::ProjectId;

use crate::error::{ServiceError, io_context};
use crate::fsutil::atomic_write;
use crate::service::Service;

impl Service {
    fn autosync_marker(&self, id: &ProjectId) -> std::path::PathBuf {
        self.home()
            .root()
            .join("autosync")
            .join(format!("{id}.off"))
    }

    pub fn autosync_enabled(&self, name: &str) -> Result<bool, ServiceError> {
        let handle = self.project(name)?;
        let id = self.lock_project(&handle).id();
        Ok(!self.autosync_marker(&id).exists())
    }

    pub fn set_autosync_enabled(&self, name: &str, enabled: bool) -> Result<bool, ServiceError> {
        let handle = self.project(name)?;
        let id = self.lock_project(&handle).id();
        let marker = self.autosync_marker(&id);
        if enabled {
            let _ = std::fs::remove_file(&marker);
        } else {
            atomic_write(&marker, b"automatic sync is off for this project\n", None)
                .map_err(io_context("saving the setting"))?;
        }
        Ok(enabled)
    }
}
