//! Loading an OpenAPI 3.0 document into a [`Spec`]: the raw bundled JSON (what schemas are
//! compiled and generated from) plus the operation catalogue (what the router serves).
//! Anything wrong with the file stops here with a [`SpecError`] naming file, pointer and reason.

pub mod bundled;
pub mod catalog;
pub mod error;
pub mod load;
pub mod outline;
pub mod pointer;
pub mod sites;
pub mod versions;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use catalog::Operation;
pub use error::SpecError;

/// Path prefix owned by the sandbox itself; no spec may use it.
pub const ADMIN_PREFIX: &str = "/__sandbox";

/// Whether `path` is the sandbox's own (`/__sandbox` or under it).
pub fn is_admin_path(path: &str) -> bool {
    path.strip_prefix(ADMIN_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A loaded, checked spec.
#[derive(Debug)]
pub struct Spec {
    pub file: PathBuf,
    pub title: String,
    /// The document with external files bundled in; all `$ref`s are local and resolvable.
    pub doc: Value,
    pub operations: Vec<Operation>,
    /// Values the layers above derive from the document by pointer (flattened schemas),
    /// computed once and shared: the document never changes after loading.
    pub derived: Derived,
    /// Schema nodes with `$ref` followed and `allOf` merged, for the data generator.
    pub flattened: Flattened,
    /// Names this document in caches kept outside it.
    pub id: DocumentId,
    /// The pointers looked up so far, parsed.
    pointers: Pointers,
}

/// Pointers into the document, parsed once: a request's schemas are looked up by pointer
/// on every request, and parsing one (`~1` escapes in every path) cost more than walking it.
#[derive(Debug, Default)]
struct Pointers(parking_lot::RwLock<crate::hashing::HashMap<String, std::sync::Arc<[String]>>>);

impl Pointers {
    fn tokens(&self, ptr: &str) -> Option<std::sync::Arc<[String]>> {
        if let Some(tokens) = self.0.read().get(ptr) {
            return Some(tokens.clone());
        }
        let tokens: std::sync::Arc<[String]> = pointer::tokens(ptr)?.into();
        self.0.write().insert(ptr.to_owned(), tokens.clone());
        Some(tokens)
    }
}

/// A document's name in caches kept outside it (the generator's values, kept per thread):
/// unlike the document's address, never reused by a later spec.
#[derive(Debug)]
pub struct DocumentId(u64);

impl Default for DocumentId {
    fn default() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

impl DocumentId {
    pub fn get(&self) -> u64 {
        self.0
    }
}

/// Schema nodes flattened once (`$ref` followed, `allOf` merged), keyed by the node's
/// address: addresses are stable because the document never changes and entries are never
/// removed (a flattened schema's own nodes live inside its entry, so they are keyed the same
/// way). Only nodes of the document or of an entry may be looked up, never a temporary.
#[derive(Debug, Default)]
pub struct Flattened(parking_lot::RwLock<rustc_hash::FxHashMap<usize, std::sync::Arc<Value>>>);

impl Flattened {
    /// The flattened form of `node`, made by `make` the first time.
    pub fn get_or(&self, node: &Value, make: impl FnOnce() -> Value) -> std::sync::Arc<Value> {
        let (key, hit) = self.look(node);
        hit.unwrap_or_else(|| self.keep(key, make()))
    }

    /// Like [`get_or`](Self::get_or), for a node that may not flatten (a `$ref` that does
    /// not resolve): `None` is not remembered.
    pub fn get_or_try(
        &self,
        node: &Value,
        make: impl FnOnce() -> Option<Value>,
    ) -> Option<std::sync::Arc<Value>> {
        let (key, hit) = self.look(node);
        hit.or_else(|| Some(self.keep(key, make()?)))
    }

    /// `node`'s key, and its entry if it has one.
    fn look(&self, node: &Value) -> (usize, Option<std::sync::Arc<Value>>) {
        let key = std::ptr::from_ref(node) as usize;
        (key, self.0.read().get(&key).cloned())
    }

    /// Keeps `made` under `key`, unless another thread got there first.
    fn keep(&self, key: usize, made: Value) -> std::sync::Arc<Value> {
        let made = std::sync::Arc::new(made);
        self.0.write().entry(key).or_insert(made).clone()
    }
}

/// A cache of values derived from parts of the document, keyed by JSON pointer. Read on
/// every request by every worker (a create's schema, its time members), so lookups share a
/// read lock and hash with FxHash rather than SipHash (the keys come from the spec).
#[derive(Debug, Default)]
pub struct Derived(parking_lot::RwLock<rustc_hash::FxHashMap<String, std::sync::Arc<Value>>>);

impl Derived {
    /// The value for `ptr`, made by `make` the first time.
    pub fn get_or(
        &self,
        ptr: &str,
        make: impl FnOnce() -> Option<Value>,
    ) -> Option<std::sync::Arc<Value>> {
        if let Some(v) = self.0.read().get(ptr) {
            return Some(v.clone());
        }
        let v = std::sync::Arc::new(make()?);
        self.0.write().insert(ptr.to_owned(), v.clone());
        Some(v)
    }
}

impl Spec {
    pub fn load(file: &Path) -> Result<Self, SpecError> {
        let doc = load::load_document(file)?;
        Self::from_document(file, doc)
    }

    /// Builds a spec from an already parsed document (`file` is used for messages only).
    pub fn from_document(file: &Path, doc: Value) -> Result<Self, SpecError> {
        let (title, operations) = Self::analyse(file, &doc)?;
        Ok(Self::analysed(file, title, doc, operations))
    }

    /// A spec from a document and what [`analyse`](Self::analyse) found in it.
    pub fn analysed(file: &Path, title: String, doc: Value, operations: Vec<Operation>) -> Self {
        Self {
            file: file.to_path_buf(),
            title,
            doc,
            operations,
            derived: Derived::default(),
            flattened: Flattened::default(),
            id: DocumentId::default(),
            pointers: Pointers::default(),
        }
    }

    /// Checks a parsed document and lists its operations; returns (title, operations).
    /// Borrows the document so other start-up work can read it at the same time.
    pub fn analyse(file: &Path, doc: &Value) -> Result<(String, Vec<Operation>), SpecError> {
        Self::analyse_converted(file, doc).map_err(|mut e| {
            e.pointer = versions::original_pointer(doc, &e.pointer);
            e.reason = versions::original_reason(doc, &e.reason);
            e
        })
    }

    fn analyse_converted(file: &Path, doc: &Value) -> Result<(String, Vec<Operation>), SpecError> {
        check_version(file, doc)?;
        check_refs(file, doc, doc, "", &mut std::collections::HashSet::new())?;
        // The plain deserializer is fast; the path-tracking one only runs to explain a failure.
        let api: outline::Outline = match serde::Deserialize::deserialize(doc) {
            Ok(api) => api,
            Err(_) => {
                serde_path_to_error::deserialize::<_, outline::Outline>(doc).map_err(|e| {
                    let (at, reason) = narrow(doc)
                        .unwrap_or_else(|| (path_to_pointer(e.path()), e.inner().to_string()));
                    SpecError::new(file, at, format!("not valid OpenAPI 3.0: {reason}"))
                })?
            }
        };
        for path in api.paths.paths.keys() {
            if is_admin_path(path) {
                return Err(SpecError::new(
                    file,
                    pointer::join("/paths", path),
                    format!("paths under {ADMIN_PREFIX}/ are reserved for the sandbox's admin API"),
                ));
            }
            if !path.starts_with('/') {
                return Err(SpecError::new(
                    file,
                    pointer::join("/paths", path),
                    "a path must start with '/'",
                ));
            }
        }
        let operations = catalog::build(file, doc, &api)?;
        Ok((api.info.title.trim().to_owned(), operations))
    }

    /// The path parts of the spec's server URLs (`https://api.example.com/v1` -> `/v1`,
    /// variables at their defaults), longest first: clients configured with the server's
    /// full URL send paths under them.
    pub fn base_paths(&self) -> Vec<String> {
        let mut bases: Vec<String> = self
            .doc
            .get("servers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|server| {
                let mut url = server.get("url")?.as_str()?.to_owned();
                if let Some(Value::Object(vars)) = server.get("variables") {
                    for (name, var) in vars {
                        let default = var.get("default").and_then(Value::as_str).unwrap_or("");
                        url = url.replace(&format!("{{{name}}}"), default);
                    }
                }
                let path = match url.split_once("://") {
                    Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]).to_owned(),
                    None => url,
                };
                let path = path.trim_end_matches('/').to_owned();
                (path.starts_with('/') && !path.contains('{')).then_some(path)
            })
            .collect();
        bases.sort_by_key(|b| std::cmp::Reverse(b.len()));
        bases.dedup();
        bases
    }

    /// Resolves a pointer in the document; `None` when nothing is there.
    pub fn at(&self, ptr: &str) -> Option<&Value> {
        pointer::walk(&self.doc, &self.pointers.tokens(ptr)?)
    }
}

fn check_version(file: &Path, doc: &Value) -> Result<(), SpecError> {
    if !doc.is_object() {
        return Err(SpecError::new(
            file,
            "/",
            "the document is not a mapping of OpenAPI fields",
        ));
    }
    // Swagger 2.0 and OpenAPI 3.1 were converted to 3.0 when the document was read.
    match doc.get("openapi") {
        Some(Value::String(v)) if v.starts_with("3.0") => Ok(()),
        Some(v) => Err(SpecError::new(
            file,
            "/openapi",
            format!("unsupported OpenAPI version {v}; expected 3.0.x or 3.1.x (or swagger: 2.0)"),
        )),
        None => Err(SpecError::new(
            file,
            "/openapi",
            "missing 'openapi' version field (or 'swagger: 2.0')",
        )),
    }
}

/// Every `$ref` must land on a value, and chains of refs must not loop. Each distinct
/// reference is resolved once. Only references count: a `$ref` inside example data or a
/// property named `$ref` is not one ([`sites`]).
fn check_refs<'d>(
    file: &Path,
    doc: &'d Value,
    node: &'d Value,
    at: &str,
    seen: &mut std::collections::HashSet<&'d str>,
) -> Result<(), SpecError> {
    check_refs_at(file, doc, node, at, sites::Site::Spec, seen)
}

fn check_refs_at<'d>(
    file: &Path,
    doc: &'d Value,
    node: &'d Value,
    at: &str,
    site: sites::Site,
    seen: &mut std::collections::HashSet<&'d str>,
) -> Result<(), SpecError> {
    match node {
        Value::Object(map) => {
            if let Some(r) = site.reference(map) {
                let Some(r) = r.as_str() else {
                    return Err(SpecError::new(
                        file,
                        format!("{at}/$ref"),
                        "'$ref' must be a string",
                    ));
                };
                if seen.insert(r) {
                    pointer::resolve(doc, node)
                        .map_err(|e| SpecError::new(file, format!("{at}/$ref"), e.to_string()))?;
                }
            }
            for (k, v) in map {
                let child = site.child(k, v);
                if child != sites::Site::Data {
                    check_refs_at(file, doc, v, &pointer::join(at, k), child, seen)?;
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_refs_at(file, doc, v, &format!("{at}/{i}"), site, seen)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Finds the innermost node that fails to deserialize, by trying the document's parts one
/// level at a time (openapiv3's custom deserializers hide the path inside `paths` and
/// `responses`).
fn narrow(doc: &Value) -> Option<(String, String)> {
    use openapiv3::{Components, Info, Operation, PathItem, ReferenceOr, Response};
    fn attempt<T: serde::de::DeserializeOwned>(v: &Value, at: &str) -> Option<(String, String)> {
        serde_path_to_error::deserialize::<_, T>(v).err().map(|e| {
            (
                format!("{at}{}", path_to_pointer(e.path())),
                e.inner().to_string(),
            )
        })
    }
    if let Some(e) = doc.get("info").and_then(|i| attempt::<Info>(i, "/info")) {
        return Some(e);
    }
    if let Some(Value::Object(paths)) = doc.get("paths") {
        for (path, item) in paths {
            let item_at = pointer::join("/paths", path);
            if item.get("$ref").is_some() {
                continue;
            }
            for method in [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ] {
                let Some(op) = item.get(method) else { continue };
                let op_at = pointer::join(&item_at, method);
                if let Some(Value::Object(responses)) = op.get("responses") {
                    for (code, r) in responses {
                        if let Some(e) = attempt::<ReferenceOr<Response>>(
                            r,
                            &pointer::join(&format!("{op_at}/responses"), code),
                        ) {
                            return Some(e);
                        }
                    }
                }
                if let Some(e) = attempt::<Operation>(op, &op_at) {
                    return Some(e);
                }
            }
            if let Some(e) = attempt::<PathItem>(item, &item_at) {
                return Some(e);
            }
        }
    }
    doc.get("components")
        .and_then(|c| attempt::<Components>(c, "/components"))
}

fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out = pointer::join(&out, key),
            Segment::Enum { variant } => out = pointer::join(&out, variant),
            Segment::Unknown => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_prefix_is_a_whole_segment() {
        assert!(is_admin_path("/__sandbox"));
        assert!(is_admin_path("/__sandbox/journal"));
        assert!(!is_admin_path("/__sandboxes"));
        assert!(!is_admin_path("/customers/__sandbox"));
    }
}
