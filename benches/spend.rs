//! Dino's spend requests decided under load, and the ledger checked afterwards.
//!
//! ```text
//! cargo bench --bench spend
//! ```
//!
//! `BENCH_CONNECTIONS` (default 32) clients, each the spending key of a team of its own
//! whose account allows every request (the team key lifts the budget, threshold and largest
//! purchase first), send `POST /v1/spend-requests` of 1 cent with a fresh `Idempotency-Key`
//! for `BENCH_SECONDS` (default 5) after a 1 s warm-up, against the release `sandbox` on
//! `specs/dino/openapi.yaml`. Reports decisions per second (goal >= 20,000 on 2 cores) and
//! p50/p99, then checks for every team that its ledger entries add up to its wallet and
//! that it holds one `spend` entry per approved request. Goals are reported, never enforced.

mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use support::{Server, Settings, WARM_UP, free_port, sandbox_binary, sandbox_command};

fn main() -> ExitCode {
    support::async_main("spend", run)
}

async fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs/dino/openapi.yaml");
    let port = free_port()?;
    let mut server = Server::spawn(
        "sandbox",
        sandbox_command(&sandbox_binary()?, &spec, port),
        port,
    )?;
    server.wait_listening()?;
    let base = server.base_url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let teams: Vec<String> = (0..settings.connections)
        .map(|i| format!("bench{i}"))
        .collect();
    for team in &teams {
        prepare(&client, &base, team).await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for team in teams.clone() {
        let (client, base, stop, measuring) = (
            client.clone(),
            base.clone(),
            stop.clone(),
            measuring.clone(),
        );
        workers.push(tokio::spawn(async move {
            worker(client, base, team, stop, measuring).await
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    tokio::time::sleep(settings.measure).await;
    stop.store(true, Ordering::SeqCst);
    let elapsed = started.elapsed();
    let mut all = hdrhistogram::Histogram::<u64>::new(3)?;
    for w in workers {
        all.add(w.await??)?;
    }
    server.check_alive()?;
    let rate = all.len() as f64 / elapsed.as_secs_f64();
    println!(
        "spend requests decided: {:.0}/s over {} connections ({} in {:.1} s), p50 {:.2} ms, p99 {:.2} ms (goal >= 20,000/s: {})",
        rate,
        teams.len(),
        all.len(),
        elapsed.as_secs_f64(),
        all.value_at_quantile(0.5) as f64 / 1000.0,
        all.value_at_quantile(0.99) as f64 / 1000.0,
        if rate >= 20_000.0 { "met" } else { "NOT met" }
    );
    let mut checked = 0;
    for team in &teams {
        checked += check_ledger(&client, &base, team).await?;
    }
    println!(
        "ledger: {} teams, {checked} entries; every ledger adds up to its wallet",
        teams.len()
    );
    Ok(())
}

/// Lifts a team's limits so every request is approved, and its per-minute rate limit
/// (Dino's 120 a minute would otherwise be the figure measured).
async fn prepare(client: &reqwest::Client, base: &str, team: &str) -> Result<()> {
    let admin = format!("Bearer dba_test_{team}");
    let accounts: Value = client
        .get(format!("{base}/v1/accounts"))
        .header("authorization", &admin)
        .send()
        .await?
        .json()
        .await?;
    let id = accounts["data"][0]["id"]
        .as_str()
        .with_context(|| format!("no account in {accounts}"))?;
    let lifted = json!({"budget_cents": 1_000_000_000, "max_transaction_cents": null, "approval_threshold_cents": null});
    client
        .patch(format!("{base}/v1/accounts/{id}"))
        .header("authorization", &admin)
        .json(&lifted)
        .send()
        .await?;
    client
        .put(format!("{base}/__sandbox/rate-limit?tenant={team}"))
        .json(&json!({"limit": 1_000_000_000u64, "used": 0}))
        .send()
        .await?;
    Ok(())
}

async fn worker(
    client: reqwest::Client,
    base: String,
    team: String,
    stop: Arc<AtomicBool>,
    measuring: Arc<AtomicBool>,
) -> Result<hdrhistogram::Histogram<u64>> {
    let mut h = hdrhistogram::Histogram::<u64>::new(3)?;
    let auth = format!("Bearer din_test_{team}");
    let body = r#"{"amount_cents":1,"currency":"usd","merchant_name":"Bench","reason":"load"}"#;
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let t = Instant::now();
        let res = client
            .post(format!("{base}/v1/spend-requests"))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .header("idempotency-key", format!("{team}-{n}"))
            .body(body)
            .send()
            .await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        if status != 201 {
            bail!("{team}: {status} {}", String::from_utf8_lossy(&bytes));
        }
        if measuring.load(Ordering::Relaxed) {
            h.record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX))?;
        }
    }
    Ok(h)
}

/// The team's ledger adds up to its wallet, one `spend` entry per approved request.
async fn check_ledger(client: &reqwest::Client, base: &str, team: &str) -> Result<usize> {
    let records: Value = client
        .get(format!("{base}/__sandbox/resources/ledger?tenant={team}"))
        .send()
        .await?
        .json()
        .await?;
    let entries = records["records"].as_array().context("ledger records")?;
    let sum: i64 = entries
        .iter()
        .filter_map(|e| e["body"]["amount_cents"].as_i64())
        .sum();
    let balance: Value = client
        .get(format!("{base}/v1/balance"))
        .header("authorization", format!("Bearer din_test_{team}"))
        .send()
        .await?
        .json()
        .await?;
    let wallet = balance["wallet"]["available_cents"].as_i64().unwrap_or(-1);
    if 100_000 + sum != wallet {
        bail!(
            "{team}: ledger sums to {} but the wallet holds {wallet}",
            100_000 + sum
        );
    }
    let approved: Value = client
        .get(format!(
            "{base}/__sandbox/resources/spend-requests?tenant={team}"
        ))
        .send()
        .await?
        .json()
        .await?;
    let approved = approved["records"].as_array().map_or(0, |r| {
        r.iter()
            .filter(|x| x["body"]["status"] == "approved")
            .count()
    });
    if approved != entries.len() {
        bail!(
            "{team}: {approved} approved requests but {} ledger entries",
            entries.len()
        );
    }
    Ok(entries.len())
}
