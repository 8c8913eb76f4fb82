//! Two nodes on two hosts of one LAN find each other by mDNS alone: each
//! runs in its own network namespace, the two joined by a veth pair, with
//! no peer ever added by hand.

use std::process::Command;
use std::time::{Duration, Instant};

use tandem_e2e::{TestNode, wait_for};

/// Two namespaces joined by a veth pair, removed on drop.
struct Lan {
    names: [String; 2],
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Lan {
    fn create() -> Result<Self, String> {
        let id = std::process::id() % 100_000;
        let lan = Lan {
            names: [format!("tdm{id}a"), format!("tdm{id}b")],
        };
        let [a, b] = &lan.names;
        let (va, vb) = (format!("v{id}a"), format!("v{id}b"));
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
        ip(&["link", "set", &va, "netns", a])?;
        ip(&["link", "set", &vb, "netns", b])?;
        for (ns, dev, addr) in [(a, &va, "10.213.0.1/24"), (b, &vb, "10.213.0.2/24")] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "multicast", "on"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

#[test]
fn nodes_on_one_lan_find_each_other_by_mdns_alone() {
    let lan = match Lan::create() {
        Ok(lan) => lan,
        Err(reason) => {
            // Only machines that may not create network namespaces get here;
            // CI runs as root and can.
            eprintln!("SKIPPED: cannot create network namespaces here ({reason})");
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to create network namespaces: {reason}"
            );
            return;
        }
    };
    let mut ada = TestNode::with_identity("Ada");
    let mut bob = TestNode::with_identity("Bob");
    ada.netns = Some(lan.names[0].clone());
    bob.netns = Some(lan.names[1].clone());
    ada.start_with(&["--p2p-listen", "/ip4/0.0.0.0/tcp/0"]);
    let started = Instant::now();
    bob.start_with(&["--p2p-listen", "/ip4/0.0.0.0/tcp/0"]);
    let (ada_did, bob_did) = (ada.did(), bob.did());
    // How `node` records `other`, once they are connected.
    let seen = |node: &TestNode, other: &str| -> Option<String> {
        let peers = node.run(&["peers", "--json"]);
        if !peers.ok {
            return None;
        }
        let list = peers.json();
        list.as_array()?
            .iter()
            .find(|p| p["did"] == other && p["connected"] == true)
            .map(|p| p["found_by"].as_str().unwrap_or_default().to_owned())
    };
    let elapsed = wait_for(Duration::from_secs(15), || {
        seen(&bob, &ada_did).map(|_| started.elapsed())
    })
    .expect("the two nodes found each other and connected within 15 s");
    eprintln!(
        "mDNS discovery across the veth LAN: {} ms",
        elapsed.as_millis()
    );
    // Whichever side dialled first found the other by mDNS; nobody added a
    // peer by hand.
    let ways = wait_for(Duration::from_secs(5), || {
        let ways = (seen(&ada, &bob_did)?, seen(&bob, &ada_did)?);
        (ways.0 == "mdns" || ways.1 == "mdns").then_some(ways)
    })
    .expect("one side records the other as found by mDNS");
    assert!(ways.0 != "manual" && ways.1 != "manual", "{ways:?}");
    assert!(ada.stop() && bob.stop());
}
