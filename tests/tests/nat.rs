//! Nodes across NAT, in network namespaces (see `tandem_e2e::netns`): the
//! topology first behaves as its NATs should, then the matrix — a hub on
//! the public segment and, for every pair of site kinds (public, cone,
//! symmetric, double NAT), two nodes that find each other by key through
//! the hub, share, clone, edit, sync both ways and move a large file each
//! way — and a LAN that keeps syncing when its hub disappears.
//!
//! `NAT_MIB` changes the large files' size (default 50), `NAT_CELLS`
//! picks cells by index (`0,4,9`), `NAT_LOG` the nodes' log level,
//! `NAT_KEEP_LOGS` keeps the logs.

use std::net::SocketAddrV4;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::time::{Duration, Instant};

use tandem_e2e::netns::matrix::{self, Expect, Logs, MIB};
use tandem_e2e::netns::{SiteKind, Topology, build_or_skip, probe, skip_outside_ci};
use tandem_e2e::{TestNode, wait_for};

/// A probe's failure: outside CI a missing python3 skips, anything else
/// fails.
fn probed<T>(result: Result<T, tandem_e2e::netns::NetnsError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(tandem_e2e::netns::NetnsError::Unavailable { what, reason }) => {
            skip_outside_ci(&format!("cannot {what} ({reason})"));
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_namespaces_behave_like_the_internet() {
    let mut builder = Topology::builder();
    for kind in SiteKind::ALL {
        builder = builder.site(kind, 1);
    }
    let Some(topology) = build_or_skip(builder) else {
        return;
    };
    let hub = &topology.hub;
    for (i, site) in topology.sites.iter().enumerate() {
        let host = &site.hosts[0];
        let offset = i as u16;
        // Out to the hub works, seen from the site's public address.
        let Some(source) = probed(probe::tcp_source(host, hub, 5000 + offset)) else {
            return;
        };
        let source = source.unwrap_or_else(|| panic!("{}: cannot reach the hub", site.kind));
        assert_eq!(
            *source.ip(),
            site.public_ip,
            "{}: the hub sees the site's public address",
            site.kind
        );

        // In from the hub: only to a public host; a NAT drops it, whether
        // aimed at the router's public address or the private one.
        let to_public =
            probed(probe::can_open_to(hub, host, site.public_ip, 6000 + offset)).unwrap_or(false);
        let to_private =
            probed(probe::can_open_to(hub, host, host.ip, 6100 + offset)).unwrap_or(false);
        if site.kind == SiteKind::Public {
            assert!(to_public, "the hub can open a connection to a public host");
        } else {
            assert!(
                !to_public && !to_private,
                "{}: the hub opened a connection to a host behind NAT ({to_public}, {to_private})",
                site.kind
            );
        }
        if matches!(site.kind, SiteKind::Cone | SiteKind::Symmetric) {
            // Even a neighbour on the public segment that routes the LAN
            // through the router (as an ISP could) is dropped: conntrack
            // lets in only replies. Without the drop rule this connects.
            let route = |op: &str| {
                Command::new("ip")
                    .args(["-n", &hub.netns, "route", op])
                    .arg(format!("{}/32", host.ip))
                    .args(["via", &site.public_ip.to_string()])
                    .status()
                    .is_ok_and(|s| s.success())
            };
            assert!(route("add"), "route the LAN through the router");
            let forwarded =
                probed(probe::can_open_to(hub, host, host.ip, 6200 + offset)).unwrap_or(true);
            assert!(route("del"), "remove the route again");
            assert!(
                !forwarded,
                "{}: the router forwarded an unsolicited connection",
                site.kind
            );
        }

        // One source port to two public hosts: one mapping for both behind
        // a cone (port kept), one per destination behind symmetric NAT.
        let seen = probed(probe::udp_mappings(
            host,
            7000 + offset,
            &[hub, &topology.internet],
            8000 + offset,
        ))
        .expect("probes ran above");
        let [Some(first), Some(second)] = seen[..] else {
            panic!("{}: a UDP probe did not arrive: {seen:?}", site.kind);
        };
        assert_eq!(*first.ip(), site.public_ip, "{}: {seen:?}", site.kind);
        assert_eq!(*second.ip(), site.public_ip, "{}: {seen:?}", site.kind);
        match site.kind {
            SiteKind::Symmetric => assert_ne!(
                first.port(),
                second.port(),
                "symmetric NAT gives each destination its own port: {seen:?}"
            ),
            _ => assert_eq!(
                (first.port(), second.port()),
                (7000 + offset, 7000 + offset),
                "{}: one mapping, port kept: {seen:?}",
                site.kind
            ),
        }
        if site.kind != SiteKind::Symmetric {
            // A peer's packet that arrives before the host's own (as in a
            // hole punch) must not move the host's mapping to another port.
            let (host_port, peer_port) = (7100 + offset, 8100 + offset);
            probed(probe::send_udp(
                hub,
                peer_port,
                &[SocketAddrV4::new(site.public_ip, host_port)],
            ))
            .expect("probes ran above");
            let seen = probed(probe::udp_mappings(host, host_port, &[hub], peer_port))
                .expect("probes ran above");
            assert_eq!(
                seen,
                vec![Some(SocketAddrV4::new(site.public_ip, host_port))],
                "{}: an early packet from the peer moved the host's mapping",
                site.kind
            );
        }
        eprintln!(
            "{:<10} public {} tcp source {source} udp mappings {seen:?}",
            site.kind.label(),
            site.public_ip
        );
    }
}

/// Which cells to run: all, or those `NAT_CELLS` lists by index.
fn chosen_cells() -> Vec<(usize, (SiteKind, SiteKind))> {
    let all = matrix::cells().into_iter().enumerate();
    match std::env::var("NAT_CELLS") {
        Ok(list) => {
            let wanted: Vec<usize> = list
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect();
            all.filter(|(i, _)| wanted.contains(i)).collect()
        }
        Err(_) => all.collect(),
    }
}

fn node_built_with_hub_mode() -> bool {
    let help = TestNode::new().run(&["up", "--help"]);
    help.stdout.contains("--hub-address")
}

#[test]
fn every_pair_of_nats_finds_shares_clones_syncs_and_moves_large_files() {
    assert!(
        node_built_with_hub_mode(),
        "`tandem up` has no --hub-address: the node lacks hub mode"
    );
    let Some(topology) = build_or_skip(matrix::matrix_topology()) else {
        return;
    };
    let size = std::env::var("NAT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
        * MIB;
    let mut logs = Logs::new("matrix");
    let started = Instant::now();
    let hub = matrix::start_hub(&topology, &logs);
    eprintln!("hub up at {} in {:?}", hub.address, started.elapsed());

    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for (index, cell) in chosen_cells() {
        let (a, b) = cell;
        let cell_started = Instant::now();
        eprintln!("cell {index}: {a} - {b} ...");
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            matrix::run_cell(&topology, &hub, index, cell, size, &logs)
        }))
        .unwrap_or_else(|panic| {
            Err(format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            ))
        });
        match outcome {
            Ok(report) => {
                let ex = &report.exercise;
                let end = &ex.connection_end;
                let expect = matrix::expected(a, b);
                let ended_direct = end
                    .iter()
                    .all(|c| c.as_deref().is_some_and(matrix::is_direct));
                let ended_relayed = end.iter().all(|c| c.as_deref() == Some("relayed"));
                let verdict = match expect {
                    Expect::Direct if !ended_direct => Some("should have ended direct"),
                    Expect::Relayed if !ended_relayed => Some("should have ended relayed"),
                    _ => None,
                };
                eprintln!(
                    "cell {index}: {a} - {b}: ready {}/{} ms (relay slot {}/{} ms), found in {} ms ({} tries), \
                     first sync {} ms, connection first {:?} end {:?} (expected {expect:?}), \
                     {} MiB A->B {:.1} s ({:.0} MB/s, fetch moved {} B), B->A {:.1} s ({:.0} MB/s, fetch moved {} B); cell {:.1} s{}",
                    matrix::ms(report.ready[0].hub),
                    matrix::ms(report.ready[1].hub),
                    matrix::ms(report.ready[0].reserved),
                    matrix::ms(report.ready[1].reserved),
                    ex.found.as_millis(),
                    ex.peer_add_tries,
                    ex.first_sync.as_millis(),
                    ex.connection_first,
                    end,
                    size / MIB,
                    ex.a_to_b.elapsed.as_secs_f64(),
                    ex.a_to_b.mb_per_s(),
                    ex.a_to_b.received,
                    ex.b_to_a.elapsed.as_secs_f64(),
                    ex.b_to_a.mb_per_s(),
                    ex.b_to_a.received,
                    cell_started.elapsed().as_secs_f64(),
                    verdict
                        .map(|v| format!(" -- FAIL: {v}"))
                        .unwrap_or_default()
                );
                rows.push(format!(
                    "| {a} | {b} | {} | {} | {:?} | {} |",
                    ex.first_sync.as_millis(),
                    end.iter()
                        .map(|c| c.clone().unwrap_or_else(|| "not connected".into()))
                        .collect::<Vec<_>>()
                        .join(" / "),
                    expect,
                    verdict.unwrap_or("ok")
                ));
                if let Some(v) = verdict {
                    failures.push(format!("cell {index} {a} - {b}: {v}: {end:?}"));
                }
            }
            Err(e) => {
                eprintln!(
                    "cell {index}: {a} - {b}: FAILED after {:.1} s: {e}",
                    cell_started.elapsed().as_secs_f64()
                );
                rows.push(format!("| {a} | {b} | - | - | - | failed |"));
                failures.push(format!(
                    "cell {index} {a} - {b}: {}",
                    e.lines().next().unwrap_or_default()
                ));
            }
        }
    }
    eprintln!(
        "\n| A | B | peer add to first sync (ms) | connection (A's view / B's view) | expected | result |\n|---|---|---|---|---|---|"
    );
    for row in &rows {
        eprintln!("{row}");
    }
    eprintln!("matrix: {:.1} s", started.elapsed().as_secs_f64());
    if !failures.is_empty() {
        logs.keep();
    }
    assert!(
        failures.is_empty(),
        "failed cells:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_node_whose_hub_disappears_keeps_syncing_on_the_lan() {
    assert!(
        node_built_with_hub_mode(),
        "`tandem up` has no --hub-address: the node lacks hub mode"
    );
    let Some(topology) = build_or_skip(Topology::builder().site(SiteKind::Cone, 2)) else {
        return;
    };
    let mut logs = Logs::new("lan");
    let mut hub = matrix::start_hub(&topology, &logs);
    let hosts = &topology.sites[0].hosts;
    let ada = matrix::start_member("ada", &hosts[0], &hub, true, &logs);
    let mut bob = matrix::start_member("bob", &hosts[1], &hub, true, &logs);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let within = Duration::from_secs(20);
        let ready = [
            matrix::wait_ready(&ada, &hub, true, within),
            matrix::wait_ready(&bob, &hub, true, within),
        ];
        eprintln!("ready: {ready:?}");
        assert!(
            ready.iter().all(|r| r.hub.is_some()),
            "both nodes use the hub: {ready:?}"
        );
        let (ada_did, bob_did) = (ada.did(), bob.did());
        // The two find each other on the LAN by themselves.
        let lan = wait_for(within, || matrix::connection(&ada, &bob_did))
            .expect("Ada and Bob connect on their LAN by mDNS");
        eprintln!("on the LAN: {lan}");

        ada.run(&["project", "create", "field"]).expect_ok("create");
        ada.run(&["share", "field", &bob_did, "--role", "writer"])
            .expect_ok("share");
        let id = ada.project_id("field");
        wait_for(within, || {
            bob.run(&["project", "clone", &id]).ok.then_some(())
        })
        .expect("Bob clones from Ada");

        // The hub goes away.
        hub.node.kill();
        wait_for(within, || {
            matrix::connection(&ada, &hub.did).is_none().then_some(())
        })
        .expect("Ada notices the hub is gone");

        // Ada's edit reaches Bob by itself, and Bob's reaches Ada.
        let edited = Instant::now();
        std::fs::write(
            ada.project_dir("field").join("input/site-a.csv"),
            "depth,ph\n1,6.5\n",
        )
        .expect("write");
        wait_for(Duration::from_secs(30), || {
            bob.project_dir("field")
                .join("input/site-a.csv")
                .is_file()
                .then_some(())
        })
        .expect("Ada's edit reached Bob with the hub gone");
        eprintln!("edit reached Bob in {} ms", edited.elapsed().as_millis());
        std::fs::write(bob.project_dir("field").join("code/bob.py"), "b = 1\n").expect("write");
        wait_for(Duration::from_secs(30), || {
            ada.project_dir("field")
                .join("code/bob.py")
                .is_file()
                .then_some(())
        })
        .expect("Bob's edit reached Ada with the hub gone");

        // Nothing waits on the hub: an explicit sync answers at once...
        let sync_started = Instant::now();
        matrix::run_ok(&ada, &["sync", "field"], Duration::from_secs(30))
            .expect("sync with the hub gone");
        let sync_took = sync_started.elapsed();
        assert!(
            sync_took < Duration::from_secs(5),
            "a sync waited {sync_took:?} with the hub gone"
        );
        // ...and a node restarted while its hub is down starts as quickly,
        // finds its colleague on the LAN again and catches up.
        bob.stop();
        std::fs::write(ada.project_dir("field").join("code/later.py"), "c = 3\n").expect("write");
        matrix::run_ok(&ada, &["sweep", "field"], Duration::from_secs(30)).expect("sweep");
        let restarted = Instant::now();
        matrix::start_logged(
            &mut bob,
            &logs,
            "bob-again",
            &[
                "--hub-address",
                &hub.address,
                "--p2p-listen",
                "/ip4/0.0.0.0/tcp/0",
                "--p2p-listen",
                "/ip4/0.0.0.0/udp/0/quic-v1",
            ],
        );
        let start_took = restarted.elapsed();
        assert!(
            start_took < Duration::from_secs(10),
            "start waited {start_took:?} on a dead hub"
        );
        wait_for(within, || matrix::connection(&bob, &ada_did))
            .expect("Bob finds Ada on the LAN again");
        wait_for(Duration::from_secs(30), || {
            let _ = matrix::run_for(&bob, &["sync", "field"], Duration::from_secs(20));
            bob.project_dir("field")
                .join("code/later.py")
                .is_file()
                .then_some(())
        })
        .expect("Bob catches up after a restart with the hub down");
        eprintln!(
            "restart with the hub down: up in {} ms, caught up in {} ms",
            start_took.as_millis(),
            restarted.elapsed().as_millis()
        );
    }));
    if let Err(panic) = outcome {
        logs.keep();
        for node in ["ada", "bob", "bob-again", "hub"] {
            eprintln!("--- {node} ---\n{}", logs.tail(node, 40));
        }
        std::panic::resume_unwind(panic);
    }
}

/// A hub that is not `--open` keeps relay slots only for the keys it
/// allows (and members of the projects it keeps): a stranger behind NAT
/// gets none, so nobody can reach it through the hub. A stranger may still
/// open a circuit to someone who holds a slot (that is how an invite
/// reaches the inviter); the far end decides what it answers.
#[test]
fn a_closed_hub_keeps_slots_only_for_those_it_allows() {
    assert!(
        node_built_with_hub_mode(),
        "`tandem up` has no --hub-address: the node lacks hub mode"
    );
    let Some(topology) = build_or_skip(Topology::builder().site(SiteKind::Cone, 2)) else {
        return;
    };
    let mut logs = Logs::new("closed-hub");
    let ada = TestNode::with_identity("Ada");
    let ada_did = ada.did();
    let hub = matrix::start_hub_with(&topology, &logs, &["--allow", &ada_did]);
    let hosts = &topology.sites[0].hosts;
    let ada = matrix::start_member_node(ada, "ada", &hosts[0], &hub, false, &logs);
    let eve = matrix::start_member("eve", &hosts[1], &hub, false, &logs);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let within = Duration::from_secs(20);
        let ready = matrix::wait_ready(&ada, &hub, true, within);
        assert!(ready.reserved.is_some(), "Ada is allowed a slot: {ready:?}");
        // Eve reaches the hub but is refused a slot, however long she waits.
        let eve_ready = matrix::wait_ready(&eve, &hub, true, Duration::from_secs(8));
        assert!(
            eve_ready.reserved.is_none(),
            "a stranger got a relay slot: {eve_ready:?}"
        );
        let own = eve
            .run(&["peers", "--self", "--json"])
            .expect_ok("peers --self")
            .json();
        assert_eq!(own["hub"]["reserved"], false, "{own}");
        assert!(
            logs.tail("hub", 400).contains("refused a relay slot"),
            "the hub says whom it refused"
        );
        // Eve can still reach Ada, who holds a slot, through the hub.
        matrix::run_ok(&eve, &["peer", "add", &ada_did], within).expect("Eve reaches Ada");
        let connection = wait_for(within, || matrix::connection(&eve, &ada_did));
        assert!(connection.is_some(), "Eve is connected to Ada");
    }));
    if let Err(panic) = outcome {
        logs.keep();
        eprintln!("hub log:\n{}", logs.tail("hub", 60));
        std::panic::resume_unwind(panic);
    }
}
