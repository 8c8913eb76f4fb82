//! Opening a project's repository without obeying what its own files say
//! about where the work tree is or which programs to run, and Git
//! subprocesses started deaf to the same keys.

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{Repository, RepositoryInitOptions};

use super::error::{RefusedKey, RepoError};

pub const BRANCH: &str = "main";

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
