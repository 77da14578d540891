//! OpenAPI 3.1 into the engine's 3.0 form. The document's shape is the same; its schemas
//! are JSON Schema 2020-12, so where 2020-12 spells something 3.0 cannot read (`type`
//! arrays and `null`, `const`, `examples` arrays, numeric `exclusiveMinimum`, `$ref` with
//! sibling keywords, `contentEncoding`), it is written the 3.0 way, which the validators turn
//! back into the same 2020-12 meaning. Keywords 3.0 lacks but the validators understand
//! (`prefixItems`, `dependentRequired`, `unevaluatedProperties`, `$defs`, `if`/`then`) stay
//! as they are. Path items in `components.pathItems` referenced from `paths` are inlined.

use serde_json::{Map, Value, json};

use super::schemas;

pub fn convert(doc: &mut Value) {
    inline_path_items(doc);
    schemas::each_schema(doc, &mut down);
}

/// `paths: {/x: {$ref: '#/components/pathItems/X'}}` becomes the path item itself.
fn inline_path_items(doc: &mut Value) {
    let items = doc
        .pointer("/components/pathItems")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return;
    };
    for item in paths.values_mut() {
        let target = item
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/pathItems/"))
            .and_then(|name| items.get(name));
        if let Some(target) = target {
            *item = target.clone();
        }
    }
}

/// One schema object, in place (its subschemas are visited after it).
fn down(map: &mut Map<String, Value>) {
    ref_with_siblings(map);
    types(map);
    null_branches(map);
    if let Some(c) = map.remove("const") {
        if c.is_null() {
            map.insert("nullable".into(), json!(true));
        }
        map.entry("enum").or_insert_with(|| json!([c]));
    }
    if let Some(Value::Array(examples)) = map.get("examples") {
        if let Some(first) = examples.first().cloned() {
            map.entry("example").or_insert(first);
        }
        map.remove("examples");
    }
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(n) = map.get(flag).filter(|v| v.is_number()).cloned() {
            map.insert(bound.into(), n);
            map.insert(flag.into(), json!(true));
        }
    }
    content_keywords(map);
}

/// In 3.1 a `$ref` may have siblings that apply too; 3.0 ignores them, so the reference
/// moves into an `allOf` beside them.
fn ref_with_siblings(map: &mut Map<String, Value>) {
    let applies = |k: &str| !matches!(k, "$ref" | "description" | "summary" | "title");
    if !map.contains_key("$ref") || !map.keys().any(|k| applies(k)) {
        return;
    }
    let Some(r) = map.remove("$ref") else { return };
    let mut all = vec![json!({"$ref": r})];
    if let Some(Value::Array(existing)) = map.remove("allOf") {
        all.extend(existing);
    }
    map.insert("allOf".into(), Value::Array(all));
}

/// `type: [string, "null"]` is `type: string, nullable: true`; several types become an
/// `anyOf` of each; `type: "null"` alone is the value null.
fn types(map: &mut Map<String, Value>) {
    let listed: Vec<String> = match map.get("type") {
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(t)) if t == "null" => vec![t.clone()],
        _ => return,
    };
    map.remove("type");
    let nullable = listed.iter().any(|t| t == "null");
    let rest: Vec<&String> = listed.iter().filter(|t| *t != "null").collect();
    match rest.as_slice() {
        [] => {
            map.insert("enum".into(), json!([null]));
        }
        [one] => {
            map.insert("type".into(), json!(one));
        }
        many => {
            let branches: Vec<Value> = many.iter().map(|t| json!({"type": t})).collect();
            match map.remove("anyOf") {
                // Both must hold: the types, and the alternatives already there.
                Some(existing) => {
                    let mut all = match map.remove("allOf") {
                        Some(Value::Array(a)) => a,
                        _ => Vec::new(),
                    };
                    all.push(json!({"anyOf": branches}));
                    all.push(json!({"anyOf": existing}));
                    map.insert("allOf".into(), Value::Array(all));
                }
                None => {
                    map.insert("anyOf".into(), Value::Array(branches));
                }
            }
        }
    }
    if nullable {
        map.insert("nullable".into(), json!(true));
    }
}

/// `anyOf: [X, {type: "null"}]` (how generators write an optional `X`) is `X` made
/// nullable.
fn null_branches(map: &mut Map<String, Value>) {
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(items)) = map.get_mut(key) else {
            continue;
        };
        let is_null = |v: &Value| {
            v.get("type").and_then(Value::as_str) == Some("null")
                || v.get("type") == Some(&json!(["null"]))
        };
        let before = items.len();
        items.retain(|v| !is_null(v));
        if items.len() < before {
            if items.is_empty() {
                map.remove(key);
                map.insert("enum".into(), json!([null]));
            }
            map.insert("nullable".into(), json!(true));
        }
    }
}

/// `contentEncoding: base64` is 3.0's `format: byte`; another `contentMediaType` on a
/// string is `format: binary`.
fn content_keywords(map: &mut Map<String, Value>) {
    let encoding = map.remove("contentEncoding");
    let media = map.remove("contentMediaType");
    if map.contains_key("format") {
        return;
    }
    if encoding.as_ref().and_then(Value::as_str) == Some("base64") {
        map.insert("format".into(), json!("byte"));
    } else if media
        .as_ref()
        .and_then(Value::as_str)
        .is_some_and(|m| !m.contains("json") && !m.starts_with("text/"))
    {
        map.insert("format".into(), json!("binary"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(schema: Value) -> Value {
        let mut doc = json!({"components": {"schemas": {"S": schema}}});
        convert(&mut doc);
        doc["components"]["schemas"]["S"].clone()
    }

    #[test]
    fn schemas_are_written_the_3_0_way() {
        assert_eq!(
            one(json!({"type": ["string", "null"]})),
            json!({"type": "string", "nullable": true})
        );
        assert_eq!(
            one(json!({"type": ["string", "integer"]})),
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
        );
        assert_eq!(one(json!({"const": "a"})), json!({"enum": ["a"]}));
        assert_eq!(
            one(json!({"type": "integer", "exclusiveMinimum": 0})),
            json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true})
        );
        assert_eq!(
            one(json!({"examples": [1, 2], "type": "integer"})),
            json!({"example": 1, "type": "integer"})
        );
        assert_eq!(
            one(json!({"$ref": "#/components/schemas/T", "description": "d", "maxLength": 3})),
            json!({"allOf": [{"$ref": "#/components/schemas/T"}], "description": "d", "maxLength": 3})
        );
        assert_eq!(
            one(json!({"anyOf": [{"$ref": "#/components/schemas/T"}, {"type": "null"}]})),
            json!({"anyOf": [{"$ref": "#/components/schemas/T"}], "nullable": true})
        );
        // Nested schemas too, and 2020-12 keywords stay.
        assert_eq!(
            one(
                json!({"type": "object", "properties": {"a": {"type": ["integer", "null"]}}, "dependentRequired": {"a": ["b"]}})
            ),
            json!({"type": "object", "properties": {"a": {"type": "integer", "nullable": true}}, "dependentRequired": {"a": ["b"]}})
        );
        assert_eq!(
            one(json!({"type": "array", "prefixItems": [{"const": 1}]})),
            json!({"type": "array", "prefixItems": [{"enum": [1]}]})
        );
    }
}
