//! How the `sandbox` binary scales with the records it holds, side by side with a bare axum
//! handler (ratios to bare), on the official Dakota spec.
//!
//! Run it with:
//!
//! ```text
//! cargo bench --bench scale
//! ```
//!
//! What it measures, in one run:
//!
//! 1. **Fresh-key POST**: `POST /customers` with a new `x-idempotency-key` (UUID v4) on every
//!    request, so every request creates a customer: requests/s and p50/p99, without and with
//!    `--state` (a log in a temporary directory, synced before each answer), and as ratios to
//!    the bare server's POST (targets: >= 40% without `--state`, >= 25% with it). The three
//!    POST scenarios run on servers of their own, measured in turns (five slices of each,
//!    interleaved), so a drift in the machine's speed during the run weighs on both sides of
//!    each ratio alike.
//! 2. **List at scale**: `GET /customers?limit=10` in one tenant holding 100, 10,000 and
//!    100,000 customers, and the slowdown from 100 to 100,000 (target: within 1.5x). The
//!    records are created through the API (fresh-key POSTs from every connection, in a tenant
//!    of their own); the rate of that seeding is reported too, as creates at scale.
//! 3. **Single GET** `GET /customers/{id}` at 100,000 customers (1,000 ids in turn).
//! 4. **Memory**: the server's `VmRSS` before seeding and at each size, as KB per 1,000
//!    customers; the target (<= 1,500 KB) is on the slope from 10,000 to 100,000, which leaves
//!    start-up memory out. It includes the idempotency keys the seeding POSTs leave behind.
//! 5. **Restart**: 100,000 customers created with `--state`, the server killed with SIGKILL,
//!    then the time from spawning `sandbox serve --state FILE` to the first 200 answer to
//!    `GET /customers?limit=1` (target: < 1 s), with the `meta.total_count` it reports and the
//!    state file's size.
//!
//! The load generator is in this process, as in `throughput`: `BENCH_CONNECTIONS` (default 32)
//! workers with a keep-alive connection each, a 1 s warm-up, then `BENCH_SECONDS` (default 5)
//! measured. The spec is `../shared/vendor/dakota/openapi.yaml` from the repository root when
//! present, else `specs/dakota/openapi.yaml`; `BENCH_SPEC` names another. The `sandbox` binary
//! is the one cargo builds for the bench (release settings). Targets are reported, never
//! enforced: the bench exits 0 unless it cannot measure. `BENCH_POST_ONLY=1` stops after the
//! POST scenarios (bare, fresh key, fresh key with `--state`), for quick comparisons.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use support::{
    CpuMark, IDEMPOTENCY_HEADER, POST_BODY, Row, Server, Settings, Target, client, first_answer,
    free_port, histogram, load, load_in_turns, loadavg, met, micros, print_rows, row, runtime,
    sandbox_binary, sandbox_command, spawn_bare, status_kb, uuid_v4,
};

/// The tenant (API key) the POST scenarios create in.
const POST_TENANT: &str = "bench-post";
/// The tenant seeded to each size, alone in its server so its memory is its own.
const SCALE_TENANT: &str = "bench-scale";
const SIZES: [usize; 3] = [100, 10_000, 100_000];
const LIST_QUERY: &str = "/customers?limit=10";
/// Ids the single-GET scenario cycles through, spread over the whole collection.
const ITEM_IDS: usize = 1_000;
/// Attempts at one seeding create; a retry reuses the key, so it cannot create twice.
const CREATE_ATTEMPTS: u32 = 3;
/// Longest wait for a restart that loads 100,000 records.
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

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

fn spec_path() -> Result<PathBuf> {
    let spec = match std::env::var_os("BENCH_SPEC") {
        Some(path) => PathBuf::from(path),
        None => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let vendor = root.join("../shared/vendor/dakota/openapi.yaml");
            if vendor.is_file() {
                vendor
            } else {
                root.join("specs/dakota/openapi.yaml")
            }
        }
    };
    if !spec.is_file() {
        bail!("spec {} not found", spec.display());
    }
    Ok(spec)
}

/// What every scenario needs.
struct Ctx {
    runtime: tokio::runtime::Runtime,
    settings: Settings,
    bin: PathBuf,
    spec: PathBuf,
}

impl Ctx {
    /// Starts `sandbox serve` (with `--state FILE` when given) and waits until it listens.
    fn sandbox(&self, state: Option<&Path>) -> Result<Server> {
        let port = free_port()?;
        let mut server = Server::spawn("sandbox", self.command(state, port), port)?;
        server.wait_listening()?;
        Ok(server)
    }

    fn command(&self, state: Option<&Path>, port: u16) -> Command {
        let mut cmd = sandbox_command(&self.bin, &self.spec, port);
        if let Some(file) = state {
            cmd.arg("--state").arg(file);
        }
        cmd
    }

    fn load(&self, name: &str, server: &Server, target: Target) -> Result<Row> {
        eprintln!("measuring {name}");
        self.runtime.block_on(load(
            name,
            server.pid(),
            target,
            self.settings.connections,
            self.settings.measure,
        ))
    }

    fn verify(&self, target: &Target) -> Result<Bytes> {
        self.runtime.block_on(target.verify(&client()?))
    }
}

fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    let loadavg_before = loadavg();
    let ctx = Ctx {
        runtime: runtime()?,
        spec: spec_path()?,
        bin: sandbox_binary()?,
        settings,
    };
    eprintln!(
        "sandbox binary: {}\nspec: {}\n{} connections, 1 s warm-up + {:?} per scenario",
        ctx.bin.display(),
        ctx.spec.display(),
        ctx.settings.connections,
        ctx.settings.measure
    );
    let state_dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let (bare_post, post, post_state) = measure_posts(&ctx, &state_dir.path().join("post.state"))?;
    let bare = measure_bare(&ctx, bare_post)?;
    if std::env::var_os("BENCH_POST_ONLY").is_some() {
        println!();
        print_rows(&[&bare.post, &post, &post_state]);
        return Ok(());
    }
    let scale = measure_scale(&ctx)?;
    let restart = measure_restart(&ctx, &state_dir.path().join("restart.state"))?;
    let report = Report {
        bare,
        post,
        post_state,
        scale,
        restart,
    };
    print_report(&ctx, &loadavg_before, &report);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scenarios

struct Bare {
    post: Row,
    list: Row,
    item: Row,
    list_body_bytes: usize,
}

/// The bare server's lists and single GETs (its POST is measured with the sandbox's).
fn measure_bare(ctx: &Ctx, post: Row) -> Result<Bare> {
    let bare = spawn_bare()?;
    let base = bare.base_url();
    let list = || Target::get_url(format!("{base}{LIST_QUERY}"), SCALE_TENANT);
    let item = || {
        Target::get_url(
            format!("{base}/customers/1NFHrqBHb3cTfLVkFSGmHZqdDPi"),
            SCALE_TENANT,
        )
    };
    let list_body_bytes = ctx.verify(&list())?.len();
    ctx.verify(&item())?;
    Ok(Bare {
        list_body_bytes,
        post,
        list: ctx.load("bare GET list", &bare, list())?,
        item: ctx.load("bare GET item", &bare, item())?,
    })
}

/// Rounds of the fresh-key POST scenarios taken in turns.
const POST_ROUNDS: u32 = 5;

/// Fresh-key `POST /customers` on the bare server, on the sandbox, and on the sandbox with
/// `--state state`, each on a server of its own, measured in turns (a slice of each, five
/// times) so that a drift in the machine's speed weighs on the ratios' both sides alike.
fn measure_posts(ctx: &Ctx, state: &Path) -> Result<(Row, Row, Row)> {
    let bare = spawn_bare()?;
    let plain = ctx.sandbox(None)?;
    let durable = ctx.sandbox(Some(state))?;
    let mut scenarios = Vec::new();
    for (name, server) in [
        ("bare POST", &bare),
        ("sandbox POST fresh key", &plain),
        ("sandbox POST fresh key, --state", &durable),
    ] {
        let target = Target::post_fresh(&server.base_url(), POST_TENANT);
        ctx.verify(&target)?;
        scenarios.push((name.to_owned(), server.pid(), target));
    }
    let rows = ctx.runtime.block_on(load_in_turns(
        scenarios,
        ctx.settings.connections,
        ctx.settings.measure,
        POST_ROUNDS,
    ))?;
    match <[Row; 3]>::try_from(rows) {
        Ok([bare, plain, durable]) => Ok((bare, plain, durable)),
        Err(_) => bail!("the POST scenarios did not give three rows"),
    }
}

/// One size of the seeded tenant.
struct Size {
    records: usize,
    /// Creating the records from the previous size up to this one.
    seed: Row,
    list: Row,
    rss_kb: u64,
    list_body_bytes: usize,
}

struct Scale {
    idle_rss_kb: u64,
    sizes: Vec<Size>,
    item: Row,
}

fn measure_scale(ctx: &Ctx) -> Result<Scale> {
    let mut server = ctx.sandbox(None)?;
    let base = server.base_url();
    let list = || Target::get_url(format!("{base}{LIST_QUERY}"), SCALE_TENANT);
    // One answered request first, so what the first request sets up is not counted per record.
    check_total(&ctx.verify(&list())?, 0)?;
    let idle_rss_kb = status_kb(server.pid(), "VmRSS:")?;
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    for records in SIZES {
        let name = format!("seed {} -> {records}", ids.len());
        eprintln!("{name}");
        let seeded = ctx.runtime.block_on(create_many(
            &name,
            &server,
            SCALE_TENANT,
            records - ids.len(),
            ctx.settings.connections,
        ))?;
        ids.extend(seeded.ids);
        let body = ctx.verify(&list())?;
        check_total(&body, records)?;
        let rss_kb = status_kb(server.pid(), "VmRSS:")?;
        sizes.push(Size {
            records,
            seed: seeded.row,
            list: ctx.load(&format!("sandbox GET list @{records}"), &server, list())?,
            rss_kb,
            list_body_bytes: body.len(),
        });
    }
    let step = (ids.len() / ITEM_IDS).max(1);
    let urls: Vec<String> = ids
        .iter()
        .step_by(step)
        .map(|id| format!("{base}/customers/{id}"))
        .collect();
    let item = Target::get_urls(urls, SCALE_TENANT);
    ctx.verify(&item)?;
    let item = ctx.load(&format!("sandbox GET item @{}", ids.len()), &server, item)?;
    server.check_alive()?;
    Ok(Scale {
        idle_rss_kb,
        sizes,
        item,
    })
}

struct Restart {
    seed: Row,
    file_bytes: u64,
    elapsed: Duration,
    total_count: Option<u64>,
}

/// Seeds 100,000 customers with `--state file`, kills the server, and times the restart.
fn measure_restart(ctx: &Ctx, file: &Path) -> Result<Restart> {
    let records = SIZES[SIZES.len() - 1];
    let mut server = ctx.sandbox(Some(file))?;
    let name = format!("seed 0 -> {records}, --state");
    eprintln!("{name}");
    let seeded = ctx.runtime.block_on(create_many(
        &name,
        &server,
        SCALE_TENANT,
        records,
        ctx.settings.connections,
    ))?;
    // SIGKILL: the restart must find every acknowledged create in the log, with no shutdown
    // write to help.
    server.kill()?;
    drop(server);
    let file_bytes = std::fs::metadata(file)
        .with_context(|| format!("cannot read the size of {}", file.display()))?
        .len();
    eprintln!("restarting with {records} records in the state file");
    let port = free_port()?;
    let target = Target::get_url(
        format!("http://127.0.0.1:{port}/customers?limit=1"),
        SCALE_TENANT,
    );
    let (elapsed, body, _server) = ctx.runtime.block_on(first_answer(
        "restarted sandbox",
        ctx.command(Some(file), port),
        port,
        &target,
        RESTART_TIMEOUT,
    ))?;
    Ok(Restart {
        seed: seeded.row,
        file_bytes,
        elapsed,
        total_count: total_count(&body),
    })
}

// ---------------------------------------------------------------------------------------------
// Seeding

struct Seeded {
    ids: Vec<String>,
    row: Row,
}

/// Creates `count` customers in `tenant` with fresh-key POSTs from `connections` workers;
/// returns their ids and the rate, timed from the first request to the last answer.
async fn create_many(
    name: &str,
    server: &Server,
    tenant: &'static str,
    count: usize,
    connections: usize,
) -> Result<Seeded> {
    let url: Arc<str> = format!("{}/customers", server.base_url()).into();
    let next = Arc::new(AtomicUsize::new(0));
    let before = CpuMark::now(server.pid())?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections.min(count) {
        let (url, next) = (url.clone(), next.clone());
        tasks.spawn(async move {
            let client = client()?;
            let mut latency_us = histogram()?;
            let mut ids = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let start = Instant::now();
                ids.push(create_one(&client, &url, tenant).await?);
                latency_us.saturating_record(micros(start, Instant::now()));
            }
            anyhow::Ok((latency_us, ids))
        });
    }
    let mut latency_us = histogram()?;
    let mut ids = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        let (h, i) = joined.context("a seeding worker panicked")??;
        latency_us
            .add(&h)
            .map_err(|e| anyhow!("histogram: {e:?}"))?;
        ids.extend(i);
    }
    let secs = started.elapsed().as_secs_f64();
    let after = CpuMark::now(server.pid())?;
    let row = row(name, secs, &latency_us, (&before, &after), (0, 0, None));
    Ok(Seeded { ids, row })
}

/// One create; returns the new customer's id. A transport error is retried with the same
/// key, which the sandbox answers with the first create's answer if that one got through.
async fn create_one(client: &reqwest::Client, url: &str, tenant: &str) -> Result<String> {
    let key = uuid_v4();
    let mut attempt = 0;
    let body = loop {
        attempt += 1;
        let sent = client
            .post(url)
            .header("x-api-key", tenant)
            .header(CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, &key)
            .body(POST_BODY)
            .send()
            .await;
        let answer = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                response.bytes().await.map(|body| (status, body))
            }
            Err(e) => Err(e),
        };
        match answer {
            Ok((201, body)) => break body,
            Ok((status, body)) => bail!(
                "POST {url} answered {status} while seeding; body:\n{}",
                String::from_utf8_lossy(&body)
            ),
            Err(e) if attempt >= CREATE_ATTEMPTS => {
                return Err(e).with_context(|| format!("POST {url} failed {attempt} times"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("id")?.as_str().map(str::to_owned))
        .ok_or_else(|| {
            anyhow!(
                "POST {url} answered 201 without an id; body:\n{}",
                String::from_utf8_lossy(&body)
            )
        })
}

/// `meta.total_count` of a Dakota list page.
fn total_count(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .pointer("/meta/total_count")?
        .as_u64()
}

fn check_total(body: &[u8], expected: usize) -> Result<()> {
    match total_count(body) {
        Some(n) if n == expected as u64 => Ok(()),
        found => bail!(
            "GET {LIST_QUERY} reports total_count {found:?}, expected {expected}; body:\n{}",
            String::from_utf8_lossy(body)
                .chars()
                .take(500)
                .collect::<String>()
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// The report

struct Report {
    bare: Bare,
    post: Row,
    post_state: Row,
    scale: Scale,
    restart: Restart,
}

/// One line of the final table: a figure, its goal (if it has one) and whether it is met.
struct Figure {
    name: String,
    value: String,
    goal: String,
    met: Option<bool>,
}

fn figure(name: impl Into<String>, value: impl Into<String>) -> Figure {
    Figure {
        name: name.into(),
        value: value.into(),
        goal: String::new(),
        met: None,
    }
}

fn goal(name: impl Into<String>, value: impl Into<String>, goal: &str, met: bool) -> Figure {
    Figure {
        goal: goal.to_owned(),
        met: Some(met),
        ..figure(name, value)
    }
}

fn rate(row: &Row) -> String {
    format!("{:.0} req/s", row.requests_per_sec)
}

fn latency(row: &Row) -> String {
    format!("{:.3} / {:.3} ms", row.p50_ms, row.p99_ms)
}

/// A row's rate and latency, and its ratio to the bare server's, against `at_least` if given.
fn versus_bare(name: &str, row: &Row, bare: &Row, at_least: Option<f64>) -> [Figure; 3] {
    let ratio = row.requests_per_sec / bare.requests_per_sec;
    let ratio_name = format!("{name}: rate / bare");
    [
        figure(format!("{name}: rate"), rate(row)),
        figure(format!("{name}: p50 / p99"), latency(row)),
        match at_least {
            // Three places: a ratio just under the goal must not print as the goal itself.
            Some(min) => goal(
                ratio_name,
                format!("{ratio:.3}"),
                &format!(">= {min:.2}"),
                ratio >= min,
            ),
            None => figure(ratio_name, format!("{ratio:.2}")),
        },
    ]
}

fn post_figures(r: &Report) -> Vec<Figure> {
    let bare = &r.bare.post;
    let mut out = vec![
        figure("bare POST: rate", rate(bare)),
        figure("bare POST: p50 / p99", latency(bare)),
    ];
    out.extend(versus_bare("1. POST fresh key", &r.post, bare, Some(0.40)));
    out.extend(versus_bare(
        "5. POST fresh key --state",
        &r.post_state,
        bare,
        Some(0.25),
    ));
    out
}

fn list_figures(r: &Report) -> Vec<Figure> {
    let sizes = &r.scale.sizes;
    let mut out = vec![
        figure("bare GET list: rate", rate(&r.bare.list)),
        figure("bare GET list: p50 / p99", latency(&r.bare.list)),
    ];
    for size in sizes {
        let seed = &size.seed;
        out.push(figure(
            format!(
                "2. seeding {}: rate, p50 / p99",
                seed.name.trim_start_matches("seed ")
            ),
            format!("{} , {}", rate(seed), latency(seed)),
        ));
    }
    for size in sizes {
        out.extend(versus_bare(
            &format!("2. GET list @{}", size.records),
            &size.list,
            &r.bare.list,
            None,
        ));
    }
    if let (Some(small), Some(large)) = (sizes.first(), sizes.last()) {
        let (s, l) = (&small.list, &large.list);
        let slowdowns = [
            ("rate", s.requests_per_sec / l.requests_per_sec),
            ("p50", l.p50_ms / s.p50_ms),
            ("p99", l.p99_ms / s.p99_ms),
        ];
        for (what, x) in slowdowns {
            out.push(goal(
                format!(
                    "2. GET list @{} vs @{}: {what} slowdown",
                    large.records, small.records
                ),
                format!("{x:.2}x"),
                "<= 1.5x",
                x <= 1.5,
            ));
        }
    }
    out.extend(versus_bare(
        &format!("3. GET item @{}", sizes.last().map_or(0, |s| s.records)),
        &r.scale.item,
        &r.bare.item,
        None,
    ));
    out
}

/// KB of RSS per 1,000 records between two readings.
fn kb_per_1000(from: (usize, u64), to: (usize, u64)) -> f64 {
    let kb = to.1 as f64 - from.1 as f64;
    kb * 1000.0 / (to.0 - from.0) as f64
}

fn memory_figures(r: &Report) -> Vec<Figure> {
    let idle = (0, r.scale.idle_rss_kb);
    let mut out = vec![figure(
        "4. RSS before seeding",
        format!("{:.1} MB", idle.1 as f64 / 1024.0),
    )];
    for size in &r.scale.sizes {
        out.push(figure(
            format!("4. RSS @{}", size.records),
            format!(
                "{:.1} MB, {:.0} KB per 1,000 since start",
                size.rss_kb as f64 / 1024.0,
                kb_per_1000(idle, (size.records, size.rss_kb))
            ),
        ));
    }
    let sizes = &r.scale.sizes;
    if let [.., a, b] = sizes.as_slice() {
        let slope = kb_per_1000((a.records, a.rss_kb), (b.records, b.rss_kb));
        out.push(goal(
            format!("4. RSS slope @{} -> @{}, per 1,000", a.records, b.records),
            format!("{slope:.0} KB"),
            "<= 1500 KB",
            slope <= 1500.0,
        ));
    }
    out
}

fn restart_figures(r: &Report) -> Vec<Figure> {
    let restart = &r.restart;
    let expected = SIZES[SIZES.len() - 1] as u64;
    vec![
        figure(
            format!("6. {}: rate, p50 / p99", restart.seed.name),
            format!("{} , {}", rate(&restart.seed), latency(&restart.seed)),
        ),
        figure(
            "6. state file size",
            format!("{:.1} MB", restart.file_bytes as f64 / (1024.0 * 1024.0)),
        ),
        goal(
            "6. restart to first 200",
            format!("{:.0} ms", restart.elapsed.as_secs_f64() * 1e3),
            "< 1000 ms",
            restart.elapsed < Duration::from_secs(1),
        ),
        goal(
            "6. meta.total_count after restart",
            restart
                .total_count
                .map_or_else(|| "missing".to_owned(), |n| n.to_string()),
            &format!("= {expected}"),
            restart.total_count == Some(expected),
        ),
    ]
}

fn print_report(ctx: &Ctx, loadavg_before: &str, r: &Report) {
    let mut rows = vec![
        &r.bare.post,
        &r.bare.list,
        &r.bare.item,
        &r.post,
        &r.post_state,
    ];
    for size in &r.scale.sizes {
        rows.extend([&size.seed, &size.list]);
    }
    rows.extend([&r.scale.item, &r.restart.seed]);
    println!();
    println!(
        "{} keep-alive connections, 1 s warm-up + {:.1} s per load scenario (seeding: a fixed count), {} cores, load average before {loadavg_before}, after {}",
        ctx.settings.connections,
        ctx.settings.measure.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    println!("spec: {}", ctx.spec.display());
    print_rows(&rows);
    let bytes: Vec<String> = r
        .scale
        .sizes
        .iter()
        .map(|s| format!("@{}: {} bytes", s.records, s.list_body_bytes))
        .collect();
    println!(
        "GET {LIST_QUERY} answer: sandbox {}; bare {} bytes",
        bytes.join(", "),
        r.bare.list_body_bytes
    );

    let mut figures = post_figures(r);
    figures.extend(list_figures(r));
    figures.extend(memory_figures(r));
    figures.extend(restart_figures(r));
    let clean = rows.iter().all(|row| row.clean());
    figures.push(goal(
        "non-2xx answers and transport errors",
        if clean { "none" } else { "some" },
        "none",
        clean,
    ));
    let width = figures.iter().map(|f| f.name.len()).max().unwrap_or(0);
    let value_width = figures.iter().map(|f| f.value.len()).max().unwrap_or(0);
    println!();
    println!(
        "{:width$}  {:value_width$}  {:10}  met",
        "figure", "value", "goal"
    );
    for f in &figures {
        println!(
            "{:width$}  {:value_width$}  {:10}  {}",
            f.name,
            f.value,
            f.goal,
            f.met.map_or("", met)
        );
    }
}
