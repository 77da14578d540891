//! Rewrites the OpenAPI 3.0 schema dialect into JSON Schema 2020-12, which is what the
//! validator speaks. Only schema positions are touched: the walk starts at `paths` and
//! `components` and follows the document's structure (and its `$ref`s) down to every schema,
//! so example payloads and extensions are never rewritten by accident.
//!
//! | OpenAPI 3.0 | 2020-12 |
//! |---|---|
//! | `type: T, nullable: true` | `type: [T, "null"]` (and `null` added to an `enum`) |
//! | `nullable` with no `type` | `anyOf: [schema, {type: null}]` |
//! | `$ref` + siblings | `$ref` alone (3.0 ignores siblings), `nullable` honoured as authors mean it |
//! | boolean `exclusiveMinimum/Maximum` | numeric bounds |
//! | `format: int32/int64` | `minimum`/`maximum` |
//! | `oneOf` + `discriminator.mapping` | `if`/`then` per tag, so errors name the failing field |
//! | `readOnly` (requests) / `writeOnly` (responses) | dropped from `required` |

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::spec::pointer::{self, ref_of};

/// Which side of an exchange a schema is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    PathItem,
    Operation,
    Parameter,
    RequestBody,
    Response,
    Header,
    Media,
    Schema,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Pointers of every schema position in `doc`, reachable from paths and components.
pub fn schema_positions(doc: &Value) -> Vec<String> {
    let mut stack = roots(doc);
    let mut seen: HashSet<(String, Kind)> = HashSet::new();
    let mut positions = Vec::new();
    while let Some((ptr, kind)) = stack.pop() {
        if !seen.insert((ptr.clone(), kind)) {
            continue;
        }
        let Some(node) = doc.pointer(&ptr) else {
            continue;
        };
        if let Some(r) = ref_of(node) {
            if kind == Kind::Schema {
                positions.push(ptr.clone());
            }
            if let Some(target) = pointer::fragment_to_pointer(r) {
                stack.push((target, kind));
            }
            continue;
        }
        if kind == Kind::Schema {
            positions.push(ptr.clone());
        }
        push_children(node, &ptr, kind, &mut stack);
    }
    positions
}

/// Where the walk starts: every path item and every component of a kind that can hold schemas.
fn roots(doc: &Value) -> Vec<(String, Kind)> {
    let mut stack: Vec<(String, Kind)> = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        stack.extend(
            paths
                .keys()
                .map(|k| (pointer::join("/paths", k), Kind::PathItem)),
        );
    }
    let sections = [
        ("schemas", Kind::Schema),
        ("parameters", Kind::Parameter),
        ("requestBodies", Kind::RequestBody),
        ("responses", Kind::Response),
        ("headers", Kind::Header),
    ];
    for (section, kind) in sections {
        let base = format!("/components/{section}");
        if let Some(map) = doc.pointer(&base).and_then(Value::as_object) {
            stack.extend(map.keys().map(|k| (pointer::join(&base, k), kind)));
        }
    }
    stack
}

/// Pushes the positions under `node` (of `kind`, at `ptr`) that can lead to schemas.
fn push_children(node: &Value, ptr: &str, kind: Kind, stack: &mut Vec<(String, Kind)>) {
    let child = |stack: &mut Vec<(String, Kind)>, key: &str, kind: Kind| {
        if node.get(key).is_some() {
            stack.push((pointer::join(ptr, key), kind));
        }
    };
    let each = |stack: &mut Vec<(String, Kind)>, key: &str, kind: Kind| match node.get(key) {
        Some(Value::Object(m)) => {
            let base = pointer::join(ptr, key);
            stack.extend(m.keys().map(|k| (pointer::join(&base, k), kind)));
        }
        Some(Value::Array(a)) => {
            let base = pointer::join(ptr, key);
            stack.extend((0..a.len()).map(|i| (format!("{base}/{i}"), kind)));
        }
        _ => {}
    };
    match kind {
        Kind::PathItem => {
            for m in METHODS {
                child(stack, m, Kind::Operation);
            }
            each(stack, "parameters", Kind::Parameter);
        }
        Kind::Operation => {
            child(stack, "requestBody", Kind::RequestBody);
            each(stack, "parameters", Kind::Parameter);
            each(stack, "responses", Kind::Response);
        }
        Kind::Parameter | Kind::Header => {
            child(stack, "schema", Kind::Schema);
            each(stack, "content", Kind::Media);
        }
        Kind::RequestBody => each(stack, "content", Kind::Media),
        Kind::Response => {
            each(stack, "content", Kind::Media);
            each(stack, "headers", Kind::Header);
        }
        Kind::Media => child(stack, "schema", Kind::Schema),
        Kind::Schema => {
            for key in ["properties", "patternProperties", "allOf", "anyOf", "oneOf"] {
                each(stack, key, Kind::Schema);
            }
            for key in ["not", "additionalProperties", "items"] {
                match node.get(key) {
                    Some(Value::Object(_)) => child(stack, key, Kind::Schema),
                    Some(Value::Array(_)) => each(stack, key, Kind::Schema),
                    _ => {}
                }
            }
        }
    }
}

/// Whether any schema in the document uses `readOnly` or `writeOnly` (then the request and
/// response views differ and need separate documents).
pub fn has_direction_keywords(doc: &Value, positions: &[String]) -> bool {
    positions.iter().any(|p| {
        doc.pointer(p).is_some_and(|s| {
            s.get("readOnly") == Some(&Value::Bool(true))
                || s.get("writeOnly") == Some(&Value::Bool(true))
        })
    })
}

/// Returns a converted copy of the document for `direction`.
pub fn convert(doc: &Value, positions: &[String], direction: Direction) -> Value {
    let mut out = lean_copy(doc, None);
    // Deepest first: a rewrite that wraps a node moves its children, which are then already done.
    let mut order: Vec<&String> = positions.iter().collect();
    order.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for ptr in order {
        let original = doc.pointer(ptr);
        if let Some(node) = out.pointer_mut(ptr) {
            convert_node(node, original, doc, direction);
        }
    }
    out
}

/// Members that never affect validation, dropped from the converted copy.
const PROSE: [&str; 6] = [
    "description",
    "summary",
    "example",
    "examples",
    "externalDocs",
    "xml",
];
/// Maps whose keys are names chosen by the spec author (a property may be called `example`).
const NAME_MAPS: [&str; 14] = [
    "properties",
    "patternProperties",
    "schemas",
    "parameters",
    "responses",
    "headers",
    "requestBodies",
    "securitySchemes",
    "content",
    "paths",
    "mapping",
    "links",
    "callbacks",
    "encoding",
];

/// A copy of the document without prose and examples: validators never read them, and on
/// large specs they are much of the size (and so of the start-up time and memory).
fn lean_copy(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::Object(map) => {
            let names = key.is_some_and(|k| NAME_MAPS.contains(&k) || k.starts_with("x-"));
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                if !names && PROSE.contains(&k.as_str()) {
                    continue;
                }
                out.insert(k.clone(), lean_copy(v, Some(k)));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| lean_copy(v, key)).collect()),
        other => other.clone(),
    }
}

fn convert_node(node: &mut Value, original: Option<&Value>, doc: &Value, direction: Direction) {
    let Value::Object(map) = node else { return };
    let nullable = map.remove("nullable") == Some(Value::Bool(true));
    if let Some(r) = map.get("$ref").cloned() {
        *node = if nullable {
            json!({"anyOf": [{"$ref": r}, {"type": "null"}]})
        } else {
            json!({"$ref": r})
        };
        return;
    }
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(Value::Bool(on)) = map.get(flag).cloned() {
            map.remove(flag);
            if on && let Some(n) = map.remove(bound) {
                map.insert(flag.to_owned(), n);
            }
        }
    }
    if map.get("type").and_then(Value::as_str) == Some("integer") {
        let (lo, hi) = match map.get("format").and_then(Value::as_str) {
            Some("int32") => (json!(i32::MIN), json!(i32::MAX)),
            Some("int64") => (json!(i64::MIN), json!(i64::MAX)),
            _ => (Value::Null, Value::Null),
        };
        if !lo.is_null() {
            map.entry("minimum").or_insert(lo);
            map.entry("maximum").or_insert(hi);
        }
    }
    drop_directional_required(map, original, doc, direction);
    rewrite_discriminator(map);
    if nullable {
        match map.get("type").cloned() {
            Some(Value::String(t)) => {
                map.insert("type".into(), json!([t, "null"]));
                if let Some(Value::Array(values)) = map.get_mut("enum")
                    && !values.contains(&Value::Null)
                {
                    values.push(Value::Null);
                }
            }
            _ => {
                let inner = Value::Object(std::mem::take(map));
                *node = json!({"anyOf": [inner, {"type": "null"}]});
            }
        }
    }
}

fn drop_directional_required(
    map: &mut Map<String, Value>,
    original: Option<&Value>,
    doc: &Value,
    direction: Direction,
) {
    let flag = match direction {
        Direction::Request => "readOnly",
        Direction::Response => "writeOnly",
    };
    let Some(props) = original
        .and_then(|o| o.get("properties"))
        .and_then(Value::as_object)
    else {
        return;
    };
    let hidden: Vec<&String> = props
        .iter()
        .filter(|(_, s)| {
            pointer::resolve(doc, s).is_ok_and(|(s, _)| s.get(flag) == Some(&Value::Bool(true)))
        })
        .map(|(k, _)| k)
        .collect();
    if hidden.is_empty() {
        return;
    }
    if let Some(Value::Array(req)) = map.get_mut("required") {
        req.retain(|r| {
            !r.as_str()
                .is_some_and(|r| hidden.iter().any(|h| h.as_str() == r))
        });
    }
}

/// `oneOf` + `discriminator` with an explicit mapping that covers every branch becomes
/// `if tag == X then X's schema`, so a bad payload reports the field that is wrong rather
/// than "not valid under any of the schemas listed in oneOf".
fn rewrite_discriminator(map: &mut Map<String, Value>) {
    let Some(prop) = map
        .get("discriminator")
        .and_then(|d| d.get("propertyName"))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let Some(Value::Object(mapping)) = map
        .get("discriminator")
        .and_then(|d| d.get("mapping"))
        .cloned()
    else {
        return;
    };
    let Some(Value::Array(branches)) = map.get("oneOf") else {
        return;
    };
    let targets: HashSet<&str> = mapping.values().filter_map(Value::as_str).collect();
    let all_covered = branches
        .iter()
        .all(|b| ref_of(b).is_some_and(|r| targets.contains(r)));
    if !all_covered || mapping.is_empty() {
        return;
    }
    map.remove("oneOf");
    let mut all_of = match map.remove("allOf") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let tags: Vec<Value> = mapping.keys().map(|k| Value::String(k.clone())).collect();
    for (tag, target) in &mapping {
        all_of.push(json!({
            "if": {"properties": {prop.clone(): {"const": tag}}, "required": [prop.clone()]},
            "then": {"$ref": target}
        }));
    }
    all_of.push(json!({"properties": {prop.clone(): {"enum": tags}}, "required": [prop]}));
    map.insert("allOf".into(), Value::Array(all_of));
    map.entry("type").or_insert(json!("object"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert_one(schema: Value, direction: Direction) -> Value {
        let doc = json!({"openapi": "3.0.3", "components": {"schemas": {"S": schema, "T": {"type": "string", "readOnly": true}}}});
        let positions = schema_positions(&doc);
        convert(&doc, &positions, direction)["components"]["schemas"]["S"].clone()
    }

    #[test]
    fn nullable_forms() {
        assert_eq!(
            convert_one(
                json!({"type": "string", "nullable": true}),
                Direction::Request
            ),
            json!({"type": ["string", "null"]})
        );
        assert_eq!(
            convert_one(
                json!({"type": "string", "enum": ["a"], "nullable": true}),
                Direction::Request
            ),
            json!({"type": ["string", "null"], "enum": ["a", null]})
        );
        assert_eq!(
            convert_one(
                json!({"$ref": "#/components/schemas/T", "nullable": true, "type": "string"}),
                Direction::Request
            ),
            json!({"anyOf": [{"$ref": "#/components/schemas/T"}, {"type": "null"}]})
        );
        let wrapped = convert_one(
            json!({"allOf": [{"type": "string", "nullable": true}], "nullable": true}),
            Direction::Request,
        );
        assert_eq!(
            wrapped,
            json!({"anyOf": [{"allOf": [{"type": ["string", "null"]}]}, {"type": "null"}]})
        );
    }

    #[test]
    fn bounds_and_direction() {
        assert_eq!(
            convert_one(
                json!({"type": "number", "minimum": 1, "exclusiveMinimum": true, "exclusiveMaximum": false}),
                Direction::Request
            ),
            json!({"type": "number", "exclusiveMinimum": 1})
        );
        let s = json!({"type": "object", "required": ["a", "t"], "properties": {"a": {"type": "string"}, "t": {"$ref": "#/components/schemas/T"}}});
        assert_eq!(
            convert_one(s.clone(), Direction::Request)["required"],
            json!(["a"])
        );
        assert_eq!(
            convert_one(s, Direction::Response)["required"],
            json!(["a", "t"])
        );
    }
}
