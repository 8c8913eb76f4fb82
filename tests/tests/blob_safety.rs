//! What must hold however fast large data moves: a stored version never
//! shares its bytes with a file the user can edit, and a node killed while
//! a new version arrives leaves the old file or the new one in the working
//! tree, never a torn one.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tandem_e2e::{TestNode, blake3_of, blob_pointer, quiet_project, same_bytes, write_random};

const MIB: u64 = 1024 * 1024;

/// The store's own copy of a blob (large enough not to be kept inline).
fn stored_copy(node: &TestNode, hash: &str) -> PathBuf {
    let path = node.home().join(format!("blobs/data/{hash}.data"));
    assert!(path.exists(), "the store holds {hash} as a file");
    path
}

/// Overwrites a MiB in the middle of the file without truncating it: what
/// a program writing into an open file does, and what would corrupt a
/// stored version sharing the file's blocks or inode.
fn overwrite_in_place(path: &Path) {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for writing");
    file.seek(SeekFrom::Start(MIB)).expect("seek");
    file.write_all(&vec![0xAB; MIB as usize])
        .expect("write in place");
    file.sync_all().expect("flush");
}

/// Truncates the file and writes something else, as most editors save.
fn rewrite(path: &Path) {
    fs::write(path, b"a different, much shorter file").expect("rewrite");
}

#[test]
fn editing_the_working_tree_never_touches_a_stored_version() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    quiet_project(&ada, "lab");
    let mine = ada.project_dir("lab").join("output/model.bin");
    write_random(&mine, 8 * MIB, 5);
    ada.run(&["sweep", "lab"]).expect_ok("sweep");
    let (hash, _) = blob_pointer(&ada, "lab", "output/model.bin");
    ada.run(&["share", "lab", &bob.did(), "--role", "reader"])
        .expect_ok("share");
    bob.run(&["project", "clone", &ada.project_id("lab")])
        .expect_ok("clone with data");
    let theirs = bob.project_dir("lab").join("output/model.bin");
    assert!(same_bytes(&mine, &theirs), "Bob has Ada's bytes");

    // Ingested on Ada's side, received on Bob's: each side's working-tree
    // file is its own inode, and so is each store copy.
    for (node, file) in [(&ada, &mine), (&bob, &theirs)] {
        let stored = stored_copy(node, &hash);
        let (file_meta, stored_meta) = (
            fs::metadata(file).expect("file"),
            fs::metadata(&stored).expect("stored"),
        );
        assert_eq!(file_meta.nlink(), 1, "{}: no hard link", file.display());
        assert_eq!(stored_meta.nlink(), 1, "{}: no hard link", stored.display());
        assert_ne!(file_meta.ino(), stored_meta.ino());

        overwrite_in_place(file);
        assert_eq!(
            blake3_of(&stored),
            hash,
            "an edit in place left the stored version intact"
        );
        rewrite(file);
        assert_eq!(
            blake3_of(&stored),
            hash,
            "a rewrite left the stored version intact"
        );
    }
}

/// The files in a folder of the working tree, by name.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether the store holds every byte of the file (`tandem files`).
fn complete_in_store(node: &TestNode, project: &str, path: &str) -> bool {
    let sections = node
        .run(&["files", project, "--json"])
        .expect_ok("files")
        .json();
    sections
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["files"].as_array().cloned().unwrap_or_default())
        .any(|f| f["path"] == path && f["blob"]["state"] == "local")
}

#[test]
fn a_node_killed_while_a_new_version_arrives_leaves_the_old_file_or_the_new() {
    let ada = TestNode::started("Ada");
    let mut bob = TestNode::started("Bob");
    bob.connect(&ada);
    quiet_project(&ada, "lab");
    let source = ada.project_dir("lab").join("output/model.bin");
    write_random(&source, 16 * MIB, 1);
    ada.run(&["sweep", "lab"]).expect_ok("sweep v1");
    let old = blake3_of(&source);
    ada.run(&["share", "lab", &bob.did(), "--role", "reader"])
        .expect_ok("share");
    bob.run(&["project", "clone", &ada.project_id("lab")])
        .expect_ok("clone with data");
    write_random(&source, 256 * MIB, 2);
    ada.run(&["sweep", "lab"]).expect_ok("sweep v2");
    let new = blake3_of(&source);
    let target = bob.project_dir("lab").join("output/model.bin");
    let folder = bob.project_dir("lab").join("output");
    let before = names_in(&folder);

    // Kills at later and later points of the transfer; once the store
    // holds all of it, at short delays, to land in the write-out.
    let mut delay = Duration::from_millis(50);
    let mut kills = 0;
    let mut writes_out = 0;
    while blake3_of(&target) != new {
        assert!(kills < 60, "the new version arrived within 60 kills");
        let complete = complete_in_store(&bob, "lab", "output/model.bin");
        let mut fetch = bob
            .command()
            .args(["sync", "lab"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sync");
        // Into the write-out: 15 ms, then half as long again each time,
        // so early points are hit and a slow disk still ends the loop.
        let wait = if complete {
            writes_out += 1;
            Duration::from_millis(15).mul_f64(1.5f64.powi(writes_out - 1))
        } else {
            delay
        };
        std::thread::sleep(wait);
        bob.kill();
        let _ = fetch.wait();
        kills += 1;
        let now = blake3_of(&target);
        assert!(
            now == old || now == new,
            "after a kill {wait:?} into a sync, the file is neither the old version nor the new"
        );
        assert_eq!(
            names_in(&folder),
            before,
            "nothing half-written beside the user's file"
        );
        delay += Duration::from_millis(120);
        bob.start();
        bob.connect(&ada);
    }
    eprintln!("crash safety: {kills} kills, {writes_out} of them once the store held all of it");
}

#[test]
fn a_peer_that_stops_reading_never_stalls_another() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    let cy = TestNode::started("Cy");
    cy.connect(&ada);
    quiet_project(&ada, "lab");
    let source = ada.project_dir("lab").join("output/model.bin");
    write_random(&source, 64 * MIB, 8);
    ada.run(&["sweep", "lab"]).expect_ok("sweep");
    let (hash, _) = blob_pointer(&ada, "lab", "output/model.bin");
    for peer in [&bob, &cy] {
        ada.run(&["share", "lab", &peer.did(), "--role", "reader"])
            .expect_ok("share");
    }
    cy.run(&["project", "clone", &ada.project_id("lab"), "--no-data"])
        .expect_ok("clone");

    // Bob, a member, asks for the file and then takes nothing.
    let hold = Duration::from_secs(25);
    let (secret, server, address) = (
        tandem_e2e::blob_probe::secret_of(bob.home()),
        tandem_e2e::blob_probe::public_of(&ada),
        tandem_e2e::blob_probe::address_of(&ada),
    );
    let staller = std::thread::spawn(move || {
        tandem_e2e::blob_probe::stall(secret, server, address, &hash, hold)
    });
    std::thread::sleep(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let fetched = tandem_e2e::fetch_json(&cy, "lab", &[]);
    let took = started.elapsed();
    assert_eq!(
        fetched["fetched"],
        serde_json::json!(["output/model.bin"]),
        "{fetched}"
    );
    assert!(same_bytes(
        &source,
        &cy.project_dir("lab").join("output/model.bin")
    ));
    assert!(
        !staller.is_finished(),
        "the stalled request was still open while Cy fetched"
    );
    assert!(
        took < Duration::from_secs(15),
        "Cy's fetch took {took:?} beside a peer that reads nothing"
    );
    assert!(staller.join().expect("staller"), "Bob's request was sent");
}
