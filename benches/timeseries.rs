//! dakkio's readings at volume: batch ingest over HTTP, an hourly average over a million
//! points, and the memory each stored point costs.
//!
//! Run it with:
//!
//! ```text
//! cargo bench --bench timeseries
//! ```
//!
//! What it measures, in one run, against `sandbox serve --spec specs/dakkio/openapi.yaml`
//! (the binary cargo builds for the bench, release settings):
//!
//! 1. **Ingest**: 1,000,000 readings of one source (temperature and humidity, one a
//!    second) sent as 1,000 `POST /api/data/batch` requests of 1,000 readings over
//!    `BENCH_CONNECTIONS` (default 4) keep-alive connections; readings per second from the
//!    first request to the last answer (goal: >= 200,000). The bodies are serialised before
//!    the clock starts, so the client's JSON work is not counted.
//! 2. **Query**: `POST /api/data/query` with `aggregation: avg, groupBy: hour` over all
//!    1,000,000 readings, 20 times after one warm-up; min, median and max in ms (goal:
//!    < 100 ms). The answer's row count and the sum of their counts are checked.
//! 3. **Memory**: the server's `VmRSS` before and after the ingest, per stored reading
//!    (goal: < 300 bytes).
//!
//! Goals are reported, never enforced: the bench exits 0 unless it cannot measure.

mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use support::{Server, free_port, sandbox_binary, sandbox_command, status_kb};

const POINTS: usize = 1_000_000;
const BATCH: usize = 1_000;
const ADMIN: &str = "dakkio_a_bench";

fn main() -> ExitCode {
    support::async_main("timeseries", run)
}

async fn run() -> Result<()> {
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs/dakkio/openapi.yaml");
    let port = free_port()?;
    let mut server = Server::spawn(
        "sandbox",
        sandbox_command(&sandbox_binary()?, &spec, port),
        port,
    )?;
    server.wait_listening()?;
    let base = server.base_url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let (bucket, source) = setup(&client, &base).await?;
    let start = chrono::Utc::now().timestamp() - POINTS as i64 - 60;
    let bodies = batches(&bucket, &source, start);
    let before = status_kb(server.pid(), "VmRSS:")?;

    let connections: usize = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let took = ingest(&client, &base, bodies, connections).await?;
    server.check_alive()?;
    let after = status_kb(server.pid(), "VmRSS:")?;
    let rate = POINTS as f64 / took.as_secs_f64();
    println!(
        "ingest: {POINTS} readings in {} batches of {BATCH} over {connections} connections: {:.2} s, {:.0} readings/s (goal >= 200,000: {})",
        POINTS / BATCH,
        took.as_secs_f64(),
        rate,
        met(rate >= 200_000.0)
    );
    let per_point = (after.saturating_sub(before)) as f64 * 1024.0 / POINTS as f64;
    println!(
        "memory: VmRSS {:.1} MB before, {:.1} MB after: {per_point:.0} bytes per reading (goal < 300: {})",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        met(per_point < 300.0)
    );
    query(&client, &base, &bucket, start).await
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// A bucket and one source in a fresh organisation.
async fn setup(client: &reqwest::Client, base: &str) -> Result<(String, String)> {
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .header("x-api-key", ADMIN)
            .json(&body)
            .send()
    };
    let b: Value = post("/api/buckets", json!({"name": "bench"}))
        .await?
        .json()
        .await?;
    let bucket = b["bucket"]["_id"]
        .as_str()
        .with_context(|| format!("no bucket id in {b}"))?
        .to_owned();
    let s: Value = post(
        &format!("/api/buckets/{bucket}/sources"),
        json!({"name": "probe", "schema": {"temperature": "number", "humidity": "number"}}),
    )
    .await?
    .json()
    .await?;
    let source = s["dataSource"]["_id"]
        .as_str()
        .with_context(|| format!("no source id in {s}"))?
        .to_owned();
    Ok((bucket, source))
}

/// Every batch body, serialised: one reading a second from `start`.
fn batches(bucket: &str, source: &str, start: i64) -> Vec<bytes::Bytes> {
    (0..POINTS / BATCH)
        .map(|b| {
            let points: Vec<Value> = (0..BATCH)
                .map(|i| {
                    let n = b * BATCH + i;
                    let t = chrono::DateTime::from_timestamp(start + n as i64, 0)
                        .unwrap_or_default()
                        .format("%Y-%m-%dT%H:%M:%SZ")
                        .to_string();
                    json!({"dataSourceId": source, "timestamp": t,
                           "values": {"temperature": 15.0 + (n % 200) as f64 / 10.0, "humidity": 30 + n % 50}})
                })
                .collect();
            let body = json!({"bucketId": bucket, "dataPoints": points});
            bytes::Bytes::from(body.to_string())
        })
        .collect()
}

/// Sends every batch over `connections` workers; the time from the first send to the last
/// answer.
async fn ingest(
    client: &reqwest::Client,
    base: &str,
    bodies: Vec<bytes::Bytes>,
    connections: usize,
) -> Result<Duration> {
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, base, bodies, next) = (
            client.clone(),
            base.to_owned(),
            bodies.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return anyhow::Ok(());
                };
                let res = client
                    .post(format!("{base}/api/data/batch"))
                    .header("x-api-key", ADMIN)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                if res.status().as_u16() != 201 {
                    let status = res.status();
                    bail!(
                        "batch {i}: {status} {}",
                        res.text().await.unwrap_or_default()
                    );
                }
                res.bytes().await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(started.elapsed())
}

/// The hourly average over every reading, timed.
async fn query(client: &reqwest::Client, base: &str, bucket: &str, start: i64) -> Result<()> {
    let from = chrono::DateTime::from_timestamp(start, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let body = json!({"bucketId": bucket, "aggregation": "avg", "groupBy": "hour",
                      "filters": {"startTime": from, "limit": 1000}});
    let mut times = Vec::new();
    for round in 0..21 {
        let t = Instant::now();
        let answer: Value = client
            .post(format!("{base}/api/data/query"))
            .header("x-api-key", ADMIN)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let took = t.elapsed();
        let rows = answer["data"].as_array().map_or(&[][..], Vec::as_slice);
        let counted: u64 = rows.iter().filter_map(|r| r["count"].as_u64()).sum();
        if counted != POINTS as u64 {
            bail!(
                "the hourly average counts {counted} readings in {} rows, not {POINTS}",
                rows.len()
            );
        }
        if round > 0 {
            times.push(took.as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "query: hourly avg over {POINTS} readings ({} rows): min {:.1} ms, median {median:.1} ms, max {:.1} ms (goal < 100 ms: {})",
        (POINTS as f64 / 3600.0).ceil(),
        times[0],
        times[times.len() - 1],
        met(median < 100.0)
    );
    Ok(())
}
