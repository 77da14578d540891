//! The `sandbox` binary: parses the command line and hands over to the library.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use api_sandbox::cli::{Cli, Command};
use api_sandbox::server::{self, ServeOptions};
use clap::Parser;

/// Start-up parses and converts large documents: allocation-heavy work where mimalloc is
/// markedly faster than the system allocator (measured in the benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SANDBOX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let specs = if args.specs.is_empty() {
                let dir = Path::new("specs");
                let found = api_sandbox::discover_specs(dir).with_context(
                    || "cannot read specs/ (run from the repository root, or pass --spec PATH)",
                )?;
                if found.is_empty() {
                    bail!("no openapi.yaml found under specs/; pass --spec PATH");
                }
                found
            } else {
                args.specs
            };
            let options = ServeOptions {
                specs,
                host: args.host,
                port: args.port,
                seed: args.seed,
                state: args.state,
                state_interval: args.state_interval,
                stateless: args.stateless,
                rate_limit: args.rate_limit,
                time_scale: args.time_scale,
                webhook_key: match args.webhook_key.as_deref() {
                    Some(hex) => {
                        Some(api_sandbox::state::webhooks::parse_key(hex).ok_or_else(|| {
                            anyhow::anyhow!("--webhook-key must be 64 hex characters")
                        })?)
                    }
                    None => None,
                },
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let stop = server::shutdown_signal()?;
                server::serve(options, stop).await
            })?;
            Ok(())
        }
    }
}
