//! `tandem project …`: create, list, show, delete, export and import
//! projects, and see and clone the ones peers share.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::bail;
use clap::Subcommand;
use tandem_protocol::api::{
    CloneRequest, CreateProject, Deleted, ExportRequest, ExportResult, ImportRequest, PeerOffer,
    ProjectDetail, ProjectSummary,
};

use crate::cli::client::Client;
use crate::cli::output::{print_json, time};
use crate::cli::request::{absolute, project_path};

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
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

pub async fn run(client: &Client, command: ProjectCommand) -> anyhow::Result<()> {
    match command {
        ProjectCommand::Create {
            name,
            description,
            base,
        } => {
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
        ProjectCommand::List { json } => {
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
        ProjectCommand::Show { name, json } => {
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
        ProjectCommand::Delete { name, yes } => {
            if !yes && !confirm_delete(&name)? {
                println!("Not deleted.");
                return Ok(());
            }
            let _: Deleted = client
                .delete(&format!("/api/projects/{}", project_path(&name)?))
                .await?;
            println!("Deleted project {name}");
            Ok(())
        }
        ProjectCommand::Export { name, output } => {
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
        ProjectCommand::Import { file, name } => {
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
        ProjectCommand::Offers { json } => {
            let offers: Vec<PeerOffer> = client.get("/api/offers").await?;
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
        ProjectCommand::Clone {
            project,
            name,
            no_data,
        } => {
            let p: ProjectSummary = client
                .post(
                    "/api/clone",
                    &CloneRequest {
                        name,
                        no_data,
                        project,
                    },
                )
                .await?;
            println!(
                "Cloned {} ({}): {} commits, {} activity entries",
                p.name, p.id, p.commits, p.entries
            );
            println!("  folder: {}", p.path);
            Ok(())
        }
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
