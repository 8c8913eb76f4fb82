//! Route handlers: load what a page needs off the async threads, then
//! render it; errors become a page that says what happened.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures::Stream;
use maud::Markup;
use serde::Deserialize;
use tandem_protocol::api::{ActivityQuery, IdentityInfo, Marks, VersionQuery};

use crate::backend::{Backend, Ui, UiError};
use crate::layout::{Area, Frame, error_page};
use crate::{notebook, pages};

/// Largest notebook rendered on a page.
const NOTEBOOK_LIMIT: u64 = 32 * 1024 * 1024;
/// How often the live feed looks for new entries.
const EVENTS_EVERY: Duration = Duration::from_secs(1);

/// Runs `f` off the async threads. Its errors carry the status the
/// backend chose (the node's one classification, as for its API); a task
/// that died is the node's fault: 500, and logged, as the backend logs its
/// own faults.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UiError> + Send + 'static,
) -> Result<T, UiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "page failed: its task died");
        Err(UiError::new(500, format!("internal error: {e}")))
    })
}

/// Loads a page's data with the identity, then renders it in the frame.
async fn show<B: Backend, T: Send + 'static>(
    ui: &Ui<B>,
    area: Area,
    load: impl FnOnce(&B) -> Result<T, UiError> + Send + 'static,
    render: impl FnOnce(&Frame<'_>, T) -> (String, Markup),
) -> Response {
    let backend = ui.backend.clone();
    let loaded = blocking(move || {
        let me = backend.identity();
        let hub = backend.is_hub();
        load(&backend).map(|data| (me, hub, data))
    })
    .await;
    match loaded {
        Ok((me, hub, data)) => {
            let frame = Frame {
                title: "",
                me: &me,
                csrf: &ui.csrf,
                area,
                hub,
            };
            let (title, body) = render(&frame, data);
            let frame = Frame {
                title: &title,
                ..frame
            };
            Html(crate::layout::page(&frame, body).into_string()).into_response()
        }
        Err(e) => failure(ui, area, e).await,
    }
}

async fn failure<B: Backend>(ui: &Ui<B>, area: Area, error: UiError) -> Response {
    let backend = ui.backend.clone();
    let (me, hub) = blocking(move || Ok((backend.identity(), backend.is_hub())))
        .await
        .unwrap_or_else(|_| {
            let nobody = IdentityInfo {
                did: String::new(),
                peer_id: String::new(),
                name: String::new(),
                email: String::new(),
            };
            (nobody, false)
        });
    let frame = Frame {
        title: "Error",
        me: &me,
        csrf: &ui.csrf,
        area,
        hub,
    };
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Html(error_page(&frame, &error.message).into_string()),
    )
        .into_response()
}

pub(crate) async fn projects<B: Backend>(State(ui): State<Ui<B>>) -> Response {
    show(
        &ui,
        Area::Projects,
        |b| {
            let projects = b.projects()?;
            let rows = projects
                .into_iter()
                .map(|p| {
                    let sync = b.sync_state(&p.name).ok();
                    (p, sync)
                })
                .collect::<Vec<_>>();
            // Offers and bases need the network and Docker; a node without
            // either still lists its projects.
            let offers = b.offers().unwrap_or_default();
            let bases = b.bases().unwrap_or_default();
            let usage = b.disk_usage().ok();
            Ok((rows, offers, bases, usage))
        },
        |frame, (rows, offers, bases, usage)| {
            (
                "Projects".into(),
                pages::projects::index(frame, &rows, &offers, &bases, usage.as_ref()),
            )
        },
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct CreateForm {
    csrf: String,
    name: String,
    #[serde(default)]
    description: String,
}

fn csrf_ok(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn csrf_rejected<B: Backend>(ui: &Ui<B>) -> Response {
    failure(
        ui,
        Area::Projects,
        UiError::new(
            403,
            "This form has expired or came from another site. Reload the page and try again.",
        ),
    )
    .await
}

pub(crate) async fn create_form<B: Backend>(
    State(ui): State<Ui<B>>,
    Form(form): Form<CreateForm>,
) -> Response {
    if !csrf_ok(&ui.csrf, &form.csrf) {
        return csrf_rejected(&ui).await;
    }
    let backend = ui.backend.clone();
    let (name, description) = (form.name.trim().to_owned(), form.description);
    match blocking(move || backend.create_project(&name, &description)).await {
        Ok(project) => {
            Redirect::to(&format!("/p/{}", crate::layout::encode(&project.name))).into_response()
        }
        Err(e) => failure(&ui, Area::Projects, e).await,
    }
}

pub(crate) async fn overview<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
) -> Response {
    show(
        &ui,
        Area::Projects,
        move |b| {
            let detail = b.project(&name)?;
            let readme = b.readme(&name)?;
            let env = b.environment(&name).ok();
            let drift = b.drift(&name).ok();
            let container = b.container(&name).ok().flatten();
            let sync = b.sync_state(&name).ok();
            let members = b.members(&name).ok();
            Ok((detail, readme, (env, drift), container, sync, members))
        },
        |frame, (detail, readme, (env, drift), container, sync, members)| {
            (
                detail.summary.name.clone(),
                pages::overview::page(
                    frame,
                    &detail,
                    readme.as_deref(),
                    (env.as_ref(), drift.as_ref()),
                    container.as_ref(),
                    sync.as_ref(),
                    members.as_ref(),
                ),
            )
        },
    )
    .await
}

pub(crate) async fn files<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
) -> Response {
    show(
        &ui,
        Area::Projects,
        move |b| {
            let detail = b.project(&name)?;
            let datasets = b.datasets().unwrap_or_default();
            Ok((detail, datasets))
        },
        |_, (detail, datasets)| {
            (
                format!("Files · {}", detail.summary.name),
                pages::files::page(&detail, &datasets),
            )
        },
    )
    .await
}

pub(crate) async fn version<B: Backend>(
    State(ui): State<Ui<B>>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    show(
        &ui,
        Area::Projects,
        move |b| b.version(&name, &version),
        |_, detail| {
            (
                format!("Version {} · {}", detail.version.short, detail.project),
                pages::versions::page(&detail),
            )
        },
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct CompareQuery {
    from: String,
    #[serde(default)]
    to: Option<String>,
}

pub(crate) async fn compare<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
    Query(query): Query<CompareQuery>,
) -> Response {
    show(
        &ui,
        Area::Projects,
        move |b| {
            let to = query.to.unwrap_or_else(|| "current".into());
            b.compare(&name, &query.from, &to)
        },
        |_, diff| {
            (
                format!(
                    "Compare {} and {} · {}",
                    diff.from.short, diff.to.short, diff.project
                ),
                pages::versions::compare(&diff),
            )
        },
    )
    .await
}

pub(crate) async fn notebook_view<B: Backend>(
    State(ui): State<Ui<B>>,
    Path((name, path)): Path<(String, String)>,
) -> Response {
    show(
        &ui,
        Area::Projects,
        move |b| {
            let detail = b.project(&name)?;
            let bytes = b.read_file(&name, &path, NOTEBOOK_LIMIT)?;
            let rendered =
                notebook::render(&bytes).map_err(|e| UiError::new(422, e.to_string()))?;
            let changed = b.last_change(&name, &path).ok().flatten();
            Ok((detail, path, rendered, changed))
        },
        |_, (detail, path, rendered, changed)| {
            (
                format!("{path} · {}", detail.summary.name),
                pages::files::notebook(&detail, &path, rendered, changed.as_deref()),
            )
        },
    )
    .await
}

pub(crate) async fn environment<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
) -> Response {
    show(
        &ui,
        Area::Projects,
        move |b| {
            let detail = b.project(&name)?;
            let env = b.environment(&name);
            let drift = b.drift(&name).ok();
            let container = b.container(&name).ok().flatten();
            Ok((detail, env, drift, container))
        },
        |_, (detail, env, drift, container)| {
            (
                format!("Environment · {}", detail.summary.name),
                pages::environment::page(&detail, env, drift.as_ref(), container.as_ref()),
            )
        },
    )
    .await
}

/// The Activity page's query: the feed's own filters plus the page's.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ActivityPageQuery {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    search: Option<String>,
    #[serde(default)]
    starred: Option<String>,
    #[serde(default)]
    hidden: Option<String>,
}

impl ActivityPageQuery {
    fn feed_query(&self) -> ActivityQuery {
        let some = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        ActivityQuery {
            kind: some(&self.kind),
            author: some(&self.author),
            path: some(&self.path),
            search: some(&self.search),
            since: None,
            limit: Some(500),
        }
    }
}

pub(crate) async fn activity<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
    Query(query): Query<ActivityPageQuery>,
) -> Response {
    let shown = query.clone();
    show(
        &ui,
        Area::Projects,
        move |b| {
            let detail = b.project(&name)?;
            let entries = b.activity(&name, &query.feed_query())?;
            // Everyone who ever wrote here, for the author filter.
            let authors = b.activity(&name, &ActivityQuery::default())?;
            let marks = b.marks(&name).unwrap_or_default();
            Ok((detail, entries, authors, marks))
        },
        move |frame, (detail, entries, all, marks)| {
            let mut authors: Vec<(String, String)> = all
                .iter()
                .map(|e| (e.entry.author.to_did(), e.entry.author_name.clone()))
                .collect();
            authors.sort();
            authors.dedup_by(|a, b| a.0 == b.0);
            let view = pages::activity::View {
                starred_only: shown.starred.is_some(),
                show_hidden: shown.hidden.is_some(),
                query: shown.feed_query(),
            };
            (
                format!("Activity · {}", detail.summary.name),
                pages::activity::page(frame.csrf, &detail, &entries, &marks, &authors, &view),
            )
        },
    )
    .await
}

/// New feed entries as Server-Sent Events, each one rendered (escaped)
/// HTML, so the Activity page grows live without a reload. The page's
/// filters apply: only entries it would show are sent.
pub(crate) async fn events<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
    Query(page): Query<ActivityPageQuery>,
) -> Response {
    let backend = ui.backend.clone();
    let target = name.clone();
    let mut everything = page.feed_query();
    everything.limit = Some(usize::MAX);
    let first = blocking(move || {
        let entries = backend.activity(&target, &everything)?;
        Ok(entries.into_iter().map(|e| e.id).collect::<HashSet<_>>())
    })
    .await;
    match first {
        Ok(seen) => Sse::new(entry_stream(ui.backend.clone(), name, page, seen))
            .keep_alive(KeepAlive::default())
            .into_response(),
        Err(e) => failure(&ui, Area::Projects, e).await,
    }
}

/// What the live feed remembers between polls.
struct Feed<B> {
    backend: std::sync::Arc<B>,
    name: String,
    query: ActivityQuery,
    starred_only: bool,
    show_hidden: bool,
    seen: HashSet<String>,
    queued: VecDeque<Event>,
}

fn entry_stream<B: Backend>(
    backend: std::sync::Arc<B>,
    name: String,
    page: ActivityPageQuery,
    seen: HashSet<String>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let mut query = page.feed_query();
    query.limit = Some(100);
    let feed = Feed {
        backend,
        name,
        query,
        starred_only: page.starred.is_some(),
        show_hidden: page.hidden.is_some(),
        seen,
        queued: VecDeque::new(),
    };
    futures::stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(event) = feed.queued.pop_front() {
                return Some((Ok(event), feed));
            }
            tokio::time::sleep(EVENTS_EVERY).await;
            let (b, n, q) = (feed.backend.clone(), feed.name.clone(), feed.query.clone());
            let recent =
                blocking(move || Ok((b.activity(&n, &q)?, b.marks(&n).unwrap_or_default()))).await;
            // A project that went away ends the stream.
            let (entries, marks): (_, Marks) = recent.ok()?;
            let mut fresh: Vec<_> = entries
                .into_iter()
                .filter(|e| feed.seen.insert(e.id.clone()))
                .filter(|e| feed.show_hidden || !marks.hidden.contains(&e.id))
                .filter(|e| !feed.starred_only || marks.starred.contains(&e.id))
                .collect();
            // The feed lists newest first; send oldest first so the newest
            // ends on top of the page.
            fresh.sort_by_key(|e| e.entry.time_ms);
            for entry in &fresh {
                let html = pages::activity::entry(&feed.name, entry, &marks).into_string();
                feed.queued
                    .push_back(Event::default().event("entry").data(html));
            }
        }
    })
}

pub(crate) async fn members<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
) -> Response {
    show(
        &ui,
        Area::Projects,
        move |b| {
            let detail = b.project(&name)?;
            let members = b.members(&name)?;
            let peers = b.peers().unwrap_or_default();
            let hub = b.settings().ok().and_then(|s| s.relay);
            Ok((detail, members, peers, hub))
        },
        |frame, (detail, members, peers, hub)| {
            let copy = pages::hub::keep_copy(
                &detail.summary.name,
                &frame.me.did,
                &members,
                hub.as_deref(),
            );
            (
                format!("Members · {}", detail.summary.name),
                maud::html! { (pages::members::page(frame, &detail, &members, &peers)) (copy) },
            )
        },
    )
    .await
}

pub(crate) async fn sync<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
) -> Response {
    show(
        &ui,
        Area::Projects,
        move |b| Ok((b.project(&name)?, b.sync_state(&name)?)),
        |_, (detail, state)| {
            (
                format!("Sync · {}", detail.summary.name),
                pages::sync::page(&detail, &state),
            )
        },
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct NoteForm {
    csrf: String,
    text: String,
    #[serde(default)]
    tags: String,
}

pub(crate) async fn note_form<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
    Form(form): Form<NoteForm>,
) -> Response {
    if !csrf_ok(&ui.csrf, &form.csrf) {
        return csrf_rejected(&ui).await;
    }
    let backend = ui.backend.clone();
    let tags: Vec<String> = form
        .tags
        .split([',', ' '])
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let target = name.clone();
    match blocking(move || backend.add_note(&target, &form.text, tags)).await {
        Ok(_) => {
            Redirect::to(&format!("/p/{}/activity", crate::layout::encode(&name))).into_response()
        }
        Err(e) => failure(&ui, Area::Projects, e).await,
    }
}

pub(crate) async fn peers<B: Backend>(State(ui): State<Ui<B>>) -> Response {
    show(
        &ui,
        Area::Peers,
        |b| Ok((b.peers()?, b.own_addresses().unwrap_or_default())),
        |frame, (peers, addresses)| {
            (
                "Peers".into(),
                pages::peers::page(frame.me, &peers, &addresses),
            )
        },
    )
    .await
}

pub(crate) async fn datasets<B: Backend>(State(ui): State<Ui<B>>) -> Response {
    show(
        &ui,
        Area::Datasets,
        |b| b.datasets(),
        |_, datasets| ("Datasets".into(), pages::datasets::index(&datasets)),
    )
    .await
}

pub(crate) async fn dataset<B: Backend>(
    State(ui): State<Ui<B>>,
    Path(name): Path<String>,
    Query(query): Query<VersionQuery>,
) -> Response {
    show(
        &ui,
        Area::Datasets,
        move |b| Ok((b.dataset(&name, query.version)?, b.projects()?)),
        |_, (detail, projects)| {
            (
                format!("{} · Datasets", detail.summary.name),
                pages::datasets::detail(&detail, &projects),
            )
        },
    )
    .await
}

pub(crate) async fn settings<B: Backend>(State(ui): State<Ui<B>>) -> Response {
    show(
        &ui,
        Area::Settings,
        |b| Ok((b.disk_usage().ok(), b.settings().unwrap_or_default())),
        |frame, (usage, settings)| {
            (
                "Settings".into(),
                pages::settings::page(frame.me, usage.as_ref(), &settings),
            )
        },
    )
    .await
}

/// The Hub page; a plain node answers that it is not one.
pub(crate) async fn hub<B: Backend>(State(ui): State<Ui<B>>) -> Response {
    show(
        &ui,
        Area::Hub,
        |b| {
            b.hub()?.ok_or_else(|| {
                UiError::new(
                    404,
                    "This node is not a hub. A hub is started with `tandem hub` on a machine with a public address.",
                )
            })
        },
        |_, view| ("Hub".into(), pages::hub::page(&view)),
    )
    .await
}

pub(crate) async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/style.css"),
    )
}

pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/app.js"),
    )
}
