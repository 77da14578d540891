//! Reading a spec from disk: YAML or JSON text into one `serde_json::Value`, with every
//! relative-file `$ref` bundled into the document so the rest of the engine only ever sees
//! local references. References may not leave the spec's folder, and remote ones are refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::SpecError;
use super::pointer;
use super::sites::Site;

/// Where bundled external documents are kept inside the root document.
pub const BUNDLE_KEY: &str = "x-sandbox-bundled";

/// Largest spec file accepted; far above any real API, small enough to refuse a runaway file.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Parses YAML or JSON text into a JSON value. JSON is tried first when the text looks like it.
pub fn parse_text(file: &Path, text: &str) -> Result<Value, SpecError> {
    let looks_json = text.trim_start().starts_with('{');
    if looks_json {
        return serde_json::from_str(text).map_err(|e| {
            SpecError::new(
                file,
                "/",
                format!(
                    "invalid JSON at line {} column {}: {e}",
                    e.line(),
                    e.column()
                ),
            )
        });
    }
    yaml_serde::from_str::<Value>(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {} column {}", l.line(), l.column()))
            .unwrap_or_default();
        SpecError::new(file, "/", format!("invalid YAML{at}: {e}"))
    })
}

fn read_document(file: &Path) -> Result<Value, SpecError> {
    let meta = std::fs::metadata(file)
        .map_err(|e| SpecError::new(file, "/", format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(SpecError::new(
            file,
            "/",
            format!("file is larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| SpecError::new(file, "/", format!("cannot read: {e}")))?;
    parse_text(file, &text)
}

/// Reads `file` and returns the document with all file references bundled in.
pub fn load_document(file: &Path) -> Result<Value, SpecError> {
    let root_doc = read_document(file)?;
    let canonical = file
        .canonicalize()
        .map_err(|e| SpecError::new(file, "/", format!("cannot resolve path: {e}")))?;
    let folder = canonical
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut bundler = Bundler {
        folder,
        root: canonical.clone(),
        keys: HashMap::new(),
        bundled: Map::new(),
        display: file.to_path_buf(),
    };
    let mut doc = super::versions::normalise(root_doc)
        .map_err(|(at, reason)| SpecError::new(file, at, reason))?;
    bundler.rewrite(&mut doc, &canonical, None, "")?;
    if !bundler.bundled.is_empty()
        && let Value::Object(map) = &mut doc
    {
        map.insert(
            BUNDLE_KEY.to_owned(),
            Value::Object(std::mem::take(&mut bundler.bundled)),
        );
    }
    Ok(doc)
}

struct Bundler {
    /// The root spec's folder: no reference may point outside it.
    folder: PathBuf,
    /// The root spec itself: a bundled file may refer back to it.
    root: PathBuf,
    /// Canonical file path -> key under `BUNDLE_KEY`.
    keys: HashMap<PathBuf, String>,
    bundled: Map<String, Value>,
    /// The path the user gave, for messages.
    display: PathBuf,
}

impl Bundler {
    /// Rewrites every `$ref` in `node` (which lives in `file`, bundled under `key`) to a local one.
    fn rewrite(
        &mut self,
        node: &mut Value,
        file: &Path,
        key: Option<&str>,
        at: &str,
    ) -> Result<(), SpecError> {
        self.rewrite_at(node, file, key, at, Site::Spec)
    }

    fn rewrite_at(
        &mut self,
        node: &mut Value,
        file: &Path,
        key: Option<&str>,
        at: &str,
        site: Site,
    ) -> Result<(), SpecError> {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = site.reference(map) {
                    let reference = reference.clone();
                    let new = self.localise(&reference, file, key, at)?;
                    map.insert("$ref".to_owned(), Value::String(new));
                }
                for (k, child) in map.iter_mut() {
                    // Example payloads are data, not spec structure: a `$ref` key there is content.
                    let child_site = site.child(k, child);
                    if child_site == Site::Data || (k == "$ref" && site != Site::Names) {
                        continue;
                    }
                    let child_at = pointer::join(at, k);
                    self.rewrite_at(child, file, key, &child_at, child_site)?;
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    let child_at = format!("{at}/{i}");
                    self.rewrite_at(child, file, key, &child_at, site)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn localise(
        &mut self,
        reference: &str,
        file: &Path,
        key: Option<&str>,
        at: &str,
    ) -> Result<String, SpecError> {
        let err =
            |reason: String| SpecError::new(self.display.clone(), format!("{at}/$ref"), reason);
        let (target, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let prefix = |k: Option<&str>| {
            k.map(|k| format!("/{BUNDLE_KEY}/{}", pointer::escape(k)))
                .unwrap_or_default()
        };
        if target.is_empty() {
            // A local reference inside a bundled file must now point into that file's subtree.
            return Ok(pointer::pointer_to_fragment(&format!(
                "{}{}",
                prefix(key),
                pointer::fragment_to_pointer(&format!("#{fragment}")).unwrap_or_default()
            )));
        }
        if target.contains("://") {
            return Err(err(format!(
                "remote reference '{reference}' is not supported; use a file next to the spec"
            )));
        }
        let base = file.parent().unwrap_or(Path::new("."));
        let path = base.join(target).canonicalize().map_err(|e| {
            err(format!(
                "reference '{reference}' names a file that cannot be read: {e}"
            ))
        })?;
        if !path.starts_with(&self.folder) {
            return Err(err(format!(
                "reference '{reference}' points outside the spec's folder"
            )));
        }
        let inner = pointer::fragment_to_pointer(&format!("#{fragment}")).unwrap_or_default();
        if path == self.root {
            return Ok(pointer::pointer_to_fragment(&inner));
        }
        let new_key = match self.keys.get(&path) {
            Some(k) => k.clone(),
            None => {
                let k = path
                    .strip_prefix(&self.folder)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_else(|_| format!("file{}", self.keys.len()));
                self.keys.insert(path.clone(), k.clone());
                let mut sub = read_document(&path)?;
                self.rewrite(&mut sub, &path, Some(&k), "")?;
                self.bundled.insert(k.clone(), sub);
                k
            }
        };
        Ok(pointer::pointer_to_fragment(&format!(
            "{}{inner}",
            prefix(Some(&new_key))
        )))
    }
}
