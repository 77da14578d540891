//! The `sandbox` binary: parses the command line and hands over to the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use api_sandbox::cli::{Cli, Command, ContractTestArgs, RecordArgs};
use api_sandbox::contract;
use api_sandbox::server::{self, ServeOptions};
use api_sandbox::spec::bundled;
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

/// Turns transparent huge pages off for this process, once it is loaded. A store that
/// grows (every create keeps its record) faults in fresh memory as it goes, mostly while a
/// write holds the store's lock; with huge pages each fault zeroes 2 MB at once, and every
/// request waits behind it. Measured with the spend bench: p99 12.1-13.9 ms with huge
/// pages, 6.0-7.2 ms without. Loading a state file keeps them: it faults in a whole store
/// at once, and huge pages make that quicker. Best effort: a kernel without the call keeps
/// its default.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn no_huge_pages() {}

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
            let specs = specs_to_serve(&args.names, args.specs)?;
            let options = ServeOptions {
                specs,
                host: args.host,
                port: args.port,
                seed: args.seed,
                state: args.state,
                state_interval: args.state_interval,
                idempotency_ttl: args.idempotency_ttl,
                idempotency_keys: args.idempotency_keys,
                events_kept: args.events_kept,
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
                let bound = server::Bound::new(options).await?;
                // Loaded (a state file's records included): from here on memory grows
                // while requests wait.
                no_huge_pages();
                bound.announce()?;
                bound.run(stop).await
            })?;
            Ok(())
        }
        Command::List => {
            for name in bundled::names() {
                println!("{name}");
            }
            Ok(())
        }
        Command::ContractTest(_) | Command::Record(_) => unreachable!("handled in main"),
    }
}

/// The specs `sandbox serve` was asked for: bundled APIs by name, files by `--spec`, or, with
/// neither, every bundled API (and whatever else `specs/` in the current directory holds).
fn specs_to_serve(names: &[String], files: Vec<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    let local = Path::new("specs");
    let mut specs = Vec::new();
    for name in names {
        match bundled::spec_for(name, local).context("cannot write the bundled specs out")? {
            Some(spec) => specs.push(spec),
            None => bail!(
                "no bundled API '{name}' (bundled: {}); use --spec PATH for a spec of your own",
                bundled::names().join(", ")
            ),
        }
    }
    specs.extend(files);
    if specs.is_empty() {
        specs = bundled::all(local).context("cannot read the bundled specs")?;
    }
    if specs.is_empty() {
        bail!("nothing to serve; pass --spec PATH");
    }
    Ok(specs)
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
