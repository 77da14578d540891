//! Form bodies (`application/x-www-form-urlencoded`, `multipart/form-data`) read into the
//! JSON value their schema describes, so they are validated and stored like JSON bodies:
//!
//! - values are typed by the member's schema (integers, numbers, booleans, `null` where
//!   nullable; a JSON text where the member is an object or array);
//! - a key repeated for an array member (`MediaUrl=a&MediaUrl=b`) or written `a[]` gives an
//!   array;
//! - bracketed keys nest, as many form APIs send them: `metadata[plan]=pro` is
//!   `{"metadata": {"plan": "pro"}}` and `items[0][price]=5` is `{"items": [{"price": 5}]}`.
//!
//! Pairs are decoded by `form_urlencoded` and multipart parts by `multer`; the nesting is
//! done here because it follows the schema (an index is an array position only where the
//! schema has an array).

use bytes::Bytes;
use futures_util::FutureExt;
use serde_json::{Map, Value};

use crate::generate::flatten;

/// An urlencoded body as the value its schema describes.
pub fn urlencoded(body: &[u8], schema: Option<&Value>, doc: &Value) -> Value {
    build(
        form_urlencoded::parse(body).into_owned().collect(),
        schema,
        doc,
    )
}

/// A multipart body as the value its schema describes: text parts by their names, file
/// parts as their file names. The reason when the body is not multipart (no boundary, cut
/// short).
pub fn multipart(
    body: &[u8],
    content_type: &str,
    schema: Option<&Value>,
    doc: &Value,
) -> Result<Value, String> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| format!("the multipart body cannot be read: {e}"))?;
    let bytes = Bytes::copy_from_slice(body);
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let read = async move {
        let mut pairs = Vec::new();
        while let Some(field) = parts.next_field().await? {
            let name = field.name().unwrap_or_default().to_owned();
            let file = field.file_name().map(str::to_owned);
            let text = field.text().await?;
            pairs.push((name, file.unwrap_or(text)));
        }
        Ok::<_, multer::Error>(pairs)
    };
    // The whole body is in memory, so reading it never waits: polled once, it is done.
    match read.now_or_never() {
        Some(Ok(pairs)) => Ok(build(pairs, schema, doc)),
        Some(Err(e)) => Err(format!("the multipart body cannot be read: {e}")),
        None => Err("the multipart body is incomplete".to_owned()),
    }
}

/// The object the pairs describe.
fn build(pairs: Vec<(String, String)>, schema: Option<&Value>, doc: &Value) -> Value {
    let schema = schema.map(|s| flatten(doc, s));
    let mut root = Value::Object(Map::new());
    for (key, raw) in pairs {
        let path = key_path(&key);
        insert(&mut root, &path, raw, schema.as_ref(), doc);
    }
    root
}

/// `a[b][0]` -> `[a, b, 0]`; `a[]` -> `[a, ""]`; a key without brackets is itself.
fn key_path(key: &str) -> Vec<&str> {
    let Some(open) = key.find('[').filter(|&i| i > 0 && key.ends_with(']')) else {
        return vec![key];
    };
    let mut path = vec![&key[..open]];
    path.extend(key[open + 1..key.len() - 1].split("]["));
    path
}

/// The schema of member `name` of an object schema (flattened).
fn member_schema(schema: Option<&Value>, name: &str, doc: &Value) -> Option<Value> {
    let s = schema?;
    s.get("properties")
        .and_then(|p| p.get(name))
        .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
        .map(|m| flatten(doc, m))
}

fn is_array(schema: Option<&Value>) -> bool {
    schema.and_then(type_of) == Some("array")
}

/// Sets the value at `path` below `node` (an object), typed by `schema`, the node's own.
fn insert(node: &mut Value, path: &[&str], raw: String, schema: Option<&Value>, doc: &Value) {
    let Some((name, rest)) = path.split_first() else {
        return;
    };
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let Value::Object(map) = node else { return };
    let child = member_schema(schema, name, doc);
    let as_array = is_array(child.as_ref())
        || rest
            .first()
            .is_some_and(|s| s.is_empty() || index(s).is_some());
    if rest.is_empty() {
        let value = coerce_scalar(&raw, child.as_ref());
        match map.get_mut(*name) {
            Some(Value::Array(items)) if is_array(child.as_ref()) => items.push(value),
            // A key repeated where nothing says what it is: every value is kept.
            Some(old) if child.is_none() => {
                let first = std::mem::take(old);
                *old = match first {
                    Value::Array(mut items) => {
                        items.push(value);
                        Value::Array(items)
                    }
                    one => Value::Array(vec![one, value]),
                };
            }
            _ if is_array(child.as_ref()) && !value.is_array() => {
                map.insert((*name).to_owned(), Value::Array(vec![value]));
            }
            _ => {
                map.insert((*name).to_owned(), value);
            }
        }
        return;
    }
    let slot = map.entry((*name).to_owned()).or_insert(Value::Null);
    if as_array {
        let items_schema = child
            .as_ref()
            .and_then(|c| c.get("items"))
            .map(|i| flatten(doc, i));
        insert_item(slot, rest, raw, items_schema.as_ref(), doc);
    } else {
        insert(slot, rest, raw, child.as_ref(), doc);
    }
}

/// `a[]=x` appends, `a[2][b]=x` sets member `b` of item 2.
fn insert_item(slot: &mut Value, rest: &[&str], raw: String, items: Option<&Value>, doc: &Value) {
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(list) = slot else { return };
    let (Some(first), tail) = (rest.first(), &rest[1..]) else {
        return;
    };
    let at = index(first).unwrap_or(list.len());
    // Positions are capped so a hostile index cannot make a huge array.
    if at > list.len() + 1000 {
        return;
    }
    while list.len() <= at {
        list.push(Value::Null);
    }
    if tail.is_empty() {
        list[at] = coerce_scalar(&raw, items);
    } else {
        insert(&mut list[at], tail, raw, items, doc);
    }
}

/// An array position in a key: `0`, `12`; `""` (from `a[]`) appends.
fn index(segment: &str) -> Option<usize> {
    if segment.is_empty() {
        return None;
    }
    segment.parse().ok()
}

pub(super) fn type_of(schema: &Value) -> Option<&str> {
    schema.get("type").and_then(Value::as_str)
}

/// Parses a string as the schema's type; leaves it a string when it does not parse, so the
/// validator reports a clear type error.
pub(super) fn coerce_scalar(raw: &str, schema: Option<&Value>) -> Value {
    let kind = schema.and_then(type_of);
    let nullable = schema
        .and_then(|s| s.get("nullable"))
        .and_then(Value::as_bool)
        == Some(true);
    if nullable && raw == "null" {
        return Value::Null;
    }
    match kind {
        Some("integer") => raw
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(raw.to_owned())),
        Some("number") => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(raw.to_owned()), Value::Number),
        Some("boolean") => match raw.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw.to_owned()),
        },
        // A structured member sent as one field carries JSON text.
        Some("object" | "array") => match serde_json::from_str::<Value>(raw) {
            Ok(v) if v.is_object() || v.is_array() => v,
            _ => Value::String(raw.to_owned()),
        },
        _ => Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "To": {"type": "string"},
            "MaxPrice": {"type": "number"},
            "ValidityPeriod": {"type": "integer"},
            "ProvideFeedback": {"type": "boolean"},
            "MediaUrl": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object", "properties": {"priority": {"type": "integer"}}},
            "items": {"type": "array", "items": {"type": "object", "properties": {"price": {"type": "integer"}}}},
            "attributes": {"type": "object"}
        }})
    }

    #[test]
    fn values_are_typed_by_the_schema() {
        let body =
            b"To=%2B15551234567&MaxPrice=0.75&ValidityPeriod=60&ProvideFeedback=true&Body=hi";
        assert_eq!(
            urlencoded(body, Some(&schema()), &json!({})),
            json!({"To": "+15551234567", "MaxPrice": 0.75, "ValidityPeriod": 60, "ProvideFeedback": true, "Body": "hi"})
        );
        // What does not parse stays text, for the validator to name.
        assert_eq!(
            urlencoded(b"ValidityPeriod=soon", Some(&schema()), &json!({})),
            json!({"ValidityPeriod": "soon"})
        );
    }

    #[test]
    fn repeated_and_bracketed_keys_nest() {
        let body = b"MediaUrl=https%3A%2F%2Fa.example&MediaUrl=https%3A%2F%2Fb.example\
                     &metadata%5Bpriority%5D=2&metadata[plan]=pro\
                     &items[0][price]=5&items[1][price]=7&tags[]=a&tags[]=b\
                     &attributes=%7B%22name%22%3A%22x%22%7D";
        assert_eq!(
            urlencoded(body, Some(&schema()), &json!({})),
            json!({
                "MediaUrl": ["https://a.example", "https://b.example"],
                "metadata": {"priority": 2, "plan": "pro"},
                "items": [{"price": 5}, {"price": 7}],
                "tags": ["a", "b"],
                "attributes": {"name": "x"}
            })
        );
        assert_eq!(key_path("a[b][0]"), vec!["a", "b", "0"]);
        assert_eq!(key_path("[x]"), vec!["[x]"]);
        // A hostile index is dropped rather than allocated.
        assert_eq!(
            urlencoded(b"items[99999999][price]=1", Some(&schema()), &json!({})),
            json!({"items": []})
        );
    }

    #[test]
    fn multipart_parts_are_members() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"ValidityPeriod\"\r\n\r\n30\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n\
                    Content-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n";
        assert_eq!(
            multipart(
                body.as_bytes(),
                "multipart/form-data; boundary=XyZ",
                Some(&schema()),
                &json!({})
            ),
            Ok(json!({"ValidityPeriod": 30, "file": "notes.txt"}))
        );
        assert!(multipart(b"x", "multipart/form-data", None, &json!({})).is_err());
        assert!(
            multipart(
                b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1",
                "multipart/form-data; boundary=XyZ",
                None,
                &json!({})
            )
            .is_err()
        );
    }
}
