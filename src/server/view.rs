//! Read-only views of an engine's state for the admin API and the dashboard: tenants with
//! their record counts, one record with its lifecycle and the events it caused, the
//! lifecycle state of every record (to tell what an advance of the clock made due), and a
//! small pulse that changes whenever anything a dashboard shows does.
//!
//! Every read of the store's internals made for the dashboard is in this file, in a few small
//! functions, so a change to the store's representation changes only them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::sandbox::Sandbox;
use crate::profile::After;
use crate::state::Engine;

/// `(tenant, resource, id)` of a record.
pub type RecordKey = (String, String, String);

/// Every tenant with its number of records per resource type.
pub fn tenants(engine: &Engine) -> Vec<Value> {
    let store = engine.store.read();
    store
        .tenants
        .iter()
        .map(|(name, t)| {
            let counts: Map<String, Value> = t
                .resources
                .iter()
                .filter(|(_, recs)| !recs.is_empty())
                .map(|(r, recs)| (r.clone(), json!(recs.len())))
                .collect();
            json!({"tenant": name, "records": counts})
        })
        .collect()
}

/// The lifecycle field of a resource type, if it has a lifecycle.
pub fn lifecycle_field<'a>(engine: &'a Engine, resource: &str) -> Option<&'a str> {
    engine
        .profile
        .lifecycles
        .get(resource)
        .map(|l| l.field.as_str())
}

/// One record: its body and parent, its lifecycle (state, when it entered it, the timed
/// transitions that can leave it and when they are due) and the events that mention it.
/// `None` when no tenant (or not `tenant`) has it.
pub fn record(engine: &Engine, resource: &str, id: &str, tenant: Option<&str>) -> Option<Value> {
    let (owner, body, parent, meta) = {
        let store = engine.store.read();
        let (owner, rec) = store
            .tenants
            .iter()
            .filter(|(t, _)| tenant.is_none_or(|x| x == t.as_str()))
            .find_map(|(t, state)| Some((t.clone(), state.resources.get(resource)?.get(id)?)))?;
        (
            owner,
            rec.body.map(),
            rec.parent().cloned(),
            rec.meta().clone(),
        )
    };
    let lifecycle = engine.profile.lifecycles.get(resource).map(|l| {
        let state = body.get(&l.field).and_then(Value::as_str).unwrap_or("");
        let next: Vec<Value> = l
            .transitions
            .iter()
            .filter(|t| t.from.contains(state))
            .filter(|t| {
                t.scenario
                    .as_ref()
                    .is_none_or(|s| meta.scenario.as_deref().is_some_and(|m| s.contains(m)))
            })
            .map(|t| {
                let after = match &t.after {
                    Some(After::Seconds(s)) => Some(*s),
                    Some(After::Member { member, default }) => {
                        Some(body.get(member).and_then(Value::as_f64).unwrap_or(*default))
                    }
                    None => None,
                };
                let due_at = after
                    .zip(meta.entered_at)
                    .filter(|_| !meta.held)
                    .map(|(a, at)| a + at);
                json!({"to": t.to, "after": after, "due_at": due_at, "on": t.on})
            })
            .collect();
        json!({"field": l.field, "state": state, "entered_at": meta.entered_at, "held": meta.held,
               "scenario": meta.scenario, "next": next})
    });
    let id_field = engine
        .model
        .resources
        .get(resource)
        .map_or("id", |r| r.id_field.as_str());
    let events: Vec<Value> = engine
        .events
        .lock()
        .iter()
        .filter(|e| e.tenant == owner)
        .filter(|e| {
            meta.caused.iter().any(|c| c == e.id()) || mentions(&e.data()["object"], id_field, id)
        })
        .map(|e| json!(e))
        .collect();
    Some(
        json!({"tenant": owner, "resource": resource, "id": id, "parent": parent,
                "body": body, "lifecycle": lifecycle, "events": events}),
    )
}

/// Whether an event's object is the record `id` or names it in an `*_id` member.
fn mentions(object: &Value, id_field: &str, id: &str) -> bool {
    let Some(members) = object.as_object() else {
        return false;
    };
    members
        .iter()
        .any(|(k, v)| (k == id_field || k == "id" || k.ends_with("_id")) && v.as_str() == Some(id))
}

/// The lifecycle state of every record whose resource has a lifecycle.
pub fn lifecycle_states(engine: &Engine) -> BTreeMap<RecordKey, String> {
    let store = engine.store.read();
    let mut out = BTreeMap::new();
    for (tenant, t) in &store.tenants {
        for (resource, l) in &engine.profile.lifecycles {
            for (id, rec) in t.resources.get(resource).into_iter().flat_map(|c| c.iter()) {
                let state = rec.body.get(&l.field);
                let state = state.as_ref().and_then(Value::as_str).unwrap_or("");
                out.insert(
                    (tenant.clone(), resource.clone(), id.to_string()),
                    state.to_owned(),
                );
            }
        }
    }
    out
}

/// What changed since `before` (lifecycle states) and `events_before` (the number of events
/// then): the records that moved or appeared, and the new events.
pub fn became_due(
    engine: &Engine,
    before: &BTreeMap<RecordKey, String>,
    events_before: usize,
) -> Value {
    let changed: Vec<Value> = lifecycle_states(engine)
        .into_iter()
        .filter(|(k, now)| before.get(k) != Some(now))
        .map(|((tenant, resource, id), to)| {
            let from = before.get(&(tenant.clone(), resource.clone(), id.clone()));
            let field = lifecycle_field(engine, &resource);
            json!({"tenant": tenant, "resource": resource, "id": id, "field": field, "from": from, "to": to})
        })
        .collect();
    let events: Vec<Value> = engine
        .events
        .lock()
        .since(events_before)
        .map(|e| json!({"id": e.id(), "type": e.kind, "tenant": e.tenant}))
        .collect();
    json!({"changed": changed, "events": events})
}

/// The number of events recorded so far.
pub fn event_count(engine: &Engine) -> usize {
    engine.events.lock().count()
}

/// A summary that changes whenever the journal, the events, the webhook deliveries or the
/// clock (to the second) do; the dashboard's stream sends it on every change.
pub fn pulse(sandbox: &Sandbox) -> Value {
    let engine = &sandbox.engine;
    let deliveries = {
        let hooks = engine.webhooks.lock();
        let attempts: u64 = hooks.deliveries.iter().map(|d| u64::from(d.attempts)).sum();
        let settled = hooks
            .deliveries
            .iter()
            .filter(|d| d.status != "pending")
            .count();
        json!([hooks.deliveries.len(), attempts, settled])
    };
    let mut clock = engine.clock.describe();
    clock["now"] = json!(engine.clock.now_secs());
    json!({"journal": sandbox.journal.last_seq(), "events": event_count(engine),
           "deliveries": deliveries, "clock": clock})
}
