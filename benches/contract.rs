//! Contract-tester throughput: replays 1,000 steps against a local release sandbox and
//! reports steps/s and the share of time spent validating (target: 2,000 steps/s on 2 cores).
//!
//! ```text
//! cargo bench --bench contract
//! ```
//!
//! The bench builds `target/release/sandbox` if it is missing, starts
//! `sandbox serve --spec specs/dakota/openapi.yaml --port 0`, copies the scenarios of
//! `fixtures/dakota/` into a temporary folder as many times as needed to reach
//! `BENCH_STEPS` (default 1,000) steps, and runs the release `sandbox contract-test` on them
//! with `--json`. Throughput and the validation share come from that report: the tester
//! times the HTTP exchange and the checks of each step separately. Process start-up, spec
//! loading and fixture parsing are outside the measured window and reported apart as the
//! wall time of the whole command.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("contract bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn release_binary() -> Result<PathBuf> {
    let bin = root().join("target/release/sandbox");
    if !bin.exists() {
        eprintln!("building {} ...", bin.display());
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--bin", "sandbox"])
            .current_dir(root())
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("cargo build --release failed");
        }
    }
    Ok(bin)
}

/// Copies the Dakota fixtures until there are at least `wanted` steps; returns the count.
fn make_fixtures(dir: &Path, wanted: usize) -> Result<usize> {
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(root().join("fixtures/dakota"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path)?;
            let steps = text.lines().filter(|l| l.starts_with("- name:")).count();
            sources.push((path, text, steps));
        }
    }
    sources.sort();
    if sources.is_empty() {
        bail!("no fixtures under fixtures/dakota");
    }
    let mut total = 0;
    let mut copy = 0;
    while total < wanted {
        for (path, text, steps) in &sources {
            if total >= wanted {
                break;
            }
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("f");
            let name = format!("{copy:04}-{stem}");
            let text = text.replacen(&format!("name: {stem}\n"), &format!("name: {name}\n"), 1);
            std::fs::write(dir.join(format!("{name}.yaml")), text)?;
            total += steps;
        }
        copy += 1;
    }
    Ok(total)
}

fn run() -> Result<()> {
    let bin = release_binary()?;
    let spec = root().join("specs/dakota/openapi.yaml");
    let wanted: usize = std::env::var("BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut server = Command::new(&bin)
        .args(["serve", "--port", "0", "--spec"])
        .arg(&spec)
        .env("SANDBOX_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the sandbox")?;
    let stdout = server.stdout.take().context("no stdout")?;
    let mut url = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(u) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            url = Some(u.to_owned());
            break;
        }
    }
    let result = (|| {
        let url = url.context("the sandbox printed no URL")?;
        let dir = tempfile::tempdir()?;
        let steps = make_fixtures(dir.path(), wanted)?;
        let report = dir.path().join("report.json");
        let started = Instant::now();
        let out = Command::new(&bin)
            .args([
                "contract-test",
                "--base-url",
                &url,
                "--header",
                "x-api-key: bench",
            ])
            .arg("--spec")
            .arg(&spec)
            .arg("--json")
            .arg(&report)
            .arg(dir.path())
            .output()?;
        let wall = started.elapsed();
        if out.status.code() != Some(0) {
            bail!(
                "contract-test exited {:?}\n{}{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
        let s = &json["summary"];
        let f = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "contract-test replay of {steps} steps against a release sandbox (bundled Dakota spec)"
        );
        println!(
            "  steps/s (replay loop):     {:.0}  (target >= 2000)",
            f("steps_per_second")
        );
        println!("  replay time:               {:.1} ms", f("elapsed_ms"));
        println!("  HTTP time:                 {:.1} ms", f("http_ms"));
        println!("  validation time:           {:.1} ms", f("check_ms"));
        println!(
            "  share of time validating:  {:.1}%",
            f("validation_share") * 100.0
        );
        println!(
            "  whole command, start-up included: {:.1} ms ({:.0} steps/s)",
            wall.as_secs_f64() * 1000.0,
            steps as f64 / wall.as_secs_f64()
        );
        Ok(())
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}
