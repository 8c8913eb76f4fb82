//! Starred and hidden activity entries: a personal view of the feed, kept
//! on this node only (`marks/<project id>.json`), never synced, so hiding
//! an entry never hides it from anyone else.

use std::path::PathBuf;

use tandem_protocol::ProjectId;
use tandem_protocol::api::{MarkRequest, Marks};

use crate::error::{ServiceError, io_context};
use crate::fsutil::atomic_write;
use crate::service::{Service, lock};

/// Most marks kept per project, so the file stays small.
const MAX_MARKS: usize = 10_000;

impl Service {
    fn marks_path(&self, id: &ProjectId) -> PathBuf {
        self.home().root().join("marks").join(format!("{id}.json"))
    }

    pub fn marks(&self, name: &str) -> Result<Marks, ServiceError> {
        let id = lock(&*self.project(name)?).id();
        Ok(std::fs::read(self.marks_path(&id))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default())
    }

    /// Stars or hides (or un-) an entry of the project.
    pub fn set_mark(&self, name: &str, request: &MarkRequest) -> Result<Marks, ServiceError> {
        // Two quick clicks must not lose one another's change.
        static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _writing = lock(&WRITING);
        let known = lock(&*self.project(name)?)
            .feed
            .find(&request.entry)
            .is_some();
        if !known {
            return Err(ServiceError::BadRequest(format!(
                "no activity entry {:?} in {name}",
                request.entry
            )));
        }
        let mut marks = self.marks(name)?;
        let toggle = |list: &mut Vec<String>, on: Option<bool>| match on {
            Some(true) if !list.contains(&request.entry) => list.push(request.entry.clone()),
            Some(false) => list.retain(|e| e != &request.entry),
            _ => {}
        };
        toggle(&mut marks.starred, request.star);
        toggle(&mut marks.hidden, request.hide);
        if marks.starred.len() + marks.hidden.len() > MAX_MARKS {
            return Err(ServiceError::BadRequest(format!(
                "more than {MAX_MARKS} starred and hidden entries; unmark some first"
            )));
        }
        let id = lock(&*self.project(name)?).id();
        let path = self.marks_path(&id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_context("creating the marks folder"))?;
        }
        let bytes = serde_json::to_vec(&marks).unwrap_or_default();
        atomic_write(&path, &bytes, None).map_err(io_context("saving the marks"))?;
        Ok(marks)
    }
}
