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

mod effects;
mod resources;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use self::effects::{
    Adjust, After, BalanceEntry, Conditions, CreateRelated, EffectList, Effects, EmitEvent,
    Lifecycle, OneOrMany, Transition, UpdateRelated, matches,
};
pub use self::resources::{
    Caused, Derive, Embed, MaxRecords, Reference, ReferenceSpec, ResourceOverride, Unique, Within,
};
use crate::spec::SpecError;

/// File name looked up next to each spec.
pub const FILE_NAME: &str = "sandbox.yaml";

/// Every member has a default, and [`Profile::default`] is the one source of them: a spec
/// without a profile behaves exactly as one whose profile is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Whether stored records get generated values for optional members nobody sent
    /// (`true`, the default) or only for required ones.
    pub generate_optional: bool,
    /// Whether resources without names under `events` emit `<resource>.created` and so on
    /// (`true`, the default); `false` keeps an API to the event types it documents.
    pub undeclared_events: bool,
    /// Credentials accepted beyond those each operation declares.
    #[serde(default)]
    pub auth: AuthProfile,
    /// Behaviours that cannot be declared, by the name operations and resources use:
    /// `{alerts: {use: threshold_alerts, ...settings}}`, or just `{alerts: threshold_alerts}`.
    #[serde(default)]
    pub behaviours: BTreeMap<String, BehaviourUse>,
    /// Members added to every event payload (webhook bodies and the API's events list), after
    /// `id`, `type` and `created` and before `data`, e.g. `{api_version: 1.0.0}`. The members
    /// the engine writes are never replaced.
    #[serde(default)]
    pub events_envelope: BTreeMap<String, serde_json::Value>,
    /// A body member that carries the idempotency key when the header does not
    /// (`idempotency_key`).
    #[serde(default)]
    pub idempotency_member: Option<String>,
}

/// A behaviour and its settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BehaviourUse {
    Named(String),
    Configured {
        #[serde(rename = "use")]
        kind: String,
        #[serde(flatten)]
        settings: serde_json::Map<String, serde_json::Value>,
    },
}

impl BehaviourUse {
    /// The behaviour's registered name.
    pub fn kind(&self) -> &str {
        match self {
            Self::Named(k) | Self::Configured { kind: k, .. } => k,
        }
    }

    /// Its settings (empty when named outright).
    pub fn settings(&self) -> serde_json::Map<String, serde_json::Value> {
        match self {
            Self::Named(_) => serde_json::Map::new(),
            Self::Configured { settings, .. } => settings.clone(),
        }
    }
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            resources: BTreeMap::new(),
            operations: BTreeMap::new(),
            tenancy: Tenancy::default(),
            rate_limit: RateLimitProfile::default(),
            lifecycles: BTreeMap::new(),
            events: BTreeMap::new(),
            scenarios: BTreeMap::new(),
            webhooks: WebhookProfile::default(),
            generate_optional: true,
            undeclared_events: true,
            auth: AuthProfile::default(),
            behaviours: BTreeMap::new(),
            events_envelope: BTreeMap::new(),
            idempotency_member: None,
        }
    }
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
    /// Replays of one event allowed through the API's own replay operation (kind
    /// `webhook_replay`); the next one is refused with 409. Unlimited when absent.
    pub replay_limit: Option<u32>,
    /// The event as it goes on the wire, when the API's differs from the sandbox's
    /// `{id, type, created, data: {object}}`: a template whose strings may name `{id}`,
    /// `{type}`, `{created}` (unix seconds), `{created_iso}` and `{tenant}`; the string
    /// `"{data}"` stands for the event's data.
    pub payload: Option<serde_json::Map<String, serde_json::Value>>,
    /// Event-type prefix -> the member of `data` that holds the object
    /// (`{spend_request: spend}` gives `data: {spend: {...}}`), instead of `object`.
    #[serde(default)]
    pub data_members: BTreeMap<String, String>,
    /// Headers of every delivery; values may name `{id}`, `{type}` and `{attempt}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The header carrying the signature (default `X-Webhook-Signature`).
    pub signature_header: Option<String>,
    /// What is signed: `timestamp_body` (default: the timestamp's text, then the body) or
    /// `body`.
    pub signed: Option<String>,
    /// Each target registered through the admin API gets a secret of its own
    /// (`whsec_...`, shown once when it is registered), and `hmac-sha256` signs with it.
    #[serde(default)]
    pub target_secrets: bool,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitProfile {
    /// Header names for APIs that document rate-limit headers without declaring them.
    pub headers: Option<RateLimitHeaders>,
    /// Requests each tenant may make per window (unlimited when absent; `--rate-limit`
    /// overrides it).
    pub limit: Option<u64>,
    /// `minute` (the default) or `month` (a calendar month in UTC).
    #[serde(default)]
    pub window: Window,
}

/// The length of a rate-limit window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    #[default]
    Minute,
    Month,
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
pub struct OperationOverride {
    /// `create`, `list`, `read`, `update`, `replace`, `delete`, `delete_all`, `action`,
    /// `singleton_read`, `singleton_write`, `link`, `unlink` or `stateless`; or, served from the webhook
    /// delivery log, `webhook_deliveries`, `webhook_delivery` or `webhook_replay`.
    pub kind: Option<String>,
    pub resource: Option<String>,
    /// `parent`: answer with the parent record (Dakota's rule operations answer with the policy).
    pub respond: Option<String>,
    /// Item operations: the member the path parameter names, when not the id.
    pub lookup: Option<String>,
    /// `kind: link`: the body member naming the record to attach (its id, or the member
    /// the link stores).
    pub value_from: Option<String>,
    /// A fixed success body for an operation answered from the spec (reference data such as
    /// supported networks); it must match the response schema.
    pub body: Option<serde_json::Value>,
    /// Lists: members (expressions) added to every item beyond what the schema declares,
    /// for SDKs that read one the spec does not (`{id: $application_id}`).
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// The roles (of `tenancy.credentials`) allowed to call the operation; others get 403.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The message of that 403 (`Only Admin keys can list buckets`).
    pub forbidden: Option<String>,
    /// A behaviour (named under `behaviours`) answers the operation.
    pub behaviour: Option<String>,
    /// The body member that holds the record in the request and the response
    /// (`{"data": {...}}`), when inference does not find it.
    pub envelope: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenancy {
    /// When set, only these credentials are accepted; each is its own tenant.
    #[serde(default)]
    pub allowed_keys: Vec<String>,
    /// Credentials the API issues itself (an onboarding token): a credential equal to this
    /// member of a record acts for the tenant that owns the record.
    #[serde(default)]
    pub issued: Vec<IssuedCredential>,
    /// Classes of credentials, the first that matches wins: which tenant each acts for, in
    /// which role, limited to which records.
    #[serde(default)]
    pub credentials: Vec<CredentialClass>,
    /// What becomes of a credential no class matches: `accept` (the default: it is its own
    /// tenant) or `refuse` (401).
    #[serde(default)]
    pub others: Others,
    /// The 401's message for a missing or refused credential, in the API's words
    /// (`Invalid or missing API key`).
    pub unauthorized: Option<String>,
    /// Records made in a tenant on its first request (an organisation, a wallet...): the
    /// body's strings may name the credential's parts (`{team}`).
    #[serde(default)]
    pub provision: Vec<Provision>,
}

/// One class of credentials.
///
/// ```yaml
/// - match: "dakkio_a_*"          # a pattern (`*` any text, `{name}` a named part)
///   role: admin
/// - match: "din_test_{team}"
///   tenant: "{team}"             # the tenant, from the credential's parts (default: itself)
///   role: agent
/// - issued: {resource: keys, member: key}   # a credential an API record holds
///   role: {member: type}         # the role a member of that record names
///   scope: [bucketId]            # requests may only name that record's own `bucketId`
///   scope_forbidden: API key does not have access to this bucket
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialClass {
    #[serde(rename = "match")]
    pub pattern: Option<String>,
    pub issued: Option<IssuedCredential>,
    pub tenant: Option<String>,
    pub role: Option<Role>,
    #[serde(default)]
    pub scope: Vec<String>,
    pub scope_forbidden: Option<String>,
}

/// A role given outright, or named by a member of the issuing record.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Role {
    Named(String),
    Member { member: String },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Others {
    #[default]
    Accept,
    Refuse,
}

/// `{resource: wallets, body: {available_cents: 100000, name: "{team}"}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provision {
    pub resource: String,
    #[serde(default)]
    pub body: serde_json::Map<String, serde_json::Value>,
}

/// `{resource: customers, member: application_token}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedCredential {
    pub resource: String,
    pub member: String,
}

impl Profile {
    /// Loads `sandbox.yaml` from the spec's folder, if there is one.
    pub fn for_spec(spec_file: &Path) -> Result<Self, SpecError> {
        let path = file_for(spec_file);
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

/// `auth: {also_accept: [ApiKeyAuth]}`: security schemes, by their names in
/// `components.securitySchemes`, accepted on every operation that requires any credential.
/// Some SDKs send one key everywhere, even where the spec declares another scheme.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthProfile {
    #[serde(default)]
    pub also_accept: Vec<String>,
}

/// Where the profile of `spec_file` lives (whether or not it exists).
pub fn file_for(spec_file: &Path) -> PathBuf {
    spec_file.parent().unwrap_or(Path::new(".")).join(FILE_NAME)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_missing_member_matches_null_and_lists_match_any() {
        let p = super::Profile::for_spec(std::path::Path::new("specs/dakota/openapi.yaml"))
            .expect("the bundled profile loads");
        let defaults = &p.resources["simulations"].derive[0].when;
        assert!(super::matches(defaults, Some(&serde_json::Map::new())));
        let sent = json!({"scenario": "compliance_hold"});
        assert!(!super::matches(defaults, sent.as_object()));
        let fiat = &p.resources["simulations"].derive[2].when;
        assert!(super::matches(
            fiat,
            json!({"type": "ach_reversal"}).as_object()
        ));
        assert!(!super::matches(
            fiat,
            json!({"type": "crypto_inbound"}).as_object()
        ));
    }
}
