//! A project's files: `tandem add`, `sweep` and `files`, and its large
//! files' bytes: `fetch`, `du` (on a hub, also what it keeps per project
//! against its quota) and `evict`.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use tandem_protocol::api::{
    AddFiles, DiskUsage, DuReport, Empty, EvictRequest, EvictResult, FetchRequest, FetchResult,
    HubView, ProjectDetail, Section, SweepResult,
};
use tandem_protocol::text::byte_size;

use crate::cli::client::{Client, ClientError};
use crate::cli::output::{self, print_json};
use crate::cli::request::{absolute_all, project_path};

#[derive(Args, Debug)]
pub struct AddArgs {
    project: String,
    #[arg(help = Section::names())]
    section: String,
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    project: String,
}

#[derive(Args, Debug)]
pub struct FilesArgs {
    pub project: String,
    /// Show the files of an old version instead: an activity entry id, a
    /// commit, or a date (2026-12-02, 2026-12-02T06:14; UTC)
    #[arg(long, value_name = "VERSION")]
    pub at: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DuArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct EvictArgs {
    project: String,
    /// Files or folders, relative to the project
    paths: Vec<String>,
    /// Drop even if no connected peer confirms it holds a copy
    #[arg(long)]
    force: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    project: String,
    /// Files or folders, relative to the project (e.g. input/raw)
    paths: Vec<String>,
    #[arg(long)]
    json: bool,
}

pub async fn add(client: &Client, args: AddArgs) -> anyhow::Result<()> {
    let section: Section = args.section.parse().map_err(anyhow::Error::msg)?;
    let paths = absolute_all(&args.paths)?;
    let result: SweepResult = client
        .post(
            &format!("/api/projects/{}/files", project_path(&args.project)?),
            &AddFiles { section, paths },
        )
        .await?;
    print_sweep(&result);
    Ok(())
}

pub async fn sweep(client: &Client, args: SweepArgs) -> anyhow::Result<()> {
    let result: SweepResult = client
        .post(
            &format!("/api/projects/{}/sweep", project_path(&args.project)?),
            &Empty {},
        )
        .await?;
    print_sweep(&result);
    Ok(())
}

pub async fn files(client: &Client, args: FilesArgs) -> anyhow::Result<()> {
    let detail: ProjectDetail = client
        .get(&format!("/api/projects/{}", project_path(&args.project)?))
        .await?;
    if args.json {
        return print_json(&detail.sections);
    }
    output::print_files(&detail);
    Ok(())
}

pub async fn fetch(client: &Client, args: FetchArgs) -> anyhow::Result<()> {
    let path = format!("/api/projects/{}/fetch", project_path(&args.project)?);
    let request = FetchRequest { paths: args.paths };
    let result: FetchResult =
        output::with_progress(client, &args.project, client.post(&path, &request)).await?;
    if args.json {
        print_json(&result)?;
    } else {
        output::print_fetch(&result);
    }
    if !result.failed.is_empty() {
        bail!("{} file(s) could not be fetched", result.failed.len());
    }
    Ok(())
}

pub async fn du(client: &Client, args: DuArgs) -> anyhow::Result<()> {
    let usage: DiskUsage = client.get("/api/du").await?;
    let hub = hub_view(client).await?;
    if args.json {
        return print_json(&DuReport { usage, hub });
    }
    output::print_usage(&usage);
    if let Some(hub) = &hub {
        print_hub(hub);
    }
    Ok(())
}

/// On a hub, what it keeps per project against its quota; `None` on a
/// plain node, which answers 404 (as does a node from before hubs).
async fn hub_view(client: &Client) -> anyhow::Result<Option<HubView>> {
    match client.get::<HubView>("/api/hub").await {
        Ok(view) => Ok(Some(view)),
        Err(ClientError::Api { status: 404, .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn print_hub(hub: &HubView) {
    let quota = if hub.quota_bytes == 0 {
        "no limit".to_owned()
    } else {
        byte_size(hub.quota_bytes)
    };
    println!();
    println!("hub: large files kept per project (quota: {quota})");
    if hub.projects.is_empty() {
        println!("  no project yet: one is kept once a member grants this hub the reader role");
    }
    for p in &hub.projects {
        let role = p
            .role
            .map_or_else(|| "revoked".to_owned(), |r| r.to_string());
        println!(
            "{:<24} {:>8} {:>12} of {:>12} needed",
            p.name,
            role,
            byte_size(p.kept_bytes),
            byte_size(p.wanted_bytes)
        );
        if let Some(note) = &p.note {
            println!("  {note}");
        }
    }
}

pub async fn evict(client: &Client, args: EvictArgs) -> anyhow::Result<()> {
    let path = format!("/api/projects/{}/evict", project_path(&args.project)?);
    let request = EvictRequest {
        paths: args.paths,
        force: args.force,
    };
    let result: EvictResult = client.post(&path, &request).await?;
    if args.json {
        return print_json(&result);
    }
    output::print_evict(&result);
    Ok(())
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
