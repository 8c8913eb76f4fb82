//! Stories of a small team, told against real services on the in-memory
//! network with automatic sync on the virtual clock.

use std::time::{Duration, Instant};

use tandem_protocol::wire::{Request, Response};

use super::network::Exchange;
use super::world::{Id, World};
use crate::p2p::host::Verdict;
use crate::sync::auto::schedule::{ANNOUNCE_AFTER, PERIODIC, SYNC_AFTER};

const PROJECT: &str = "survey";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Ada founds a project with one commit, shares it with `member` as
/// `role`, and `member` clones it.
async fn shared(world: &mut World, ada: Id, member: Id, role: &str) {
    if world[ada].service.project(PROJECT).is_err() {
        world[ada]
            .service
            .create_project(PROJECT, "A field survey", None)
            .expect("create");
        world[ada].commit_file(PROJECT, "code/analysis.py", "print(1)\n");
    }
    world[ada]
        .service
        .share(PROJECT, &world[member].did(), role, None)
        .expect("share");
    let id = world[ada].project_id(PROJECT);
    world[member]
        .service
        .clone_project(id, None, true)
        .await
        .expect("clone");
    world.settle().await;
}

/// Requests `from` made of `to` after the first `skip` exchanges.
fn asked(world: &World, from: Id, to: Id, skip: usize) -> Vec<Exchange> {
    let (from, to) = (world[from].key(), world[to].key());
    world
        .network
        .exchanges()
        .into_iter()
        .skip(skip)
        .filter(|e| e.from == from && e.to == to)
        .collect()
}

#[tokio::test]
async fn a_readers_commits_are_never_merged() {
    let started = Instant::now();
    let mut world = World::new();
    let ada = world.add("Ada");
    let rex = world.add("Rex");
    world.connect(ada, rex);
    shared(&mut world, ada, rex, "reader").await;
    assert_eq!(world[rex].head(PROJECT), world[ada].head(PROJECT));
    let before = world[ada].head(PROJECT);
    let seen = world.network.exchanges().len();

    // Rex commits on his own node and announces it; Ada hears a member,
    // syncs with him, and takes nothing of his history.
    world[rex].commit_file(PROJECT, "code/rex.py", "print('mine now')\n");
    world.advance(ANNOUNCE_AFTER + SYNC_AFTER + ms(200)).await;
    assert!(
        asked(&world, ada, rex, seen)
            .iter()
            .any(|e| matches!(e.request, Request::Refs { .. })),
        "Ada synced with Rex after his announcement"
    );
    assert_eq!(
        world[ada].head(PROJECT),
        before,
        "Ada's history is unchanged"
    );
    assert!(!world[ada].has_file(PROJECT, "code/rex.py"));
    assert_ne!(world[rex].head(PROJECT), before, "Rex did commit");

    // Nor does Ada take it when she syncs by hand.
    let summary = world[ada]
        .service
        .sync_project(PROJECT)
        .await
        .expect("sync");
    assert_eq!(summary.peers.len(), 1, "{}", summary.message);
    assert_eq!(world[ada].head(PROJECT), before);
    assert!(!world[ada].has_file(PROJECT, "code/rex.py"));
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn a_revoked_peer_is_cut_off_at_its_next_request() {
    let mut world = World::new();
    let ada = world.add("Ada");
    let bob = world.add("Bob");
    world.connect(ada, bob);
    shared(&mut world, ada, bob, "writer").await;
    let id = world[ada].project_id(PROJECT);
    let ada_key = world[ada].key();
    let refs = || Request::Refs { project: id };
    let answer = world[bob].net.request(&ada_key, refs()).await.expect("ask");
    assert!(matches!(answer, Response::Refs { .. }), "{answer:?}");

    world[ada]
        .service
        .revoke(PROJECT, &world[bob].did())
        .expect("revoke");
    let seen = world.network.exchanges().len();

    // Bob does not know yet; his very next request gets nothing.
    let answer = world[bob].net.request(&ada_key, refs()).await.expect("ask");
    assert_eq!(answer, Response::Denied);
    let summary = world[bob]
        .service
        .sync_project(PROJECT)
        .await
        .expect("sync");
    assert!(summary.peers.iter().all(|p| p.denied), "{summary:?}");

    // Ada's new work no longer reaches him, however long he waits.
    let bob_head = world[bob].head(PROJECT);
    world[ada].commit_file(PROJECT, "code/after.py", "print(2)\n");
    world.advance(PERIODIC + ms(500)).await;
    assert_eq!(world[bob].head(PROJECT), bob_head);
    assert!(!world[bob].has_file(PROJECT, "code/after.py"));
    for exchange in asked(&world, bob, ada, seen) {
        assert!(
            matches!(exchange.response, Response::Denied | Response::Ack)
                || matches!(exchange.request, Request::Projects | Request::BlobEndpoint),
            "a revoked peer was answered {:?} to {:?}",
            exchange.response,
            exchange.request
        );
        if let Response::Projects { offers } = &exchange.response {
            assert!(
                offers.is_empty(),
                "the project is still offered: {offers:?}"
            );
        }
    }
    assert!(
        asked(&world, ada, bob, seen)
            .iter()
            .all(|e| !matches!(e.request, Request::Announce { .. })),
        "nor is he told of it"
    );
}

#[tokio::test]
async fn a_change_reaches_a_member_automatically_half_a_second_later() {
    let started = Instant::now();
    let mut world = World::new();
    let ada = world.add("Ada");
    let bob = world.add("Bob");
    world.connect(ada, bob);
    shared(&mut world, ada, bob, "writer").await;
    // Let a periodic round pass, so both nodes are on the project's topic.
    world.advance(PERIODIC).await;
    let heard = world.network.heard().len();

    world[ada].commit_file(PROJECT, "code/new.py", "print('new')\n");
    world.advance(ANNOUNCE_AFTER - ms(1)).await;
    assert!(
        !world[bob].has_file(PROJECT, "code/new.py"),
        "changes come in bursts: wait"
    );
    world.advance(ms(1)).await;
    let news: Vec<_> = world.network.heard().into_iter().skip(heard).collect();
    assert!(
        news.iter()
            .any(|h| h.to == world[bob].key() && h.verdict == Verdict::Accept),
        "Bob heard Ada's announcement over gossip and accepted it: {news:?}"
    );
    assert!(
        !world[bob].has_file(PROJECT, "code/new.py"),
        "he syncs a moment later"
    );
    world.advance(SYNC_AFTER).await;
    assert!(world[bob].has_file(PROJECT, "code/new.py"));
    assert_eq!(world[bob].head(PROJECT), world[ada].head(PROJECT));
    assert!(world.elapsed() > PERIODIC, "a minute passed, virtually");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn announcements_travel_the_members_mesh_and_reach_no_stranger() {
    let mut world = World::new();
    let ada = world.add("Ada");
    let bob = world.add("Bob");
    let cy = world.add("Cy");
    let eve = world.add("Eve");
    // Cy reaches Ada only through Bob; Eve, who has no role, is next to
    // both of them.
    world.connect(ada, bob);
    world.connect(ada, cy);
    shared(&mut world, ada, bob, "writer").await;
    shared(&mut world, ada, cy, "writer").await;
    world.disconnect(ada, cy);
    world.connect(bob, cy);
    world.connect(eve, ada);
    world.connect(eve, bob);
    world.advance(PERIODIC).await;
    let (heard, seen) = (world.network.heard().len(), world.network.exchanges().len());

    world[ada].commit_file(PROJECT, "code/relayed.py", "print(3)\n");
    world.advance(ANNOUNCE_AFTER + SYNC_AFTER * 4).await;
    assert!(world[cy].has_file(PROJECT, "code/relayed.py"));
    let news: Vec<_> = world.network.heard().into_iter().skip(heard).collect();
    assert!(
        news.iter().any(|h| h.to == world[cy].key()
            && h.via == world[bob].key()
            && h.source == world[ada].key()
            && h.verdict == Verdict::Accept),
        "Bob relayed Ada's announcement to Cy: {news:?}"
    );
    assert!(
        news.iter().all(|h| h.to != world[eve].key()),
        "Eve heard nothing: {news:?}"
    );
    // One topic for the members, which Eve is not on.
    let topic = world.network.topics(&world[ada].key());
    assert_eq!(topic.len(), 1);
    assert!(news.iter().all(|h| topic.contains(&h.topic)));
    for member in [bob, cy] {
        assert_eq!(world.network.topics(&world[member].key()), topic);
    }
    assert!(world.network.topics(&world[eve].key()).is_empty());
    let id = world[ada].project_id(PROJECT).to_string();
    for exchange in world.network.exchanges().into_iter().skip(seen) {
        if exchange.to == world[eve].key() {
            let request = serde_json::to_string(&exchange.request).expect("json");
            assert!(!request.contains(&id), "Eve was sent {request}");
        }
    }
}

#[tokio::test]
async fn a_stranger_learns_nothing_and_moves_nothing() {
    let mut world = World::new();
    let ada = world.add("Ada");
    let bob = world.add("Bob");
    let eve = world.add("Eve");
    world.connect(ada, bob);
    world.connect(ada, eve);
    shared(&mut world, ada, bob, "writer").await;
    let id = world[ada].project_id(PROJECT);
    let ada_key = world[ada].key();
    let eve_net = world[eve].net.clone();

    let offers = eve_net
        .request(&ada_key, Request::Projects)
        .await
        .expect("ask");
    assert_eq!(offers, Response::Projects { offers: vec![] });
    // The project she may not read and one Ada does not have look alike.
    world[eve]
        .service
        .create_project("elsewhere", "", None)
        .expect("create");
    let unknown = world[eve].project_id("elsewhere");
    for project in [id, unknown] {
        for request in [
            Request::Refs { project },
            Request::Access {
                project,
                have: vec![],
            },
            Request::Pack {
                project,
                want: vec![],
                have: vec![],
            },
            Request::Feed {
                project,
                have: vec![],
            },
        ] {
            let answer = eve_net.request(&ada_key, request).await.expect("ask");
            assert_eq!(answer, Response::Denied);
        }
    }

    // Her announcement is acknowledged like any other and syncs nothing.
    let seen = world.network.exchanges().len();
    let answer = eve_net
        .request(&ada_key, Request::Announce { project: id })
        .await
        .expect("ask");
    assert_eq!(answer, Response::Ack);
    world.advance(SYNC_AFTER * 3).await;
    assert!(
        asked(&world, ada, eve, seen).is_empty(),
        "Ada asked Eve nothing: {:?}",
        asked(&world, ada, eve, seen)
    );
}

/// A hub keeps a reader's copy; every writer goes offline; a new writer
/// clones from the hub alone and gets the latest work, exactly. The hub
/// can withhold but not forge: its own commit is never taken, and a stale
/// hub cannot take a member back to an older head.
#[tokio::test]
async fn a_hubs_copy_serves_a_clone_when_every_writer_is_offline_and_never_rolls_back() {
    let mut world = World::new();
    let ada = world.add("Ada");
    let hub = world.add("Hub");
    let cy = world.add("Cy");
    world.connect(ada, hub);
    shared(&mut world, ada, hub, "reader").await;
    world[ada]
        .service
        .share(PROJECT, &world[cy].did(), "writer", None)
        .expect("share with Cy");
    world[ada].commit_file(PROJECT, "code/before_the_field.py", "print(2)\n");
    world.advance(ANNOUNCE_AFTER + SYNC_AFTER + ms(500)).await;
    let pushed = world[ada].head(PROJECT);
    assert_eq!(
        world[hub].head(PROJECT),
        pushed,
        "the hub keeps up with Ada"
    );

    // Ada leaves for the field; Cy, who never met her node, clones from
    // the hub the next day.
    world.disconnect(ada, hub);
    world.connect(cy, hub);
    let id = world[ada].project_id(PROJECT);
    world[cy]
        .service
        .clone_project(id, None, true)
        .await
        .expect("Cy clones from the hub alone");
    world.settle().await;
    assert_eq!(world[cy].head(PROJECT), pushed, "exactly Ada's last head");
    assert!(world[cy].has_file(PROJECT, "code/before_the_field.py"));

    // The hub's own commit is never taken by a member.
    world[hub].commit_file(PROJECT, "code/forged.py", "print('hub')\n");
    world[cy]
        .service
        .sync_project(PROJECT)
        .await
        .expect("sync with the hub");
    assert_eq!(world[cy].head(PROJECT), pushed);
    assert!(!world[cy].has_file(PROJECT, "code/forged.py"));

    // Ada is back, meets Cy directly and commits more; the hub, cut off
    // from both meanwhile, holds only the older head and cannot take Cy
    // back to it.
    world.disconnect(cy, hub);
    world.connect(ada, cy);
    world[ada].commit_file(PROJECT, "code/after_the_field.py", "print(3)\n");
    world[cy]
        .service
        .sync_project(PROJECT)
        .await
        .expect("sync with Ada");
    let newer = world[cy].head(PROJECT);
    assert!(world[cy].has_file(PROJECT, "code/after_the_field.py"));
    world.disconnect(ada, cy);
    world.connect(cy, hub);
    let summary = world[cy]
        .service
        .sync_project(PROJECT)
        .await
        .expect("sync with the stale hub");
    assert_eq!(world[cy].head(PROJECT), newer, "{}", summary.message);
    assert!(world[cy].has_file(PROJECT, "code/after_the_field.py"));
}
