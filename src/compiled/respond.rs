//! Success responses: the operation's declared success status with a body taken from the
//! spec (media example, named examples, schema example) or synthesised from the schema.
//! Every candidate is checked against the compiled response schema and the first valid one
//! is served, so a response never contradicts its own spec even when an example does.

use std::sync::Arc;

use bytes::Bytes;
use jsonschema::Validator;
use serde_json::Value;

use super::api::Api;
use super::prepared::Prepared;
use crate::generate::Generator;
use crate::schema::Direction;
use crate::spec::catalog::{Media, is_json};
use crate::spec::{Spec, pointer};

/// Synthesis attempts before giving up on a schema that generated values keep failing.
const SYNTH_ATTEMPTS: usize = 8;

/// Candidate bodies for a media type, best first: examples, then synthesised values.
pub fn body_candidates(
    spec: &Spec,
    media: &Media,
    seed: u64,
    key: &str,
    direction: Direction,
) -> Vec<Value> {
    let mut out = Vec::new();
    let node = spec.at(&media.pointer);
    if let Some(ex) = node.and_then(|n| n.get("example")) {
        out.push(ex.clone());
    }
    if let Some(Value::Object(map)) = node.and_then(|n| n.get("examples")) {
        for ex in map.values() {
            if let Some(v) = pointer::resolve(&spec.doc, ex)
                .ok()
                .and_then(|(e, _)| e.get("value"))
            {
                out.push(v.clone());
            }
        }
    }
    let Some(schema_ptr) = &media.schema else {
        return out;
    };
    let schema = spec
        .at(schema_ptr)
        .and_then(|s| pointer::resolve(&spec.doc, s).ok())
        .map(|(s, _)| s);
    if let Some(ex) = schema.and_then(|s| s.get("example")) {
        out.push(ex.clone());
    }
    for attempt in 0..SYNTH_ATTEMPTS {
        let mut generator = Generator::for_spec(spec, seed, &format!("{key}#{attempt}"), direction);
        // Later attempts drop property-level examples, which are the usual culprits.
        generator.use_examples = attempt < SYNTH_ATTEMPTS / 2;
        out.push(generator.value_at(schema_ptr));
    }
    out
}

/// The first candidate the validator accepts; the last one if none does (logged).
pub fn first_valid(candidates: Vec<Value>, validator: Option<&Validator>) -> Value {
    let Some(v) = validator else {
        return candidates.into_iter().next().unwrap_or(Value::Null);
    };
    let mut last = Value::Null;
    for c in candidates {
        if v.is_valid(&c) {
            return c;
        }
        last = c;
    }
    tracing::warn!("no generated body satisfies the response schema; serving the closest attempt");
    last
}

/// The operation's success response with `body` in place of the generated one (the status,
/// content type and headers stay as declared). `Null` keeps the generated body.
pub fn with_body(api: &Api, oi: usize, body: Value) -> Prepared {
    if body.is_null() {
        return (*success(api, oi)).clone();
    }
    answered(api, oi, || super::prepared::json_bytes(&body))
}

/// [`with_body`] with a body written as JSON text already.
pub fn with_text(api: &Api, oi: usize, text: bytes::Bytes) -> Prepared {
    answered(api, oi, || text)
}

/// The success response with the body `written` gives, when the response has a JSON body.
fn answered(api: &Api, oi: usize, written: impl FnOnce() -> bytes::Bytes) -> Prepared {
    let template = success(api, oi);
    let mut p = (*template).clone();
    if p.status == 204 || p.status == 304 {
        return p;
    }
    if p.content_type.as_deref().is_none_or(is_json) {
        p.content_type
            .get_or_insert_with(|| "application/json".to_owned());
        p.body = written();
    }
    p
}

/// The success response of operation `oi`, generated once per process and then reused.
pub fn success(api: &Api, oi: usize) -> Arc<Prepared> {
    api.success[oi]
        .get_or_init(|| Arc::new(build_success(api, oi)))
        .clone()
}

fn build_success(api: &Api, oi: usize) -> Prepared {
    let op = &api.spec.operations[oi];
    let Some((status, response)) = op.success() else {
        // No success response declared: an empty JSON object is the least surprising answer.
        return Prepared::json(200, "application/json", &serde_json::json!({}));
    };
    let mut headers = Vec::new();
    for h in &response.headers {
        let lower = h.name.to_ascii_lowercase();
        if lower == "content-type"
            || lower == "content-length"
            || !(h.required || lower.starts_with("x-"))
        {
            continue;
        }
        let Some(schema) = &h.schema else { continue };
        let mut generator = Generator::for_spec(
            &api.spec,
            api.seed,
            &format!("{} header {}", op.id, h.name),
            Direction::Response,
        );
        let value = match generator.value_at(schema) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        headers.push((h.name.clone(), value));
    }
    if status == 204 || status == 304 {
        return Prepared {
            status,
            content_type: None,
            headers,
            body: Bytes::new(),
        };
    }
    let chosen = response
        .content
        .iter()
        .find(|m| is_json(&m.media_type))
        .or_else(|| response.content.first());
    let Some(media) = chosen else {
        let mut p = Prepared::json(status, "application/json", &serde_json::json!({}));
        p.headers = headers;
        return p;
    };
    if !is_json(&media.media_type) {
        // Binary or text payloads: a small placeholder of the declared type.
        return Prepared {
            status,
            content_type: Some(media.media_type.clone()),
            headers,
            body: Bytes::from_static(b"api-sandbox placeholder content\n"),
        };
    }
    // The profile may fix the answer (a reference list, say); it was checked at start-up.
    let fixed = api
        .profile
        .operations
        .get(&op.id)
        .and_then(|o| o.body.clone());
    let body = match fixed {
        Some(body) => body,
        None => {
            let validator = api.success_validator(oi);
            let candidates =
                body_candidates(&api.spec, media, api.seed, &op.id, Direction::Response);
            first_valid(candidates, validator)
        }
    };
    let content_type = if media.media_type.contains('*') {
        "application/json".to_owned()
    } else {
        media.media_type.clone()
    };
    let mut p = Prepared::json(status, &content_type, &body);
    p.headers = headers;
    p
}
