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
    /// Whether stored records get generated values for optional members nobody sent
    /// (`true`, the default) or only for required ones, as a real server would.
    #[serde(default = "yes")]
    pub generate_optional: bool,
    /// Whether resources without names under `events` emit `<resource>.created` and so on
    /// (`true`, the default); `false` keeps an API to the event types it documents.
    #[serde(default = "yes")]
    pub undeclared_events: bool,
    /// Credentials accepted beyond those each operation declares.
    #[serde(default)]
    pub auth: AuthProfile,
    /// Members added to every event payload (webhook bodies and the API's events list), after
    /// `id`, `type` and `created` and before `data`, e.g. `{api_version: 1.0.0}`. The members
    /// the engine writes are never replaced.
    #[serde(default)]
    pub events_envelope: BTreeMap<String, serde_json::Value>,
}

fn yes() -> bool {
    true
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
    /// Effects applied on entering a state: one set, or several each with its `when`.
    #[serde(default)]
    pub on_enter: BTreeMap<String, EffectList>,
    /// A member of the record naming its scenario (instead of `X-Sandbox-Scenario`).
    pub scenario_from: Option<String>,
    /// A request header that, when true on the create, holds every timed transition
    /// (Dakota's `X-Sandbox-Skip-Auto-Approval`).
    pub hold_header: Option<String>,
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
    pub after: Option<After>,
    /// Triggered: fires when this operation (by operationId) is called on the resource.
    pub on: Option<String>,
    /// Taken only by resources created with `X-Sandbox-Scenario: <name>` (one or several).
    pub scenario: Option<OneOrMany>,
    /// Triggered only when the request body matches (`{action: release}`).
    #[serde(default)]
    pub when: Conditions,
}

/// Seconds, or a member of the record holding them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum After {
    Seconds(f64),
    Member {
        member: String,
        #[serde(default)]
        default: f64,
    },
}

impl After {
    pub fn seconds(&self, body: &serde_json::Map<String, serde_json::Value>) -> f64 {
        match self {
            Self::Seconds(s) => *s,
            Self::Member { member, default } => body
                .get(member)
                .and_then(|v| {
                    v.as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(*default),
        }
    }
}

/// Member -> the values it must have (any of them).
pub type Conditions = BTreeMap<String, OneOrMany>;

/// Whether `body` satisfies every condition; numbers and booleans compare as text.
pub fn matches(
    conditions: &Conditions,
    body: Option<&serde_json::Map<String, serde_json::Value>>,
) -> bool {
    conditions.iter().all(|(member, wanted)| {
        let text = match body.and_then(|b| b.get(member)) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => "null".to_owned(),
            Some(v) => v.to_string(),
        };
        wanted.contains(&text)
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn describe(&self) -> String {
        match self {
            Self::One(x) => format!("'{x}'"),
            Self::Many(xs) => xs
                .iter()
                .map(|x| format!("'{x}'"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    pub fn contains(&self, s: &str) -> bool {
        match self {
            Self::One(x) => x == s,
            Self::Many(xs) => xs.iter().any(|x| x == s),
        }
    }
}

/// One set of effects, or several (each usually with its own `when`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EffectList {
    One(Effects),
    Many(Vec<Effects>),
}

impl EffectList {
    pub fn iter(&self) -> std::slice::Iter<'_, Effects> {
        match self {
            Self::One(e) => std::slice::from_ref(e).iter(),
            Self::Many(v) => v.iter(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Effects {
    /// Applied only when the record matches.
    #[serde(default)]
    pub when: Conditions,
    /// Members of this record to set, in order; values are expressions (see `expr`).
    #[serde(default)]
    pub set: serde_json::Map<String, serde_json::Value>,
    /// Records this one references (through `references`) to change.
    #[serde(default)]
    pub update: Vec<UpdateRelated>,
    /// Balances to credit or debit on another resource.
    #[serde(default)]
    pub adjust: Vec<Adjust>,
    /// Related resources to create.
    #[serde(default)]
    pub create: Vec<CreateRelated>,
    /// Events to record (and deliver) beyond the created/updated/deleted ones.
    #[serde(default)]
    pub emit: Vec<EmitEvent>,
}

/// `emit: [{type: wallet.deposit, object: {wallet_id: $wallet_address.id, amount: $amount}}]`:
/// an event whose `data.object` holds these members (expressions).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub object: serde_json::Map<String, serde_json::Value>,
}

/// `adjust: [{resource: accounts, id_from: account_id, field: balance, by: amount, debit: true}]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adjust {
    pub resource: String,
    /// Member of this resource naming the other record: through its declared reference,
    /// else as its id. Not needed for a singleton resource.
    pub id_from: Option<String>,
    /// Numeric member (number or decimal string) of the other resource to change.
    pub field: String,
    /// Member of this resource holding the amount, or a number.
    pub by: serde_json::Value,
    /// Subtract instead of add.
    #[serde(default)]
    pub debit: bool,
    /// Multiply the amount first (credits bought -> transfer capacity).
    pub times: Option<f64>,
    /// `field` is an array of balances (one per currency, say): change this entry's member.
    pub entry: Option<BalanceEntry>,
}

/// `entry: {key: [asset.id], new: {asset: {id: $currency}, amount_usd: "0.00"}, member: amount_usd}`:
/// the array element whose `key` members (dotted paths) equal those of `new` (expressions
/// evaluated against this record), added from `new` when there is none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceEntry {
    pub key: Vec<String>,
    pub new: serde_json::Map<String, serde_json::Value>,
    pub member: String,
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
    /// Create it as a child of the record this one references through that member.
    pub parent_from: Option<String>,
}

/// `update: [{via: applicant_id, set: {kyb_status: active}}]`: the record referenced by
/// member `via` gets these members (expressions evaluated against this record); setting its
/// lifecycle field is a transition, with its effects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRelated {
    pub via: String,
    pub set: serde_json::Map<String, serde_json::Value>,
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
    /// The schema of the stored representation (a component name or a JSON pointer), when
    /// the inferred one (the item GET's, else the create's response) is not it.
    pub schema: Option<String>,
    /// Server-set members of a new record, in order: `[{when: {...}, set: {...}}]`.
    #[serde(default)]
    pub derive: Vec<Derive>,
    /// Members holding another record's id (or another member of it): checked on create
    /// (404 when it does not exist) and readable in expressions as `$member.field`.
    #[serde(default)]
    pub references: BTreeMap<String, Reference>,
    /// Array members listing records: the record's children of a resource
    /// (`{destinations: destinations}`), the records a reference member names
    /// (`{members: {via: member_keys}}`), or the webhook deliveries of the events the record
    /// caused (`{callbacks: {deliveries: caused}}`).
    #[serde(default)]
    pub embed: BTreeMap<String, Embed>,
    /// Members shown in the create response only, then forgotten (secrets).
    #[serde(default)]
    pub once: Vec<String>,
    /// A create repeating an existing client-chosen id answers like the first one when the
    /// request is the same, 409 when it differs.
    #[serde(default)]
    pub idempotent_id: bool,
    /// One record per tenant, made (from `derive`) on first use: operations on it name no
    /// id, `adjust` needs no `id_from`, and expressions read it as `$<resource>.<member>`.
    #[serde(default)]
    pub singleton: bool,
    /// Effects of creating, updating and deleting a record of this resource.
    pub on_create: Option<EffectList>,
    pub on_update: Option<EffectList>,
    pub on_delete: Option<EffectList>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Embed {
    /// The record's children of this resource.
    Children(String),
    /// The records reference member `via` names.
    Via { via: String },
    /// `{deliveries: caused}`: the webhook deliveries of the events this record caused, by
    /// its effects and by records its effects created (a simulation's callbacks).
    Deliveries { deliveries: Caused },
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Caused {
    Caused,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derive {
    #[serde(default)]
    pub when: Conditions,
    pub set: serde_json::Map<String, serde_json::Value>,
}

/// `account_id: accounts`, or in full with the member matched and delete protection.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Reference {
    Resource(String),
    Full(ReferenceSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSpec {
    pub resource: String,
    /// The member of the referenced record to match (its id by default).
    pub member: Option<String>,
    /// The referenced record (or an ancestor) cannot be deleted while this one points at
    /// it, unless this one matches `unless` (a finished state, say).
    #[serde(default)]
    pub blocks_delete: bool,
    #[serde(default)]
    pub unless: Conditions,
}

impl Reference {
    pub fn resource(&self) -> &str {
        match self {
            Self::Resource(r) => r,
            Self::Full(f) => &f.resource,
        }
    }
    pub fn member(&self) -> Option<&str> {
        match self {
            Self::Resource(_) => None,
            Self::Full(f) => f.member.as_deref(),
        }
    }
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
