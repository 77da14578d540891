//! Everything needed to answer requests for one spec, built once at start-up: the route
//! table, a compiled validator for every parameter, request body and response schema (shared
//! by canonical pointer, so a component used by fifty operations is compiled once), and the
//! API's error format.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::Value;

use super::problem::ErrorStyle;
use super::respond::Prepared;
use super::routing::Router;
use crate::schema::{CompileError, Direction, SchemaSet};
use crate::spec::catalog::{Credential, scheme_credential};
use crate::spec::{Spec, SpecError, pointer};
use crate::state::Engine;
use crate::state::profile::Profile;

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
    /// Stateful behaviour: resources, store, idempotency, journal.
    pub engine: Engine,
    /// Credentials the profile accepts on every operation that requires one
    /// (`auth.also_accept`).
    pub also_accept: Vec<Credential>,
}

impl Api {
    /// Loads a spec file and prepares it for serving. The two halves of start-up that only
    /// read the document (checking it and listing operations; converting and registering its
    /// schemas) run on separate cores, and validators are compiled on both.
    pub fn load(file: &Path, seed: u64) -> Result<Self, SpecError> {
        let doc = crate::spec::load::load_document(file)?;
        let (analysed, schemas) = std::thread::scope(|scope| {
            let schemas = scope.spawn(|| SchemaSet::new(&doc));
            let analysed = Spec::analyse(file, &doc);
            (analysed, schemas.join())
        });
        let (title, operations) = analysed?;
        let schemas = schemas
            .map_err(|_| SpecError::new(file, "/", "schema conversion failed unexpectedly"))?
            .map_err(|e| {
                SpecError::new(
                    file,
                    &e.pointer,
                    format!("schema cannot be compiled: {}", e.reason),
                )
            })?;
        let spec = Spec {
            file: file.to_path_buf(),
            title,
            doc,
            operations,
        };
        Self::with_schemas(spec, &schemas, seed)
    }

    /// Prepares an already loaded spec (single-threaded; tests and tools use it).
    pub fn build(spec: Spec, seed: u64) -> Result<Self, SpecError> {
        let schemas = SchemaSet::new(&spec.doc).map_err(|e| {
            SpecError::new(
                &spec.file,
                &e.pointer,
                format!("schema cannot be compiled: {}", e.reason),
            )
        })?;
        Self::with_schemas(spec, &schemas, seed)
    }

    fn with_schemas(spec: Spec, schemas: &SchemaSet, seed: u64) -> Result<Self, SpecError> {
        // Every distinct schema the operations use, by canonical pointer.
        let mut wanted: Vec<(Direction, String)> = Vec::new();
        let mut seen = HashSet::new();
        let mut want = |direction: Direction, ptr: &str| {
            let key = (direction, canonical_pointer(&spec.doc, ptr));
            if seen.insert(key.clone()) {
                wanted.push(key);
            }
        };
        for op in &spec.operations {
            op.params
                .iter()
                .filter_map(|p| p.schema.as_deref())
                .for_each(|s| want(Direction::Request, s));
            op.body
                .iter()
                .flat_map(|b| &b.content)
                .filter_map(|m| m.schema.as_deref())
                .for_each(|s| want(Direction::Request, s));
            op.responses
                .iter()
                .flat_map(|r| &r.content)
                .filter_map(|m| m.schema.as_deref())
                .for_each(|s| want(Direction::Response, s));
        }
        let compiled = compile_all(schemas, &wanted).map_err(|e| {
            SpecError::new(
                &spec.file,
                &e.pointer,
                format!("schema cannot be compiled: {}", e.reason),
            )
        })?;
        let get = |direction: Direction, ptr: &str| {
            compiled
                .get(&(direction, canonical_pointer(&spec.doc, ptr)))
                .cloned()
        };
        let mut router = Router::default();
        let mut checks = Vec::with_capacity(spec.operations.len());
        for (i, op) in spec.operations.iter().enumerate() {
            router.add(&op.path, op.method.clone(), i);
            let params = op
                .params
                .iter()
                .map(|p| p.schema.as_deref().and_then(|s| get(Direction::Request, s)))
                .collect();
            let body = op
                .body
                .iter()
                .flat_map(|b| &b.content)
                .map(|m| m.schema.as_deref().and_then(|s| get(Direction::Request, s)))
                .collect();
            let mut responses = HashMap::new();
            for (ri, r) in op.responses.iter().enumerate() {
                for (mi, m) in r.content.iter().enumerate() {
                    if let Some(v) = m
                        .schema
                        .as_deref()
                        .and_then(|s| get(Direction::Response, s))
                    {
                        responses.insert((ri, mi), v);
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
        let engine = Engine::new(
            &spec,
            schemas,
            Profile::for_spec(&spec.file)?,
            seed,
            &compiled,
        )?;
        let also_accept = accepted_credentials(&spec, &engine.profile)?;
        let name = if spec.title.is_empty() {
            spec.file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            spec.title.clone()
        };
        let api = Self {
            name,
            spec,
            router,
            checks,
            seed,
            errors,
            error_templates: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
            engine,
            also_accept,
        };
        api.check_fixed_bodies()?;
        Ok(api)
    }

    /// A body the profile fixes for an operation (`operations.<id>.body`) must be one its
    /// success response allows; otherwise start-up fails with the profile's file and pointer.
    fn check_fixed_bodies(&self) -> Result<(), SpecError> {
        for (op_id, over) in &self.engine.profile.operations {
            let Some(body) = &over.body else { continue };
            let at = format!("/operations/{}/body", crate::spec::pointer::escape(op_id));
            let file = crate::state::profile::file_for(&self.spec.file);
            let Some(oi) = self.spec.operations.iter().position(|o| o.id == *op_id) else {
                return Err(SpecError::new(
                    file,
                    at,
                    format!("the spec has no operation '{op_id}'"),
                ));
            };
            if let Some(v) = self.success_validator(oi)
                && let Some(e) = v.iter_errors(body).next()
            {
                return Err(SpecError::new(
                    file,
                    at,
                    format!("does not match the success response schema: {e}"),
                ));
            }
        }
        Ok(())
    }
}

impl Api {
    /// The compiled validator of operation `oi`'s success response, in its JSON media type.
    pub fn success_validator(&self, oi: usize) -> Option<Arc<Validator>> {
        let op = &self.spec.operations[oi];
        let (_, response) = op.success()?;
        let ri = op
            .responses
            .iter()
            .position(|r| std::ptr::eq(r, response))?;
        let mi = response
            .content
            .iter()
            .position(|m| crate::spec::catalog::is_json(&m.media_type))?;
        self.checks[oi].responses.get(&(ri, mi)).cloned()
    }
}

/// The credentials of the schemes the profile names in `auth.also_accept`; a name the
/// spec does not define is refused at start-up, with the profile's file and pointer.
fn accepted_credentials(spec: &Spec, profile: &Profile) -> Result<Vec<Credential>, SpecError> {
    profile
        .auth
        .also_accept
        .iter()
        .enumerate()
        .map(|(i, name)| {
            scheme_credential(&spec.doc, name).ok_or_else(|| {
                SpecError::new(
                    crate::state::profile::file_for(&spec.file),
                    format!("/auth/also_accept/{i}"),
                    format!("'{name}' is not a security scheme in components.securitySchemes"),
                )
            })
        })
        .collect()
}

/// Validators by (direction, canonical schema pointer).
pub type Compiled = HashMap<(Direction, String), Arc<Validator>>;

/// Compiles `wanted` on every available core (start-up time is dominated by this on big specs).
fn compile_all(
    schemas: &SchemaSet,
    wanted: &[(Direction, String)],
) -> Result<Compiled, CompileError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let chunk = wanted.len().div_ceil(workers).max(1);
    let results: Vec<Result<Compiled, CompileError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = wanted
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(d, p)| {
                            schemas
                                .compile(*d, p)
                                .map(|v| ((*d, p.clone()), Arc::new(v)))
                        })
                        .collect::<Result<Compiled, CompileError>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(CompileError {
                        pointer: "/".into(),
                        reason: "compiler thread failed".into(),
                    })
                })
            })
            .collect()
    });
    let mut all = HashMap::with_capacity(wanted.len());
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// Follows `$ref`s from `ptr` to the pointer of the schema that is actually there.
pub fn canonical_pointer(doc: &Value, ptr: &str) -> String {
    doc.pointer(ptr)
        .and_then(|node| pointer::resolve(doc, node).ok())
        .and_then(|(_, at)| at)
        .unwrap_or_else(|| ptr.to_owned())
}
