//! What the benches share: the bare axum server they compare against, server child
//! processes, `/proc` readings, and the in-process load generator (keep-alive workers, an
//! HDR histogram of latencies, a warm-up then a measured window).
//!
//! Included by each bench with `mod support;`.

// Each bench uses only part of this module.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

/// The argument that turns a bench executable into the bare axum server.
pub const BARE_SERVER_ARG: &str = "--bare-server";
pub const DEFAULT_CONNECTIONS: usize = 32;
pub const DEFAULT_SECONDS: f64 = 5.0;
pub const WARM_UP: Duration = Duration::from_secs(1);
/// Longest wait for a server to come up before giving up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for one request under load.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A worker stops after this many transport errors in a row instead of spinning.
const MAX_CONSECUTIVE_ERRORS: u32 = 100;
/// Hard cap on the requests of one worker in one scenario (bounds the loop in count too).
const MAX_REQUESTS_PER_WORKER: u64 = 100_000_000;
/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ; 100 on every mainstream Linux).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

pub const API_KEY: &str = "bench";
pub const IDEMPOTENCY_KEY: &str = "5f0c7b52-3d9e-4a61-8c2f-9b1d4e6a7c30";
pub const IDEMPOTENCY_HEADER: &str = "x-idempotency-key";
pub const POST_BODY: &str = r#"{"name":"Acme Corp","customer_type":"business"}"#;
/// What the bare server answers: the shape of a Dakota customer page, about the size of
/// the sandbox's `GET /customers` answer.
pub const BARE_BODY: &str = r#"{"data":[{"id":"1NFHrqBHb3cTfLVkFSGmHZqdDPi","name":"Acme Corp","email":"contact@acmecorp.com","customer_type":"business","kyb_status":"pending","kyc_status":"pending","kyb_links":[{"provider_id":"trm_labs","link_type":"persona","url":"https://verify.provider.com/kyb/a1b2c3d4e5f6","status":"pending","created_at":1234567890,"updated_at":1234567890,"expires_at":1234567890,"deleted_at":1234567890}],"provider_statuses":[{"provider_id":"trm_labs","status":"approved","endorsements":["string"]}],"application_id":"1NFHrqBHb3cTfLVkFSGmHZqdDPi","decision":"approved","application_url":"https://onboarding.example.com/applications/abc123?token=xyz789","created_at":1234567890,"updated_at":1234567890,"deleted_at":1234567890}],"meta":{"total_count":100,"has_more_after":true,"has_more_before":false}}"#;
/// What the bare server answers to `GET /customers/{id}`: one customer of that page.
pub const BARE_ITEM: &str = r#"{"id":"1NFHrqBHb3cTfLVkFSGmHZqdDPi","name":"Acme Corp","email":"contact@acmecorp.com","customer_type":"business","kyb_status":"pending","kyc_status":"pending","kyb_links":[{"provider_id":"trm_labs","link_type":"persona","url":"https://verify.provider.com/kyb/a1b2c3d4e5f6","status":"pending","created_at":1234567890,"updated_at":1234567890,"expires_at":1234567890,"deleted_at":1234567890}],"provider_statuses":[{"provider_id":"trm_labs","status":"approved","endorsements":["string"]}],"application_id":"1NFHrqBHb3cTfLVkFSGmHZqdDPi","decision":"approved","application_url":"https://onboarding.example.com/applications/abc123?token=xyz789","created_at":1234567890,"updated_at":1234567890,"deleted_at":1234567890}"#;

// ---------------------------------------------------------------------------------------------
// Settings

/// Load settings from the environment: `BENCH_CONNECTIONS` and `BENCH_SECONDS`.
pub struct Settings {
    pub connections: usize,
    pub measure: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self> {
        let seconds = match std::env::var("BENCH_SECONDS") {
            Ok(s) => s
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                .ok_or_else(|| anyhow!("BENCH_SECONDS must be a number of seconds, got {s:?}"))?,
            Err(_) => DEFAULT_SECONDS,
        };
        let connections = match std::env::var("BENCH_CONNECTIONS") {
            Ok(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .ok_or_else(|| anyhow!("BENCH_CONNECTIONS must be 1..=1024, got {s:?}"))?,
            Err(_) => DEFAULT_CONNECTIONS,
        };
        Ok(Self {
            connections,
            measure: Duration::from_secs_f64(seconds),
        })
    }
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every number.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The whole `main` of an async bench: the bare server when started as one, else `run` on
/// a runtime, its error printed as `NAME bench failed: ...`.
#[allow(dead_code)] // not every bench is async
pub fn async_main<F: std::future::Future<Output = Result<()>>>(
    name: &str,
    run: impl FnOnce() -> F,
) -> ExitCode {
    main_on(runtime, name, run)
}

/// [`async_main`] on one thread: for a bench whose client is light enough that a second
/// thread would cost more (in wake-ups across threads) than it adds.
#[allow(dead_code)] // not every bench is async
pub fn one_thread_main<F: std::future::Future<Output = Result<()>>>(
    name: &str,
    run: impl FnOnce() -> F,
) -> ExitCode {
    let one_thread = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot build the tokio runtime")
    };
    main_on(one_thread, name, run)
}

#[allow(dead_code)] // not every bench is async
fn main_on<F: std::future::Future<Output = Result<()>>>(
    runtime: impl FnOnce() -> Result<tokio::runtime::Runtime>,
    name: &str,
    run: impl FnOnce() -> F,
) -> ExitCode {
    if let Some(code) = bare_server_main() {
        return code;
    }
    match runtime().and_then(|rt| rt.block_on(run())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name} bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// The bare axum server (child process)

/// Runs the bare server when this executable was started as one (`--bare-server <port>`),
/// and returns its exit code; `None` for a normal bench run. Any other argument (`--bench`
/// from cargo, a filter) is ignored.
pub fn bare_server_main() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == BARE_SERVER_ARG)?;
    let result = args
        .get(i + 1)
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("usage: {BARE_SERVER_ARG} <port>"))
        .and_then(bare_server);
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare server: error: {e:#}");
            ExitCode::FAILURE
        }
    })
}

/// Largest `limit` the bare list answers with a page of its own size.
const BARE_MAX_LIMIT: usize = 100;

/// The bare list page for `?limit=n`: `n` copies of [`BARE_ITEM`], built on first use so a
/// run that never asks for it (throughput) holds no more memory than before.
fn bare_page(n: usize) -> Bytes {
    static PAGES: [std::sync::OnceLock<Bytes>; BARE_MAX_LIMIT + 1] =
        [const { std::sync::OnceLock::new() }; BARE_MAX_LIMIT + 1];
    PAGES[n]
        .get_or_init(|| {
            let items = vec![BARE_ITEM; n].join(",");
            Bytes::from(format!(
                r#"{{"data":[{items}],"meta":{{"total_count":100000,"has_more_after":true,"has_more_before":false}}}}"#
            ))
        })
        .clone()
}

fn bare_server(port: u16) -> Result<()> {
    use axum::extract::RawQuery;
    use axum::http::StatusCode;
    use axum::routing::get;

    /// [`BARE_BODY`], or with `?limit=n` a page of `n` customers, so its size matches the
    /// sandbox's answer to the same query.
    async fn list(RawQuery(query): RawQuery) -> ([(HeaderName, &'static str); 1], Bytes) {
        let limit = query.as_deref().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "limit")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .filter(|n| *n <= BARE_MAX_LIMIT)
        });
        let body = match limit {
            Some(n) => bare_page(n),
            None => Bytes::from_static(BARE_BODY.as_bytes()),
        };
        ([(CONTENT_TYPE, "application/json")], body)
    }
    async fn item() -> ([(HeaderName, &'static str); 1], &'static str) {
        ([(CONTENT_TYPE, "application/json")], BARE_ITEM)
    }
    async fn create(
        _body: axum::body::Bytes,
    ) -> (StatusCode, [(HeaderName, &'static str); 1], &'static str) {
        (
            StatusCode::CREATED,
            [(CONTENT_TYPE, "application/json")],
            BARE_BODY,
        )
    }

    runtime()?.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let app = axum::Router::new()
            .route("/customers", get(list).post(create))
            .route("/customers/{id}", get(item));
        axum::serve(listener, app).await.context("server error")
    })
}

/// Starts the bare server (this bench executable re-run) and waits until it listens.
pub fn spawn_bare() -> Result<Server> {
    let exe = std::env::current_exe().context("cannot locate the bench executable")?;
    let port = free_port()?;
    let mut cmd = Command::new(&exe);
    cmd.arg(BARE_SERVER_ARG).arg(port.to_string());
    let mut bare = Server::spawn("bare axum server", cmd, port)?;
    bare.wait_listening()?;
    Ok(bare)
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A server process, killed and reaped when dropped (also on error paths).
pub struct Server {
    name: String,
    child: std::process::Child,
    /// Its stderr, kept in an anonymous temporary file so a chatty server never blocks on
    /// a full pipe, and read back when it fails.
    log: File,
    port: u16,
}

impl Server {
    pub fn spawn(name: &str, mut cmd: Command, port: u16) -> Result<Self> {
        let log = tempfile::tempfile().context("cannot create a temporary file for stderr")?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                log.try_clone()
                    .context("cannot duplicate the stderr file")?,
            )
            .spawn()
            .with_context(|| format!("cannot start {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
            port,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Errors if the process has exited, with the end of its stderr.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                let tail = self.stderr_tail();
                bail!(
                    "{} exited early ({status}); its stderr ends with:\n{tail}",
                    self.name
                )
            }
            Err(e) => bail!("cannot check on {}: {e}", self.name),
        }
    }

    fn stderr_tail(&mut self) -> String {
        let mut text = String::new();
        if self.log.seek(SeekFrom::Start(0)).is_ok() {
            let _ = self.log.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until the port accepts connections.
    pub fn wait_listening(&mut self) -> Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive()?;
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {addr} within {READY_TIMEOUT:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Kills the process with SIGKILL (no chance to flush or clean up) and reaps it.
    pub fn kill(&mut self) -> Result<()> {
        self.check_alive()?;
        self.child
            .kill()
            .with_context(|| format!("cannot kill {}", self.name))?;
        self.child
            .wait()
            .with_context(|| format!("cannot reap {}", self.name))?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The `sandbox` binary of this package (cargo builds a package's binaries, with the bench
/// profile, before it runs a bench, and names them here), or the one `BENCH_SANDBOX` names,
/// to compare two builds on one machine state.
pub fn sandbox_binary() -> Result<PathBuf> {
    let bin = std::env::var_os("BENCH_SANDBOX").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_sandbox")),
        PathBuf::from,
    );
    if !bin.is_file() {
        bail!(
            "{} is missing: run the bench through cargo bench",
            bin.display()
        );
    }
    Ok(bin)
}

pub fn sandbox_command(bin: &Path, spec: &Path, port: u16) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--spec")
        .arg(spec)
        .arg("--port")
        .arg(port.to_string())
        .arg("--host")
        .arg("127.0.0.1");
    cmd
}

/// Spawns a server and polls `target` every ~1 ms; returns the time from the spawn to the
/// first 200 answer, its body, and the server, still running.
pub async fn first_answer(
    name: &str,
    cmd: Command,
    port: u16,
    target: &Target,
    timeout: Duration,
) -> Result<(Duration, Bytes, Server)> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .context("cannot build the HTTP client")?;
    let started = Instant::now();
    let mut server = Server::spawn(name, cmd, port)?;
    loop {
        if let Ok(response) = target.request(&client, 0).send().await {
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            if status == 200 {
                return Ok((started.elapsed(), body, server));
            }
            bail!(
                "{} {} answered {status} during start-up; body:\n{}",
                target.method,
                target.urls[0],
                String::from_utf8_lossy(&body)
            );
        }
        server.check_alive()?;
        if started.elapsed() > timeout {
            bail!("{name} did not answer within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// /proc readings

/// User + system CPU seconds a process (all its threads) has used so far.
pub fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name may hold spaces: fields are counted after its closing parenthesis,
    // where field 3 (state) comes first, so utime (14) and stime (15) are at 11 and 12.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64)
            .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))
    };
    Ok((ticks(11)? + ticks(12)?) / CLOCK_TICKS_PER_SEC)
}

/// A `kB` line of `/proc/<pid>/status`, e.g. `VmRSS:`.
pub fn status_kb(pid: u32, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))
}

/// (VmRSS, VmHWM) of a process, in MB.
pub fn memory_mb(pid: u32) -> Result<(f64, f64)> {
    Ok((
        status_kb(pid, "VmRSS:")? as f64 / 1024.0,
        status_kb(pid, "VmHWM:")? as f64 / 1024.0,
    ))
}

// ---------------------------------------------------------------------------------------------
// Load generation

/// One request, sent over and over.
pub struct Target {
    pub method: reqwest::Method,
    /// Requests go to these in turn (one URL for most scenarios).
    pub urls: Vec<String>,
    pub headers: HeaderMap,
    pub body: Option<&'static str>,
    /// The status the request must get before measuring.
    pub expect: u16,
    /// Send a new idempotency key (a UUID v4) with every request, so every POST creates.
    pub fresh_key: bool,
}

impl Target {
    /// `GET url` with `x-api-key: api_key`.
    pub fn get_url(url: String, api_key: &'static str) -> Self {
        Self::get_urls(vec![url], api_key)
    }

    /// `GET` each URL in turn, with `x-api-key: api_key`.
    pub fn get_urls(urls: Vec<String>, api_key: &'static str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static(api_key),
        );
        Self {
            method: reqwest::Method::GET,
            urls,
            headers,
            body: None,
            expect: 200,
            fresh_key: false,
        }
    }

    pub fn get(base: &str) -> Self {
        Self::get_url(format!("{base}/customers"), API_KEY)
    }

    /// `POST /customers`, always with the same idempotency key: after the first, replays.
    pub fn post(base: &str) -> Self {
        let mut target = Self::post_fresh(base, API_KEY);
        target.headers.insert(
            HeaderName::from_static(IDEMPOTENCY_HEADER),
            HeaderValue::from_static(IDEMPOTENCY_KEY),
        );
        target.fresh_key = false;
        target
    }

    /// `POST /customers` with a new idempotency key each time: every request creates.
    pub fn post_fresh(base: &str, api_key: &'static str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static(api_key),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Self {
            method: reqwest::Method::POST,
            urls: vec![format!("{base}/customers")],
            headers,
            body: Some(POST_BODY),
            expect: 201,
            fresh_key: true,
        }
    }

    /// The `n`-th request of a worker.
    pub fn request(&self, client: &reqwest::Client, n: usize) -> reqwest::RequestBuilder {
        let url = &self.urls[n % self.urls.len()];
        let mut builder = client
            .request(self.method.clone(), url)
            .headers(self.headers.clone());
        if self.fresh_key {
            builder = builder.header(IDEMPOTENCY_HEADER, uuid_v4());
        }
        match self.body {
            Some(body) => builder.body(body),
            None => builder,
        }
    }

    /// Sends the request once and checks the status; returns the body.
    pub async fn verify(&self, client: &reqwest::Client) -> Result<Bytes> {
        let url = &self.urls[0];
        let response = self
            .request(client, 0)
            .send()
            .await
            .with_context(|| format!("{} {url} failed", self.method))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("cannot read the answer to {} {url}", self.method))?;
        if status != self.expect {
            bail!(
                "{} {url} answered {status}, expected {}; body:\n{}",
                self.method,
                self.expect,
                String::from_utf8_lossy(&body)
            );
        }
        Ok(body)
    }
}

/// A random UUID, version 4 (RFC 9562).
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A client of its own for one worker: one keep-alive HTTP/1.1 connection.
pub fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")
}

pub fn histogram() -> Result<Histogram<u64>> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow!("histogram: {e:?}"))
}

/// Microseconds between two instants, for a histogram (which needs at least 1).
pub fn micros(start: Instant, end: Instant) -> u64 {
    u64::try_from(end.duration_since(start).as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[derive(Debug)]
struct WorkerResult {
    latency_us: Histogram<u64>,
    non_2xx: u64,
    errors: u64,
    /// The first non-2xx answer or transport error, for the report.
    first_failure: Option<String>,
}

async fn worker(
    target: Arc<Target>,
    index: usize,
    connections: usize,
    measure_from: Instant,
    measure_until: Instant,
) -> Result<WorkerResult> {
    let client = client()?;
    let mut result = WorkerResult {
        latency_us: histogram()?,
        non_2xx: 0,
        errors: 0,
        first_failure: None,
    };
    let mut consecutive_errors = 0;
    for i in 0..MAX_REQUESTS_PER_WORKER {
        let start = Instant::now();
        if start >= measure_until {
            break;
        }
        // Workers interleave over the URLs, so together they visit each in turn.
        let n = usize::try_from(i).unwrap_or(0) * connections + index;
        let outcome = match target.request(&client, n).send().await {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(body) => Ok((status, body)),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let end = Instant::now();
        let counted = start >= measure_from && end <= measure_until;
        match outcome {
            Ok((status, body)) => {
                consecutive_errors = 0;
                if !counted {
                    continue;
                }
                if status.is_success() {
                    result.latency_us.saturating_record(micros(start, end));
                } else {
                    result.non_2xx += 1;
                    result.first_failure.get_or_insert_with(|| {
                        format!("{status}: {}", String::from_utf8_lossy(&body))
                    });
                }
            }
            Err(e) => {
                if counted {
                    result.errors += 1;
                    result
                        .first_failure
                        .get_or_insert_with(|| format!("transport error: {e}"));
                }
                consecutive_errors += 1;
                if consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
                    result.errors += 1;
                    result.first_failure.get_or_insert_with(|| {
                        format!("worker gave up after {MAX_CONSECUTIVE_ERRORS} errors: {e}")
                    });
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    Ok(result)
}

/// The outcome of one scenario.
pub struct Row {
    pub name: String,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
    pub errors: u64,
    /// Server CPU during the window, in % of one core.
    pub server_cpu_pct: f64,
    /// Server CPU time per successful request, µs.
    pub server_us_per_req: f64,
    /// This (load generator) process' CPU during the window, in % of one core.
    pub client_cpu_pct: f64,
    pub first_failure: Option<String>,
}

impl Row {
    pub fn clean(&self) -> bool {
        self.non_2xx == 0 && self.errors == 0
    }
}

/// CPU seconds of the server and of this process, read together to bracket a window.
pub struct CpuMark {
    server: f64,
    client: f64,
}

impl CpuMark {
    pub fn now(server_pid: u32) -> Result<Self> {
        Ok(Self {
            server: cpu_seconds(&server_pid.to_string())?,
            client: cpu_seconds("self")?,
        })
    }
}

/// A [`Row`] from what a window measured: one histogram entry per successful request.
pub fn row(
    name: &str,
    secs: f64,
    latency_us: &Histogram<u64>,
    (before, after): (&CpuMark, &CpuMark),
    (non_2xx, errors, first_failure): (u64, u64, Option<String>),
) -> Row {
    let ok = latency_us.len();
    let server_cpu = after.server - before.server;
    Row {
        name: name.to_owned(),
        requests_per_sec: ok as f64 / secs,
        p50_ms: latency_us.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: latency_us.value_at_quantile(0.99) as f64 / 1000.0,
        non_2xx,
        errors,
        server_cpu_pct: 100.0 * server_cpu / secs,
        server_us_per_req: if ok == 0 {
            f64::NAN
        } else {
            server_cpu * 1e6 / ok as f64
        },
        client_cpu_pct: 100.0 * (after.client - before.client) / secs,
        first_failure,
    }
}

/// Sends `target` from `connections` workers for a warm-up, then measures for `measure`.
pub async fn load(
    name: &str,
    server_pid: u32,
    target: Target,
    connections: usize,
    measure: Duration,
) -> Result<Row> {
    let w = window(
        server_pid,
        Arc::new(target),
        connections,
        (WARM_UP, measure),
    )
    .await?;
    Ok(w.row(name))
}

/// One measured stretch of load on one server.
pub struct Window {
    secs: f64,
    latency_us: Histogram<u64>,
    server_cpu: f64,
    client_cpu: f64,
    non_2xx: u64,
    errors: u64,
    first_failure: Option<String>,
}

impl Window {
    /// Adds a later stretch of the same scenario.
    fn merge(&mut self, other: Window) -> Result<()> {
        self.secs += other.secs;
        self.latency_us
            .add(&other.latency_us)
            .map_err(|e| anyhow!("histogram: {e:?}"))?;
        self.server_cpu += other.server_cpu;
        self.client_cpu += other.client_cpu;
        self.non_2xx += other.non_2xx;
        self.errors += other.errors;
        self.first_failure = self.first_failure.take().or(other.first_failure);
        Ok(())
    }

    fn row(self, name: &str) -> Row {
        let before = CpuMark {
            server: 0.0,
            client: 0.0,
        };
        let after = CpuMark {
            server: self.server_cpu,
            client: self.client_cpu,
        };
        row(
            name,
            self.secs,
            &self.latency_us,
            (&before, &after),
            (self.non_2xx, self.errors, self.first_failure),
        )
    }
}

/// `target` from `connections` workers: a warm-up, then a measured stretch.
async fn window(
    server_pid: u32,
    target: Arc<Target>,
    connections: usize,
    (warm_up, measure): (Duration, Duration),
) -> Result<Window> {
    let measure_from = Instant::now() + warm_up;
    let measure_until = measure_from + measure;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..connections {
        tasks.spawn(worker(
            target.clone(),
            index,
            connections,
            measure_from,
            measure_until,
        ));
    }
    // CPU readings bracket the measured window.
    tokio::time::sleep_until(measure_from.into()).await;
    let before = CpuMark::now(server_pid)?;
    tokio::time::sleep_until(measure_until.into()).await;
    let after = CpuMark::now(server_pid)?;

    let mut latency_us = histogram()?;
    let (mut non_2xx, mut errors, mut first_failure) = (0, 0, None);
    while let Some(joined) = tasks.join_next().await {
        let r = joined.context("a load worker panicked")??;
        latency_us
            .add(&r.latency_us)
            .map_err(|e| anyhow!("histogram: {e:?}"))?;
        non_2xx += r.non_2xx;
        errors += r.errors;
        first_failure = first_failure.or(r.first_failure);
    }
    Ok(Window {
        secs: measure.as_secs_f64(),
        latency_us,
        server_cpu: after.server - before.server,
        client_cpu: after.client - before.client,
        non_2xx,
        errors,
        first_failure,
    })
}

/// Short stretches of each scenario in turn, `rounds` times, summed per scenario: the
/// machine's speed drifting over a run (a shared VM's does) then weighs on each alike,
/// and ratios between them hold. Each scenario is `(name, server pid, target)`.
pub async fn load_in_turns(
    scenarios: Vec<(String, u32, Target)>,
    connections: usize,
    measure: Duration,
    rounds: u32,
) -> Result<Vec<Row>> {
    /// Warm-up of every stretch after a scenario's first (connections are opened again).
    const REWARM: Duration = Duration::from_millis(200);
    let slice = measure / rounds.max(1);
    let scenarios: Vec<(String, u32, Arc<Target>)> = scenarios
        .into_iter()
        .map(|(name, pid, target)| (name, pid, Arc::new(target)))
        .collect();
    let mut sums: Vec<Option<Window>> = scenarios.iter().map(|_| None).collect();
    for round in 0..rounds.max(1) {
        for ((name, pid, target), sum) in scenarios.iter().zip(&mut sums) {
            if round == 0 {
                eprintln!("measuring {name} (in turns with the others)");
            }
            let warm_up = if round == 0 { WARM_UP } else { REWARM };
            let w = window(*pid, target.clone(), connections, (warm_up, slice)).await?;
            match sum {
                Some(s) => s.merge(w)?,
                None => *sum = Some(w),
            }
        }
    }
    scenarios
        .iter()
        .zip(sums)
        .map(|((name, _, _), w)| {
            w.map(|w| w.row(name))
                .ok_or_else(|| anyhow!("{name}: nothing measured"))
        })
        .collect()
}

/// The scenarios as a table, then the first failure of each that had one.
pub fn print_rows(rows: &[&Row]) {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(8);
    println!(
        "{:width$}  {:>9}  {:>7}  {:>7}  {:>7}  {:>6}  {:>8}  {:>10}  {:>8}",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "errors",
        "srv cpu%",
        "srv us/req",
        "gen cpu%"
    );
    for r in rows {
        println!(
            "{:width$}  {:>9.0}  {:>7.3}  {:>7.3}  {:>7}  {:>6}  {:>8.0}  {:>10.1}  {:>8.0}",
            r.name,
            r.requests_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.non_2xx,
            r.errors,
            r.server_cpu_pct,
            r.server_us_per_req,
            r.client_cpu_pct
        );
    }
    for r in rows {
        if let Some(f) = &r.first_failure {
            println!(
                "{}: first failure: {}",
                r.name,
                f.chars().take(300).collect::<String>()
            );
        }
    }
}

pub fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}
