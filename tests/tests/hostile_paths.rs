//! Paths boundary: no byte is written or read outside a project's folder
//! because of what a peer, an archive or the container put in it.
//!
//! The attack in each test is a symbolic link (`input/evil -> ../../..`,
//! which from `$TANDEM_HOME/projects/NAME/input/` is the node's home) plus a
//! blob pointer or dataset file beneath it: without care, writing the
//! pointed-to file writes the node's identity key, and sweeping it reads the
//! key into the blob store and serves it to the writer.
//!
//! The writer commits with Git's own plumbing (as a modified node would):
//! its working tree does not change, so its own node never sweeps anything
//! on top.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use tandem_e2e::{TestNode, blob_probe, git, write_random};
use tandem_protocol::blob::BlobHash;

const MIB: u64 = 1024 * 1024;

fn project(owner: &TestNode, name: &str) {
    owner.run(&["project", "create", name]).expect_ok("create");
    owner
        .run(&["sync", name, "--auto", "off"])
        .expect_ok("auto off");
}

/// The pointer text for a blob, as Tandem writes it.
fn pointer_text(hash: &str, size: u64) -> String {
    format!("hash = \"{hash}\"\nsize = {size}\n")
}

/// One entry of a hostile commit: git mode, content, path.
type Entry<'a> = (&'a str, &'a [u8], &'a str);

/// Commits `entries` on top of `main` in the repository at `git_dir`
/// (a work tree or a bare repository) without touching any work tree or
/// index: `hash-object`, `update-index --cacheinfo` into a private index,
/// `write-tree`, `commit-tree`, `update-ref`.
fn commit_behind_the_nodes_back(git_dir: &Path, entries: &[Entry<'_>]) -> String {
    let index = std::env::temp_dir().join(format!(
        "hostile-index-{}-{}",
        std::process::id(),
        entries.len()
    ));
    let run = |args: &[&str], input: Option<&[u8]>| -> String {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(git_dir)
            .args(["-c", "user.name=Mal", "-c", "user.email=mal@example.org"])
            .args(args)
            .env("GIT_INDEX_FILE", &index)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run git");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.unwrap_or_default())
            .expect("feed git");
        drop(stdin);
        let output = child.wait_with_output().expect("git finished");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let parent = run(&["rev-parse", "refs/heads/main"], None);
    run(&["read-tree", &format!("{parent}^{{tree}}")], None);
    for (mode, content, path) in entries {
        let blob = run(&["hash-object", "-w", "--stdin"], Some(content));
        run(
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("{mode},{blob},{path}"),
            ],
            None,
        );
    }
    let tree = run(&["write-tree"], None);
    let commit = run(
        &[
            "commit-tree",
            &tree,
            "-p",
            &parent,
            "-m",
            "[tandem:input] Updated input/",
        ],
        None,
    );
    run(&["update-ref", "refs/heads/main", &commit], None);
    let _ = fs::remove_file(&index);
    commit
}

/// What a hostile path aims at in a node's home: its identity key.
struct HomeSnapshot {
    key: Vec<u8>,
}

fn snapshot(home: &Path) -> HomeSnapshot {
    HomeSnapshot {
        key: fs::read(home.join("identity.key")).expect("identity key"),
    }
}

/// The home still holds the same key, and no file named by the attack.
fn home_untouched(node: &TestNode, before: &HomeSnapshot, planted: &[&str]) {
    assert_eq!(
        fs::read(node.home().join("identity.key")).expect("identity key"),
        before.key,
        "the identity key was overwritten"
    );
    for name in planted {
        assert!(
            fs::symlink_metadata(node.home().join(name)).is_err(),
            "{name} was written into the home"
        );
    }
}

/// No symbolic link or submodule in the project's committed tree.
fn no_links_committed(dir: &Path) {
    let tree = git(dir, &["ls-tree", "-r", "HEAD"]);
    assert!(
        !tree
            .lines()
            .any(|l| l.starts_with("120000") || l.starts_with("160000")),
        "a link was committed:\n{tree}"
    );
}

/// Ada owns `survey` with one large file in her store; Mal, a writer, has
/// cloned it. Returns the large file's hash and size.
fn shared_with_a_writer(ada: &TestNode, mal: &TestNode) -> (String, u64) {
    project(ada, "survey");
    let dir = ada.project_dir("survey");
    write_random(&dir.join("input/big.bin"), 2 * MIB, 7);
    ada.run(&["sweep", "survey"]).expect_ok("sweep");
    let (hash, size) = tandem_e2e::blob_pointer_in(&dir, "input/big.bin");
    ada.run(&["share", "survey", &mal.did(), "--role", "writer"])
        .expect_ok("share");
    mal.run(&["project", "clone", &ada.project_id("survey")])
        .expect_ok("clone");
    mal.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");
    (hash, size)
}

#[test]
fn a_link_and_pointer_from_a_writer_write_nothing_outside_the_project() {
    let ada = TestNode::started("Ada");
    let mal = TestNode::started("Mal");
    mal.connect(&ada);
    let (hash, size) = shared_with_a_writer(&ada, &mal);
    let dir = ada.project_dir("survey");
    let before = snapshot(ada.home());
    let head_before = git(&dir, &["rev-parse", "HEAD"]);

    // Mal's commit: the link, and two pointers beneath it naming a blob
    // Ada's store holds (the one she swept), one over her key.
    let pointer = pointer_text(&hash, size);
    commit_behind_the_nodes_back(
        &mal.project_dir("survey"),
        &[
            ("120000", b"../../..", "input/evil"),
            (
                "100644",
                pointer.as_bytes(),
                ".tandem/blobs/input/evil/identity.key.toml",
            ),
            (
                "100644",
                pointer.as_bytes(),
                ".tandem/blobs/input/evil/planted.bin.toml",
            ),
        ],
    );

    let sync = ada.run(&["sync", "survey"]);
    let said = format!("{}{}", sync.stdout, sync.stderr);
    home_untouched(&ada, &before, &["planted.bin"]);
    assert!(
        said.contains("input/evil") && said.contains("symbolic link"),
        "the sync says what it refused:\n{said}"
    );
    assert!(
        fs::symlink_metadata(dir.join("input/evil")).is_err(),
        "the link is not in the working tree"
    );
    assert_eq!(
        git(&dir, &["rev-parse", "HEAD"]),
        head_before,
        "the branch did not move"
    );
    assert_eq!(git(&dir, &["status", "--porcelain"]).trim(), "");

    // A second sync refuses again, and the node still works.
    let again = ada.run(&["sync", "survey"]);
    let said = format!("{}{}", again.stdout, again.stderr);
    assert!(said.contains("input/evil"), "{said}");
    home_untouched(&ada, &before, &["planted.bin"]);
    ada.run(&["sweep", "survey"]).expect_ok("sweep still works");
}

/// Unpacks `archive` into `dest` (a folder per entry name).
fn unzip(archive: &Path, dest: &Path) {
    let mut zip = zip::ZipArchive::new(fs::File::open(archive).expect("archive")).expect("zip");
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).expect("entry");
        let target = dest.join(entry.name());
        if entry.is_dir() {
            fs::create_dir_all(&target).expect("mkdir");
            continue;
        }
        fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        let mut out = fs::File::create(&target).expect("create");
        std::io::copy(&mut entry, &mut out).expect("unpack");
    }
}

/// Packs the folder `src` into the zip `archive`, every file by its path.
fn rezip(src: &Path, archive: &Path) {
    let mut zip = zip::ZipWriter::new(fs::File::create(archive).expect("archive"));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut stack: Vec<PathBuf> = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for item in fs::read_dir(&dir).expect("list").flatten() {
            let path = item.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path
                .strip_prefix(src)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            zip.start_file(name, options).expect("entry");
            zip.write_all(&fs::read(&path).expect("read"))
                .expect("write");
        }
    }
    zip.finish().expect("finish");
}

#[test]
fn an_archive_with_a_link_and_pointer_is_refused_and_writes_nothing_outside() {
    let mal = TestNode::with_identity("Mal");
    project(&mal, "gift");
    let dir = mal.project_dir("gift");
    write_random(&dir.join("input/big.bin"), 2 * MIB, 9);
    mal.run(&["sweep", "gift"]).expect_ok("sweep");
    let (hash, size) = tandem_e2e::blob_pointer_in(&dir, "input/big.bin");
    let scratch = tempfile::tempdir().expect("tempdir");
    let clean = scratch.path().join("clean.zip");
    mal.run(&[
        "project",
        "export",
        "gift",
        "--output",
        clean.to_str().expect("utf-8"),
    ])
    .expect_ok("export");

    // The archive's history gains the link and the pointers; its blob
    // (which the archive carries) is what would be written through it.
    let unpacked = scratch.path().join("unpacked");
    unzip(&clean, &unpacked);
    let pointer = pointer_text(&hash, size);
    commit_behind_the_nodes_back(
        &unpacked.join("repo.git"),
        &[
            ("120000", b"../../..", "input/evil"),
            (
                "100644",
                pointer.as_bytes(),
                ".tandem/blobs/input/evil/identity.key.toml",
            ),
            (
                "100644",
                pointer.as_bytes(),
                ".tandem/blobs/input/evil/planted.bin.toml",
            ),
        ],
    );
    let hostile = scratch.path().join("gift.zip");
    rezip(&unpacked, &hostile);

    let ada = TestNode::with_identity("Ada");
    let before = snapshot(ada.home());
    let import = ada.run(&["project", "import", hostile.to_str().expect("utf-8")]);
    let said = format!("{}{}", import.stdout, import.stderr);
    home_untouched(&ada, &before, &["planted.bin"]);
    assert!(!import.ok, "the import was refused:\n{said}");
    assert!(
        said.contains("input/evil") && said.contains("symbolic link"),
        "the import names the link:\n{said}"
    );
    assert!(!ada.project_dir("gift").exists(), "nothing was imported");

    // The same archive without the hostile commit imports fine.
    ada.run(&["project", "import", clean.to_str().expect("utf-8")])
        .expect_ok("the clean archive imports");
    home_untouched(&ada, &before, &["planted.bin"]);
}

#[test]
fn a_sweep_never_reads_a_file_outside_the_project_through_a_link() {
    let ada = TestNode::started("Ada");
    let mal = TestNode::started("Mal");
    mal.connect(&ada);
    shared_with_a_writer(&ada, &mal);
    let dir = ada.project_dir("survey");
    let before = snapshot(ada.home());
    let key_hash = BlobHash::of(&before.key).to_string();

    // Mal's pointer (any hash) under input/evil arrives by sync; nothing
    // in it is a link, so the merge takes it.
    let any = pointer_text(&"ab".repeat(32), 64);
    commit_behind_the_nodes_back(
        &mal.project_dir("survey"),
        &[(
            "100644",
            any.as_bytes(),
            ".tandem/blobs/input/evil/identity.key.toml",
        )],
    );
    ada.run(&["sync", "survey"]).expect_ok("sync");
    assert!(
        dir.join(".tandem/blobs/input/evil/identity.key.toml")
            .is_file(),
        "the pointer arrived"
    );

    // The container (or anything else with the folder) adds the link.
    std::os::unix::fs::symlink("../../..", dir.join("input/evil")).expect("link");
    let sweep = ada.run(&["sweep", "survey"]);
    let said = format!("{}{}", sweep.stdout, sweep.stderr);

    // The key was not hashed, committed or made servable.
    let history = git(&dir, &["log", "--all", "-p", "--format=%H"]);
    assert!(
        !history.contains(&key_hash),
        "a pointer to the identity key was committed:\n{history}"
    );
    no_links_committed(&dir);
    assert!(
        said.contains("input/evil"),
        "the sweep reports what it left out:\n{said}"
    );
    let got = blob_probe::fetch(
        blob_probe::secret_of(mal.home()),
        blob_probe::public_of(&ada),
        blob_probe::address_of(&ada),
        &key_hash,
    );
    assert!(got.is_err(), "the writer fetched Ada's identity key");
    home_untouched(&ada, &before, &[]);

    // The link stays out of every later sweep too.
    fs::write(dir.join("code/later.py"), "print(1)\n").expect("write");
    ada.run(&["sweep", "survey"]).expect_ok("sweep");
    no_links_committed(&dir);
    assert!(git(&dir, &["ls-files"]).contains("code/later.py"));

    // No link at all: a pointer naming a file Ada keeps out of Git
    // (`untracked/`) does not make her node hash it, commit it or serve it.
    let private = b"ada's private notes, never shared\n";
    fs::create_dir_all(dir.join("code/untracked")).expect("mkdir");
    fs::write(dir.join("code/untracked/notes.txt"), private).expect("write");
    let private_hash = BlobHash::of(private).to_string();
    let any = pointer_text(&"cd".repeat(32), private.len() as u64);
    commit_behind_the_nodes_back(
        &mal.project_dir("survey"),
        &[(
            "100644",
            any.as_bytes(),
            ".tandem/blobs/code/untracked/notes.txt.toml",
        )],
    );
    ada.run(&["sync", "survey"]).expect_ok("sync");
    ada.run(&["sweep", "survey"]).expect_ok("sweep");
    let history = git(&dir, &["log", "--all", "-p", "--format=%H"]);
    assert!(
        !history.contains(&private_hash),
        "the untracked file was hashed and committed"
    );
    assert_eq!(
        fs::read(dir.join("code/untracked/notes.txt")).expect("read"),
        private,
        "the user's file is left as it was"
    );
    let got = blob_probe::fetch(
        blob_probe::secret_of(mal.home()),
        blob_probe::public_of(&ada),
        blob_probe::address_of(&ada),
        &private_hash,
    );
    assert!(got.is_err(), "the writer fetched Ada's untracked file");
}

#[test]
fn a_linked_folder_made_in_the_working_tree_is_never_written_through() {
    let ada = TestNode::started("Ada");
    let mal = TestNode::started("Mal");
    mal.connect(&ada);
    let (hash, size) = shared_with_a_writer(&ada, &mal);
    let dir = ada.project_dir("survey");
    let outside = tempfile::tempdir().expect("tempdir");
    let empty = |what: &str| {
        let names: Vec<_> = fs::read_dir(outside.path())
            .expect("outside")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(names.is_empty(), "{what} wrote outside: {names:?}");
    };

    // The container makes input/sub a link to a folder of the host; a
    // writer's pointer for input/sub/copy.bin then arrives by sync.
    std::os::unix::fs::symlink(outside.path(), dir.join("input/sub")).expect("link");
    let pointer = pointer_text(&hash, size);
    commit_behind_the_nodes_back(
        &mal.project_dir("survey"),
        &[(
            "100644",
            pointer.as_bytes(),
            ".tandem/blobs/input/sub/copy.bin.toml",
        )],
    );
    let sync = ada.run(&["sync", "survey"]);
    let said = format!("{}{}", sync.stdout, sync.stderr);
    empty("materialising a pointer");
    assert!(
        said.contains("input/sub") && said.contains("symbolic link"),
        "the sync says what it refused:\n{said}"
    );
    no_links_committed(&dir);

    // A dataset linked into the project whose folder is such a link.
    ada.run(&["dataset", "create", "gps"])
        .expect_ok("create dataset");
    let source = tempfile::tempdir().expect("tempdir");
    write_random(&source.path().join("track.bin"), 2 * MIB, 11);
    ada.run(&[
        "dataset",
        "add",
        "gps",
        source.path().join("track.bin").to_str().expect("utf-8"),
    ])
    .expect_ok("add");
    std::os::unix::fs::symlink(outside.path(), dir.join("input/gps")).expect("link");
    let link = ada.run(&["dataset", "link", "survey", "gps"]);
    let said = format!("{}{}", link.stdout, link.stderr);
    empty("materialising a dataset link");
    assert!(
        said.contains("input/gps") && said.contains("symbolic link"),
        "linking says what it refused:\n{said}"
    );
    ada.run(&["sweep", "survey"]).expect_ok("sweep");
    no_links_committed(&dir);
    empty("a sweep");
}

#[test]
fn uploads_downloads_readmes_and_adds_never_pass_a_link() {
    let ada = TestNode::started("Ada");
    project(&ada, "lab");
    let dir = ada.project_dir("lab");
    let outside = tempfile::tempdir().expect("tempdir");
    fs::write(outside.path().join("secret.txt"), "host secret\n").expect("write");
    fs::write(outside.path().join("README.md"), "host readme\n").expect("write");
    // What the container could make: a folder link and a file link.
    std::os::unix::fs::symlink(outside.path(), dir.join("input/evil")).expect("link");
    std::os::unix::fs::symlink(outside.path().join("README.md"), dir.join("README.md"))
        .or_else(|_| {
            fs::remove_file(dir.join("README.md"))?;
            std::os::unix::fs::symlink(outside.path().join("README.md"), dir.join("README.md"))
        })
        .expect("link");
    let listing = || {
        let mut names: Vec<String> = fs::read_dir(outside.path())
            .expect("outside")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing();

    let bearer = format!("Bearer {}", ada.token.as_deref().expect("token"));
    let (status, body) = ada.http(
        "PUT",
        "/api/projects/lab/upload/input/evil/planted.txt",
        &[("Authorization", &bearer)],
        "planted",
    );
    assert_eq!(status, 400, "upload through a link: {body}");
    assert!(body.contains("symbolic link"), "{body}");
    let (status, body) = ada.http(
        "GET",
        "/api/projects/lab/raw/input/evil/secret.txt",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(status, 400, "download through a link: {body}");
    assert!(!body.contains("host secret"), "{body}");

    // The README shown is never the linked one (a real one is).
    let cookie = format!("tandem_token={}", ada.token.as_deref().expect("token"));
    let page = |what: &str| {
        let (status, page) = ada.http("GET", "/p/lab", &[("Cookie", &cookie)], "");
        assert_eq!(status, 200, "{what}: {page}");
        page
    };
    assert!(
        !page("linked README").contains("host readme"),
        "the linked README was shown"
    );
    fs::remove_file(dir.join("README.md")).expect("rm link");
    fs::write(dir.join("README.md"), "own readme\n").expect("write");
    assert!(page("own README").contains("own readme"));

    // `tandem add` into a section the container made a link.
    let source = tempfile::tempdir().expect("tempdir");
    fs::write(source.path().join("notes.txt"), "mine\n").expect("write");
    fs::rename(dir.join("output"), dir.join("output-moved")).expect("move output");
    std::os::unix::fs::symlink(outside.path(), dir.join("output")).expect("link");
    ada.run(&[
        "add",
        "lab",
        "output",
        source.path().join("notes.txt").to_str().expect("utf-8"),
    ])
    .expect_err("add through a link", "symbolic link");

    assert_eq!(listing(), before, "something was written outside");
    assert_eq!(
        fs::read_to_string(outside.path().join("secret.txt")).expect("read"),
        "host secret\n"
    );
    ada.run(&["sweep", "lab"]).expect_ok("sweep");
    no_links_committed(&dir);
}
