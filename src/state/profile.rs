//! The optional per-API profile, `sandbox.yaml` next to the spec: declarative overrides for
//! what the engine cannot infer from the spec alone. Everything is optional; an API without
//! a profile is served from inference.
//!
//! ```yaml
//! resources:
//!   policies: {id_field: id, id_prefix: pol_}
//! operations:
//!   getSubClientSummary: {kind: stateless}
//!   addPolicyRule: {kind: create, resource: rules}
//! tenancy:
//!   allowed_keys: [test-key-1, test-key-2]   # other keys get 401
//! rate_limit:
//!   headers: {limit: X-RateLimit-Limit, remaining: X-RateLimit-Remaining, reset: X-RateLimit-Reset}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::spec::SpecError;

/// File name looked up next to each spec.
pub const FILE_NAME: &str = "sandbox.yaml";

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceOverride>,
    #[serde(default)]
    pub operations: BTreeMap<String, OperationOverride>,
    #[serde(default)]
    pub tenancy: Tenancy,
    #[serde(default)]
    pub rate_limit: RateLimitProfile,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitProfile {
    /// Header names for APIs that document rate-limit headers without declaring them.
    pub headers: Option<RateLimitHeaders>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitHeaders {
    pub limit: String,
    pub remaining: String,
    pub reset: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceOverride {
    /// Member holding the resource's id.
    pub id_field: Option<String>,
    /// Prefix for minted ids (`pol_`), followed by a KSUID.
    pub id_prefix: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationOverride {
    /// `create`, `list`, `read`, `update`, `replace`, `delete`, `delete_all`, `action`,
    /// `singleton_read`, `singleton_write` or `stateless`.
    pub kind: Option<String>,
    pub resource: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenancy {
    /// When set, only these credentials are accepted; each is its own tenant.
    #[serde(default)]
    pub allowed_keys: Vec<String>,
}

impl Profile {
    /// Loads `sandbox.yaml` from the spec's folder, if there is one.
    pub fn for_spec(spec_file: &Path) -> Result<Self, SpecError> {
        let path: PathBuf = spec_file.parent().unwrap_or(Path::new(".")).join(FILE_NAME);
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SpecError::new(&path, "/", format!("cannot read: {e}")))?;
        let value = crate::spec::load::parse_text(&path, &text)?;
        serde_path_to_error::deserialize(&value).map_err(|e| {
            let mut at = String::new();
            for seg in e.path().iter() {
                match seg {
                    serde_path_to_error::Segment::Seq { index } => {
                        at.push_str(&format!("/{index}"))
                    }
                    serde_path_to_error::Segment::Map { key } => {
                        at = crate::spec::pointer::join(&at, key)
                    }
                    _ => {}
                }
            }
            SpecError::new(&path, at, e.inner().to_string())
        })
    }
}
