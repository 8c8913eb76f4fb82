//! `tandem dataset …`: versioned datasets, created, filled, listed, shown
//! and linked into projects.

use std::path::PathBuf;

use clap::Subcommand;
use tandem_protocol::api::{
    AddToDataset, CreateDataset, DatasetDetail, DatasetSummary, LinkRequest, VersionSummary,
};
use tandem_protocol::dataset::Link;
use tandem_protocol::text::byte_size;

use crate::cli::client::Client;
use crate::cli::output::print_json;
use crate::cli::request::{absolute_all, project_path, query_string};

#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
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

pub async fn run(client: &Client, command: DatasetCommand) -> anyhow::Result<()> {
    match command {
        DatasetCommand::Create { name, description } => {
            let d: DatasetSummary = client
                .post("/api/datasets", &CreateDataset { name, description })
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
            let paths = absolute_all(&paths)?;
            let v: VersionSummary = client
                .post(
                    &format!("/api/datasets/{}/files", project_path(&dataset)?),
                    &AddToDataset { paths, message },
                )
                .await?;
            println!(
                "{dataset} version {}: {} files, {}",
                v.number,
                v.files,
                byte_size(v.bytes)
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
                        byte_size(v.bytes)
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
            let qs = query_string(&[("version", version.map(|v| v.to_string()))]);
            let detail: DatasetDetail = client
                .get(&format!("/api/datasets/{}{qs}", project_path(&dataset)?))
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
                    byte_size(f.size),
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
                    byte_size(v.bytes),
                    v.message
                );
            }
            Ok(())
        }
        DatasetCommand::Link { project, dataset } => {
            let link: Link = client
                .post(
                    &format!("/api/projects/{}/datasets", project_path(&project)?),
                    &LinkRequest { dataset },
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
