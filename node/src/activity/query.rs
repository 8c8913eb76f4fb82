//! Reading the feed as a user asks: a filter from what they typed (kinds,
//! authors by name or key, dates), newest first.

use tandem_protocol::PeerKey;
use tandem_protocol::activity::{Filter, Kind};
use tandem_protocol::api::{ActivityQuery, EntryView};

use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::service::{Service, lock};

/// Default number of entries an activity query returns.
pub const DEFAULT_LIMIT: usize = 50;

impl Service {
    pub fn activity(
        &self,
        name: &str,
        query: &ActivityQuery,
    ) -> Result<Vec<EntryView>, ServiceError> {
        let project = self.project(name)?;
        let project = lock(&project);
        let filter = self.filter(&project, query)?;
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT).max(1);
        Ok(project
            .feed
            .query(&filter, limit)
            .into_iter()
            .map(EntryView::from)
            .collect())
    }

    /// Turns what a user typed into a filter: names resolve to the keys of
    /// authors seen in this feed, dates accept `YYYY-MM-DD` or RFC 3339.
    fn filter(&self, project: &Project, query: &ActivityQuery) -> Result<Filter, ServiceError> {
        let kind = match query.kind.as_deref().filter(|k| !k.is_empty()) {
            Some(k) => Some(k.parse::<Kind>()?),
            None => None,
        };
        let authors = match query.author.as_deref().filter(|a| !a.is_empty()) {
            None => None,
            Some(text) => Some(match text.parse::<PeerKey>() {
                Ok(key) => vec![key],
                Err(_) => {
                    let wanted = text.to_lowercase();
                    let mut keys: Vec<PeerKey> = project
                        .feed
                        .query(&Filter::default(), usize::MAX)
                        .into_iter()
                        .filter(|e| e.payload.author_name.to_lowercase() == wanted)
                        .map(|e| e.payload.author)
                        .collect();
                    keys.sort();
                    keys.dedup();
                    if keys.is_empty() {
                        return Err(ServiceError::BadRequest(format!(
                            "no author named {text:?} in this project's activity; give a name that appears in the feed, or a did:key"
                        )));
                    }
                    keys
                }
            }),
        };
        let since_ms = match query.since.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(parse_date(text)?),
        };
        Ok(Filter {
            kind,
            authors,
            path: query.path.clone().filter(|p| !p.is_empty()),
            search: query.search.clone().filter(|s| !s.is_empty()),
            since_ms,
        }
        .prepared())
    }
}

/// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time, to Unix milliseconds.
pub fn parse_date(text: &str) -> Result<i64, ServiceError> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(time) = date.and_hms_opt(0, 0, 0)
    {
        return Ok(time.and_utc().timestamp_millis());
    }
    Err(ServiceError::BadRequest(format!(
        "cannot read the date {text:?}: use YYYY-MM-DD or an RFC 3339 time like 2026-11-27T14:00:00Z"
    )))
}
