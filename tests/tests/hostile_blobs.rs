//! Blob boundary: a node serves a blob for a project only if it obtained
//! the blob for that project (hashed it from the project's folder, or
//! fetched it from the project's members). A writer who learnt the hash of
//! a file in another, private project of the victim and names it in a
//! pointer or a dataset link of a project they share gets nothing, through
//! their node or through a raw iroh-blobs request; the victim's own files
//! still travel.

use std::fs;

use tandem_e2e::{
    TestNode, blob_pointer, blob_probe, fetch_json, git, quiet_project, same_bytes, write_random,
};
use tandem_protocol::blob::BlobHash;
use tandem_protocol::dataset::{Link, VersionFile};

const MIB: u64 = 1024 * 1024;

fn sync(node: &TestNode, project: &str) -> serde_json::Value {
    node.api_post(
        &format!("/api/projects/{project}/sync"),
        &serde_json::json!({}),
    )
}

#[test]
fn a_writer_cannot_pull_a_private_blob_by_naming_its_hash() {
    let mut ada = TestNode::started("Ada");
    let mal = TestNode::started("Mal");
    mal.connect(&ada);

    // Ada's private project holds a large file; Mal has no role in it.
    quiet_project(&ada, "secret");
    let secret_dir = ada.project_dir("secret");
    write_random(&secret_dir.join("input/private.bin"), 3 * MIB, 1);
    ada.run(&["sweep", "secret"]).expect_ok("sweep secret");
    let (hash, size) = blob_pointer(&ada, "secret", "input/private.bin");

    // A project shared with Mal, with a large file of Ada's own.
    quiet_project(&ada, "shared");
    let shared_dir = ada.project_dir("shared");
    write_random(&shared_dir.join("input/ours.bin"), 2 * MIB, 2);
    ada.run(&["sweep", "shared"]).expect_ok("sweep shared");
    ada.run(&["share", "shared", &mal.did(), "--role", "writer"])
        .expect_ok("share");
    mal.run(&["project", "clone", &ada.project_id("shared")])
        .expect_ok("clone");
    mal.run(&["sync", "shared", "--auto", "off"])
        .expect_ok("auto off");
    let mal_dir = mal.project_dir("shared");
    assert!(
        same_bytes(
            &shared_dir.join("input/ours.bin"),
            &mal_dir.join("input/ours.bin")
        ),
        "Ada's own file reached Mal"
    );

    // Mal learnt the hash somehow. He names it in a pointer and in a
    // dataset link of the shared project, and syncs them to Ada.
    let stolen: BlobHash = hash.parse().expect("a BLAKE3 hash");
    fs::create_dir_all(mal_dir.join(".tandem/blobs/input")).expect("mkdir");
    fs::write(
        mal_dir.join(".tandem/blobs/input/stolen.bin.toml"),
        tandem_protocol::blob::Pointer { hash: stolen, size }.to_toml(),
    )
    .expect("write pointer");
    let link = Link {
        dataset: ada.project_id("secret").parse().expect("a project id"),
        name: "loot".into(),
        version: 1,
        collection: stolen,
        files: vec![VersionFile {
            path: "private.bin".into(),
            hash: stolen,
            size,
        }],
    };
    fs::create_dir_all(mal_dir.join(".tandem/datasets")).expect("mkdir");
    fs::write(mal_dir.join(Link::path("loot")), link.to_toml()).expect("write link");
    mal.run(&["sweep", "shared"]).expect_ok("sweep");
    let tracked = git(&mal_dir, &["ls-files", ".tandem"]);
    assert!(
        tracked.contains("stolen.bin.toml") && tracked.contains("loot.toml"),
        "{tracked}"
    );
    let merged = sync(&ada, "shared");
    assert!(
        git(&shared_dir, &["ls-files", ".tandem"]).contains("stolen.bin.toml"),
        "Ada took Mal's commit: {merged}"
    );

    // Through his node: nothing arrives.
    let got = fetch_json(&mal, "shared", &["input/stolen.bin", "input/loot"]);
    assert_eq!(got["fetched"], serde_json::json!([]), "{got}");
    let failed: Vec<&str> = got["failed"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["path"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        failed.contains(&"input/stolen.bin") && failed.contains(&"input/loot/private.bin"),
        "{got}"
    );
    assert!(!mal_dir.join("input/stolen.bin").exists());
    assert!(!mal_dir.join("input/loot/private.bin").exists());
    assert_eq!(got["bytes_received"].as_u64(), Some(0), "{got}");

    // Through a raw request to Ada's blob endpoint under Mal's key: refused,
    // exactly as for a hash Ada does not have at all.
    let address = blob_probe::address_of(&ada);
    let server = blob_probe::public_of(&ada);
    let mal_key = blob_probe::secret_of(mal.home());
    let refused = blob_probe::fetch(mal_key, server, address, &hash).expect_err("refused");
    let unknown = blob_probe::fetch(mal_key, server, address, &"ab".repeat(32))
        .expect_err("unknown hash is refused");
    assert_eq!(
        refused.replace(&hash, "H"),
        unknown.replace(&"ab".repeat(32), "H"),
        "refusals look alike"
    );
    // Ada's own file in the shared project is served to him.
    let (ours, ours_size) = blob_pointer(&ada, "shared", "input/ours.bin");
    let bytes = blob_probe::fetch(mal_key, server, address, &ours).expect("a member's fetch");
    assert_eq!(bytes.len() as u64, ours_size);

    // And Ada's new files still sync to Mal as before.
    write_random(&shared_dir.join("input/later.bin"), 2 * MIB, 3);
    ada.run(&["sweep", "shared"]).expect_ok("sweep");
    let after = sync(&mal, "shared");
    let fetched = after["data"]["fetched"].to_string();
    assert!(fetched.contains("input/later.bin"), "{after}");
    assert!(same_bytes(
        &shared_dir.join("input/later.bin"),
        &mal_dir.join("input/later.bin")
    ));
    assert!(!mal_dir.join("input/stolen.bin").exists());

    // The record of what Ada obtained for each project survives a restart:
    // her own file is still served, the private one still is not.
    ada.stop();
    ada.start();
    let address = blob_probe::address_of(&ada);
    let bytes = blob_probe::fetch(mal_key, server, address, &ours).expect("served after restart");
    assert_eq!(bytes.len() as u64, ours_size);
    blob_probe::fetch(mal_key, server, address, &hash).expect_err("still refused");
}
