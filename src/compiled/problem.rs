//! Error responses in the API's own format. The shape comes from the error response the
//! operation declares (its example, else a body generated from its schema); the sandbox then
//! writes the status, a title, the detail and the offending fields into whichever members the
//! schema has (`status`, `title`, `detail`/`message`, `errors[].field`, ...). The `type` URIs
//! are learned from the spec's own error examples. The result is checked against the schema;
//! a member the schema rejects is left as generated.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::api::Api;
use super::error_style::slug;
use super::prepared::Prepared;
use super::respond::{body_candidates, first_valid};
use crate::schema::Direction;
use crate::spec::catalog::{Media, Operation, Status, is_json};

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

/// The parts of an error that every format can carry.
pub struct Problem<'a> {
    pub status: u16,
    /// The machine code, when the answer names one (`insufficient_wallet_balance`); else the
    /// API's code for the status.
    pub code: Option<&'a str>,
    pub detail: String,
    pub errors: &'a [FieldError],
    pub request_id: &'a str,
    pub instance: &'a str,
}

/// Builds the error response for `problem`, in the format `op` declares for that status
/// (or the API's usual format when it declares none).
pub fn render(api: &Api, op: Option<usize>, problem: &Problem) -> Prepared {
    let declared = op.and_then(|oi| Some((oi, error_response(api, oi, problem.status)?)));
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

/// The response of operation `oi` that describes an error of `status`: the status itself or
/// its range, else the operation's `default` when that is an error (the operation has a
/// success status of its own) with a JSON body.
fn error_response(api: &Api, oi: usize, status: u16) -> Option<usize> {
    let op = &api.spec.operations[oi];
    let declared = op
        .responses
        .iter()
        .position(|r| r.status != Status::Default && r.status.matches(status));
    declared.or_else(|| {
        let has_success = op
            .responses
            .iter()
            .any(|r| matches!(r.status, Status::Code(200..=299) | Status::Range(2)));
        op.responses
            .iter()
            .position(|r| {
                r.status == Status::Default && r.content.iter().any(|m| is_json(&m.media_type))
            })
            .filter(|_| has_success)
    })
}

fn template(
    api: &Api,
    op: &Operation,
    media: &Media,
    validator: Option<&jsonschema::Validator>,
) -> Arc<Value> {
    let mut cache = api.error_templates.lock();
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
    let title = api.errors.title_for(p.status);
    // Where nothing else carries the reason, the list of errors does (`{errors: [{message}]}`).
    let carried = carries_detail(t);
    let mut subs = Vec::new();
    for (k, v) in t {
        let key = k.to_ascii_lowercase();
        let new = match (key.as_str(), v) {
            ("status" | "status_code" | "statuscode" | "code", Value::Number(_)) => json!(p.status),
            ("code", Value::String(_)) => match p.code {
                Some(c) => json!(c),
                None => json!(api.errors.code_for(p.status)),
            },
            ("title" | "error", Value::String(_)) => json!(title),
            (name, Value::String(_)) if is_detail(name) => json!(p.detail),
            ("type", Value::String(_)) => match api.errors.type_for(p.status) {
                Some(t) => Value::String(t),
                None => continue,
            },
            ("request_id" | "requestid" | "trace_id" | "traceid", Value::String(_)) => {
                json!(p.request_id)
            }
            ("instance" | "path", Value::String(_)) => json!(p.instance),
            ("error", Value::Object(_)) => fill(v, p, status, api),
            // `{error: {code, message, details: {errors: [...]}}}`: field errors go in the
            // list inside; other details of an example are not this error's.
            ("details", Value::Object(inner)) => {
                if inner.contains_key("errors") && !p.errors.is_empty() {
                    fill(v, p, status, api)
                } else {
                    json!({})
                }
            }
            (
                "errors" | "details" | "detail" | "violations" | "invalid_params" | "fields",
                Value::Array(items),
            ) => {
                let item = items
                    .first()
                    .cloned()
                    .unwrap_or_else(|| json!({"field": "", "message": ""}));
                if p.errors.is_empty() && !carried {
                    let reason = FieldError {
                        location: "",
                        field: String::new(),
                        message: p.detail.clone(),
                        code: slug(p.status).replace('-', "_"),
                    };
                    vec![field_item(&item, &reason, p.status)].into()
                } else {
                    let items = p.errors.iter().map(|e| field_item(&item, e, p.status));
                    Value::Array(items.collect())
                }
            }
            _ => continue,
        };
        subs.push((k.clone(), new));
    }
    subs
}

/// Whether a member name is meant for the reason in words (`message`, `detail`,
/// `error_description`, `errorMessage`, ...).
fn is_detail(lower: &str) -> bool {
    matches!(
        lower,
        "detail" | "message" | "error_description" | "description" | "msg" | "reason"
    ) || lower.contains("message")
}

/// Whether an error body has a member for the reason, at the top or in its `error` object.
fn carries_detail(t: &Map<String, Value>) -> bool {
    t.iter().any(|(k, v)| {
        let key = k.to_ascii_lowercase();
        match v {
            Value::String(_) => is_detail(&key),
            Value::Object(inner) if key == "error" => carries_detail(inner),
            _ => false,
        }
    })
}

/// One item of an error list: the template's members with the field error's parts, or the
/// message alone where the items are strings.
fn field_item(template: &Value, e: &FieldError, status: u16) -> Value {
    let t = match template {
        Value::Object(t) => t,
        Value::String(_) => return json!(e.message),
        _ => return json!({"field": e.field, "message": e.message}),
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
            // `["body", "items", 3, "name"]`, as Zod and FastAPI write it.
            ("path" | "loc" | "location", Value::Array(_)) => path_array(e),
            ("in" | "location", Value::String(_)) => json!(e.location),
            ("status", Value::String(_)) => json!(status.to_string()),
            ("status", Value::Number(_)) => json!(status),
            // The value that was refused is not kept; an example's would be a made-up one.
            ("input" | "value" | "rejected_value", _) => Value::Null,
            _ => v.clone(),
        };
        out.insert(k.clone(), new);
    }
    Value::Object(out)
}

/// Where a field error is, as an array of its location and the member path's segments
/// (array positions as integers).
fn path_array(e: &FieldError) -> Value {
    let mut out = vec![json!(e.location)];
    // A whole-body error names the body itself once.
    let field = if e.field == e.location { "" } else { &e.field };
    out.extend(
        field
            .split('.')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().map_or_else(|_| json!(s), |n| json!(n))),
    );
    Value::Array(out)
}

/// RFC 9457 problem details, for specs that declare no error body at all.
fn default_problem(p: &Problem, status: StatusCode, api: &Api) -> Value {
    let mut body = json!({
        "type": api.errors.type_for(p.status).unwrap_or_else(|| "about:blank".into()),
        "title": api.errors.title_for(status.as_u16()),
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
