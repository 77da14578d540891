//! `format` values that OpenAPI specs use but JSON Schema does not define.

/// A KSUID: 27 base62 characters.
pub fn is_ksuid(s: &str) -> bool {
    s.len() == 27 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}
