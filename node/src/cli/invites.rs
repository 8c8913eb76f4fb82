//! Invite links: `tandem invite` (make, list, revoke) and `tandem join`.

use anyhow::bail;
use clap::Args;
use tandem_protocol::api::{
    CreateInvite, Deleted, InviteCreated, InviteView, JoinRequest, ProjectSummary,
};

use crate::cli::client::Client;
use crate::cli::output::{print_json, time};
use crate::cli::request::{project_path, segment};

#[derive(Args, Debug)]
pub struct InviteArgs {
    project: String,
    /// The role the person gets: reader, writer or admin
    #[arg(long, required_unless_present_any = ["list", "revoke"])]
    role: Option<String>,
    /// When the ticket stops working: YYYY-MM-DD (through that day, UTC),
    /// YYYY-MM-DDTHH:MMZ, or a span like 3d or 12h [default: 7 days; at
    /// most 90]
    #[arg(long)]
    expires: Option<String>,
    /// List the project's invites (never their secrets)
    #[arg(long, conflicts_with_all = ["role", "expires", "revoke"])]
    list: bool,
    /// Make an unused invite stop working, by the id `--list` shows
    #[arg(long, value_name = "ID", conflicts_with_all = ["role", "expires"])]
    revoke: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct JoinArgs {
    /// The `tandem:` ticket an owner or admin gave you
    ticket: String,
    /// A local name other than the project's own
    #[arg(long = "as", value_name = "NAME")]
    name: Option<String>,
    /// Leave large files on peers until `tandem fetch` asks for them
    #[arg(long)]
    no_data: bool,
    #[arg(long)]
    json: bool,
}

pub async fn invite(client: &Client, args: InviteArgs) -> anyhow::Result<()> {
    let path = format!("/api/projects/{}/invites", project_path(&args.project)?);
    if args.list {
        let invites: Vec<InviteView> = client.get(&path).await?;
        if args.json {
            return print_json(&invites);
        }
        if invites.is_empty() {
            println!("No invites for {}.", args.project);
        }
        for i in &invites {
            let state = match (&i.used_by, i.used_ms) {
                (Some(by), Some(at)) => format!("used by {by} on {}", time(at)),
                _ => format!("until {}", time(i.expires_ms)),
            };
            println!(
                "{}  {:<6}  made {}, {state}",
                i.id,
                i.role.as_str(),
                time(i.created_ms)
            );
        }
        return Ok(());
    }
    if let Some(id) = args.revoke {
        let _: Deleted = client.delete(&format!("{path}/{}", segment(&id))).await?;
        println!("Invite {id} no longer works.");
        return Ok(());
    }
    let Some(role) = args.role else {
        bail!("say which role the invite gives: --role reader|writer|admin");
    };
    let created: InviteCreated = client
        .post(
            &path,
            &CreateInvite {
                role,
                expires: args.expires,
            },
        )
        .await?;
    if args.json {
        return print_json(&created);
    }
    println!(
        "Invite to {} as {}, for one person, until {}:",
        args.project, created.role, created.expires
    );
    println!();
    println!("  {}", created.ticket);
    println!();
    println!(
        "They run `tandem join TICKET` (or paste it on their Projects page) while your node is running."
    );
    println!(
        "Invite id {} (`tandem invite {} --revoke {}`).",
        created.id, args.project, created.id
    );
    Ok(())
}

pub async fn join(client: &Client, args: JoinArgs) -> anyhow::Result<()> {
    let summary: ProjectSummary = client
        .post(
            "/api/join",
            &JoinRequest {
                ticket: args.ticket,
                name: args.name,
                no_data: args.no_data,
            },
        )
        .await?;
    if args.json {
        return print_json(&summary);
    }
    let role = summary
        .role
        .map(|r| r.to_string())
        .unwrap_or_else(|| "no role yet".into());
    println!(
        "Joined {} as {role}: cloned into {}",
        summary.name, summary.path
    );
    for problem in &summary.problems {
        println!("  {problem}");
    }
    Ok(())
}
