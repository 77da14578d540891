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
    /// Resource type -> its lifecycle.
    #[serde(default)]
    pub lifecycles: BTreeMap<String, Lifecycle>,
    /// Resource type -> event type names.
    #[serde(default)]
    pub events: BTreeMap<String, EventNames>,
    /// `X-Sandbox-Scenario` presets that answer with an error.
    #[serde(default)]
    pub scenarios: BTreeMap<String, ScenarioPreset>,
    #[serde(default)]
    pub webhooks: WebhookProfile,
}

/// A status field that moves through states on the virtual clock and on operations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    #[serde(default = "default_status_field")]
    pub field: String,
    /// State of a new resource; without it, whatever the create produced.
    pub initial: Option<String>,
    #[serde(default)]
    pub transitions: Vec<Transition>,
    /// Effects applied on entering a state.
    #[serde(default)]
    pub on_enter: BTreeMap<String, Effects>,
}

fn default_status_field() -> String {
    "status".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// One state or several.
    pub from: OneOrMany,
    pub to: String,
    /// Timed: fires this many sandbox seconds after entering `from`.
    pub after: Option<f64>,
    /// Triggered: fires when this operation (by operationId) is called on the resource.
    pub on: Option<String>,
    /// Taken only by resources created with `X-Sandbox-Scenario: <name>`.
    pub scenario: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn contains(&self, s: &str) -> bool {
        match self {
            Self::One(x) => x == s,
            Self::Many(xs) => xs.iter().any(|x| x == s),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Effects {
    /// Members to set; the value `$now` is the current time in the member's own format.
    #[serde(default)]
    pub set: BTreeMap<String, serde_json::Value>,
    /// Balances to credit or debit on another resource.
    #[serde(default)]
    pub adjust: Vec<Adjust>,
    /// Related resources to create.
    #[serde(default)]
    pub create: Vec<CreateRelated>,
}

/// `adjust: [{resource: accounts, id_from: account_id, field: balance, by: amount, debit: true}]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adjust {
    pub resource: String,
    /// Member of this resource holding the other resource's id.
    pub id_from: String,
    /// Numeric member (number or decimal string) of the other resource to change.
    pub field: String,
    /// Member of this resource holding the amount.
    pub by: String,
    /// Subtract instead of add.
    #[serde(default)]
    pub debit: bool,
}

/// `create: [{resource: receipts, body: {payment_id: $id, amount: $amount}}]`: members
/// `$id` (this resource's id), `$now` and `$<member>` (a member of this resource).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRelated {
    pub resource: String,
    #[serde(default)]
    pub body: BTreeMap<String, serde_json::Value>,
    /// Create it as a child of this resource.
    #[serde(default)]
    pub child: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventNames {
    pub created: Option<String>,
    pub updated: Option<String>,
    pub deleted: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioPreset {
    pub status: u16,
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookProfile {
    /// `ed25519` (default) or `hmac-sha256`.
    pub signing: Option<String>,
    /// A resource of the API whose records are webhook targets (`url`, `global`,
    /// `event_types`), e.g. Dakota's `targets` under `/webhooks/targets`.
    pub targets_resource: Option<String>,
    /// Delivery attempts before a delivery is marked failed.
    pub max_attempts: Option<u32>,
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
