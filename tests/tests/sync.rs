//! Peer-to-peer sync between real `tandem up` processes on loopback.

use std::collections::BTreeSet;
use std::fs;

use std::time::Duration;

use tandem_e2e::{TestNode, git, wait_for};

fn entry_ids(node: &TestNode, project: &str) -> BTreeSet<String> {
    let list = node
        .run(&["activity", project, "--json", "--limit", "10000"])
        .expect_ok("activity")
        .json();
    list.as_array()
        .expect("entries")
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn head(node: &TestNode, project: &str) -> String {
    git(&node.project_dir(project), &["rev-parse", "HEAD"])
        .trim()
        .to_owned()
}

#[test]
fn share_clone_edit_sync_conflict_and_access_on_the_wire() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    let cy = TestNode::started("Cy");
    // Eve never gets a role; her node records everything it receives.
    let mut eve = TestNode::with_identity("Eve");
    let eve_wire = eve.record_wire();
    eve.start();
    eve.connect(&ada);
    eve.connect(&bob);
    bob.connect(&ada);
    cy.connect(&ada);
    cy.connect(&bob);

    ada.run(&["project", "create", "survey"])
        .expect_ok("create");
    // This test drives every sync itself (automatic sync has its own test).
    ada.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");
    fs::write(
        ada.project_dir("survey").join("code/analysis.py"),
        "print(1)\n",
    )
    .expect("write");
    ada.run(&["sweep", "survey"]).expect_ok("sweep");
    let id = ada.project_id("survey");

    // Before sharing: Bob and Cy are offered nothing and cannot clone.
    let offers = bob
        .run(&["project", "offers", "--json"])
        .expect_ok("offers")
        .json();
    assert_eq!(
        offers.as_array().map(Vec::len),
        Some(0),
        "a peer without a role learns nothing: {offers}"
    );
    bob.run(&["project", "clone", &id])
        .expect_err("clone before share", "no connected peer offers it");

    // Share with Bob as writer: he sees the offer, clones with full history.
    ada.run(&["share", "survey", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    let offers = bob
        .run(&["project", "offers", "--json"])
        .expect_ok("offers")
        .json();
    assert_eq!(offers[0]["name"], "survey");
    assert_eq!(offers[0]["role"], "writer");
    bob.run(&["project", "clone", &id]).expect_ok("clone");
    bob.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");
    assert_eq!(head(&bob, "survey"), head(&ada, "survey"));
    git(&bob.project_dir("survey"), &["fsck", "--strict"]);
    assert!(entry_ids(&bob, "survey").is_superset(&entry_ids(&ada, "survey")));

    // Both work, then sync both ways: the same history and the same feed.
    fs::write(ada.project_dir("survey").join("code/ada.py"), "a\n").expect("write");
    fs::write(bob.project_dir("survey").join("input/bob.csv"), "b\n").expect("write");
    bob.run(&["note", "survey", "Bob's field notes"])
        .expect_ok("note");
    // Each sync may record an entry the other side has not seen yet; a few
    // rounds settle everything.
    for _ in 0..4 {
        ada.run(&["sync", "survey"]).expect_ok("ada sync");
        bob.run(&["sync", "survey"]).expect_ok("bob sync");
        if head(&ada, "survey") == head(&bob, "survey")
            && entry_ids(&ada, "survey") == entry_ids(&bob, "survey")
        {
            break;
        }
    }
    assert_eq!(head(&ada, "survey"), head(&bob, "survey"), "heads converge");
    assert_eq!(
        entry_ids(&ada, "survey"),
        entry_ids(&bob, "survey"),
        "feeds converge"
    );
    assert!(ada.project_dir("survey").join("input/bob.csv").is_file());
    assert!(bob.project_dir("survey").join("code/ada.py").is_file());
    git(&ada.project_dir("survey"), &["fsck", "--strict"]);

    // The same file on both sides: a conflict that changes nothing until
    // resolved; abort keeps ours, keep-both makes a branch, theirs merges.
    fs::write(
        ada.project_dir("survey").join("code/analysis.py"),
        "print('ada')\n",
    )
    .expect("write");
    fs::write(
        bob.project_dir("survey").join("code/analysis.py"),
        "print('bob')\n",
    )
    .expect("write");
    ada.run(&["sweep", "survey"]).expect_ok("sweep");
    bob.run(&["sweep", "survey"]).expect_ok("sweep");
    let before = head(&ada, "survey");
    let conflicted = ada.run(&["sync", "survey"]);
    assert_eq!(
        conflicted.code,
        Some(3),
        "conflicts exit 3: {}",
        conflicted.stdout
    );
    assert!(
        conflicted.stdout.contains("code/analysis.py"),
        "{}",
        conflicted.stdout
    );
    assert_eq!(head(&ada, "survey"), before, "nothing changed");
    assert_eq!(
        fs::read_to_string(ada.project_dir("survey").join("code/analysis.py")).expect("read"),
        "print('ada')\n"
    );
    ada.run(&["sync", "survey"])
        .expect_err("sync while conflicted", "resolve");
    ada.run(&["sync", "survey", "--abort"]).expect_ok("abort");
    assert_eq!(head(&ada, "survey"), before);
    assert_eq!(ada.run(&["sync", "survey"]).code, Some(3));
    ada.run(&["sync", "survey", "--resolve", "keep-both"])
        .expect_ok("keep both");
    let branches = git(
        &ada.project_dir("survey"),
        &["branch", "--list", "conflict/*"],
    );
    assert!(branches.contains("conflict/bob"), "{branches}");
    assert_eq!(ada.run(&["sync", "survey"]).code, Some(3));
    ada.run(&["sync", "survey", "--resolve", "theirs"])
        .expect_ok("theirs");
    assert_eq!(
        fs::read_to_string(ada.project_dir("survey").join("code/analysis.py")).expect("read"),
        "print('bob')\n"
    );
    bob.run(&["sync", "survey"]).expect_ok("bob gets the merge");
    assert_eq!(head(&ada, "survey"), head(&bob, "survey"));

    // A reader can clone and pull, but nobody takes the reader's commits.
    ada.run(&["share", "survey", &cy.did(), "--role", "reader"])
        .expect_ok("share reader");
    cy.run(&["project", "clone", &id])
        .expect_ok("reader clones");
    cy.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");
    fs::write(cy.project_dir("survey").join("code/cy.py"), "sneaky\n").expect("write");
    cy.run(&["sweep", "survey"]).expect_ok("sweep");
    let ada_head = head(&ada, "survey");
    let report = ada
        .run(&["sync", "survey"])
        .expect_ok("sync with a reader around");
    assert!(report.stdout.contains("may not write"), "{}", report.stdout);
    assert_eq!(head(&ada, "survey"), ada_head);
    assert!(!ada.project_dir("survey").join("code/cy.py").exists());

    // Revoked: Bob is cut off at his next request.
    ada.run(&["revoke", "survey", &bob.did()])
        .expect_ok("revoke");
    fs::write(ada.project_dir("survey").join("code/secret.py"), "s\n").expect("write");
    ada.run(&["sweep", "survey"]).expect_ok("sweep");
    bob.run(&["sync", "survey"])
        .expect_ok("bob syncs after revoke");
    assert!(
        !bob.project_dir("survey").join("code/secret.py").exists(),
        "a revoked member gets nothing new"
    );
    let offers = bob
        .run(&["project", "offers", "--json"])
        .expect_ok("offers")
        .json();
    assert!(
        offers
            .as_array()
            .expect("offers")
            .iter()
            .all(|o| o["peer"] != ada.did().as_str()),
        "Ada no longer offers the project to Bob: {offers}"
    );

    // What crossed the wire to Eve, who had no role all along: nothing of
    // the project (no name, no history, no activity, no access), however
    // hard she asks.
    let eve_offers = eve
        .run(&["project", "offers", "--json"])
        .expect_ok("offers")
        .json();
    assert_eq!(eve_offers.as_array().map(Vec::len), Some(0), "{eve_offers}");
    eve.run(&["project", "clone", &id])
        .expect_err("clone without a role", "no connected peer offers it");
    let received = fs::read_to_string(&eve_wire).expect("Eve's wire log");
    assert!(!received.is_empty(), "Eve's node received messages");
    assert!(
        !received.contains("survey"),
        "the project's name reached Eve"
    );
    for line in received.lines() {
        let message: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let kind = message["response"]["type"]
            .as_str()
            .or(message["request"]["type"].as_str())
            .unwrap_or_default()
            .to_owned();
        if message.get("response").is_some() {
            assert!(
                ["projects", "denied", "ack", "blob_endpoint"].contains(&kind.as_str()),
                "Eve received project data: {line}"
            );
            if kind == "projects" {
                assert_eq!(
                    message["response"]["offers"],
                    serde_json::json!([]),
                    "{line}"
                );
            }
        }
    }
}

#[test]
fn changes_reach_members_automatically() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    ada.run(&["project", "create", "field"]).expect_ok("create");
    ada.run(&["share", "field", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    bob.run(&["project", "clone", &ada.project_id("field")])
        .expect_ok("clone");

    // Ada saves a file with any program: her node sweeps it, announces it,
    // and Bob's node pulls it without anyone typing `sync`.
    fs::write(
        ada.project_dir("field").join("input/site-a.csv"),
        "depth,ph\n1,6.5\n",
    )
    .expect("write");
    let arrived = tandem_e2e::wait_for(std::time::Duration::from_secs(20), || {
        bob.project_dir("field")
            .join("input/site-a.csv")
            .is_file()
            .then_some(())
    });
    assert!(arrived.is_some(), "Ada's file reached Bob automatically");
    assert!(
        tandem_e2e::wait_for(std::time::Duration::from_secs(10), || {
            (head(&ada, "field") == head(&bob, "field")).then_some(())
        })
        .is_some()
    );

    // With automatic sync off, Bob's copy waits for him.
    bob.run(&["sync", "field", "--auto", "off"])
        .expect_ok("auto off");
    fs::write(
        ada.project_dir("field").join("input/site-b.csv"),
        "depth,ph\n2,7.0\n",
    )
    .expect("write");
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(!bob.project_dir("field").join("input/site-b.csv").exists());
    bob.run(&["sync", "field"]).expect_ok("manual sync");
    assert!(bob.project_dir("field").join("input/site-b.csv").is_file());
}

#[test]
fn a_node_killed_mid_sync_restarts_consistent_and_finishes() {
    let ada = TestNode::started("Ada");
    let mut bob = TestNode::started("Bob");
    bob.connect(&ada);
    ada.run(&["project", "create", "long"]).expect_ok("create");
    ada.run(&["sync", "long", "--auto", "off"])
        .expect_ok("auto off");
    ada.run(&["share", "long", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    bob.run(&["project", "clone", &ada.project_id("long")])
        .expect_ok("clone");
    bob.run(&["sync", "long", "--auto", "off"])
        .expect_ok("auto off");

    // Enough new history that the sync takes a while, then kill Bob's node
    // while it runs.
    tandem_e2e::add_commits(&ada, "long", 5_000);
    let mut sync = bob
        .command()
        .args(["sync", "long"])
        .spawn()
        .expect("start sync");
    std::thread::sleep(std::time::Duration::from_millis(300));
    bob.kill();
    let _ = sync.wait();

    // Restarted, the repository is consistent and the next sync completes.
    git(&bob.project_dir("long"), &["fsck", "--strict"]);
    bob.start();
    bob.connect(&ada);
    bob.run(&["sync", "long"]).expect_ok("sync after restart");
    assert_eq!(head(&bob, "long"), head(&ada, "long"));
    git(&bob.project_dir("long"), &["fsck", "--strict"]);
    assert!(entry_ids(&bob, "long").is_superset(&entry_ids(&ada, "long")));
}

#[test]
fn peers_connect_and_clone_over_quic() {
    let quic_only = ["--p2p-listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--no-mdns"];
    let mut ada = TestNode::with_identity("Ada");
    ada.start_with(&quic_only);
    let mut bob = TestNode::with_identity("Bob");
    bob.start_with(&quic_only);
    let address = ada.p2p_address();
    assert!(address.contains("/quic-v1/"), "{address}");
    bob.run(&["peer", "add", &address])
        .expect_ok("peer add over QUIC");

    ada.run(&["project", "create", "field"]).expect_ok("create");
    fs::write(ada.project_dir("field").join("code/a.py"), "print(1)\n").expect("write");
    ada.run(&["sweep", "field"]).expect_ok("sweep");
    ada.run(&["share", "field", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    bob.run(&["project", "clone", &ada.project_id("field")])
        .expect_ok("clone over QUIC");
    assert_eq!(head(&ada, "field"), head(&bob, "field"));
    let peers = bob.run(&["peers", "--json"]).expect_ok("peers").json();
    assert!(
        peers.to_string().contains("quic-v1"),
        "the peer is known by its QUIC address: {peers}"
    );
}

#[test]
fn a_peer_known_by_key_alone_is_found_through_another_peer() {
    let with_dht = |name: &str| {
        let mut node = TestNode::with_identity(name);
        node.start_with(&["--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"]);
        node
    };
    let ada = with_dht("Ada");
    let hub = with_dht("Hub");
    let cy = with_dht("Cy");
    ada.connect(&hub);
    cy.connect(&hub);

    // Ada has only Cy's key; the hub knows where Cy listens (Kademlia).
    let found = wait_for(Duration::from_secs(20), || {
        ada.run(&["peer", "add", &cy.did()]).ok.then_some(())
    });
    assert!(found.is_some(), "Ada finds Cy by key through the hub");
    let peers = ada.run(&["peers", "--json"]).expect_ok("peers").json();
    let entry = peers
        .as_array()
        .expect("peers")
        .iter()
        .find(|p| p["did"] == cy.did().as_str())
        .cloned()
        .expect("Cy is listed");
    assert_eq!(entry["connected"], true, "{entry}");
    assert_eq!(entry["found_by"], "via another peer", "{entry}");

    // The direct connection carries sharing and cloning.
    ada.run(&["project", "create", "notes"]).expect_ok("create");
    ada.run(&["share", "notes", &cy.did(), "--role", "reader"])
        .expect_ok("share");
    cy.run(&["project", "clone", &ada.project_id("notes")])
        .expect_ok("clone from a peer found by key");

    // A key no peer knows: a clear error, not a hang.
    let stranger = TestNode::with_identity("Stranger");
    ada.run(&["peer", "add", &stranger.did()])
        .expect_err("unknown key", "no connected peer knows where");
    ada.run(&["peer", "add", "not-a-key"])
        .expect_err("garbage", "neither a multiaddr");

    // Without the DHT, a key alone cannot be looked up, and it says so.
    let plain = TestNode::started("Plain");
    plain.connect(&hub);
    plain
        .run(&["peer", "add", &cy.did()])
        .expect_err("no DHT", "--no-dht");
}

/// The gossip lines of a wire log published by `publisher` (a PeerId),
/// from line `from` on.
fn gossip_from(log: &std::path::Path, publisher: &str, from: usize) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .skip(from)
        .filter(|line| {
            let message: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            message["gossip"]["source"].as_str() == Some(publisher)
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn announcements_travel_the_members_mesh_and_nowhere_else() {
    let recording = |name: &str| {
        let mut node = TestNode::with_identity(name);
        let log = node.record_wire();
        node.start();
        (node, log)
    };
    let ada = TestNode::started("Ada");
    let (bob, _) = recording("Bob");
    let (cy, cy_wire) = recording("Cy");
    let (eve, eve_wire) = recording("Eve");
    // A line, Ada — Bob — Cy, and Eve (no role) beside Ada and Bob.
    bob.connect(&ada);
    cy.connect(&bob);
    eve.connect(&ada);
    eve.connect(&bob);

    ada.run(&["project", "create", "transect"])
        .expect_ok("create");
    let id = ada.project_id("transect");
    for member in [&bob, &cy] {
        ada.run(&["share", "transect", &member.did(), "--role", "writer"])
            .expect_ok("share");
    }
    bob.run(&["project", "clone", &id]).expect_ok("Bob clones");
    cy.run(&["project", "clone", &id])
        .expect_ok("Cy clones from Bob, the only peer he knows");

    // Ada's change reaches Cy, who is not connected to her: her signed
    // heads are relayed to him by Bob, and he syncs from Bob.
    fs::write(
        ada.project_dir("transect").join("input/plot-1.csv"),
        "species,count\noak,3\n",
    )
    .expect("write");
    let arrived = wait_for(Duration::from_secs(30), || {
        cy.project_dir("transect")
            .join("input/plot-1.csv")
            .is_file()
            .then_some(())
    });
    assert!(arrived.is_some(), "Ada's file reached Cy through Bob");
    let ada_peer = ada.run(&["id", "--json"]).expect_ok("id").json()["peer_id"]
        .as_str()
        .expect("peer id")
        .to_owned();
    let relayed = gossip_from(&cy_wire, &ada_peer, 0);
    assert!(
        !relayed.is_empty(),
        "Ada's signed heads reached Cy by gossip"
    );
    assert!(
        relayed
            .iter()
            .all(|line| !line.contains("transect") && !line.contains(&id)),
        "announcements carry no project name or id in the clear: {relayed:?}"
    );

    // Eve, connected to both, heard nothing: she is on no project's topic.
    let eve_heard = fs::read_to_string(&eve_wire).unwrap_or_default();
    assert!(
        !eve_heard.contains("\"gossip\""),
        "gossip reached a peer without a role: {eve_heard}"
    );

    // Revoking Cy moves the project to a topic he cannot compute: Ada's
    // next announcement never reaches him, though Bob still relays.
    ada.run(&["revoke", "transect", &cy.did()])
        .expect_ok("revoke");
    let revoked_statements = wait_for(Duration::from_secs(20), || {
        let members = bob
            .run(&["members", "transect", "--json"])
            .expect_ok("members")
            .json()
            .to_string();
        (!members.contains(&cy.did())).then_some(())
    });
    assert!(revoked_statements.is_some(), "Bob learns of the revocation");
    std::thread::sleep(Duration::from_secs(2));
    let seen = fs::read_to_string(&cy_wire)
        .unwrap_or_default()
        .lines()
        .count();
    fs::write(
        ada.project_dir("transect").join("input/plot-2.csv"),
        "species,count\nash,5\n",
    )
    .expect("write");
    let reached_bob = wait_for(Duration::from_secs(30), || {
        bob.project_dir("transect")
            .join("input/plot-2.csv")
            .is_file()
            .then_some(())
    });
    assert!(reached_bob.is_some(), "Bob still hears of Ada's changes");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        gossip_from(&cy_wire, &ada_peer, seen),
        Vec::<String>::new(),
        "a revoked member heard an announcement"
    );
    assert!(
        !cy.project_dir("transect").join("input/plot-2.csv").exists(),
        "a revoked member got new work"
    );
}
