//! Every version a user may bring, read into the one form the rest of the engine knows
//! (OpenAPI 3.0's document shape): Swagger 2.0 documents are converted
//! ([`swagger2`]), OpenAPI 3.1 documents have their schemas written in 3.0's spelling
//! where the two differ ([`openapi31`]), and 3.0 documents pass unchanged. The converted
//! document remembers its origin, so an error in it still points into the file the user
//! wrote ([`original_pointer`]).

mod openapi31;
mod schemas;
mod swagger2;

use serde_json::{Value, json};

/// Member of a converted document naming the version it was written in.
pub const ORIGIN_KEY: &str = "x-sandbox-converted-from";

/// The document in OpenAPI 3.0 form; `Err` (pointer, reason) when its version cannot be
/// read at all.
pub fn normalise(mut doc: Value) -> Result<Value, (String, String)> {
    let swagger = doc
        .get("swagger")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let openapi = doc
        .get("openapi")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (swagger, openapi) {
        (Some(v), _) if v.starts_with("2.") => {
            let mut converted = swagger2::convert(&doc);
            mark(&mut converted, &v);
            Ok(converted)
        }
        (Some(v), _) => Err((
            "/swagger".into(),
            format!(
                "Swagger {v} is not a version this sandbox reads (2.0, or OpenAPI 3.0 and 3.1)"
            ),
        )),
        (None, Some(v)) if v.starts_with("3.1") => {
            openapi31::convert(&mut doc);
            mark(&mut doc, &v);
            Ok(doc)
        }
        _ => Ok(doc),
    }
}

fn mark(doc: &mut Value, version: &str) {
    if let Value::Object(map) = doc {
        map.insert(ORIGIN_KEY.into(), json!(version));
        map.insert("openapi".into(), json!("3.0.3"));
    }
}

/// The version a document was written in, when it was converted.
pub fn origin(doc: &Value) -> Option<&str> {
    doc.get(ORIGIN_KEY).and_then(Value::as_str)
}

/// Where a pointer into the converted document points in the original one: Swagger 2.0
/// keeps its definitions, shared parameters, responses and security schemes at the top.
pub fn original_pointer(doc: &Value, pointer: &str) -> String {
    if !origin(doc).is_some_and(|v| v.starts_with("2.")) {
        return pointer.to_owned();
    }
    const MOVED: [(&str, &str); 4] = [
        ("/components/schemas/", "/definitions/"),
        ("/components/parameters/", "/parameters/"),
        ("/components/responses/", "/responses/"),
        ("/components/securitySchemes/", "/securityDefinitions/"),
    ];
    let mut out = pointer.to_owned();
    for (now, was) in MOVED {
        if let Some(rest) = out.strip_prefix(now) {
            out = format!("{was}{rest}");
            break;
        }
    }
    // A response's `schema` moved under `content/<media type>/`.
    if let Some(at) = out.find("/content/")
        && out.contains("/responses/")
        && let Some(schema) = out[at + "/content/".len()..].find("/schema")
    {
        let tail = out[at + "/content/".len() + schema..].to_owned();
        out.truncate(at);
        out.push_str(&tail);
    }
    out
}

/// A reason about the converted document in the original's terms (`#/definitions/Pet`
/// rather than `#/components/schemas/Pet`).
pub fn original_reason(doc: &Value, reason: &str) -> String {
    if !origin(doc).is_some_and(|v| v.starts_with("2.")) {
        return reason.to_owned();
    }
    reason
        .replace("#/components/schemas/", "#/definitions/")
        .replace("#/components/parameters/", "#/parameters/")
        .replace("#/components/responses/", "#/responses/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_recognised_and_marked() {
        let v3 = json!({"openapi": "3.0.3", "paths": {}});
        assert_eq!(normalise(v3.clone()), Ok(v3));
        let v31 = normalise(json!({"openapi": "3.1.0", "paths": {}})).expect("converts");
        assert_eq!(v31["openapi"], "3.0.3");
        assert_eq!(origin(&v31), Some("3.1.0"));
        let v2 = normalise(json!({"swagger": "2.0", "paths": {}})).expect("converts");
        assert_eq!(origin(&v2), Some("2.0"));
        assert!(normalise(json!({"swagger": "1.2"})).is_err());
        assert_eq!(
            original_pointer(&v2, "/components/schemas/Pet/type"),
            "/definitions/Pet/type"
        );
        assert_eq!(
            original_pointer(
                &v2,
                "/paths/~1a/get/responses/200/content/application~1json/schema/$ref"
            ),
            "/paths/~1a/get/responses/200/schema/$ref"
        );
    }
}
