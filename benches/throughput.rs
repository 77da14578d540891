//! Throughput, latency, start-up time and memory of the `sandbox` binary, side by side with a
//! bare axum server answering a fixed JSON body.
//!
//! Run it with:
//!
//! ```text
//! cargo bench --bench throughput
//! ```
//!
//! What it measures, in one run:
//!
//! 1. **Load**: requests/s and latency p50/p99 (an HDR histogram, µs resolution) of
//!    `GET /customers` and `POST /customers` against
//!    - a bare axum 0.8 server (this bench executable re-run as `--bare-server <port>`) that
//!      answers a fixed ~800-byte JSON body, similar in size to the sandbox's `GET /customers`
//!      answer (the POST handler reads the request body and answers 201 with the same body);
//!    - the release `sandbox serve --spec <spec>` binary.
//!
//!    The load generator is an in-process tokio runtime with `BENCH_CONNECTIONS` (default 32)
//!    workers, each with its own reqwest client, so each owns exactly one keep-alive HTTP/1.1
//!    loopback connection and sends its requests back to back. Each scenario gets a 1 s
//!    warm-up, then `BENCH_SECONDS` (default 5) of measurement; only requests that both start
//!    and finish inside the measured window count. Non-2xx answers and transport errors are
//!    counted and reported (both must be 0). The CPU time the server process used during the
//!    window (`/proc/<pid>/stat`) is reported as well, as CPU per request does not depend on
//!    the load generator competing for the same cores.
//! 2. **Start-up**: time from spawning `sandbox serve` to the first 200 answer to
//!    `GET /customers`, polling every ~1 ms; 5 runs, min and median.
//! 3. **Memory**: `VmRSS` and `VmHWM` of the sandbox process after the load.
//!
//! Every server is a separate process bound to 127.0.0.1, so its memory and CPU are its own.
//! The specs are `specs/dakota/openapi.yaml` and, when present, the vendor's
//! `../shared/vendor/dakota/openapi.yaml`; `BENCH_SPEC` (a `:`-separated list of paths)
//! replaces both. The targets (throughput >= 50% of bare, start-up < 60 ms, RSS < 40 MB) are
//! reported, never enforced: the bench always exits 0 unless it cannot measure.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

/// The argument that turns this executable into the bare axum server.
const BARE_SERVER_ARG: &str = "--bare-server";
const DEFAULT_CONNECTIONS: usize = 32;
const DEFAULT_SECONDS: f64 = 5.0;
const WARM_UP: Duration = Duration::from_secs(1);
const STARTUP_RUNS: usize = 5;
/// Longest wait for a server to come up before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for one request under load.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A worker stops after this many transport errors in a row instead of spinning.
const MAX_CONSECUTIVE_ERRORS: u32 = 100;
/// Hard cap on the requests of one worker in one scenario (bounds the loop in count too).
const MAX_REQUESTS_PER_WORKER: u64 = 100_000_000;
/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ; 100 on every mainstream Linux).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

const API_KEY: &str = "bench";
const IDEMPOTENCY_KEY: &str = "5f0c7b52-3d9e-4a61-8c2f-9b1d4e6a7c30";
const POST_BODY: &str = r#"{"name":"Acme Corp","customer_type":"business"}"#;
/// What the bare server answers: the shape of a Dakota customer page, about the size of
/// the sandbox's `GET /customers` answer.
const BARE_BODY: &str = r#"{"data":[{"id":"1NFHrqBHb3cTfLVkFSGmHZqdDPi","name":"Acme Corp","email":"contact@acmecorp.com","customer_type":"business","kyb_status":"pending","kyc_status":"pending","kyb_links":[{"provider_id":"trm_labs","link_type":"persona","url":"https://verify.provider.com/kyb/a1b2c3d4e5f6","status":"pending","created_at":1234567890,"updated_at":1234567890,"expires_at":1234567890,"deleted_at":1234567890}],"provider_statuses":[{"provider_id":"trm_labs","status":"approved","endorsements":["string"]}],"application_id":"1NFHrqBHb3cTfLVkFSGmHZqdDPi","decision":"approved","application_url":"https://onboarding.example.com/applications/abc123?token=xyz789","created_at":1234567890,"updated_at":1234567890,"deleted_at":1234567890}],"meta":{"total_count":100,"has_more_after":true,"has_more_before":false}}"#;

fn main() -> ExitCode {
    // Checked before anything else: the bare server is this executable re-run. Any other
    // argument (`--bench` from cargo, a filter) is ignored.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == BARE_SERVER_ARG) {
        let result = args
            .get(i + 1)
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| anyhow!("usage: {BARE_SERVER_ARG} <port>"))
            .and_then(bare_server);
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bare server: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The bare axum server (child process)

fn bare_server(port: u16) -> Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;

    async fn list() -> ([(HeaderName, &'static str); 1], &'static str) {
        ([(CONTENT_TYPE, "application/json")], BARE_BODY)
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

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    runtime.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let app = axum::Router::new().route("/customers", get(list).post(create));
        axum::serve(listener, app).await.context("server error")
    })
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A server process, killed and reaped when dropped (also on error paths).
struct Server {
    name: String,
    child: std::process::Child,
    /// Its stderr, kept in an anonymous temporary file so a chatty server never blocks on
    /// a full pipe, and read back when it fails.
    log: File,
    port: u16,
}

impl Server {
    fn spawn(name: &str, mut cmd: Command, port: u16) -> Result<Self> {
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

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Errors if the process has exited, with the end of its stderr.
    fn check_alive(&mut self) -> Result<()> {
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
    fn wait_listening(&mut self) -> Result<()> {
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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The release `sandbox` binary next to this bench (`<target>/release/deps/throughput-*`),
/// built with cargo if it is missing.
fn sandbox_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the bench executable")?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("unexpected bench location {}", exe.display()))?;
    let bin = release.join(format!("sandbox{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!(
        "{} is missing; running cargo build --release --bin sandbox",
        bin.display()
    );
    let target_dir = release
        .parent()
        .ok_or_else(|| anyhow!("unexpected bench location {}", exe.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "sandbox"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .context("cannot run cargo build")?;
    if !status.success() || !bin.is_file() {
        bail!("cargo build --release --bin sandbox failed ({status})");
    }
    Ok(bin)
}

fn sandbox_command(bin: &Path, spec: &Path, port: u16) -> Command {
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

// ---------------------------------------------------------------------------------------------
// /proc readings

/// User + system CPU seconds a process (all its threads) has used so far.
fn cpu_seconds(pid: &str) -> Result<f64> {
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

/// (VmRSS, VmHWM) of a process, in MB.
fn memory_mb(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let kb = |key: &str| -> Result<f64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))
    };
    Ok((kb("VmRSS:")? / 1024.0, kb("VmHWM:")? / 1024.0))
}

// ---------------------------------------------------------------------------------------------
// Load generation

/// One request, sent over and over.
struct Target {
    method: reqwest::Method,
    url: String,
    headers: HeaderMap,
    body: Option<&'static str>,
    /// The status the request must get before measuring.
    expect: u16,
}

impl Target {
    fn get(base: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static(API_KEY),
        );
        Self {
            method: reqwest::Method::GET,
            url: format!("{base}/customers"),
            headers,
            body: None,
            expect: 200,
        }
    }

    fn post(base: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static(API_KEY),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            HeaderName::from_static("x-idempotency-key"),
            HeaderValue::from_static(IDEMPOTENCY_KEY),
        );
        Self {
            method: reqwest::Method::POST,
            url: format!("{base}/customers"),
            headers,
            body: Some(POST_BODY),
            expect: 201,
        }
    }

    fn request(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        let builder = client
            .request(self.method.clone(), &self.url)
            .headers(self.headers.clone());
        match self.body {
            Some(body) => builder.body(body),
            None => builder,
        }
    }

    /// Sends the request once and checks the status; returns the body size.
    async fn verify(&self, client: &reqwest::Client) -> Result<usize> {
        let response = self
            .request(client)
            .send()
            .await
            .with_context(|| format!("{} {} failed", self.method, self.url))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("cannot read the answer to {} {}", self.method, self.url))?;
        if status != self.expect {
            bail!(
                "{} {} answered {status}, expected {}; body:\n{}",
                self.method,
                self.url,
                self.expect,
                String::from_utf8_lossy(&body)
            );
        }
        Ok(body.len())
    }
}

fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")
}

fn histogram() -> Result<Histogram<u64>> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow!("histogram: {e:?}"))
}

#[derive(Debug)]
struct WorkerResult {
    latency_us: Histogram<u64>,
    ok: u64,
    non_2xx: u64,
    errors: u64,
    /// The first non-2xx answer or transport error, for the report.
    first_failure: Option<String>,
}

async fn worker(
    target: Arc<Target>,
    measure_from: Instant,
    measure_until: Instant,
) -> Result<WorkerResult> {
    let client = client()?;
    let mut result = WorkerResult {
        latency_us: histogram()?,
        ok: 0,
        non_2xx: 0,
        errors: 0,
        first_failure: None,
    };
    let mut consecutive_errors = 0;
    for _ in 0..MAX_REQUESTS_PER_WORKER {
        let start = Instant::now();
        if start >= measure_until {
            break;
        }
        let outcome = match target.request(&client).send().await {
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
                    result.ok += 1;
                    let us =
                        u64::try_from(end.duration_since(start).as_micros()).unwrap_or(u64::MAX);
                    result.latency_us.saturating_record(us.max(1));
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
struct Row {
    name: String,
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    errors: u64,
    /// Server CPU during the window, in % of one core.
    server_cpu_pct: f64,
    /// Server CPU time per successful request, µs.
    server_us_per_req: f64,
    /// This (load generator) process' CPU during the window, in % of one core.
    client_cpu_pct: f64,
    first_failure: Option<String>,
}

async fn load(
    name: &str,
    server_pid: u32,
    target: Target,
    connections: usize,
    measure: Duration,
) -> Result<Row> {
    let target = Arc::new(target);
    let measure_from = Instant::now() + WARM_UP;
    let measure_until = measure_from + measure;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        tasks.spawn(worker(target.clone(), measure_from, measure_until));
    }
    // CPU readings bracket the measured window.
    tokio::time::sleep_until(measure_from.into()).await;
    let server_pid = server_pid.to_string();
    let (srv0, cli0) = (cpu_seconds(&server_pid)?, cpu_seconds("self")?);
    tokio::time::sleep_until(measure_until.into()).await;
    let (srv1, cli1) = (cpu_seconds(&server_pid)?, cpu_seconds("self")?);

    let mut latency_us = histogram()?;
    let (mut ok, mut non_2xx, mut errors, mut first_failure) = (0, 0, 0, None);
    while let Some(joined) = tasks.join_next().await {
        let r = joined.context("a load worker panicked")??;
        latency_us
            .add(&r.latency_us)
            .map_err(|e| anyhow!("histogram: {e:?}"))?;
        ok += r.ok;
        non_2xx += r.non_2xx;
        errors += r.errors;
        first_failure = first_failure.or(r.first_failure);
    }
    let secs = measure.as_secs_f64();
    let server_cpu = srv1 - srv0;
    Ok(Row {
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
        client_cpu_pct: 100.0 * (cli1 - cli0) / secs,
        first_failure,
    })
}

// ---------------------------------------------------------------------------------------------
// Start-up

/// Spawns the sandbox and polls `GET /customers` every ~1 ms; returns the time to the first 200.
async fn startup_once(bin: &Path, spec: &Path) -> Result<Duration> {
    let port = free_port()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .context("cannot build the HTTP client")?;
    let target = Target::get(&format!("http://127.0.0.1:{port}"));
    let started = Instant::now();
    let mut server = Server::spawn("sandbox", sandbox_command(bin, spec, port), port)?;
    loop {
        if let Ok(response) = target.request(&client).send().await {
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            if status == 200 {
                return Ok(started.elapsed());
            }
            bail!(
                "GET /customers answered {status} during start-up; body:\n{}",
                String::from_utf8_lossy(&body)
            );
        }
        server.check_alive()?;
        if started.elapsed() > READY_TIMEOUT {
            bail!("the sandbox did not answer within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The run

struct BareReport {
    get: Row,
    post: Row,
    body_bytes: usize,
    rss_mb: f64,
    peak_mb: f64,
}

struct SpecReport {
    label: String,
    spec: PathBuf,
    get: Row,
    post: Row,
    startup: Vec<Duration>,
    idle_rss_mb: f64,
    rss_mb: f64,
    peak_mb: f64,
    get_body_bytes: usize,
    post_body_bytes: usize,
}

fn specs() -> Vec<(String, PathBuf)> {
    if let Some(list) = std::env::var_os("BENCH_SPEC") {
        return std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| {
                // A short label: the last two components, e.g. `dakota/openapi.yaml`.
                let label = p
                    .iter()
                    .rev()
                    .take(2)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<PathBuf>()
                    .display()
                    .to_string();
                (label, p)
            })
            .collect();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![("ours".to_owned(), root.join("specs/dakota/openapi.yaml"))];
    let vendor = root.join("../shared/vendor/dakota/openapi.yaml");
    if vendor.is_file() {
        out.push(("vendor".to_owned(), vendor));
    }
    out
}

fn run() -> Result<()> {
    let seconds = match std::env::var("BENCH_SECONDS") {
        Ok(s) => s
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
            .ok_or_else(|| anyhow!("BENCH_SECONDS must be a number of seconds, got {s:?}"))?,
        Err(_) => DEFAULT_SECONDS,
    };
    let measure = Duration::from_secs_f64(seconds);
    let connections = match std::env::var("BENCH_CONNECTIONS") {
        Ok(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| anyhow!("BENCH_CONNECTIONS must be 1..=1024, got {s:?}"))?,
        Err(_) => DEFAULT_CONNECTIONS,
    };
    // Other work on the machine skews every number: show how busy it was.
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let specs = specs();
    for (_, spec) in &specs {
        if !spec.is_file() {
            bail!("spec {} not found", spec.display());
        }
    }
    let sandbox = sandbox_binary()?;
    let exe = std::env::current_exe().context("cannot locate the bench executable")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    eprintln!(
        "sandbox binary: {}\n{connections} connections, {WARM_UP:?} warm-up + {measure:?} per scenario",
        sandbox.display()
    );

    // Bare axum.
    let port = free_port()?;
    let mut cmd = Command::new(&exe);
    cmd.arg(BARE_SERVER_ARG).arg(port.to_string());
    let mut bare = Server::spawn("bare axum server", cmd, port)?;
    bare.wait_listening()?;
    let base = bare.base_url();
    let bare_get_bytes = runtime.block_on(Target::get(&base).verify(&client()?))?;
    runtime.block_on(Target::post(&base).verify(&client()?))?;
    eprintln!("measuring bare axum GET");
    let bare_get = runtime.block_on(load(
        "bare axum GET",
        bare.pid(),
        Target::get(&base),
        connections,
        measure,
    ))?;
    eprintln!("measuring bare axum POST");
    let bare_post = runtime.block_on(load(
        "bare axum POST",
        bare.pid(),
        Target::post(&base),
        connections,
        measure,
    ))?;
    bare.check_alive()?;
    let (bare_rss, bare_peak) = memory_mb(bare.pid())?;
    drop(bare);

    let mut reports = Vec::new();
    for (label, spec) in &specs {
        eprintln!("[{label}] start-up runs");
        let mut startup = Vec::with_capacity(STARTUP_RUNS);
        for _ in 0..STARTUP_RUNS {
            startup.push(
                runtime
                    .block_on(startup_once(&sandbox, spec))
                    .with_context(|| format!("start-up with {}", spec.display()))?,
            );
        }
        startup.sort();

        let port = free_port()?;
        let mut server = Server::spawn("sandbox", sandbox_command(&sandbox, spec, port), port)?;
        server.wait_listening()?;
        let (idle_rss_mb, _) = memory_mb(server.pid())?;
        let base = server.base_url();
        let get_body_bytes = runtime
            .block_on(Target::get(&base).verify(&client()?))
            .with_context(|| format!("sandbox GET with {}", spec.display()))?;
        let post_body_bytes = runtime
            .block_on(Target::post(&base).verify(&client()?))
            .with_context(|| format!("sandbox POST with {}", spec.display()))?;
        eprintln!("[{label}] measuring sandbox GET");
        let get = runtime.block_on(load(
            &format!("sandbox GET [{label}]"),
            server.pid(),
            Target::get(&base),
            connections,
            measure,
        ))?;
        eprintln!("[{label}] measuring sandbox POST");
        let post = runtime.block_on(load(
            &format!("sandbox POST [{label}]"),
            server.pid(),
            Target::post(&base),
            connections,
            measure,
        ))?;
        server.check_alive()?;
        let (rss_mb, peak_mb) = memory_mb(server.pid())?;
        drop(server);
        reports.push(SpecReport {
            label: label.clone(),
            spec: spec.clone(),
            get,
            post,
            startup,
            idle_rss_mb,
            rss_mb,
            peak_mb,
            get_body_bytes,
            post_body_bytes,
        });
    }

    print_report(
        &loadavg,
        connections,
        measure,
        &BareReport {
            get: bare_get,
            post: bare_post,
            body_bytes: bare_get_bytes,
            rss_mb: bare_rss,
            peak_mb: bare_peak,
        },
        &reports,
    );
    Ok(())
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn print_report(
    loadavg: &str,
    connections: usize,
    measure: Duration,
    bare: &BareReport,
    reports: &[SpecReport],
) {
    let (bare_get, bare_post) = (&bare.get, &bare.post);
    let rows = [bare_get, bare_post]
        .into_iter()
        .chain(reports.iter().flat_map(|r| [&r.get, &r.post]));
    let width = rows.clone().map(|r| r.name.len()).max().unwrap_or(0).max(8);
    println!();
    println!(
        "{connections} keep-alive connections, 1 s warm-up + {:.1} s per scenario, {} cores, load average before the run {loadavg}",
        measure.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
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
    for r in rows.clone() {
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
    println!(
        "bare axum: body {} bytes, RSS after load {:.1} MB (peak {:.1} MB)",
        bare.body_bytes, bare.rss_mb, bare.peak_mb
    );
    for r in reports {
        let ratio_get = r.get.requests_per_sec / bare_get.requests_per_sec;
        let ratio_post = r.post.requests_per_sec / bare_post.requests_per_sec;
        let min = r.startup.first().copied().unwrap_or_default();
        let median = r
            .startup
            .get(r.startup.len() / 2)
            .copied()
            .unwrap_or_default();
        let clean = [&r.get, &r.post]
            .iter()
            .all(|row| row.non_2xx == 0 && row.errors == 0);
        println!();
        println!(
            "[{}] {} (GET body {} bytes, POST body {} bytes)",
            r.label,
            r.spec.display(),
            r.get_body_bytes,
            r.post_body_bytes
        );
        println!(
            "ratio GET  sandbox/bare: {ratio_get:.2}   ratio POST sandbox/bare: {ratio_post:.2}"
        );
        // The load generator shares the cores: server CPU per request is the fairer cost.
        println!(
            "server CPU per request, bare/sandbox: GET {:.2}   POST {:.2}",
            bare_get.server_us_per_req / r.get.server_us_per_req,
            bare_post.server_us_per_req / r.post.server_us_per_req
        );
        println!(
            "startup to first answer: min {:.1} ms, median {:.1} ms ({} runs)",
            min.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
            r.startup.len()
        );
        println!(
            "RSS after load: {:.1} MB (peak {:.1} MB; {:.1} MB before load)",
            r.rss_mb, r.peak_mb, r.idle_rss_mb
        );
        println!(
            "targets: throughput >= 50% of bare: GET {}, POST {}; start-up < 60 ms (median): {}; RSS < 40 MB: {}; 0 non-2xx/errors: {}",
            met(ratio_get >= 0.5),
            met(ratio_post >= 0.5),
            met(median < Duration::from_millis(60)),
            met(r.rss_mb < 40.0),
            met(clean)
        );
    }
}
