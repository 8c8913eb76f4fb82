use std::path::Path;

use git2::{Repository, Signature};
use tandem_protocol::activity::FileAction;

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
