//! CLI commands for environments: bases, `env …`, build, launch, stop, ps.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use tandem_protocol::api::{
    AcceptSnippet, AddPackages, BaseView, BootstrapResult, BuildProgress, BuildResult,
    ContainerView, Empty, EnvChange, EnvView, ImportRequirements, LaunchRequest, LimitsRequest,
    OutdatedPackage, SnippetRequest,
};

mod drift;

use crate::cli::client::{Client, ClientError};
use crate::cli::output::print_json;
use crate::cli::request::{project_path, segment};

#[derive(Args, Debug)]
pub struct BasesArgs {
    #[command(subcommand)]
    pub action: Option<BasesCommand>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum BasesCommand {
    /// Build debian:bookworm-slim from Debian's packages (debootstrap, then
    /// docker import) for machines that reach no container registry
    Bootstrap,
}

#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// Show a project's base, pinned packages, snippets and image
    Show {
        project: String,
        /// Also print the generated Dockerfile
        #[arg(long)]
        dockerfile: bool,
        #[arg(long)]
        json: bool,
    },
    /// Pin packages (newest version unless given: pip NAME==VERSION, apt NAME=VERSION)
    Add {
        project: String,
        /// pip or apt
        manager: String,
        #[arg(required = true)]
        packages: Vec<String>,
    },
    /// Unpin packages
    Remove {
        project: String,
        /// pip or apt
        manager: String,
        #[arg(required = true)]
        packages: Vec<String>,
    },
    /// Pin every package of a pip requirements.txt
    Import { project: String, file: PathBuf },
    /// Custom Dockerfile lines (RUN, ENV, …) applied after the packages
    #[command(subcommand)]
    Snippet(SnippetCommand),
    /// Show or set the container's memory and process limits (a tracked
    /// file: every member's containers get them)
    Limits {
        project: String,
        /// Memory, swap included: e.g. 4GiB or 512MiB [default: half the engine's memory]
        #[arg(long)]
        memory: Option<String>,
        /// Processes and threads [default: 4096]
        #[arg(long)]
        pids: Option<u32>,
        /// Back to the defaults (then --memory and --pids, if given)
        #[arg(long)]
        reset: bool,
    },
    /// List pinned packages that have newer versions
    Outdated {
        project: String,
        #[arg(long)]
        json: bool,
    },
    /// Packages installed, removed or changed in the running container
    /// that the environment does not have; pin or ignore them
    Drift(drift::DriftArgs),
}

#[derive(Subcommand, Debug)]
pub enum SnippetCommand {
    /// Add or replace a snippet from a file of Dockerfile lines
    Add {
        project: String,
        file: PathBuf,
        /// Snippet name [default: the file's name without extension]
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a snippet
    Remove { project: String, name: String },
    /// Accept snippets someone else wrote, after reading their lines (a
    /// snippet from a peer is not built until you do)
    Accept {
        project: String,
        #[arg(required = true)]
        names: Vec<String>,
    },
}

pub async fn run_bases(client: &Client, args: BasesArgs) -> anyhow::Result<()> {
    if let Some(BasesCommand::Bootstrap) = args.action {
        eprintln!("Building debian:bookworm-slim from Debian's packages (a minute or two)…");
        let out: BootstrapResult = client.post("/api/bases/bootstrap", &Empty {}).await?;
        print!("{}", out.output);
        return Ok(());
    }
    let bases: Vec<BaseView> = client.get("/api/bases").await?;
    if args.json {
        return print_json(&bases);
    }
    for base in bases {
        let here = match base.image_here {
            Some(true) => "built here",
            Some(false) => "not built yet",
            None => "Docker not reachable",
        };
        println!(
            "{}  (r{}, ~{} MB, {here})",
            base.id, base.revision, base.size_mb
        );
        println!("  {}: {}", base.name, base.description);
        println!(
            "  languages: {}; tools: {}; package managers: {}",
            base.languages.join(", "),
            base.tools.join(", "),
            base.package_managers.join(", ")
        );
        let packages: Vec<String> = base
            .packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect();
        if !packages.is_empty() {
            println!("  includes: {}", packages.join(", "));
        }
        if base.gpu_required {
            println!(
                "  needs an NVIDIA GPU{}",
                base.gpu_note.map(|n| format!(": {n}")).unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn print_change(change: &EnvChange) {
    println!("{}", change.message);
    if let Some(commit) = &change.commit {
        println!("  commit {}", &commit[..commit.len().min(10)]);
    }
    println!("  run `tandem build` or `tandem launch` to use it");
}

pub async fn run_env(client: &Client, command: EnvCommand) -> anyhow::Result<()> {
    match command {
        EnvCommand::Show {
            project,
            dockerfile,
            json,
        } => {
            let env: EnvView = client
                .get(&format!("/api/projects/{}/env", project_path(&project)?))
                .await?;
            if json {
                return print_json(&env);
            }
            println!(
                "Base: {} r{} ({})",
                env.base.id, env.base.revision, env.base.name
            );
            if env.packages.is_empty() {
                println!("Packages: none pinned beyond the base");
            } else {
                println!("Packages:");
                for p in &env.packages {
                    println!("  {:<4} {:<30} {}", p.manager, p.name, p.version);
                }
            }
            for s in &env.snippets {
                if s.accepted {
                    println!("Snippet {}:", s.name);
                } else {
                    println!(
                        "Snippet {} (from someone else, not accepted: not built until you run \
                         `tandem env snippet accept {project} {}`):",
                        s.name, s.name
                    );
                }
                for line in s.lines.lines() {
                    println!("  {line}");
                }
            }
            println!(
                "Limits: memory {}, processes {}",
                env.limits
                    .memory
                    .as_deref()
                    .unwrap_or("default (half the engine's)"),
                env.limits
                    .pids
                    .map_or_else(|| "default (4096)".to_owned(), |p| p.to_string())
            );
            match (&env.docker, &env.image) {
                (Some(problem), _) => println!("Image: unknown ({problem})"),
                (None, Some(image)) if env.built => println!("Image: {image} (built)"),
                (None, Some(image)) => println!("Image: {image} (not built yet)"),
                (None, None) => println!("Image: not built yet (the base is not built either)"),
            }
            if dockerfile {
                println!("\n{}", env.dockerfile);
            }
            Ok(())
        }
        EnvCommand::Add {
            project,
            manager,
            packages,
        } => {
            let url = format!("/api/projects/{}/env/packages", project_path(&project)?);
            eprintln!("Looking up {manager} versions inside the base…");
            let change: EnvChange = with_build_progress(
                client,
                &project,
                client.post(&url, &AddPackages { manager, packages }),
            )
            .await?;
            print_change(&change);
            Ok(())
        }
        EnvCommand::Remove {
            project,
            manager,
            packages,
        } => {
            let mut last = None;
            for package in packages {
                let url = format!(
                    "/api/projects/{}/env/packages/{}/{}",
                    project_path(&project)?,
                    segment(&manager),
                    segment(&package)
                );
                last = Some(client.delete::<EnvChange>(&url).await?);
            }
            if let Some(change) = last {
                print_change(&change);
            }
            Ok(())
        }
        EnvCommand::Import { project, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let url = format!("/api/projects/{}/env/import", project_path(&project)?);
            eprintln!("Looking up pip versions inside the base…");
            let change: EnvChange = with_build_progress(
                client,
                &project,
                client.post(&url, &ImportRequirements { text }),
            )
            .await?;
            print_change(&change);
            Ok(())
        }
        EnvCommand::Snippet(SnippetCommand::Add {
            project,
            file,
            name,
        }) => {
            let lines = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let name = match name {
                Some(name) => name,
                None => file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .context("name the snippet with --name")?,
            };
            let url = format!("/api/projects/{}/env/snippets", project_path(&project)?);
            let change: EnvChange = client.post(&url, &SnippetRequest { name, lines }).await?;
            print_change(&change);
            Ok(())
        }
        EnvCommand::Snippet(SnippetCommand::Remove { project, name }) => {
            let url = format!(
                "/api/projects/{}/env/snippets/{}",
                project_path(&project)?,
                segment(&name)
            );
            let change: EnvChange = client.delete(&url).await?;
            print_change(&change);
            Ok(())
        }
        EnvCommand::Snippet(SnippetCommand::Accept { project, names }) => {
            let env: EnvView = client
                .get(&format!("/api/projects/{}/env", project_path(&project)?))
                .await?;
            for name in names {
                let snippet = env
                    .snippets
                    .iter()
                    .find(|s| s.name == name)
                    .with_context(|| format!("{project} has no snippet named {name:?}"))?;
                // What is accepted is what is printed here: the node
                // refuses if the lines changed in between.
                println!("Snippet {name}:");
                for line in snippet.lines.lines() {
                    println!("  {line}");
                }
                let url = format!(
                    "/api/projects/{}/env/snippets/{}/accept",
                    project_path(&project)?,
                    segment(&name)
                );
                let change: EnvChange = client
                    .post(
                        &url,
                        &AcceptSnippet {
                            hash: snippet.hash.clone(),
                        },
                    )
                    .await?;
                println!("{}", change.message);
            }
            Ok(())
        }
        EnvCommand::Limits {
            project,
            memory,
            pids,
            reset,
        } => {
            if memory.is_none() && pids.is_none() && !reset {
                let env: EnvView = client
                    .get(&format!("/api/projects/{}/env", project_path(&project)?))
                    .await?;
                println!(
                    "memory: {}",
                    env.limits
                        .memory
                        .as_deref()
                        .unwrap_or("default (half the engine's)")
                );
                println!(
                    "processes: {}",
                    env.limits
                        .pids
                        .map_or_else(|| "default (4096)".to_owned(), |p| p.to_string())
                );
                return Ok(());
            }
            let url = format!("/api/projects/{}/env/limits", project_path(&project)?);
            let change: EnvChange = client
                .post(
                    &url,
                    &LimitsRequest {
                        memory,
                        pids,
                        reset,
                    },
                )
                .await?;
            println!("{}", change.message);
            if let Some(commit) = &change.commit {
                println!("  commit {}", &commit[..commit.len().min(10)]);
            }
            println!("  a running JupyterLab gets them at the next `tandem launch`");
            Ok(())
        }
        EnvCommand::Drift(args) => drift::run_drift(client, args).await,
        EnvCommand::Outdated { project, json } => {
            let url = format!("/api/projects/{}/env/outdated", project_path(&project)?);
            let outdated: Vec<OutdatedPackage> = client.get(&url).await?;
            if json {
                return print_json(&outdated);
            }
            if outdated.is_empty() {
                println!("Every pinned package is at its newest version.");
            }
            for p in outdated {
                println!(
                    "{:<4} {:<30} {} → {}",
                    p.manager, p.name, p.pinned, p.newest
                );
            }
            Ok(())
        }
    }
}

pub async fn run_build(client: &Client, project: String, json: bool) -> anyhow::Result<()> {
    let url = format!("/api/projects/{}/build", project_path(&project)?);
    let result: BuildResult =
        with_build_progress(client, &project, client.post(&url, &Empty {})).await?;
    if json {
        return print_json(&result);
    }
    for base in &result.bases_built {
        println!("Built base {base}");
    }
    if result.rebuilt {
        println!(
            "Built {} in {:.1}s ({} of {} steps from cache)",
            result.image, result.seconds, result.cached_steps, result.steps
        );
    } else {
        println!("{} is up to date ({:.2}s)", result.image, result.seconds);
    }
    Ok(())
}

pub async fn run_launch(
    client: &Client,
    project: String,
    tool: Option<String>,
    at: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let url = format!("/api/projects/{}/launch", project_path(&project)?);
    let request = LaunchRequest { tool, at };
    let view: ContainerView =
        with_build_progress(client, &project, client.post(&url, &request)).await?;
    if json {
        return print_json(&view);
    }
    if let Some(version) = &view.version {
        println!(
            "JupyterLab is running for {} at version {} (read-only; cells run there are not recorded):",
            view.project,
            &version[..version.len().min(7)]
        );
        println!("  {}", view.url);
        return Ok(());
    }
    if view.started_now {
        println!("JupyterLab is running for {}:", view.project);
    } else {
        println!("JupyterLab was already running for {}:", view.project);
    }
    println!("  {}", view.url);
    if !client.is_remote() {
        println!(
            "Cells are recorded in the activity feed while `tandem up` runs; start it to record them."
        );
    }
    Ok(())
}

pub async fn run_stop(client: &Client, project: String) -> anyhow::Result<()> {
    let url = format!("/api/projects/{}/stop", project_path(&project)?);
    let stopped: Vec<ContainerView> = client.post(&url, &Empty {}).await?;
    for view in stopped {
        println!(
            "Stopped JupyterLab for {} ({})",
            view.project,
            &view.container[..12.min(view.container.len())]
        );
    }
    Ok(())
}

pub async fn run_ps(client: &Client, json: bool) -> anyhow::Result<()> {
    let running: Vec<ContainerView> = client.get("/api/containers").await?;
    if json {
        return print_json(&running);
    }
    if running.is_empty() {
        println!("Nothing is running.");
    }
    for view in running {
        let since = chrono::DateTime::from_timestamp_millis(view.started_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        println!(
            "{:<20} {}  since {since}  {} kernel(s) recorded",
            view.project, view.url, view.kernels_followed
        );
    }
    Ok(())
}

/// Runs `request`, drawing the node's build progress on a terminal.
async fn with_build_progress<T>(
    client: &Client,
    project: &str,
    request: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    let mut stderr = std::io::stderr();
    let terminal = stderr.is_terminal();
    let mut request = std::pin::pin!(request);
    let mut last_image = String::new();
    let mut drawn = false;
    loop {
        tokio::select! {
            result = &mut request => {
                if drawn && terminal {
                    let _ = write!(stderr, "\r\x1b[2K");
                }
                return result;
            }
            () = tokio::time::sleep(Duration::from_millis(300)) => {
                let Ok(builds) = client.get::<Vec<BuildProgress>>("/api/builds").await else {
                    continue;
                };
                let Some(build) = builds.into_iter().find(|b| b.project == project) else {
                    continue;
                };
                if build.image != last_image && !build.image.is_empty() {
                    if drawn && terminal {
                        let _ = write!(stderr, "\r\x1b[2K");
                    }
                    let _ = writeln!(stderr, "Building {}", build.image);
                    last_image = build.image.clone();
                }
                if terminal {
                    let _ = write!(stderr, "\r\x1b[2K{}", progress_line(&build));
                    let _ = stderr.flush();
                    drawn = true;
                }
            }
        }
    }
}

fn progress_line(build: &BuildProgress) -> String {
    let width = 24usize;
    let filled = if build.total == 0 {
        0
    } else {
        (build.step as usize * width / build.total as usize).min(width)
    };
    let mut line: String = build.line.chars().take(60).collect();
    if line.len() < build.line.len() {
        line.push('…');
    }
    format!(
        "[{}{}] step {}/{}  {line}",
        "#".repeat(filled),
        " ".repeat(width - filled),
        build.step,
        build.total
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_bar_fills_with_the_steps() {
        let mut build = BuildProgress {
            project: "p".into(),
            image: "i".into(),
            step: 3,
            total: 6,
            cached_steps: 1,
            line: "Step 3/6 : RUN pip install numpy==2.4.6".into(),
            started_ms: 0,
        };
        assert!(progress_line(&build).starts_with("[############            ] step 3/6"));
        build.total = 0;
        assert!(progress_line(&build).starts_with("[                        ] step 3/0"));
    }
}
