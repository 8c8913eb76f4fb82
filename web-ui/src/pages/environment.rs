//! The Environment page: the base, pinned packages, custom steps, the
//! container's limits, and the build with its live log.
//!
//! A custom step from someone else is shown with its lines and an Accept
//! button: the node builds nothing until this node's user accepts it.

use maud::{Markup, html};
use tandem_protocol::api::{AcceptSnippet, ContainerView, DriftReport, EnvView, ProjectDetail};

use super::drift_banner;

use crate::backend::UiError;
use crate::layout::{Tab, body, encode, project_head, status, time};

pub fn page(
    detail: &ProjectDetail,
    env: Result<EnvView, UiError>,
    drift: Option<&DriftReport>,
    container: Option<&ContainerView>,
) -> Markup {
    let p = &detail.summary;
    let api = format!("/api/projects/{}", encode(&p.name));
    html! {
        (project_head(&p.name, &p.description, Tab::Environment))
        @if let Some(drift) = drift { (drift_banner(&api, drift)) }
        @match env {
            Err(e) => div.error role="alert" { "The environment could not be read: " (e.message) },
            Ok(env) => {
                @if let Some(problem) = &env.docker { div.error role="alert" { (problem) } }
                section.card #base {
                    h2 { "Base: " (env.base.name) }
                    p { (env.base.description) }
                    p.muted {
                        "Languages: " (env.base.languages.join(", ")) " · Tools: " (env.base.tools.join(", "))
                        " · ~" (env.base.size_mb) " MB"
                        @if let Some(note) = &env.base.gpu_note { " · " (note) }
                    }
                    @if !env.base.packages.is_empty() {
                        details {
                            summary { "Included in the base (" (env.base.packages.len()) ")" }
                            ul { @for pkg in &env.base.packages { li { (pkg.name) " " (pkg.version) span.muted { " (" (pkg.manager) ")" } } } }
                        }
                    }
                }
                section.card #packages {
                    h2 { "Packages" }
                    @if env.packages.is_empty() {
                        p.muted { "No packages added yet: the base's are all there is." }
                    } @else {
                        table {
                            thead { tr { th { "Package" } th { "Pinned version" } th { "Manager" } th {} } }
                            tbody {
                                @for pkg in &env.packages {
                                    tr data-package=(pkg.name) {
                                        td { (pkg.name) }
                                        td { code { (pkg.version) } " " span data-badge={ (pkg.manager) ":" (pkg.name) } {} }
                                        td { (pkg.manager) }
                                        td {
                                            button.danger data-method="DELETE"
                                                data-api={ (api) "/env/packages/" (encode(&pkg.manager)) "/" (encode(&pkg.name)) }
                                                data-confirm={ "Remove " (pkg.name) " from the environment?" }
                                                data-busy="Removing…" { "Remove" }
                                            (status())
                                        }
                                    }
                                }
                            }
                        }
                        button.quiet data-outdated={ (api) "/env/outdated" } { "Check for updates" }
                        (status())
                    }
                    h3 { "Add packages" }
                    form.inline data-api={ (api) "/env/packages" } data-busy="Looking up versions and pinning… (the first lookup builds the base image)" {
                        label { "Manager"
                            select name="manager" {
                                @for m in &env.base.package_managers { option value=(m) { (m) } }
                            }
                        }
                        label.grow { "Package(s)"
                            input name="packages" data-list required placeholder="e.g. pandas, or pandas==2.2.3 seaborn";
                        }
                        button type="submit" { "Add" }
                    }
                    (status())
                    p.muted { "Without a version, the newest that installs on this base is looked up and pinned." }
                }
                section.card #snippets {
                    h2 { "Custom steps" }
                    p.muted { "Dockerfile lines run after the packages: RUN, ENV, ARG, LABEL, WORKDIR, SHELL and USER." }
                    @let unaccepted = env.snippets.iter().filter(|s| !s.accepted).count();
                    @if unaccepted > 0 {
                        div.error role="alert" #unaccepted-snippets {
                            @if unaccepted == 1 { "A custom step below came from someone else." }
                            @else { (unaccepted) " custom steps below came from someone else." }
                            " Its lines run as root when the image builds, so nothing is built or launched until you read and accept them."
                        }
                    }
                    @for snippet in &env.snippets {
                        div.snippet data-snippet=(snippet.name) data-accepted=(snippet.accepted) {
                            h3 {
                                (snippet.name)
                                @if !snippet.accepted { " " span.pill.warn { "from someone else · not accepted" } }
                            }
                            pre.code { (snippet.lines) }
                            @if !snippet.accepted {
                                // The hash names the lines shown: lines changed since are refused.
                                button data-api={ (api) "/env/snippets/" (encode(&snippet.name)) "/accept" }
                                    data-body=(body(&AcceptSnippet { hash: snippet.hash.clone() }))
                                    data-confirm={ "Build the step " (snippet.name) " with exactly the lines shown?" }
                                    data-busy="Accepting…" { "Accept these lines" }
                            }
                            button.danger data-method="DELETE" data-api={ (api) "/env/snippets/" (encode(&snippet.name)) }
                                data-confirm={ "Remove the step " (snippet.name) "?" } { "Remove" }
                            (status())
                        }
                    }
                    form data-api={ (api) "/env/snippets" } data-busy="Adding…" {
                        label { "Name" input name="name" required maxlength="64" placeholder="e.g. fonts"; }
                        label { "Lines" textarea name="lines" data-raw rows="3" required placeholder="RUN apt-get update && apt-get install -y fonts-dejavu" {} }
                        button type="submit" { "Add step" }
                    }
                    (status())
                }
                section.card #limits {
                    h2 { "Container limits" }
                    p.muted {
                        "Memory (swap included): " (env.limits.memory.clone().unwrap_or_else(|| "half of this machine's (default)".into()))
                        " · Processes and threads: " (env.limits.pids.map_or_else(|| "4096 (default)".to_owned(), |p| p.to_string()))
                    }
                    form.inline data-api={ (api) "/env/limits" } data-busy="Saving…" {
                        label { "Memory" input name="memory" placeholder="e.g. 4GiB"; }
                        label { "Processes" input name="pids" data-number inputmode="numeric" placeholder="e.g. 4096"; }
                        button type="submit" { "Set limits" }
                    }
                    (status())
                    p.muted { "The limits are part of the project: every member's JupyterLab gets them at its next launch." }
                }
                section.card #build {
                    h2 { "Build" }
                    p.muted {
                        @if env.built { span.pill.ok { "built" } " " code { (env.image.clone().unwrap_or_default()) } }
                        @else { span.pill.warn { "not built yet" } " Launching builds it too." }
                        @if let Some(c) = container { " · JupyterLab running since " (time(c.started_ms)) }
                    }
                    button #build-button data-job={ (api) "/build" } data-describe="build" data-project=(p.name)
                        data-progress="#build-progress" data-log="#build-log" data-busy="Building…" { "Build" }
                    (status())
                    progress #build-progress max="1" value="0" {}
                    pre.log #build-log {}
                    details {
                        summary { "Generated Dockerfile" }
                        pre.code { (env.dockerfile) }
                    }
                }
            }
        }
    }
}
