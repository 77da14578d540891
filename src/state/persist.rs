//! `--state FILE`: all APIs' state in one JSON file, loaded at start and written
//! atomically (temporary file, then rename) on shutdown and periodically. A file that cannot
//! be read as sandbox state is refused, never silently discarded or overwritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::store::{FORMAT_VERSION, Store};

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{}: cannot read the state file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a sandbox state file ({reason}); move it away or pass another --state path", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: cannot write the state file: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    /// API name -> its store.
    apis: BTreeMap<String, Store>,
}

/// Loads `path` into the APIs' stores; a missing file means a fresh start.
pub fn load(path: &Path, apis: &[(&str, &Engine)]) -> Result<(), PersistError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(PersistError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let corrupt = |reason: String| PersistError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let file: StateFile = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
    if file.version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "format version {} is not {FORMAT_VERSION}",
            file.version
        )));
    }
    for (name, store) in file.apis {
        if store.version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "API '{name}' has format version {}",
                store.version
            )));
        }
        match apis.iter().find(|(n, _)| *n == name) {
            Some((_, engine)) => engine.store.write().replace(store),
            None => tracing::warn!(
                "state file has data for '{name}', which is not being served; it will be kept"
            ),
        }
    }
    Ok(())
}

/// Writes every API's state to `path` atomically.
pub fn save(path: &Path, apis: &[(&str, &Engine)]) -> Result<(), PersistError> {
    let write_err = |source| PersistError::Write {
        path: path.to_path_buf(),
        source,
    };
    // Keep data of APIs not served this time, rather than dropping it.
    let mut apis_out: BTreeMap<String, Store> = match std::fs::read(path) {
        Ok(t) => serde_json::from_slice::<StateFile>(&t)
            .map(|f| f.apis)
            .unwrap_or_default(),
        Err(_) => BTreeMap::new(),
    };
    for (name, engine) in apis {
        let store = serde_json::to_value(&*engine.store.read())
            .and_then(serde_json::from_value)
            .map_err(|e| write_err(std::io::Error::other(e)))?;
        apis_out.insert((*name).to_owned(), store);
    }
    let file = StateFile {
        version: FORMAT_VERSION,
        apis: apis_out,
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| write_err(std::io::Error::other(e)))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
}
