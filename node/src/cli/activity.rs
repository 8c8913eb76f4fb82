//! A project's activity: `tandem activity` (the feed, filtered) and
//! `tandem note`.

use clap::Args;
use tandem_protocol::api::{ActivityQuery, EntryView, NoteRequest};

use crate::cli::client::Client;
use crate::cli::output::{print_json, time};
use crate::cli::request::{project_path, query_string};

#[derive(Args, Debug)]
pub struct ActivityArgs {
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

#[derive(Args, Debug)]
pub struct NoteArgs {
    project: String,
    text: String,
    /// A tag (repeatable)
    #[arg(long = "tag")]
    tags: Vec<String>,
}

pub async fn activity(client: &Client, args: ActivityArgs) -> anyhow::Result<()> {
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

pub async fn note(client: &Client, args: NoteArgs) -> anyhow::Result<()> {
    let entry: EntryView = client
        .post(
            &format!("/api/projects/{}/notes", project_path(&args.project)?),
            &NoteRequest {
                text: args.text,
                tags: args.tags,
            },
        )
        .await?;
    print_entry(&entry);
    Ok(())
}

/// One entry on one line (more for a message of several lines): time,
/// kind, author, message, tags and commit.
fn print_entry(entry: &EntryView) {
    let e = &entry.entry;
    // By characters: an entry from a peer may carry any text here, and a
    // byte slice could cut one in half.
    let commit = e
        .commit
        .as_deref()
        .map(|c| format!(" [{}]", c.chars().take(8).collect::<String>()))
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
