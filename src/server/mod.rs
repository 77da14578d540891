//! Serving: one axum listener per API, each at the root of its own port (SDKs drop base
//! paths), all stopped together on Ctrl-C or SIGTERM.

pub mod admin;
pub mod api;
pub mod auth;
pub mod handler;
pub mod problem;
pub mod request;
pub mod respond;
pub mod routing;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

pub use api::Api;

use crate::spec::SpecError;

/// Real milliseconds between scheduler steps (lifecycles and webhook deliveries).
const SCHEDULER_MS: u64 = 50;

/// What `sandbox serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub specs: Vec<PathBuf>,
    pub host: IpAddr,
    /// First port; the n-th spec gets `port + n` (0 lets the OS choose each).
    pub port: u16,
    pub seed: u64,
    /// State file (`--state`).
    pub state: Option<PathBuf>,
    /// Seconds between periodic state writes; 0 for shutdown only.
    pub state_interval: u64,
    /// Answer from the spec alone, without state.
    pub stateless: bool,
    /// Requests per minute per tenant before 429 (`None`: unlimited).
    pub rate_limit: Option<u32>,
    /// Sandbox seconds per real second.
    pub time_scale: f64,
    /// Webhook signing secret (64 hex characters); derived from the seed when absent.
    pub webhook_key: Option<[u8; 32]>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    State(#[from] crate::state::persist::PersistError),
}

/// The axum router for one API: every request goes to the generic handler.
pub fn router(api: Arc<Api>) -> axum::Router {
    axum::Router::new()
        .fallback(handler::handle)
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .with_state(api)
}

/// Loads and prepares every spec, in order.
pub fn prepare(options: &ServeOptions) -> Result<Vec<Arc<Api>>, SpecError> {
    options
        .specs
        .iter()
        .map(|file| {
            let mut api = Api::load(file, options.seed)?;
            api.engine.stateless = options.stateless;
            api.engine.rate_limit.limit = options.rate_limit;
            api.engine.clock = crate::state::clock::Clock::new(options.time_scale);
            if let Some(key) = options.webhook_key {
                let scheme = api.engine.profile.webhooks.signing.clone();
                api.engine.signer = crate::state::webhooks::Signer::new(scheme.as_deref(), key);
            }
            Ok(Arc::new(api))
        })
        .collect()
}

/// Serves every API until `shutdown` resolves. Prints the "API -> URL" table once all
/// listeners are bound, so a reader of stdout knows the sandbox is ready.
pub async fn serve(
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let apis = prepare(&options)?;
    if let Some(path) = &options.state {
        crate::state::persist::load(path, &apis)?;
    }
    let mut listeners = Vec::with_capacity(apis.len());
    for (i, api) in apis.iter().enumerate() {
        let port = if options.port == 0 {
            0
        } else {
            options
                .port
                .saturating_add(u16::try_from(i).unwrap_or(u16::MAX))
        };
        let addr = SocketAddr::new(options.host, port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        listeners.push((api.clone(), listener));
    }
    let mut table = String::new();
    let width = apis.iter().map(|a| a.name.len()).max().unwrap_or(3).max(3);
    table.push_str(&format!("{:width$}  URL\n", "API"));
    for (api, listener) in &listeners {
        let addr = listener.local_addr()?;
        table.push_str(&format!(
            "{:width$}  http://{addr}  ({} operations)\n",
            api.name,
            api.spec.operations.len()
        ));
    }
    // After the table, so tools reading URLs stop at the first line without one.
    for api in &apis {
        let signer = &api.engine.signer;
        table.push_str(&format!(
            "webhooks of {} are signed with {}; verification key {}\n",
            api.name,
            signer.scheme(),
            signer.public_hex()
        ));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(table.as_bytes())?;
    out.flush()?;
    drop(out);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut tasks = Vec::new();
    for (api, listener) in listeners {
        let mut rx = stop_rx.clone();
        let app = router(api);
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
        }));
    }
    // Lifecycles advance and webhooks go out in the background, on the virtual clock.
    let background = {
        let apis = apis.clone();
        let client = reqwest::Client::new();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(SCHEDULER_MS));
            loop {
                tick.tick().await;
                for api in &apis {
                    api.engine.tick(&api.spec);
                    crate::state::webhooks::deliver_due(&api.engine, &client).await;
                }
            }
        })
    };
    if let (Some(path), true) = (options.state.clone(), options.state_interval > 0) {
        let apis = apis.clone();
        let every = std::time::Duration::from_secs(options.state_interval);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = crate::state::persist::save(&path, &apis) {
                    tracing::error!("{e}");
                }
            }
        });
    }
    for t in tasks {
        match t.await {
            Ok(result) => result?,
            Err(e) => tracing::error!("listener task failed: {e}"),
        }
    }
    background.abort();
    if let Some(path) = &options.state {
        crate::state::persist::save(path, &apis)?;
        tracing::info!("state written to {}", path.display());
    }
    tracing::info!("sandbox stopped");
    Ok(())
}

/// A future that resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are registered now,
/// not on first poll, so a signal sent right after start-up is never lost. Call it inside the
/// runtime.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
