//! Sharing a project by signed grants, through the real binary.

use tandem_e2e::{TestNode, git};

fn did(node: &TestNode) -> String {
    node.run(&["id", "--json"]).expect_ok("id").json()["did"]
        .as_str()
        .expect("did")
        .to_owned()
}

fn peer_id(node: &TestNode) -> String {
    node.run(&["id", "--json"]).expect_ok("id").json()["peer_id"]
        .as_str()
        .expect("peer id")
        .to_owned()
}

fn roles(node: &TestNode, project: &str) -> Vec<(String, String)> {
    let view = node
        .run(&["members", project, "--json"])
        .expect_ok("members")
        .json();
    view["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["did"].as_str().unwrap_or_default().to_owned(),
                m["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn share_revoke_and_members_travel_with_the_project() {
    let ada = TestNode::with_identity("Ada");
    let bob = TestNode::with_identity("Bob");
    let cy = TestNode::with_identity("Cy");
    let (ada_did, bob_did, cy_did) = (did(&ada), did(&bob), did(&cy));
    ada.run(&["project", "create", "survey"])
        .expect_ok("create");
    assert_eq!(
        roles(&ada, "survey"),
        vec![(ada_did.clone(), "owner".into())]
    );

    // Bad input: clear errors, nothing recorded.
    ada.run(&["share", "survey", &ada_did, "--role", "writer"])
        .expect_err("self", "yourself");
    ada.run(&["share", "survey", &bob_did, "--role", "boss"])
        .expect_err("role", "unknown role");
    ada.run(&["share", "survey", &bob_did, "--role", "owner"])
        .expect_err("owner", "cannot be granted");
    ada.run(&["share", "survey", "did:key:zNotAKey", "--role", "writer"])
        .expect_err("key", "malformed key");
    ada.run(&[
        "share",
        "survey",
        &bob_did,
        "--role",
        "writer",
        "--expires",
        "2001-01-01",
    ])
    .expect_err("past", "in the past");
    ada.run(&["revoke", "survey", &bob_did])
        .expect_err("non-member", "not a member");
    assert_eq!(roles(&ada, "survey").len(), 1);

    // Grants by did:key and by PeerId.
    let out = ada
        .run(&["share", "survey", &bob_did, "--role", "writer"])
        .expect_ok("share bob");
    assert!(out.stdout.contains("Granted writer"), "{}", out.stdout);
    ada.run(&[
        "share",
        "survey",
        &peer_id(&cy),
        "--role",
        "reader",
        "--expires",
        "2999-01-01",
    ])
    .expect_ok("share cy");
    let mut expected = vec![
        (ada_did.clone(), "owner".to_owned()),
        (bob_did.clone(), "writer".into()),
        (cy_did.clone(), "reader".into()),
    ];
    expected.sort();
    let mut got = roles(&ada, "survey");
    got.sort();
    assert_eq!(got, expected);

    // Each grant is a file under .tandem/access, committed on its own, and an entry.
    let dir = ada.project_dir("survey");
    let files = git(&dir, &["ls-files", ".tandem/access"]);
    assert_eq!(files.lines().count(), 2, "{files}");
    assert!(git(&dir, &["log", "--format=%s"]).contains("[tandem:access] Granted writer to"));
    let access = ada
        .run(&["activity", "survey", "--kind", "access", "--json"])
        .expect_ok("activity")
        .json();
    assert_eq!(access.as_array().map(Vec::len), Some(2));

    // The access statements travel with the project.
    let zip = ada.home().join("survey.zip");
    ada.run(&[
        "project",
        "export",
        "survey",
        "-o",
        zip.to_str().expect("utf8"),
    ])
    .expect_ok("export");
    bob.run(&["project", "import", zip.to_str().expect("utf8")])
        .expect_ok("import");
    let mut bobs_view = roles(&bob, "survey");
    bobs_view.sort();
    assert_eq!(
        bobs_view, expected,
        "Bob evaluates the same roles from the same statements"
    );
    bob.run(&["share", "survey", &cy_did, "--role", "admin"])
        .expect_err("writer shares", "only admins and the owner");

    // Revoke: Bob is gone from the list; an entry says so.
    ada.run(&["revoke", "survey", &bob_did]).expect_ok("revoke");
    assert!(!roles(&ada, "survey").iter().any(|(k, _)| k == &bob_did));
    ada.run(&["visibility", "survey", "public"])
        .expect_ok("make public");
    let view = ada
        .run(&["members", "survey", "--json"])
        .expect_ok("members")
        .json();
    assert_eq!(view["public"], true);
    ada.run(&["visibility", "survey", "sideways"])
        .expect_err("visibility", "public or private");
}
