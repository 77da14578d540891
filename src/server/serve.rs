//! `sandbox serve`: one axum listener per API, each at the root of its own port (SDKs drop
//! base paths) with its dashboard at `/__sandbox/ui`, a scheduler that moves lifecycles and
//! sends webhooks on the virtual clock, and the `--state` file; all stopped together on
//! Ctrl-C or SIGTERM. Off loopback, `/__sandbox/` needs an admin token (given, or generated
//! and printed).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::sandbox::Sandbox;
use super::{guard, handler, ui};
use crate::spec::SpecError;
use crate::state::clock::Clock;
use crate::state::persist::{self, Part, PersistError};
use crate::state::webhooks::Signer;

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
    /// Seconds between checks whether the state log should be compacted; 0 for shutdown
    /// only.
    pub state_interval: u64,
    /// Seconds an idempotency key is remembered.
    pub idempotency_ttl: f64,
    /// Idempotency keys remembered per tenant.
    pub idempotency_keys: usize,
    /// Recent events kept for the admin API and the dashboard.
    pub events_kept: usize,
    /// Answer from the spec alone, without state.
    pub stateless: bool,
    /// Requests per minute per tenant before 429 (`None`: unlimited).
    pub rate_limit: Option<u64>,
    /// Sandbox seconds per real second.
    pub time_scale: f64,
    /// Webhook signing secret (64 hex characters); derived from the seed when absent.
    pub webhook_key: Option<[u8; 32]>,
    /// The token `/__sandbox/` and the dashboard require (`--admin-token`). Without one, a
    /// non-loopback `host` gets a generated token; loopback stays open.
    pub admin_token: Option<String>,
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
    State(#[from] PersistError),
}

/// The axum router for one API: the dashboard's routes, and every other request to the one
/// handler; `/__sandbox/` behind the admin token when there is one.
pub fn router(sandbox: Arc<Sandbox>) -> axum::Router {
    let mut routes = ui::routes().fallback(handler::handle);
    // Without a token there is nothing to guard: every request would pass through the
    // guard's boxed future for nothing.
    if sandbox.admin_token.is_some() {
        routes = routes.layer(axum::middleware::from_fn_with_state(
            sandbox.clone(),
            guard::admin_only,
        ));
    }
    routes
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .with_state(sandbox)
}

/// Loads and prepares every spec, in order, with the options that shape its engine, and
/// opens the state file (loading what it holds) when there is one.
pub fn prepare(options: &ServeOptions) -> Result<Vec<Arc<Sandbox>>, ServeError> {
    let state = options.state.as_deref().map(persist::prefetch);
    let mut sandboxes = options
        .specs
        .iter()
        .map(|file| {
            let mut sandbox = Sandbox::load(file, options.seed)?;
            let engine = &mut sandbox.engine;
            engine.stateless = options.stateless;
            if options.rate_limit.is_some() {
                engine.rate_limit.limit = options.rate_limit;
            }
            engine.clock = Clock::new(options.time_scale);
            engine.idempotency.ttl = options.idempotency_ttl;
            engine.idempotency.max_keys = options.idempotency_keys;
            engine.events.get_mut().kept = options.events_kept;
            if let Some(key) = options.webhook_key {
                engine.signer = Signer::new(engine.profile.webhooks.signing.as_deref(), key);
            }
            sandbox.admin_token = options.admin_token.clone();
            Ok(sandbox)
        })
        .collect::<Result<Vec<Sandbox>, SpecError>>()?;
    let loaded = state.is_some();
    if let Some(read) = state {
        let parts: Vec<Part<'_>> = sandboxes.iter().map(|s| s.engine.part()).collect();
        let log = persist::open(read, &parts)?;
        drop(parts);
        for s in &mut sandboxes {
            s.engine.log = Some(log.clone());
        }
    }
    let sandboxes: Vec<Arc<Sandbox>> = sandboxes.into_iter().map(Arc::new).collect();
    if loaded {
        // Packing what the log held waits until the server is up: a restart answers first.
        let packing = sandboxes.clone();
        let spawned = std::thread::Builder::new()
            .name("state-pack".into())
            .spawn(move || packing.iter().for_each(|s| s.engine.pack_loaded()));
        if let Err(e) = spawned {
            tracing::warn!("records read from the state file stay unpacked: {e}");
        }
    }
    Ok(sandboxes)
}

/// Every API prepared and its port bound: ready to serve.
pub struct Bound {
    options: ServeOptions,
    sandboxes: Vec<Arc<Sandbox>>,
    listeners: Vec<(Arc<Sandbox>, TcpListener)>,
    /// The admin token generated at start (printed with the URLs), if one was.
    generated: Option<String>,
}

impl Bound {
    /// Loads every spec, opens the state file and binds a port per API.
    pub async fn new(mut options: ServeOptions) -> Result<Self, ServeError> {
        // Off loopback the admin API must not be open to whoever reaches the port.
        let generated =
            (options.admin_token.is_none() && !options.host.is_loopback()).then(guard::generate);
        if generated.is_some() {
            options.admin_token.clone_from(&generated);
        }
        let sandboxes = prepare(&options)?;
        let listeners = bind_all(&sandboxes, options.host, options.port).await?;
        Ok(Self {
            options,
            sandboxes,
            listeners,
            generated,
        })
    }

    /// Each API's name and base URL, in order.
    pub fn urls(&self) -> Vec<(String, String)> {
        self.listeners
            .iter()
            .filter_map(|(s, l)| {
                Some((
                    s.api.name.clone(),
                    format!("http://{}", l.local_addr().ok()?),
                ))
            })
            .collect()
    }

    /// Prints the "API -> URL" table, so a reader of stdout knows the sandbox is ready.
    pub fn announce(&self) -> std::io::Result<()> {
        announce(&self.listeners, self.generated.as_deref())
    }

    /// Serves until `shutdown` resolves, then writes what the state file needs and stops.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Self {
            options,
            sandboxes,
            listeners,
            ..
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopping = sandboxes.clone();
        tokio::spawn(async move {
            shutdown.await;
            for s in &stopping {
                s.stopping.store(true, Ordering::Relaxed);
            }
            let _ = stop_tx.send(true);
        });
        let tasks: Vec<_> = listeners
            .into_iter()
            .map(|(sandbox, listener)| spawn_listener(sandbox, listener, stop_rx.clone()))
            .collect();
        let background = spawn_scheduler(sandboxes.clone());
        if options.state.is_some() && options.state_interval > 0 {
            spawn_compactor(options.state_interval, sandboxes.clone());
        }
        for t in tasks {
            match t.await {
                Ok(result) => result?,
                Err(e) => tracing::error!("listener task failed: {e}"),
            }
        }
        background.abort();
        if let Some(log) = sandboxes.first().and_then(|s| s.engine.log.clone()) {
            // Everything acknowledged is on disk already; leave the file compact.
            log.compact_if_large(&engines(&sandboxes), true);
            let last = log.close();
            log.durable(last).await;
            tracing::info!(
                "state written to {}",
                options.state.as_deref().unwrap_or(Path::new("")).display()
            );
        }
        tracing::info!("sandbox stopped");
        Ok(())
    }
}

/// Each API's share of the state file.
fn engines(sandboxes: &[Arc<Sandbox>]) -> Vec<Part<'_>> {
    sandboxes.iter().map(|s| s.engine.part()).collect()
}

/// Binds one listener per API: `port + n` for the n-th, or free ports when `port` is 0.
async fn bind_all(
    sandboxes: &[Arc<Sandbox>],
    host: IpAddr,
    port: u16,
) -> Result<Vec<(Arc<Sandbox>, TcpListener)>, ServeError> {
    let mut listeners = Vec::with_capacity(sandboxes.len());
    for (i, sandbox) in sandboxes.iter().enumerate() {
        let port = if port == 0 {
            0
        } else {
            port.saturating_add(u16::try_from(i).unwrap_or(u16::MAX))
        };
        let addr = SocketAddr::new(host, port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        if let Ok(bound) = listener.local_addr() {
            let _ = sandbox.addr.set(bound);
        }
        listeners.push((sandbox.clone(), listener));
    }
    Ok(listeners)
}

/// Prints the "API -> URL" table (with each API's dashboard), then each API's webhook
/// verification key, and the admin token when one was generated (the dashboard URLs then
/// carry it, so they open as printed).
fn announce(
    listeners: &[(Arc<Sandbox>, TcpListener)],
    generated_token: Option<&str>,
) -> std::io::Result<()> {
    let width = listeners
        .iter()
        .map(|(s, _)| s.api.name.len())
        .max()
        .unwrap_or(3)
        .max(3);
    let mut table = format!("{:width$}  URL\n", "API");
    for (sandbox, listener) in listeners {
        let addr = listener.local_addr()?;
        let token = generated_token.map_or_else(String::new, |t| format!("?token={t}"));
        table.push_str(&format!(
            "{:width$}  http://{addr}  ({} operations)  dashboard http://{addr}/__sandbox/ui{token}\n",
            sandbox.api.name,
            sandbox.api.spec.operations.len()
        ));
    }
    // After the table, so tools reading URLs stop at the first line without one.
    for (sandbox, _) in listeners {
        let signer = &sandbox.engine.signer;
        table.push_str(&format!(
            "webhooks of {} are signed with {}; verification key {}\n",
            sandbox.api.name,
            signer.scheme(),
            signer.public_hex()
        ));
    }
    if let Some(token) = generated_token {
        table.push_str(&format!(
            "admin token (for /__sandbox/ and the dashboard, as 'Authorization: Bearer {token}'): {token}\n"
        ));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(table.as_bytes())?;
    out.flush()
}

fn spawn_listener(
    sandbox: Arc<Sandbox>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let app = router(sandbox);
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })
            .await
    })
}

/// Lifecycles advance and webhooks go out in the background, on the virtual clock.
fn spawn_scheduler(sandboxes: Vec<Arc<Sandbox>>) -> tokio::task::JoinHandle<()> {
    let client = reqwest::Client::new();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(SCHEDULER_MS));
        loop {
            tick.tick().await;
            for s in &sandboxes {
                s.engine.tick(&s.api.spec);
                crate::state::delivery::deliver_due(&s.engine, &client).await;
            }
        }
    })
}

/// Compacts the state log every `seconds` when it has grown well past the live state.
fn spawn_compactor(seconds: u64, sandboxes: Vec<Arc<Sandbox>>) {
    let every = std::time::Duration::from_secs(seconds);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Some(log) = sandboxes.first().and_then(|s| s.engine.log.clone()) {
                let sandboxes = sandboxes.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    log.compact_if_large(&engines(&sandboxes), false);
                })
                .await;
            }
        }
    });
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
