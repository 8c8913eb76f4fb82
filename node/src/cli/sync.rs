//! Peers and sync: `tandem peers`, `peer add` and `sync` (with its
//! conflict resolution and the automatic-sync switch).

use anyhow::bail;
use clap::{Args, Subcommand};
use tandem_protocol::api::{
    AddPeer, OwnAddresses, PeerConnected, PeerInfo, Reachability, SyncMessage, SyncRequest,
    SyncSummary,
};

use crate::cli::client::Client;
use crate::cli::output::{print_json, time};
use crate::cli::request::project_path;

/// The exit code of a sync that stopped at a conflict: nothing changed,
/// the user must choose.
const CONFLICT_EXIT: i32 = 3;

#[derive(Args, Debug)]
pub struct PeersArgs {
    /// Print this node's own addresses to hand to a colleague
    #[arg(long = "self")]
    own: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum PeerCommand {
    /// Connect to a peer by address (/ip4/192.168.1.20/tcp/4001/p2p/12D3KooW…),
    /// or by key alone (did:key:… or 12D3KooW…): connected peers are asked
    /// where it listens
    Add { address: String },
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    project: String,
    /// Settle a conflict: ours, theirs or keep-both
    #[arg(long)]
    resolve: Option<String>,
    /// Give up a conflicted sync and keep things as they were
    #[arg(long)]
    abort: bool,
    /// Turn automatic sync of this project on or off (on by default)
    #[arg(long, value_name = "on|off")]
    auto: Option<String>,
}

pub async fn peers(client: &Client, args: PeersArgs) -> anyhow::Result<()> {
    if args.own {
        let me: OwnAddresses = client.get("/api/peers/self").await?;
        if args.json {
            return print_json(&me);
        }
        println!("Give a colleague one of these addresses (`tandem peer add ADDRESS`):");
        for a in &me.addresses {
            println!("  {a}");
        }
        println!("Your key: {}", me.did);
        if let Some(reachability) = me.reachability {
            let said = match reachability {
                Reachability::Public => "peers on the internet can dial this node",
                Reachability::Private => {
                    "behind NAT: peers elsewhere reach this node through a hub"
                }
                Reachability::Unknown => "not known yet whether peers elsewhere can dial this node",
            };
            println!("Reachability: {said}");
        }
        if let Some(hub) = &me.hub {
            let state = match (hub.connected, hub.reserved) {
                (_, true) => "connected, keeps a relay slot for this node",
                (true, false) => "connected, no relay slot",
                (false, _) => "not connected (retrying)",
            };
            println!("Hub: {} ({state})", hub.address);
            if let Some(relay) = &hub.blob_relay {
                println!("Blob relay: {relay}");
            }
        }
        return Ok(());
    }
    let peers: Vec<PeerInfo> = client.get("/api/peers").await?;
    if args.json {
        return print_json(&peers);
    }
    if peers.is_empty() {
        println!(
            "No peers yet. On a LAN they appear by themselves; otherwise `tandem peer add ADDRESS`."
        );
    }
    for p in &peers {
        let state = if p.connected {
            match p.connection {
                Some(kind) => format!("connected, {}", kind.as_str()),
                None => "connected".to_owned(),
            }
        } else {
            format!(
                "last seen {}",
                p.last_seen_ms.map(time).unwrap_or_else(|| "never".into())
            )
        };
        let rtt = p.rtt_ms.map(|r| format!(", {r:.1} ms")).unwrap_or_default();
        println!(
            "{:<20} {} ({}, found by {}{rtt})",
            p.name.clone().unwrap_or_else(|| "(unknown)".into()),
            p.did,
            state,
            p.found_by
        );
        for a in &p.addresses {
            println!("    {a}");
        }
    }
    Ok(())
}

pub async fn peer(client: &Client, command: PeerCommand) -> anyhow::Result<()> {
    match command {
        PeerCommand::Add { address } => {
            let answer: PeerConnected = client.post("/api/peers", &AddPeer { address }).await?;
            println!("Connected to {}", answer.connected);
            Ok(())
        }
    }
}

pub async fn sync(client: &Client, args: SyncArgs) -> anyhow::Result<()> {
    let SyncArgs {
        project,
        resolve,
        abort,
        auto,
    } = args;
    if let Some(auto) = auto {
        let enabled = match auto.as_str() {
            "on" => true,
            "off" => false,
            other => bail!("--auto takes on or off, not {other:?}"),
        };
        let path = format!("/api/projects/{}/sync", project_path(&project)?);
        let request = SyncRequest {
            resolve: None,
            auto: Some(enabled),
        };
        let answer: SyncMessage = client.post(&path, &request).await?;
        println!("{}", answer.message);
        return Ok(());
    }
    let resolve = match (resolve, abort) {
        (Some(_), true) => bail!("use either --resolve or --abort"),
        (Some(how), false) => Some(how),
        (None, true) => Some("abort".to_owned()),
        (None, false) => None,
    };
    let path = format!("/api/projects/{}/sync", project_path(&project)?);
    if let Some(how) = resolve {
        let request = SyncRequest {
            resolve: Some(how),
            auto: None,
        };
        let answer: SyncMessage = client.post(&path, &request).await?;
        println!("{}", answer.message);
        return Ok(());
    }
    let summary: SyncSummary = client.post(&path, &SyncRequest::default()).await?;
    println!("{}", summary.message);
    for p in summary.peers.iter().filter(|p| !p.problems.is_empty()) {
        for problem in &p.problems {
            println!(
                "  {}: {problem}",
                p.name.clone().unwrap_or_else(|| p.peer.clone())
            );
        }
    }
    if !summary.conflicts.is_empty() {
        println!("Conflicts in:");
        for f in &summary.conflicts {
            println!("  {f}");
        }
        println!(
            "Nothing was changed. Finish with `tandem sync {project} --resolve ours|theirs|keep-both`, or `--abort`."
        );
        std::process::exit(CONFLICT_EXIT);
    }
    Ok(())
}
