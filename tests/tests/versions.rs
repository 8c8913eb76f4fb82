//! Any version, exactly: a project with several versions (code edits, a
//! 20 MiB input file replaced, packages changed, a dataset version linked)
//! is browsed, compared and restored through the real CLI and API of real
//! `tandem up` processes, and a second node that syncs sees the same.

use std::fs;
use std::path::Path;
use std::time::Duration;

use tandem_e2e::{TestNode, blake3_of, blob_pointer, git, quiet_project, wait_for, write_random};

const MIB: u64 = 1024 * 1024;

/// The parts of a tree a restore brings back, as Git names them.
const RESTORED: [&str; 5] = [
    "code",
    "input",
    ".tandem/env",
    ".tandem/blobs",
    ".tandem/datasets",
];

fn head(node: &TestNode, project: &str) -> String {
    git(&node.project_dir(project), &["rev-parse", "HEAD"])
        .trim()
        .to_owned()
}

fn tree_of(dir: &Path, commit: &str, path: &str) -> String {
    git(dir, &["rev-parse", &format!("{commit}:{path}")])
        .trim()
        .to_owned()
}

fn pin(dir: &Path, name: &str, version: &str) {
    let path = dir.join(format!(".tandem/env/packages/pip_{name}.toml"));
    fs::create_dir_all(path.parent().expect("folder")).expect("packages folder");
    fs::write(
        path,
        format!("manager = \"pip\"\nname = \"{name}\"\nversion = \"{version}\"\n"),
    )
    .expect("write pin");
}

/// A dataset `gps` with two versions on `node`.
fn dataset(node: &TestNode, scratch: &Path) {
    node.run(&["dataset", "create", "gps"])
        .expect_ok("create dataset");
    node.run(&["sync", "gps", "--auto", "off"])
        .expect_ok("auto off");
    let source = scratch.join("gps");
    write_random(&source.join("track.bin"), 2 * MIB, 77);
    node.run(&["dataset", "add", "gps", source.to_str().expect("utf-8")])
        .expect_ok("dataset v1");
    write_random(
        &node.project_dir("gps").join("data/gps/track.bin"),
        2 * MIB,
        78,
    );
    node.run(&["dataset", "add", "gps", "--message", "second"])
        .expect_ok("dataset v2");
}

/// Versions of `study`: returns (v1, v2, v3) commits and a copy of v1's
/// large input file.
struct Story {
    v1: String,
    v2: String,
    v3: String,
    first_input: tempfile::TempDir,
}

fn story(ada: &TestNode) -> Story {
    let scratch = tempfile::tempdir().expect("scratch");
    dataset(ada, scratch.path());
    quiet_project(ada, "study");
    let dir = ada.project_dir("study");
    fs::write(dir.join("code/analysis.py"), "print(1)\n").expect("write");
    write_random(&dir.join("input/survey.bin"), 20 * MIB, 1);
    pin(&dir, "six", "1.16.0");
    ada.run(&["dataset", "link", "study", "gps@1"])
        .expect_ok("link v1");
    ada.run(&["sweep", "study"]).expect_ok("sweep v1");
    let v1 = head(ada, "study");
    let first_input = tempfile::tempdir().expect("copy");
    fs::copy(
        dir.join("input/survey.bin"),
        first_input.path().join("survey.bin"),
    )
    .expect("keep v1's input");
    // Commit times have a resolution of one second: keep versions apart.
    std::thread::sleep(Duration::from_millis(1100));

    fs::write(dir.join("code/analysis.py"), "print(2)\n").expect("write");
    fs::write(dir.join("code/helpers.py"), "def f():\n    return 2\n").expect("write");
    write_random(&dir.join("input/survey.bin"), 20 * MIB, 2);
    pin(&dir, "six", "1.17.0");
    pin(&dir, "requests", "2.32.3");
    ada.run(&["dataset", "link", "study", "gps@2"])
        .expect_ok("link v2");
    ada.run(&["sweep", "study"]).expect_ok("sweep v2");
    let v2 = head(ada, "study");
    std::thread::sleep(Duration::from_millis(1100));

    fs::write(dir.join("code/README.md"), "# Study\n\nThird version.\n").expect("write");
    fs::remove_file(dir.join("code/helpers.py")).expect("remove");
    ada.run(&["sweep", "study"]).expect_ok("sweep v3");
    let v3 = head(ada, "study");
    assert!(v1 != v2 && v2 != v3, "three versions");
    Story {
        v1,
        v2,
        v3,
        first_input,
    }
}

#[test]
fn a_project_goes_back_to_its_first_version_exactly_and_a_peer_sees_the_same() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    let s = story(&ada);
    let dir = ada.project_dir("study");
    ada.run(&["share", "study", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    ada.run(&["share", "gps", &bob.did(), "--role", "reader"])
        .expect_ok("share dataset");
    bob.run(&["project", "clone", &ada.project_id("gps")])
        .expect_ok("clone dataset");
    bob.run(&["project", "clone", &ada.project_id("study")])
        .expect_ok("clone");
    bob.run(&["sync", "study", "--auto", "off"])
        .expect_ok("auto off");
    let access_before = tree_of(&dir, "HEAD", ".tandem/access");
    let manifest_before = tree_of(&dir, "HEAD", ".tandem/project.toml");

    // Uncommitted work is swept into a version of its own first.
    fs::write(dir.join("code/scratch.py"), "x = 1\n").expect("write");
    let restored = ada
        .run(&["restore", "study", &s.v1[..8], "--json"])
        .expect_ok("restore v1")
        .json();
    let new = head(&ada, "study");
    assert_eq!(
        restored["commit"].as_str(),
        Some(new.as_str()),
        "{restored}"
    );
    assert_eq!(restored["restored"]["commit"], s.v1.as_str());
    assert_eq!(restored["missing"], serde_json::json!([]), "{restored}");
    let log = git(&dir, &["log", "--format=%H %s"]);
    assert!(
        log.contains(&s.v2) && log.contains(&s.v3),
        "later versions stay: {log}"
    );
    assert!(
        log.contains("tandem:code] ") && log.lines().nth(1).is_some_and(|l| l.contains("scratch")),
        "the uncommitted file was swept first: {log}"
    );
    let parent = git(&dir, &["rev-parse", "HEAD^"]).trim().to_owned();
    assert_ne!(parent, s.v1, "a new commit on top, not a reset");

    // Byte for byte what v1 recorded, in Git and in the working tree.
    for part in RESTORED {
        assert_eq!(
            tree_of(&dir, "HEAD", part),
            tree_of(&dir, &s.v1, part),
            "{part}"
        );
    }
    assert_eq!(
        fs::read_to_string(dir.join("code/analysis.py")).expect("read"),
        git(&dir, &["show", &format!("{}:code/analysis.py", s.v1)])
    );
    assert!(!dir.join("code/helpers.py").exists(), "added after v1");
    assert!(
        !dir.join("code/scratch.py").exists(),
        "swept, then not in v1"
    );
    assert!(
        !dir.join("code/README.md").exists(),
        "v1 had no README; v3's is gone with the rest of v3"
    );
    let (hash, size) = blob_pointer(&ada, "study", "input/survey.bin");
    assert_eq!(size, 20 * MIB);
    assert_eq!(blake3_of(&dir.join("input/survey.bin")), hash);
    assert!(tandem_e2e::same_bytes(
        &dir.join("input/survey.bin"),
        &s.first_input.path().join("survey.bin")
    ));
    assert_eq!(
        fs::read_to_string(dir.join(".tandem/env/packages/pip_six.toml")).expect("pin"),
        git(
            &dir,
            &[
                "show",
                &format!("{}:.tandem/env/packages/pip_six.toml", s.v1)
            ]
        )
    );
    assert!(!dir.join(".tandem/env/packages/pip_requests.toml").exists());
    let link = fs::read_to_string(dir.join(".tandem/datasets/gps.toml")).expect("link");
    assert!(link.contains("version = 1"), "{link}");
    // Who may do what, and what the project is, are never rolled back.
    assert_eq!(tree_of(&dir, "HEAD", ".tandem/access"), access_before);
    assert_eq!(
        tree_of(&dir, "HEAD", ".tandem/project.toml"),
        manifest_before
    );
    assert_eq!(
        git(&dir, &["status", "--porcelain"]).trim(),
        "",
        "nothing left half-done"
    );
    let entry = &restored["entry"];
    assert_eq!(entry["kind"], "milestone");
    let message = entry["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Restored the version of ") && message.contains(&s.v1[..7]),
        "{message}"
    );

    // Bob syncs and has exactly the same, large file fetched from Ada.
    let synced = bob.api_post("/api/projects/study/sync", &serde_json::json!({}));
    assert_eq!(head(&bob, "study"), new, "{synced}");
    let bob_dir = bob.project_dir("study");
    let arrived = wait_for(Duration::from_secs(60), || {
        (bob_dir.join("input/survey.bin").exists()
            && blake3_of(&bob_dir.join("input/survey.bin")) == hash)
            .then_some(())
    });
    assert!(arrived.is_some(), "Bob got v1's large file: {synced}");
    assert_eq!(
        fs::read_to_string(bob_dir.join("code/analysis.py")).expect("read"),
        "print(1)\n"
    );
    assert!(!bob_dir.join("code/helpers.py").exists());
    let bob_entries = bob
        .run(&["activity", "study", "--kind", "milestone", "--json"])
        .expect_ok("activity")
        .json();
    assert!(
        bob_entries.to_string().contains("Restored the version of"),
        "{bob_entries}"
    );

    // The later versions can be restored in turn.
    ada.run(&["restore", "study", &s.v3])
        .expect_ok("restore v3");
    for part in RESTORED {
        assert_eq!(
            tree_of(&dir, "HEAD", part),
            tree_of(&dir, &s.v3, part),
            "{part}"
        );
    }
    assert_eq!(
        fs::read_to_string(dir.join("code/README.md")).expect("readme"),
        "# Study\n\nThird version.\n"
    );
    // Restoring the version the project already is changes nothing.
    let before = head(&ada, "study");
    let same = ada
        .run(&["restore", "study", "current", "--json"])
        .expect_ok("restore current")
        .json();
    assert_eq!(same["commit"], serde_json::Value::Null);
    assert_eq!(head(&ada, "study"), before);
}

#[test]
fn versions_are_browsed_compared_and_refused_clearly() {
    let ada = TestNode::started("Ada");
    let s = story(&ada);
    let dir = ada.project_dir("study");

    // By commit prefix: v1's files, environment and dataset link.
    let at = ada
        .run(&["files", "study", "--at", &s.v1[..7], "--json"])
        .expect_ok("files at v1")
        .json();
    assert_eq!(at["version"]["commit"], s.v1.as_str());
    assert_eq!(at["version"]["current"], false);
    let files = at["sections"].to_string();
    assert!(
        files.contains("code/analysis.py") && !files.contains("helpers.py"),
        "{files}"
    );
    let survey = at["sections"]
        .as_array()
        .and_then(|s| s.iter().find(|g| g["section"] == "input"))
        .and_then(|g| g["files"].as_array())
        .and_then(|f| f.iter().find(|f| f["path"] == "input/survey.bin"))
        .cloned()
        .expect("v1 lists its large file");
    assert_eq!(survey["size"].as_u64(), Some(20 * MIB));
    assert_eq!(survey["blob"]["state"], "local", "{survey}");
    let v1_hash = git(
        &dir,
        &[
            "show",
            &format!("{}:.tandem/blobs/input/survey.bin.toml", s.v1),
        ],
    );
    assert!(v1_hash.contains(survey["blob"]["hash"].as_str().expect("hash")));
    assert_eq!(at["env"]["packages"][0]["name"], "six");
    assert_eq!(at["env"]["packages"][0]["version"], "1.16.0");
    assert_eq!(at["datasets"][0]["name"], "gps");
    assert_eq!(at["datasets"][0]["version"], 1);
    let human = ada
        .run(&["files", "study", "--at", &s.v1[..7]])
        .expect_ok("files at v1")
        .stdout;
    assert!(
        human.contains("pip six 1.16.0") && human.contains("dataset gps version 1"),
        "{human}"
    );

    // By activity entry id, and by date (the end of v1's second).
    let entries = ada
        .run(&["activity", "study", "--json", "--limit", "1000"])
        .expect_ok("activity")
        .json();
    let entry = entries
        .as_array()
        .and_then(|e| e.iter().find(|e| e["commit"] == s.v1.as_str()))
        .and_then(|e| e["id"].as_str())
        .expect("an entry of v1")
        .to_owned();
    let by_entry = ada
        .run(&["files", "study", "--at", &entry, "--json"])
        .expect_ok("files at entry")
        .json();
    assert_eq!(by_entry["version"]["commit"], s.v1.as_str());
    let when = git(&dir, &["show", "-s", "--format=%ct", &s.v1]);
    let when: i64 = when.trim().parse().expect("commit time");
    let date = chrono::DateTime::from_timestamp(when, 0)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let by_date = ada
        .run(&["files", "study", "--at", &date, "--json"])
        .expect_ok("files at date")
        .json();
    assert_eq!(by_date["version"]["commit"], s.v1.as_str(), "{date}");

    // Compare v1 with v2: text diff, large file by hash, packages, link.
    let diff = ada
        .run(&["diff", "study", &s.v1, &s.v2, "--json"])
        .expect_ok("diff")
        .json();
    let file = |path: &str| {
        diff["files"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["path"] == path))
            .cloned()
            .unwrap_or_else(|| panic!("{path} in {diff}"))
    };
    let analysis = file("code/analysis.py");
    assert_eq!(analysis["action"], "modified");
    let patch = analysis["patch"].as_str().expect("a text diff");
    assert!(
        patch.contains("-print(1)") && patch.contains("+print(2)"),
        "{patch}"
    );
    assert_eq!(file("code/helpers.py")["action"], "added");
    let survey = file("input/survey.bin");
    assert_eq!(survey["large"], true);
    assert_ne!(survey["before"]["hash"], survey["after"]["hash"]);
    assert_eq!(survey["after"]["size"].as_u64(), Some(20 * MIB));
    let packages = diff["packages"].to_string();
    assert!(
        packages.contains(r#""name":"six""#)
            && packages.contains(r#""before":"1.16.0""#)
            && packages.contains(r#""after":"1.17.0""#),
        "{packages}"
    );
    assert!(packages.contains(r#""name":"requests""#), "{packages}");
    assert_eq!(diff["datasets"][0]["before"], 1);
    assert_eq!(diff["datasets"][0]["after"], 2);
    let text = ada
        .run(&["diff", "study", &s.v2[..7], &s.v3[..7]])
        .expect_ok("diff text")
        .stdout;
    assert!(
        text.contains("deleted") && text.contains("code/helpers.py"),
        "{text}"
    );
    assert!(text.contains("+Third version."), "{text}");

    // Any file of a version downloads, a large one verified from the store.
    let raw = |path: &str| {
        ada.api_get_bytes(&format!("/api/projects/study/versions/{}/raw/{path}", s.v1))
    };
    let (status, bytes) = raw("code/analysis.py");
    assert_eq!((status, bytes.as_slice()), (200, b"print(1)\n".as_slice()));
    let (status, bytes) = raw("input/survey.bin");
    assert_eq!(status, 200);
    assert_eq!(
        blake3::hash(&bytes).to_hex().to_string(),
        blake3_of(&s.first_input.path().join("survey.bin"))
    );

    // Bad input: clear refusals, nothing changed.
    let before = head(&ada, "study");
    ada.run(&["files", "study", "--at", "deadbeef"])
        .expect_err("unknown commit", "names no version of study");
    ada.run(&["files", "study", "--at", "yesterday-ish"])
        .expect_err("not a version", "names no version of study");
    // One step back works; a chain of them is refused, never recursed.
    let back = "before:".repeat(5_000) + "current";
    ada.run(&["files", "study", "--at", &back])
        .expect_err("before:before:…", "names no version of study");
    ada.run(&["files", "study", "--at", "before:current"])
        .expect_ok("the version before the current one");
    ada.run(&["restore", "study", "2001-01-01"])
        .expect_err("before the project", "is before study existed");
    let note = ada.api_post(
        "/api/projects/study/notes",
        &serde_json::json!({ "text": "a thought", "tags": [] }),
    );
    let note_id = note["id"].as_str().expect("note id").to_owned();
    ada.run(&["restore", "study", &note_id])
        .expect_err("a note", "recorded no version of the files");
    ada.run(&["diff", "study", "nothing-like-it"])
        .expect_err("diff of nothing", "names no version");
    let (status, _) = raw("../../etc/passwd");
    assert!(status == 400 || status == 404, "{status}");
    let (status, _) = raw("code/not-there.py");
    assert_eq!(status, 404);
    assert_eq!(head(&ada, "study"), before, "refusals change nothing");
}
