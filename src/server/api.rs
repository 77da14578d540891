//! Everything needed to answer requests for one spec, built once at start-up: the route
//! table, a compiled validator for every parameter, request body and response schema (shared
//! by canonical pointer, so a component used by fifty operations is compiled once), and the
//! API's error format.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::Value;

use super::problem::ErrorStyle;
use super::respond::Prepared;
use super::routing::Router;
use crate::schema::{CompileError, Direction, SchemaSet};
use crate::spec::{Spec, SpecError, pointer};

/// Validators for one operation, parallel to the catalogue's lists.
pub struct OperationChecks {
    /// One per `Operation::params` entry.
    pub params: Vec<Option<Arc<Validator>>>,
    /// One per request body media type.
    pub body: Vec<Option<Arc<Validator>>>,
    /// `(response index, media index)` -> validator.
    pub responses: HashMap<(usize, usize), Arc<Validator>>,
    /// The success response, generated on first use and then served as is.
    pub success: OnceLock<Arc<Prepared>>,
}

pub struct Api {
    pub name: String,
    pub spec: Spec,
    pub router: Router,
    pub checks: Vec<OperationChecks>,
    pub seed: u64,
    pub errors: ErrorStyle,
    /// Error bodies built from the spec, keyed by the pointer of their media type object.
    pub error_templates: Mutex<HashMap<String, Arc<Value>>>,
    /// Requests seen, for request ids.
    pub requests: AtomicU64,
}

impl Api {
    pub fn build(spec: Spec, seed: u64) -> Result<Self, SpecError> {
        let file = spec.file.clone();
        let to_spec_error = |e: CompileError| {
            SpecError::new(
                &file,
                &e.pointer,
                format!("schema cannot be compiled: {}", e.reason),
            )
        };
        let schemas = SchemaSet::new(&spec.doc).map_err(to_spec_error)?;
        let mut cache: HashMap<(Direction, String), Arc<Validator>> = HashMap::new();
        let mut compile = |direction: Direction, ptr: &str| -> Result<Arc<Validator>, SpecError> {
            // Compile each distinct schema once, whichever pointer led to it.
            let canonical = canonical_pointer(&spec.doc, ptr);
            if let Some(v) = cache.get(&(direction, canonical.clone())) {
                return Ok(v.clone());
            }
            let v = Arc::new(
                schemas
                    .compile(direction, &canonical)
                    .map_err(to_spec_error)?,
            );
            cache.insert((direction, canonical), v.clone());
            Ok(v)
        };
        let mut router = Router::default();
        let mut checks = Vec::with_capacity(spec.operations.len());
        for (i, op) in spec.operations.iter().enumerate() {
            router.add(&op.path, op.method.clone(), i);
            let params = op
                .params
                .iter()
                .map(|p| {
                    p.schema
                        .as_deref()
                        .map(|s| compile(Direction::Request, s))
                        .transpose()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let body = op
                .body
                .iter()
                .flat_map(|b| &b.content)
                .map(|m| {
                    m.schema
                        .as_deref()
                        .map(|s| compile(Direction::Request, s))
                        .transpose()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut responses = HashMap::new();
            for (ri, r) in op.responses.iter().enumerate() {
                for (mi, m) in r.content.iter().enumerate() {
                    if let Some(s) = &m.schema {
                        responses.insert((ri, mi), compile(Direction::Response, s)?);
                    }
                }
            }
            checks.push(OperationChecks {
                params,
                body,
                responses,
                success: OnceLock::new(),
            });
        }
        let errors = ErrorStyle::learn(&spec);
        let name = if spec.title.is_empty() {
            spec.file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            spec.title.clone()
        };
        Ok(Self {
            name,
            spec,
            router,
            checks,
            seed,
            errors,
            error_templates: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        })
    }
}

/// Follows `$ref`s from `ptr` to the pointer of the schema that is actually there.
fn canonical_pointer(doc: &Value, ptr: &str) -> String {
    doc.pointer(ptr)
        .and_then(|node| pointer::resolve(doc, node).ok())
        .and_then(|(_, at)| at)
        .unwrap_or_else(|| ptr.to_owned())
}
