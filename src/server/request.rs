//! Request validation: path, query, header and cookie parameters are decoded in the spec's
//! style (form, simple, delimited, deepObject), coerced to their schema's types and checked;
//! the body is parsed by content type and checked against its schema. Every problem is
//! collected, not just the first. Lenient where real clients are sloppy: an empty body with a
//! JSON content type on an operation without a body, a body on DELETE, header-name case.

use http::HeaderMap;
use jsonschema::Validator;
use serde_json::{Map, Value};

use super::form::{self, coerce_scalar, type_of};
use crate::compiled::Api;
use crate::compiled::problem::FieldError;
use crate::schema::violations;
use crate::spec::catalog::{Location, Param, Style, is_json};
use crate::spec::pointer;

/// Why a request was refused, with the status the spec suggests for it.
#[derive(Debug)]
pub enum Rejection {
    Invalid(Vec<FieldError>),
    UnsupportedMediaType(String),
}

/// The decoded parts of a request, as the checks need them.
pub struct Incoming<'a> {
    pub path_params: &'a [(String, String)],
    pub query: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

pub fn cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| {
            c.trim()
                .split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Checks the request against operation `oi`; returns the parsed JSON body, if any.
pub fn check(api: &Api, oi: usize, req: &Incoming) -> Result<Option<Value>, Rejection> {
    let op = &api.spec.operations[oi];
    let checks = &api.checks[oi];
    let mut errors = Vec::new();
    let cookie_list = cookies(req.headers);
    for (param, validator) in op.params.iter().zip(&checks.params) {
        let raw: Vec<String> = match param.location {
            Location::Path => req
                .path_params
                .iter()
                .filter(|(n, _)| *n == param.name)
                .map(|(_, v)| v.clone())
                .collect(),
            Location::Query => query_values(param, &req.query),
            Location::Header => req
                .headers
                .get_all(param.name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect(),
            Location::Cookie => cookie_list
                .iter()
                .filter(|(n, _)| *n == param.name)
                .map(|(_, v)| v.clone())
                .collect(),
        };
        if raw.is_empty() {
            // A DELETE is idempotent by itself: SDKs send no idempotency key on it even where
            // a spec declares one required (Dakota's), so its absence is not an error.
            let idempotency_on_delete = op.method == http::Method::DELETE
                && param.location == Location::Header
                && api
                    .idempotency_header
                    .as_deref()
                    .is_some_and(|h| param.name.eq_ignore_ascii_case(h));
            if param.required && !idempotency_on_delete {
                errors.push(FieldError {
                    location: param.location.as_str(),
                    field: param.name.clone(),
                    message: format!(
                        "{} parameter '{}' is required",
                        param.location.as_str(),
                        param.name
                    ),
                    code: "required".into(),
                });
            }
            continue;
        }
        let schema = param
            .schema
            .as_deref()
            .and_then(|p| api.spec.at(p))
            .map(|s| resolved(&api.spec.doc, s));
        let value = coerce_param(param, &raw, schema, &api.spec.doc);
        if let Some(v) = validator {
            for violation in violations(v, &value) {
                errors.push(FieldError {
                    location: param.location.as_str(),
                    field: param.name.clone(),
                    message: format!(
                        "{} parameter '{}': {}",
                        param.location.as_str(),
                        param.name,
                        violation.message
                    ),
                    code: violation.keyword,
                });
            }
        }
    }
    let body = check_body(api, oi, req, &mut errors)?;
    if errors.is_empty() {
        Ok(body)
    } else {
        Err(Rejection::Invalid(errors))
    }
}

fn check_body(
    api: &Api,
    oi: usize,
    req: &Incoming,
    errors: &mut Vec<FieldError>,
) -> Result<Option<Value>, Rejection> {
    let op = &api.spec.operations[oi];
    let Some(spec_body) = &op.body else {
        // Undeclared bodies (DELETE with JSON, empty JSON on a POST action) are ignored.
        return Ok(None);
    };
    let blank = req.body.iter().all(u8::is_ascii_whitespace);
    if blank {
        if spec_body.required {
            errors.push(FieldError {
                location: "body",
                field: "body".into(),
                message: "a request body is required".into(),
                code: "required".into(),
            });
        }
        return Ok(None);
    }
    let content_type = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let declared = &spec_body.content;
    let matches = |mt: &str| {
        declared.iter().position(|m| {
            m.media_type.split(';').next().unwrap_or("").trim() == mt
                || m.media_type == "*/*"
                || wildcard_match(&m.media_type, mt)
        })
    };
    let index = match &content_type {
        Some(ct) => matches(ct).or_else(|| {
            // A JSON body labelled loosely (text/plain, missing charset games) is still JSON.
            (is_json(ct) || ct == "text/plain")
                .then(|| declared.iter().position(|m| is_json(&m.media_type)))
                .flatten()
        }),
        None => declared.iter().position(|m| is_json(&m.media_type)),
    };
    let Some(index) = index else {
        let accepted: Vec<&str> = declared.iter().map(|m| m.media_type.as_str()).collect();
        return Err(Rejection::UnsupportedMediaType(format!(
            "content type '{}' is not accepted here; use one of: {}",
            content_type.unwrap_or_default(),
            accepted.join(", ")
        )));
    };
    let media = &declared[index];
    let validator = api.checks[oi].body.get(index).and_then(Option::as_ref);
    let value = if is_json(&media.media_type) {
        match serde_json::from_slice::<Value>(req.body) {
            Ok(v) => v,
            Err(e) => {
                errors.push(FieldError {
                    location: "body",
                    field: "body".into(),
                    message: format!(
                        "the body is not valid JSON (line {}, column {}): {e}",
                        e.line(),
                        e.column()
                    ),
                    code: "json".into(),
                });
                return Ok(None);
            }
        }
    } else if let Some(form) = form_kind(&media.media_type) {
        let schema = media.schema.as_deref().and_then(|p| api.spec.at(p));
        let doc = &api.spec.doc;
        match form {
            Form::Urlencoded => form::urlencoded(req.body, schema, doc),
            Form::Multipart => {
                let raw_type = req
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                match form::multipart(req.body, raw_type, schema, doc) {
                    Ok(v) => v,
                    Err(message) => {
                        errors.push(FieldError {
                            location: "body",
                            field: "body".into(),
                            message,
                            code: "multipart".into(),
                        });
                        return Ok(None);
                    }
                }
            }
        }
    } else {
        // Binary and text payloads are accepted as they are.
        return Ok(None);
    };
    if let Some(v) = validator {
        report(v, &value, errors);
    }
    Ok(Some(value))
}

/// The form encodings read into members.
enum Form {
    Urlencoded,
    Multipart,
}

fn form_kind(media_type: &str) -> Option<Form> {
    let essence = media_type.split(';').next().unwrap_or("").trim();
    match essence.to_ascii_lowercase().as_str() {
        "application/x-www-form-urlencoded" => Some(Form::Urlencoded),
        "multipart/form-data" => Some(Form::Multipart),
        _ => None,
    }
}

fn report(v: &Validator, value: &Value, errors: &mut Vec<FieldError>) {
    for violation in violations(v, value) {
        let field = dotted(&violation.pointer);
        let message = if field.is_empty() {
            violation.message
        } else {
            format!("{field}: {}", violation.message)
        };
        errors.push(FieldError {
            location: "body",
            field: if field.is_empty() {
                "body".into()
            } else {
                field
            },
            message,
            code: violation.keyword,
        });
    }
}

/// `/addresses/0/city` -> `addresses.0.city`.
fn dotted(ptr: &str) -> String {
    ptr.split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

fn wildcard_match(pattern: &str, actual: &str) -> bool {
    match pattern.split_once('/') {
        Some((t, "*")) => actual.split_once('/').is_some_and(|(a, _)| a == t),
        _ => false,
    }
}

fn resolved<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    pointer::resolve(doc, schema)
        .map(|(s, _)| s)
        .unwrap_or(schema)
}

fn query_values(param: &Param, query: &[(String, String)]) -> Vec<String> {
    if param.style == Style::DeepObject {
        let prefix = format!("{}[", param.name);
        return query
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && k.ends_with(']'))
            .map(|(k, v)| format!("{}={v}", &k[prefix.len()..k.len() - 1]))
            .collect();
    }
    query
        .iter()
        .filter(|(k, _)| *k == param.name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// Turns raw parameter strings into the JSON value their schema describes.
fn coerce_param(param: &Param, raw: &[String], schema: Option<&Value>, doc: &Value) -> Value {
    if param.json_content {
        return serde_json::from_str(&raw[0]).unwrap_or_else(|_| Value::String(raw[0].clone()));
    }
    let Some(schema) = schema else {
        return Value::String(raw[0].clone());
    };
    match type_of(schema) {
        Some("array") => {
            let items = schema.get("items").map(|i| resolved(doc, i));
            let parts: Vec<String> =
                if raw.len() > 1 || (param.explode && param.style == Style::Form) {
                    raw.to_vec()
                } else {
                    let sep = match param.style {
                        Style::SpaceDelimited => ' ',
                        Style::PipeDelimited => '|',
                        _ => ',',
                    };
                    raw[0].split(sep).map(str::to_owned).collect()
                };
            Value::Array(parts.iter().map(|p| coerce_scalar(p, items)).collect())
        }
        Some("object") if param.style == Style::DeepObject => {
            let mut map = Map::new();
            for pair in raw {
                if let Some((k, v)) = pair.split_once('=') {
                    let prop = schema
                        .get("properties")
                        .and_then(|p| p.get(k))
                        .map(|s| resolved(doc, s));
                    map.insert(k.to_owned(), coerce_scalar(v, prop));
                }
            }
            Value::Object(map)
        }
        _ => coerce_scalar(&raw[0], Some(schema)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(style: Style, explode: bool) -> Param {
        Param {
            name: "ids".into(),
            location: Location::Query,
            required: false,
            style,
            explode,
            schema: None,
            json_content: false,
        }
    }

    #[test]
    fn arrays_follow_style() {
        let schema = json!({"type": "array", "items": {"type": "integer"}});
        let doc = json!({});
        let one = vec!["1,2".to_owned()];
        assert_eq!(
            coerce_param(&param(Style::Form, false), &one, Some(&schema), &doc),
            json!([1, 2])
        );
        let many = vec!["1".to_owned(), "x".to_owned()];
        assert_eq!(
            coerce_param(&param(Style::Form, true), &many, Some(&schema), &doc),
            json!([1, "x"])
        );
        let piped = vec!["3|4".to_owned()];
        assert_eq!(
            coerce_param(
                &param(Style::PipeDelimited, false),
                &piped,
                Some(&schema),
                &doc
            ),
            json!([3, 4])
        );
        assert_eq!(dotted("/a/0/b~1c"), "a.0.b/c");
    }
}
