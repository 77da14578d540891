//! The webhook delivery log served through an API's own operations, for APIs that expose
//! their delivery history. The profile names the operations (`operations: {<operationId>:
//! {kind: ...}}`):
//!
//! - `webhook_deliveries` lists the tenant's deliveries, newest event first. There is one
//!   record per delivery, so an event sent to two targets, or replayed, has several; they
//!   sit together, and a page never splits them, so a cursor that is an event id is exact;
//! - `webhook_delivery` answers one event's record: its first original delivery;
//! - `webhook_replay` sends an event again to every target that wants it now, with
//!   `X-Webhook-Replay: true`, at most `webhooks.replay_limit` times per event.
//!
//! Records are projected onto the operation's response schema by member name: `id`,
//! `event_id` and `webhook_id` are the event's id; then `event_type`, `endpoint_url`/`url`,
//! `status`, `attempts`, `created_at`, `delivered_at` (in each member's own time format),
//! `is_replay`, `replay_count`, `payload`, and as a callback `callback_id`, `payload_json`,
//! `scheduled_for` and `state`. Members the log knows nothing about are
//! null where the schema allows it, and generated otherwise.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::call::{Call, Outcome};
use super::engine::Engine;
use super::lists::{self, fill_meta};
use super::model::{WebhookOp, success_schema};
use super::shape::{Shown, timestamp_for};
use super::webhooks::{Delivery, Outgoing};
use crate::compiled::Api;
use crate::generate::flatten;
use crate::spec::Spec;

/// Runs operation `oi`, bound to the delivery log, for the caller's tenant.
pub fn handle(api: &Api, engine: &Engine, oi: usize, what: WebhookOp, call: &Call) -> Outcome {
    let Some(schema) = success_schema(&api.spec.operations[oi]) else {
        return Outcome::Stateless;
    };
    match what {
        WebhookOp::List => list(api, engine, oi, schema, call),
        WebhookOp::Read | WebhookOp::Replay => {
            let Some(event_id) = event_id(engine, oi, call) else {
                return Outcome::Stateless;
            };
            if what == WebhookOp::Read {
                read(api, engine, oi, schema, call, event_id)
            } else {
                replay(api, engine, oi, schema, call, event_id)
            }
        }
    }
}

/// The event id in the path: the parameter the model picked for the item, else the last.
fn event_id<'c>(engine: &Engine, oi: usize, call: &'c Call) -> Option<&'c str> {
    engine.model.bindings[oi]
        .item_param
        .as_deref()
        .and_then(|p| call.param(p))
        .or_else(|| call.path_params.last().map(|(_, v)| v.as_str()))
}

fn list(api: &Api, engine: &Engine, oi: usize, schema: &str, call: &Call) -> Outcome {
    let spec = &api.spec;
    let plan = engine.list_plan(spec, oi, schema);
    // Newest event first; within one event, newest delivery first.
    let order: HashMap<String, usize> = engine
        .events
        .lock()
        .iter()
        .enumerate()
        .filter(|(_, e)| e.tenant == call.tenant)
        .map(|(i, e)| (e.id().to_owned(), i))
        .collect();
    let records: Vec<Map<String, Value>> = {
        let hooks = engine.webhooks.lock();
        let mut rows: Vec<(usize, usize, &Delivery)> = hooks
            .deliveries
            .iter()
            .enumerate()
            .filter(|(_, d)| d.tenant == call.tenant)
            .map(|(i, d)| (order.get(&d.event_id).copied().unwrap_or(0), i, d))
            .collect();
        rows.sort_by_key(|&(event, delivery, _)| std::cmp::Reverse((event, delivery)));
        let members = plan.item_schema.as_deref().and_then(|s| members(spec, s));
        rows.iter()
            .map(|(_, _, d)| {
                let replays = hooks.replays.get(&d.event_id).copied().unwrap_or(0);
                let known = known(spec, plan.item_schema.as_deref(), d, replays);
                fit(members.as_ref(), known)
            })
            .collect()
    };
    let filters: Vec<(String, String)> = call
        .query
        .iter()
        // Paging parameters do not filter. The order stays fixed (newest first), whatever
        // sort a client asks for: pages rely on one event's deliveries sitting together.
        .filter(|(k, _)| !lists::PAGING.contains(&k.as_str()))
        .cloned()
        .collect();
    // Filters only: every matching delivery, in the order above, is paged below.
    let everything = records.len().max(1);
    let query = lists::ListQuery {
        params: &filters,
        default_limit: everything,
        max_limit: everything,
        id_field: "id",
    };
    let rows = match lists::page(records.iter().collect(), &query) {
        Ok(p) => p.items,
        Err(e) => return Outcome::Problem(400, e.message),
    };
    let (start, end, limit) = match page_bounds(&rows, call, plan.default_limit, plan.max_limit) {
        Ok(b) => b,
        Err(message) => return Outcome::Problem(400, message),
    };
    let items: Vec<Value> = rows[start..end]
        .iter()
        .map(|r| {
            let key = format!(
                "{}/webhook-deliveries/{}",
                call.tenant,
                text(r.get("delivery_id"))
            );
            match &plan.item_schema {
                Some(s) => {
                    shown(api, engine).project(&key, s, r, None, plan.item_members.as_deref())
                }
                None => Value::Object((*r).clone()),
            }
        })
        .collect();
    if plan.bare {
        return Outcome::Body(Value::Array(items));
    }
    let window = lists::Window {
        total: rows.len(),
        has_more_after: end < rows.len(),
        has_more_before: start > 0,
        limit,
        offset: start,
    };
    let last_id = rows[start..end].last().and_then(|r| lists::id_of(r, "id"));
    let mut body = plan.wrapper.clone();
    body.insert(plan.array_member.clone(), Value::Array(items));
    fill_meta(&mut body, &window, last_id.as_deref(), &plan.array_member);
    Outcome::Body(Value::Object(body))
}

/// `[start, end)` of the page and its limit. The cursor (`cursor` or `starting_after`) is
/// an event id: the page starts after that event's last delivery. A page that would end
/// inside one event's deliveries ends before them instead, or, when they alone exceed the
/// limit, takes all of them, so that the next cursor skips nothing.
fn page_bounds(
    rows: &[&Map<String, Value>],
    call: &Call,
    default_limit: usize,
    max_limit: usize,
) -> Result<(usize, usize, usize), String> {
    let get = |name: &str| {
        call.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = match get("limit").or_else(|| get("page_size")) {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| format!("limit must be a number, not '{l}'"))?,
        None => default_limit,
    }
    .clamp(1, max_limit.max(1));
    let event = |i: usize| rows.get(i).and_then(|r| lists::id_of(r, "id"));
    let total = rows.len();
    let start = match get("cursor")
        .or_else(|| get("starting_after"))
        .filter(|c| !c.is_empty())
    {
        Some(c) => {
            rows.iter()
                .rposition(|r| lists::id_of(r, "id").as_deref() == Some(c))
                .ok_or_else(|| format!("cursor: no event '{c}' in this list"))?
                + 1
        }
        None => match get("offset") {
            Some(o) => o
                .parse::<usize>()
                .map_err(|_| format!("offset must be a number, not '{o}'"))?
                .min(total),
            None => 0,
        },
    };
    let mut end = (start + limit).min(total);
    if end < total && end > start && event(end - 1) == event(end) {
        let split = event(end);
        let mut first = end - 1;
        while first > start && event(first - 1) == split {
            first -= 1;
        }
        if first > start {
            end = first;
        } else {
            while end < total && event(end) == split {
                end += 1;
            }
        }
    }
    Ok((start, end, limit))
}

fn read(
    api: &Api,
    engine: &Engine,
    oi: usize,
    schema: &str,
    call: &Call,
    event_id: &str,
) -> Outcome {
    let spec = &api.spec;
    let mut record = {
        let hooks = engine.webhooks.lock();
        let mut mine = hooks
            .deliveries
            .iter()
            .filter(|d| d.tenant == call.tenant && d.event_id == event_id);
        // The first target's original delivery; replays only when there is nothing else.
        let Some(d) = mine.clone().find(|d| !d.replay).or_else(|| mine.next()) else {
            return Outcome::Problem(404, format!("no webhook delivery for event '{event_id}'"));
        };
        let replays = hooks.replays.get(event_id).copied().unwrap_or(0);
        let known = known(spec, Some(schema), d, replays);
        fit(members(spec, schema).as_ref(), known)
    };
    let key = format!("{}/webhook-deliveries/{event_id}", call.tenant);
    respond(api, engine, oi, schema, &key, &mut record)
}

fn replay(
    api: &Api,
    engine: &Engine,
    oi: usize,
    schema: &str,
    call: &Call,
    event_id: &str,
) -> Outcome {
    // Locked in the order `Engine::emit` locks them: store, events, webhooks.
    let store = engine.store.read();
    let event = engine
        .events
        .lock()
        .iter()
        .find(|e| e.tenant == call.tenant && e.id() == event_id)
        .map(|e| (e.kind.clone(), e.payload()));
    let Some((kind, payload)) = event else {
        return Outcome::Problem(404, format!("no event '{event_id}'"));
    };
    let urls = engine.targets_for(&store, call.tenant, &kind);
    let mut hooks = engine.webhooks.lock();
    let done = hooks.replays.get(event_id).copied().unwrap_or(0);
    if let Some(limit) = engine.profile.webhooks.replay_limit
        && done >= limit
    {
        let op = &api.spec.operations[oi];
        let status = [409, 429, 422, 400]
            .into_iter()
            .find(|s| op.declares(*s))
            .unwrap_or(409);
        return Outcome::Problem(
            status,
            format!(
                "Replay limit exceeded: event '{event_id}' has been replayed {done} times, \
                 the most allowed"
            ),
        );
    }
    // The bytes first sent, so a replay is the same event.
    let body = payload.to_bytes();
    let now = engine.clock.now();
    let max_attempts = engine.max_attempts();
    let event = Outgoing {
        event_id: Some(event_id),
        kind: &kind,
        tenant: call.tenant,
        body: &body,
    };
    for target in urls.iter().cloned() {
        hooks.queue(&event, target, (now, max_attempts, true));
    }
    hooks.replays.insert(event_id.to_owned(), done + 1);
    drop(hooks);
    drop(store);
    let mut record = Map::from_iter([
        ("id".to_owned(), json!(event_id)),
        ("event_id".to_owned(), json!(event_id)),
        ("webhook_id".to_owned(), json!(event_id)),
        ("status".to_owned(), json!("queued")),
        ("replayed_to_count".to_owned(), json!(urls.len())),
        ("replay_count".to_owned(), json!(done + 1)),
    ]);
    let key = format!("{}/webhook-replays/{event_id}/{done}", call.tenant);
    respond(api, engine, oi, schema, &key, &mut record)
}

/// `record` projected onto the operation's success schema.
fn respond(
    api: &Api,
    engine: &Engine,
    oi: usize,
    schema: &str,
    key: &str,
    record: &mut Map<String, Value>,
) -> Outcome {
    let names = engine.names_of(&api.spec, schema);
    let validator = api.success_validator(oi);
    Outcome::Body(shown(api, engine).project(key, schema, record, validator, names.as_deref()))
}

fn shown<'a>(api: &'a Api, engine: &Engine) -> Shown<'a> {
    Shown {
        spec: &api.spec,
        seed: api.seed,
        generate_optional: engine.profile.generate_optional,
    }
}

/// What the log knows about one delivery, under the member names APIs give it. Times are
/// in the format `schema` gives each member.
pub(super) fn known(
    spec: &Spec,
    schema: Option<&str>,
    d: &Delivery,
    replays: u32,
) -> Map<String, Value> {
    let time = |member: &str, at: f64| {
        let unix = at.floor() as i64;
        schema.map_or(json!(unix), |s| timestamp_for(spec, s, member, unix))
    };
    let payload = serde_json::from_slice::<Value>(&d.body).unwrap_or(Value::Null);
    let mut m = Map::new();
    for k in ["id", "event_id", "webhook_id"] {
        m.insert(k.to_owned(), json!(d.event_id));
    }
    m.insert("delivery_id".into(), json!(d.id));
    m.insert("event_type".into(), json!(d.event_type));
    for k in ["endpoint_url", "url", "target_url"] {
        m.insert(k.to_owned(), json!(d.url));
    }
    m.insert("status".into(), json!(d.status));
    m.insert("state".into(), json!(d.status));
    // As a callback scheduled for the event (Dakota's simulation callbacks).
    m.insert(
        "callback_id".into(),
        json!(crate::generate::ids::uuid_from(&d.id)),
    );
    m.insert("scheduled_for".into(), time("scheduled_for", d.created_at));
    m.insert(
        "payload_json".into(),
        json!(String::from_utf8_lossy(&d.body)),
    );
    m.insert("attempts".into(), json!(d.attempts));
    m.insert("max_attempts".into(), json!(d.max_attempts));
    m.insert("created_at".into(), time("created_at", d.created_at));
    m.insert(
        "delivered_at".into(),
        d.delivered_at
            .map_or(Value::Null, |t| time("delivered_at", t)),
    );
    m.insert("is_replay".into(), json!(d.replay));
    m.insert("replay_count".into(), json!(replays));
    m.insert("response_code".into(), json!(d.response_code));
    m.insert("last_error".into(), json!(d.last_error));
    m.insert("payload".into(), payload);
    m
}

/// The members of an object schema, and which of them are `nullable`.
struct Members {
    names: Vec<String>,
    nullable: HashSet<String>,
}

/// `None` for a schema without properties (free-form).
fn members(spec: &Spec, schema_ptr: &str) -> Option<Members> {
    let flat = flatten(&spec.doc, spec.at(schema_ptr)?);
    let props = flat.get("properties")?.as_object()?;
    let nullable = props
        .iter()
        .filter(|(_, p)| flatten(&spec.doc, p).get("nullable") == Some(&Value::Bool(true)))
        .map(|(k, _)| k.clone())
        .collect();
    Some(Members {
        names: props.keys().cloned().collect(),
        nullable,
    })
}

/// Fits what the log knows to the schema's members: a null stays only where the member is
/// nullable, and a member the log does not know is null where that is allowed (rather than
/// a generated value that would claim something false). `project` generates whatever is
/// still missing.
fn fit(members: Option<&Members>, mut record: Map<String, Value>) -> Map<String, Value> {
    let Some(m) = members else {
        return record;
    };
    record.retain(|k, v| !v.is_null() || m.nullable.contains(k));
    for name in &m.names {
        if !record.contains_key(name) && m.nullable.contains(name) {
            record.insert(name.clone(), Value::Null);
        }
    }
    record
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks every page with `limit`, following the cursor, and returns the pages' events.
    fn walk(events: &[&str], limit: usize) -> Vec<Vec<String>> {
        let rows: Vec<Map<String, Value>> = events
            .iter()
            .map(|e| Map::from_iter([("id".to_owned(), json!(e))]))
            .collect();
        let refs: Vec<&Map<String, Value>> = rows.iter().collect();
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit".to_owned(), limit.to_string())];
            if let Some(c) = &cursor {
                query.push(("cursor".to_owned(), c.clone()));
            }
            let (start, end, _) = page_bounds(&refs, &listing(&query), 20, 100).expect("bounds");
            let page: Vec<String> = events[start..end].iter().map(|e| (*e).to_owned()).collect();
            if end >= events.len() {
                pages.push(page);
                return pages;
            }
            cursor = page.last().cloned();
            pages.push(page);
        }
    }

    /// A list request with this query.
    fn listing(query: &[(String, String)]) -> Call<'_> {
        Call {
            tenant: "t",
            path_params: &[],
            query,
            body: None,
            now: 0,
            scenario: None,
            instant: false,
            headers: None,
            identity: None,
        }
    }

    #[test]
    fn pages_never_split_one_events_deliveries() {
        let events = ["c", "c", "b", "a", "a", "a"];
        assert_eq!(
            walk(&events, 1),
            [vec!["c", "c"], vec!["b"], vec!["a", "a", "a"]]
        );
        assert_eq!(
            walk(&events, 2),
            [vec!["c", "c"], vec!["b"], vec!["a", "a", "a"]]
        );
        assert_eq!(walk(&events, 4), [vec!["c", "c", "b"], vec!["a", "a", "a"]]);
        assert_eq!(walk(&events, 6), [events.map(str::to_owned).to_vec()]);
    }

    #[test]
    fn an_unknown_cursor_is_a_client_error() {
        let rows = [Map::from_iter([("id".to_owned(), json!("a"))])];
        let refs: Vec<&Map<String, Value>> = rows.iter().collect();
        let query = [("cursor".to_owned(), "zzz".to_owned())];
        assert!(page_bounds(&refs, &listing(&query), 20, 100).is_err());
    }
}
