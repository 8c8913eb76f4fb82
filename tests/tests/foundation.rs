//! The foundation, end to end, as a user would drive it: real `tandem`
//! processes in temporary homes, real Git repositories, real HTTP.

use std::fs;
use std::time::Duration;

use tandem_e2e::{TestNode, git, wait_for};

fn entries(node: &TestNode, project: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["activity", project, "--json"];
    if !extra.contains(&"--limit") {
        args.extend_from_slice(&["--limit", "1000"]);
    }
    args.extend_from_slice(extra);
    let run = node.run(&args).expect_ok("tandem activity");
    run.json()
        .as_array()
        .cloned()
        .expect("a JSON array of entries")
}

fn messages(list: &[serde_json::Value]) -> Vec<String> {
    list.iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn create_add_watch_export_import_round_trip() {
    let mut ada = TestNode::with_identity("Ada");
    let id = ada.run(&["id", "--json"]).expect_ok("tandem id").json();
    let did = id["did"].as_str().expect("did").to_owned();
    assert!(did.starts_with("did:key:z6Mk"), "{did}");
    assert!(
        id["peer_id"]
            .as_str()
            .expect("peer id")
            .starts_with("12D3KooW")
    );

    ada.start();
    let health = ada.api_get("/api/health");
    assert_eq!(health["did"], did.as_str());

    // Create through the running node's API (the CLI finds it by node.json).
    ada.run(&[
        "project",
        "create",
        "survey",
        "--description",
        "Soil survey 2026",
    ])
    .expect_ok("project create");
    let dir = ada.project_dir("survey");
    for section in ["code", "input", "output"] {
        assert!(
            dir.join(section).join("untracked").is_dir(),
            "{section}/untracked missing"
        );
    }
    let manifest = fs::read_to_string(dir.join(".tandem/project.toml")).expect("project.toml");
    assert!(
        manifest.contains("[genesis"),
        "signed genesis in the manifest:\n{manifest}"
    );
    assert!(dir.join("README.md").is_file());

    // Add a folder of data and a script.
    let outside = tempfile::tempdir().expect("tempdir");
    let data = outside.path().join("plots");
    fs::create_dir_all(&data).expect("mkdir");
    for i in 1..=3 {
        fs::write(data.join(format!("plot{i}.csv")), format!("x,y\n{i},{i}\n")).expect("write csv");
    }
    let script = outside.path().join("analysis.py");
    fs::write(&script, "print('hello')\n").expect("write script");
    let added = ada
        .run(&["add", "survey", "input", data.to_str().expect("utf8")])
        .expect_ok("add input");
    assert!(
        added.stdout.contains("3 new files in input/"),
        "{}",
        added.stdout
    );
    ada.run(&["add", "survey", "code", script.to_str().expect("utf8")])
        .expect_ok("add code");

    // An edit from outside Tandem (an editor, a script) is swept by the node.
    fs::write(dir.join("code/analysis.py"), "print('hello, world')\n").expect("edit");
    fs::write(dir.join("output/untracked/scratch.bin"), "local only").expect("untracked write");
    let swept = wait_for(Duration::from_secs(15), || {
        let list = entries(&ada, "survey", &["--kind", "code"]);
        list.iter()
            .find(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("1 file changed in code/"))
            })
            .cloned()
    })
    .expect("the node swept the outside edit into an entry within 15 s");
    let commit = swept["commit"].as_str().expect("linked commit").to_owned();
    let log = git(&dir, &["log", "--format=%H %s"]);
    assert!(
        log.contains(&format!(
            "{commit} [tandem:code] 1 file changed in code/: analysis.py"
        )),
        "{log}"
    );
    assert!(
        !git(&dir, &["ls-files"]).contains("scratch.bin"),
        "untracked/ must never be committed"
    );

    ada.run(&["note", "survey", "Plots 1-3 look off", "--tag", "qa"])
        .expect_ok("note");

    // The feed: newest first, every kind filter and text search narrow it.
    let all = entries(&ada, "survey", &[]);
    let kinds: Vec<&str> = all
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        vec!["note", "code", "code", "input", "milestone"],
        "{:?}",
        messages(&all)
    );
    assert_eq!(entries(&ada, "survey", &["--kind", "input"]).len(), 1);
    assert_eq!(
        messages(&entries(&ada, "survey", &["--search", "LOOK OFF"])),
        vec!["Plots 1-3 look off"]
    );
    assert_eq!(
        entries(&ada, "survey", &["--path", "input/plots/plot2.csv"]).len(),
        1
    );
    assert_eq!(entries(&ada, "survey", &["--author", "Ada"]).len(), 5);
    assert_eq!(entries(&ada, "survey", &["--since", "2999-01-01"]).len(), 0);
    assert_eq!(entries(&ada, "survey", &["--limit", "2"]).len(), 2);
    ada.run(&["activity", "survey", "--kind", "bogus"])
        .expect_err("bad kind", "unknown activity kind");
    ada.run(&["activity", "survey", "--author", "Nobody"])
        .expect_err("unknown author", "no author named");

    git(&dir, &["fsck", "--strict"]);

    // The web UI needs the token; with it, it shows the project and its feed.
    let (status, _) = ada.http("GET", "/", &[], "");
    assert_eq!(status, 401);
    let token = ada.token.clone().expect("token");
    let (status, _) = ada.http(
        "GET",
        "/",
        &[
            ("Host", "evil.example:80"),
            ("Cookie", &format!("tandem_token={token}")),
        ],
        "",
    );
    assert_eq!(
        status, 421,
        "a foreign Host header must be refused (DNS rebinding)"
    );
    let page_of = |path: &str| {
        let (status, page) = ada.http(
            "GET",
            path,
            &[("Cookie", &format!("tandem_token={token}"))],
            "",
        );
        assert_eq!(status, 200, "{path}");
        page
    };
    let files = page_of("/p/survey/files");
    assert!(files.contains("plot1.csv"), "{files}");
    let activity = page_of("/p/survey/activity");
    assert!(activity.contains("Plots 1-3 look off"), "{activity}");

    // Export, stop gracefully, import into a second home with no node running.
    let zip = outside.path().join("survey.zip");
    ada.run(&[
        "project",
        "export",
        "survey",
        "-o",
        zip.to_str().expect("utf8"),
    ])
    .expect_ok("export");
    assert!(ada.stop(), "tandem up exits 0 on SIGTERM");
    assert!(
        !ada.home().join("node.json").exists(),
        "node.json is removed on shutdown"
    );

    let bob = TestNode::with_identity("Bob");
    let imported = bob
        .run(&[
            "project",
            "import",
            zip.to_str().expect("utf8"),
            "--as",
            "survey-copy",
        ])
        .expect_ok("import");
    assert!(
        imported.stdout.contains("survey-copy"),
        "{}",
        imported.stdout
    );
    let copy = bob.project_dir("survey-copy");
    assert_eq!(
        git(&copy, &["rev-parse", "HEAD"]),
        git(&dir, &["rev-parse", "HEAD"]),
        "same history"
    );
    git(&copy, &["fsck", "--strict"]);
    assert_eq!(
        fs::read_to_string(copy.join("code/analysis.py")).expect("checked out"),
        "print('hello, world')\n"
    );
    let theirs = entries(&bob, "survey-copy", &[]);
    let ours = entries(&ada, "survey", &[]);
    let ids = |list: &[serde_json::Value]| -> Vec<String> {
        list.iter()
            .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        theirs.len(),
        ours.len() + 1,
        "the feed plus Bob's own 'Imported' entry"
    );
    assert_eq!(
        ids(&theirs[1..]),
        ids(&ours),
        "Ada's entries arrive unchanged"
    );
    assert_eq!(theirs[0]["author_name"], "Bob");

    // Importing the same project again is refused, whatever its name.
    bob.run(&[
        "project",
        "import",
        zip.to_str().expect("utf8"),
        "--as",
        "again",
    ])
    .expect_err("second import", "already here");
    let shown = bob
        .run(&["project", "show", "survey-copy", "--json"])
        .expect_ok("show")
        .json();
    assert_eq!(shown["owner"], did.as_str(), "the owner is still Ada");

    bob.run(&["project", "delete", "survey-copy"])
        .expect_err("delete without --yes", "--yes");
    bob.run(&["project", "delete", "survey-copy", "--yes"])
        .expect_ok("delete");
    assert!(!copy.exists());
    let listed = bob
        .run(&["project", "list", "--json"])
        .expect_ok("list")
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(0));
}

#[test]
fn cli_and_running_node_share_one_home_safely() {
    let mut node = TestNode::with_identity("Cy");
    node.run(&["project", "create", "p1"])
        .expect_ok("create before up");
    node.start();
    // Several CLI commands at once against the running node: none is lost.
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let mut command = node.command();
            command.args(["note", "p1", &format!("note {i}")]);
            std::thread::spawn(move || command.output().expect("run").status.success())
        })
        .collect();
    for handle in handles {
        assert!(handle.join().expect("thread"), "a concurrent note failed");
    }
    node.run(&["up", "--listen", "127.0.0.1:0"])
        .expect_err("second node", "already running");
    assert!(node.stop());
    // Without the node, the CLI opens the home itself and sees everything.
    let list = entries(&node, "p1", &["--kind", "note"]);
    assert_eq!(list.len(), 6);
}
