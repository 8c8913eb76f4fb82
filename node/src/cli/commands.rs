//! The `tandem` command line: its commands, and which group runs each.
//! Every command except `up` talks to the node's API through [`Client`],
//! which reaches the running node or opens the home in-process.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};
use tandem_protocol::api::{IdentityInfo, UpdateProfile};

use crate::cli::activity::{self, ActivityArgs, NoteArgs};
use crate::cli::client::Client;
use crate::cli::datasets::{self, DatasetCommand};
use crate::cli::env::{self, BasesArgs, EnvCommand};
use crate::cli::files::{self, AddArgs, DuArgs, EvictArgs, FetchArgs, FilesArgs, SweepArgs};
use crate::cli::invites::{self, InviteArgs, JoinArgs};
use crate::cli::output::print_json;
use crate::cli::projects::{self, ProjectCommand};
use crate::cli::sharing::{self, MembersArgs, RevokeArgs, ShareArgs, VisibilityArgs};
use crate::cli::sync::{self, PeerCommand, PeersArgs, SyncArgs};
use crate::cli::versions::{self, DiffArgs, RestoreArgs};
use crate::daemon::{self, UpOptions};
use crate::home::{Home, random_bytes};

#[derive(Parser, Debug)]
#[command(
    name = "tandem",
    version,
    about = "Peer-to-peer reproducible data science: projects, history and environments, synced directly between collaborators."
)]
pub struct Cli {
    /// The node's home folder [default: $TANDEM_HOME, else ~/.tandem]
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the node (web UI, API, file watching) until Ctrl-C
    Up(UpArgs),
    /// Run this node as a hub on a public address: a relay for peers behind
    /// NAT, AutoNAT and DHT for finding peers, and an always-on copy of the
    /// projects it is granted the reader role on (`tandem up --hub`)
    Hub(UpArgs),
    /// Create this node's identity (never replaces an existing key) or change its name and email
    Init {
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// Show this node's identity: did:key, PeerId, name
    Id {
        #[arg(long)]
        json: bool,
    },
    /// Create, list, show, delete, export and import projects
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Copy files or folders into a project's code/, input/ or output/ and record them
    Add(AddArgs),
    /// Record files changed in a project's folder by any other means
    Sweep(SweepArgs),
    /// List a project's files (or, with --at, an old version's); large files show whether their bytes are here
    Files(FilesArgs),
    /// Make an old version the current one again, as a new version: code,
    /// input, output, large files, environment and dataset links (members
    /// and the project's identity stay as they are; nothing is lost)
    Restore(RestoreArgs),
    /// Compare two versions: files, text diffs, packages, dataset links
    Diff(DiffArgs),
    /// Versioned datasets: create, add files, list, show, link into a project
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// List the base environments a project can start from
    Bases(BasesArgs),
    /// A project's environment: pinned packages, snippets, outdated versions
    #[command(subcommand)]
    Env(EnvCommand),
    /// Build a project's environment image (nothing runs when it is unchanged)
    Build {
        project: String,
        #[arg(long)]
        json: bool,
    },
    /// Start JupyterLab on a project (building first if needed) and print its URL
    Launch {
        project: String,
        /// jupyterlab (the default)
        tool: Option<String>,
        /// Open an old version read-only, in the environment it names
        /// (an activity entry id, a commit or a date); cells run there
        /// are not recorded
        #[arg(long, value_name = "VERSION")]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stop a project's JupyterLab
    Stop { project: String },
    /// List running JupyterLab containers
    Ps {
        #[arg(long)]
        json: bool,
    },
    /// Show disk space per project: Git files, large files here and on peers, old versions
    Du(DuArgs),
    /// Drop local copies of large files (or, with no paths, of old versions) that peers still hold
    Evict(EvictArgs),
    /// Bring large files' bytes from peers (all of them, or the paths given)
    Fetch(FetchArgs),
    /// Show a project's activity, newest first
    Activity(ActivityArgs),
    /// Give a collaborator a role in a project
    Share(ShareArgs),
    /// Take a collaborator's role away
    Revoke(RevokeArgs),
    /// List a project's members and their roles
    Members(MembersArgs),
    /// Make a project readable by anyone (public) or by members only (private, the default)
    Visibility(VisibilityArgs),
    /// Make a single-use invite link (a `tandem:` ticket) giving a role in a
    /// project; or list or revoke a project's invites
    Invite(InviteArgs),
    /// Join a project with an invite ticket: the inviter's node grants the
    /// role, then the project is cloned
    Join(JoinArgs),
    /// Peers this node knows: key, name, addresses, how found, connected, round-trip time
    Peers(PeersArgs),
    /// Connect to a peer by address, or by key through connected peers
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Sweep, fetch from every reachable peer with the project, merge, record
    Sync(SyncArgs),
    /// Add a note to a project's activity
    Note(NoteArgs),
}

#[derive(Args, Debug)]
struct UpArgs {
    /// Address for the web UI and API
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: String,
    /// Where to accept peers (a libp2p multiaddr; repeatable)
    #[arg(
        long = "p2p-listen",
        default_values = ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]
    )]
    p2p_listen: Vec<String>,
    /// Do not announce or look for peers on the LAN
    #[arg(long)]
    no_mdns: bool,
    /// Do not take part in the peer-finding DHT (Kademlia): peers are then
    /// reached only by address or mDNS, never through other peers
    #[arg(long)]
    no_dht: bool,
    /// UDP address of the blob endpoint (large files move over it)
    #[arg(long, default_value = "0.0.0.0:0")]
    blob_listen: String,
    /// A hub to use (a multiaddr ending in /p2p/<peer id>): this node keeps
    /// a relay slot on it, so peers behind other NATs can reach it, and its
    /// large files cross NAT through the hub's blob relay. Saved in the
    /// settings, like the Settings page's field
    #[arg(long, value_name = "MULTIADDR")]
    hub_address: Option<String>,
    /// Run as a hub (see `tandem hub`)
    #[arg(long)]
    hub: bool,
    /// Hub: the public IP address peers reach this machine at
    #[arg(long, value_name = "IP")]
    external_address: Option<std::net::IpAddr>,
    /// Hub: where the relay for blob endpoints listens (HTTP; the traffic
    /// it carries is end-to-end encrypted QUIC)
    #[arg(long, default_value = "0.0.0.0:3340")]
    relay_listen: String,
    /// Hub: a key (did:key:…) that may use the hub's relays besides the
    /// members of the projects it keeps (repeatable)
    #[arg(long = "allow", value_name = "KEY")]
    allow: Vec<String>,
    /// Hub: anyone may use the hub's relays, not only members and --allow
    #[arg(long)]
    open: bool,
    /// Hub: most large-file bytes kept per project, e.g. 20GiB (0: no limit)
    #[arg(long, default_value = "20GiB")]
    quota: String,
}

impl UpArgs {
    fn options(self, hub: bool) -> anyhow::Result<UpOptions> {
        let hub = if hub || self.hub {
            let allow = self
                .allow
                .iter()
                .map(|k| {
                    k.parse().map_err(|_| {
                        anyhow::anyhow!("--allow {k:?} is not a key like did:key:z6Mk…")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let relay_listen = self.relay_listen.parse().map_err(|_| {
                anyhow::anyhow!(
                    "--relay-listen {:?} is not an address like 0.0.0.0:3340",
                    self.relay_listen
                )
            })?;
            Some(crate::hub::HubOptions {
                external: self.external_address,
                relay_listen,
                allow,
                open: self.open,
                quota_bytes: crate::hub::parse_size(&self.quota)
                    .map_err(|e| anyhow::anyhow!("--quota: {e}"))?,
            })
        } else {
            None
        };
        Ok(UpOptions {
            listen: self.listen,
            p2p_listen: self.p2p_listen,
            mdns: !self.no_mdns,
            dht: !self.no_dht,
            blob_listen: self.blob_listen,
            hub_address: self.hub_address,
            hub,
        })
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let home = Home::locate(cli.home);
    match cli.command {
        Command::Up(args) => daemon::up(home, args.options(false)?).await,
        Command::Hub(args) => daemon::up(home, args.options(true)?).await,
        Command::Init { name, email } => init(&home, name, email).await,
        command => {
            if !home.has_identity() {
                bail!(
                    "no identity yet in {}: run `tandem init --name \"Your Name\" --email you@example.org` first",
                    home.root().display()
                );
            }
            let client = Client::connect(&home).await?;
            let result = run_with(&client, command).await;
            if let Some(service) = client.local_service() {
                service.close_blobs().await;
            }
            result
        }
    }
}

/// `tandem init`: the key first (outside the API: there is no node
/// without one), then the name and email through the API.
async fn init(home: &Home, name: Option<String>, email: Option<String>) -> anyhow::Result<()> {
    // Check the labels first, so a typo does not leave a key behind.
    for (what, value) in [("name", &name), ("email", &email)] {
        if let Some(value) = value {
            crate::access::identity::validate_label(what, value)?;
        }
    }
    let created = {
        let _lock = home.lock(std::time::Duration::from_secs(2)).ok();
        let (_, created) = home.create_key_if_missing(random_bytes())?;
        created
    };
    let client = Client::connect(home).await?;
    if name.is_some() || email.is_some() {
        let _: IdentityInfo = client
            .put("/api/identity", &UpdateProfile { name, email })
            .await?;
    }
    let me: IdentityInfo = client.get("/api/identity").await?;
    if created {
        println!("Created a new identity in {}", home.root().display());
    } else {
        println!(
            "Identity already exists in {}; kept its key",
            home.root().display()
        );
    }
    print_identity(&me);
    Ok(())
}

fn print_identity(me: &IdentityInfo) {
    println!("name:    {}", me.name);
    println!("email:   {}", me.email);
    println!("did:     {}", me.did);
    println!("peer id: {}", me.peer_id);
}

/// Hands a command that needs the node to its group.
async fn run_with(client: &Client, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up(_) | Command::Hub(_) | Command::Init { .. } => {
            bail!("this command is handled before connecting to the node")
        }
        Command::Id { json } => {
            let me: IdentityInfo = client.get("/api/identity").await?;
            if json {
                print_json(&me)
            } else {
                print_identity(&me);
                Ok(())
            }
        }
        Command::Project(command) => projects::run(client, command).await,
        Command::Add(args) => files::add(client, args).await,
        Command::Sweep(args) => files::sweep(client, args).await,
        Command::Files(args) => match &args.at {
            Some(version) => versions::files_at(client, &args.project, version, args.json).await,
            None => files::files(client, args).await,
        },
        Command::Restore(args) => versions::restore(client, args).await,
        Command::Diff(args) => versions::diff(client, args).await,
        Command::Fetch(args) => files::fetch(client, args).await,
        Command::Du(args) => files::du(client, args).await,
        Command::Evict(args) => files::evict(client, args).await,
        Command::Dataset(command) => datasets::run(client, command).await,
        Command::Bases(args) => env::run_bases(client, args).await,
        Command::Env(command) => env::run_env(client, command).await,
        Command::Build { project, json } => env::run_build(client, project, json).await,
        Command::Launch {
            project,
            tool,
            at,
            json,
        } => env::run_launch(client, project, tool, at, json).await,
        Command::Stop { project } => env::run_stop(client, project).await,
        Command::Ps { json } => env::run_ps(client, json).await,
        Command::Activity(args) => activity::activity(client, args).await,
        Command::Note(args) => activity::note(client, args).await,
        Command::Share(args) => sharing::share(client, args).await,
        Command::Revoke(args) => sharing::revoke(client, args).await,
        Command::Members(args) => sharing::members(client, args).await,
        Command::Visibility(args) => sharing::visibility(client, args).await,
        Command::Invite(args) => invites::invite(client, args).await,
        Command::Join(args) => invites::join(client, args).await,
        Command::Peers(args) => sync::peers(client, args).await,
        Command::Peer(command) => sync::peer(client, command).await,
        Command::Sync(args) => sync::sync(client, args).await,
    }
}
