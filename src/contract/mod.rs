//! The contract tester: replays recorded scenarios (`fixtures/`) against any base URL and
//! checks every answer against the spec, plus the recording proxy that writes such
//! scenarios. It depends on [`crate::spec`] and [`crate::schema`], and on the server only for
//! its path router: it never depends on the mock, so it judges any server the same way.
//!
//! - [`fixture`]: the YAML format, parsing and checks, `{{name}}` substitution;
//! - [`client`]: the HTTP client (http and https);
//! - [`check`]: status, content type, body schema, required headers, recorded status, compare;
//! - [`normalise`]: masking of ids, timestamps, request ids; ignore lists; body diffs;
//! - [`runner`]: the replay loop, with HTTP and checking timed apart;
//! - [`snapshot`]: insta-format snapshots of normalised bodies;
//! - [`report`]: terminal, JUnit and JSON reports;
//! - [`record`]: the recording proxy.

pub mod check;
pub mod client;
pub mod fixture;
pub mod normalise;
pub mod record;
pub mod report;
pub mod runner;
pub mod snapshot;

use std::path::PathBuf;
use std::time::Duration;

pub use fixture::FixtureError;
pub use runner::{RunOptions, RunReport};

/// Why a run could not start or finish (exit code 2); contract violations are not errors.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error("spec schemas: {0}")]
    Schema(#[from] crate::schema::CompileError),
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error("{url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    #[error("{0}")]
    Record(String),
}

/// Everything `sandbox contract-test` needs.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub spec: PathBuf,
    pub inputs: Vec<PathBuf>,
    pub run: RunOptions,
    pub junit: Option<PathBuf>,
    pub json: Option<PathBuf>,
    /// Draw a progress bar (stdout is a terminal).
    pub progress: bool,
}

/// Loads the spec and fixtures, replays, writes the reports and returns the run's results;
/// the caller prints the summary and maps `passed()` to the exit code.
pub async fn contract_test(options: &TestOptions) -> Result<RunReport, ContractError> {
    let spec = crate::spec::Spec::load(&options.spec)?;
    let mut checker = check::Checker::new(spec)?;
    let files = fixture::collect(&options.inputs)?;
    let scenarios = files
        .iter()
        .map(|f| fixture::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut bar = report::terminal::Progress::new(options.progress);
    let report = runner::run(
        &mut checker,
        &scenarios,
        &options.run,
        &mut |done, total| bar.update(done, total),
    )
    .await;
    bar.finish();
    let report = report?;
    if let Some(path) = &options.junit {
        report::junit::write(&report, path).map_err(|reason| ContractError::Io {
            path: path.clone(),
            reason,
        })?;
    }
    if let Some(path) = &options.json {
        report::json::write(&report, path).map_err(|reason| ContractError::Io {
            path: path.clone(),
            reason,
        })?;
    }
    Ok(report)
}

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
