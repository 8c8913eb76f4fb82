//! The `tandem` command line. Every command except `up` talks to the node's
//! API through [`Client`], which reaches the running node or opens the home
//! in-process.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tandem_protocol::access::Role;
use tandem_protocol::api::{
    ActivityQuery, AddFiles, CreateProject, EntryView, ExportRequest, ExportResult, FetchRequest,
    FetchResult, IdentityInfo, ImportRequest, MembersView, NoteRequest, ProjectDetail,
    ProjectSummary, Section, ShareRequest, SweepResult, UpdateProfile, VisibilityRequest,
};

use crate::cli::client::Client;
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
    Add {
        project: String,
        /// code, input or output
        section: String,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Record files changed in a project's folder by any other means
    Sweep { project: String },
    /// List a project's files; large files show whether their bytes are here
    Files {
        project: String,
        #[arg(long)]
        json: bool,
    },
    /// Versioned datasets: create, add files, list, show, link into a project
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// List the base environments a project can start from
    Bases(crate::cli::env::BasesArgs),
    /// A project's environment: pinned packages, snippets, outdated versions
    #[command(subcommand)]
    Env(crate::cli::env::EnvCommand),
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
    Du {
        #[arg(long)]
        json: bool,
    },
    /// Drop local copies of large files (or, with no paths, of old versions) that peers still hold
    Evict {
        project: String,
        /// Files or folders, relative to the project
        paths: Vec<String>,
        /// Drop even if no connected peer confirms it holds a copy
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Bring large files' bytes from peers (all of them, or the paths given)
    Fetch {
        project: String,
        /// Files or folders, relative to the project (e.g. input/raw)
        paths: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a project's activity, newest first
    Activity(ActivityArgs),
    /// Give a collaborator a role in a project
    Share {
        project: String,
        /// Their key: a did:key (from `tandem id`) or a libp2p PeerId
        peer: String,
        /// reader, writer or admin
        #[arg(long)]
        role: String,
        /// YYYY-MM-DD or an RFC 3339 time after which the grant stops counting
        #[arg(long)]
        expires: Option<String>,
    },
    /// Take a collaborator's role away
    Revoke { project: String, peer: String },
    /// List a project's members and their roles
    Members {
        project: String,
        #[arg(long)]
        json: bool,
    },
    /// Make a project readable by anyone (public) or by members only (private, the default)
    Visibility {
        project: String,
        /// public or private
        setting: String,
    },
    /// Peers this node knows: key, name, addresses, how found, connected, round-trip time
    Peers {
        /// Print this node's own addresses to hand to a colleague
        #[arg(long = "self")]
        own: bool,
        #[arg(long)]
        json: bool,
    },
    /// Connect to a peer by address, or by key through connected peers
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Sweep, fetch from every reachable peer with the project, merge, record
    Sync {
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
    },
    /// Add a note to a project's activity
    Note {
        project: String,
        text: String,
        /// A tag (repeatable)
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
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
}

#[derive(Subcommand, Debug)]
enum PeerCommand {
    /// Connect to a peer by address (/ip4/192.168.1.20/tcp/4001/p2p/12D3KooW…),
    /// or by key alone (did:key:… or 12D3KooW…): connected peers are asked
    /// where it listens
    Add { address: String },
}

#[derive(Subcommand, Debug)]
enum DatasetCommand {
    /// Create a dataset (shared and synced like a project)
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Copy files or folders into a dataset; the result is its next version
    /// (with no paths, records what changed in its data/ folder)
    Add {
        dataset: String,
        paths: Vec<PathBuf>,
        /// What changed in this version
        #[arg(long, short, default_value = "")]
        message: String,
    },
    /// Datasets on this node
    List {
        #[arg(long)]
        json: bool,
    },
    /// A dataset's files (latest version, or --version N)
    Show {
        dataset: String,
        #[arg(long)]
        version: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// A dataset's versions
    Versions {
        dataset: String,
        #[arg(long)]
        json: bool,
    },
    /// Pin a dataset version into a project, read-only under input/DATASET/
    Link {
        project: String,
        /// DATASET (latest version) or DATASET@VERSION
        dataset: String,
    },
}

#[derive(Subcommand, Debug)]
enum ProjectCommand {
    /// Projects that connected peers share with you
    Offers {
        #[arg(long)]
        json: bool,
    },
    /// Fetch a project shared with you, with its history, access and activity
    Clone {
        /// The project id (tp…), as shown by `tandem project offers`
        project: String,
        #[arg(long = "as", value_name = "NAME")]
        name: Option<String>,
        /// Leave large files on peers; fetch them later with `tandem fetch`
        #[arg(long)]
        no_data: bool,
    },
    /// Create a project
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Base environment (see `tandem bases`) [default: python3-minimal]
        #[arg(long)]
        base: Option<String>,
    },
    /// List projects
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a project: id, owner, folder, counts, last activity
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a project and its activity from this node
    Delete {
        name: String,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
    /// Write a project (history, activity and large files) to a zip file
    Export {
        name: String,
        #[arg(short, long, value_name = "FILE.zip")]
        output: Option<PathBuf>,
    },
    /// Import a project from a zip made by `tandem project export`
    Import {
        file: PathBuf,
        /// Local name for the project
        #[arg(long = "as", value_name = "NAME")]
        name: Option<String>,
    },
}

#[derive(Args, Debug)]
struct ActivityArgs {
    project: String,
    /// code, environment, input, output, dataset, note, sync, access or milestone
    #[arg(long)]
    kind: Option<String>,
    /// An author's name (as shown in the feed) or key
    #[arg(long)]
    author: Option<String>,
    /// Only entries that touched this file or folder
    #[arg(long)]
    path: Option<String>,
    /// Text to look for in messages, tags, code, output and file names
    #[arg(long)]
    search: Option<String>,
    /// YYYY-MM-DD or an RFC 3339 time
    #[arg(long)]
    since: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

/// Percent-encodes one URL path segment.
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A project name as a URL path segment; names that cannot exist are
/// refused here with the naming rules, before anything is sent.
pub(crate) fn project_path(name: &str) -> anyhow::Result<String> {
    let name: tandem_protocol::ProjectName = name.parse()?;
    Ok(segment(name.as_str()))
}

fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn absolute(path: &Path) -> anyhow::Result<String> {
    let path =
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    Ok(path.to_string_lossy().into_owned())
}

pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

fn print_entry(entry: &EntryView) {
    let e = &entry.entry;
    let commit = e
        .commit
        .as_deref()
        .map(|c| format!(" [{}]", &c[..c.len().min(8)]))
        .unwrap_or_default();
    let tags = if e.tags.is_empty() {
        String::new()
    } else {
        format!(" #{}", e.tags.join(" #"))
    };
    let mut lines = e.message.lines();
    println!(
        "{}  {:<11} {:<14} {}{}{}",
        time(e.time_ms),
        e.kind.as_str(),
        e.author_name.chars().take(14).collect::<String>(),
        lines.next().unwrap_or_default(),
        tags,
        commit
    );
    for line in lines {
        println!("{:44}{line}", "");
    }
}

fn print_sweep(result: &SweepResult) {
    if result.entries.is_empty() {
        println!("Nothing changed.");
    }
    for entry in &result.entries {
        println!("Recorded: {}", entry.entry.message);
    }
    if let Some(commit) = &result.commit {
        println!("Commit {}", &commit[..commit.len().min(12)]);
    }
    for why in &result.refused {
        println!("Left out: {why}");
    }
}

fn print_summary(p: &ProjectSummary) {
    println!("{}", p.name);
    println!("  id:          {}", p.id);
    println!("  owner:       {}", p.owner);
    if !p.description.is_empty() {
        println!("  description: {}", p.description);
    }
    println!("  folder:      {}", p.path);
    println!("  created:     {}", time(p.created_ms));
    println!(
        "  commits:     {}   files: {}   activity entries: {}",
        p.commits, p.files, p.entries
    );
    if let Some(last) = &p.last_activity {
        println!(
            "  last:        {} {}",
            time(last.entry.time_ms),
            last.entry.message.lines().next().unwrap_or_default()
        );
    }
    for problem in &p.problems {
        println!("  problem:     {problem}");
    }
}

fn confirm_delete(name: &str) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("refusing to delete {name:?} without confirmation: pass --yes");
    }
    print!(
        "Delete project {name:?} with all its history and activity from this node? Type its name to confirm: "
    );
    std::io::stdout().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(answer.trim() == name)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let home = Home::locate(cli.home);
    match cli.command {
        Command::Up(args) => {
            daemon::up(
                home,
                UpOptions {
                    listen: args.listen,
                    p2p_listen: args.p2p_listen,
                    mdns: !args.no_mdns,
                    dht: !args.no_dht,
                    blob_listen: args.blob_listen,
                },
            )
            .await
        }
        Command::Init { name, email } => {
            // Check the labels first, so a typo does not leave a key behind.
            for (what, value) in [("name", &name), ("email", &email)] {
                if let Some(value) = value {
                    crate::service::validate_label(what, value)?;
                }
            }
            let created = {
                let _lock = home.lock(std::time::Duration::from_secs(2)).ok();
                let (_, created) = home.create_key_if_missing(random_bytes())?;
                created
            };
            let client = Client::connect(&home).await?;
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

async fn run_dataset(client: &Client, command: DatasetCommand) -> anyhow::Result<()> {
    use tandem_protocol::api::{DatasetDetail, DatasetSummary, VersionSummary};
    match command {
        DatasetCommand::Create { name, description } => {
            let d: DatasetSummary = client
                .post(
                    "/api/datasets",
                    &tandem_protocol::api::CreateDataset { name, description },
                )
                .await?;
            println!("Created dataset {} ({})", d.name, d.id);
            println!("Add files with `tandem dataset add {} PATH...`", d.name);
            Ok(())
        }
        DatasetCommand::Add {
            dataset,
            paths,
            message,
        } => {
            let paths = paths
                .iter()
                .map(|p| absolute(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let v: VersionSummary = client
                .post(
                    &format!("/api/datasets/{}/files", project_path(&dataset)?),
                    &tandem_protocol::api::AddToDataset { paths, message },
                )
                .await?;
            println!(
                "{dataset} version {}: {} files, {}",
                v.number,
                v.files,
                crate::cli::output::bytes(v.bytes)
            );
            Ok(())
        }
        DatasetCommand::List { json } => {
            let list: Vec<DatasetSummary> = client.get("/api/datasets").await?;
            if json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("No datasets yet. Create one with `tandem dataset create NAME`.");
            }
            for d in list {
                let latest = d.latest.map_or("no versions yet".to_owned(), |v| {
                    format!(
                        "version {}: {} files, {}",
                        v.number,
                        v.files,
                        crate::cli::output::bytes(v.bytes)
                    )
                });
                println!("{:<24} {latest}", d.name);
            }
            Ok(())
        }
        DatasetCommand::Show {
            dataset,
            version,
            json,
        } => {
            let query = version.map_or(String::new(), |v| format!("?version={v}"));
            let detail: DatasetDetail = client
                .get(&format!("/api/datasets/{}{query}", project_path(&dataset)?))
                .await?;
            if json {
                return print_json(&detail);
            }
            match detail.shown {
                Some(n) => println!("{} version {n}:", detail.summary.name),
                None => println!("{} has no versions yet", detail.summary.name),
            }
            for f in &detail.files {
                println!(
                    "  {:<48} {:>10}  {}",
                    f.path,
                    crate::cli::output::bytes(f.size),
                    f.hash.short()
                );
            }
            Ok(())
        }
        DatasetCommand::Versions { dataset, json } => {
            let detail: DatasetDetail = client
                .get(&format!("/api/datasets/{}", project_path(&dataset)?))
                .await?;
            if json {
                return print_json(&detail.versions);
            }
            for v in &detail.versions {
                println!(
                    "{:>4}  {}  {} files, {}  {}",
                    v.number,
                    v.collection.short(),
                    v.files,
                    crate::cli::output::bytes(v.bytes),
                    v.message
                );
            }
            Ok(())
        }
        DatasetCommand::Link { project, dataset } => {
            let link: tandem_protocol::dataset::Link = client
                .post(
                    &format!("/api/projects/{}/datasets", project_path(&project)?),
                    &tandem_protocol::api::LinkRequest { dataset },
                )
                .await?;
            println!(
                "Linked {} version {} into {project}: {} files under {}/ (read-only)",
                link.name,
                link.version,
                link.files.len(),
                link.folder()
            );
            Ok(())
        }
    }
}

fn print_identity(me: &IdentityInfo) {
    println!("name:    {}", me.name);
    println!("email:   {}", me.email);
    println!("did:     {}", me.did);
    println!("peer id: {}", me.peer_id);
}

async fn run_with(client: &Client, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up(_) | Command::Init { .. } => unreachable_command(),
        Command::Id { json } => {
            let me: IdentityInfo = client.get("/api/identity").await?;
            if json {
                print_json(&me)
            } else {
                print_identity(&me);
                Ok(())
            }
        }
        Command::Project(ProjectCommand::Create {
            name,
            description,
            base,
        }) => {
            let p: ProjectSummary = client
                .post(
                    "/api/projects",
                    &CreateProject {
                        name,
                        description,
                        base,
                    },
                )
                .await?;
            println!("Created project {} ({})", p.name, p.id);
            println!("  folder: {}", p.path);
            Ok(())
        }
        Command::Project(ProjectCommand::List { json }) => {
            let projects: Vec<ProjectSummary> = client.get("/api/projects").await?;
            if json {
                return print_json(&projects);
            }
            if projects.is_empty() {
                println!("No projects yet. Create one with `tandem project create NAME`.");
            }
            for p in &projects {
                let last = p
                    .last_activity
                    .as_ref()
                    .map(|e| time(e.entry.time_ms))
                    .unwrap_or_default();
                println!(
                    "{:<30} {:>6} files {:>6} entries  {last}",
                    p.name, p.files, p.entries
                );
            }
            Ok(())
        }
        Command::Project(ProjectCommand::Show { name, json }) => {
            let detail: ProjectDetail = client
                .get(&format!("/api/projects/{}", project_path(&name)?))
                .await?;
            if json {
                return print_json(&detail);
            }
            print_summary(&detail.summary);
            for group in &detail.sections {
                println!("  {}/: {} files", group.section, group.files.len());
            }
            Ok(())
        }
        Command::Project(ProjectCommand::Delete { name, yes }) => {
            if !yes && !confirm_delete(&name)? {
                println!("Not deleted.");
                return Ok(());
            }
            let _: serde_json::Value = client
                .delete(&format!("/api/projects/{}", project_path(&name)?))
                .await?;
            println!("Deleted project {name}");
            Ok(())
        }
        Command::Project(ProjectCommand::Export { name, output }) => {
            let output = output.unwrap_or_else(|| PathBuf::from(format!("{name}.zip")));
            let result: ExportResult = client
                .post(
                    &format!("/api/projects/{}/export", project_path(&name)?),
                    &ExportRequest {
                        output: absolute(&output)?,
                    },
                )
                .await?;
            println!(
                "Exported {name} to {} ({} bytes)",
                result.path, result.bytes
            );
            Ok(())
        }
        Command::Project(ProjectCommand::Import { file, name }) => {
            let p: ProjectSummary = client
                .post(
                    "/api/import",
                    &ImportRequest {
                        path: absolute(&file)?,
                        name,
                    },
                )
                .await?;
            println!(
                "Imported project {} ({}): {} commits, {} activity entries",
                p.name, p.id, p.commits, p.entries
            );
            Ok(())
        }
        Command::Add {
            project,
            section,
            paths,
        } => {
            let section: Section = section.parse().map_err(anyhow::Error::msg)?;
            let paths = paths
                .iter()
                .map(|p| absolute(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let result: SweepResult = client
                .post(
                    &format!("/api/projects/{}/files", project_path(&project)?),
                    &AddFiles { section, paths },
                )
                .await?;
            print_sweep(&result);
            Ok(())
        }
        Command::Files { project, json } => {
            let detail: ProjectDetail = client
                .get(&format!("/api/projects/{}", project_path(&project)?))
                .await?;
            if json {
                return print_json(&detail.sections);
            }
            crate::cli::output::print_files(&detail);
            Ok(())
        }
        Command::Fetch {
            project,
            paths,
            json,
        } => {
            let path = format!("/api/projects/{}/fetch", project_path(&project)?);
            let request = FetchRequest { paths };
            let result: FetchResult =
                crate::cli::output::with_progress(client, &project, client.post(&path, &request))
                    .await?;
            if json {
                print_json(&result)?;
            } else {
                crate::cli::output::print_fetch(&result);
            }
            if !result.failed.is_empty() {
                bail!("{} file(s) could not be fetched", result.failed.len());
            }
            Ok(())
        }
        Command::Dataset(command) => run_dataset(client, command).await,
        Command::Bases(args) => crate::cli::env::run_bases(client, args).await,
        Command::Env(command) => crate::cli::env::run_env(client, command).await,
        Command::Build { project, json } => crate::cli::env::run_build(client, project, json).await,
        Command::Launch {
            project,
            tool,
            json,
        } => crate::cli::env::run_launch(client, project, tool, json).await,
        Command::Stop { project } => crate::cli::env::run_stop(client, project).await,
        Command::Ps { json } => crate::cli::env::run_ps(client, json).await,
        Command::Du { json } => {
            let usage: tandem_protocol::api::DiskUsage = client.get("/api/du").await?;
            if json {
                return print_json(&usage);
            }
            crate::cli::output::print_usage(&usage);
            Ok(())
        }
        Command::Evict {
            project,
            paths,
            force,
            json,
        } => {
            let path = format!("/api/projects/{}/evict", project_path(&project)?);
            let result: tandem_protocol::api::EvictResult = client
                .post(&path, &tandem_protocol::api::EvictRequest { paths, force })
                .await?;
            if json {
                return print_json(&result);
            }
            crate::cli::output::print_evict(&result);
            Ok(())
        }
        Command::Sweep { project } => {
            let result: SweepResult = client
                .post(
                    &format!("/api/projects/{}/sweep", project_path(&project)?),
                    &serde_json::json!({}),
                )
                .await?;
            print_sweep(&result);
            Ok(())
        }
        Command::Activity(args) => {
            let query = ActivityQuery {
                kind: args.kind,
                author: args.author,
                path: args.path,
                search: args.search,
                since: args.since,
                limit: Some(args.limit),
            };
            let qs = query_string(&[
                ("kind", query.kind.clone()),
                ("author", query.author.clone()),
                ("path", query.path.clone()),
                ("search", query.search.clone()),
                ("since", query.since.clone()),
                ("limit", query.limit.map(|l| l.to_string())),
            ]);
            let entries: Vec<EntryView> = client
                .get(&format!(
                    "/api/projects/{}/activity{qs}",
                    project_path(&args.project)?
                ))
                .await?;
            if args.json {
                return print_json(&entries);
            }
            if entries.is_empty() {
                println!("No matching activity.");
            }
            for entry in &entries {
                print_entry(entry);
            }
            Ok(())
        }
        Command::Peers { own, json } => {
            if own {
                let me: serde_json::Value = client.get("/api/peers/self").await?;
                if json {
                    return print_json(&me);
                }
                println!("Give a colleague one of these addresses (`tandem peer add ADDRESS`):");
                for a in me["addresses"].as_array().into_iter().flatten() {
                    println!("  {}", a.as_str().unwrap_or_default());
                }
                println!("Your key: {}", me["did"].as_str().unwrap_or_default());
                return Ok(());
            }
            let peers: Vec<crate::p2p::swarm::PeerInfo> = client.get("/api/peers").await?;
            if json {
                return print_json(&peers);
            }
            if peers.is_empty() {
                println!(
                    "No peers yet. On a LAN they appear by themselves; otherwise `tandem peer add ADDRESS`."
                );
            }
            for p in &peers {
                let state = if p.connected {
                    "connected".to_owned()
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
        Command::Peer(PeerCommand::Add { address }) => {
            let answer: serde_json::Value = client
                .post("/api/peers", &serde_json::json!({ "address": address }))
                .await?;
            println!(
                "Connected to {}",
                answer["connected"].as_str().unwrap_or_default()
            );
            Ok(())
        }
        Command::Project(ProjectCommand::Offers { json }) => {
            let offers: Vec<crate::sync::replicate::PeerOffer> = client.get("/api/offers").await?;
            if json {
                return print_json(&offers);
            }
            if offers.is_empty() {
                println!("No connected peer shares a project with you.");
            }
            for o in &offers {
                let role = o
                    .offer
                    .role
                    .map(|r| r.as_str())
                    .unwrap_or("reader (public)");
                let here = if o.have_locally {
                    " (already here)"
                } else {
                    ""
                };
                println!(
                    "{:<24} {} as {role}, offered by {}{here}",
                    o.offer.name,
                    o.offer.project,
                    o.peer_name.clone().unwrap_or_else(|| o.peer.clone())
                );
            }
            Ok(())
        }
        Command::Project(ProjectCommand::Clone {
            project,
            name,
            no_data,
        }) => {
            let p: ProjectSummary = client
                .post(
                    "/api/clone",
                    &serde_json::json!({ "project": project, "name": name, "no_data": no_data }),
                )
                .await?;
            println!(
                "Cloned {} ({}): {} commits, {} activity entries",
                p.name, p.id, p.commits, p.entries
            );
            println!("  folder: {}", p.path);
            Ok(())
        }
        Command::Sync {
            project,
            resolve,
            abort,
            auto,
        } => {
            if let Some(auto) = auto {
                let enabled = match auto.as_str() {
                    "on" => true,
                    "off" => false,
                    other => bail!("--auto takes on or off, not {other:?}"),
                };
                let path = format!("/api/projects/{}/sync", project_path(&project)?);
                let answer: serde_json::Value = client
                    .post(&path, &serde_json::json!({ "auto": enabled }))
                    .await?;
                println!("{}", answer["message"].as_str().unwrap_or_default());
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
                let answer: serde_json::Value = client
                    .post(&path, &serde_json::json!({ "resolve": how }))
                    .await?;
                println!("{}", answer["message"].as_str().unwrap_or_default());
                return Ok(());
            }
            let summary: crate::sync::replicate::SyncSummary =
                client.post(&path, &serde_json::json!({})).await?;
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
                std::process::exit(3);
            }
            Ok(())
        }
        Command::Share {
            project,
            peer,
            role,
            expires,
        } => {
            let entry: EntryView = client
                .post(
                    &format!("/api/projects/{}/members", project_path(&project)?),
                    &ShareRequest {
                        peer,
                        role,
                        expires,
                    },
                )
                .await?;
            println!("{}", entry.entry.message);
            Ok(())
        }
        Command::Revoke { project, peer } => {
            let entry: EntryView = client
                .delete(&format!(
                    "/api/projects/{}/members/{}",
                    project_path(&project)?,
                    segment(&peer)
                ))
                .await?;
            println!("{}", entry.entry.message);
            Ok(())
        }
        Command::Members { project, json } => {
            let view: MembersView = client
                .get(&format!(
                    "/api/projects/{}/members",
                    project_path(&project)?
                ))
                .await?;
            if json {
                return print_json(&view);
            }
            println!(
                "{} ({})",
                project,
                if view.public {
                    "public: anyone may read"
                } else {
                    "private: members only"
                }
            );
            for m in &view.members {
                let name = m.name.clone().unwrap_or_else(|| "(name unknown)".into());
                let by = m
                    .granted_by_name
                    .clone()
                    .unwrap_or_else(|| m.granted_by.clone());
                let expires = m
                    .expires_ms
                    .map(|e| format!(", expires {}", time(e)))
                    .unwrap_or_default();
                println!("{:<7} {:<20} {}", m.role.as_str(), name, m.did);
                if m.role != Role::Owner {
                    println!("        granted by {by} on {}{expires}", time(m.since_ms));
                }
            }
            Ok(())
        }
        Command::Visibility { project, setting } => {
            let public = match setting.as_str() {
                "public" => true,
                "private" => false,
                other => bail!("unknown visibility {other:?}: use public or private"),
            };
            let entry: EntryView = client
                .put(
                    &format!("/api/projects/{}/visibility", project_path(&project)?),
                    &VisibilityRequest { public },
                )
                .await?;
            println!("{}", entry.entry.message);
            Ok(())
        }
        Command::Note {
            project,
            text,
            tags,
        } => {
            let entry: EntryView = client
                .post(
                    &format!("/api/projects/{}/notes", project_path(&project)?),
                    &NoteRequest { text, tags },
                )
                .await?;
            print_entry(&entry);
            Ok(())
        }
    }
}

fn unreachable_command() -> anyhow::Result<()> {
    bail!("this command is handled before connecting to the node")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("a b/../c"), "a%20b%2F..%2Fc");
        assert_eq!(segment("ok-name_1.2"), "ok-name_1.2");
        assert_eq!(
            query_string(&[("a", Some("x y".into())), ("b", None)]),
            "?a=x%20y"
        );
    }
}
