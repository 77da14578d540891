//! Events as the engine records them: one per create, update, delete or lifecycle
//! transition (and per `emit` effect), listed by the admin API and the API's own events
//! operation, and delivered as webhooks. An event keeps its payload as the bytes a webhook
//! carries; the events list, the API's events collection and every delivery share them.

use bytes::Bytes;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

/// One recorded change.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub created: i64,
    pub tenant: String,
    /// The payload as delivered: `{id, type, created, ...envelope, data}`.
    pub payload: Bytes,
}

impl Event {
    /// The event's `data` member (`{object, previous_attributes}`).
    pub fn data(&self) -> Value {
        serde_json::from_slice::<Value>(&self.payload)
            .ok()
            .and_then(|mut p| p.get_mut("data").map(Value::take))
            .unwrap_or(Value::Null)
    }
}

/// The admin API's view: `{id, type, created, tenant, data}`.
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("type", &self.kind)?;
        map.serialize_entry("created", &self.created)?;
        map.serialize_entry("tenant", &self.tenant)?;
        map.serialize_entry("data", &self.data())?;
        map.end()
    }
}

/// What happened to a record, as its event tells it.
pub enum Change {
    Created,
    /// With the changed members' values before (the event's `previous_attributes`).
    Updated(Value),
    Deleted,
}

impl Change {
    /// The action in an event type named after its resource (`customer.updated`).
    pub fn action(&self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated(_) => "updated",
            Change::Deleted => "deleted",
        }
    }
}
