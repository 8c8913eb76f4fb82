//! Picks up files changed by any means (an editor, a script, a container)
//! and sweeps them into a commit plus an activity entry.
//!
//! Changes are debounced per project: a sweep runs once the folder has been
//! quiet for a moment (so a program writing many files yields one entry), or
//! after a longer cap while writes keep coming.

use std::collections::HashMap;
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::service::Service;

/// How long a project must be quiet before it is swept.
pub const QUIET: Duration = Duration::from_millis(800);
/// The longest a change waits while writes keep coming.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// Keeps the OS watch alive; dropping it stops watching.
pub struct FolderWatch {
    _watcher: RecommendedWatcher,
}

/// Starts watching the home's projects folder.
pub fn start(service: Arc<Service>) -> Result<FolderWatch, notify::Error> {
    let root = service.home().projects_dir();
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    let events_root = root.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        for path in &event.paths {
            if let Some(project) = project_of(&events_root, path) {
                let _ = tx.send(project);
            }
        }
    })?;
    watcher.watch(&root, RecursiveMode::Recursive)?;
    tokio::spawn(debounce(service, rx));
    Ok(FolderWatch { _watcher: watcher })
}

/// The project a changed path belongs to, unless the change is one Git or
/// Tandem makes itself or one in a folder that is never committed.
fn project_of(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let mut parts = relative.components().filter_map(|c| match c {
        Component::Normal(part) => part.to_str(),
        _ => None,
    });
    let project = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() || rest.iter().any(|p| *p == ".git" || *p == "untracked") {
        return None;
    }
    Some(project.to_owned())
}

async fn debounce(service: Arc<Service>, mut rx: mpsc::UnboundedReceiver<String>) {
    // project -> (first change seen, last change seen)
    let mut pending: HashMap<String, (Instant, Instant)> = HashMap::new();
    loop {
        let next_due = pending
            .values()
            .map(|(first, last)| (*last + QUIET).min(*first + MAX_WAIT))
            .min();
        let message = match next_due {
            Some(due) => tokio::select! {
                message = rx.recv() => message,
                () = tokio::time::sleep_until(due) => {
                    let now = Instant::now();
                    let ready: Vec<String> = pending
                        .iter()
                        .filter(|(_, (first, last))| *last + QUIET <= now || *first + MAX_WAIT <= now)
                        .map(|(name, _)| name.clone())
                        .collect();
                    for name in ready {
                        pending.remove(&name);
                        let service = service.clone();
                        let result = tokio::task::spawn_blocking(move || service.sweep(&name).map(|r| (name, r))).await;
                        match result {
                            Ok(Ok((name, result))) if result.commit.is_some() => {
                                tracing::info!(project = %name, entries = result.entries.len(), "swept changes");
                            }
                            Ok(Err(e)) => tracing::debug!(error = %e, "sweep skipped"),
                            _ => {}
                        }
                    }
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(project) = message else { return };
        let now = Instant::now();
        pending
            .entry(project)
            .and_modify(|(_, last)| *last = now)
            .or_insert((now, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_user_files_trigger_sweeps() {
        let root = Path::new("/h/projects");
        assert_eq!(
            project_of(root, Path::new("/h/projects/p/code/a.py")),
            Some("p".into())
        );
        assert_eq!(
            project_of(root, Path::new("/h/projects/p/.git/index")),
            None
        );
        assert_eq!(
            project_of(root, Path::new("/h/projects/p/input/untracked/big")),
            None
        );
        assert_eq!(project_of(root, Path::new("/h/projects/p")), None);
        assert_eq!(project_of(root, Path::new("/elsewhere/x")), None);
    }
}
