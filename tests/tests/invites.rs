//! Invite links between real `tandem up` processes on loopback: two people
//! who never exchanged a key work together from one `tandem:` ticket, which
//! works once, expires, and tells a forger or prober nothing.

use std::fs;

use tandem_e2e::{TestNode, git};
use tandem_protocol::invite::{InviteSecret, Ticket};

fn head(node: &TestNode, project: &str) -> String {
    git(&node.project_dir(project), &["rev-parse", "HEAD"])
        .trim()
        .to_owned()
}

/// A new invite from `node` for `project`, as `tandem invite --json` says it.
fn invite(node: &TestNode, project: &str, role: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["invite", project, "--role", role, "--json"];
    args.extend_from_slice(extra);
    node.run(&args).expect_ok("tandem invite").json()
}

fn ticket(invite: &serde_json::Value) -> String {
    invite["ticket"]
        .as_str()
        .expect("the invite has a ticket")
        .to_owned()
}

/// The role `did` holds in `project`, as `node`'s `tandem members` says.
fn role_of(node: &TestNode, project: &str, did: &str) -> Option<String> {
    let members = node
        .run(&["members", project, "--json"])
        .expect_ok("members")
        .json();
    members["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["did"] == did)
        .and_then(|m| m["role"].as_str().map(str::to_owned))
}

fn bearer(node: &TestNode) -> String {
    format!("Bearer {}", node.token.as_deref().expect("node is running"))
}

#[test]
fn a_ticket_joins_a_stranger_once_and_only_its_inviter_decides() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    ada.run(&["project", "create", "survey"])
        .expect_ok("create");
    ada.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");
    fs::write(
        ada.project_dir("survey").join("code/analysis.py"),
        "print(1)\n",
    )
    .expect("write");
    ada.run(&["sweep", "survey"]).expect_ok("sweep");

    // Ada invites; Bob, who never added her as a peer nor gave his key,
    // joins with the ticket alone and holds the project as writer.
    let writer = invite(&ada, "survey", "writer", &[]);
    let writer_ticket = ticket(&writer);
    assert!(writer_ticket.starts_with("tandem:"), "{writer_ticket}");
    assert!(
        writer_ticket.len() < 400,
        "a ticket to paste in a chat: {} characters",
        writer_ticket.len()
    );
    assert_eq!(writer["role"], "writer");
    let invites_file = fs::read_to_string(ada.home().join("invites.json")).expect("invites.json");
    let secret = Ticket::decode(&writer_ticket).expect("a ticket").secret;
    assert!(
        !invites_file.contains(&hex::encode(secret.as_bytes())),
        "Ada's home keeps only a hash of the secret"
    );
    let joined = bob.run(&["join", &writer_ticket]).expect_ok("join");
    assert!(
        joined.stdout.contains("Joined survey as writer"),
        "{}",
        joined.stdout
    );
    assert_eq!(head(&bob, "survey"), head(&ada, "survey"));
    assert!(bob.project_dir("survey").join("code/analysis.py").is_file());
    assert_eq!(
        role_of(&ada, "survey", &bob.did()).as_deref(),
        Some("writer")
    );
    assert_eq!(
        role_of(&bob, "survey", &bob.did()).as_deref(),
        Some("writer")
    );
    let feed = ada
        .run(&["activity", "survey", "--json"])
        .expect_ok("activity")
        .json();
    assert!(
        feed.as_array()
            .expect("entries")
            .iter()
            .any(|e| e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Granted writer to"))),
        "the grant is an ordinary one in Ada's activity: {feed}"
    );

    // Bob works and Ada takes it: he is a writer like any.
    bob.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");
    fs::write(bob.project_dir("survey").join("input/bob.csv"), "b\n").expect("write");
    bob.run(&["sweep", "survey"]).expect_ok("sweep");
    ada.run(&["sync", "survey"]).expect_ok("ada sync");
    assert!(
        ada.project_dir("survey").join("input/bob.csv").is_file(),
        "Bob's commit reached Ada"
    );
    assert_eq!(head(&ada, "survey"), head(&bob, "survey"));

    // The ticket worked once: Cy cannot use it, and gets no role.
    let cy = TestNode::started("Cy");
    cy.run(&["join", &writer_ticket])
        .expect_err("a used ticket", "already used");
    assert!(!cy.project_dir("survey").exists());
    assert_eq!(role_of(&ada, "survey", &cy.did()), None);
    let listed = ada
        .run(&["invite", "survey", "--list", "--json"])
        .expect_ok("list")
        .json();
    assert_eq!(listed[0]["used_by"], bob.did(), "{listed}");

    // Tampered in copying: refused before anything is sent.
    let mut chars: Vec<char> = writer_ticket.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'z' { 'y' } else { 'z' };
    let tampered: String = chars.into_iter().collect();
    cy.run(&["join", &tampered])
        .expect_err("a tampered ticket", "not a usable invite ticket");
    cy.run(&["join", "tandem:"])
        .expect_err("an empty ticket", "not a usable invite ticket");
    cy.run(&["join", "https://example.org/join"])
        .expect_err("not a ticket", "starts with \"tandem:\"");

    // Forged: a well-formed ticket with a guessed secret, for the real
    // project and for one that does not exist, is refused in the same words.
    let fresh = ticket(&invite(&ada, "survey", "writer", &[]));
    let mut forged = Ticket::decode(&fresh).expect("ticket");
    forged.secret = InviteSecret::from_bytes([9; 32]);
    let guessed = cy
        .run(&["join", &forged.encode().expect("encode")])
        .expect_err("a guessed secret", "does not accept this invite");
    let mut nowhere = forged.clone();
    nowhere.project = "tp11111111111111111111111111111111".parse().expect("an id");
    let unknown = cy
        .run(&["join", &nowhere.encode().expect("encode")])
        .expect_err("an unknown project", "does not accept this invite");
    assert_eq!(
        guessed.stderr, unknown.stderr,
        "a wrong secret tells a prober nothing an unknown project does not"
    );
    // The real ticket still works after the probes: Cy joins with it.
    cy.run(&["join", &fresh])
        .expect_ok("join with the fresh ticket");
    assert_eq!(
        role_of(&ada, "survey", &cy.did()).as_deref(),
        Some("writer")
    );

    // Expired: by the ticket's own date (said without asking), and by Ada's
    // record whatever the ticket claims.
    let dan = TestNode::started("Dan");
    let expiring = ticket(&invite(&ada, "survey", "writer", &["--expires", "1d"]));
    let mut stale = Ticket::decode(&expiring).expect("ticket");
    stale.expires_ms = 1_000;
    dan.run(&["join", &stale.encode().expect("encode")])
        .expect_err("an expired ticket", "expired");
    let path = ada.home().join("invites.json");
    let mut file: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    for invite in file["invites"].as_array_mut().expect("invites") {
        if invite["used"].is_null() {
            invite["expires_ms"] = serde_json::json!(now_ms - 1_000);
        }
    }
    fs::write(&path, serde_json::to_vec(&file).expect("encode")).expect("write");
    dan.run(&["join", &expiring])
        .expect_err("expired by the inviter's record", "has expired");
    assert_eq!(role_of(&ada, "survey", &dan.did()), None);

    // A reader's invite gives reading only; a reader or writer cannot invite.
    let reader = ticket(&invite(&ada, "survey", "reader", &["--expires", "12h"]));
    let joined = dan.run(&["join", &reader]).expect_ok("join as reader");
    assert!(joined.stdout.contains("as reader"), "{}", joined.stdout);
    assert_eq!(
        role_of(&ada, "survey", &dan.did()).as_deref(),
        Some("reader")
    );
    dan.run(&["invite", "survey", "--role", "reader"])
        .expect_err("a reader invites", "only admins and the owner");
    bob.run(&["invite", "survey", "--role", "writer"])
        .expect_err("a writer invites", "only admins and the owner");
    ada.run(&["invite", "survey", "--role", "owner"])
        .expect_err("an owner invite", "owner");
    ada.run(&[
        "invite",
        "survey",
        "--role",
        "writer",
        "--expires",
        "2001-01-01",
    ])
    .expect_err("an expiry in the past", "not in the future");

    // Revoked: the ticket stops working.
    let revoked = invite(&ada, "survey", "writer", &[]);
    let id = revoked["id"].as_str().expect("id");
    ada.run(&["invite", "survey", "--revoke", id])
        .expect_ok("revoke");
    let eve = TestNode::started("Eve");
    eve.run(&["join", &ticket(&revoked)])
        .expect_err("a revoked ticket", "does not accept this invite");
    assert!(!eve.project_dir("survey").exists());
}

/// The HTTP API the web UI calls, and the page parts that call it.
#[test]
fn the_web_ui_offers_an_invite_button_and_a_join_box() {
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    ada.run(&["project", "create", "survey"])
        .expect_ok("create");

    let (status, members) = ada.http(
        "GET",
        "/p/survey/members",
        &[("Authorization", &bearer(&ada))],
        "",
    );
    assert_eq!(status, 200);
    assert!(members.contains(r#"id="invite""#), "{members}");
    assert!(members.contains(r#"data-api="/api/projects/survey/invites""#));
    assert!(members.contains("Make invite link"));
    let (status, projects) = bob.http("GET", "/", &[("Authorization", &bearer(&bob))], "");
    assert_eq!(status, 200);
    assert!(projects.contains(r#"id="join""#), "{projects}");
    assert!(projects.contains(r#"data-api="/api/join""#));
    assert!(projects.contains("Join with an invite"));

    // What the button and the box send.
    let created = ada.api_post(
        "/api/projects/survey/invites",
        &serde_json::json!({ "role": "writer", "expires": "30d" }),
    );
    assert!(
        created["message"]
            .as_str()
            .is_some_and(|m| m.contains(created["ticket"].as_str().unwrap_or("?"))),
        "the page shows the ticket: {created}"
    );
    let far = ada.http(
        "POST",
        "/api/projects/survey/invites",
        &[
            ("Authorization", &bearer(&ada)),
            ("Content-Type", "application/json"),
        ],
        r#"{"role":"writer","expires":"2099-01-01"}"#,
    );
    assert_eq!(far.0, 400, "more than 90 days ahead: {}", far.1);
    let created = ada.api_post(
        "/api/projects/survey/invites",
        &serde_json::json!({ "role": "writer" }),
    );
    let summary = bob.api_post(
        "/api/join",
        &serde_json::json!({ "ticket": created["ticket"] }),
    );
    assert_eq!(summary["name"], "survey");
    assert_eq!(summary["role"], "writer");
    let (status, body) = bob.http(
        "POST",
        "/api/join",
        &[
            ("Authorization", &bearer(&bob)),
            ("Content-Type", "application/json"),
        ],
        &serde_json::json!({ "ticket": "x".repeat(100_000) }).to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no invite ticket is longer"), "{body}");

    // The inviter's node is down: the joiner hears so, and why.
    let later = ticket(&invite(&ada, "survey", "reader", &[]));
    let mut ada = ada;
    assert!(ada.stop(), "Ada's node stops cleanly");
    let cy = TestNode::started("Cy");
    let started = std::time::Instant::now();
    cy.run(&["join", &later])
        .expect_err("an inviter offline", "could not reach the inviter");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(40),
        "gave up in {:?}",
        started.elapsed()
    );
}
