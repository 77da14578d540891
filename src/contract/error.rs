//! Why a contract run could not start or finish (exit code 2). Contract violations are not
//! errors: they are the run's findings.

use std::path::PathBuf;

use super::client::ClientError;
use super::fixture::FixtureError;

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
    Client(#[from] ClientError),
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    #[error("{0}")]
    Record(String),
}
