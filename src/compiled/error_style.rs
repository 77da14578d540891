//! What a spec teaches about its errors beyond per-operation schemas: the `type` URIs its
//! error examples use (to coin the missing ones from the same base), and which declared error
//! response to borrow for statuses an operation does not declare (unknown paths, 405, 401).

use std::collections::HashMap;

use http::StatusCode;
use serde_json::Value;

use crate::spec::catalog::{Media, Status, is_json};
use crate::spec::{Spec, pointer};

/// What the spec teaches about its errors, beyond per-operation schemas.
#[derive(Debug, Default)]
pub struct ErrorStyle {
    /// Status -> `type` URI seen in the spec's error examples.
    types: HashMap<u16, String>,
    /// The common prefix of those URIs up to and including `#`, to coin missing ones.
    type_base: Option<String>,
    /// Status -> the `title` (or `error`) text the spec's examples give it
    /// (`Validation Error` for 400), where it is not the status's reason phrase.
    titles: HashMap<u16, String>,
    /// Status -> the machine code the spec's examples give it (`code`, or `error.code`:
    /// `invalid_api_key` for 401), where they give one.
    codes: HashMap<u16, String>,
    /// The code the spec's examples give a reused idempotency key
    /// (`idempotency_key_conflict`), where one names it; other 409s keep their own.
    idempotency_code: Option<String>,
    /// An error response (operation index, response index) to borrow for statuses an
    /// operation does not declare (404 for unknown paths, 405, 401, ...).
    pub fallback: Option<(usize, usize)>,
}

impl ErrorStyle {
    pub fn learn(spec: &Spec) -> Self {
        let mut style = Self::default();
        let mut fallback_rank = u16::MAX;
        for (oi, op) in spec.operations.iter().enumerate() {
            let has_success = op
                .responses
                .iter()
                .any(|r| matches!(r.status, Status::Code(200..=299) | Status::Range(2)));
            for (ri, r) in op.responses.iter().enumerate() {
                // Prefer a 404 shape for the fallback, then the most general (lowest) 4xx,
                // then a `4XX` range, then an operation's `default` beside its success.
                let rank = match r.status {
                    Status::Code(404) => 0,
                    Status::Code(c) if c >= 400 => c,
                    Status::Range(r) if r >= 4 => 900 + r,
                    Status::Default if has_success => 1000,
                    _ => continue,
                };
                let Some(media) = r.content.iter().find(|m| is_json(&m.media_type)) else {
                    continue;
                };
                if rank < fallback_rank {
                    fallback_rank = rank;
                    style.fallback = Some((oi, ri));
                }
                for ex in examples_of(spec, media) {
                    if let Some(t) = ["title", "error"]
                        .iter()
                        .find_map(|k| ex.get(*k).and_then(Value::as_str))
                        && let Status::Code(code) = r.status
                    {
                        style.titles.entry(code).or_insert_with(|| t.to_owned());
                    }
                    let named = ex
                        .get("code")
                        .or_else(|| ex.get("error").and_then(|e| e.get("code")))
                        .and_then(Value::as_str);
                    if let (Some(c), Status::Code(code)) = (named, r.status) {
                        style.codes.entry(code).or_insert_with(|| c.to_owned());
                        if c.to_ascii_lowercase().contains("idempotency") {
                            style.idempotency_code.get_or_insert_with(|| c.to_owned());
                        }
                    }
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

    /// The title errors of `status` carry: the spec's own, else the reason phrase.
    pub fn title_for(&self, status: u16) -> String {
        self.titles.get(&status).cloned().unwrap_or_else(|| {
            StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error")
                .to_owned()
        })
    }

    /// The machine code for `status`: the spec's own, else the status's usual name in
    /// snake case (`not_found`).
    pub fn code_for(&self, status: u16) -> String {
        self.codes
            .get(&status)
            .cloned()
            .unwrap_or_else(|| slug(status).replace('-', "_"))
    }

    /// The machine code for a reused idempotency key, where the spec names one.
    pub fn idempotency_code(&self) -> Option<&str> {
        self.idempotency_code.as_deref()
    }

    pub fn type_for(&self, status: u16) -> Option<String> {
        self.types.get(&status).cloned().or_else(|| {
            self.type_base
                .as_ref()
                .map(|b| format!("{b}{}", slug(status)))
        })
    }
}

pub fn examples_of<'a>(spec: &'a Spec, media: &Media) -> Vec<&'a Value> {
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
pub fn slug(status: u16) -> String {
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
