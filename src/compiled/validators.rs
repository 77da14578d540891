//! The validators a spec needs, compiled once at start-up: every parameter, request body and
//! response schema the operations use, shared by canonical pointer (a component used by
//! fifty operations is compiled once), and laid out per operation for the request pipeline.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jsonschema::Validator;
use serde_json::Value;

use crate::schema::{CompileError, Direction, SchemaSet};
use crate::spec::{Spec, pointer};

/// Validators by (direction, canonical schema pointer).
pub type Compiled = HashMap<(Direction, String), Arc<Validator>>;

/// Validators for one operation, parallel to the catalogue's lists.
pub struct OperationChecks {
    /// One per `Operation::params` entry.
    pub params: Vec<Option<Arc<Validator>>>,
    /// One per request body media type.
    pub body: Vec<Option<Arc<Validator>>>,
    /// `(response index, media index)` -> validator.
    pub responses: HashMap<(usize, usize), Arc<Validator>>,
}

/// Every distinct schema the operations use, by canonical pointer, in first-use order.
pub fn wanted(spec: &Spec) -> Vec<(Direction, String)> {
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
    wanted
}

/// Each operation's validators, picked from `compiled`.
pub fn per_operation(spec: &Spec, compiled: &Compiled) -> Vec<OperationChecks> {
    let get = |direction: Direction, ptr: &str| {
        compiled
            .get(&(direction, canonical_pointer(&spec.doc, ptr)))
            .cloned()
    };
    spec.operations
        .iter()
        .map(|op| {
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
            OperationChecks {
                params,
                body,
                responses,
            }
        })
        .collect()
}

/// Compiles `wanted` on every available core (start-up time is dominated by this on big specs).
pub fn compile_all(
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
