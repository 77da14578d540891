//! What the `timeseries` behaviour holds: its settings, each tenant's series and firings,
//! and the readings of a container or source as the engine's records place them.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use super::series::{NewPoint, Series};
use super::settings::Settings;
use crate::state::behaviour::{Behaviour, Cx};

/// One firing of an alert rule, for the summaries.
#[derive(Debug, Clone)]
pub struct Firing {
    pub(super) rule: String,
    pub(super) name: String,
    pub(super) container: String,
    /// Unix seconds.
    pub(super) at: i64,
}

/// A tenant's readings and firings.
#[derive(Debug, Default)]
pub struct TenantData {
    pub(super) series: HashMap<String, Series>,
    pub(super) firings: Vec<Firing>,
}

/// The behaviour.
pub struct TimeSeries {
    pub(super) s: Settings,
    pub(super) data: Mutex<HashMap<String, TenantData>>,
    /// Per (tenant, rule): since when (ms) its condition has held, for `for <duration>`.
    pub(super) holding: Mutex<HashMap<(String, String), i64>>,
    /// Changes not yet written to the state log.
    pub(super) changes: Mutex<Vec<Value>>,
}

/// Builds the behaviour from its profile settings.
pub fn make(settings: &Map<String, Value>) -> Result<Arc<dyn Behaviour>, String> {
    let s: Settings = serde_json::from_value(Value::Object(settings.clone()))
        .map_err(|e| format!("timeseries settings: {e}"))?;
    Ok(Arc::new(TimeSeries {
        s,
        data: Mutex::new(HashMap::new()),
        holding: Mutex::new(HashMap::new()),
        changes: Mutex::new(Vec::new()),
    }))
}

impl TimeSeries {
    /// A record of the tenant, as stored.
    pub(super) fn record(cx: &Cx<'_>, resource: &str, id: &str) -> Option<Map<String, Value>> {
        cx.store.get(cx.tenant, resource, id).map(|r| r.body.map())
    }

    /// The ids of a container's sources.
    pub(super) fn sources_of(&self, cx: &Cx<'_>, container: &str) -> Vec<String> {
        let Some(coll) = cx.store.collection(cx.tenant, &self.s.sources) else {
            return Vec::new();
        };
        coll.iter()
            .filter(|(_, r)| {
                r.body
                    .get(&self.s.container_member)
                    .is_some_and(|v| v.as_str() == Some(container))
            })
            .map(|(id, _)| id.to_string())
            .collect()
    }

    /// The oldest timestamp (ms) a container's retention still shows.
    pub(super) fn visible_from(cx: &Cx<'_>, container: &Map<String, Value>, member: &str) -> i64 {
        let days = container
            .get(member)
            .and_then(Value::as_f64)
            .unwrap_or(3650.0);
        ((cx.now - days * 86_400.0) * 1000.0).floor() as i64
    }

    /// Points of a container's sources still within retention.
    pub(super) fn retained(&self, cx: &Cx<'_>, container_id: &str) -> usize {
        let Some(container) = Self::record(cx, &self.s.containers, container_id) else {
            return 0;
        };
        let from = Self::visible_from(cx, &container, &self.s.retention_member);
        let mut data = self.data.lock();
        let Some(t) = data.get_mut(cx.tenant) else {
            return 0;
        };
        t.series
            .values_mut()
            .filter(|s| s.container == container_id)
            .map(|s| {
                s.prepare();
                s.count_between(from, i64::MAX)
            })
            .sum()
    }

    /// Stores points of one source and, when `logged` (a state file is kept), records the
    /// change for the state log.
    pub(super) fn store_points(
        &self,
        tenant: &str,
        source: &str,
        container: &str,
        points: &[NewPoint],
        (received, logged): (i64, bool),
    ) -> Vec<usize> {
        let mut data = self.data.lock();
        let series = data
            .entry(tenant.to_owned())
            .or_default()
            .series
            .entry(source.to_owned())
            .or_insert_with(|| Series::new(container));
        let at: Vec<usize> = points.iter().map(|p| series.push(p, received)).collect();
        if !logged {
            return at;
        }
        let rows: Vec<Value> = points
            .iter()
            .map(|p| json!([p.ts, p.values, p.metadata]))
            .collect();
        self.changes.lock().push(json!({"ingest": {
            "t": tenant, "s": source, "c": container, "r": received, "p": rows
        }}));
        at
    }

    pub(super) fn drop_series(&self, tenant: &str, which: impl Fn(&str, &Series) -> bool) {
        if let Some(t) = self.data.lock().get_mut(tenant) {
            t.series.retain(|id, s| !which(id, s));
        }
    }

    /// Counts of what is under container `id`, by the names `what` gives them: a
    /// resource's records under it, or `points` (its readings within retention, or all).
    pub(super) fn counts(
        &self,
        cx: &Cx<'_>,
        id: &str,
        what: &Map<String, Value>,
        retained_only: bool,
    ) -> Value {
        let mut out = Map::new();
        for (member, counted) in what {
            let n = match counted.as_str() {
                Some("points") if retained_only => self.retained(cx, id),
                Some("points") => self
                    .data
                    .lock()
                    .get(cx.tenant)
                    .map(|t| {
                        t.series
                            .values()
                            .filter(|s| s.container == id)
                            .map(Series::len)
                            .sum()
                    })
                    .unwrap_or(0),
                Some(r) if r == self.s.sources => self.sources_of(cx, id).len(),
                Some(r) => count_children(cx, r, &self.s.containers, id),
                None => 0,
            };
            out.insert(member.clone(), json!(n));
        }
        Value::Object(out)
    }
}

/// The id the path names (the operation's last path parameter).
pub(super) fn path_id(cx: &Cx<'_>) -> Option<String> {
    cx.call?.path_params.last().map(|(_, v)| v.clone())
}

/// How many records of `resource` are children of `parent`'s record `id`.
pub(super) fn count_children(cx: &Cx<'_>, resource: &str, parent: &str, id: &str) -> usize {
    let p = crate::state::store::ParentRef {
        resource: parent.to_owned(),
        id: id.to_owned(),
    };
    cx.store
        .collection(cx.tenant, resource)
        .and_then(|c| c.children(&p))
        .map_or(0, |s| s.len())
}
