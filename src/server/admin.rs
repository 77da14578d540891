//! The sandbox's own API under `/__sandbox/` (no spec may use that prefix):
//!
//! | request | effect |
//! |---|---|
//! | `POST /__sandbox/reset[?tenant=KEY]` | forget all state, or one tenant's |
//! | `GET /__sandbox/state` | export all state as JSON |
//! | `PUT /__sandbox/state` | replace all state with an export |
//! | `GET /__sandbox/resources` | resource types inferred from the spec, with counts |
//! | `GET /__sandbox/resources/{type}[?tenant=KEY]` | the stored records of one type |
//! | `GET /__sandbox/resources/{type}/{id}[?tenant=KEY]` | one record, its lifecycle, its events |
//! | `GET /__sandbox/operations` | how each operation acts on state |
//! | `GET /__sandbox/info` | the API: title, spec, address, operations, tenants and counts |
//! | `GET /__sandbox/scenarios` | the `X-Sandbox-Scenario` catalogue: presets, lifecycle branches |
//! | `GET /__sandbox/journal[?status=4xx&tenant=&path=&after=&order=newest&limit=]` | recent requests |
//! | `GET /__sandbox/journal/{request_id}` | one request: headers and bodies both ways |
//! | `GET /__sandbox/clock` | the virtual clock |
//! | `POST /__sandbox/clock/freeze`, `/resume`, `/advance` `{"seconds": N}` | control it; an advance says what became due |
//! | `GET /__sandbox/events[?tenant=KEY]` | every event, in order |
//! | `GET`/`POST /__sandbox/webhooks/targets` `{url, event_types?, tenant?}` | webhook targets |
//! | `GET /__sandbox/webhooks/deliveries` | delivery log: status, attempts, response code |
//! | `POST /__sandbox/webhooks/deliveries/{id}/replay` | send a delivery again |
//! | `GET /__sandbox/webhooks/public-key` | the key that verifies signatures (hex) |

use axum::body::Body;
use serde_json::{Value, json};

use super::journal::Filter;
use super::request::parse_query;
use super::sandbox::Sandbox;
use super::view;
use crate::compiled::Prepared;
use crate::profile::OneOrMany;
use crate::state::Engine;
use crate::state::store::{FORMAT_VERSION, Store};
use crate::state::webhooks::{Delivery, Target, event_types};

const MAX_STATE_BYTES: usize = 256 * 1024 * 1024;

fn ok(body: &Value) -> Prepared {
    Prepared::json(200, "application/json", body)
}

fn error(status: u16, detail: &str) -> Prepared {
    let title = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    Prepared::json(
        status,
        "application/problem+json",
        &json!({"type": "about:blank", "title": title, "status": status, "detail": detail}),
    )
}

/// Answers one admin request.
pub async fn handle(sandbox: &Sandbox, parts: &http::request::Parts, body: Body) -> Prepared {
    let path = parts.uri.path().trim_end_matches('/');
    let rest = path.strip_prefix(crate::spec::ADMIN_PREFIX).unwrap_or("");
    let query = parse_query(parts.uri.query());
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let tenant = param("tenant");
    let method = parts.method.as_str();
    let engine = &sandbox.engine;
    let answer = match rest {
        "/reset" | "/state" => state(engine, method, rest, tenant, body).await,
        "/resources" | "/operations" if method == "GET" => Some(resources(sandbox, rest, tenant)),
        r if r.starts_with("/resources/") && method == "GET" => Some(records(sandbox, r, tenant)),
        r if r.starts_with("/clock") => clock(sandbox, method, r, body).await,
        "/events" if method == "GET" => Some(events(engine, tenant)),
        r if r.starts_with("/webhooks/") => webhooks(engine, method, r, body).await,
        r if r.starts_with("/journal") && method == "GET" => Some(journal(sandbox, r, &param)),
        "/info" if method == "GET" => Some(info(sandbox)),
        "/scenarios" if method == "GET" => Some(scenarios(engine)),
        "/rate-limit" => rate_limit(engine, method, tenant, body).await,
        _ => None,
    };
    answer.unwrap_or_else(|| {
        error(
            404,
            &format!("no sandbox admin endpoint {} {path}", parts.method),
        )
    })
}

/// Reset, export and import.
async fn state(
    engine: &Engine,
    method: &str,
    rest: &str,
    tenant: Option<&str>,
    body: Body,
) -> Option<Prepared> {
    Some(match (method, rest) {
        ("POST", "/reset") => {
            engine.reset(tenant);
            engine.durable(engine.take_append()).await;
            ok(&json!({"reset": tenant.unwrap_or("all")}))
        }
        ("GET", "/state") => {
            ok(&serde_json::to_value(&*engine.store.read()).unwrap_or(Value::Null))
        }
        ("PUT", "/state") => {
            let Ok(bytes) = axum::body::to_bytes(body, MAX_STATE_BYTES).await else {
                return Some(error(413, "the state document is too large"));
            };
            match parse_state(&bytes) {
                Ok(store) => {
                    engine.import(store);
                    engine.durable(engine.take_append()).await;
                    ok(&json!({"imported": true}))
                }
                Err(e) => error(400, &e),
            }
        }
        _ => return None,
    })
}

/// The inferred resource types with their counts, and how each operation acts.
fn resources(sandbox: &Sandbox, rest: &str, tenant: Option<&str>) -> Prepared {
    let engine = &sandbox.engine;
    if rest == "/operations" {
        let ops: Vec<Value> = sandbox
            .api
            .spec
            .operations
            .iter()
            .zip(&engine.model.bindings)
            .map(|(o, b)| {
                json!({"operation": o.id, "method": o.method.as_str(), "path": o.path, "kind": format!("{:?}", b.kind),
                       "resource": (!b.resource.is_empty()).then_some(&b.resource), "parent": b.parent.as_ref().map(|p| &p.1)})
            })
            .collect();
        return ok(&json!({"operations": ops}));
    }
    let store = engine.store.read();
    let list: Vec<Value> = engine
        .model
        .resources
        .values()
        .map(|r| {
            let count: usize = store
                .tenants
                .iter()
                .filter(|(t, _)| tenant.is_none_or(|x| x == t.as_str()))
                .filter_map(|(_, t)| t.resources.get(&r.name))
                .map(crate::state::store::Collection::len)
                .sum();
            json!({"name": r.name, "id_field": r.id_field, "schema": r.schema, "count": count})
        })
        .collect();
    ok(&json!({"resources": list}))
}

/// One resource type's stored records.
fn records(sandbox: &Sandbox, rest: &str, tenant: Option<&str>) -> Prepared {
    let engine = &sandbox.engine;
    let (name, id) = rest["/resources/".len()..]
        .split_once('/')
        .map_or((&rest["/resources/".len()..], None), |(n, i)| (n, Some(i)));
    if !engine.model.resources.contains_key(name) {
        return error(404, &format!("no resource type '{name}'"));
    }
    if let Some(id) = id {
        return view::record(engine, name, id, tenant).map_or_else(
            || error(404, &format!("no {name} record '{id}'")),
            |r| ok(&r),
        );
    }
    let field = view::lifecycle_field(engine, name);
    let store = engine.store.read();
    let records: Vec<Value> = store
        .tenants
        .iter()
        .filter(|(t, _)| tenant.is_none_or(|x| x == t.as_str()))
        .flat_map(|(t, state)| {
            state.resources.get(name).into_iter().flat_map(move |recs| {
                recs.iter().map(move |(id, rec)| {
                    let state = field.and_then(|f| rec.body.get(f));
                    json!({"tenant": t, "id": &**id, "state": state, "parent": rec.parent(), "body": rec.body})
                })
            })
        })
        .collect();
    ok(&json!({"resource": name, "records": records}))
}

/// The virtual clock: read, freeze, resume, advance.
async fn clock(sandbox: &Sandbox, method: &str, rest: &str, body: Body) -> Option<Prepared> {
    let clock = &sandbox.engine.clock;
    match (method, rest) {
        ("GET", "/clock") => {}
        ("POST", "/clock/freeze") => clock.freeze(),
        ("POST", "/clock/resume") => clock.resume(),
        ("POST", "/clock/advance") => {
            let bytes = axum::body::to_bytes(body, 64 * 1024)
                .await
                .unwrap_or_default();
            let sent = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("seconds").cloned());
            let Some(seconds) = sent
                .as_ref()
                .and_then(Value::as_f64)
                .filter(|s| *s >= 0.0 && s.is_finite())
            else {
                let got = sent.map_or_else(|| "nothing".to_owned(), |v| v.to_string());
                let detail = format!(
                    "seconds must be a number of seconds >= 0 (send {{\"seconds\": N}}); got {got}"
                );
                return Some(error(400, &detail));
            };
            let engine = &sandbox.engine;
            let (before, events_before) =
                (view::lifecycle_states(engine), view::event_count(engine));
            clock.advance(seconds);
            // Everything that became due happens now, not at the next scheduler step.
            engine.tick(&sandbox.api.spec);
            let mut answer = clock.describe();
            answer["due"] = view::became_due(engine, &before, events_before);
            return Some(ok(&answer));
        }
        _ => return None,
    }
    Some(ok(&clock.describe()))
}

/// A tenant's rate-limit window: `GET` shows its use, `PUT {"limit": N, "used": M}` gives
/// it an allowance of its own (`null`: the default again) and sets how much is used, so a
/// tester can see 429 without sending a month of requests.
async fn rate_limit(
    engine: &Engine,
    method: &str,
    tenant: Option<&str>,
    body: Body,
) -> Option<Prepared> {
    let Some(tenant) = tenant else {
        return Some(error(400, "name the tenant: ?tenant=<credential>"));
    };
    let now = engine.clock.now_secs();
    match method {
        "GET" => {}
        "PUT" | "POST" => {
            let bytes = axum::body::to_bytes(body, 64 * 1024)
                .await
                .unwrap_or_default();
            let Ok(Value::Object(sent)) = serde_json::from_slice::<Value>(&bytes) else {
                return Some(error(
                    400,
                    "send {\"limit\": N, \"used\": M} (both optional)",
                ));
            };
            let number = |k: &str| sent.get(k).and_then(Value::as_u64);
            let limit = match sent.get("limit") {
                Some(Value::Null) => None,
                Some(_) => number("limit"),
                None => engine.rate_limit.usage(tenant, now).limit,
            };
            engine.rate_limit.set(tenant, limit, number("used"), now);
        }
        _ => return None,
    }
    let usage = engine.rate_limit.usage(tenant, now);
    Some(ok(&json!({
        "tenant": tenant,
        "window": engine.rate_limit.window_name(),
        "limit": usage.limit,
        "used": usage.used,
        "remaining": usage.limit.map(|l| l.saturating_sub(usage.used)),
        "reset": usage.reset,
    })))
}

/// The journal, filtered (`status`, `tenant`, `path`, `after`, `order=newest`, `limit`), or
/// one request with its exchange.
fn journal<'q>(
    sandbox: &Sandbox,
    rest: &str,
    param: &impl Fn(&str) -> Option<&'q str>,
) -> Prepared {
    if let Some(id) = rest.strip_prefix("/journal/") {
        return match sandbox.journal.get(id) {
            Some((entry, exchange)) => ok(&json!({"entry": entry, "exchange": *exchange})),
            None => error(404, &format!("no request '{id}' in the journal")),
        };
    }
    if rest != "/journal" {
        return error(404, &format!("no sandbox admin endpoint GET {rest}"));
    }
    let filter = Filter {
        status: param("status").filter(|s| !s.is_empty()),
        tenant: param("tenant"),
        path: param("path").filter(|s| !s.is_empty()),
        after: param("after").and_then(|a| a.parse().ok()).unwrap_or(0),
        newest_first: param("order") == Some("newest"),
        limit: param("limit").and_then(|l| l.parse().ok()),
    };
    ok(&json!({"requests": sandbox.journal.list(&filter)}))
}

/// What the dashboard's overview shows: the API, where it is served, and its tenants.
fn info(sandbox: &Sandbox) -> Prepared {
    let api = &sandbox.api;
    let lifecycles: serde_json::Map<String, Value> = sandbox
        .engine
        .profile
        .lifecycles
        .iter()
        .map(|(r, l)| (r.clone(), json!(l.field)))
        .collect();
    ok(&json!({
        "title": api.name,
        "spec": api.spec.file.display().to_string(),
        "address": sandbox.addr.get().map(ToString::to_string),
        "operations": api.spec.operations.len(),
        "stateless": sandbox.engine.stateless,
        "resources": sandbox.engine.model.resources.keys().collect::<Vec<_>>(),
        "lifecycles": lifecycles,
        "tenants": view::tenants(&sandbox.engine),
    }))
}

/// The scenario catalogue: presets that answer with an error, and the lifecycle branches a
/// scenario name selects.
fn scenarios(engine: &Engine) -> Prepared {
    let presets: Vec<Value> = engine
        .profile
        .scenarios
        .iter()
        .map(|(name, p)| json!({"name": name, "status": p.status, "message": p.message}))
        .collect();
    let branches: Vec<Value> = engine
        .profile
        .lifecycles
        .iter()
        .flat_map(|(resource, l)| {
            l.transitions.iter().filter_map(move |t| {
                let names = one_or_many(t.scenario.as_ref()?);
                Some(
                    json!({"scenarios": names, "resource": resource, "field": l.field,
                            "from": one_or_many(&t.from), "to": t.to}),
                )
            })
        })
        .collect();
    ok(&json!({"presets": presets, "lifecycle_branches": branches}))
}

fn events(engine: &Engine, tenant: Option<&str>) -> Prepared {
    let events = engine.events.lock();
    let list: Vec<&crate::state::Event> = events
        .iter()
        .filter(|e| tenant.is_none_or(|t| t == e.tenant))
        .collect();
    ok(&json!({"events": list}))
}

/// Targets, the delivery log, replays and the verification key.
async fn webhooks(engine: &Engine, method: &str, rest: &str, body: Body) -> Option<Prepared> {
    Some(match (method, rest) {
        ("GET", "/webhooks/targets") => ok(&json!({"targets": engine.webhooks.lock().targets})),
        ("POST", "/webhooks/targets") => add_target(engine, body).await,
        ("GET", "/webhooks/deliveries") => {
            ok(&json!({"deliveries": engine.webhooks.lock().deliveries}))
        }
        ("POST", r) if r.starts_with("/webhooks/deliveries/") && r.ends_with("/replay") => replay(
            engine,
            &r["/webhooks/deliveries/".len()..r.len() - "/replay".len()],
        ),
        ("GET", "/webhooks/public-key") => {
            ok(&json!({"scheme": engine.signer.scheme(), "public_key": engine.signer.public_hex()}))
        }
        _ => return None,
    })
}

async fn add_target(engine: &Engine, body: Body) -> Prepared {
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return error(400, "send a JSON object with a url");
    };
    let Some(url) = v
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    else {
        return error(400, "url must be an http(s) URL");
    };
    let mut hooks = engine.webhooks.lock();
    let n = hooks.targets.len() + 1;
    // A secret of its own, when the API signs per target: shown here, once.
    let secret = engine.profile.webhooks.target_secrets.then(|| {
        let seed = engine.seed ^ crate::generate::stable_hash(&format!("target {n} {url}"));
        format!(
            "whsec_{}",
            crate::state::expr::digest_hex(&seed.to_string(), 32)
        )
    });
    let target = Target {
        id: format!("tgt_{n:06}"),
        tenant: v.get("tenant").and_then(Value::as_str).map(str::to_owned),
        url: url.to_owned(),
        event_types: event_types(v.get("event_types")),
        secret: secret.clone(),
    };
    hooks.targets.push(target.clone());
    let mut shown = json!(target);
    if let Some(secret) = secret {
        shown["secret"] = json!(secret);
    }
    Prepared::json(201, "application/json", &shown)
}

/// Queues delivery `id` again, now.
fn replay(engine: &Engine, id: &str) -> Prepared {
    let mut hooks = engine.webhooks.lock();
    let Some(original) = hooks.deliveries.iter().find(|d| d.id == id).cloned() else {
        return error(404, &format!("no delivery '{id}'"));
    };
    let n = hooks.deliveries.len() + 1;
    let replay = Delivery {
        id: format!("dlv_{n:08}"),
        status: "pending".into(),
        attempts: 0,
        next_attempt_at: engine.clock.now(),
        response_code: None,
        last_error: None,
        replay: true,
        created_at: engine.clock.now(),
        delivered_at: None,
        in_flight: false,
        ..original
    };
    hooks.deliveries.push(replay.clone());
    Prepared::json(202, "application/json", &json!(replay))
}

/// Parses an exported state document, refusing other format versions.
pub fn parse_state(bytes: &[u8]) -> Result<Store, String> {
    let store: Store =
        serde_json::from_slice(bytes).map_err(|e| format!("not a sandbox state document: {e}"))?;
    if store.version != FORMAT_VERSION {
        return Err(format!(
            "state format version {} is not supported (expected {FORMAT_VERSION})",
            store.version
        ));
    }
    Ok(store)
}

fn one_or_many(v: &OneOrMany) -> Vec<&str> {
    match v {
        OneOrMany::One(x) => vec![x.as_str()],
        OneOrMany::Many(xs) => xs.iter().map(String::as_str).collect(),
    }
}
