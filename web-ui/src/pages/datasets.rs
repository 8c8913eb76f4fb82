//! The Datasets pages: list, versions, files, and linking to a project.

use maud::{Markup, html};
use tandem_protocol::api::{DatasetDetail, DatasetSummary, ProjectSummary};

use super::role_pill;
use crate::layout::{encode, short_key, size, status, time};

pub fn index(datasets: &[DatasetSummary]) -> Markup {
    html! {
        section.card #datasets {
            h1 { "Datasets" }
            p.muted { "Versioned collections of large files, shared like projects and fetched only where needed." }
            @if datasets.is_empty() {
                p.muted { "No datasets yet." }
            } @else {
                table {
                    thead { tr { th { "Name" } th { "Versions" } th { "Latest" } th { "Role" } } }
                    tbody {
                        @for d in datasets {
                            tr {
                                td { a href={ "/datasets/" (encode(&d.name)) } { (d.name) }
                                    @if !d.description.is_empty() { br; span.muted { (d.description) } } }
                                td { (d.version_count) }
                                td { @if let Some(v) = &d.latest { "v" (v.number) ": " (v.files) " files, " (size(v.bytes)) } }
                                td { (role_pill(d.role)) }
                            }
                        }
                    }
                }
            }
        }
        section.card #new-dataset {
            h2 { "New dataset" }
            form.inline data-api="/api/datasets" data-busy="Creating…" {
                label { "Name" input name="name" required maxlength="100"; }
                label.grow { "Description" input name="description" data-keep-empty; }
                button type="submit" { "Create" }
            }
            (status())
            p.muted { "Add files to a dataset with `tandem dataset add NAME FILES…`." }
        }
    }
}

pub fn detail(d: &DatasetDetail, projects: &[ProjectSummary]) -> Markup {
    let s = &d.summary;
    html! {
        section.card {
            h1 { (s.name) }
            @if !s.description.is_empty() { p { (s.description) } }
            p.muted { "Owner " span title=(s.owner) { (short_key(&s.owner)) } " · " (role_pill(s.role)) }
        }
        section.card #versions {
            h2 { "Versions" }
            @if d.versions.is_empty() { p.muted { "No versions yet." } }
            table {
                thead { tr { th { "Version" } th { "Files" } th { "Size" } th { "Created" } th { "Message" } } }
                tbody {
                    @for v in &d.versions {
                        tr class=[(d.shown == Some(v.number)).then_some("here")] {
                            td { a href={ "/datasets/" (encode(&s.name)) "?version=" (v.number) } { "v" (v.number) } }
                            td { (v.files) } td { (size(v.bytes)) } td { (time(v.created_ms)) } td { (v.message) }
                        }
                    }
                }
            }
        }
        section.card #dataset-files {
            h2 { "Files" @if let Some(n) = d.shown { " of v" (n) } }
            ul.files { @for f in &d.files { li { span.name { (f.path) } span.muted { (size(f.size)) } } } }
        }
        section.card #link {
            h2 { "Link to a project" }
            @if projects.is_empty() { p.muted { "No projects yet." } } @else {
                form.inline data-api-template="/api/projects/{project}/datasets" data-busy="Linking…" {
                    input type="hidden" name="dataset" value=(s.name);
                    label { "Project" select name="project" { @for p in projects { option value=(p.name) { (p.name) } } } }
                    button type="submit" { "Link" }
                }
                (status())
            }
        }
    }
}
