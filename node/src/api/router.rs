//! The whole application: the JSON API under `/api`, the web UI's pages
//! elsewhere, and the guard in front of both.

use std::sync::Arc;

use axum::Router;
use axum::middleware;

use super::guard::{Guard, check};
use super::web_backend::WebBackend;
use super::{
    access, activity, data, env, files, hub, invites, node, peers, projects, sync, versions,
};
use crate::service::Service;

/// The whole application: JSON API under `/api`, pages elsewhere.
pub fn app(service: Arc<Service>, guard: Guard) -> Router {
    // Markdown and notebooks may not link to any name this node answers to.
    tandem_web::markdown::add_own_origins(guard.allowed_hosts().iter());
    let api = Router::new()
        .merge(node::routes())
        .merge(projects::routes())
        .merge(files::routes())
        .merge(activity::routes())
        .merge(versions::routes())
        .merge(access::routes())
        .merge(invites::routes())
        .merge(sync::routes())
        .merge(peers::routes())
        .merge(data::routes())
        .merge(env::routes())
        .merge(hub::routes())
        .with_state(service.clone());
    let web = tandem_web::router(Arc::new(WebBackend(service)), guard.csrf());
    Router::new()
        .nest("/api", api)
        .merge(web)
        .layer(middleware::from_fn_with_state(guard, check))
}
