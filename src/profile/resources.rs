//! Per-resource overrides in a profile: id member and prefix, stored schema, derived members,
//! references between records, embedded arrays, once-shown secrets, singletons, and the
//! effects of creating, updating and deleting a record.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::effects::{Conditions, EffectList};

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
    /// A behaviour (named under `behaviours`) that sees this resource's records as they
    /// are made and changed, and may refuse them.
    pub behaviour: Option<String>,
    /// Members no two records may share: a create or update that would is 409.
    #[serde(default)]
    pub unique: Vec<Unique>,
    /// At most this many records per tenant: the next create is refused.
    pub max_records: Option<MaxRecords>,
    /// The 404's message for a record that does not exist (`{id}` names it).
    pub not_found: Option<String>,
    /// Effects of creating, updating and deleting a record of this resource.
    pub on_create: Option<EffectList>,
    pub on_update: Option<EffectList>,
    pub on_delete: Option<EffectList>,
}

/// `{member: name, ignore_case: true, within: parent, message: A bucket with this name already exists}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unique {
    pub member: String,
    /// Compare text without regard to case.
    #[serde(default)]
    pub ignore_case: bool,
    /// `tenant` (the default): across the tenant's records; `parent`: among one parent's.
    #[serde(default)]
    pub within: Within,
    /// The 409's message (default: names the member and value).
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Within {
    #[default]
    Tenant,
    Parent,
}

/// `{count: 25, status: 403, message: "Plan limit reached: maxBuckets (25)"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxRecords {
    pub count: usize,
    /// The refusal's status (default 403).
    pub status: Option<u16>,
    pub message: Option<String>,
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
