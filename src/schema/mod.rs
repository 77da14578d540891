//! Compiled validators for a spec. The document is converted once per direction
//! ([`dialect`]), registered once, and each schema the server needs is compiled once at
//! start-up into a [`Validator`]; requests only ever run already-built validators.

pub mod dialect;
pub mod formats;

use jsonschema::{Draft, Registry, Validator};
use serde_json::{Value, json};

pub use dialect::Direction;

use crate::spec::pointer;

const REQUEST_URI: &str = "urn:api-sandbox:request";
const RESPONSE_URI: &str = "urn:api-sandbox:response";

/// One reason a value does not fit its schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// JSON pointer into the checked value (`""` for the value itself).
    pub pointer: String,
    pub message: String,
    /// The schema keyword that failed (`required`, `type`, `enum`, ...).
    pub keyword: String,
}

/// The registered, converted document(s) a spec's validators are built from.
pub struct SchemaSet {
    request: Registry<'static>,
    /// `None` when the spec has no `readOnly`/`writeOnly`, so one document serves both sides.
    response: Option<Registry<'static>>,
}

/// A schema the validator library refused (bad regex, unknown draft feature, ...).
#[derive(Debug, thiserror::Error)]
#[error("{pointer}: schema cannot be compiled: {reason}")]
pub struct CompileError {
    pub pointer: String,
    pub reason: String,
}

impl SchemaSet {
    pub fn new(doc: &Value) -> Result<Self, CompileError> {
        let positions = dialect::schema_positions(doc);
        let split = dialect::has_direction_keywords(doc, &positions);
        let register = |uri: &str, direction| {
            Registry::new()
                .draft(Draft::Draft202012)
                .add(uri, dialect::convert(doc, &positions, direction))
                .and_then(|b| b.prepare())
                .map_err(|e| CompileError {
                    pointer: "/".into(),
                    reason: e.to_string(),
                })
        };
        let request = register(REQUEST_URI, Direction::Request)?;
        let response = if split {
            Some(register(RESPONSE_URI, Direction::Response)?)
        } else {
            None
        };
        Ok(Self { request, response })
    }

    /// Compiles the schema at `ptr` (a JSON pointer into the spec) for `direction`.
    pub fn compile(&self, direction: Direction, ptr: &str) -> Result<Validator, CompileError> {
        let (registry, uri) = match (direction, &self.response) {
            (Direction::Response, Some(r)) => (r, RESPONSE_URI),
            _ => (&self.request, REQUEST_URI),
        };
        let wrapper = json!({ "$ref": format!("{uri}{}", pointer::pointer_to_fragment(ptr)) });
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(registry)
            .should_validate_formats(true)
            .with_format("ksuid", formats::is_ksuid)
            .build(&wrapper)
            .map_err(|e| CompileError {
                pointer: ptr.to_owned(),
                reason: e.to_string(),
            })
    }
}

/// Every violation of `value` against `validator`, most specific first, with messages that
/// never embed a large value.
pub fn violations(validator: &Validator, value: &Value) -> Vec<Violation> {
    // Most values are valid: the quick check makes no errors to throw away.
    if validator.is_valid(value) {
        return Vec::new();
    }
    let mut out: Vec<Violation> = validator
        .iter_errors(value)
        .map(|e| {
            let scalar = !matches!(e.instance().as_ref(), Value::Object(_) | Value::Array(_));
            let message = if scalar {
                e.to_string()
            } else {
                e.masked().to_string()
            };
            let keyword = e.kind().keyword().to_owned();
            let mut at = e.instance_path().as_str().to_owned();
            // A missing property is reported at its parent; point at the property itself.
            if let jsonschema::error::ValidationErrorKind::Required {
                property: Value::String(p),
            } = e.kind()
            {
                at = pointer::join(&at, p);
            }
            Violation {
                pointer: at,
                message,
                keyword,
            }
        })
        .collect();
    // Deeper pointers name the actual culprit; put them first.
    out.sort_by_key(|v| std::cmp::Reverse(v.pointer.matches('/').count()));
    out
}
