//! Where a `$ref` member is a reference. In an OpenAPI document most objects may be a
//! Reference Object, but not all: example values, defaults, enums and `x-` extensions are
//! data (a schema-registry API's example may well contain `{"$ref": ...}`), and the members
//! of `properties` are names (a property may be called `$ref`). Every walker that looks for
//! references asks this module, so all of them agree.

use serde_json::Value;

/// What kind of place a JSON object sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// Spec structure: a `$ref` member is a reference.
    Spec,
    /// A map from names to schemas (`properties`, `$defs`): its members are names.
    Names,
    /// A map from names to Example Objects (`examples` of a media type or parameter).
    Examples,
    /// An Example Object: its `value` is data.
    Example,
    /// Data: nothing below is a reference.
    Data,
}

impl Site {
    /// The site of the value under member `key` of an object at this site.
    pub fn child(self, key: &str, value: &Value) -> Site {
        match self {
            Site::Data => Site::Data,
            Site::Names => Site::Spec,
            Site::Examples => Site::Example,
            Site::Example if key == "value" => Site::Data,
            Site::Spec | Site::Example => match key {
                "example" | "default" | "enum" | "const" => Site::Data,
                k if k.starts_with("x-") => Site::Data,
                // A schema's `examples` is a list of values; elsewhere a map of examples.
                "examples" if value.is_array() => Site::Data,
                "examples" => Site::Examples,
                "properties" | "patternProperties" | "$defs" | "definitions"
                | "dependentSchemas" => Site::Names,
                _ => Site::Spec,
            },
        }
    }

    /// The reference an object at this site makes, if any.
    pub fn reference(self, map: &serde_json::Map<String, Value>) -> Option<&Value> {
        match self {
            Site::Spec | Site::Example => map.get("$ref"),
            Site::Names | Site::Examples | Site::Data => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refs_in_data_and_names_are_not_references() {
        let s = Site::Spec;
        assert_eq!(s.child("example", &json!({"$ref": "x"})), Site::Data);
        assert_eq!(s.child("examples", &json!([1])), Site::Data);
        let ex = s.child("examples", &json!({}));
        assert_eq!(ex.child("one", &json!({})), Site::Example);
        assert_eq!(Site::Example.child("value", &json!({})), Site::Data);
        let names = s.child("properties", &json!({}));
        assert!(
            names
                .reference(json!({"$ref": {}}).as_object().unwrap())
                .is_none()
        );
        assert_eq!(names.child("$ref", &json!({})), Site::Spec);
        assert!(
            s.reference(json!({"$ref": "#/a"}).as_object().unwrap())
                .is_some()
        );
    }
}
