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

mod support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use support::{
    READY_TIMEOUT, Row, Server, Settings, Target, WARM_UP, client, first_answer, free_port, load,
    loadavg, memory_mb, met, print_rows, runtime, sandbox_binary, sandbox_command, spawn_bare,
};

const STARTUP_RUNS: usize = 5;

fn main() -> ExitCode {
    // Checked before anything else: the bare server is this executable re-run.
    if let Some(code) = support::bare_server_main() {
        return code;
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
// Start-up

/// Spawns the sandbox and polls `GET /customers` every ~1 ms; returns the time to the first 200.
async fn startup_once(bin: &Path, spec: &Path) -> Result<Duration> {
    let port = free_port()?;
    let target = Target::get(&format!("http://127.0.0.1:{port}"));
    let cmd = sandbox_command(bin, spec, port);
    let (elapsed, _, _server) = first_answer("sandbox", cmd, port, &target, READY_TIMEOUT).await?;
    Ok(elapsed)
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
    let Settings {
        connections,
        measure,
    } = Settings::from_env()?;
    // Other work on the machine skews every number: show how busy it was.
    let loadavg = loadavg();
    let specs = specs();
    for (_, spec) in &specs {
        if !spec.is_file() {
            bail!("spec {} not found", spec.display());
        }
    }
    let sandbox = sandbox_binary()?;
    let runtime = runtime()?;
    eprintln!(
        "sandbox binary: {}\n{connections} connections, {WARM_UP:?} warm-up + {measure:?} per scenario",
        sandbox.display()
    );

    // Bare axum.
    let mut bare = spawn_bare()?;
    let base = bare.base_url();
    let bare_get_bytes = runtime
        .block_on(Target::get(&base).verify(&client()?))?
        .len();
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
        reports.push(measure_spec(
            &runtime,
            &sandbox,
            (label, spec),
            connections,
            measure,
        )?);
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

/// Start-up runs, then GET and POST load, on one spec.
fn measure_spec(
    runtime: &tokio::runtime::Runtime,
    sandbox: &Path,
    (label, spec): (&str, &Path),
    connections: usize,
    measure: Duration,
) -> Result<SpecReport> {
    eprintln!("[{label}] start-up runs");
    let mut startup = Vec::with_capacity(STARTUP_RUNS);
    for _ in 0..STARTUP_RUNS {
        startup.push(
            runtime
                .block_on(startup_once(sandbox, spec))
                .with_context(|| format!("start-up with {}", spec.display()))?,
        );
    }
    startup.sort();

    let port = free_port()?;
    let mut server = Server::spawn("sandbox", sandbox_command(sandbox, spec, port), port)?;
    server.wait_listening()?;
    let (idle_rss_mb, _) = memory_mb(server.pid())?;
    let base = server.base_url();
    let get_body_bytes = runtime
        .block_on(Target::get(&base).verify(&client()?))
        .with_context(|| format!("sandbox GET with {}", spec.display()))?
        .len();
    let post_body_bytes = runtime
        .block_on(Target::post(&base).verify(&client()?))
        .with_context(|| format!("sandbox POST with {}", spec.display()))?
        .len();
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
    Ok(SpecReport {
        label: label.to_owned(),
        spec: spec.to_owned(),
        get,
        post,
        startup,
        idle_rss_mb,
        rss_mb,
        peak_mb,
        get_body_bytes,
        post_body_bytes,
    })
}

fn print_report(
    loadavg: &str,
    connections: usize,
    measure: Duration,
    bare: &BareReport,
    reports: &[SpecReport],
) {
    let (bare_get, bare_post) = (&bare.get, &bare.post);
    let rows: Vec<&Row> = [bare_get, bare_post]
        .into_iter()
        .chain(reports.iter().flat_map(|r| [&r.get, &r.post]))
        .collect();
    println!();
    println!(
        "{connections} keep-alive connections, 1 s warm-up + {:.1} s per scenario, {} cores, load average before the run {loadavg}",
        measure.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    print_rows(&rows);
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
        let clean = r.get.clean() && r.post.clean();
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
