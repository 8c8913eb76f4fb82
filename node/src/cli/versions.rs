//! Any version of a project: `tandem files NAME --at VERSION`, `tandem
//! diff NAME A [B]`, `tandem restore NAME VERSION` (and `launch --at`, in
//! the environment group). VERSION is an activity entry id, a commit (or
//! its first hex digits), a date or time in UTC, or `current`.

use clap::Args;
use tandem_protocol::api::{
    FileDelta, ProjectVersion, RestoreRequest, RestoreResult, VersionDetail, VersionDiff,
};
use tandem_protocol::text::byte_size;

use crate::cli::client::Client;
use crate::cli::output::{print_json, print_sections};
use crate::cli::request::{project_path, query_string, segment};

#[derive(Args, Debug)]
pub struct RestoreArgs {
    project: String,
    /// An activity entry id, a commit, or a date (2026-12-02T06:14, UTC)
    version: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    project: String,
    /// The earlier version
    from: String,
    /// The later version [default: current]
    to: Option<String>,
    /// Only which files changed, not the text diffs
    #[arg(long)]
    stat: bool,
    #[arg(long)]
    json: bool,
}

fn describe(version: &ProjectVersion) -> String {
    let when = chrono::DateTime::from_timestamp_millis(version.time_ms)
        .map(|t| t.format("%-d %b %Y %H:%M UTC").to_string())
        .unwrap_or_default();
    let current = if version.current { ", current" } else { "" };
    format!("{} ({when}{current}): {}", version.short, version.message)
}

pub async fn files_at(
    client: &Client,
    project: &str,
    version: &str,
    json: bool,
) -> anyhow::Result<()> {
    let detail: VersionDetail = client
        .get(&format!(
            "/api/projects/{}/versions/{}",
            project_path(project)?,
            segment(version)
        ))
        .await?;
    if json {
        return print_json(&detail);
    }
    println!("version {}", describe(&detail.version));
    print_sections(&detail.sections);
    let env = &detail.env;
    println!("environment: {} revision {}", env.base, env.revision);
    for package in &env.packages {
        println!("  {} {} {}", package.manager, package.name, package.version);
    }
    for snippet in &env.snippets {
        println!("  snippet {snippet}");
    }
    for link in &detail.datasets {
        println!(
            "dataset {} version {} ({} files, {})",
            link.name,
            link.version,
            link.files,
            byte_size(link.bytes)
        );
    }
    for problem in &detail.unreadable {
        println!("unreadable: {problem}");
    }
    Ok(())
}

pub async fn diff(client: &Client, args: DiffArgs) -> anyhow::Result<()> {
    let query = query_string(&[("from", Some(args.from)), ("to", args.to)]);
    let diff: VersionDiff = client
        .get(&format!(
            "/api/projects/{}/compare{query}",
            project_path(&args.project)?
        ))
        .await?;
    if args.json {
        return print_json(&diff);
    }
    println!("from {}", describe(&diff.from));
    println!("to   {}", describe(&diff.to));
    if let Some((before, after)) = &diff.base {
        println!("base: {before} -> {after}");
    }
    for package in diff.packages.iter().chain(&diff.snippets) {
        let change = match (&package.before, &package.after) {
            (None, Some(after)) => format!("added {after}"),
            (Some(before), None) => format!("removed (was {before})"),
            (Some(before), Some(after)) => format!("{before} -> {after}"),
            (None, None) => continue,
        };
        println!("{} {}: {change}", package.manager, package.name);
    }
    for link in &diff.datasets {
        let version = |v: Option<u32>| v.map_or("none".to_owned(), |v| format!("version {v}"));
        println!(
            "dataset {}: {} -> {}",
            link.name,
            version(link.before),
            version(link.after)
        );
    }
    for file in &diff.files {
        println!("{}", file_line(file));
        if !args.stat
            && let Some(patch) = &file.patch
        {
            print!("{patch}");
            if file.patch_cut {
                println!("(diff cut here)");
            }
        }
        for cell in &file.cells {
            let outputs = cell
                .outputs
                .as_ref()
                .map(|(before, after)| format!("  (outputs: {before} -> {after})"))
                .unwrap_or_default();
            let change = serde_json::to_value(cell.change)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            println!("  cell {} {change}: {}{outputs}", cell.position, cell.label);
            if !args.stat
                && !matches!(
                    cell.change,
                    tandem_protocol::notebook::CellChange::Moved
                        | tandem_protocol::notebook::CellChange::Rerun
                )
            {
                for line in cell.source.lines() {
                    println!("    {line}");
                }
            }
        }
    }
    if diff.files.is_empty() && diff.packages.is_empty() && diff.datasets.is_empty() {
        println!("no differences");
    }
    Ok(())
}

fn file_line(file: &FileDelta) -> String {
    let side = |s: &Option<tandem_protocol::api::FileSide>| {
        s.as_ref().map_or(String::new(), |s| match &s.hash {
            Some(hash) => format!("{} {}", byte_size(s.size), hash.short()),
            None => byte_size(s.size),
        })
    };
    let sizes = match (&file.before, &file.after) {
        (Some(_), Some(_)) => format!("{} -> {}", side(&file.before), side(&file.after)),
        (None, Some(_)) => side(&file.after),
        (Some(_), None) => side(&file.before),
        (None, None) => String::new(),
    };
    let kind = if file.large {
        " large"
    } else if file.binary {
        " binary"
    } else {
        ""
    };
    format!(
        "{:<9}{} {}  ({sizes})",
        file.action.as_str(),
        kind,
        file.path
    )
}

pub async fn restore(client: &Client, args: RestoreArgs) -> anyhow::Result<()> {
    let result: RestoreResult = client
        .post(
            &format!("/api/projects/{}/restore", project_path(&args.project)?),
            &RestoreRequest {
                version: args.version,
            },
        )
        .await?;
    if args.json {
        return print_json(&result);
    }
    println!("{}", result.message);
    if let Some(commit) = &result.commit {
        println!("new version {}", &commit[..commit.len().min(7)]);
    }
    if !result.missing.is_empty() {
        println!(
            "{} large file(s) of that version are not here yet; they are fetched when a member that has them is connected (`tandem fetch {}`):",
            result.missing.len(),
            args.project
        );
        for path in &result.missing {
            println!("  {path}");
        }
    }
    Ok(())
}
