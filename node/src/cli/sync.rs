//! Peers and sync: `tandem peers`, `peer add` and `sync` (with its
//! conflict resolution and the automatic-sync switch).

use anyhow::bail;
use clap::{Args, Subcommand};
use tandem_protocol::api::{
    AddPeer, ConflictView, OwnAddresses, PeerConnected, PeerInfo, Reachability, SyncMessage,
    SyncRequest, SyncStateView, SyncSummary,
};
use tandem_protocol::notebook::{CellChoices, Choice, source_of};

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
    /// Show what a waiting conflict is about: each file, and each notebook
    /// cell in conflict with both versions
    #[arg(long)]
    show_conflicts: bool,
    /// With --resolve ours|theirs: settle one notebook cell conflict as
    /// --show-conflicts names it (repeatable); the rest take the side
    /// --resolve names
    #[arg(long = "cell", value_name = "PATH:CONFLICT=ours|theirs|both")]
    cells: Vec<String>,
    /// With --show-conflicts: print JSON
    #[arg(long)]
    json: bool,
}

/// `analysis.ipynb:cell:3f2a=theirs` → (path, conflict id, choice).
fn parse_cell_choice(text: &str) -> anyhow::Result<(String, String, Choice)> {
    let usage = || {
        anyhow::anyhow!(
            "--cell takes NOTEBOOK.ipynb:CONFLICT=ours|theirs|both (as `--show-conflicts` lists them), not {text:?}"
        )
    };
    let (left, choice) = text.rsplit_once('=').ok_or_else(usage)?;
    let choice = match choice {
        "ours" | "mine" => Choice::Ours,
        "theirs" => Choice::Theirs,
        "both" => Choice::Both,
        _ => return Err(usage()),
    };
    let at = left.find(".ipynb:").ok_or_else(usage)?;
    let (path, id) = (&left[..at + ".ipynb".len()], &left[at + ".ipynb:".len()..]);
    if id.is_empty() {
        return Err(usage());
    }
    Ok((path.to_owned(), id.to_owned(), choice))
}

fn print_conflicts(project: &str, conflict: &ConflictView) {
    println!("Conflict with {}:", conflict.peer);
    let indent = |text: &str| {
        for line in text.lines() {
            println!("        | {line}");
        }
    };
    let side = |value: &Option<serde_json::Value>| match value {
        Some(serde_json::Value::Object(cell)) => indent(&source_of(cell)),
        Some(other) => indent(&serde_json::to_string_pretty(other).unwrap_or_default()),
        None => println!("        (deleted)"),
    };
    for file in &conflict.files {
        if file.cells.is_empty() {
            println!("  {}", file.path);
            if let Some(why) = &file.whole_file {
                println!("    settled as a whole file: {why}");
            }
            continue;
        }
        println!(
            "  {} (notebook: {} in conflict, everything else merged cell by cell)",
            file.path,
            plural(file.cells.len(), "conflict")
        );
        for c in &file.cells {
            println!("    {}:{}  {}", file.path, c.id, c.label);
            println!("      mine:");
            side(&c.ours);
            println!("      theirs:");
            side(&c.theirs);
        }
    }
    println!(
        "Settle it with `tandem sync {project} --resolve ours|theirs` (add `--cell PATH:CONFLICT=ours|theirs|both` per notebook cell), `--resolve keep-both`, or `--abort`."
    );
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
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
        show_conflicts,
        cells,
        json,
    } = args;
    if show_conflicts {
        let path = format!("/api/projects/{}/sync-state", project_path(&project)?);
        let state: SyncStateView = client.get(&path).await?;
        if json {
            return print_json(&state.conflict);
        }
        match &state.conflict {
            Some(conflict) => print_conflicts(&project, conflict),
            None => println!("No conflict is waiting for {project}."),
        }
        return Ok(());
    }
    let mut choices = CellChoices::new();
    for text in &cells {
        let (path, id, choice) = parse_cell_choice(text)?;
        choices.entry(path).or_default().insert(id, choice);
    }
    if !choices.is_empty() && !matches!(resolve.as_deref(), Some("ours" | "theirs")) {
        bail!("--cell goes with --resolve ours or --resolve theirs (the side for everything else)");
    }
    if let Some(auto) = auto {
        let enabled = match auto.as_str() {
            "on" => true,
            "off" => false,
            other => bail!("--auto takes on or off, not {other:?}"),
        };
        let path = format!("/api/projects/{}/sync", project_path(&project)?);
        let request = SyncRequest {
            auto: Some(enabled),
            ..SyncRequest::default()
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
            cells: choices,
            ..SyncRequest::default()
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
            "Nothing was changed. See what conflicts with `tandem sync {project} --show-conflicts`; finish with `--resolve ours|theirs|keep-both` (notebook cells one by one with `--cell`), or `--abort`."
        );
        std::process::exit(CONFLICT_EXIT);
    }
    Ok(())
}
