//! A sandbox started from Rust code, for tests: in this process, on a free loopback port,
//! stopped when the handle is dropped (the way `wiremock`'s `MockServer::start()` is used).
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A bundled API by name, or any spec by path.
//! let sandbox = api_sandbox::Running::start("dakota").await?;
//! // Point the client under test at `sandbox.url()`.
//! let answer = reqwest::Client::new()
//!     .get(format!("{}/customers", sandbox.url()))
//!     .header("x-api-key", "my-test")
//!     .send()
//!     .await?;
//! assert_eq!(answer.status(), 200);
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use tokio::sync::oneshot;

use super::serve::{Bound, ServeError, ServeOptions};
use crate::spec::SpecError;
use crate::spec::bundled;

/// A running sandbox; dropping it stops it.
#[derive(Debug)]
pub struct Running {
    urls: Vec<(String, String)>,
    stop: Option<oneshot::Sender<()>>,
}

impl ServeOptions {
    /// The options `sandbox serve` has by default, for `specs`, on a free loopback port.
    pub fn new(specs: Vec<PathBuf>) -> Self {
        Self {
            specs,
            host: std::net::IpAddr::from([127, 0, 0, 1]),
            port: 0,
            seed: 0,
            state: None,
            state_interval: 30,
            idempotency_ttl: crate::state::idempotency::DEFAULT_TTL,
            idempotency_keys: crate::state::idempotency::DEFAULT_MAX_KEYS,
            events_kept: crate::state::events::DEFAULT_KEPT,
            stateless: false,
            rate_limit: None,
            time_scale: 1.0,
            webhook_key: None,
            admin_token: None,
        }
    }
}

impl Running {
    /// Starts a sandbox of `api`: a bundled API's name (`dakota`), or the path of a spec.
    /// Call it inside a tokio runtime.
    pub async fn start(api: &str) -> Result<Self, ServeError> {
        let spec = match bundled::spec_for(api, Path::new("specs"))? {
            Some(spec) => spec,
            None if Path::new(api).is_file() => PathBuf::from(api),
            None => {
                return Err(ServeError::Spec(SpecError::new(
                    Path::new(api),
                    "/",
                    format!(
                        "neither a bundled API ({}) nor a spec file",
                        bundled::names().join(", ")
                    ),
                )));
            }
        };
        Self::start_with(ServeOptions::new(vec![spec])).await
    }

    /// Starts a sandbox with every option spelled out.
    pub async fn start_with(options: ServeOptions) -> Result<Self, ServeError> {
        let bound = Bound::new(options).await?;
        let urls = bound.urls();
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = bound.run(shutdown).await {
                tracing::error!("sandbox stopped with an error: {e}");
            }
        });
        Ok(Self {
            urls,
            stop: Some(stop),
        })
    }

    /// The base URL of the (first) API, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        self.urls.first().map_or("", |(_, u)| u.as_str())
    }

    /// Every API's name and base URL, in the order the specs were given.
    pub fn urls(&self) -> &[(String, String)] {
        &self.urls
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
