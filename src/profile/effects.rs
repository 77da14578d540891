//! Effects and lifecycles in a profile: the states a status field moves through, the
//! conditions that select a branch or an effect, and what an effect does (set members, update
//! a referenced record, adjust a balance, create a related record, emit an event).

use std::collections::BTreeMap;

use serde::Deserialize;

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
