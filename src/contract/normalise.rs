//! Normalisation of response bodies before they are compared or snapshotted: values that
//! legitimately differ between runs and servers (ids, timestamps, request ids, the server's
//! own origin in URLs) are masked, and a step's ignore list is removed.

use serde_json::Value;

/// Masks volatile values and drops the `ignore` pointers (`*` matches any index or member).
/// `captured` lists (value, name) pairs: each value bound by a capture is written as
/// `{{name}}` wherever it appears in a string, so an id echoed in a message (`no recipient
/// with id '...'`) compares equal across servers.
pub fn normalise(body: &Value, ignore: &[String], captured: &[(String, String)]) -> Value {
    let mut out = body.clone();
    for pointer in ignore {
        let segments: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        remove(&mut out, &segments);
    }
    if !captured.is_empty() {
        replace_captured(&mut out, captured);
    }
    mask(&mut out, None);
    out
}

fn replace_captured(value: &mut Value, captured: &[(String, String)]) {
    match value {
        Value::String(s) => {
            for (v, name) in captured {
                // Very short values would replace ordinary text by coincidence.
                if v.len() >= 4 && s.contains(v.as_str()) {
                    *s = s.replace(v.as_str(), &format!("{{{{{name}}}}}"));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_captured(v, captured)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_captured(v, captured)),
        _ => {}
    }
}

fn remove(value: &mut Value, segments: &[String]) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    match value {
        Value::Object(map) => {
            if rest.is_empty() {
                if first == "*" {
                    map.clear();
                } else {
                    map.shift_remove(first.as_str());
                }
            } else if first == "*" {
                map.values_mut().for_each(|v| remove(v, rest));
            } else if let Some(v) = map.get_mut(first.as_str()) {
                remove(v, rest);
            }
        }
        Value::Array(items) => {
            if first == "*" {
                if rest.is_empty() {
                    items.clear();
                } else {
                    items.iter_mut().for_each(|v| remove(v, rest));
                }
            } else if let Ok(i) = first.parse::<usize>() {
                if rest.is_empty() {
                    if i < items.len() {
                        items.remove(i);
                    }
                } else if let Some(v) = items.get_mut(i) {
                    remove(v, rest);
                }
            }
        }
        _ => {}
    }
}

/// True for member names that hold identifiers: `id`, `*_id`, `*Id`, `request_id`...
fn is_id_key(key: &str) -> bool {
    key == "id" || key.ends_with("_id") || key.ends_with("Id") || key.ends_with("-id")
}

fn mask(value: &mut Value, key: Option<&str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                mask(v, Some(k));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask(v, key)),
        Value::String(s) => {
            if let Some(masked) = mask_string(s, key) {
                *s = masked;
            }
        }
        // Epoch timestamps and numeric ids differ between runs as much as string ones.
        Value::Number(_) if key.is_some_and(is_id_key) => *value = Value::String("[id]".into()),
        Value::Number(_) if key.is_some_and(is_time_key) => {
            *value = Value::String("[timestamp]".into())
        }
        _ => {}
    }
}

fn is_time_key(key: &str) -> bool {
    key.ends_with("_at") || key.ends_with("At") || key == "timestamp" || key.ends_with("_time")
}

fn mask_string(s: &str, key: Option<&str>) -> Option<String> {
    if key.is_some_and(is_id_key) && !s.is_empty() {
        return Some("[id]".into());
    }
    if is_timestamp(s) {
        return Some("[timestamp]".into());
    }
    if is_uuid(s) {
        return Some("[uuid]".into());
    }
    // A local server's origin (`instance`, links) depends on its port; other origins, such
    // as documentation URLs, are content.
    for scheme in ["http://", "https://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            let end = rest.find('/').unwrap_or(rest.len());
            let host = rest[..end]
                .rsplit_once(':')
                .map_or(&rest[..end], |(h, _)| h);
            if matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "0.0.0.0") {
                return Some(format!("[origin]{}", &rest[end..]));
            }
        }
    }
    None
}

/// RFC 3339 date-times and plain dates (`2024-01-31`, `2024-01-31T10:00:00Z`).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let date = b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit);
    date && (b.len() == 10 || matches!(b[10], b'T' | b't' | b' '))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// One difference between an expected and an actual normalised body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub pointer: String,
    pub message: String,
}

/// Structural differences, at most `limit`, shallowest first.
pub fn diff(expected: &Value, actual: &Value, limit: usize) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(expected, actual, String::new(), &mut out, limit);
    out
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

fn walk(e: &Value, a: &Value, at: String, out: &mut Vec<Difference>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    match (e, a) {
        (Value::Object(em), Value::Object(am)) => {
            for (k, ev) in em {
                let p = crate::spec::pointer::join(&at, k);
                match am.get(k) {
                    Some(av) => walk(ev, av, p, out, limit),
                    None => out.push(Difference {
                        pointer: p,
                        message: format!("missing; recorded {}", short(ev)),
                    }),
                }
            }
            for (k, av) in am {
                if !em.contains_key(k) {
                    out.push(Difference {
                        pointer: crate::spec::pointer::join(&at, k),
                        message: format!("not in the recording; got {}", short(av)),
                    });
                }
            }
        }
        (Value::Array(ei), Value::Array(ai)) => {
            if ei.len() != ai.len() {
                out.push(Difference {
                    pointer: at.clone(),
                    message: format!("{} items, recorded {}", ai.len(), ei.len()),
                });
            }
            for (i, (ev, av)) in ei.iter().zip(ai).enumerate() {
                walk(ev, av, format!("{at}/{i}"), out, limit);
            }
        }
        _ if e != a => out.push(Difference {
            pointer: at,
            message: format!("got {}, recorded {}", short(a), short(e)),
        }),
        _ => {}
    }
    out.truncate(limit);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_volatile_values_and_applies_ignores() {
        let body = json!({"id": "2abc", "customer_id": 7, "created_at": 1700000000,
            "when": "2024-01-31T10:00:00Z", "key": "123e4567-e89b-42d3-a456-426614174000",
            "instance": "http://127.0.0.1:4321/customers", "name": "Acme",
            "data": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]});
        let n = normalise(&body, &["/data/*/y".into(), "/name".into()], &[]);
        assert_eq!(
            n,
            json!({"id": "[id]", "customer_id": "[id]", "created_at": "[timestamp]",
                "when": "[timestamp]", "key": "[uuid]", "instance": "[origin]/customers",
                "data": [{"x": 1}, {"x": 3}]})
        );
    }

    #[test]
    fn captured_values_become_placeholders() {
        let captured = [("2abcdef".to_owned(), "customer_id".to_owned())];
        let n = normalise(
            &json!({"detail": "no customer with id '2abcdef'"}),
            &[],
            &captured,
        );
        assert_eq!(
            n,
            json!({"detail": "no customer with id '{{customer_id}}'"})
        );
    }

    #[test]
    fn diff_names_pointers() {
        let d = diff(
            &json!({"a": 1, "b": [1, 2]}),
            &json!({"a": "1", "b": [1], "c": 0}),
            10,
        );
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(pointers, ["/a", "/b", "/c"]);
    }
}
