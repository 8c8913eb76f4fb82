//! A project's Git repository: initialisation, change detection, commits.
//!
//! Every project is a plain Git repository a power user can clone or push
//! anywhere; Tandem only adds commits whose messages carry a greppable
//! summary of the activity entries they belong to.
//!
//! The repository's own files are not trusted: an older container could
//! write `.git/config`, and a config that moves the work tree
//! (`core.worktree`) or runs programs (`core.fsmonitor`, filters, …) would
//! make the node commit files from elsewhere on the host, or make the
//! user's own `git` run code. So the node opens `.git` as a bare repository
//! with the work tree fixed to the project folder, refuses a `.git` that is
//! not a plain folder, and refuses to sweep or commit while the config
//! holds such a key ([`check`]). Git subprocesses start from
//! [`git_command`], deaf to those keys.

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{
    IndexAddOption, Oid, Repository, RepositoryInitOptions, Signature, Status, StatusOptions,
};
use tandem_protocol::activity::{FileAction, FileChange};

pub const BRANCH: &str = "main";

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error(
        "{path} is {what}, not the repository folder Tandem made; Tandem does not follow it \
         (replace it with the project's .git folder, or clone the project again)"
    )]
    NotAGitFolder { path: PathBuf, what: &'static str },
    #[error(
        "{path} is there, which {why}; Tandem never makes it and will not use the repository \
         while it is there: remove it"
    )]
    RefusedFile { path: PathBuf, why: &'static str },
    #[error(
        "the repository config {file} sets {}; Tandem never sets these and will not obey them, \
         so it records nothing in this project until they are gone: remove each with \
         `git config --file {file} --unset-all KEY`",
        describe_refused(refused)
    )]
    RefusedConfig {
        file: PathBuf,
        refused: Vec<RefusedKey>,
    },
}

impl RepoError {
    /// Whether the repository holds something the node refuses (rather
    /// than Git failing).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            RepoError::NotAGitFolder { .. }
                | RepoError::RefusedFile { .. }
                | RepoError::RefusedConfig { .. }
        )
    }
}

/// A config entry the node will not work beside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedKey {
    pub key: String,
    pub value: String,
    pub why: &'static str,
}

fn describe_refused(refused: &[RefusedKey]) -> String {
    refused
        .iter()
        .map(|r| format!("{} = {:?} ({})", r.key, r.value, r.why))
        .collect::<Vec<_>>()
        .join(", ")
}

const MOVES_WORK_TREE: &str = "it moves the work tree";
const INCLUDES: &str = "it reads another config file";
const RUNS: &str = "it runs a program";

/// Keys `section.name` that move what Git reads or run programs. Tandem's
/// repositories never have them; a user's own preferences for these live in
/// their global config, which this check does not read.
const REFUSED_KEYS: [(&str, &str); 18] = [
    ("core.worktree", MOVES_WORK_TREE),
    ("include.path", INCLUDES),
    ("extensions.worktreeconfig", INCLUDES),
    ("core.hookspath", RUNS),
    ("core.fsmonitor", RUNS),
    ("core.sshcommand", RUNS),
    ("core.gitproxy", RUNS),
    ("core.askpass", RUNS),
    ("core.editor", RUNS),
    ("core.pager", RUNS),
    ("core.alternaterefscommand", RUNS),
    ("sequence.editor", RUNS),
    ("diff.external", RUNS),
    ("credential.helper", RUNS),
    ("gpg.program", RUNS),
    ("uploadpack.packobjectshook", RUNS),
    ("protocol.allow", RUNS),
    ("web.browser", RUNS),
];

/// Keys `section.<subsection>.name`, any subsection.
const REFUSED_SUBSECTION_KEYS: [(&str, &str, &str); 15] = [
    ("includeif", "path", INCLUDES),
    ("filter", "clean", RUNS),
    ("filter", "smudge", RUNS),
    ("filter", "process", RUNS),
    ("diff", "textconv", RUNS),
    ("diff", "command", RUNS),
    ("merge", "driver", RUNS),
    ("credential", "helper", RUNS),
    ("gpg", "program", RUNS),
    ("remote", "uploadpack", RUNS),
    ("remote", "receivepack", RUNS),
    ("protocol", "allow", RUNS),
    ("difftool", "cmd", RUNS),
    ("mergetool", "cmd", RUNS),
    ("browser", "cmd", RUNS),
];

/// Whether (and why) a config key is refused. Git compares section and
/// variable names case-insensitively; the subsection is anything.
fn refused_key(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    let (section, rest) = lower.split_once('.')?;
    if section == "pager" {
        // `pager.<command>` is the pager program for that command.
        return Some(RUNS);
    }
    match rest.rsplit_once('.') {
        None => REFUSED_KEYS
            .iter()
            .find(|(refused, _)| *refused == lower)
            .map(|(_, why)| *why),
        Some((_subsection, name)) => REFUSED_SUBSECTION_KEYS
            .iter()
            .find(|(s, n, _)| *s == section && *n == name)
            .map(|(_, _, why)| *why),
    }
}

/// Files inside `.git` that make Git read objects, history or the whole
/// repository from somewhere else.
const REFUSED_FILES: [(&str, &str); 4] = [
    ("commondir", "makes Git use another repository"),
    ("gitdir", "makes Git use another repository"),
    (
        "objects/info/alternates",
        "makes Git read objects from another folder",
    ),
    ("info/grafts", "rewrites the project's history"),
];

/// The `.git` folder of a project folder, checked to be a plain folder
/// (a `gitdir:` file or a symlink could point anywhere on the host).
fn git_folder(dir: &Path) -> Result<PathBuf, RepoError> {
    let path = dir.join(".git");
    let not = |what| RepoError::NotAGitFolder {
        path: path.clone(),
        what,
    };
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(not("a symbolic link")),
        Ok(meta) if meta.is_file() => Err(not("a file (a `gitdir:` link to elsewhere)")),
        Ok(meta) if meta.is_dir() => Ok(path),
        Ok(_) => Err(not("neither a file nor a folder")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not("missing")),
        Err(e) => Err(RepoError::Git(git2::Error::from_str(&format!(
            "reading {}: {e}",
            path.display()
        )))),
    }
}

/// Opens a project's repository: `.git` must be a plain folder, and the
/// work tree is the project folder whatever the config says.
pub fn open(dir: &Path) -> Result<Repository, RepoError> {
    let git_dir = git_folder(dir)?;
    check_files(&git_dir)?;
    // Opened bare, libgit2 never reads `core.worktree`; the work tree is
    // then set to where the project is.
    let repo = Repository::open_bare(&git_dir)?;
    repo.set_workdir(dir, false)?;
    if let Err(e) = check_config(&repo) {
        // Opening stays possible (to show the project and its history);
        // sweeps and commits refuse until the config is clean.
        tracing::warn!(error = %e, "the repository's config is refused");
    }
    Ok(repo)
}

fn check_files(git_dir: &Path) -> Result<(), RepoError> {
    for (name, why) in REFUSED_FILES {
        let path = git_dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(RepoError::RefusedFile { path, why });
        }
    }
    Ok(())
}

/// Config keys in the repository's own config file (and whatever it
/// includes) that the node refuses.
fn refused_config(file: &Path) -> Result<Vec<RefusedKey>, RepoError> {
    if !file.exists() {
        return Ok(vec![]);
    }
    let config = git2::Config::open(file)?;
    let mut refused = Vec::new();
    let mut entries = config.entries(None)?;
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let key = String::from_utf8_lossy(entry.name_bytes()).into_owned();
        if let Some(why) = refused_key(&key) {
            refused.push(RefusedKey {
                key,
                value: String::from_utf8_lossy(entry.value_bytes()).into_owned(),
                why,
            });
        }
    }
    Ok(refused)
}

/// Refuses a repository whose `.git` holds config or files that move what
/// Git reads or run programs. Read fresh each time: the file may have been
/// written since the repository was opened.
pub fn check(repo: &Repository) -> Result<(), RepoError> {
    check_files(repo.path())?;
    check_config(repo)
}

fn check_config(repo: &Repository) -> Result<(), RepoError> {
    let file = repo.path().join("config");
    let refused = refused_config(&file)?;
    if refused.is_empty() {
        Ok(())
    } else {
        Err(RepoError::RefusedConfig { file, refused })
    }
}

/// `git` for the node's own use on a repository: no system or global
/// config, no replace refs, no prompts, and every key that could run a
/// program overridden on the command line (which wins over the repository's
/// config). Variables of the node's own environment that would point Git
/// elsewhere are removed.
pub fn git_command(git_dir: &Path) -> Command {
    let mut command = Command::new("git");
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_COMMON_DIR",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_NAMESPACE",
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "GIT_PAGER",
        "GIT_EDITOR",
    ] {
        command.env_remove(var);
    }
    command
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0");
    for setting in [
        "core.fsmonitor=false",
        "core.hooksPath=/dev/null",
        "core.sshCommand=false",
        "core.gitProxy=",
        "core.askPass=",
        "core.pager=cat",
        "core.editor=false",
        "core.alternateRefsCommand=",
        "credential.helper=",
        "protocol.allow=never",
        "diff.external=",
    ] {
        command.arg("-c").arg(setting);
    }
    command.arg("--git-dir").arg(git_dir);
    command
}

/// Creates a repository whose first branch is `main`.
pub fn init(path: &Path) -> Result<Repository, RepoError> {
    let mut options = RepositoryInitOptions::new();
    options.initial_head(BRANCH);
    Ok(Repository::init_opts(path, &options)?)
}

/// Files that differ from the last commit: new, modified or deleted,
/// ignoring what `.gitignore` excludes (the `untracked/` folders).
pub fn pending_changes(repo: &Repository) -> Result<Vec<FileChange>, RepoError> {
    Ok(pending_changes_and_links(repo)?.0)
}

/// Why a path of the working tree is never committed, if it is one of
/// those: a symbolic link (checked out elsewhere it would lead anywhere on
/// that machine) or a nested repository (a submodule). Looked at without
/// following links.
fn never_committed(work: Option<&crate::beneath::Beneath>, path: &str) -> Option<&'static str> {
    if path.ends_with('/') {
        return Some("is a nested Git repository");
    }
    let work = work?;
    match work.lstat(path) {
        Ok(Some(entry)) => match entry.kind {
            crate::beneath::Kind::Symlink => Some("is a symbolic link"),
            crate::beneath::Kind::Dir => Some("is a nested Git repository"),
            _ => None,
        },
        Ok(None) => None,
        Err(e) if e.is_refusal() => Some("lies beyond a symbolic link"),
        Err(_) => None,
    }
}

fn work_tree(repo: &Repository) -> Option<crate::beneath::Beneath> {
    crate::beneath::Beneath::open(repo.workdir()?).ok()
}

/// [`pending_changes`], and the paths left out because they are never
/// committed (links, nested repositories), each with why.
pub fn pending_changes_and_links(
    repo: &Repository,
) -> Result<(Vec<FileChange>, Vec<String>), RepoError> {
    check(repo)?;
    let work = work_tree(repo);
    let mut links = Vec::new();
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .renames_head_to_index(false)
        .renames_index_to_workdir(false);
    let statuses = repo.statuses(Some(&mut options))?;
    let mut changes = Vec::new();
    for status in statuses.iter() {
        let Ok(path) = status.path() else { continue };
        let flags = status.status();
        let action = if flags.intersects(Status::WT_DELETED | Status::INDEX_DELETED) {
            FileAction::Deleted
        } else if flags.intersects(Status::WT_NEW | Status::INDEX_NEW) {
            FileAction::Added
        } else if flags.intersects(
            Status::WT_MODIFIED
                | Status::WT_TYPECHANGE
                | Status::INDEX_MODIFIED
                | Status::INDEX_TYPECHANGE,
        ) {
            FileAction::Modified
        } else {
            continue;
        };
        if action != FileAction::Deleted
            && let Some(why) = never_committed(work.as_ref(), path)
        {
            links.push(format!(
                "{} {why}; it is never committed",
                path.trim_end_matches('/')
            ));
            continue;
        }
        changes.push(FileChange {
            path: path.to_owned(),
            action,
        });
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    links.sort();
    Ok((changes, links))
}

/// Stages everything and commits it on the current branch. Returns `None`
/// when the tree is unchanged.
pub fn commit_all(
    repo: &Repository,
    author: &Signature<'_>,
    message: &str,
) -> Result<Option<Oid>, RepoError> {
    check(repo)?;
    let mut index = repo.index()?;
    // Links and nested repositories are skipped (see `never_committed`);
    // the sweep reports them from `pending_changes_and_links`.
    let work = work_tree(repo);
    let mut skip = |path: &Path, _spec: &[u8]| -> i32 {
        let path = path.to_string_lossy();
        match never_committed(work.as_ref(), &path) {
            Some(why) => {
                tracing::warn!(path = %path, "{why}; not committed");
                1
            }
            None => 0,
        }
    };
    index.add_all(["*"], IndexAddOption::DEFAULT, Some(&mut skip))?;
    index.update_all(["*"], Some(&mut skip))?;
    index.write()?;
    let tree_id = index.write_tree()?;
    let parent = match repo.head() {
        Ok(head) => Some(head.peel_to_commit()?),
        Err(e)
            if e.code() == git2::ErrorCode::UnbornBranch
                || e.code() == git2::ErrorCode::NotFound =>
        {
            None
        }
        Err(e) => return Err(e.into()),
    };
    if parent.as_ref().is_some_and(|p| p.tree_id() == tree_id) {
        return Ok(None);
    }
    let tree = repo.find_tree(tree_id)?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let oid = repo.commit(Some("HEAD"), author, author, message, &tree, &parents)?;
    Ok(Some(oid))
}

/// Commits only `paths` (relative to the work tree), leaving other pending
/// changes for the next sweep.
pub fn commit_paths(
    repo: &Repository,
    author: &Signature<'_>,
    message: &str,
    paths: &[&str],
) -> Result<Oid, RepoError> {
    check(repo)?;
    let mut index = repo.index()?;
    for path in paths {
        index.add_path(Path::new(path))?;
    }
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let parent = repo.head()?.peel_to_commit()?;
    Ok(repo.commit(Some("HEAD"), author, author, message, &tree, &[&parent])?)
}

/// Commits `paths` as they are now in the work tree, deleted ones
/// included; `None` when none of them changed.
pub fn commit_changed_paths(
    repo: &Repository,
    author: &Signature<'_>,
    message: &str,
    paths: &[&str],
) -> Result<Option<Oid>, RepoError> {
    check(repo)?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| git2::Error::from_str("the repository has no work tree"))?
        .to_owned();
    let mut index = repo.index()?;
    for path in paths {
        if workdir.join(path).exists() {
            index.add_path(Path::new(path))?;
        } else {
            let _ = index.remove_path(Path::new(path));
        }
    }
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let parent = repo.head()?.peel_to_commit()?;
    if parent.tree_id() == tree.id() {
        return Ok(None);
    }
    Ok(Some(repo.commit(
        Some("HEAD"),
        author,
        author,
        message,
        &tree,
        &[&parent],
    )?))
}

/// Number of commits reachable from HEAD.
pub fn commit_count(repo: &Repository) -> Result<usize, RepoError> {
    let mut walk = repo.revwalk()?;
    if walk.push_head().is_err() {
        return Ok(0);
    }
    Ok(walk.count())
}

/// Tracked files with their sizes, from the index.
pub fn tracked_files(repo: &Repository) -> Result<Vec<(String, u64)>, RepoError> {
    let index = repo.index()?;
    Ok(index
        .iter()
        .map(|e| {
            (
                String::from_utf8_lossy(&e.path).into_owned(),
                u64::from(e.file_size),
            )
        })
        .collect())
}

/// Reads a file as committed at HEAD.
pub fn read_at_head(repo: &Repository, path: &str) -> Result<Option<Vec<u8>>, RepoError> {
    let Ok(head) = repo.head() else {
        return Ok(None);
    };
    let tree = head.peel_to_tree()?;
    let Ok(entry) = tree.get_path(Path::new(path)) else {
        return Ok(None);
    };
    let blob = repo.find_blob(entry.id())?;
    Ok(Some(blob.content().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_and_commits_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = init(dir.path()).expect("init");
        let sig = Signature::now("Ada", "ada@example.org").expect("sig");
        std::fs::write(dir.path().join("a.txt"), "one").expect("write");
        let changes = pending_changes(&repo).expect("status");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].action, FileAction::Added);
        assert!(commit_all(&repo, &sig, "first").expect("commit").is_some());
        assert!(pending_changes(&repo).expect("status").is_empty());
        assert!(
            commit_all(&repo, &sig, "nothing")
                .expect("commit")
                .is_none()
        );

        std::fs::write(dir.path().join("a.txt"), "two").expect("write");
        std::fs::write(dir.path().join("b.txt"), "new").expect("write");
        let changes = pending_changes(&repo).expect("status");
        assert_eq!(
            changes
                .iter()
                .map(|c| (c.path.as_str(), c.action))
                .collect::<Vec<_>>(),
            vec![
                ("a.txt", FileAction::Modified),
                ("b.txt", FileAction::Added)
            ]
        );
        commit_all(&repo, &sig, "second").expect("commit");
        std::fs::remove_file(dir.path().join("a.txt")).expect("rm");
        assert_eq!(
            pending_changes(&repo).expect("status")[0].action,
            FileAction::Deleted
        );
        commit_all(&repo, &sig, "third").expect("commit");
        assert_eq!(commit_count(&repo).expect("count"), 3);
        assert_eq!(
            read_at_head(&repo, "b.txt").expect("read"),
            Some(b"new".to_vec())
        );
    }

    /// A repository with one commit, and a folder outside it holding a
    /// file the attacker wants committed.
    fn victim() -> (tempfile::TempDir, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = init(dir.path()).expect("init");
        std::fs::write(dir.path().join("a.txt"), "one").expect("write");
        let sig = Signature::now("Ada", "ada@example.org").expect("sig");
        commit_all(&repo, &sig, "first").expect("commit");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret.txt"), "host secret").expect("write");
        (dir, outside)
    }

    fn set_config(dir: &Path, key: &str, value: &str) {
        let mut config = git2::Config::open(&dir.join(".git/config")).expect("config");
        config.set_str(key, value).expect("set");
    }

    #[test]
    fn links_and_nested_repositories_are_never_committed_and_are_reported() {
        let (dir, outside) = victim();
        let repo = open(dir.path()).expect("open");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("evil")).expect("link");
        std::os::unix::fs::symlink("a.txt", dir.path().join("alias.txt")).expect("link");
        init(&dir.path().join("sub")).expect("nested repository");
        std::fs::write(dir.path().join("sub/x.txt"), "x").expect("write");
        std::fs::write(dir.path().join("b.txt"), "two").expect("write");
        let (changes, links) = pending_changes_and_links(&repo).expect("status");
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["b.txt"]);
        assert_eq!(links.len(), 3, "{links:?}");
        assert!(
            links
                .iter()
                .any(|l| l.starts_with("evil is a symbolic link")),
            "{links:?}"
        );
        assert!(
            links
                .iter()
                .any(|l| l.starts_with("sub is a nested Git repository")),
            "{links:?}"
        );
        let sig = Signature::now("Ada", "ada@example.org").expect("sig");
        commit_all(&repo, &sig, "second").expect("commit");
        let tree = repo.head().expect("head").peel_to_tree().expect("tree");
        let mut names = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            names.push((
                format!("{root}{}", entry.name().unwrap_or_default()),
                entry.filemode(),
            ));
            git2::TreeWalkResult::Ok
        })
        .expect("walk");
        assert!(names.iter().any(|(n, _)| n == "b.txt"), "{names:?}");
        assert!(
            names
                .iter()
                .all(|(_, mode)| *mode != 0o120000 && *mode != 0o160000),
            "{names:?}"
        );
    }

    #[test]
    fn core_worktree_does_not_move_the_work_tree() {
        let (dir, outside) = victim();
        let target = outside.path().to_str().expect("utf-8");
        set_config(dir.path(), "core.worktree", target);
        // libgit2 itself obeys the key: this is what the node used to do.
        let obeying = Repository::open(dir.path()).expect("open");
        assert_eq!(
            obeying.workdir().map(|p| p.canonicalize().expect("canon")),
            Some(outside.path().canonicalize().expect("canon"))
        );
        let repo = open(dir.path()).expect("open");
        assert_eq!(
            repo.workdir().map(|p| p.canonicalize().expect("canon")),
            Some(dir.path().canonicalize().expect("canon"))
        );
        let err = pending_changes(&repo).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("core.worktree") && text.contains(target),
            "{text}"
        );
        let sig = Signature::now("Ada", "ada@example.org").expect("sig");
        assert!(commit_all(&repo, &sig, "x").is_err(), "commits refuse too");
        assert!(commit_changed_paths(&repo, &sig, "x", &["a.txt"]).is_err());

        // Once the key is gone, the sweep sees the project folder only.
        let mut config = git2::Config::open(&dir.path().join(".git/config")).expect("config");
        config.remove("core.worktree").expect("remove");
        std::fs::write(dir.path().join("b.txt"), "two").expect("write");
        let changes = pending_changes(&repo).expect("status");
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["b.txt"]);
    }

    #[test]
    fn keys_that_run_programs_are_refused_with_their_names() {
        for (key, value) in [
            ("core.hooksPath", "/tmp/hooks"),
            ("core.fsmonitor", "touch /tmp/pwned"),
            ("core.sshCommand", "sh -c evil"),
            ("core.gitProxy", "evil"),
            ("filter.x.clean", "evil"),
            ("diff.Some.Where.textconv", "evil"),
            ("includeIf.gitdir:/.path", "/etc/gitconfig"),
            ("include.path", "/tmp/other"),
            ("pager.log", "evil"),
            ("extensions.worktreeConfig", "true"),
            ("CORE.FSMONITOR", "evil"),
        ] {
            let (dir, _outside) = victim();
            set_config(dir.path(), key, value);
            let repo = open(dir.path()).expect("open");
            let err = check(&repo).expect_err(key);
            let text = err.to_string();
            assert!(
                text.to_ascii_lowercase()
                    .contains(&key.to_ascii_lowercase())
                    && text.contains(value),
                "{key}: {text}"
            );
        }
        // Ordinary keys are fine.
        let (dir, _outside) = victim();
        set_config(dir.path(), "remote.origin.url", "https://example.org/x.git");
        set_config(dir.path(), "user.name", "Ada");
        set_config(dir.path(), "alias.st", "status");
        check(&open(dir.path()).expect("open")).expect("plain keys pass");
    }

    #[test]
    fn an_included_file_is_refused_even_when_it_sets_nothing_refused() {
        let (dir, outside) = victim();
        let other = outside.path().join("other.config");
        std::fs::write(&other, "[user]\n\tname = x\n").expect("write");
        set_config(dir.path(), "include.path", other.to_str().expect("utf-8"));
        let repo = open(dir.path()).expect("open");
        assert!(check(&repo).is_err());
    }

    #[test]
    fn a_git_file_or_link_or_alternates_is_not_followed() {
        let (dir, outside) = victim();
        let elsewhere = init(outside.path()).expect("another repository");
        drop(elsewhere);
        let git = dir.path().join(".git");
        std::fs::rename(&git, dir.path().join("moved")).expect("move");
        std::fs::write(
            &git,
            format!("gitdir: {}\n", outside.path().join(".git").display()),
        )
        .expect("gitdir file");
        let err = open(dir.path()).err().expect("gitdir file refused");
        assert!(err.to_string().contains("gitdir"), "{err}");
        std::fs::remove_file(&git).expect("rm");
        std::os::unix::fs::symlink(outside.path().join(".git"), &git).expect("link");
        let err = open(dir.path()).err().expect("symlink refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        std::fs::remove_file(&git).expect("rm");
        std::fs::rename(dir.path().join("moved"), &git).expect("back");
        let repo = open(dir.path()).expect("plain again");
        std::fs::write(
            git.join("objects/info/alternates"),
            format!("{}\n", outside.path().join(".git/objects").display()),
        )
        .expect("alternates");
        let err = check(&repo).expect_err("alternates");
        assert!(err.to_string().contains("alternates"), "{err}");
        assert!(open(dir.path()).is_err());
    }

    #[test]
    fn git_subprocesses_ignore_the_repository_s_fsmonitor() {
        let (dir, outside) = victim();
        let marker = outside.path().join("ran");
        set_config(
            dir.path(),
            "core.fsmonitor",
            &format!("touch {}; false", marker.display()),
        );
        // `git status` in a work tree would run the monitor; the node's own
        // command line overrides it.
        let status = git_command(&dir.path().join(".git"))
            .arg("--work-tree")
            .arg(dir.path())
            .args(["status", "--porcelain"])
            .output()
            .expect("git");
        assert!(status.status.success(), "{status:?}");
        assert!(!marker.exists(), "the monitor ran");
    }
}
