//! Naming a version: an activity entry id, a commit (or its first hex
//! digits), a date, or `current`, each optionally as `before:VERSION`; and finding the commit it names in the
//! project's own history. Only commits reachable from the project's branch
//! count: a peer's refs this node holds but never merged are not versions
//! of this copy.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use git2::{Oid, Repository, Sort};

use super::error::VersionError;
use crate::activity::feed::Feed;
use crate::projects::repo::BRANCH;

/// What the user's text asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRef {
    Current,
    /// Hex digits: an entry id (24 digits) or a commit prefix.
    Hex(String),
    /// The project as it was at this instant (milliseconds, UTC).
    At(i64),
}

/// Parses a version as typed: `current`, hex digits, or a date or time
/// in UTC (`2026-12-02` means the end of that day; `2026-12-02T06:14` the
/// end of that minute; RFC 3339 with an offset is taken as given).
pub fn parse(text: &str) -> Option<VersionRef> {
    let text = text.trim();
    if matches!(text, "current" | "latest" | "HEAD" | "head") {
        return Some(VersionRef::Current);
    }
    if (4..=40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(VersionRef::Hex(text.to_ascii_lowercase()));
    }
    parse_time(text).map(VersionRef::At)
}

fn parse_time(text: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let end = day.and_hms_milli_opt(23, 59, 59, 999)?;
        return Some(Utc.from_utc_datetime(&end).timestamp_millis());
    }
    let text = text.replace(' ', "T");
    for (format, slack) in [("%Y-%m-%dT%H:%M:%S", 999), ("%Y-%m-%dT%H:%M", 59_999)] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&text, format) {
            return Some(Utc.from_utc_datetime(&t).timestamp_millis() + slack);
        }
    }
    None
}

/// The commit `text` names in `repo`'s history (entries from `feed`).
pub fn resolve(
    repo: &Repository,
    feed: &Feed,
    project: &str,
    text: &str,
) -> Result<Oid, VersionError> {
    let unknown = || VersionError::Unknown {
        project: project.to_owned(),
        given: text.to_owned(),
    };
    // `before:VERSION`: the version just before that one (its first
    // parent), so an entry's own change can be shown.
    if let Some(rest) = text.trim().strip_prefix("before:") {
        // One step back only: `before:before:…` is refused, not recursed.
        if rest.trim().starts_with("before:") {
            return Err(unknown());
        }
        let oid = resolve(repo, feed, project, rest)?;
        let commit = repo
            .find_commit(oid)
            .map_err(VersionError::git("reading the version's commit"))?;
        return commit.parent_id(0).map_err(|_| unknown());
    }
    let head = head(repo).ok_or_else(|| VersionError::Empty {
        project: project.to_owned(),
    })?;
    let oid = match parse(text).ok_or_else(unknown)? {
        VersionRef::Current => return Ok(head),
        VersionRef::At(ms) => return at_time(repo, head, project, text, ms),
        VersionRef::Hex(hex) => match feed.find(&hex) {
            Some(entry) => {
                let commit = entry.payload.commit.as_deref().ok_or_else(|| {
                    VersionError::EntryWithoutVersion {
                        entry: hex.clone(),
                        kind: entry.payload.kind.to_string(),
                    }
                })?;
                Oid::from_str(commit).map_err(|_| unknown())?
            }
            None => match repo.find_commit_by_prefix(&hex) {
                Ok(commit) => commit.id(),
                Err(e) if e.code() == git2::ErrorCode::Ambiguous => {
                    return Err(VersionError::Ambiguous {
                        given: text.to_owned(),
                    });
                }
                Err(_) => return Err(unknown()),
            },
        },
    };
    in_history(repo, head, oid, project)?;
    Ok(oid)
}

/// The branch's commit, if it has one.
pub fn head(repo: &Repository) -> Option<Oid> {
    repo.refname_to_id(&format!("refs/heads/{BRANCH}")).ok()
}

/// Refuses a commit that is not `head` or behind it.
fn in_history(repo: &Repository, head: Oid, oid: Oid, project: &str) -> Result<(), VersionError> {
    let reachable = oid == head
        || repo.find_commit(oid).is_ok()
            && repo
                .graph_descendant_of(head, oid)
                .map_err(VersionError::git("walking the history"))?;
    if reachable {
        Ok(())
    } else {
        Err(VersionError::NotInHistory {
            project: project.to_owned(),
            commit: short(oid),
        })
    }
}

/// The newest commit of the history made at or before `ms`.
fn at_time(
    repo: &Repository,
    head: Oid,
    project: &str,
    given: &str,
    ms: i64,
) -> Result<Oid, VersionError> {
    let mut walk = repo
        .revwalk()
        .map_err(VersionError::git("walking the history"))?;
    walk.set_sorting(Sort::TIME)
        .and_then(|()| walk.push(head))
        .map_err(VersionError::git("walking the history"))?;
    let mut first = None;
    for oid in walk {
        let oid = oid.map_err(VersionError::git("walking the history"))?;
        let commit = repo
            .find_commit(oid)
            .map_err(VersionError::git("reading a commit"))?;
        let when = commit.time().seconds().saturating_mul(1000);
        if when <= ms {
            return Ok(oid);
        }
        first = Some(when);
    }
    Err(VersionError::BeforeProject {
        project: project.to_owned(),
        given: given.to_owned(),
        first: first.map(format_time).unwrap_or_default(),
    })
}

/// A commit as people quote it.
pub fn short(oid: Oid) -> String {
    oid.to_string()[..7].to_owned()
}

/// `2 Dec 2026 06:14 UTC`.
pub fn format_time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%-d %b %Y %H:%M UTC").to_string())
        .unwrap_or_else(|| "an unknown time".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_typed() {
        assert_eq!(parse("current"), Some(VersionRef::Current));
        assert_eq!(parse("23BEA0E"), Some(VersionRef::Hex("23bea0e".into())));
        let day = parse("2026-12-02").expect("a day");
        let minute = parse("2026-12-02T06:14").expect("a minute");
        let spaced = parse("2026-12-02 06:14").expect("a minute");
        assert_eq!(minute, spaced);
        let (VersionRef::At(day), VersionRef::At(minute)) = (day, minute) else {
            panic!("dates parse as instants");
        };
        assert!(minute < day, "a day means its end");
        assert_eq!(
            parse("2026-12-02T06:14:00+01:00"),
            Some(VersionRef::At(minute - 59_999 - 3_600_000))
        );
        for bad in [
            "",
            "abc",
            "zzzz",
            "2026-13-40",
            "../x",
            &"a".repeat(41),
            "12",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
