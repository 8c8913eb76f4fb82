//! Large files as blobs between real `tandem up` processes on loopback:
//! Git carries pointers, peers carry verified bytes, only to members.

use std::fs;
use std::time::Duration;

use tandem_e2e::{
    TestNode, blob_pointer, blob_probe, fetch_json, git, quiet_project, same_bytes, wait_for,
    write_random,
};

const MIB: u64 = 1024 * 1024;

/// One file's entry in `tandem files --json`.
fn file_entry(node: &TestNode, project: &str, path: &str) -> serde_json::Value {
    let sections = node
        .run(&["files", project, "--json"])
        .expect_ok("files")
        .json();
    sections
        .as_array()
        .expect("sections")
        .iter()
        .flat_map(|s| s["files"].as_array().cloned().unwrap_or_default())
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} is listed: {sections}"))
}

#[test]
fn large_file_travels_as_a_verified_blob_and_only_to_members() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    let cy = TestNode::started("Cy");
    bob.connect(&ada);
    cy.connect(&ada);
    quiet_project(&ada, "survey");
    let dir = ada.project_dir("survey");
    write_random(&dir.join("input/big.bin"), 200 * MIB, 1);
    fs::write(dir.join("input/small.csv"), "a,b\n1,2\n").expect("write");
    ada.run(&["sweep", "survey"]).expect_ok("sweep");

    // Git holds the pointer and the small file, never the large bytes.
    let tracked = git(&dir, &["ls-files"]);
    assert!(
        tracked.contains(".tandem/blobs/input/big.bin.toml"),
        "{tracked}"
    );
    assert!(tracked.contains("input/small.csv"), "{tracked}");
    assert!(!tracked.lines().any(|l| l == "input/big.bin"), "{tracked}");
    assert_eq!(git(&dir, &["status", "--porcelain"]).trim(), "");
    let (hash, size) = blob_pointer(&ada, "survey", "input/big.bin");
    assert_eq!(size, 200 * MIB);
    let log = git(&dir, &["log", "-1", "--format=%B"]);
    assert!(
        log.contains("new files in input/: big.bin"),
        "commit message names the file: {log}"
    );
    assert_eq!(
        file_entry(&ada, "survey", "input/big.bin")["blob"]["state"],
        "local"
    );

    // Bob, a reader, clones: the bytes arrive verified and byte-identical.
    ada.run(&["share", "survey", &bob.did(), "--role", "reader"])
        .expect_ok("share");
    let id = ada.project_id("survey");
    bob.run(&["project", "clone", &id]).expect_ok("clone");
    let copy = bob.project_dir("survey").join("input/big.bin");
    assert!(
        same_bytes(&dir.join("input/big.bin"), &copy),
        "bob's copy differs"
    );
    assert_eq!(
        file_entry(&bob, "survey", "input/big.bin")["blob"]["state"],
        "local"
    );
    assert_eq!(
        git(&bob.project_dir("survey"), &["status", "--porcelain"]).trim(),
        "",
        "the fetched file is not a pending change"
    );

    // The blob endpoint itself: Bob's key gets the bytes; Cy's key (no
    // role) is refused, exactly as for a hash Ada does not have at all.
    let address = blob_probe::address_of(&ada);
    let server = blob_probe::public_of(&ada);
    let bob_key = blob_probe::secret_of(bob.home());
    let cy_key = blob_probe::secret_of(cy.home());
    let small_hash = blake3_hex(b"a,b\n1,2\n");
    let got = blob_probe::fetch(bob_key, server, address, &hash).expect("member fetches");
    assert_eq!(got.len() as u64, size);
    let refused = blob_probe::fetch(cy_key, server, address, &hash).expect_err("cy is refused");
    let unknown = blob_probe::fetch(bob_key, server, address, &"ab".repeat(32))
        .expect_err("unknown hash is refused");
    let unreferenced = blob_probe::fetch(bob_key, server, address, &small_hash)
        .expect_err("a hash no pointer names is refused");
    assert_eq!(
        refused.replace(&hash, "H"),
        unknown.replace(&"ab".repeat(32), "H"),
        "refusals look alike"
    );
    assert!(!unreferenced.is_empty());

    // Cy cannot clone either, and his node received nothing of the project.
    cy.run(&["project", "clone", &id])
        .expect_err("clone without a role", "no connected peer offers it");
    assert!(!cy.home().join("projects/survey").exists());
}

fn blake3_hex(bytes: &[u8]) -> String {
    tandem_protocol::blob::BlobHash::of(bytes).to_string()
}

#[test]
fn only_changed_files_move_and_equal_content_moves_once() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    quiet_project(&ada, "set");
    let dir = ada.project_dir("set");
    let file_size = 3 * MIB / 2;
    for i in 0..12 {
        write_random(
            &dir.join(format!("input/set/f{i:02}.bin")),
            file_size,
            100 + i,
        );
    }
    fs::copy(dir.join("input/set/f00.bin"), dir.join("input/copy.bin")).expect("copy");
    ada.run(&["sweep", "set"]).expect_ok("sweep");
    ada.run(&["share", "set", &bob.did(), "--role", "writer"])
        .expect_ok("share");

    // Cloned without data: every large file is listed as remote.
    let id = ada.project_id("set");
    bob.run(&["project", "clone", &id, "--no-data"])
        .expect_ok("clone --no-data");
    assert_eq!(
        file_entry(&bob, "set", "input/set/f03.bin")["blob"]["state"],
        "remote"
    );
    assert!(!bob.project_dir("set").join("input/set/f03.bin").exists());

    // Partial fetch by folder brings only that folder.
    let partial = fetch_json(&bob, "set", &["input/set"]);
    assert_eq!(
        partial["fetched"].as_array().map(Vec::len),
        Some(12),
        "{partial}"
    );
    assert_eq!(partial["bytes_received"].as_u64(), Some(12 * file_size));
    // The copy has the same content as f00: it is written from the store
    // with no transfer of its own, and a fetch of everything moves nothing.
    let rest = fetch_json(&bob, "set", &[]);
    assert_eq!(rest["fetched"], serde_json::json!([]), "{rest}");
    assert_eq!(
        rest["already_local"].as_array().map(Vec::len),
        Some(13),
        "{rest}"
    );
    assert_eq!(rest["bytes_received"].as_u64(), Some(0), "{rest}");
    assert!(same_bytes(
        &dir.join("input/copy.bin"),
        &bob.project_dir("set").join("input/copy.bin")
    ));

    // One file changes on Ada's side and one is added: a sync moves the
    // changed file alone (the new one waits, as Bob fetches on demand).
    write_random(&dir.join("input/set/f05.bin"), file_size, 999);
    write_random(&dir.join("input/new.bin"), file_size, 1000);
    ada.run(&["sweep", "set"]).expect_ok("sweep");
    let summary = bob.api_post("/api/projects/set/sync", &serde_json::json!({}));
    assert_eq!(
        summary["data"]["fetched"],
        serde_json::json!(["input/set/f05.bin"]),
        "{summary}"
    );
    assert_eq!(summary["data"]["bytes_received"].as_u64(), Some(file_size));
    assert_eq!(
        file_entry(&bob, "set", "input/new.bin")["blob"]["state"],
        "remote"
    );
    assert!(same_bytes(
        &dir.join("input/set/f05.bin"),
        &bob.project_dir("set").join("input/set/f05.bin")
    ));

    // Bob deletes a large file and syncs it back to Ada: her copy goes too.
    fs::remove_file(bob.project_dir("set").join("input/set/f07.bin")).expect("rm");
    bob.run(&["sweep", "set"]).expect_ok("sweep");
    ada.api_post("/api/projects/set/sync", &serde_json::json!({}));
    assert!(!dir.join("input/set/f07.bin").exists());
    assert_eq!(git(&dir, &["status", "--porcelain"]).trim(), "");

    // Asking for a file that is not a large file says so.
    bob.run(&["fetch", "set", "code/nothing.py"])
        .expect_err("fetch unknown", "no large file by that name");
}

/// Flips bytes in the middle of the store's copy of a blob, as a faulty
/// disk or a malicious peer would.
fn corrupt_store_copy(node: &TestNode, hash: &str) {
    let data = node.home().join("blobs/data");
    let file = fs::read_dir(&data)
        .expect("blob data folder")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(hash) && n.ends_with(".data"))
        })
        .unwrap_or_else(|| panic!("no data file for {hash} in {}", data.display()));
    let mut bytes = fs::read(&file).expect("read blob");
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xFF;
    }
    fs::write(&file, bytes).expect("write blob");
}

#[test]
fn corrupt_bytes_are_detected_and_another_peer_serves_them() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    let cy = TestNode::started("Cy");
    bob.connect(&ada);
    cy.connect(&ada);
    quiet_project(&ada, "lab");
    let dir = ada.project_dir("lab");
    write_random(&dir.join("input/data.bin"), 4 * MIB, 7);
    ada.run(&["sweep", "lab"]).expect_ok("sweep");
    ada.run(&["share", "lab", &bob.did(), "--role", "reader"])
        .expect_ok("share bob");
    ada.run(&["share", "lab", &cy.did(), "--role", "reader"])
        .expect_ok("share cy");
    let id = ada.project_id("lab");
    cy.run(&["project", "clone", &id])
        .expect_ok("cy clones with data");
    let (hash, _) = blob_pointer(&ada, "lab", "input/data.bin");
    corrupt_store_copy(&ada, &hash);

    // Only Ada is reachable: her bytes fail verification and never land.
    bob.run(&["project", "clone", &id, "--no-data"])
        .expect_ok("clone history");
    let failed = fetch_json(&bob, "lab", &[]);
    let reason = failed["failed"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("does not match its hash"), "{failed}");
    assert!(!bob.project_dir("lab").join("input/data.bin").exists());

    // With Cy reachable too, the file arrives intact.
    bob.connect(&cy);
    let fetched = fetch_json(&bob, "lab", &[]);
    assert_eq!(
        fetched["fetched"],
        serde_json::json!(["input/data.bin"]),
        "{fetched}"
    );
    assert!(same_bytes(
        &dir.join("input/data.bin"),
        &bob.project_dir("lab").join("input/data.bin")
    ));
}

#[test]
fn a_transfer_killed_midway_resumes_without_resending() {
    let ada = TestNode::started("Ada");
    let mut bob = TestNode::started("Bob");
    bob.connect(&ada);
    quiet_project(&ada, "big");
    let dir = ada.project_dir("big");
    let size = 600 * MIB;
    write_random(&dir.join("output/model.bin"), size, 3);
    ada.run(&["sweep", "big"]).expect_ok("sweep");
    ada.run(&["share", "big", &bob.did(), "--role", "reader"])
        .expect_ok("share");
    let id = ada.project_id("big");
    bob.run(&["project", "clone", &id, "--no-data"])
        .expect_ok("clone");

    let mut fetch = bob
        .command()
        .args(["fetch", "big", "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start fetch");
    let done_at_kill = wait_for(Duration::from_secs(60), || {
        let transfers = bob.api_get("/api/transfers");
        let done = transfers.as_array()?.first()?["done"].as_u64()?;
        (done >= size / 5).then_some(done)
    })
    .expect("the transfer got a fifth of the way");
    bob.kill();
    let _ = fetch.wait();
    assert!(done_at_kill < size, "the kill came before the end");

    bob.start();
    bob.connect(&ada);
    let present = file_entry(&bob, "big", "output/model.bin")["blob"]["present"]
        .as_u64()
        .expect("present bytes");
    assert!(present > 0, "verified bytes survived the kill");
    let resumed = fetch_json(&bob, "big", &[]);
    let received = resumed["bytes_received"].as_u64().expect("bytes");
    assert!(
        received <= size - present + size / 100,
        "re-sent too much: {received} received, {present} of {size} were already here"
    );
    assert!(same_bytes(
        &dir.join("output/model.bin"),
        &bob.project_dir("big").join("output/model.bin")
    ));
    eprintln!(
        "resume: {present} of {size} bytes kept after SIGKILL, {received} received after restart ({:.2}% re-sent)",
        (received + present).saturating_sub(size) as f64 * 100.0 / size as f64
    );
}

#[test]
fn evict_drops_copies_peers_hold_and_keeps_the_only_copy() {
    let mut ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    quiet_project(&ada, "field");
    let dir = ada.project_dir("field");
    for i in 0..3 {
        write_random(&dir.join(format!("input/site{i}.bin")), 2 * MIB, 50 + i);
    }
    ada.run(&["sweep", "field"]).expect_ok("sweep");
    ada.run(&["share", "field", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    let id = ada.project_id("field");
    bob.run(&["project", "clone", &id]).expect_ok("clone");
    // A new version of site0 on Ada's side leaves Bob an old version.
    write_random(&dir.join("input/site0.bin"), 2 * MIB, 77);
    ada.run(&["sweep", "field"]).expect_ok("sweep");
    bob.api_post("/api/projects/field/sync", &serde_json::json!({}));
    let du = bob.run(&["du", "--json"]).expect_ok("du").json();
    let row = &du["projects"][0];
    assert_eq!(row["large_local_bytes"].as_u64(), Some(6 * MIB), "{du}");
    assert_eq!(row["old_version_bytes"].as_u64(), Some(2 * MIB), "{du}");

    // Ada holds everything, so Bob may drop the old version and a file.
    let old = bob
        .run(&["evict", "field", "--json"])
        .expect_ok("evict old")
        .json();
    assert_eq!(old["old_versions"].as_u64(), Some(1), "{old}");
    let file = bob
        .run(&["evict", "field", "input/site1.bin", "--json"])
        .expect_ok("evict file")
        .json();
    assert_eq!(
        file["evicted"],
        serde_json::json!(["input/site1.bin"]),
        "{file}"
    );
    let site1 = bob.project_dir("field").join("input/site1.bin");
    assert!(!site1.exists());
    assert_eq!(
        file_entry(&bob, "field", "input/site1.bin")["blob"]["state"],
        "remote"
    );
    let du = bob.run(&["du", "--json"]).expect_ok("du").json();
    assert_eq!(
        du["projects"][0]["old_version_bytes"].as_u64(),
        Some(0),
        "{du}"
    );
    assert_eq!(
        du["projects"][0]["large_remote_bytes"].as_u64(),
        Some(2 * MIB),
        "{du}"
    );
    // The dropped file is no pending change, and a sync leaves it on peers.
    assert_eq!(
        git(&bob.project_dir("field"), &["status", "--porcelain"]).trim(),
        ""
    );
    bob.api_post("/api/projects/field/sync", &serde_json::json!({}));
    assert!(!site1.exists());
    fetch_json(&bob, "field", &["input/site1.bin"]);
    assert!(same_bytes(&dir.join("input/site1.bin"), &site1));

    // With Ada gone, Bob's copy may be the only one: kept unless forced.
    ada.stop();
    let kept = bob
        .run(&["evict", "field", "input/site2.bin", "--json"])
        .expect_ok("evict refused")
        .json();
    assert_eq!(kept["evicted"], serde_json::json!([]), "{kept}");
    assert!(
        kept["kept"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("--force"),
        "{kept}"
    );
    assert!(bob.project_dir("field").join("input/site2.bin").exists());
    let forced = bob
        .run(&["evict", "field", "input/site2.bin", "--force", "--json"])
        .expect_ok("evict forced")
        .json();
    assert_eq!(
        forced["evicted"],
        serde_json::json!(["input/site2.bin"]),
        "{forced}"
    );
}

fn dataset_versions(node: &TestNode, dataset: &str) -> Vec<serde_json::Value> {
    node.run(&["dataset", "versions", dataset, "--json"])
        .expect_ok("versions")
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn datasets_version_sync_by_changed_file_and_link_into_projects() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    let cy = TestNode::started("Cy");
    bob.connect(&ada);
    cy.connect(&ada);
    let source = tempfile::tempdir().expect("tempdir");
    let file_size = 20 * 1024;
    for i in 0..100u64 {
        let half = if i < 50 { "a" } else { "b" };
        write_random(
            &source.path().join(format!("{half}/f{i:02}.bin")),
            file_size,
            500 + i,
        );
    }
    ada.run(&["dataset", "create", "gps"])
        .expect_ok("create dataset");
    ada.run(&["sync", "gps", "--auto", "off"])
        .expect_ok("auto off");
    let a = source.path().join("a");
    let b = source.path().join("b");
    ada.run(&[
        "dataset",
        "add",
        "gps",
        a.to_str().expect("utf-8"),
        b.to_str().expect("utf-8"),
    ])
    .expect_ok("add");
    let versions = dataset_versions(&ada, "gps");
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0]["files"].as_u64(), Some(100));
    let data = ada.project_dir("gps").join("data");
    assert_eq!(
        git(&ada.project_dir("gps"), &["status", "--porcelain"]).trim(),
        ""
    );

    // Bob reads the dataset; a change of one file moves that file alone.
    ada.run(&["share", "gps", &bob.did(), "--role", "reader"])
        .expect_ok("share dataset");
    bob.run(&["project", "clone", &ada.project_id("gps")])
        .expect_ok("clone dataset");
    // Bob syncs when asked, not when Ada's announcement arrives: the sync
    // below must be the one that moves the changed file.
    bob.run(&["sync", "gps", "--auto", "off"])
        .expect_ok("bob auto off");
    write_random(&data.join("a/f00.bin"), file_size, 9_999);
    ada.run(&["dataset", "add", "gps", "--message", "fixed f00"])
        .expect_ok("new version");
    assert_eq!(dataset_versions(&ada, "gps").len(), 2);
    let summary = bob.api_post("/api/projects/gps/sync", &serde_json::json!({}));
    assert_eq!(
        summary["data"]["fetched"],
        serde_json::json!(["data/a/f00.bin"]),
        "{summary}"
    );
    assert_eq!(summary["data"]["bytes_received"].as_u64(), Some(file_size));
    assert_eq!(dataset_versions(&bob, "gps").len(), 2);
    let old = bob
        .run(&["dataset", "show", "gps", "--version", "1", "--json"])
        .expect_ok("show v1")
        .json();
    let new = bob
        .run(&["dataset", "show", "gps", "--json"])
        .expect_ok("show latest")
        .json();
    let hash_of = |detail: &serde_json::Value, path: &str| {
        detail["files"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["path"] == path))
            .map(|f| f["hash"].clone())
    };
    assert_ne!(hash_of(&old, "a/f00.bin"), hash_of(&new, "a/f00.bin"));
    assert_eq!(hash_of(&old, "b/f70.bin"), hash_of(&new, "b/f70.bin"));

    // Pinned into a project, version 2 appears read-only under input/gps/.
    quiet_project(&ada, "analysis");
    ada.run(&["dataset", "link", "analysis", "gps@2"])
        .expect_ok("link");
    let pinned = ada.project_dir("analysis").join("input/gps/a/f00.bin");
    assert!(same_bytes(&data.join("a/f00.bin"), &pinned));
    let mode = fs::metadata(&pinned).expect("pinned file").permissions();
    assert!(mode.readonly(), "linked files are read-only");
    assert_eq!(
        git(&ada.project_dir("analysis"), &["status", "--porcelain"]).trim(),
        ""
    );

    // Cy reads the project, not the dataset: he can still fetch the pinned
    // files, only the half he asks for, and cannot see the dataset itself.
    ada.run(&["share", "analysis", &cy.did(), "--role", "reader"])
        .expect_ok("share project");
    cy.run(&["project", "clone", &ada.project_id("analysis"), "--no-data"])
        .expect_ok("clone project");
    let half = fetch_json(&cy, "analysis", &["input/gps/b"]);
    assert_eq!(half["fetched"].as_array().map(Vec::len), Some(50), "{half}");
    assert_eq!(half["bytes_received"].as_u64(), Some(50 * file_size));
    let cy_dir = cy.project_dir("analysis");
    assert!(cy_dir.join("input/gps/b/f70.bin").exists());
    assert!(!cy_dir.join("input/gps/a/f00.bin").exists());
    fetch_json(&cy, "analysis", &[]);
    assert!(same_bytes(&pinned, &cy_dir.join("input/gps/a/f00.bin")));
    let datasets = cy
        .run(&["dataset", "list", "--json"])
        .expect_ok("list")
        .json();
    assert_eq!(datasets.as_array().map(Vec::len), Some(0), "{datasets}");
    cy.run(&["project", "clone", &ada.project_id("gps")])
        .expect_err(
            "clone dataset without a role",
            "no connected peer offers it",
        );
}

#[test]
fn exported_archives_carry_large_files_and_refuse_damaged_ones() {
    let ada = TestNode::with_identity("Ada");
    let bob = TestNode::with_identity("Bob");
    ada.run(&["project", "create", "trip"]).expect_ok("create");
    let dir = ada.project_dir("trip");
    write_random(&dir.join("input/photos.bin"), 3 * MIB, 11);
    ada.run(&["sweep", "trip"]).expect_ok("sweep");
    let out = tempfile::tempdir().expect("tempdir");
    let archive = out.path().join("trip.zip");
    ada.run(&[
        "project",
        "export",
        "trip",
        "-o",
        archive.to_str().expect("utf-8"),
    ])
    .expect_ok("export");

    bob.run(&["project", "import", archive.to_str().expect("utf-8")])
        .expect_ok("import");
    let copy = bob.project_dir("trip").join("input/photos.bin");
    assert!(same_bytes(&dir.join("input/photos.bin"), &copy));
    assert_eq!(
        file_entry(&bob, "trip", "input/photos.bin")["blob"]["state"],
        "local"
    );

    // A damaged copy of the archive is refused and leaves nothing behind.
    let mut bytes = fs::read(&archive).expect("read archive");
    let (hash, _) = blob_pointer(&ada, "trip", "input/photos.bin");
    let name = format!("blobs/{hash}");
    let at = bytes
        .windows(name.len())
        .position(|w| w == name.as_bytes())
        .expect("the archive names the blob");
    let middle = at + name.len() + 1024 * 1024;
    bytes[middle] ^= 0xFF;
    let damaged = out.path().join("damaged.zip");
    fs::write(&damaged, bytes).expect("write");
    let cy = TestNode::with_identity("Cy");
    cy.run(&["project", "import", damaged.to_str().expect("utf-8")])
        .expect_err("import damaged", "the archive is damaged");
    assert!(!cy.project_dir("trip").exists());
}

#[test]
fn one_large_file_is_drawn_from_several_peers_at_once() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    let cy = TestNode::started("Cy");
    cy.connect(&ada);
    bob.connect(&ada);
    bob.connect(&cy);
    quiet_project(&ada, "scan");
    let dir = ada.project_dir("scan");
    write_random(&dir.join("input/volume.bin"), 96 * MIB, 21);
    ada.run(&["sweep", "scan"]).expect_ok("sweep");
    for peer in [&bob, &cy] {
        ada.run(&["share", "scan", &peer.did(), "--role", "reader"])
            .expect_ok("share");
    }
    let id = ada.project_id("scan");
    cy.run(&["project", "clone", &id])
        .expect_ok("cy clones with data");
    bob.run(&["project", "clone", &id, "--no-data"])
        .expect_ok("bob clones history");
    let fetched = fetch_json(&bob, "scan", &[]);
    assert_eq!(
        fetched["bytes_received"].as_u64(),
        Some(96 * MIB),
        "{fetched}"
    );
    let peers = fetched["peers"].as_array().cloned().unwrap_or_default();
    assert_eq!(peers.len(), 2, "both peers served a share: {fetched}");
    assert!(same_bytes(
        &dir.join("input/volume.bin"),
        &bob.project_dir("scan").join("input/volume.bin")
    ));
}
