//! The Files page: code, input and output as browsable trees, uploads,
//! downloads, large files fetched on demand, and notebooks rendered.

use std::collections::BTreeMap;

use maud::{Markup, html};
use tandem_protocol::api::{
    DataState, DatasetSummary, FetchRequest, FileInfo, ProjectDetail, Section,
};

use crate::layout::{Tab, body, encode, project_head, size, status, url_path};

/// A folder of the tree: sub-folders and files, both sorted by name.
#[derive(Default)]
struct Folder<'a> {
    folders: BTreeMap<&'a str, Folder<'a>>,
    files: Vec<(&'a str, &'a FileInfo)>,
}

impl<'a> Folder<'a> {
    fn insert(&mut self, parts: &[&'a str], file: &'a FileInfo) {
        match parts {
            [] => {}
            [name] => self.files.push((name, file)),
            [dir, rest @ ..] => self.folders.entry(dir).or_default().insert(rest, file),
        }
    }
}

pub fn page(detail: &ProjectDetail, datasets: &[DatasetSummary]) -> Markup {
    let p = &detail.summary;
    let api = format!("/api/projects/{}", encode(&p.name));
    html! {
        (project_head(&p.name, &p.description, Tab::Files))
        section.card #upload {
            h2 { "Add files" }
            div.drop data-upload={ (api) "/upload" } {
                label { "Into"
                    select name="section" {
                        @for section in Section::ALL {
                            option value=(section.as_str()) selected[section == Section::Input] { (section.as_str()) "/" }
                        }
                    }
                }
                p { "Drop files here, or " }
                label { "choose files" input type="file" multiple; }
                div.uploads {}
            }
            (status())
            p.muted { "Files are recorded in the project's history and activity as soon as they arrive." }
        }
        @for group in &detail.sections {
            section.card data-section=(group.section.as_str()) {
                h2 { (group.section.as_str()) "/" }
                @if group.files.is_empty() {
                    p.muted { "Empty" }
                } @else {
                    @let tree = {
                        let mut root = Folder::default();
                        for file in &group.files {
                            let parts: Vec<&str> = file.path.split('/').skip(1).collect();
                            root.insert(&parts, file);
                        }
                        root
                    };
                    (folder(&p.name, &api, &tree))
                }
            }
        }
        section.card #link-dataset {
            h2 { "Linked datasets" }
            p.muted { "A dataset's files appear under input/ and are fetched from peers when needed." }
            @if datasets.is_empty() {
                p.muted { "No datasets on this node. Create one on the " a href="/datasets" { "Datasets" } " page." }
            } @else {
                form.inline data-api={ (api) "/datasets" } data-busy="Linking…" {
                    label { "Dataset"
                        select name="dataset" required {
                            @for d in datasets { option value=(d.name) { (d.name) } }
                        }
                    }
                    button type="submit" { "Link to this project" }
                }
                (status())
            }
        }
    }
}

fn folder(project: &str, api: &str, tree: &Folder<'_>) -> Markup {
    html! {
        ul.files {
            @for (name, sub) in &tree.folders {
                li {
                    details open {
                        summary { (name) "/" }
                        (folder(project, api, sub))
                    }
                }
            }
            @for (name, file) in &tree.files {
                (file_row(project, api, name, file))
            }
        }
    }
}

fn file_row(project: &str, api: &str, name: &str, file: &FileInfo) -> Markup {
    let remote = file
        .blob
        .as_ref()
        .is_some_and(|b| b.state != DataState::Local);
    let fetch_body = body(&FetchRequest {
        paths: vec![file.path.clone()],
    });
    html! {
        li data-path=(file.path) {
            span.name { (name) }
            span.muted { (size(file.size)) }
            @if let Some(blob) = &file.blob {
                @match blob.state {
                    DataState::Local => span.pill.ok title="A large file, verified and stored here" { "local" },
                    DataState::Partial => span.pill.warn { "partly here" },
                    DataState::Remote => span.pill.warn title="Kept on peers until you fetch it" { "on peers" },
                }
            }
            span.bar {
                @if remote {
                    button.quiet data-job={ (api) "/fetch" } data-body=(fetch_body) data-describe="fetch"
                        data-project=(project) data-path=(file.path) data-progress={ "#progress-" (slug(&file.path)) }
                        data-busy="Fetching from peers…" data-then="reload" { "Fetch" }
                    progress id={ "progress-" (slug(&file.path)) } max="1" value="0" {}
                } @else {
                    a href={ (api) "/raw/" (url_path(&file.path)) } download=(name) { "Download" }
                }
                @if name.ends_with(".ipynb") && !remote {
                    a href={ "/p/" (encode(project)) "/notebook/" (url_path(&file.path)) } { "View" }
                }
            }
        }
    }
}

/// An id-safe form of a path, for linking a progress bar to its button.
fn slug(path: &str) -> String {
    let hash = fnv1a(path);
    format!("f{hash:016x}")
}

/// FNV-1a: a stable, dependency-free id for element ids.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A notebook, read-only, with a link to its last change as cells (the
/// Compare page's cell-level diff) when its history has one.
pub fn notebook(
    detail: &ProjectDetail,
    path: &str,
    rendered: Markup,
    last_change: Option<&str>,
) -> Markup {
    let p = &detail.summary;
    let api = format!("/api/projects/{}", encode(&p.name));
    html! {
        (project_head(&p.name, &p.description, Tab::Files))
        section.card {
            h2 { (path) }
            p.bar {
                a href={ "/p/" (encode(&p.name)) "/files" } { "Back to files" }
                a href={ (api) "/raw/" (url_path(path)) } { "Download" }
                @if let Some(commit) = last_change {
                    a #last-change href={ "/p/" (encode(&p.name)) "/compare?from=before:" (encode(commit)) "&to=" (encode(commit)) }
                        title="The cells its last change added, removed or changed" { "What changed last" }
                }
            }
            p.muted { "Read-only. Open JupyterLab from the Overview to run or edit it." }
            (rendered)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_safe() {
        assert_eq!(slug("input/a b.csv"), slug("input/a b.csv"));
        assert_ne!(slug("input/a"), slug("input/b"));
        assert!(
            slug("x\"><script>")
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
    }
}
