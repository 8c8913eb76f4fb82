//! Picks up files changed by any means (an editor, a script, a container)
//! and sweeps them into a commit plus an activity entry.
//!
//! Changes are debounced per project: a sweep runs once the folder has been
//! quiet for a moment (so a program writing many files yields one entry), or
//! after a longer cap while writes keep coming; never while a fetch writes
//! into the project (the fetch records what it writes).
//!
//! Every folder is watched on its own, found by a walk that never follows a
//! symbolic link: a project's files come from peers, archives and the
//! container, so a link to `/` or to a huge or unreadable folder must not
//! make the node watch (or even list) anything outside the project, nor use
//! up the system's inotify watches. `.git` and `untracked/` folders are not
//! watched (nothing there is swept). A folder that cannot be read or
//! watched is logged and skipped; it never stops the node.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use notify::event::{CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::service::Service;

/// How long a project must be quiet before it is swept.
pub const QUIET: Duration = Duration::from_millis(800);
/// The longest a change waits while writes keep coming.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// The most folders one node watches, so that a project with a huge tree
/// (from a peer, say) cannot take every inotify watch of the user. Changes
/// in folders beyond it are still recorded by the next sweep of the project.
pub const MAX_WATCHES: usize = 16_384;

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot start the file watcher (inotify): {0}")]
    Start(#[source] notify::Error),
    #[error("cannot watch the projects folder {path}: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("cannot start the file watcher's thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What the event handler asks of the thread that owns the watches.
enum Control {
    /// A folder appeared (created, or moved in): watch it and what it holds.
    Walk(PathBuf),
    /// A folder went away (deleted, or moved out): forget it and below.
    Forget(PathBuf),
    /// Events were lost: walk everything again and sweep every project.
    Rescan,
    Stop,
}

/// Keeps the OS watches alive; dropping it stops watching.
pub struct FolderWatch {
    control: std_mpsc::Sender<Control>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts watching the home's projects folder and every folder beneath it.
/// Only failing to watch the projects folder itself is an error.
pub fn start(service: Arc<Service>) -> Result<FolderWatch, WatchError> {
    let root = service.home().projects_dir();
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    let (control, orders) = std_mpsc::channel::<Control>();
    let events_root = root.clone();
    let events_tx = tx.clone();
    let events_control = control.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "file watcher error");
                return;
            }
        };
        if event.need_rescan() {
            let _ = events_control.send(Control::Rescan);
            return;
        }
        if let Some(order) = order_for(&event) {
            let _ = events_control.send(order);
        }
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for path in &event.paths {
            if let Some(project) = project_of(&events_root, path) {
                let _ = events_tx.send(project);
            }
        }
    })
    .map_err(WatchError::Start)?;
    let mut tree = Tree {
        root: root.clone(),
        watcher,
        watched: HashSet::new(),
        warned_full: false,
    };
    tree.watcher
        .watch(&root, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError::Root {
            path: root.clone(),
            source,
        })?;
    tree.watched.insert(root.clone());
    tree.walk(&root);
    tracing::debug!(folders = tree.watched.len(), "watching project folders");
    let thread = std::thread::Builder::new()
        .name("tandem-watch".into())
        .spawn(move || tree.serve(orders, tx))
        .map_err(WatchError::Thread)?;
    tokio::spawn(debounce(service, rx));
    Ok(FolderWatch {
        control,
        thread: Some(thread),
    })
}

/// What a change means for the set of watched folders.
fn order_for(event: &notify::Event) -> Option<Control> {
    let path = event.paths.last()?.clone();
    match event.kind {
        EventKind::Create(CreateKind::Folder)
        | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
            Some(Control::Walk(path))
        }
        EventKind::Remove(RemoveKind::Folder) => Some(Control::Forget(path)),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
            Some(Control::Forget(event.paths.first()?.clone()))
        }
        _ => None,
    }
}

/// The watched folders, owned by one thread (the watcher's own event thread
/// must never wait on itself).
struct Tree {
    root: PathBuf,
    watcher: RecommendedWatcher,
    watched: HashSet<PathBuf>,
    warned_full: bool,
}

impl Tree {
    fn serve(
        &mut self,
        orders: std_mpsc::Receiver<Control>,
        projects: mpsc::UnboundedSender<String>,
    ) {
        for order in orders {
            match order {
                Control::Walk(dir) => self.walk(&dir),
                Control::Forget(dir) => {
                    // The OS drops its watches of a deleted folder, and
                    // notify those of a moved one; a move within the tree
                    // is walked again at its new place.
                    self.watched.retain(|p| !p.starts_with(&dir));
                }
                Control::Rescan => {
                    let root = self.root.clone();
                    self.walk(&root);
                    for name in project_names(&root) {
                        let _ = projects.send(name);
                    }
                }
                Control::Stop => return,
            }
        }
    }

    /// Watches `dir` and every folder beneath it, never following a link
    /// (not even `dir` itself) and skipping what is never swept.
    fn walk(&mut self, dir: &Path) {
        let root = self.root.clone();
        let mut walk = walkdir::WalkDir::new(dir)
            .follow_links(false)
            .follow_root_links(false)
            .into_iter()
            .filter_entry(|entry| entry.file_type().is_dir() && watchable(&root, entry.path()));
        while let Some(entry) = walk.next() {
            match entry {
                Ok(entry) => {
                    if !self.watch_one(entry.path()) {
                        walk.skip_current_dir();
                    }
                }
                Err(e) => tracing::warn!(
                    path = %e.path().unwrap_or(dir).display(),
                    error = %e,
                    "not watching a folder that cannot be read; its changes are recorded at the next sweep"
                ),
            }
        }
    }

    /// Watches one folder; false when it could not be watched (so what it
    /// holds is not walked either).
    fn watch_one(&mut self, path: &Path) -> bool {
        if self.watched.contains(path) {
            return true;
        }
        if self.watched.len() >= MAX_WATCHES {
            if !self.warned_full {
                self.warned_full = true;
                tracing::warn!(
                    limit = MAX_WATCHES,
                    path = %path.display(),
                    "watching no more folders; changes beyond are recorded at the next sweep"
                );
            }
            return false;
        }
        match self.watcher.watch(path, RecursiveMode::NonRecursive) {
            Ok(()) => {
                // inotify follows a link given as the path: if the folder
                // was swapped for one since the walk saw it, drop the watch.
                match std::fs::symlink_metadata(path) {
                    Ok(meta) if meta.is_dir() => {
                        self.watched.insert(path.to_owned());
                        true
                    }
                    _ => {
                        let _ = self.watcher.unwatch(path);
                        false
                    }
                }
            }
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                if !self.warned_full {
                    self.warned_full = true;
                    tracing::warn!(
                        path = %path.display(),
                        "the system's inotify watch limit is reached; changes beyond are recorded at the next sweep"
                    );
                }
                false
            }
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "not watching a folder; its changes are recorded at the next sweep"
                );
                false
            }
        }
    }
}

/// Whether a folder beneath the projects folder is worth a watch: not one
/// Git keeps or one that is never committed.
fn watchable(root: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(root) else {
        return false;
    };
    relative.components().all(|c| match c {
        Component::Normal(part) => part != ".git" && part != "untracked",
        _ => false,
    })
}

fn project_names(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
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
                        if service.data().is_writing(&name) {
                            // A fetch is writing the files: ask again once
                            // it has been quiet for a while.
                            pending.insert(name, (now, now));
                            continue;
                        }
                        pending.remove(&name);
                        let result = service.blocking(move |service| service.sweep(&name).map(|r| (name, r))).await;
                        match result {
                            Ok((name, result)) if result.commit.is_some() => {
                                tracing::info!(project = %name, entries = result.entries.len(), "swept changes");
                            }
                            Err(e) => tracing::debug!(error = %e, "sweep skipped"),
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

    #[test]
    fn the_walk_follows_no_link_and_skips_git_and_untracked() {
        let home = tempfile::tempdir().expect("tempdir");
        let root = home.path().join("projects");
        let project = root.join("p");
        for dir in ["code/sub", ".git/objects/aa", "input/untracked/deep"] {
            std::fs::create_dir_all(project.join(dir)).expect("mkdir");
        }
        std::os::unix::fs::symlink("/", project.join("code/root")).expect("link");
        std::os::unix::fs::symlink("/usr", project.join("code/sub/usr")).expect("link");
        std::os::unix::fs::symlink(&project, project.join("input/loop")).expect("link");
        let watcher =
            notify::recommended_watcher(|_: notify::Result<notify::Event>| {}).expect("inotify");
        let mut tree = Tree {
            root: root.clone(),
            watcher,
            watched: HashSet::new(),
            warned_full: false,
        };
        tree.walk(&root);
        let expected: HashSet<PathBuf> = ["", "p", "p/code", "p/code/sub", "p/input"]
            .iter()
            .map(|p| {
                if p.is_empty() {
                    root.clone()
                } else {
                    root.join(p)
                }
            })
            .collect();
        assert_eq!(tree.watched, expected);
        // A link reported as a new folder (moved in, say) is not entered.
        tree.walk(&project.join("code/sub/usr"));
        tree.walk(&project.join("code/root"));
        assert_eq!(tree.watched, expected);
        // A folder moved out is forgotten with everything below it.
        let (tx, rx) = std_mpsc::channel();
        let (projects, _names) = mpsc::unbounded_channel();
        tx.send(Control::Forget(project.join("code")))
            .expect("send");
        tx.send(Control::Stop).expect("send");
        tree.serve(rx, projects);
        let watched = tree.watched;
        assert_eq!(watched.len(), 3, "{watched:?}");
    }
}
