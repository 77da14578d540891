//! `timeseries`: readings from data sources kept in containers (dakkio's points, in its
//! buckets), ingested one at a time or in batches, queried back raw or aggregated per
//! interval, summarised per container and per tenant, and watched by alert rules written in
//! plain English whose firings are delivered as webhooks. The records (containers, sources,
//! rules) stay the engine's; the readings are this behaviour's own data, stored by column
//! ([`series`]) and written to the state log with everything else.
//!
//! ```yaml
//! behaviours:
//!   series:
//!     use: timeseries
//!     containers: buckets        # records that hold sources (retention, archived status)
//!     sources: sources           # records that are series (fields declared in `schema`)
//!     rules: alerts              # alert rules (condition parsed when made, evaluated on ingest)
//!     answers:                   # operation -> what this behaviour does for it
//!       ingestDataPoint: ingest
//!       ingestDataPointBatch: ingest_batch
//!       queryData: query
//!       getBucketAnalytics: summary
//!       getAnalyticsOverview: overview
//!       getBucket: container_stats
//!       deleteBucket: container_delete
//! ```

mod alerts;
pub mod conditions;
mod ingest;
mod query;
pub mod series;
mod settings;
mod store;
mod summary;
mod time;

use serde_json::{Map, Value, json};

use self::series::{NewPoint, Series};
pub use self::settings::{Labels, Role, Settings};
use self::store::{Firing, path_id};
pub use self::store::{TimeSeries, make};
use crate::state::behaviour::{Behaviour, Cx, Happened, OwnData, Refusal};
use crate::state::call::Outcome;

impl TimeSeries {
    /// `GET` a container: the engine's answer with the `stats` counts added.
    fn container_stats(&self, cx: &mut Cx<'_>) -> Outcome {
        let Some(id) = path_id(cx) else {
            return Outcome::Stateless;
        };
        let outcome = cx.perform();
        let stats = self.counts(cx, &id, &self.s.stats, true);
        add_to_record(outcome, &id, "stats", stats)
    }

    /// `DELETE` a container: the engine deletes it and everything under it; the answer
    /// counts what went (`deletedResources`).
    fn container_delete(&self, cx: &mut Cx<'_>) -> Outcome {
        let Some(id) = path_id(cx) else {
            return Outcome::Stateless;
        };
        let counts = self.counts(cx, &id, &self.s.deleted, false);
        match cx.perform() {
            Outcome::Body(Value::Object(mut body)) | Outcome::Shown(Value::Object(mut body), _) => {
                body.insert("deletedResources".into(), counts);
                Outcome::Body(Value::Object(body))
            }
            other => other,
        }
    }

    /// A new source's field declarations, as sent, in object form (`"number"` becomes
    /// `{"type": "number"}`). Taken from the request: the engine replaced the shorthand,
    /// which the stored record's schema does not allow, before this runs.
    fn admit_source(cx: &Cx<'_>, record: &mut Map<String, Value>) {
        let sent = cx
            .call
            .and_then(|c| c.body)
            .and_then(|b| b.get("schema"))
            .and_then(Value::as_object);
        if let Some(sent) = sent {
            let declared: Map<String, Value> = sent
                .iter()
                .map(|(name, spec)| match spec {
                    Value::String(t) => (name.clone(), json!({"type": t})),
                    other => (name.clone(), other.clone()),
                })
                .collect();
            record.insert("schema".into(), Value::Object(declared));
        }
    }
}

/// Adds `member` to the record inside an engine answer (the object member whose id is
/// `id`, or the body itself).
fn add_to_record(outcome: Outcome, id: &str, member: &str, value: Value) -> Outcome {
    let holds = |v: &Value| {
        ["_id", "id"]
            .iter()
            .any(|k| v.get(*k).and_then(Value::as_str) == Some(id))
    };
    match outcome {
        Outcome::Body(mut body) | Outcome::Shown(mut body, _) => {
            let target = match &mut body {
                Value::Object(m) if !holds(&Value::Object(m.clone())) => {
                    m.values_mut().find(|v| holds(v))
                }
                other => Some(other),
            };
            if let Some(Value::Object(record)) = target {
                record.insert(member.to_owned(), value);
            }
            Outcome::Body(body)
        }
        other => other,
    }
}

impl Behaviour for TimeSeries {
    fn answer(&self, cx: &mut Cx<'_>) -> Outcome {
        let Some(role) = cx.op_id().and_then(|op| self.s.answers.get(op)).copied() else {
            return Outcome::Stateless;
        };
        match role {
            Role::Ingest => ingest::single(self, cx),
            Role::IngestBatch => ingest::batch(self, cx),
            Role::Query => query::run(self, cx),
            Role::Summary => summary::container(self, cx),
            Role::Overview => summary::overview(self, cx),
            Role::ContainerStats => self.container_stats(cx),
            Role::ContainerDelete => self.container_delete(cx),
        }
    }

    fn admit(&self, cx: &mut Cx<'_>, record: &mut Map<String, Value>) -> Result<(), Refusal> {
        if cx.resource == self.s.sources {
            Self::admit_source(cx, record);
        } else if Some(cx.resource) == self.s.rules.as_deref() {
            alerts::admit_rule(self, cx, record)?;
        }
        Ok(())
    }

    fn after(&self, cx: &mut Cx<'_>, happened: Happened, id: &str, _record: &Map<String, Value>) {
        if happened != Happened::Deleted {
            return;
        }
        let tenant = cx.tenant.to_owned();
        if cx.resource == self.s.containers {
            self.drop_series(&tenant, |_, s| s.container == id);
            self.changes
                .lock()
                .push(json!({"drop_container": {"t": tenant, "c": id}}));
        } else if cx.resource == self.s.sources {
            self.drop_series(&tenant, |sid, _| sid == id);
            self.changes
                .lock()
                .push(json!({"drop_source": {"t": tenant, "s": id}}));
        } else if Some(cx.resource) == self.s.rules.as_deref() {
            self.holding.lock().remove(&(tenant, id.to_owned()));
        }
    }

    fn tick(&self, cx: &mut Cx<'_>) {
        alerts::silence(self, cx);
    }

    fn reset(&self, tenant: Option<&str>) {
        match tenant {
            Some(t) => {
                self.data.lock().remove(t);
                self.holding.lock().retain(|(tt, _), _| tt != t);
            }
            None => {
                self.data.lock().clear();
                self.holding.lock().clear();
            }
        }
    }
}

impl OwnData for TimeSeries {
    fn take_changes(&self) -> Vec<Value> {
        std::mem::take(&mut *self.changes.lock())
    }

    fn apply(&self, change: &Value) {
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        if let Some(c) = change.get("ingest") {
            let points: Vec<NewPoint> = c
                .get("p")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|row| {
                    Some(NewPoint {
                        ts: row.get(0)?.as_i64()?,
                        values: row.get(1)?.as_object()?.clone(),
                        metadata: row.get(2).cloned().unwrap_or_else(|| json!({})),
                    })
                })
                .collect();
            let received = c.get("r").and_then(Value::as_i64).unwrap_or(0);
            // Replayed from the log: not written to it again.
            self.store_points(
                &text(c, "t"),
                &text(c, "s"),
                &text(c, "c"),
                &points,
                (received, false),
            );
        } else if let Some(c) = change.get("drop_container") {
            let container = text(c, "c");
            self.drop_series(&text(c, "t"), |_, s| s.container == container);
        } else if let Some(c) = change.get("drop_source") {
            let source = text(c, "s");
            self.drop_series(&text(c, "t"), |id, _| id == source);
        } else if let Some(c) = change.get("firing") {
            let mut data = self.data.lock();
            data.entry(text(c, "t")).or_default().firings.push(Firing {
                rule: text(c, "rule"),
                name: text(c, "name"),
                container: text(c, "c"),
                at: c.get("at").and_then(Value::as_i64).unwrap_or(0),
            });
        }
    }

    fn export(&self) -> Value {
        // Written as the changes that would rebuild it, so one reader serves both.
        let data = self.data.lock();
        let mut out = Vec::new();
        for (tenant, t) in data.iter() {
            for (source, s) in &t.series {
                let rows: Vec<Value> = (0..s.len())
                    .map(|i| json!([s.ts(i), s.values(i), s.metadata(i), s.received(i)]))
                    .collect();
                out.push(
                    json!({"series": {"t": tenant, "s": source, "c": s.container, "p": rows}}),
                );
            }
            for f in &t.firings {
                out.push(json!({"firing": {"t": tenant, "rule": f.rule, "name": f.name, "c": f.container, "at": f.at}}));
            }
        }
        Value::Array(out)
    }

    fn restore(&self, saved: &Value) {
        self.data.lock().clear();
        for item in saved.as_array().into_iter().flatten() {
            if let Some(c) = item.get("series") {
                let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                let mut series = Series::new(&text("c"));
                for row in c.get("p").and_then(Value::as_array).into_iter().flatten() {
                    let (Some(ts), Some(values)) = (
                        row.get(0).and_then(Value::as_i64),
                        row.get(1).and_then(Value::as_object),
                    ) else {
                        continue;
                    };
                    let p = NewPoint {
                        ts,
                        values: values.clone(),
                        metadata: row.get(2).cloned().unwrap_or_else(|| json!({})),
                    };
                    series.push(&p, row.get(3).and_then(Value::as_i64).unwrap_or(0));
                }
                self.data
                    .lock()
                    .entry(text("t"))
                    .or_default()
                    .series
                    .insert(text("s"), series);
            } else {
                self.apply(item);
            }
        }
    }
}
