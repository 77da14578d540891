//! Events as the engine records them: one per create, update, delete or lifecycle
//! transition (and per `emit` effect), listed by the admin API and the API's own events
//! operation, and delivered as webhooks.

use serde_json::Value;

/// One recorded change.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub tenant: String,
    pub data: Value,
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
