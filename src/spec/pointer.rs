//! JSON pointers into a spec document: building them, escaping segments, and following
//! `$ref` chains without ever looping.

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
    let fragment = reference.strip_prefix('#')?;
    let decoded = percent_encoding::percent_decode_str(fragment)
        .decode_utf8()
        .ok()?;
    Some(decoded.into_owned())
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
    let mut current = value;
    let mut at = None;
    for _ in 0..MAX_HOPS {
        let Some(reference) = ref_of(current) else {
            return Ok((current, at));
        };
        let pointer = fragment_to_pointer(reference)
            .ok_or_else(|| RefError::NotLocal(reference.to_owned()))?;
        current = doc
            .pointer(&pointer)
            .ok_or_else(|| RefError::Dangling(reference.to_owned()))?;
        at = Some(pointer);
    }
    Err(RefError::Cycle(
        ref_of(value).unwrap_or_default().to_owned(),
    ))
}

/// The `$ref` string of a node, if it is a reference object.
pub fn ref_of(value: &Value) -> Option<&str> {
    value.get("$ref").and_then(Value::as_str)
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
    fn fragments_round_trip() {
        let p = "/paths/~1a~1{id}/get";
        assert_eq!(fragment_to_pointer(&pointer_to_fragment(p)).unwrap(), p);
        assert_eq!(join("/x", "a/b~c"), "/x/a~1b~0c");
    }
}
