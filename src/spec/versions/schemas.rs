//! Visits every schema of a document in OpenAPI 3.0's shape (under paths and components,
//! and every subschema inside them), so a conversion can rewrite each one in place.

use serde_json::{Map, Value};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Keywords whose value is one subschema.
const ONE: [&str; 10] = [
    "not",
    "additionalProperties",
    "items",
    "contains",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
];
/// Keywords whose value is a list of subschemas.
const LIST: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to subschemas.
const MAP: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// Calls `f` on every schema object of `doc`, parents before their subschemas.
pub fn each_schema(doc: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        for item in paths.values_mut() {
            path_item(item, f);
        }
    }
    let Some(Value::Object(components)) = doc.get_mut("components") else {
        return;
    };
    for (section, value) in components.iter_mut() {
        let Value::Object(entries) = value else {
            continue;
        };
        for entry in entries.values_mut() {
            match section.as_str() {
                "schemas" => schema(entry, f),
                "parameters" | "headers" => parameter(entry, f),
                "requestBodies" => content(entry, f),
                "responses" => response(entry, f),
                "pathItems" => path_item(entry, f),
                _ => {}
            }
        }
    }
}

fn path_item(item: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    each_in(item, "parameters", |p| parameter(p, f));
    for m in METHODS {
        if let Some(op) = item.get_mut(m) {
            each_in(op, "parameters", |p| parameter(p, f));
            if let Some(body) = op.get_mut("requestBody") {
                content(body, f);
            }
            if let Some(Value::Object(responses)) = op.get_mut("responses") {
                for r in responses.values_mut() {
                    response(r, f);
                }
            }
        }
    }
}

fn each_in(node: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    match node.get_mut(key) {
        Some(Value::Array(items)) => items.iter_mut().for_each(&mut f),
        Some(Value::Object(map)) => map.values_mut().for_each(&mut f),
        _ => {}
    }
}

fn parameter(p: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    if let Some(s) = p.get_mut("schema") {
        schema(s, f);
    }
    content(p, f);
}

fn content(node: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    if let Some(Value::Object(media)) = node.get_mut("content") {
        for m in media.values_mut() {
            if let Some(s) = m.get_mut("schema") {
                schema(s, f);
            }
        }
    }
}

fn response(r: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    content(r, f);
    each_in(r, "headers", |h| parameter(h, f));
}

/// One schema and, after it, its subschemas.
pub fn schema(node: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    let Value::Object(map) = node else {
        return;
    };
    f(map);
    for key in ONE {
        match map.get_mut(key) {
            Some(Value::Array(items)) => items.iter_mut().for_each(|s| schema(s, f)),
            Some(s) => schema(s, f),
            None => {}
        }
    }
    for key in LIST {
        if let Some(Value::Array(items)) = map.get_mut(key) {
            items.iter_mut().for_each(|s| schema(s, f));
        }
    }
    for key in MAP {
        if let Some(Value::Object(entries)) = map.get_mut(key) {
            entries.values_mut().for_each(|s| schema(s, f));
        }
    }
}
