//! api-sandbox: a local, stateful sandbox of any OpenAPI 3.0 API.
//!
//! A request travels through these modules, in order:
//!
//! - [`spec`]: loads the document (YAML/JSON, relative `$ref`s bundled) and lists its operations;
//! - [`schema`]: converts OpenAPI 3.0 schemas to JSON Schema 2020-12 and compiles validators once;
//! - [`server::routing`]: matches the path to an operation (literal segments first);
//! - [`server::auth`]: checks the credentials the operation's security asks for;
//! - [`server::request`]: validates parameters and body;
//! - [`state`]: creates, reads, lists, updates and deletes resources inferred from the spec;
//! - [`server::respond`] / [`generate`]: answers with an example or a generated, schema-valid body;
//! - [`server::problem`]: renders every error in the API's own error format.
//!
//! [`contract`] is the other side: it replays recorded exchanges against any server and
//! checks the answers against the spec.

pub mod cli;
pub mod contract;
pub mod generate;
pub mod schema;
pub mod server;
pub mod spec;
pub mod state;

use std::path::{Path, PathBuf};

/// Every `openapi.{yaml,yml,json}` below `dir`, sorted for a stable port order.
pub fn discover_specs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| matches!(n, "openapi.yaml" | "openapi.yml" | "openapi.json"))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
