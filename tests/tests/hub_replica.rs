//! A hub's always-on replica, with real `tandem` processes on loopback: it
//! keeps a copy only of what it is granted as reader, with its large files
//! within its quota, serves them when the project's other members are
//! offline, never gets or makes a role or a commit of its own, and tells a
//! stranger nothing.

use std::fs;
use std::time::Duration;

use tandem_e2e::{TestNode, git, same_bytes, wait_for, write_random};

const MIB: u64 = 1024 * 1024;

/// How long the hub may take to notice a grant and copy a project (it
/// looks when a member announces it, at every new connection, and every
/// 30 s anyway).
const REPLICATE_WITHIN: Duration = Duration::from_secs(60);

/// A running hub on loopback that anyone may use, keeping at most `quota`
/// of large files per project.
fn hub(quota: &str) -> TestNode {
    let mut hub = TestNode::with_identity("Hub");
    hub.start_with(&[
        "--hub",
        "--open",
        "--no-mdns",
        "--no-dht",
        "--p2p-listen",
        "/ip4/127.0.0.1/tcp/0",
        "--relay-listen",
        "127.0.0.1:0",
        "--quota",
        quota,
    ]);
    hub
}

/// A running member node that uses `hub` (`--hub-address`): it connects
/// to the hub at start, and its large files reach the hub through the
/// hub's blob relay (a node that dialled in is not reachable otherwise).
fn member(name: &str, hub: &TestNode) -> TestNode {
    let mut node = TestNode::with_identity(name);
    let address = hub.p2p_address();
    node.start_with(&[
        "--p2p-listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
        "--no-dht",
        "--hub-address",
        &address,
    ]);
    node
}

/// Waits until `node` is connected to `other`.
fn connected_to(node: &TestNode, other: &TestNode) -> bool {
    let did = other.did();
    wait_for(Duration::from_secs(20), || {
        let peers = node.run(&["peers", "--json"]).expect_ok("peers").json();
        peers
            .as_array()?
            .iter()
            .any(|p| p["did"] == did.as_str() && p["connected"] == true)
            .then_some(())
    })
    .is_some()
}

/// Ada's project `survey` with the large files given (path, size, seed).
fn survey(ada: &TestNode, files: &[(&str, u64, u64)]) {
    ada.run(&["project", "create", "survey"])
        .expect_ok("create");
    let dir = ada.project_dir("survey");
    for (path, size, seed) in files {
        write_random(&dir.join(path), *size, *seed);
    }
    ada.run(&["sweep", "survey"]).expect_ok("sweep");
}

/// The role `node` gives `whom` in `project`, if any.
fn role_of(node: &TestNode, project: &str, whom: &str) -> Option<String> {
    let view = node
        .run(&["members", project, "--json"])
        .expect_ok("members")
        .json();
    view["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["did"] == whom)
        .and_then(|m| m["role"].as_str().map(str::to_owned))
}

/// Waits until the hub holds `project`'s file `path` with the same bytes
/// as `original`.
fn hub_holds(hub: &TestNode, project: &str, path: &str, original: &std::path::Path) -> bool {
    let copy = hub.project_dir(project).join(path);
    wait_for(REPLICATE_WITHIN, || {
        same_bytes(original, &copy).then_some(())
    })
    .is_some()
}

#[test]
fn the_hub_keeps_a_granted_copy_and_serves_it_when_its_owner_is_offline() {
    let hub = hub("20GiB");
    let mut ada = member("Ada", &hub);
    let cy = member("Cy", &hub);
    survey(&ada, &[("input/big.bin", 6 * MIB, 1)]);
    ada.run(&["project", "create", "diary"]).expect_ok("create");
    let original = ada.project_dir("survey").join("input/big.bin");

    // Ada grants Cy writer and the hub reader; her diary she keeps to
    // herself.
    ada.run(&["share", "survey", &cy.did(), "--role", "writer"])
        .expect_ok("share with Cy");
    ada.run(&["share", "survey", &hub.did(), "--role", "reader"])
        .expect_ok("share with the hub");
    assert!(
        hub_holds(&hub, "survey", "input/big.bin", &original),
        "the hub copies the project and its large file"
    );
    assert_eq!(
        role_of(&hub, "survey", &hub.did()).as_deref(),
        Some("reader")
    );
    let kept: Vec<String> = hub
        .run(&["project", "list", "--json"])
        .expect_ok("list")
        .json()
        .as_array()
        .expect("projects")
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(kept, vec!["survey".to_owned()], "the diary was not granted");

    // Cy took the history from Ada earlier, without the large file.
    cy.connect(&ada);
    let id = ada.project_id("survey");
    cy.run(&["project", "clone", &id, "--no-data"])
        .expect_ok("clone from Ada");
    let cy_copy = cy.project_dir("survey").join("input/big.bin");
    assert!(!cy_copy.exists());
    // Ada leaves for the field; the hub is all Cy can reach.
    assert!(ada.stop(), "Ada's node stops cleanly");
    assert!(connected_to(&cy, &hub));
    let fetched = cy
        .run(&["fetch", "survey", "input/big.bin", "--json"])
        .expect_ok("fetch from the hub")
        .json();
    assert!(same_bytes(&original, &cy_copy), "Cy's copy differs");
    let senders: Vec<&str> = fetched["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert_eq!(senders, vec![hub.did().as_str()], "{fetched}");

    // The hub is a reader: it grants nothing, records nothing, and Cy
    // takes none of what it might have made.
    hub.run(&["share", "survey", &hub.did(), "--role", "writer"])
        .expect_err("the hub grants itself", "yourself");
    hub.run(&["share", "survey", &cy.did(), "--role", "admin"])
        .expect_err("the hub grants Cy", "only admins and the owner");
    let hub_dir = hub.project_dir("survey");
    let head = git(&hub_dir, &["rev-parse", "HEAD"]);
    fs::write(
        hub_dir.join("code/forged.py"),
        "print('the hub was here')\n",
    )
    .expect("write");
    let swept = hub.run(&["sweep", "survey"]).expect_ok("sweep");
    assert!(swept.stdout.contains("reader's copy"), "{}", swept.stdout);
    assert_eq!(
        git(&hub_dir, &["rev-parse", "HEAD"]),
        head,
        "the hub committed"
    );
    let cy_head = git(&cy.project_dir("survey"), &["rev-parse", "HEAD"]);
    cy.run(&["sync", "survey"]).expect_ok("sync with the hub");
    assert_eq!(
        git(&cy.project_dir("survey"), &["rev-parse", "HEAD"]),
        cy_head
    );
    assert!(!cy.project_dir("survey").join("code/forged.py").exists());
    assert_eq!(
        role_of(&cy, "survey", &hub.did()).as_deref(),
        Some("reader")
    );
}

/// Cy, granted writer by Ada earlier (so the grant is in the access
/// history the hub holds), clones from the hub alone the next day: the
/// history comes with Ada's own signed heads, passed on by the hub, and
/// the large file from the hub's copy.
#[test]
fn a_member_clones_from_the_hub_alone() {
    let hub = hub("20GiB");
    let mut ada = member("Ada", &hub);
    let cy = member("Cy", &hub);
    survey(&ada, &[("input/big.bin", 6 * MIB, 2)]);
    let original = cy.home().join("original.bin");
    fs::copy(ada.project_dir("survey").join("input/big.bin"), &original).expect("copy");
    ada.run(&["share", "survey", &cy.did(), "--role", "writer"])
        .expect_ok("share with Cy");
    ada.run(&["share", "survey", &hub.did(), "--role", "reader"])
        .expect_ok("share with the hub");
    assert!(hub_holds(&hub, "survey", "input/big.bin", &original));
    let id = ada.project_id("survey");
    assert!(ada.stop());

    cy.run(&["project", "clone", &id])
        .expect_ok("clone from the hub");
    let copy = cy.project_dir("survey").join("input/big.bin");
    assert!(same_bytes(&original, &copy), "Cy's copy differs");
}

/// Ada records her last changes and leaves; Cy, who holds the project,
/// syncs with the hub alone and gets them: the hub passes on Ada's own
/// signed heads, and Cy takes only heads newer than any it took from her.
#[test]
fn a_member_syncs_from_the_hub_what_a_writer_left_there() {
    let hub = hub("20GiB");
    let mut ada = member("Ada", &hub);
    let cy = member("Cy", &hub);
    survey(&ada, &[("input/big.bin", MIB, 6)]);
    ada.run(&["share", "survey", &cy.did(), "--role", "writer"])
        .expect_ok("share with Cy");
    ada.run(&["share", "survey", &hub.did(), "--role", "reader"])
        .expect_ok("share with the hub");
    let original = ada.project_dir("survey").join("input/big.bin");
    assert!(hub_holds(&hub, "survey", "input/big.bin", &original));
    cy.connect(&ada);
    let id = ada.project_id("survey");
    cy.run(&["project", "clone", &id])
        .expect_ok("clone from Ada");
    cy.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("Cy syncs by hand from now on");

    // Ada records her last changes before leaving; the hub takes them.
    let ada_dir = ada.project_dir("survey");
    fs::write(ada_dir.join("code/field-notes.py"), "print('leaving')\n").expect("write");
    ada.run(&["sweep", "survey"]).expect_ok("sweep");
    let last = git(&ada_dir, &["rev-parse", "HEAD"]);
    let hub_dir = hub.project_dir("survey");
    assert!(
        wait_for(REPLICATE_WITHIN, || {
            (git(&hub_dir, &["rev-parse", "HEAD"]) == last).then_some(())
        })
        .is_some(),
        "the hub follows Ada"
    );

    assert!(ada.stop());
    assert!(connected_to(&cy, &hub));
    // Cy, syncing with the hub alone, gets what Ada did before leaving.
    cy.run(&["sync", "survey"]).expect_ok("sync with the hub");
    assert_eq!(git(&cy.project_dir("survey"), &["rev-parse", "HEAD"]), last);
    assert!(
        cy.project_dir("survey")
            .join("code/field-notes.py")
            .exists()
    );
}

#[test]
fn fetches_stop_at_the_quota_and_du_says_so() {
    let hub = hub("6MiB");
    let ada = member("Ada", &hub);
    survey(
        &ada,
        &[("input/a.bin", 5 * MIB, 3), ("input/b.bin", 5 * MIB, 4)],
    );
    ada.run(&["share", "survey", &hub.did(), "--role", "reader"])
        .expect_ok("share with the hub");
    let first = ada.project_dir("survey").join("input/a.bin");
    assert!(hub_holds(&hub, "survey", "input/a.bin", &first));

    // The second file would pass 6 MiB: it is left out, and said so.
    let du = wait_for(REPLICATE_WITHIN, || {
        let du = hub.run(&["du", "--json"]).expect_ok("du").json();
        let project = du["hub"]["projects"][0].clone();
        (project["over_quota_files"] == 1).then_some(du)
    })
    .expect("the hub's du reports a file over the quota");
    let project = &du["hub"]["projects"][0];
    assert_eq!(du["hub"]["quota_bytes"], 6 * MIB);
    assert_eq!(project["name"], "survey");
    assert_eq!(project["role"], "reader");
    assert_eq!(project["kept_bytes"], 5 * MIB);
    assert_eq!(project["wanted_bytes"], 10 * MIB);
    assert!(
        du["projects"].is_array(),
        "the plain disk use is still there"
    );
    assert!(!hub.project_dir("survey").join("input/b.bin").exists());
    let text = hub.run(&["du"]).expect_ok("du").stdout;
    assert!(text.contains("would pass the quota of 6.0 MiB"), "{text}");

    // A plain node's du has no hub part, and its API says it is no hub.
    let plain = ada.run(&["du", "--json"]).expect_ok("du").json();
    assert!(plain.get("hub").is_none(), "{plain}");
    let token = format!("Bearer {}", ada.token.as_deref().expect("running"));
    let (status, body) = ada.http("GET", "/api/hub", &[("Authorization", &token)], "");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not a hub"), "{body}");
}

#[test]
fn a_stranger_using_the_hub_learns_no_project() {
    let hub = hub("20GiB");
    let ada = member("Ada", &hub);
    let eve = member("Eve", &hub);
    survey(&ada, &[("input/big.bin", 2 * MIB, 5)]);
    ada.run(&["share", "survey", &hub.did(), "--role", "reader"])
        .expect_ok("share with the hub");
    let original = ada.project_dir("survey").join("input/big.bin");
    assert!(hub_holds(&hub, "survey", "input/big.bin", &original));
    let id = ada.project_id("survey");

    // Eve uses the same (open) hub, and asks it what it offers.
    assert!(connected_to(&eve, &hub));
    let offers = eve
        .run(&["project", "offers", "--json"])
        .expect_ok("offers")
        .json();
    let said = offers.to_string();
    assert_eq!(offers.as_array().map(Vec::len), Some(0), "{said}");
    assert!(!said.contains(&id) && !said.contains("survey"), "{said}");
    eve.run(&["project", "clone", &id])
        .expect_err("Eve clones", "no connected peer offers it");

    // The hub's own account of what it keeps is behind its API token.
    let (status, body) = hub.http("GET", "/api/hub", &[], "");
    assert!(status == 401 || status == 403, "{status}: {body}");
    assert!(!body.contains(&id) && !body.contains("survey"), "{body}");
    let (status, body) = hub.http("GET", "/hub", &[], "");
    assert!(status == 401 || status == 403, "{status}: {body}");
    assert!(!body.contains("survey"), "{body}");
    let view = hub.api_get("/api/hub");
    assert_eq!(view["projects"][0]["id"], id.as_str());
    assert_eq!(view["open"], true);
}
