//! Everything needed to answer requests for one spec, built once at start-up: the spec and
//! its profile, the route table, a compiled validator for every parameter, request body and
//! response schema, the API's error style, and the success answers (generated on first use).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use jsonschema::Validator;
use parking_lot::Mutex;
use serde_json::Value;

use super::error_style::ErrorStyle;
use super::prepared::Prepared;
use super::routing::Router;
use super::validators::{self, Compiled, OperationChecks};
use crate::hashing::HashMap;
use crate::profile::{self, Profile};
use crate::schema::{Direction, SchemaSet};
use crate::spec::catalog::{Credential, scheme_credential};
use crate::spec::{Spec, SpecError};

pub struct Api {
    pub name: String,
    pub spec: Spec,
    pub profile: Arc<Profile>,
    pub router: Router,
    /// One per catalogue operation.
    pub checks: Vec<OperationChecks>,
    /// Every compiled validator, by (direction, canonical pointer).
    pub compiled: Compiled,
    /// The registered schemas, for validators compiled after start-up.
    pub schemas: SchemaSet,
    pub seed: u64,
    pub errors: ErrorStyle,
    /// Error bodies built from the spec, keyed by the pointer of their media type object.
    pub error_templates: Mutex<HashMap<String, Arc<Value>>>,
    /// Each operation's success response, generated on first use and then served as is.
    pub success: Vec<OnceLock<Arc<Prepared>>>,
    /// Credentials the profile accepts on every operation that requires one
    /// (`auth.also_accept`).
    pub also_accept: Vec<Credential>,
    /// The request header the spec uses for idempotency keys, lower-cased.
    pub idempotency_header: Option<String>,
}

impl Api {
    /// Loads a spec file and its profile and prepares them. The two halves of start-up that
    /// only read the document (checking it and listing operations; converting and
    /// registering its schemas) run on separate cores, and validators are compiled on both.
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
            .map_err(|e| compile_error(file, &e))?;
        let spec = Spec::analysed(file, title, doc, operations);
        Self::with_schemas(spec, schemas, seed)
    }

    /// Prepares an already loaded spec (single-threaded; tests and tools use it).
    pub fn build(spec: Spec, seed: u64) -> Result<Self, SpecError> {
        let schemas = SchemaSet::new(&spec.doc).map_err(|e| compile_error(&spec.file, &e))?;
        Self::with_schemas(spec, schemas, seed)
    }

    fn with_schemas(spec: Spec, schemas: SchemaSet, seed: u64) -> Result<Self, SpecError> {
        let compiled = validators::compile_all(&schemas, &validators::wanted(&spec))
            .map_err(|e| compile_error(&spec.file, &e))?;
        let checks = validators::per_operation(&spec, &compiled);
        let mut router = Router::default();
        for (i, op) in spec.operations.iter().enumerate() {
            router.add(&op.path, op.method.clone(), i);
        }
        router.set_bases(spec.base_paths());
        let profile = Profile::for_spec(&spec.file)?;
        let also_accept = accepted_credentials(&spec, &profile)?;
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
            errors: ErrorStyle::learn(&spec),
            success: spec.operations.iter().map(|_| OnceLock::new()).collect(),
            idempotency_header: idempotency_header(&spec),
            spec,
            profile: Arc::new(profile),
            router,
            checks,
            compiled,
            schemas,
            seed,
            error_templates: Mutex::new(HashMap::default()),
            also_accept,
        };
        api.check_fixed_bodies()?;
        Ok(api)
    }

    /// A body the profile fixes for an operation (`operations.<id>.body`) must be one its
    /// success response allows; otherwise start-up fails with the profile's file and pointer.
    fn check_fixed_bodies(&self) -> Result<(), SpecError> {
        for (op_id, over) in &self.profile.operations {
            let Some(body) = &over.body else { continue };
            let at = format!("/operations/{}/body", crate::spec::pointer::escape(op_id));
            let file = profile::file_for(&self.spec.file);
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

    /// The compiled validator of operation `oi`'s success response, in its JSON media type.
    pub fn success_validator(&self, oi: usize) -> Option<&Validator> {
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
        self.checks[oi].responses.get(&(ri, mi)).map(|v| &**v)
    }

    /// The validator of the schema at `ptr` for `direction`: the one compiled at start-up,
    /// else compiled now.
    pub fn validator(&self, direction: Direction, ptr: &str) -> Result<Arc<Validator>, SpecError> {
        let key = (
            direction,
            validators::canonical_pointer(&self.spec.doc, ptr),
        );
        if let Some(v) = self.compiled.get(&key) {
            return Ok(v.clone());
        }
        self.schemas
            .compile(direction, ptr)
            .map(Arc::new)
            .map_err(|e| compile_error(&self.spec.file, &e))
    }
}

/// The request header the spec uses for idempotency keys, lower-cased.
fn idempotency_header(spec: &Spec) -> Option<String> {
    spec.operations
        .iter()
        .flat_map(|o| &o.params)
        .find(|p| {
            p.location == crate::spec::catalog::Location::Header
                && p.name.to_ascii_lowercase().contains("idempotency")
        })
        .map(|p| p.name.to_ascii_lowercase())
}

fn compile_error(file: &Path, e: &crate::schema::CompileError) -> SpecError {
    SpecError::new(
        file,
        &e.pointer,
        format!("schema cannot be compiled: {}", e.reason),
    )
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
                    profile::file_for(&spec.file),
                    format!("/auth/also_accept/{i}"),
                    format!("'{name}' is not a security scheme in components.securitySchemes"),
                )
            })
        })
        .collect()
}
