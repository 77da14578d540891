//! The `sandbox` binary: parses the command line and hands over to the library.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use api_sandbox::cli::{Cli, Command, ContractTestArgs, RecordArgs};
use api_sandbox::contract;
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
    // The contract tester has its own exit codes: 0 pass, 1 violations, 2 could not run.
    match cli.command {
        Command::ContractTest(args) => contract_test(args),
        Command::Record(args) => match record(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        command => run_command(command),
    }
}

fn run_command(command: Command) -> ExitCode {
    match run(Cli { command }) {
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
                idempotency_ttl: args.idempotency_ttl,
                idempotency_keys: args.idempotency_keys,
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
                admin_token: match args.admin_token {
                    Some(t) if t.trim().is_empty() => bail!("--admin-token must not be empty"),
                    t => t,
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
        Command::ContractTest(_) | Command::Record(_) => unreachable!("handled in main"),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn contract_test(args: ContractTestArgs) -> ExitCode {
    use std::io::IsTerminal;
    let options = contract::TestOptions {
        spec: args.spec,
        inputs: args.fixtures,
        run: contract::RunOptions {
            base_url: args.base_url,
            headers: args.headers,
            compare: args.compare,
            snapshot: args.snapshot,
            timeout: std::time::Duration::from_secs(args.timeout),
        },
        junit: args.junit,
        json: args.json,
        html: args.html,
        progress: std::io::stdout().is_terminal(),
    };
    let result = runtime()
        .context("cannot start the runtime")
        .and_then(|rt| Ok(rt.block_on(contract::contract_test(&options))?));
    match result {
        Ok(report) => {
            print!("{}", contract::report::terminal::render(&report));
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn record(args: RecordArgs) -> anyhow::Result<()> {
    let options = contract::record::RecordOptions {
        target: args.target,
        host: args.host,
        port: args.port,
        out: args.out,
        name: args.name,
        redact: !args.no_redact,
    };
    runtime()?.block_on(async {
        let stop = server::shutdown_signal()?;
        contract::record::record(options, stop).await?;
        anyhow::Ok(())
    })
}
