//! `tandem env drift NAME`: what the running container has that the
//! environment does not, and the user's **Pin it** / **Ignore**.

use clap::Args;
use tandem_protocol::api::{DriftChoice, DriftItem, DriftOutcome, DriftReport, DriftRequest};

use crate::cli::client::Client;
use crate::cli::output::print_json;
use crate::cli::request::project_path;

#[derive(Args, Debug)]
pub struct DriftArgs {
    pub project: String,
    /// Pin the version the container has (`name` or `pip:name`,
    /// `apt:name`); repeat for more
    #[arg(long, value_name = "PACKAGE")]
    pub pin: Vec<String>,
    /// Stop reporting this package at this version; repeat for more
    #[arg(long, value_name = "PACKAGE", conflicts_with = "pin")]
    pub ignore: Vec<String>,
    /// Pin every drifted package that has a version to pin (the others
    /// stay listed)
    #[arg(long, conflicts_with_all = ["pin", "ignore", "ignore_all"])]
    pub pin_all: bool,
    /// Ignore every drifted package
    #[arg(long, conflicts_with_all = ["pin", "ignore", "pin_all"])]
    pub ignore_all: bool,
    #[arg(long)]
    pub json: bool,
}

pub async fn run_drift(client: &Client, args: DriftArgs) -> anyhow::Result<()> {
    let url = format!("/api/projects/{}/env/drift", project_path(&args.project)?);
    let request = if args.pin_all || !args.pin.is_empty() {
        Some(DriftRequest {
            choice: DriftChoice::Pin,
            packages: args.pin,
            all: args.pin_all,
        })
    } else if args.ignore_all || !args.ignore.is_empty() {
        Some(DriftRequest {
            choice: DriftChoice::Ignore,
            packages: args.ignore,
            all: args.ignore_all,
        })
    } else {
        None
    };
    let Some(request) = request else {
        let report: DriftReport = client.get(&url).await?;
        if args.json {
            return print_json(&report);
        }
        print_report(&report);
        return Ok(());
    };
    let outcome: DriftOutcome = client.post(&url, &request).await?;
    if args.json {
        return print_json(&outcome);
    }
    println!("{}", outcome.message);
    if let Some(commit) = &outcome.commit {
        println!("  commit {}", commit.get(..10).unwrap_or(commit));
        println!("  the next `tandem build` or `tandem launch` includes it");
    }
    Ok(())
}

fn print_report(report: &DriftReport) {
    if let Some(problem) = &report.problem {
        println!("The last check could not be made: {problem}");
    }
    if report.items.is_empty() {
        let watched = if report.watching {
            "its running container matches the environment"
        } else {
            "no drift was seen (drift is checked while the project's JupyterLab runs)"
        };
        println!("{}: {watched}.", report.project);
    } else {
        println!(
            "{} package(s) in {}'s container differ from its environment:",
            report.items.len(),
            report.project
        );
        for item in &report.items {
            println!("  {}{}", item.description, hint(item));
        }
        println!(
            "Pin them with `tandem env drift {0} --pin NAME` (or --pin-all), or leave the environment as it is with --ignore NAME.",
            report.project
        );
    }
    if !report.ignored.is_empty() {
        let names: Vec<String> = report
            .ignored
            .iter()
            .map(|i| format!("{} {}", i.name, i.found.as_deref().unwrap_or("(removed)")))
            .collect();
        println!("Ignored: {}", names.join(", "));
    }
}

/// What Pin it would do for this item, when it is not a plain pin.
fn hint(item: &DriftItem) -> &'static str {
    match item.pin.as_deref() {
        Some("pin") => "",
        Some("unpin") => "  [pin: takes the pin out]",
        _ => "  [came with the image: ignore, or launch again]",
    }
}
