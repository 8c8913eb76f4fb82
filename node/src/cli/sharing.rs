//! Who may read and write a project: `tandem share`, `revoke`, `members`
//! and `visibility`.

use anyhow::bail;
use clap::Args;
use tandem_protocol::access::Role;
use tandem_protocol::api::{EntryView, MembersView, ShareRequest, VisibilityRequest};

use crate::cli::client::Client;
use crate::cli::output::{print_json, time};
use crate::cli::request::{project_path, segment};

#[derive(Args, Debug)]
pub struct ShareArgs {
    project: String,
    /// Their key: a did:key (from `tandem id`) or a libp2p PeerId
    peer: String,
    /// reader, writer or admin
    #[arg(long)]
    role: String,
    /// YYYY-MM-DD or an RFC 3339 time after which the grant stops counting
    #[arg(long)]
    expires: Option<String>,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    project: String,
    peer: String,
}

#[derive(Args, Debug)]
pub struct MembersArgs {
    project: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct VisibilityArgs {
    project: String,
    /// public or private
    setting: String,
}

pub async fn share(client: &Client, args: ShareArgs) -> anyhow::Result<()> {
    let entry: EntryView = client
        .post(
            &format!("/api/projects/{}/members", project_path(&args.project)?),
            &ShareRequest {
                peer: args.peer,
                role: args.role,
                expires: args.expires,
            },
        )
        .await?;
    println!("{}", entry.entry.message);
    Ok(())
}

pub async fn revoke(client: &Client, args: RevokeArgs) -> anyhow::Result<()> {
    let entry: EntryView = client
        .delete(&format!(
            "/api/projects/{}/members/{}",
            project_path(&args.project)?,
            segment(&args.peer)
        ))
        .await?;
    println!("{}", entry.entry.message);
    Ok(())
}

pub async fn members(client: &Client, args: MembersArgs) -> anyhow::Result<()> {
    let view: MembersView = client
        .get(&format!(
            "/api/projects/{}/members",
            project_path(&args.project)?
        ))
        .await?;
    if args.json {
        return print_json(&view);
    }
    println!(
        "{} ({})",
        args.project,
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

pub async fn visibility(client: &Client, args: VisibilityArgs) -> anyhow::Result<()> {
    let public = match args.setting.as_str() {
        "public" => true,
        "private" => false,
        other => bail!("unknown visibility {other:?}: use public or private"),
    };
    let entry: EntryView = client
        .put(
            &format!("/api/projects/{}/visibility", project_path(&args.project)?),
            &VisibilityRequest { public },
        )
        .await?;
    println!("{}", entry.entry.message);
    Ok(())
}
