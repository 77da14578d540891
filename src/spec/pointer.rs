//! JSON pointers into a spec document: building them, escaping segments, and following
//! `$ref` chains without ever looping.

use std::borrow::Cow;

use serde_json::Value;

/// Escapes one reference token for use in a JSON pointer (RFC 6901).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Appends one segment to a pointer.
pub fn join(base: &str, segment: &str) -> String {
    format!("{base}/{}", escape(segment))
}

/// Decodes a `$ref` fragment (`#/components/schemas/A%20B`) into a plain JSON pointer.
pub fn fragment_to_pointer(reference: &str) -> Option<String> {
    decode(reference).map(Cow::into_owned)
}

/// The same, borrowed where nothing was escaped (the usual case).
fn decode(reference: &str) -> Option<Cow<'_, str>> {
    let fragment = reference.strip_prefix('#')?;
    percent_encoding::percent_decode_str(fragment)
        .decode_utf8()
        .ok()
}

/// The value at `pointer` in `doc` (RFC 6901), as `Value::pointer` finds it, without
/// copying the tokens that need no unescaping: refs are followed on every request.
pub fn lookup<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(doc);
    }
    pointer
        .strip_prefix('/')?
        .split('/')
        .try_fold(doc, |target, token| step(target, &unescape(token)))
}

/// The reference tokens of `pointer`, unescaped (`None` for one that does not start with
/// `/`): parsed once, a pointer looked up on every request is walked without allocating.
pub fn tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let tokens = pointer.strip_prefix('/')?.split('/');
    Some(tokens.map(|t| unescape(t).into_owned()).collect())
}

/// The node that unescaped `tokens` lead to from `doc`.
pub fn walk<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens
        .iter()
        .try_fold(doc, |target, token| step(target, token))
}

/// A reference token with `~1` and `~0` unescaped (copied only when it has any).
fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        token.replace("~1", "/").replace("~0", "~").into()
    } else {
        token.into()
    }
}

/// The member or item of `target` that unescaped `token` names.
fn step<'a>(target: &'a Value, token: &str) -> Option<&'a Value> {
    match target {
        Value::Object(map) => member(map, token),
        Value::Array(items) => array_index(token).and_then(|i| items.get(i)),
        _ => None,
    }
}

/// An array index token: digits, without a sign or leading zeros.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// Why a `$ref` could not be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("reference '{0}' points to nothing in the document")]
    Dangling(String),
    #[error("reference '{0}' is not a local reference after bundling")]
    NotLocal(String),
    #[error("reference '{0}' is part of a cycle of references that never reaches a value")]
    Cycle(String),
}

/// Hops allowed through `$ref`-to-`$ref` chains; real specs use one or two.
const MAX_HOPS: usize = 64;

/// Follows `value`'s `$ref` (and the refs it lands on) to the first node that is not a bare
/// reference. Returns the node and the pointer where it lives (or `None` if `value` was no ref).
pub fn resolve<'a>(
    doc: &'a Value,
    value: &'a Value,
) -> Result<(&'a Value, Option<String>), RefError> {
    let (target, at) = follow(doc, value)?;
    Ok((target, at.map(Cow::into_owned)))
}

/// The node `value`'s `$ref` chain ends at, as [`resolve`] finds it, without the pointer.
pub fn target<'a>(doc: &'a Value, value: &'a Value) -> Result<&'a Value, RefError> {
    follow(doc, value).map(|(v, _)| v)
}

fn follow<'a>(
    doc: &'a Value,
    value: &'a Value,
) -> Result<(&'a Value, Option<Cow<'a, str>>), RefError> {
    let mut current = value;
    let mut at = None;
    for _ in 0..MAX_HOPS {
        let Some(reference) = ref_of(current) else {
            return Ok((current, at));
        };
        let pointer = decode(reference).ok_or_else(|| RefError::NotLocal(reference.to_owned()))?;
        current = lookup(doc, &pointer).ok_or_else(|| RefError::Dangling(reference.to_owned()))?;
        at = Some(pointer);
    }
    Err(RefError::Cycle(
        ref_of(value).unwrap_or_default().to_owned(),
    ))
}

/// The `$ref` string of a node, if it is a reference object.
pub fn ref_of(value: &Value) -> Option<&str> {
    match value {
        Value::Object(map) => member(map, "$ref").and_then(Value::as_str),
        _ => None,
    }
}

/// Above this many members a map is searched by hash.
const SCAN_MEMBERS: usize = 16;

/// Member `key` of `map`: small maps (most schema nodes) are scanned, which costs less than
/// hashing the key with serde_json's SipHash; `$ref`s are followed and schema keywords read
/// on every request.
pub fn member<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() > SCAN_MEMBERS {
        return map.get(key);
    }
    map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
}

/// The characters a URI fragment may not carry unescaped (`{`, `}`, spaces, ...).
const FRAGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'#')
    .add(b'%')
    .add(b'[')
    .add(b']');

/// Renders a JSON pointer as a URI fragment (`#/paths/~1a~1%7Bid%7D`).
pub fn pointer_to_fragment(pointer: &str) -> String {
    format!(
        "#{}",
        percent_encoding::utf8_percent_encode(pointer, FRAGMENT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn follows_chains_and_detects_cycles() {
        let doc = json!({"a": {"$ref": "#/b"}, "b": {"$ref": "#/c"}, "c": 1,
                         "x": {"$ref": "#/y"}, "y": {"$ref": "#/x"}});
        let (v, at) = resolve(&doc, &doc["a"]).unwrap();
        assert_eq!((v, at.as_deref()), (&json!(1), Some("/c")));
        assert!(matches!(resolve(&doc, &doc["x"]), Err(RefError::Cycle(_))));
        assert!(matches!(
            resolve(&doc, &json!({"$ref": "#/nope"})),
            Err(RefError::Dangling(_))
        ));
    }

    #[test]
    fn lookup_reads_pointers_as_serde_json_does() {
        let doc = json!({"a/b": {"m~n": [10, 20]}, "": 1, "list": [0, 1, 2]});
        for p in [
            "",
            "/a~1b",
            "/a~1b/m~0n/1",
            "/",
            "/list/2",
            "/list/02",
            "/list/+1",
            "/x",
            "a",
        ] {
            assert_eq!(lookup(&doc, p), doc.pointer(p), "{p}");
        }
    }

    #[test]
    fn fragments_round_trip() {
        let p = "/paths/~1a~1{id}/get";
        assert_eq!(fragment_to_pointer(&pointer_to_fragment(p)).unwrap(), p);
        assert_eq!(join("/x", "a/b~c"), "/x/a~1b~0c");
    }
}
