//! In-memory state: per tenant, per resource type, records in creation order. A record
//! keeps its parent link outside its body, so nesting never depends on the body's shape.
//! The whole store serialises to JSON for export, import and `--state` files.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Version of the exported state format; a file with another version is refused.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    pub resource: String,
    pub id: String,
}

/// What the sandbox knows about a record beyond its body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    /// Virtual time the current lifecycle state was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_at: Option<f64>,
    /// `X-Sandbox-Scenario` given at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Timed transitions are held (the create asked for it with the lifecycle's header).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// For resources with client-chosen idempotent ids: a hash of the creating request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<u64>,
    /// The record whose effects created this one: what this one causes is its cause's too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caused_by: Option<ParentRef>,
    /// Ids of the events this record caused (kept for resources that show them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caused: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub body: Map<String, Value>,
    #[serde(default)]
    pub meta: Meta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRef>,
    /// Creation order within the tenant, for stable default sorting.
    pub seq: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tenant {
    /// Resource type -> id -> record, in creation order.
    pub resources: BTreeMap<String, IndexMap<String, Record>>,
    /// Singleton sub-documents: `"{resource}/{name}"` -> owner id -> body.
    #[serde(default)]
    pub singletons: BTreeMap<String, BTreeMap<String, Value>>,
    pub next_seq: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Store {
    pub version: u32,
    pub tenants: BTreeMap<String, Tenant>,
}

impl Store {
    pub fn new() -> Self {
        Self {
            version: FORMAT_VERSION,
            tenants: BTreeMap::new(),
        }
    }

    pub fn tenant(&mut self, key: &str) -> &mut Tenant {
        self.tenants.entry(key.to_owned()).or_default()
    }

    pub fn get(&self, tenant: &str, resource: &str, id: &str) -> Option<&Record> {
        self.tenants.get(tenant)?.resources.get(resource)?.get(id)
    }
}

impl Tenant {
    /// Stores a record (replacing one with the same id, which keeps its place in the order).
    pub fn insert(
        &mut self,
        resource: &str,
        id: String,
        body: Map<String, Value>,
        parent: Option<ParentRef>,
    ) {
        self.next_seq += 1;
        let seq = self.next_seq;
        let records = self.resources.entry(resource.to_owned()).or_default();
        records.insert(
            id,
            Record {
                body,
                meta: Meta::default(),
                parent,
                seq,
            },
        );
    }

    pub fn get_mut(&mut self, resource: &str, id: &str) -> Option<&mut Record> {
        self.resources.get_mut(resource)?.get_mut(id)
    }

    /// Removes a record and, recursively, every record whose parent it was.
    pub fn remove_cascade(&mut self, resource: &str, id: &str) -> Option<Record> {
        let removed = self.resources.get_mut(resource)?.shift_remove(id)?;
        let target = ParentRef {
            resource: resource.to_owned(),
            id: id.to_owned(),
        };
        let children: Vec<(String, String)> = self
            .resources
            .iter()
            .flat_map(|(r, recs)| {
                recs.iter()
                    .filter(|(_, rec)| rec.parent.as_ref() == Some(&target))
                    .map(move |(i, _)| (r.clone(), i.clone()))
            })
            .collect();
        for (r, i) in children {
            self.remove_cascade(&r, &i);
        }
        for owners in self
            .singletons
            .iter_mut()
            .filter(|(k, _)| k.split('/').next() == Some(resource))
        {
            owners.1.remove(id);
        }
        Some(removed)
    }
}
