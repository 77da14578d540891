//! The dashboard's stylesheet and script, embedded in the binary at compile time: nothing
//! to install, no CDN, and no file read at run time.

use axum::response::IntoResponse;
use http::header;

pub const CSS_PATH: &str = "/__sandbox/ui/dashboard.css";
pub const JS_PATH: &str = "/__sandbox/ui/dashboard.js";

const CSS: &str = include_str!("dashboard.css");
const JS: &str = include_str!("dashboard.js");

/// `no-cache`: a browser revalidates, so a new binary's assets are used at once.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

pub async fn css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", JS)
}
