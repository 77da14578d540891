//! Test harness: starts the real `sandbox` binary on an ephemeral loopback port and talks
//! HTTP to it, exactly as a user would; stops it when the handle is dropped.

pub mod dakota;
pub mod webhooks;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Sandbox {
    child: Child,
    pub urls: Vec<String>,
    /// The lines of the start-up table read to find the URLs.
    pub table: Vec<String>,
}

impl Sandbox {
    /// `sandbox serve --port 0 <args>`; waits for the "API -> URL" table.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// The same, with environment variables set for the server.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_in(&repo_root(), args, env)
    }

    /// The same, run from `dir`.
    pub fn start_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .arg("serve")
            .args(["--port", "0"])
            .args(args)
            .current_dir(dir)
            .env("SANDBOX_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the sandbox binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut reader = BufReader::new(stdout);
        let mut urls = Vec::new();
        let mut table = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut line = String::new();
        // The table is a header line plus one line per API; read until a line without a URL
        // follows at least one URL, or the process ends.
        while Instant::now() < deadline {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            table.push(line.trim_end().to_owned());
            match line.split_whitespace().find(|w| w.starts_with("http://")) {
                Some(url) => urls.push(url.to_owned()),
                None if !urls.is_empty() => break,
                None => {}
            }
            if urls.len() == expected_apis(args) {
                break;
            }
        }
        assert!(
            !urls.is_empty(),
            "the sandbox printed no URL; args {args:?}"
        );
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        Self { child, urls, table }
    }

    pub fn url(&self) -> &str {
        &self.urls[0]
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself (after a signal the test sent).
    pub fn wait(mut self) {
        let _ = self.child.wait();
    }
}

/// How many APIs the server announces: one per `--spec`, else every bundled one.
fn expected_apis(args: &[&str]) -> usize {
    let named = args.iter().filter(|a| **a == "--spec").count();
    if named > 0 || !args.is_empty() {
        return named.max(1);
    }
    std::fs::read_dir(repo_root().join("specs"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.path().join("openapi.yaml").exists())
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test spec under `tests/specs/`.
pub fn test_spec(name: &str) -> String {
    repo_root()
        .join("tests/specs")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The official Dakota spec from `../shared`, if this checkout has it. CI sets
/// `SANDBOX_REQUIRE_SHARED=1`, which turns its absence into a failure instead of a skip.
pub fn vendor_dakota() -> Option<String> {
    let path = repo_root().join("../shared/vendor/dakota/openapi.yaml");
    if path.exists() {
        return Some(path.to_string_lossy().into_owned());
    }
    assert!(
        std::env::var("SANDBOX_REQUIRE_SHARED").is_err(),
        "SANDBOX_REQUIRE_SHARED is set but {} is missing",
        path.display()
    );
    eprintln!("skipping: {} not found", path.display());
    None
}

pub fn bundled_dakota() -> String {
    repo_root()
        .join("specs/dakota/openapi.yaml")
        .to_string_lossy()
        .into_owned()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client builds")
}

/// Sends `req` and returns its status and JSON body (`null` when the body is not JSON).
pub async fn reply(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.expect("the sandbox answers");
    let status = res.status().as_u16();
    let bytes = res.bytes().await.expect("a body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Asserts the insta snapshot `name` (under `snapshots/`) of `value`, already redacted.
pub fn snapshot(name: &str, value: &Value) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo_root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_json_snapshot!(name, value));
}

/// Runs `sandbox <args>` to completion and returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(args)
        .current_dir(cwd)
        .env("SANDBOX_LOG", "warn")
        .output()
        .expect("the sandbox binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
