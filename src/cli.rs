//! Command-line interface: the raw flags, parsed by clap.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sandbox",
    version,
    about = "A local, stateful sandbox of any OpenAPI 3.0 API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every operation of one or more OpenAPI specs on localhost.
    Serve(ServeArgs),
    /// Replay recorded scenarios against a server and check every answer against the spec.
    /// Exit code 0: all pass; 1: contract violations; 2: the run could not start.
    ContractTest(ContractTestArgs),
    /// Run a recording proxy: every exchange through it is forwarded and written to a fixture.
    Record(RecordArgs),
    /// List the bundled APIs (`sandbox serve NAME` serves one).
    List,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Bundled APIs to serve, by name (`sandbox list` names them). Without names or
    /// `--spec`, every bundled API is served, with `specs/<name>/` in the current directory
    /// overriding the bundled copy, and any other API under `specs/` served too.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// An OpenAPI spec (YAML or JSON) of your own. Repeat for several APIs; each gets its
    /// own port.
    #[arg(long = "spec", value_name = "PATH")]
    pub specs: Vec<PathBuf>,
    /// Address to listen on. Loopback by default. Elsewhere, `/__sandbox/` and the dashboard
    /// need the admin token (the API's own routes keep the spec's security).
    #[arg(long, default_value = "127.0.0.1", env = "SANDBOX_HOST")]
    pub host: IpAddr,
    /// Port of the first API; the others follow consecutively. 0 picks free ports.
    #[arg(long, default_value_t = 4010, env = "SANDBOX_PORT")]
    pub port: u16,
    /// Seed for generated data: the same seed gives byte-identical responses.
    #[arg(long, default_value_t = 0, env = "SANDBOX_SEED")]
    pub seed: u64,
    /// Keep state in this file: loaded at start, and every change written to it (and
    /// synced) before the request that made it is answered, so it survives a crash.
    #[arg(long, value_name = "FILE", env = "SANDBOX_STATE")]
    pub state: Option<PathBuf>,
    /// Seconds between checks whether --state should be compacted (0: only on shutdown).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub state_interval: u64,
    /// Seconds an idempotency key is remembered (sandbox time).
    #[arg(long, default_value_t = 86_400.0, value_name = "SECONDS")]
    pub idempotency_ttl: f64,
    /// Idempotency keys remembered per credential; the oldest are forgotten first.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub idempotency_keys: usize,
    /// Recent events the sandbox keeps for the admin API and the dashboard (an API's own
    /// events collection keeps every event).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub events_kept: usize,
    /// Answer every operation from the spec alone (examples or generated data), storing
    /// nothing: a pure contract mock.
    #[arg(long)]
    pub stateless: bool,
    /// Requests per window (a minute, or what the profile says) each credential may make;
    /// more get 429 with `Retry-After`.
    /// `X-RateLimit-*` headers are sent whenever the spec declares them.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u64>,
    /// Sandbox seconds per real second (e.g. 60: a minute of lifecycle per second).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub time_scale: f64,
    /// Webhook signing secret as 64 hex characters (default: derived from --seed).
    #[arg(long, value_name = "HEX", env = "SANDBOX_WEBHOOK_KEY")]
    pub webhook_key: Option<String>,
    /// Token that `/__sandbox/` and the dashboard require (`Authorization: Bearer TOKEN`, or
    /// `?token=TOKEN`). Without it, one is generated and printed when --host is not loopback.
    #[arg(long, value_name = "TOKEN", env = "SANDBOX_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ContractTestArgs {
    /// The OpenAPI 3.0 spec the server must honour.
    #[arg(long, value_name = "PATH")]
    pub spec: PathBuf,
    /// The server under test, e.g. http://127.0.0.1:4010 or https://sandbox.vendor.com/v1.
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// A header sent with every request, replacing the fixture's (credentials). Repeatable.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Also compare each body with the recorded one (ids, timestamps, request ids masked).
    #[arg(long)]
    pub compare: bool,
    /// Write a JUnit XML report (one testcase per step).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON report, timings included.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report (pass/fail per scenario and step, every violation
    /// with its JSON pointer), for CI artifacts.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write, or compare against, insta snapshots of every normalised response body.
    #[arg(long, value_name = "DIR")]
    pub snapshot: Option<PathBuf>,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// Fixture files, or folders searched for `*.yaml`.
    #[arg(required = true, value_name = "FIXTURE_OR_DIR")]
    pub fixtures: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The server to forward to, e.g. http://127.0.0.1:4010.
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// Address the proxy listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port the proxy listens on; 0 picks a free one.
    #[arg(long, default_value_t = 4020)]
    pub port: u16,
    /// Folder the fixtures are written to.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Name of the first scenario (file `<name>.yaml`). `POST /__record/scenario?name=N`
    /// on the proxy starts the next one.
    #[arg(long, default_value = "recording")]
    pub name: String,
    /// Keep credentials in auth headers instead of redacting them.
    #[arg(long)]
    pub no_redact: bool,
}

/// `NAME: VALUE` -> (name, value).
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not 'NAME: VALUE'"))?;
    let name = name.trim();
    if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("'{name}' is not a header name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}
