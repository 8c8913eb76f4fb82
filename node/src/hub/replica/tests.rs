//! The replica against real services on the in-memory network: what it
//! clones, what it refuses to record, and that a stale hub rolls nobody
//! back.

use std::time::Duration;

use tandem_protocol::access::Role;
use tandem_protocol::wire::{Request, Response};

use super::*;
use crate::hub::HubOptions;
use crate::testkit::world::{Id, World};

fn hub_options(quota_bytes: u64) -> HubOptions {
    HubOptions {
        external: None,
        relay_listen: "127.0.0.1:0".parse().expect("address"),
        allow: vec![],
        open: false,
        quota_bytes,
    }
}

/// Ada founds `name` with one commit.
fn found(world: &World, ada: Id, name: &str) {
    world[ada]
        .service
        .create_project(name, "A field survey", None)
        .expect("create");
    world[ada].commit_file(name, "code/analysis.py", "print(1)\n");
}

/// A world with Ada and a hub connected to her.
fn ada_and_hub() -> (World, Id, Id) {
    let mut world = World::new();
    let ada = world.add("Ada");
    let hub = world.add("Hub");
    world[hub].service.set_hub(hub_options(0));
    world.connect(ada, hub);
    (world, ada, hub)
}

fn names(world: &World, node: Id) -> Vec<String> {
    world[node]
        .service
        .project_names()
        .expect("names")
        .into_iter()
        .map(|n| n.to_string())
        .collect()
}

#[tokio::test]
async fn the_hub_keeps_exactly_the_projects_granted_to_it_as_reader() {
    let (mut world, ada, hub) = ada_and_hub();
    let hub_did = world[hub].did();
    for name in ["survey", "notes", "open", "private"] {
        found(&world, ada, name);
    }
    let ada_node = &world[ada].service;
    ada_node
        .share("survey", &hub_did, "reader", None)
        .expect("share");
    ada_node
        .share("notes", &hub_did, "writer", None)
        .expect("share");
    ada_node.set_visibility("open", true).expect("public");
    world.settle().await;

    let adopted = adopt(&world[hub].service).await;
    assert_eq!(adopted.cloned, vec!["survey".to_owned()]);
    let declined: Vec<ProjectId> = adopted.declined.iter().map(|(id, _)| *id).collect();
    assert!(
        declined.contains(&world[ada].project_id("notes")),
        "{adopted:?}"
    );
    assert!(
        declined.contains(&world[ada].project_id("open")),
        "{adopted:?}"
    );
    assert!(!declined.contains(&world[ada].project_id("private")));
    assert_eq!(names(&world, hub), vec!["survey".to_owned()]);
    let role = world[hub].with_project("survey", |p| world[hub].service.own_role(p));
    assert_eq!(role, Some(Role::Reader));
    assert_eq!(world[hub].head("survey"), world[ada].head("survey"));

    // A second look finds nothing new to clone.
    let again = adopt(&world[hub].service).await;
    assert!(again.cloned.is_empty(), "{again:?}");
    assert_eq!(names(&world, hub), vec!["survey".to_owned()]);
}

#[tokio::test]
async fn a_plain_node_is_never_a_replica() {
    let mut world = World::new();
    let ada = world.add("Ada");
    let rex = world.add("Rex");
    world.connect(ada, rex);
    found(&world, ada, "survey");
    world[ada]
        .service
        .share("survey", &world[rex].did(), "reader", None)
        .expect("share");
    world.settle().await;
    // Not a hub: `keep` does nothing, and nothing refuses Rex's sweeps.
    let id = world[ada].project_id("survey");
    world[rex]
        .service
        .clone_project(id, None, true)
        .await
        .expect("clone");
    let kept = keep(&world[rex].service, "survey").await.expect("keep");
    assert_eq!(kept, Kept::default());
    let refusal = world[rex].with_project("survey", |p| world[rex].service.replica_refusal(p));
    assert_eq!(refusal, None);
}

#[tokio::test]
async fn a_hub_records_nothing_in_a_replica_and_grants_nothing() {
    let (mut world, ada, hub) = ada_and_hub();
    found(&world, ada, "survey");
    world[ada]
        .service
        .share("survey", &world[hub].did(), "reader", None)
        .expect("share");
    world.settle().await;
    assert_eq!(adopt(&world[hub].service).await.cloned, vec!["survey"]);
    let before = world[hub].head("survey");

    // A file appears in the hub's copy (its operator, a stray process):
    // the sweep records nothing, and says why.
    let dir = world[hub].with_project("survey", |p| p.dir.clone());
    std::fs::write(dir.join("code/forged.py"), "print('hub was here')\n").expect("write");
    let swept = world[hub].service.sweep("survey").expect("sweep");
    assert_eq!(swept.commit, None);
    assert!(swept.entries.is_empty());
    assert!(
        swept.refused.iter().any(|r| r.contains("reader's copy")),
        "{swept:?}"
    );
    assert_eq!(world[hub].head("survey"), before);

    // Nor can it grant itself (or anyone) a role.
    let me = world[hub].did();
    let err = world[hub]
        .service
        .share("survey", &me, "writer", None)
        .expect_err("the hub may not grant itself");
    assert!(err.to_string().contains("yourself"), "{err}");
    let cy = world.add("Cy");
    let err = world[hub]
        .service
        .share("survey", &world[cy].did(), "writer", None)
        .expect_err("a reader may not grant");
    assert!(
        err.to_string().contains("only admins and the owner"),
        "{err}"
    );

    // Forged past the node's own checks: the hub signs a grant of writer
    // to itself and stores it as if it counted. It counts nowhere.
    let forged = world[hub].with_project("survey", |p| {
        let hub_node = &world[hub].service;
        p.access
            .issue(
                hub_node.key().public(),
                tandem_protocol::access::Action::Grant { role: Role::Writer },
                hub_node.key(),
                crate::service::now_ms(),
                None,
            )
            .expect("signed")
    });
    let forged_ids: Vec<_> = forged.iter().map(|v| v.id).collect();
    {
        let handle = world[hub].service.project("survey").expect("project");
        let mut project = crate::service::lock(&handle);
        for verified in forged {
            project.access_store.save(&verified).expect("stored");
            project.access.insert(verified);
        }
        let me = world[hub].key();
        assert_eq!(
            project.access.role_of(&me, crate::service::now_ms()),
            Some(Role::Reader)
        );
    }
    world[ada]
        .service
        .share("survey", &world[cy].did(), "writer", None)
        .expect("share with Cy");
    world.connect(ada, cy);
    world[cy]
        .service
        .clone_project(world[ada].project_id("survey"), None, true)
        .await
        .expect("Cy clones from Ada");
    world.disconnect(ada, cy);
    world.connect(cy, hub);
    world[cy]
        .service
        .sync_project("survey")
        .await
        .expect("sync with the hub");
    world[cy].with_project("survey", |p| {
        let hub_key = world[hub].key();
        assert_eq!(
            p.access.role_of(&hub_key, crate::service::now_ms()),
            Some(Role::Reader),
            "Cy's view gives the hub no more than reader"
        );
        for id in &forged_ids {
            assert!(!p.access.contains(id), "Cy kept the forged statement");
        }
    });

    // Ada syncs with the hub and takes none of it.
    let ada_head = world[ada].head("survey");
    world[ada]
        .service
        .sync_project("survey")
        .await
        .expect("sync");
    assert_eq!(world[ada].head("survey"), ada_head);
    assert!(!world[ada].has_file("survey", "code/forged.py"));
}

#[tokio::test]
async fn a_stale_hub_cannot_roll_back_a_member() {
    let (mut world, ada, hub) = ada_and_hub();
    let cy = world.add("Cy");
    world.connect(ada, cy);
    found(&world, ada, "survey");
    let ada_node = world[ada].service.clone();
    ada_node
        .share("survey", &world[cy].did(), "writer", None)
        .expect("share");
    ada_node
        .share("survey", &world[hub].did(), "reader", None)
        .expect("share");
    let id = world[ada].project_id("survey");
    world[cy]
        .service
        .clone_project(id, None, true)
        .await
        .expect("clone");
    assert_eq!(adopt(&world[hub].service).await.cloned, vec!["survey"]);
    world.settle().await;
    let stale = world[hub].head("survey").expect("a head");

    // The hub goes away; Ada moves on twice and Cy follows her.
    world.disconnect(ada, hub);
    world[ada].commit_file("survey", "code/step2.py", "print(2)\n");
    world[ada].commit_file("survey", "code/step3.py", "print(3)\n");
    world[cy]
        .service
        .sync_project("survey")
        .await
        .expect("sync");
    let newest = world[ada].head("survey").expect("a head");
    assert_eq!(world[cy].head("survey").as_deref(), Some(newest.as_str()));
    assert_ne!(stale, newest);

    // Ada leaves; the stale hub is all Cy reaches. Its sync, by hand and
    // automatic, moves nothing back.
    world.disconnect(ada, cy);
    world.connect(cy, hub);
    world[cy]
        .service
        .sync_project("survey")
        .await
        .expect("sync");
    world.advance(Duration::from_secs(2)).await;
    assert_eq!(world[cy].head("survey").as_deref(), Some(newest.as_str()));
    assert!(world[cy].has_file("survey", "code/step3.py"));

    // Even offered directly, an ancestor of Cy's head merges as nothing.
    let outcome = world[cy].with_project("survey", |p| {
        crate::sync::git::merge::merge(
            &p.repo,
            &git2::Signature::now("Cy", "cy@example.org").expect("signature"),
            &stale,
            &world[hub].key().to_peer_id(),
            "Hub",
            &p.manifest,
        )
        .expect("merge")
    });
    assert_eq!(outcome, tandem_protocol::api::MergeOutcome::UpToDate);
    assert_eq!(world[cy].head("survey").as_deref(), Some(newest.as_str()));

    // And the hub catches up from Cy, a writer, as soon as it can.
    world[hub]
        .service
        .sync_project("survey")
        .await
        .expect("sync");
    assert_eq!(world[hub].head("survey").as_deref(), Some(newest.as_str()));
}

#[tokio::test]
async fn a_stranger_connected_to_the_hub_learns_no_project() {
    let (mut world, ada, hub) = ada_and_hub();
    let eve = world.add("Eve");
    world.connect(eve, hub);
    found(&world, ada, "survey");
    world[ada]
        .service
        .share("survey", &world[hub].did(), "reader", None)
        .expect("share");
    world.settle().await;
    assert_eq!(adopt(&world[hub].service).await.cloned, vec!["survey"]);
    let id = world[ada].project_id("survey");
    let hub_key = world[hub].key();
    let asked = world[eve]
        .net
        .request(&hub_key, Request::Projects)
        .await
        .expect("answer");
    assert_eq!(asked, Response::Projects { offers: vec![] });
    for request in [
        Request::Refs { project: id },
        Request::Access {
            project: id,
            have: vec![],
        },
        Request::Feed {
            project: id,
            have: vec![],
        },
    ] {
        let answer = world[eve]
            .net
            .request(&hub_key, request.clone())
            .await
            .expect("answer");
        assert_eq!(answer, Response::Denied, "{request:?}");
    }
    // Nor does Eve's own look for grants find anything through the hub.
    world[eve].service.set_hub(hub_options(0));
    assert_eq!(adopt(&world[eve].service).await, Adopted::default());
}

#[test]
fn a_copy_gets_a_free_valid_name() {
    let dir = tempfile::tempdir().expect("home");
    let service = crate::testkit::open_service(dir.path(), "Hub");
    let id = tandem_protocol::project::Genesis::create(
        &"survey".parse().expect("name"),
        service.key(),
        0,
        [1; 16],
    )
    .project_id();
    assert_eq!(free_name(&service, "survey", &id), "survey");
    std::fs::create_dir_all(service.home().projects_dir().join("survey")).expect("mkdir");
    let second = free_name(&service, "survey", &id);
    assert!(second.starts_with("survey-tp"), "{second}");
    assert!(second.parse::<ProjectName>().is_ok());
    // A name no folder may have is replaced, never used.
    let odd = free_name(&service, "../../etc", &id);
    assert!(odd.starts_with("project-tp"), "{odd}");
    assert!(odd.parse::<ProjectName>().is_ok());
}
