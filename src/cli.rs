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
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// An OpenAPI 3.0 spec (YAML or JSON). Repeat for several APIs; each gets its own port.
    /// Without it, every `openapi.{yaml,yml,json}` under `specs/` is served.
    #[arg(long = "spec", value_name = "PATH")]
    pub specs: Vec<PathBuf>,
    /// Address to listen on. Loopback by default; the sandbox has no authentication of its own.
    #[arg(long, default_value = "127.0.0.1", env = "SANDBOX_HOST")]
    pub host: IpAddr,
    /// Port of the first API; the others follow consecutively. 0 picks free ports.
    #[arg(long, default_value_t = 4010, env = "SANDBOX_PORT")]
    pub port: u16,
    /// Seed for generated data: the same seed gives byte-identical responses.
    #[arg(long, default_value_t = 0, env = "SANDBOX_SEED")]
    pub seed: u64,
    /// Keep state in this JSON file: loaded at start, written on shutdown and periodically.
    #[arg(long, value_name = "FILE", env = "SANDBOX_STATE")]
    pub state: Option<PathBuf>,
    /// Seconds between periodic writes of --state (0: only on shutdown).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub state_interval: u64,
    /// Answer every operation from the spec alone (examples or generated data), storing
    /// nothing: a pure contract mock.
    #[arg(long)]
    pub stateless: bool,
    /// Requests per minute each credential may make; more get 429 with `Retry-After`.
    /// `X-RateLimit-*` headers are sent whenever the spec declares them.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Sandbox seconds per real second (e.g. 60: a minute of lifecycle per second).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub time_scale: f64,
    /// Webhook signing secret as 64 hex characters (default: derived from --seed).
    #[arg(long, value_name = "HEX", env = "SANDBOX_WEBHOOK_KEY")]
    pub webhook_key: Option<String>,
}
