//! Lifecycle benchmark: 10,000 payments with timed transitions, all advanced by one clock
//! step, while a concurrent GET load runs; reports how long the step took and the GET
//! latency (p50/p99) during it. Run with `cargo bench --bench lifecycle`.
//!
//! The server is the release `sandbox` binary serving `tests/specs/payments` (a payment goes
//! pending -> processing after 5 s and -> completed after 10 more), a separate process on
//! loopback. The clock is frozen, 10,000 payments are created, then a load of GETs runs for
//! 3 s; one second in, `POST /__sandbox/clock/advance {"seconds": 15}` moves every payment
//! two states on. Target: every payment completed in that one step, GET p99 under 5 ms.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

const PAYMENTS: usize = 10_000;
const CONNECTIONS: usize = 16;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sandbox_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .context("no target directory")?;
    let bin = dir.join("sandbox");
    if bin.exists() {
        return Ok(bin);
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "sandbox"])
        .status()?;
    if !status.success() || !bin.exists() {
        bail!("cannot build the release sandbox binary");
    }
    Ok(bin)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (_server, base) = start().await?;
    let client = reqwest::Client::new();
    let ids = Arc::new(create_payments(&client, &base).await?);
    measure_step(&client, &base, ids).await
}

/// Starts the sandbox on the payments spec with its clock frozen.
async fn start() -> anyhow::Result<(Server, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let spec = root.join("tests/specs/payments/openapi.yaml");
    let port = free_port()?;
    let server = Server(
        Command::new(sandbox_binary()?)
            .args(["serve", "--port", &port.to_string(), "--spec"])
            .arg(&spec)
            .env("SANDBOX_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{base}/__sandbox/clock"))
        .send()
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the sandbox did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client
        .post(format!("{base}/__sandbox/clock/freeze"))
        .send()
        .await?;
    Ok((server, base))
}

/// 10,000 payments, created over several connections.
async fn create_payments(client: &reqwest::Client, base: &str) -> anyhow::Result<Vec<String>> {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (client, base) = (client.clone(), base.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in (c..PAYMENTS).step_by(CONNECTIONS) {
                let res = client
                    .post(format!("{base}/payments"))
                    .header("x-api-key", "bench")
                    .json(&json!({"amount": 100}))
                    .send()
                    .await?;
                let v: Value = res.json().await?;
                ids.push(v["id"].as_str().unwrap_or_default().to_owned());
            }
            anyhow::Ok(ids)
        }));
    }
    let mut ids = Vec::with_capacity(PAYMENTS);
    for t in tasks {
        ids.extend(t.await??);
    }
    println!(
        "created {} payments in {:.2} s",
        ids.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(ids)
}

/// GET load for 3 s; the clock step happens one second in.
async fn measure_step(
    client: &reqwest::Client,
    base: &str,
    ids: Arc<Vec<String>>,
) -> anyhow::Result<()> {
    let stop = Instant::now() + Duration::from_secs(3);
    let mut load = Vec::new();
    for c in 0..CONNECTIONS / 2 {
        let (client, base, ids) = (client.clone(), base.to_owned(), ids.clone());
        load.push(tokio::spawn(async move {
            let mut h = hdrhistogram::Histogram::<u64>::new(3)?;
            let mut i = c * 997;
            while Instant::now() < stop {
                let id = &ids[i % ids.len()];
                i += 7919;
                let t = Instant::now();
                let res = client
                    .get(format!("{base}/payments/{id}"))
                    .header("x-api-key", "bench")
                    .send()
                    .await?;
                let _ = res.bytes().await?;
                h.record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX))?;
            }
            anyhow::Ok(h)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    let res = client
        .post(format!("{base}/__sandbox/clock/advance"))
        .json(&json!({"seconds": 15}))
        .send()
        .await?;
    let step = t.elapsed();
    if !res.status().is_success() {
        bail!("advance failed: {}", res.status());
    }
    let mut all = hdrhistogram::Histogram::<u64>::new(3)?;
    for l in load {
        all.add(l.await??)?;
    }
    let records: Value = client
        .get(format!("{base}/__sandbox/resources/payments"))
        .send()
        .await?
        .json()
        .await?;
    let completed = records["records"].as_array().map_or(0, |r| {
        r.iter()
            .filter(|x| x["body"]["status"] == "completed")
            .count()
    });
    println!(
        "clock step of 15 s: {:.1} ms for {completed}/{PAYMENTS} payments to reach completed (2 transitions each)",
        step.as_secs_f64() * 1000.0
    );
    println!(
        "concurrent GET /payments/{{id}} ({} connections): {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        CONNECTIONS / 2,
        all.len(),
        all.value_at_quantile(0.5) as f64 / 1000.0,
        all.value_at_quantile(0.99) as f64 / 1000.0,
        all.max() as f64 / 1000.0
    );
    let met = completed == PAYMENTS && all.value_at_quantile(0.99) < 5_000;
    println!(
        "target (all advance in one step, GET p99 < 5 ms): {}",
        if met { "met" } else { "NOT met" }
    );
    Ok(())
}
