//! Privacy boundary: a node names a project (its id, access heads, feed
//! heads, members) only to peers its own access view lets read it, and the
//! gossip topic and seal derive from a secret only holders have.
//!
//! Eve has no role and is connected to every member; Cy was a member and is
//! revoked. Both record everything they receive (`TANDEM_WIRE_LOG`) while
//! the members sync, announce and change access. Neither log may hold the
//! project id in any form, the current access heads, the genesis nonce or
//! the gossip key derived from them.

use std::fs;
use std::path::Path;
use std::time::Duration;

use tandem_e2e::{TestNode, wait_for};
use tandem_protocol::access::{Access, Verified};
use tandem_protocol::project::SignedGenesis;
use tandem_protocol::{ProjectId, gossip};

/// The project's genesis, as the owner's node keeps it.
fn genesis(node: &TestNode, project: &str) -> SignedGenesis {
    let text = fs::read_to_string(node.project_dir(project).join(".tandem/project.toml"))
        .expect("the manifest");
    let table: toml::Table = toml::from_str(&text).expect("manifest is TOML");
    table["genesis"]
        .clone()
        .try_into()
        .expect("the manifest holds a signed genesis")
}

/// Every string that would let a peer name the project or derive its
/// gossip key: the id (as text, base58 and hex), the genesis nonce, the
/// current access heads, and the key sealing announcements now.
fn secrets(node: &TestNode, project: &str) -> Vec<(String, String)> {
    let genesis = genesis(node, project);
    let id: ProjectId = genesis.project_id();
    let mut access = Access::new(id, genesis.payload.owner);
    let store = node.home().join("access").join(id.to_string());
    for file in fs::read_dir(&store).expect("the access store") {
        let bytes = fs::read(file.expect("entry").path()).expect("a statement");
        if let Ok(verified) = Verified::decode(&bytes, &id) {
            access.insert(verified);
        }
    }
    let heads = access.heads();
    assert!(!heads.is_empty(), "the project has access statements");
    let text = id.to_string();
    let mut out = vec![
        ("project id".to_owned(), text.clone()),
        (
            "project id (base58)".into(),
            text.trim_start_matches("tp").to_owned(),
        ),
        ("project id (hex)".into(), hex::encode(id.as_bytes())),
        ("project id (HEX)".into(), hex::encode_upper(id.as_bytes())),
        ("genesis nonce".into(), genesis.payload.nonce.clone()),
        (
            "gossip key".into(),
            hex::encode(gossip::key(&gossip::Secret::of(&genesis), &heads)),
        ),
    ];
    for head in heads {
        out.push(("access head".into(), head.to_hex()));
    }
    out
}

fn assert_learns_nothing(who: &str, log: &str, secrets: &[(String, String)]) {
    for (what, value) in secrets {
        assert!(
            !log.contains(value.as_str()),
            "{who} received the {what} ({value})"
        );
    }
    for line in log.lines() {
        let message: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert!(
            message["request"].get("project").is_none(),
            "{who} was sent a request naming a project: {line}"
        );
        if let Some(response) = message.get("response") {
            let kind = response["type"].as_str().unwrap_or_default();
            assert!(
                ["projects", "denied", "ack", "blob_endpoint"].contains(&kind),
                "{who} received project data: {line}"
            );
            if kind == "projects" {
                assert_eq!(response["offers"], serde_json::json!([]), "{line}");
            }
        }
    }
}

fn lines_from(log: &Path, from: usize) -> String {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .skip(from)
        .map(|l| format!("{l}\n"))
        .collect()
}

fn members(node: &TestNode, project: &str) -> String {
    node.run(&["members", project, "--json"])
        .expect_ok("members")
        .json()
        .to_string()
}

#[test]
fn a_stranger_and_a_revoked_member_learn_nothing_of_the_project() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    let mut cy = TestNode::with_identity("Cy");
    let cy_wire = cy.record_wire();
    cy.start();
    let mut eve = TestNode::with_identity("Eve");
    let eve_wire = eve.record_wire();
    eve.start();
    bob.connect(&ada);
    cy.connect(&ada);
    cy.connect(&bob);
    eve.connect(&ada);
    eve.connect(&bob);
    eve.connect(&cy);

    ada.run(&["project", "create", "survey"])
        .expect_ok("create");
    let id = ada.project_id("survey");
    for member in [&bob, &cy] {
        ada.run(&["share", "survey", &member.did(), "--role", "writer"])
            .expect_ok("share");
    }
    bob.run(&["project", "clone", &id]).expect_ok("Bob clones");
    cy.run(&["project", "clone", &id]).expect_ok("Cy clones");

    // Work flows among the three members (by announcement and gossip).
    fs::write(
        ada.project_dir("survey").join("input/plot-1.csv"),
        "species,count\noak,3\n",
    )
    .expect("write");
    for member in [&bob, &cy] {
        let arrived = wait_for(Duration::from_secs(30), || {
            member
                .project_dir("survey")
                .join("input/plot-1.csv")
                .is_file()
                .then_some(())
        });
        assert!(arrived.is_some(), "Ada's file reached a member");
    }

    // Cy is revoked; once Bob knows it, nobody may tell Cy anything more.
    ada.run(&["revoke", "survey", &cy.did()])
        .expect_ok("revoke");
    let known = wait_for(Duration::from_secs(30), || {
        (!members(&bob, "survey").contains(&cy.did())).then_some(())
    });
    assert!(known.is_some(), "Bob learns of the revocation");
    std::thread::sleep(Duration::from_secs(2));
    let cy_seen = fs::read_to_string(&cy_wire)
        .unwrap_or_default()
        .lines()
        .count();

    // The members keep working: new files, a new grant (new access heads),
    // announcements, gossip, and syncs asked for by hand, which used to
    // start with an access request to every connected peer.
    let dan = TestNode::with_identity("Dan");
    ada.run(&["share", "survey", &dan.did(), "--role", "reader"])
        .expect_ok("share with Dan");
    fs::write(
        ada.project_dir("survey").join("input/plot-2.csv"),
        "species,count\nash,5\n",
    )
    .expect("write");
    let reached = wait_for(Duration::from_secs(30), || {
        (bob.project_dir("survey").join("input/plot-2.csv").is_file()
            && members(&bob, "survey").contains(&dan.did()))
        .then_some(())
    });
    assert!(reached.is_some(), "Bob still gets Ada's work and grants");
    fs::write(
        bob.project_dir("survey").join("input/plot-3.csv"),
        "species,count\nelm,1\n",
    )
    .expect("write");
    let back = wait_for(Duration::from_secs(30), || {
        ada.project_dir("survey")
            .join("input/plot-3.csv")
            .is_file()
            .then_some(())
    });
    assert!(back.is_some(), "Bob's work reaches Ada");
    ada.run(&["sync", "survey"]).expect_ok("Ada syncs");
    bob.run(&["sync", "survey"]).expect_ok("Bob syncs");
    // Cy's node still thinks it is a member and asks; Eve asks what she
    // may fetch.
    let _ = cy.run(&["sync", "survey"]);
    let offers = eve
        .run(&["project", "offers", "--json"])
        .expect_ok("offers")
        .json();
    assert_eq!(offers, serde_json::json!([]), "nothing is offered to Eve");
    eve.run(&["project", "clone", &id])
        .expect_err("clone without a role", "no connected peer offers it");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !cy.project_dir("survey").join("input/plot-2.csv").exists(),
        "a revoked member got new work"
    );

    let mut secrets = secrets(&ada, "survey");
    // Dan's key is named only in the project's access statements (his
    // node never ran): it reaching anyone would name a member.
    let dan_id = dan.run(&["id", "--json"]).expect_ok("id").json();
    for field in ["did", "peer_id"] {
        let value = dan_id[field].as_str().expect("a key").to_owned();
        secrets.push((format!("member key ({field})"), value));
    }
    let eve_log = fs::read_to_string(&eve_wire).expect("Eve's wire log");
    assert!(
        eve_log.contains("\"projects\""),
        "Eve's log records what she was sent"
    );
    assert!(!eve_log.contains("survey"), "the name reached Eve");
    assert!(
        !eve_log.contains("\"gossip\""),
        "gossip reached a peer without a role"
    );
    assert_learns_nothing("Eve", &eve_log, &secrets);

    // Cy, after the revocation: nothing names the project, no gossip.
    let cy_after = lines_from(&cy_wire, cy_seen);
    assert!(
        cy_after.contains("\"denied\""),
        "Cy's own requests were answered, with a denial: {cy_after}"
    );
    assert!(
        !cy_after.contains("\"gossip\""),
        "a revoked member heard an announcement: {cy_after}"
    );
    assert_learns_nothing("Cy (revoked)", &cy_after, &secrets);
    // Nor did the heads after the revocation, or the key they derive,
    // ever reach Cy, before or after.
    let cy_log = fs::read_to_string(&cy_wire).expect("Cy's wire log");
    for (what, value) in &secrets {
        if what == "access head" || what == "gossip key" {
            assert!(!cy_log.contains(value.as_str()), "Cy received the {what}");
        }
    }
}
