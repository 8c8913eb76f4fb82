//! Access boundary: statements are taken only from peers that hold a role
//! and kept only if they count (or counting ones need them), so no flood
//! of validly signed junk can stop the owner from granting or revoking.
//!
//! The junk is what anyone can make: statements signed by throw-away keys
//! granting themselves admin. It reaches a node the ways real nodes carry
//! statements: a member's access store (which its node serves) and a
//! writer's commits (statement files under `.tandem/access/`).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use tandem_e2e::TestNode;
use tandem_protocol::access::{Access, Action, Role, SignedStatement, Statement, Verified};
use tandem_protocol::{PeerKey, ProjectId, SecretKey};

/// How many junk statements each attack sends: more than the 64 parents
/// one statement may name.
const FLOOD: u32 = 70;

fn store_dir(node: &TestNode, id: &ProjectId) -> PathBuf {
    node.home().join("access").join(id.to_string())
}

/// The ids of the statements in a folder (`<id>.json` or `<id>.toml`).
fn statement_ids(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|items| {
            items
                .filter_map(|i| i.ok())
                .filter_map(|i| {
                    let name = i.file_name().to_string_lossy().into_owned();
                    name.split_once('.').map(|(id, _)| id.to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The node's access state, read back from its store with the protocol's
/// own code.
fn access_of(node: &TestNode, id: &ProjectId, owner: PeerKey) -> Access {
    let mut access = Access::new(*id, owner);
    for item in fs::read_dir(store_dir(node, id)).expect("access store") {
        let bytes = fs::read(item.expect("entry").path()).expect("statement");
        access.insert(Verified::decode(&bytes, id).expect("a valid stored statement"));
    }
    access
}

fn owner_key(node: &TestNode) -> PeerKey {
    node.did().parse().expect("a did:key")
}

/// Validly signed statements from throw-away keys, each granting its own
/// key admin on top of `parents`: none of them counts.
fn junk(
    id: &ProjectId,
    parents: &[tandem_protocol::access::StatementId],
    seed: u32,
) -> Vec<SignedStatement> {
    (0..FLOOD)
        .map(|n| {
            let mut bytes = [0x5a; 32];
            bytes[..4].copy_from_slice(&(seed + n).to_le_bytes());
            let throwaway = SecretKey::from_bytes(bytes);
            Statement::create(
                *id,
                throwaway.public(),
                Action::Grant { role: Role::Admin },
                &throwaway,
                parents.to_vec(),
                1_700_000_000_000 + n as i64,
                None,
            )
            .expect("a signed statement")
        })
        .collect()
}

fn ids_of(statements: &[SignedStatement]) -> BTreeSet<String> {
    statements
        .iter()
        .map(|s| tandem_protocol::access::StatementId::of(s).to_hex())
        .collect()
}

/// The owner can still grant and revoke, and holds none of the junk.
fn owner_still_in_charge(ada: &TestNode, id: &ProjectId, junk: &BTreeSet<String>) {
    let bob = TestNode::with_identity("Bob");
    ada.run(&["share", "survey", &bob.did(), "--role", "writer"])
        .expect_ok("the owner grants after the flood");
    ada.run(&["revoke", "survey", &bob.did()])
        .expect_ok("the owner revokes after the flood");
    let stored = statement_ids(&store_dir(ada, id));
    assert!(
        stored.is_disjoint(junk),
        "the owner's home holds junk: {:?}",
        stored.intersection(junk).collect::<Vec<_>>()
    );
    let access = access_of(ada, id, owner_key(ada));
    assert_eq!(access.heads().len(), 1, "one head: the last revoke");
}

/// Syncs the owner's project; the keys of the peers it synced with.
fn synced_with(ada: &TestNode) -> Vec<String> {
    let summary = ada.api_post("/api/projects/survey/sync", &serde_json::json!({}));
    summary["peers"]
        .as_array()
        .expect("a sync summary")
        .iter()
        .map(|p| p["peer"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_readers_stored_junk_is_never_served_and_the_owner_keeps_acting() {
    let ada = TestNode::started("Ada");
    let mut rex = TestNode::started("Rex");
    rex.connect(&ada);
    ada.run(&["project", "create", "survey"])
        .expect_ok("create");
    ada.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");
    let id: ProjectId = ada.project_id("survey").parse().expect("project id");
    ada.run(&["share", "survey", &rex.did(), "--role", "reader"])
        .expect_ok("share with Rex");
    rex.run(&["project", "clone", &id.to_string()])
        .expect_ok("Rex clones");

    // Rex's home gets 70 junk statements, as if his node had stored them;
    // his node starts again and is asked for access by the owner.
    let plant = |rex: &mut TestNode, seed: u32| -> BTreeSet<String> {
        rex.stop();
        let heads = access_of(rex, &id, owner_key(&ada)).heads();
        let flood = junk(&id, &heads, seed);
        for statement in &flood {
            let sid = tandem_protocol::access::StatementId::of(statement);
            fs::write(
                store_dir(rex, &id).join(format!("{sid}.json")),
                statement.to_json(),
            )
            .expect("write junk");
        }
        rex.start();
        rex.connect(&ada);
        ids_of(&flood)
    };
    let first = plant(&mut rex, 0);
    let sync = synced_with(&ada);
    assert!(
        sync.contains(&rex.did()),
        "Ada synced with Rex, a reader: {sync:?}"
    );
    assert!(
        statement_ids(&store_dir(&rex, &id)).is_disjoint(&first),
        "Rex's own node dropped the junk it held"
    );
    owner_still_in_charge(&ada, &id, &first);

    // Revoked, Rex holds junk again: the owner does not even ask him.
    ada.run(&["revoke", "survey", &rex.did()])
        .expect_ok("revoke Rex");
    let second = plant(&mut rex, 1_000);
    let sync = synced_with(&ada);
    assert!(
        !sync.contains(&rex.did()),
        "Ada synced with Rex after revoking him: {sync:?}"
    );
    let all: BTreeSet<String> = first.union(&second).cloned().collect();
    owner_still_in_charge(&ada, &id, &all);
}

#[test]
fn junk_statement_files_a_writer_commits_are_never_adopted() {
    let ada = TestNode::started("Ada");
    let wendy = TestNode::started("Wendy");
    wendy.connect(&ada);
    ada.run(&["project", "create", "survey"])
        .expect_ok("create");
    ada.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");
    let id: ProjectId = ada.project_id("survey").parse().expect("project id");
    ada.run(&["share", "survey", &wendy.did(), "--role", "writer"])
        .expect_ok("share with Wendy");
    wendy
        .run(&["project", "clone", &id.to_string()])
        .expect_ok("Wendy clones");
    wendy
        .run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");

    // Wendy, a writer, commits 70 junk statement files with her work.
    let heads = access_of(&ada, &id, owner_key(&ada)).heads();
    let flood = junk(&id, &heads, 0);
    let dir = wendy.project_dir("survey").join(".tandem/access");
    for statement in &flood {
        let sid = tandem_protocol::access::StatementId::of(statement);
        let text = toml::to_string(statement).expect("TOML");
        fs::write(dir.join(format!("{sid}.toml")), text).expect("write junk");
    }
    fs::write(
        wendy.project_dir("survey").join("code/work.py"),
        "print('hi')\n",
    )
    .expect("write");
    wendy.run(&["sweep", "survey"]).expect_ok("sweep");
    let junk_ids = ids_of(&flood);
    let committed = tandem_e2e::git(
        &wendy.project_dir("survey"),
        &["ls-files", ".tandem/access"],
    );
    assert!(
        committed.lines().count() >= FLOOD as usize,
        "the junk files are in Wendy's history: {committed}"
    );

    // Ada takes Wendy's commits (she is a writer), and the files with them.
    ada.run(&["sync", "survey"]).expect_ok("sync");
    assert!(
        ada.project_dir("survey").join("code/work.py").is_file(),
        "Wendy's work was merged"
    );
    owner_still_in_charge(&ada, &id, &junk_ids);
    // Restarting reads the project's files again: still nothing adopted.
    let mut ada = ada;
    ada.stop();
    ada.start();
    owner_still_in_charge(&ada, &id, &junk_ids);
    let members = ada
        .run(&["members", "survey", "--json"])
        .expect_ok("members")
        .json();
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(2),
        "only Ada and Wendy: {members}"
    );
}

/// A peer that speaks the sync protocol under a member's key and answers
/// every access request with a flood of junk: what a hostile reader's
/// node would do. It records every request it receives.
struct HostilePeer {
    requests: std::sync::Arc<std::sync::Mutex<Vec<tandem_protocol::wire::Request>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostilePeer {
    /// Connects to `target` (a `/p2p/` address) as the key in `home`.
    fn connect(home: &Path, target: &str, flood: Vec<SignedStatement>) -> Self {
        use futures::StreamExt;
        use libp2p::request_response::{self, ProtocolSupport};
        use libp2p::swarm::SwarmEvent;
        use tandem_protocol::wire::{PROTOCOL, Request, Response};

        let mut secret = tandem_e2e::blob_probe::secret_of(home);
        let keys = libp2p::identity::Keypair::ed25519_from_bytes(&mut secret).expect("key");
        let target: libp2p::Multiaddr = target.parse().expect("address");
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let seen = requests.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async move {
                let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keys)
                    .with_tokio()
                    .with_tcp(
                        libp2p::tcp::Config::default(),
                        libp2p::noise::Config::new,
                        libp2p::yamux::Config::default,
                    )
                    .expect("tcp")
                    .with_behaviour(|_| {
                        request_response::json::Behaviour::<Request, Response>::new(
                            [(libp2p::StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
                            request_response::Config::default(),
                        )
                    })
                    .expect("behaviour")
                    .with_swarm_config(|c| {
                        c.with_idle_connection_timeout(std::time::Duration::from_secs(600))
                    })
                    .build();
                swarm.dial(target).expect("dial");
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        event = swarm.select_next_some() => match event {
                            SwarmEvent::ConnectionEstablished { .. } => {
                                let _ = ready_tx.send(());
                            }
                            SwarmEvent::Behaviour(request_response::Event::Message {
                                message: request_response::Message::Request { request, channel, .. },
                                ..
                            }) => {
                                let answer = match &request {
                                    Request::Access { .. } => Response::Access {
                                        statements: flood.clone(),
                                    },
                                    Request::Projects => Response::Projects { offers: vec![] },
                                    Request::Announce { .. } => Response::Ack,
                                    _ => Response::Denied,
                                };
                                seen.lock().expect("lock").push(request);
                                let _ = swarm.behaviour_mut().send_response(channel, answer);
                            }
                            _ => {}
                        },
                    }
                }
            });
        });
        ready
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the hostile peer connected");
        Self {
            requests,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<tandem_protocol::wire::Request> {
        self.requests.lock().expect("lock").clone()
    }
}

impl Drop for HostilePeer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_readers_flood_in_an_access_answer_is_dropped_and_a_revoked_one_is_not_asked() {
    let ada = TestNode::started("Ada");
    ada.run(&["project", "create", "survey"])
        .expect_ok("create");
    ada.run(&["sync", "survey", "--auto", "off"])
        .expect_ok("auto off");
    let id: ProjectId = ada.project_id("survey").parse().expect("project id");
    // Mal is a reader; her "node" answers with 70 validly signed junk
    // statements from throw-away keys (the attack of issue 13).
    let mal = TestNode::with_identity("Mal");
    ada.run(&["share", "survey", &mal.did(), "--role", "reader"])
        .expect_ok("share with Mal");
    let heads = access_of(&ada, &id, owner_key(&ada)).heads();
    let flood = junk(&id, &heads, 0);
    let junk_ids = ids_of(&flood);
    let hostile = HostilePeer::connect(mal.home(), &ada.p2p_address(), flood);

    let sync = synced_with(&ada);
    assert!(sync.contains(&mal.did()), "Ada synced with Mal: {sync:?}");
    assert!(
        hostile
            .requests()
            .iter()
            .any(|r| matches!(r, tandem_protocol::wire::Request::Access { .. })),
        "Ada asked Mal for access statements"
    );
    owner_still_in_charge(&ada, &id, &junk_ids);

    // Revoked, Mal is asked nothing more that names the project.
    ada.run(&["revoke", "survey", &mal.did()])
        .expect_ok("revoke Mal");
    let before = hostile.requests().len();
    let sync = synced_with(&ada);
    assert!(!sync.contains(&mal.did()), "Ada synced with Mal: {sync:?}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after: Vec<_> = hostile.requests().into_iter().skip(before).collect();
    assert!(
        after.iter().all(|r| matches!(
            r,
            tandem_protocol::wire::Request::Projects | tandem_protocol::wire::Request::BlobEndpoint
        )),
        "a revoked member was sent {after:?}"
    );
    owner_still_in_charge(&ada, &id, &junk_ids);
}
