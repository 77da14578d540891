//! Live updates: a server-sent event stream (`GET /__sandbox/ui/stream`). Twice a second it
//! reads the API's pulse (journal position, event and delivery counts, the clock to the
//! second) and sends it as a `change` event when it differs from the last one sent; the
//! page then fetches what it shows again. The stream ends when the server stops, so
//! graceful shutdown never waits for an open dashboard.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::Value;

use crate::server::sandbox::Sandbox;
use crate::server::view;

/// How often the pulse is read.
const EVERY: Duration = Duration::from_millis(500);

pub async fn stream(
    State(sandbox): State<Arc<Sandbox>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes =
        futures_util::stream::unfold((sandbox, None::<Value>), |(sandbox, last)| async move {
            loop {
                if last.is_some() {
                    tokio::time::sleep(EVERY).await;
                }
                if sandbox.is_stopping() {
                    return None;
                }
                let pulse = view::pulse(&sandbox);
                if last.as_ref() != Some(&pulse) {
                    let event = Event::default().event("change").data(pulse.to_string());
                    return Some((Ok(event), (sandbox, Some(pulse))));
                }
            }
        });
    Sse::new(changes).keep_alive(KeepAlive::default())
}
