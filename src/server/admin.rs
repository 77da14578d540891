//! The sandbox's own API under `/__sandbox/` (no spec may use that prefix):
//!
//! | request | effect |
//! |---|---|
//! | `POST /__sandbox/reset[?tenant=KEY]` | forget all state, or one tenant's |
//! | `GET /__sandbox/state` | export all state as JSON |
//! | `PUT /__sandbox/state` | replace all state with an export |
//! | `GET /__sandbox/resources` | resource types inferred from the spec, with counts |
//! | `GET /__sandbox/resources/{type}[?tenant=KEY]` | the stored records of one type |
//! | `GET /__sandbox/operations` | how each operation acts on state |
//! | `GET /__sandbox/journal` | recent requests: method, path, status, tenant, verdict |
//! | `GET /__sandbox/clock` | the virtual clock |
//! | `POST /__sandbox/clock/freeze`, `/resume`, `/advance` `{"seconds": N}` | control it |
//! | `GET /__sandbox/events[?tenant=KEY]` | every event, in order |
//! | `GET`/`POST /__sandbox/webhooks/targets` `{url, event_types?, tenant?}` | webhook targets |
//! | `GET /__sandbox/webhooks/deliveries` | delivery log: status, attempts, response code |
//! | `POST /__sandbox/webhooks/deliveries/{id}/replay` | send a delivery again |
//! | `GET /__sandbox/webhooks/public-key` | the key that verifies signatures (hex) |

use axum::body::Body;
use serde_json::{Value, json};

use super::api::Api;
use super::respond::Prepared;
use crate::state::lock;
use crate::state::store::{FORMAT_VERSION, Store};

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

pub async fn handle(api: &Api, parts: &http::request::Parts, body: Body) -> Prepared {
    let path = parts.uri.path().trim_end_matches('/');
    let rest = path.strip_prefix(crate::spec::ADMIN_PREFIX).unwrap_or("");
    let query = super::request::parse_query(parts.uri.query());
    let tenant = query
        .iter()
        .find(|(k, _)| k == "tenant")
        .map(|(_, v)| v.as_str());
    let engine = &api.engine;
    match (parts.method.as_str(), rest) {
        ("POST", "/reset") => {
            engine.reset(tenant);
            ok(&json!({"reset": tenant.unwrap_or("all")}))
        }
        ("GET", "/state") => {
            ok(&serde_json::to_value(&*lock(&engine.store)).unwrap_or(Value::Null))
        }
        ("PUT", "/state") => {
            let Ok(bytes) = axum::body::to_bytes(body, MAX_STATE_BYTES).await else {
                return error(413, "the state document is too large");
            };
            match parse_state(&bytes) {
                Ok(store) => {
                    *lock(&engine.store) = store;
                    engine.idempotency.clear(None);
                    ok(&json!({"imported": true}))
                }
                Err(e) => error(400, &e),
            }
        }
        ("GET", "/resources") => {
            let store = lock(&engine.store);
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
                        .map(indexmap::IndexMap::len)
                        .sum();
                    json!({"name": r.name, "id_field": r.id_field, "schema": r.schema, "count": count})
                })
                .collect();
            ok(&json!({"resources": list}))
        }
        ("GET", r) if r.starts_with("/resources/") => {
            let name = &r["/resources/".len()..];
            if !engine.model.resources.contains_key(name) {
                return error(404, &format!("no resource type '{name}'"));
            }
            let store = lock(&engine.store);
            let records: Vec<Value> = store
                .tenants
                .iter()
                .filter(|(t, _)| tenant.is_none_or(|x| x == t.as_str()))
                .flat_map(|(t, state)| {
                    state.resources.get(name).into_iter().flat_map(move |recs| {
                        recs.values().map(
                            move |rec| json!({"tenant": t, "parent": rec.parent, "body": rec.body}),
                        )
                    })
                })
                .collect();
            ok(&json!({"resource": name, "records": records}))
        }
        ("GET", "/operations") => {
            let ops: Vec<Value> = api
                .spec
                .operations
                .iter()
                .zip(&engine.model.bindings)
                .map(|(o, b)| {
                    json!({"operation": o.id, "method": o.method.as_str(), "path": o.path, "kind": format!("{:?}", b.kind),
                           "resource": (!b.resource.is_empty()).then_some(&b.resource), "parent": b.parent.as_ref().map(|p| &p.1)})
                })
                .collect();
            ok(&json!({"operations": ops}))
        }
        ("GET", "/clock") => ok(&engine.clock.describe()),
        ("POST", "/clock/freeze") => {
            engine.clock.freeze();
            ok(&engine.clock.describe())
        }
        ("POST", "/clock/resume") => {
            engine.clock.resume();
            ok(&engine.clock.describe())
        }
        ("POST", "/clock/advance") => {
            let bytes = axum::body::to_bytes(body, 64 * 1024)
                .await
                .unwrap_or_default();
            let seconds = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("seconds").and_then(Value::as_f64));
            let Some(seconds) = seconds.filter(|s| *s >= 0.0 && s.is_finite()) else {
                return error(400, "send {\"seconds\": N} with N >= 0");
            };
            engine.clock.advance(seconds);
            // Everything that became due happens now, not at the next scheduler step.
            engine.tick(&api.spec);
            ok(&engine.clock.describe())
        }
        ("GET", "/events") => {
            let events = lock(&engine.events);
            let list: Vec<&crate::state::Event> = events
                .iter()
                .filter(|e| tenant.is_none_or(|t| t == e.tenant))
                .collect();
            ok(&json!({"events": list}))
        }
        ("GET", "/webhooks/targets") => ok(&json!({"targets": lock(&engine.webhooks).targets})),
        ("POST", "/webhooks/targets") => {
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
            let event_types = crate::state::webhooks::event_types(v.get("event_types"));
            let mut hooks = lock(&engine.webhooks);
            let target = crate::state::webhooks::Target {
                id: format!("tgt_{:06}", hooks.targets.len() + 1),
                tenant: v.get("tenant").and_then(Value::as_str).map(str::to_owned),
                url: url.to_owned(),
                event_types,
            };
            hooks.targets.push(target.clone());
            Prepared::json(201, "application/json", &json!(target))
        }
        ("GET", "/webhooks/deliveries") => {
            ok(&json!({"deliveries": lock(&engine.webhooks).deliveries}))
        }
        ("POST", r) if r.starts_with("/webhooks/deliveries/") && r.ends_with("/replay") => {
            let id = &r["/webhooks/deliveries/".len()..r.len() - "/replay".len()];
            let mut hooks = lock(&engine.webhooks);
            let Some(original) = hooks.deliveries.iter().find(|d| d.id == id).cloned() else {
                return error(404, &format!("no delivery '{id}'"));
            };
            let n = hooks.deliveries.len() + 1;
            let replay = crate::state::webhooks::Delivery {
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
        ("GET", "/webhooks/public-key") => {
            ok(&json!({"scheme": engine.signer.scheme(), "public_key": engine.signer.public_hex()}))
        }
        ("GET", "/journal") => {
            ok(&json!({"requests": lock(&engine.journal).iter().collect::<Vec<_>>()}))
        }
        _ => error(
            404,
            &format!("no sandbox admin endpoint {} {path}", parts.method),
        ),
    }
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
