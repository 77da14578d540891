//! `sandbox contract-test`: load the spec and the fixtures, replay them, write the reports.

use std::path::PathBuf;
use std::time::Duration;

use super::error::ContractError;
use super::runner::{self, RunOptions, RunReport};
use super::{check, fixture, report};

/// Everything `sandbox contract-test` needs.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub spec: PathBuf,
    pub inputs: Vec<PathBuf>,
    pub run: RunOptions,
    pub junit: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
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
    if let Some(path) = &options.html {
        report::html::write(&report, path).map_err(|reason| ContractError::Io {
            path: path.clone(),
            reason,
        })?;
    }
    Ok(report)
}

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
