//! What the `spend_policy` behaviour holds: its settings, every team's wallet and its
//! receive addresses.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::settings::Settings;
use crate::state::behaviour::Behaviour;

/// The behaviour.
pub struct SpendPolicy {
    pub(super) s: Settings,
    /// Tenant -> wallet balance in cents (made on first use).
    pub(super) wallets: Mutex<HashMap<String, i64>>,
    /// Tenant -> its receive addresses, the current one last.
    pub(super) addresses: Mutex<HashMap<String, Vec<String>>>,
    /// Changes not yet written to the state log.
    pub(super) changes: Mutex<Vec<Value>>,
    /// What decisions need without reading every request again: built from the store on
    /// first use, kept up to date after, dropped when state is reset or replaced.
    pub(super) index: Mutex<Option<Index>>,
}

/// Approvals per account and the requests waiting for a decision.
#[derive(Debug, Default)]
pub struct Index {
    /// (tenant, account) -> (decided at, cents) of each approval.
    pub approvals: HashMap<(String, String), Vec<(i64, i64)>>,
    /// (expires at, tenant, request id) of each held request.
    pub held: std::collections::BTreeSet<(i64, String, String)>,
}

/// Builds the behaviour from its profile settings.
pub fn make(settings: &Map<String, Value>) -> Result<Arc<dyn Behaviour>, String> {
    let s: Settings = serde_json::from_value(Value::Object(settings.clone()))
        .map_err(|e| format!("spend_policy settings: {e}"))?;
    Ok(Arc::new(SpendPolicy {
        s,
        wallets: Mutex::new(HashMap::new()),
        addresses: Mutex::new(HashMap::new()),
        index: Mutex::new(None),
        changes: Mutex::new(Vec::new()),
    }))
}
