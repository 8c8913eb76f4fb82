//! Identity boundary: a project's id and genesis are pinned in the home when
//! it arrives, so a writer who commits the manifest of a project they made
//! themselves cannot take it over, and neither can a manifest edited in the
//! working tree.
//!
//! The attacker is a writer whose node serves a commit it made with Git's
//! own plumbing (as a modified node would: nothing in its working tree
//! changes, so its own node never sweeps a fix on top).

use std::fs;
use std::path::Path;

use tandem_e2e::{TestNode, git};

/// `(did, role)` of each member, as the node reports them.
fn roles(node: &TestNode, project: &str) -> Vec<(String, String)> {
    let view = node
        .run(&["members", project, "--json"])
        .expect_ok("members")
        .json();
    let mut out: Vec<(String, String)> = view["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["did"].as_str().unwrap_or_default().to_owned(),
                m["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn show(node: &TestNode, project: &str) -> serde_json::Value {
    node.run(&["project", "show", project, "--json"])
        .expect_ok("project show")
        .json()
}

/// Commits `manifest` as `.tandem/project.toml` on `main` without touching
/// the working tree or the index.
fn commit_manifest_behind_the_nodes_back(dir: &Path, manifest: &Path) {
    let blob = git(
        dir,
        &["hash-object", "-w", manifest.to_str().expect("utf-8 path")],
    );
    let tree_of_head = git(dir, &["rev-parse", "HEAD^{tree}"]);
    let index = dir.join(".git/hostile-index");
    let with_index = |args: &[&str]| -> String {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_INDEX_FILE", &index)
            .output()
            .expect("run git");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    with_index(&["read-tree", tree_of_head.trim()]);
    with_index(&[
        "update-index",
        "--cacheinfo",
        &format!("100644,{},.tandem/project.toml", blob.trim()),
    ]);
    let tree = with_index(&["write-tree"]);
    let commit = git(
        dir,
        &[
            "-c",
            "user.name=Mal",
            "-c",
            "user.email=mal@example.org",
            "commit-tree",
            &tree,
            "-p",
            "HEAD",
            "-m",
            "[tandem:code] Updated code/",
        ],
    );
    git(dir, &["update-ref", "refs/heads/main", commit.trim()]);
    let _ = fs::remove_file(index);
}

#[test]
fn a_writer_who_commits_another_manifest_does_not_take_the_project() {
    let mut ada = TestNode::started("Ada");
    let mal = TestNode::started("Mal");
    mal.connect(&ada);
    ada.run(&["project", "create", "survey"])
        .expect_ok("create");
    ada.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");
    let id = ada.project_id("survey");
    let (ada_did, mal_did) = (ada.did(), mal.did());
    ada.run(&["share", "survey", &mal_did, "--role", "writer"])
        .expect_ok("share");
    mal.run(&["project", "clone", &id]).expect_ok("clone");
    mal.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");
    let members_before = roles(&ada, "survey");
    assert_eq!(
        members_before,
        {
            let mut m = vec![
                (ada_did.clone(), "owner".to_owned()),
                (mal_did.clone(), "writer".to_owned()),
            ];
            m.sort();
            m
        },
        "the starting roles"
    );

    // Mal makes a project of his own and commits its manifest into survey.
    mal.run(&["project", "create", "mine"])
        .expect_ok("create mine");
    let mal_id = mal.project_id("mine");
    let mal_manifest = mal.project_dir("mine").join(".tandem/project.toml");
    commit_manifest_behind_the_nodes_back(&mal.project_dir("survey"), &mal_manifest);
    let mal_head = git(&mal.project_dir("survey"), &["rev-parse", "HEAD"]);

    // Ada syncs: the merge is refused, and the sync says what and why.
    let dir = ada.project_dir("survey");
    let head_before = git(&dir, &["rev-parse", "HEAD"]);
    let manifest_before = fs::read_to_string(dir.join(".tandem/project.toml")).expect("manifest");
    let sync = ada.run(&["sync", "survey"]).expect_ok("sync");
    let said = format!("{}{}", sync.stdout, sync.stderr);
    assert!(
        said.contains(".tandem/project.toml") && said.contains("refused"),
        "the sync names the refused file and why:\n{said}"
    );
    assert!(said.contains(&mal_id), "it names the other id:\n{said}");
    assert_eq!(
        git(&dir, &["rev-parse", "HEAD"]),
        head_before,
        "the branch did not move"
    );
    assert_ne!(head_before, mal_head);
    assert_eq!(
        fs::read_to_string(dir.join(".tandem/project.toml")).expect("manifest"),
        manifest_before,
        "the working tree is unchanged"
    );
    assert_eq!(git(&dir, &["status", "--porcelain"]).trim(), "");

    // Even after Ada's node restarts, the project is hers.
    ada.stop();
    ada.start();
    let shown = show(&ada, "survey");
    assert_eq!(shown["id"], id, "{shown}");
    assert_eq!(shown["role"], "owner", "{shown}");
    assert_eq!(shown["owner"], ada_did, "{shown}");
    assert_eq!(roles(&ada, "survey"), members_before);
    // A second sync refuses again; nothing changed in between.
    mal.connect(&ada);
    let again = ada.run(&["sync", "survey"]).expect_ok("sync again");
    assert!(
        again.stdout.contains("refused"),
        "refused again:\n{}",
        again.stdout
    );
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), head_before);
    assert_eq!(show(&ada, "survey")["id"], id);
}

#[test]
fn a_manifest_edited_in_the_working_tree_is_ignored_and_reported() {
    let mut ada = TestNode::started("Ada");
    ada.run(&["project", "create", "survey"])
        .expect_ok("create");
    let id = ada.project_id("survey");
    let ada_did = ada.did();
    let dir = ada.project_dir("survey");
    let pinned = fs::read_to_string(dir.join(".tandem/project.toml")).expect("manifest");

    // Someone else's project: its manifest is what lands in Ada's tree.
    let mal = TestNode::with_identity("Mal");
    mal.run(&["project", "create", "mine"])
        .expect_ok("create mine");
    let mal_id = mal.project_id("mine");
    let foreign =
        fs::read_to_string(mal.project_dir("mine").join(".tandem/project.toml")).expect("read");

    ada.stop();
    fs::write(dir.join(".tandem/project.toml"), &foreign).expect("overwrite manifest");
    ada.start();

    let shown = show(&ada, "survey");
    assert_eq!(shown["id"], id, "the pinned id wins: {shown}");
    assert_eq!(shown["owner"], ada_did, "{shown}");
    assert_eq!(shown["role"], "owner", "{shown}");
    let problems = shown["problems"].to_string();
    assert!(
        problems.contains(".tandem/project.toml") && problems.contains(&mal_id),
        "the ignored manifest is reported: {shown}"
    );
    let text = ada
        .run(&["project", "show", "survey"])
        .expect_ok("show")
        .stdout;
    assert!(text.contains("problem:"), "{text}");

    // The start-up sweep put the pinned manifest back: nothing foreign was
    // committed, and the history's manifest is still Ada's.
    assert_eq!(
        fs::read_to_string(dir.join(".tandem/project.toml")).expect("manifest"),
        pinned
    );
    assert_eq!(
        git(&dir, &["show", "HEAD:.tandem/project.toml"]).trim(),
        pinned.trim()
    );
    let log = git(
        &dir,
        &["log", "-p", "--format=%H", "--", ".tandem/project.toml"],
    );
    assert!(!log.contains(&mal_id), "never committed:\n{log}");

    // Edited while the node runs: the next sweep puts it back too.
    fs::write(dir.join(".tandem/project.toml"), &foreign).expect("overwrite manifest");
    ada.run(&["sweep", "survey"]).expect_ok("sweep");
    assert_eq!(
        fs::read_to_string(dir.join(".tandem/project.toml")).expect("manifest"),
        pinned
    );
    let log = git(
        &dir,
        &["log", "-p", "--format=%H", "--", ".tandem/project.toml"],
    );
    assert!(!log.contains(&mal_id), "never committed:\n{log}");
    assert_eq!(show(&ada, "survey")["id"], id);
    let list = ada
        .run(&["project", "list", "--json"])
        .expect_ok("list")
        .json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}
