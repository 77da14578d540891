//! The contract tester: replays recorded scenarios (`fixtures/`) against any base URL and
//! checks every answer against the spec, plus the recording proxy that writes such
//! scenarios. It depends on [`crate::spec`] and [`crate::schema`], and on the compiled API only
//! for its path router: it never depends on the engine or the server, so it judges any
//! server the same way.
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
pub mod error;
pub mod fixture;
pub mod normalise;
pub mod record;
pub mod report;
pub mod runner;
pub mod snapshot;
pub mod test;

pub use self::error::ContractError;
pub use self::fixture::FixtureError;
pub use self::runner::{RunOptions, RunReport};
pub use self::test::{DEFAULT_TIMEOUT, TestOptions, contract_test};
