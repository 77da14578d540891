//! The dashboard at `GET /__sandbox/ui`, served from the binary on every API's port: one
//! job per file. `page` is the markup (maud), `assets` the embedded stylesheet and script,
//! `stream` the server-sent events that keep the page live. The data comes from the admin
//! JSON API (`/__sandbox/...`), which the page's script fetches.

pub mod assets;
pub mod page;
pub mod stream;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use http::header;

use super::sandbox::Sandbox;

/// The dashboard's routes, to sit in front of the API's own fallback handler.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/__sandbox/ui", get(dashboard))
        .route("/__sandbox/ui/", get(dashboard))
        .route(assets::CSS_PATH, get(assets::css))
        .route(assets::JS_PATH, get(assets::js))
        .route("/__sandbox/ui/stream", get(stream::stream))
}

async fn dashboard(State(sandbox): State<Arc<Sandbox>>) -> impl IntoResponse {
    let page = page::dashboard(&sandbox.api.name).into_string();
    ([(header::CACHE_CONTROL, "no-store")], Html(page))
}
