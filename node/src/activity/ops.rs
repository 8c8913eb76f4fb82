//! Writing to the feed: entries appended under this node's key (every
//! local change ends in one, and tells peers there is news), notes, and
//! folding the logs into snapshots.

use tandem_protocol::activity::{Details, Kind, validate_tags};
use tandem_protocol::api::EntryView;

use crate::activity::feed::{Draft, FeedError};
use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::service::{Service, lock, now_ms};

impl Service {
    pub(crate) fn append(
        &self,
        project: &mut Project,
        kind: Kind,
        message: String,
        commit: Option<String>,
        details: Details,
        tags: Vec<String>,
    ) -> Result<EntryView, ServiceError> {
        let draft = Draft {
            kind,
            message,
            commit,
            details,
            tags,
            time_ms: now_ms(),
        };
        let signed = project
            .feed
            .append(self.key(), &self.profile().name, draft)?;
        // Every local change ends in an entry: tell peers there is news.
        self.auto_event(crate::sync::auto::schedule::Event::LocalChange(
            project.name.to_string(),
        ));
        Ok(EntryView::from(&signed))
    }

    pub fn add_note(
        &self,
        name: &str,
        text: &str,
        tags: Vec<String>,
    ) -> Result<EntryView, ServiceError> {
        validate_tags(&tags)?;
        if text.trim().is_empty() {
            return Err(ServiceError::BadRequest("a note needs some text".into()));
        }
        let project = self.project(name)?;
        let mut project = lock(&project);
        self.append(
            &mut project,
            Kind::Note,
            text.trim().to_owned(),
            None,
            Details::default(),
            tags,
        )
        .map_err(|e| match e {
            ServiceError::Feed(FeedError::Entry(e)) => ServiceError::Entry(e),
            other => other,
        })
    }

    /// Folds activity logs into snapshots (on shutdown).
    pub fn compact(&self) {
        self.each_open(|project| {
            if let Err(e) = lock(project).feed.compact_all() {
                tracing::warn!(error = %e, "compacting activity failed");
            }
        });
    }
}
