//! Error responses in the API's own format. The shape comes from the error response the
//! operation declares (its example, else a body generated from its schema); the sandbox then
//! writes the status, a title, the detail and the offending fields into whichever members the
//! schema has (`status`, `title`, `detail`/`message`, `errors[].field`, ...). The `type` URIs
//! are learned from the spec's own error examples. The result is checked against the schema;
//! a member the schema rejects is left as generated.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::api::Api;
use super::respond::{Prepared, body_candidates, first_valid};
use crate::schema::Direction;
use crate::spec::catalog::{Media, Operation, is_json};
use crate::spec::{Spec, pointer};

/// One thing wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// `path`, `query`, `header`, `cookie` or `body`.
    pub location: &'static str,
    /// Parameter name, or the body member as a dotted path (`addresses.0.city`).
    pub field: String,
    pub message: String,
    /// The failing rule (`required`, `type`, `enum`, ...).
    pub code: String,
}

/// What the spec teaches about its errors, beyond per-operation schemas.
#[derive(Debug, Default)]
pub struct ErrorStyle {
    /// Status -> `type` URI seen in the spec's error examples.
    types: HashMap<u16, String>,
    /// The common prefix of those URIs up to and including `#`, to coin missing ones.
    type_base: Option<String>,
    /// An error response (operation index, response index) to borrow for statuses an
    /// operation does not declare (404 for unknown paths, 405, 401, ...).
    fallback: Option<(usize, usize)>,
}

impl ErrorStyle {
    pub fn learn(spec: &Spec) -> Self {
        let mut style = Self::default();
        let mut fallback_rank = u16::MAX;
        for (oi, op) in spec.operations.iter().enumerate() {
            for (ri, r) in op.responses.iter().enumerate() {
                let code = match r.status {
                    crate::spec::catalog::Status::Code(c) if c >= 400 => c,
                    _ => continue,
                };
                let Some(media) = r.content.iter().find(|m| is_json(&m.media_type)) else {
                    continue;
                };
                // Prefer a 404 shape for the fallback, then the most general (lowest) 4xx.
                let rank = if code == 404 { 0 } else { code };
                if rank < fallback_rank {
                    fallback_rank = rank;
                    style.fallback = Some((oi, ri));
                }
                for ex in examples_of(spec, media) {
                    if let (Some(t), Some(s)) = (
                        ex.get("type").and_then(Value::as_str),
                        ex.get("status").and_then(Value::as_u64),
                    ) {
                        if let Ok(s) = u16::try_from(s) {
                            // Prefer URIs that name the error (`...#not-found`) over `about:blank`.
                            let slot = style.types.entry(s).or_insert_with(|| t.to_owned());
                            if !slot.contains('#') && t.contains('#') {
                                *slot = t.to_owned();
                            }
                        }
                        if let Some((base, _)) = t.split_once('#') {
                            style.type_base.get_or_insert_with(|| format!("{base}#"));
                        }
                    }
                }
            }
        }
        style
    }

    fn type_for(&self, status: u16) -> Option<String> {
        self.types.get(&status).cloned().or_else(|| {
            self.type_base
                .as_ref()
                .map(|b| format!("{b}{}", slug(status)))
        })
    }
}

fn examples_of<'a>(spec: &'a Spec, media: &Media) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let Some(node) = spec.at(&media.pointer) else {
        return out;
    };
    if let Some(ex) = node.get("example") {
        out.push(ex);
    }
    if let Some(Value::Object(map)) = node.get("examples") {
        for ex in map.values() {
            if let Ok((ex, _)) = pointer::resolve(&spec.doc, ex)
                && let Some(v) = ex.get("value")
            {
                out.push(v);
            }
        }
    }
    out
}

/// The name of an error of `status`, as APIs write it in `type` URIs and codes: the usual
/// names for the common statuses, else the reason phrase in kebab case (`504` ->
/// `gateway-timeout`), so a status no example shows still gets a telling name.
fn slug(status: u16) -> String {
    let usual = match status {
        400 => "invalid-request",
        401 => "authentication-error",
        404 => "not-found",
        422 => "validation-error",
        429 => "rate-limit-exceeded",
        500 => "internal-error",
        _ => "",
    };
    if !usual.is_empty() {
        return usual.to_owned();
    }
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let words: Vec<String> = reason
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        "error".to_owned()
    } else {
        words.join("-")
    }
}

/// The parts of an error that every format can carry.
pub struct Problem<'a> {
    pub status: u16,
    pub detail: String,
    pub errors: &'a [FieldError],
    pub request_id: &'a str,
    pub instance: &'a str,
}

/// Builds the error response for `problem`, in the format `op` declares for that status
/// (or the API's usual format when it declares none).
pub fn render(api: &Api, op: Option<usize>, problem: &Problem) -> Prepared {
    let declared = op.and_then(|oi| {
        let operation = &api.spec.operations[oi];
        let ri = operation.responses.iter().position(|r| {
            r.status.matches(problem.status) && r.status != crate::spec::catalog::Status::Default
        })?;
        Some((oi, ri))
    });
    let source = declared.or(api.errors.fallback);
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    if let Some((oi, ri)) = source {
        let op = &api.spec.operations[oi];
        let response = &op.responses[ri];
        if let Some((mi, media)) = response
            .content
            .iter()
            .enumerate()
            .find(|(_, m)| is_json(&m.media_type))
        {
            let validator = api.checks[oi].responses.get(&(ri, mi)).cloned();
            let template = template(api, op, media, validator.as_deref());
            let body = fill_checked(&template, problem, status, api, validator.as_deref());
            return Prepared::json(problem.status, &media.media_type, &body);
        }
    }
    let body = default_problem(problem, status, api);
    Prepared::json(problem.status, "application/problem+json", &body)
}

fn template(
    api: &Api,
    op: &Operation,
    media: &Media,
    validator: Option<&jsonschema::Validator>,
) -> Arc<Value> {
    let mut cache = match api.error_templates.lock() {
        Ok(c) => c,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(t) = cache.get(&media.pointer) {
        return t.clone();
    }
    let key = format!("error {} {}", op.id, media.pointer);
    let candidates = body_candidates(&api.spec, media, api.seed, &key, Direction::Response);
    let generated = candidates.last().cloned().unwrap_or(Value::Null);
    let best = first_valid(candidates, validator);
    // The example gives realistic values; the generated body adds the optional members
    // (such as `errors[]`) an example may leave out, so field errors have a place to go.
    let merged = match (&generated, &best) {
        (Value::Object(g), Value::Object(b)) => {
            let mut m = g.clone();
            for (k, v) in b {
                m.insert(k.clone(), v.clone());
            }
            Value::Object(m)
        }
        _ => best.clone(),
    };
    let t = Arc::new(if validator.is_none_or(|v| v.is_valid(&merged)) {
        merged
    } else {
        best
    });
    cache.insert(media.pointer.clone(), t.clone());
    t
}

/// Writes the problem into the template one member at a time, keeping each change only if
/// the body still satisfies the schema (a `format: uri` member, an enum of codes, ...).
fn fill_checked(
    template: &Value,
    p: &Problem,
    status: StatusCode,
    api: &Api,
    v: Option<&jsonschema::Validator>,
) -> Value {
    let Value::Object(t) = template else {
        return template.clone();
    };
    let mut out = t.clone();
    let valid = |m: &Map<String, Value>| v.is_none_or(|v| v.is_valid(&Value::Object(m.clone())));
    for (k, new) in substitutions(t, p, status, api) {
        let Some(old) = out.get(&k).cloned() else {
            continue;
        };
        // An empty list of field errors is left out where the schema allows it.
        if new.as_array().is_some_and(Vec::is_empty) {
            out.remove(&k);
            if valid(&out) {
                continue;
            }
        }
        out.insert(k.clone(), new);
        if !valid(&out) {
            out.insert(k, old);
        }
    }
    Value::Object(out)
}

fn fill(template: &Value, p: &Problem, status: StatusCode, api: &Api) -> Value {
    let Value::Object(t) = template else {
        return template.clone();
    };
    let mut out = t.clone();
    for (k, v) in substitutions(t, p, status, api) {
        out.insert(k, v);
    }
    Value::Object(out)
}

/// The members of an error body the problem should overwrite, by their usual names.
fn substitutions(
    t: &Map<String, Value>,
    p: &Problem,
    status: StatusCode,
    api: &Api,
) -> Vec<(String, Value)> {
    let title = status.canonical_reason().unwrap_or("Error");
    let mut subs = Vec::new();
    for (k, v) in t {
        let key = k.to_ascii_lowercase();
        let new = match (key.as_str(), v) {
            ("status" | "status_code" | "statuscode" | "code", Value::Number(_)) => json!(p.status),
            ("code", Value::String(_)) => json!(slug(p.status).replace('-', "_")),
            ("title" | "error", Value::String(_)) => json!(title),
            ("detail" | "message" | "error_description" | "description", Value::String(_)) => {
                json!(p.detail)
            }
            ("type", Value::String(_)) => match api.errors.type_for(p.status) {
                Some(t) => Value::String(t),
                None => continue,
            },
            ("request_id" | "requestid" | "trace_id" | "traceid", Value::String(_)) => {
                json!(p.request_id)
            }
            ("instance" | "path", Value::String(_)) => json!(p.instance),
            ("error", Value::Object(_)) => fill(v, p, status, api),
            (
                "errors" | "details" | "violations" | "invalid_params" | "fields",
                Value::Array(items),
            ) => {
                let item = items
                    .first()
                    .cloned()
                    .unwrap_or_else(|| json!({"field": "", "message": ""}));
                Value::Array(p.errors.iter().map(|e| field_item(&item, e)).collect())
            }
            _ => continue,
        };
        subs.push((k.clone(), new));
    }
    subs
}

fn field_item(template: &Value, e: &FieldError) -> Value {
    let Value::Object(t) = template else {
        return json!({"field": e.field, "message": e.message});
    };
    let mut out = Map::new();
    for (k, v) in t {
        let new = match (k.to_ascii_lowercase().as_str(), v) {
            (
                "field" | "name" | "path" | "param" | "parameter" | "pointer" | "property" | "loc",
                Value::String(_),
            ) => json!(e.field),
            ("message" | "detail" | "reason" | "description" | "msg", Value::String(_)) => {
                json!(e.message)
            }
            ("code" | "type" | "rule", Value::String(_)) => json!(e.code),
            ("in" | "location", Value::String(_)) => json!(e.location),
            _ => v.clone(),
        };
        out.insert(k.clone(), new);
    }
    Value::Object(out)
}

/// RFC 9457 problem details, for specs that declare no error body at all.
fn default_problem(p: &Problem, status: StatusCode, api: &Api) -> Value {
    let mut body = json!({
        "type": api.errors.type_for(p.status).unwrap_or_else(|| "about:blank".into()),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": p.status,
        "detail": p.detail,
        "instance": p.instance,
        "request_id": p.request_id,
    });
    if !p.errors.is_empty() {
        body["errors"] = json!(
            p.errors
                .iter()
                .map(|e| json!({"field": e.field, "message": e.message, "code": e.code}))
                .collect::<Vec<_>>()
        );
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_gets_a_telling_type_fragment() {
        for (status, name) in [
            (400, "invalid-request"),
            (401, "authentication-error"),
            (403, "forbidden"),
            (404, "not-found"),
            (405, "method-not-allowed"),
            (409, "conflict"),
            (413, "payload-too-large"),
            (415, "unsupported-media-type"),
            (422, "validation-error"),
            (429, "rate-limit-exceeded"),
            (500, "internal-error"),
            (502, "bad-gateway"),
            (503, "service-unavailable"),
            (504, "gateway-timeout"),
            (418, "im-a-teapot"),
            (599, "error"),
        ] {
            assert_eq!(slug(status), name, "status {status}");
        }
    }
}
