//! The checks run on every replayed step, against the spec alone: the status is declared for
//! the operation, the content type is a declared one, the body validates against the schema
//! declared for that status and content type, required response headers are present; and,
//! against the recording: the status is the recorded one and (with `--compare`) the
//! normalised body equals the recorded one.

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::Validator;
use serde::Serialize;
use serde_json::Value;

use crate::compiled::routing::{Match, Router};
use crate::schema::{CompileError, Direction, SchemaSet};
use crate::spec::catalog::{Media, Status, is_json};
use crate::spec::{Operation, Spec};

use super::client::Answer;
use super::fixture::Step;
use super::normalise;

/// Which check a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The status is not one the spec declares for the operation.
    Status,
    /// The status differs from the recorded one.
    RecordedStatus,
    ContentType,
    Schema,
    Header,
    /// `--compare`: the normalised body differs from the recorded one.
    Compare,
    Snapshot,
    /// A capture found nothing, or a step used a value that was never captured.
    Capture,
    /// The request could not be completed (timeout, reset, ...).
    Transport,
    /// The path and method match no operation of the spec.
    Operation,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::RecordedStatus => "recorded-status",
            Self::ContentType => "content-type",
            Self::Schema => "schema",
            Self::Header => "header",
            Self::Compare => "compare",
            Self::Snapshot => "snapshot",
            Self::Capture => "capture",
            Self::Transport => "transport",
            Self::Operation => "operation",
        }
    }
}

/// One reason a step breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// JSON pointer into the response body (`""`: the whole response or not body-related).
    pub pointer: String,
    pub message: String,
}

impl Finding {
    pub fn new(kind: Kind, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// A captured value and the name it was captured under.
pub type Captured = (String, String);

/// The spec, its routes, and validators compiled on first use (a fixture set touches only a
/// few of the spec's schemas, so compiling them all up front would waste start-up time).
pub struct Checker {
    spec: Spec,
    router: Router,
    schemas: SchemaSet,
    validators: HashMap<String, Arc<Validator>>,
}

impl Checker {
    pub fn new(spec: Spec) -> Result<Self, CompileError> {
        let schemas = SchemaSet::new(&spec.doc)?;
        let mut router = Router::default();
        for (i, op) in spec.operations.iter().enumerate() {
            router.add(&op.path, op.method.clone(), i);
        }
        Ok(Self {
            spec,
            router,
            schemas,
            validators: HashMap::new(),
        })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The operation `method path` is served by, if any.
    pub fn operation(&self, method: &http::Method, path: &str) -> Option<usize> {
        match self.router.find(method, path) {
            Match::Found { operation, .. } => Some(operation),
            _ => None,
        }
    }

    pub fn op(&self, index: usize) -> &Operation {
        &self.spec.operations[index]
    }

    /// Every finding for one answer. `body` is the answer's body parsed as JSON, if it is;
    /// `compare` holds the captured values (value, name) of the recording and of this run
    /// when the body is to be compared with the recorded one.
    pub fn check(
        &mut self,
        op_index: usize,
        step: &Step,
        answer: &Answer,
        body: Option<&Value>,
        compare: Option<(&[Captured], &[Captured])>,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let code = answer.status;
        if code != step.response.status {
            out.push(Finding::new(
                Kind::RecordedStatus,
                "",
                format!("status {code}, recorded {}", step.response.status),
            ));
        }
        let op = &self.spec.operations[op_index];
        let Some(response) = declared_response(op, code, &mut out) else {
            return out;
        };
        missing_headers(response, answer, &mut out);
        let media = declared_media(response, answer, &mut out);
        if let Some(media) = media
            && let Some(schema) = &media.schema
            && is_json(&media.media_type)
        {
            match body {
                None => out.push(Finding::new(
                    Kind::Schema,
                    "",
                    format!("the body is not valid JSON ({})", media.media_type),
                )),
                Some(value) => match self.validator(schema) {
                    Ok(v) => {
                        for violation in crate::schema::violations(&v, value) {
                            out.push(Finding::new(
                                Kind::Schema,
                                violation.pointer,
                                format!("{} ({})", violation.message, violation.keyword),
                            ));
                        }
                    }
                    Err(e) => out.push(Finding::new(Kind::Schema, "", e.to_string())),
                },
            }
        }
        if let Some((recorded_vars, actual_vars)) = compare {
            compared(step, answer, body, recorded_vars, actual_vars, &mut out);
        }
        out
    }

    fn validator(&mut self, pointer: &str) -> Result<Arc<Validator>, CompileError> {
        if let Some(v) = self.validators.get(pointer) {
            return Ok(v.clone());
        }
        let v = Arc::new(self.schemas.compile(Direction::Response, pointer)?);
        self.validators.insert(pointer.to_owned(), v.clone());
        Ok(v)
    }
}

/// The response the operation declares for `code`; `None` (with a finding) when it
/// declares none, or only a `default` for a success status.
fn declared_response<'o>(
    op: &'o Operation,
    code: u16,
    out: &mut Vec<Finding>,
) -> Option<&'o crate::spec::catalog::Response> {
    match op.response_for(code) {
        Some(r) if r.status != Status::Default || code >= 400 => Some(r),
        Some(_) => {
            out.push(Finding::new(
                Kind::Status,
                "",
                format!(
                    "status {code} is not declared for {} (only `default` covers it, which is for errors)",
                    op.id
                ),
            ));
            None
        }
        None => {
            out.push(Finding::new(
                Kind::Status,
                "",
                format!(
                    "status {code} is not declared for {} (declared: {})",
                    op.id,
                    declared(op)
                ),
            ));
            None
        }
    }
}

/// Required response headers the answer lacks.
fn missing_headers(
    response: &crate::spec::catalog::Response,
    answer: &Answer,
    out: &mut Vec<Finding>,
) {
    for header in response.headers.iter().filter(|h| h.required) {
        if header.name.eq_ignore_ascii_case("content-type") {
            continue;
        }
        if !answer.headers.contains_key(header.name.as_str()) {
            out.push(Finding::new(
                Kind::Header,
                "",
                format!("required response header '{}' is missing", header.name),
            ));
        }
    }
}

/// The declared media type the answer's body is in; `None` (with a finding where that
/// breaks the contract) when there is no body to check.
fn declared_media(
    response: &crate::spec::catalog::Response,
    answer: &Answer,
    out: &mut Vec<Finding>,
) -> Option<Media> {
    let code = answer.status;
    if response.content.is_empty() {
        return None;
    }
    if answer.body.is_empty() {
        // An empty body under a declared schema is a broken contract; under content
        // without schema (rare) it is tolerated.
        if response.content.iter().any(|m| m.schema.is_some()) {
            out.push(Finding::new(
                Kind::Schema,
                "",
                format!(
                    "the body is empty; the spec declares {} for status {code}",
                    media_list(&response.content)
                ),
            ));
        }
        return None;
    }
    let content_type = answer
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let Some(ct) = content_type else {
        out.push(Finding::new(
            Kind::ContentType,
            "",
            format!(
                "no Content-Type header; the spec declares {}",
                media_list(&response.content)
            ),
        ));
        return None;
    };
    let found = response
        .content
        .iter()
        .find(|m| media_matches(&m.media_type, ct));
    if found.is_none() {
        out.push(Finding::new(
            Kind::ContentType,
            "",
            format!(
                "Content-Type '{ct}' is not declared for status {code}; the spec declares {}",
                media_list(&response.content)
            ),
        ));
    }
    found.cloned()
}

/// Differences between the normalised recorded body and this answer's.
fn compared(
    step: &Step,
    answer: &Answer,
    body: Option<&Value>,
    recorded_vars: &[Captured],
    actual_vars: &[Captured],
    out: &mut Vec<Finding>,
) {
    let Some(recorded) = &step.response.body else {
        return;
    };
    let actual = body
        .cloned()
        .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&answer.body).into()));
    let expected = normalise::normalise(recorded, &step.ignore, recorded_vars);
    let actual = normalise::normalise(&actual, &step.ignore, actual_vars);
    for d in normalise::diff(&expected, &actual, 20) {
        out.push(Finding::new(Kind::Compare, d.pointer, d.message));
    }
}

fn declared(op: &Operation) -> String {
    let list: Vec<String> = op
        .responses
        .iter()
        .map(|r| match r.status {
            Status::Code(c) => c.to_string(),
            Status::Range(d) => format!("{d}XX"),
            Status::Default => "default".into(),
        })
        .collect();
    list.join(", ")
}

fn media_list(content: &[Media]) -> String {
    let list: Vec<&str> = content.iter().map(|m| m.media_type.as_str()).collect();
    list.join(", ")
}

fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether an answer's `Content-Type` fits a declared media type (`type/*` and `*/*` allowed).
pub fn media_matches(declared: &str, actual: &str) -> bool {
    let (d, a) = (essence(declared), essence(actual));
    d == a
        || d == "*/*"
        || d.strip_suffix("/*")
            .is_some_and(|prefix| a.split('/').next() == Some(prefix))
}

#[cfg(test)]
mod tests {
    use super::media_matches;

    #[test]
    fn media_types_match_by_essence_and_wildcards() {
        assert!(media_matches(
            "application/json",
            "application/json; charset=utf-8"
        ));
        assert!(media_matches("application/*", "application/problem+json"));
        assert!(media_matches("*/*", "text/plain"));
        assert!(!media_matches("application/json", "text/plain"));
        assert!(!media_matches(
            "application/json",
            "application/problem+json"
        ));
    }
}
