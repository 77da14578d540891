//! Envelopes: a record sent or shown inside one member of the body (`{"data": {...}}`,
//! `{"message": "...", "bucket": {...}}`, `{"incident": {...}}`) rather than as the body
//! itself, and the identifier member a resource's records are known by (`id`, `_id`, `sid`,
//! `gid`, `<singular>_id`, ...). Both are worked out from the schemas alone; a profile can
//! still name them (`id_field`, `envelope`).

use serde_json::{Map, Value};

use super::names::{camel, singular};
use crate::generate::{Generator, flatten};
use crate::schema::Direction;
use crate::spec::Spec;
use crate::spec::pointer::{escape, resolve};

/// Where an operation's record sits in its response body.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The member holding the record.
    pub member: String,
    /// The record's own schema (inside the member).
    pub inner: String,
    /// The other members of the body, from the response's example or generated once.
    pub wrapper: Map<String, Value>,
}

impl Envelope {
    /// `shown` (the record as the inner schema shows it) wrapped in the body.
    pub fn wrap(&self, shown: Value) -> Value {
        let mut body = self.wrapper.clone();
        body.insert(self.member.clone(), shown);
        Value::Object(body)
    }
}

/// Member names that identify a record of `resource`, most telling first: the item path's
/// parameter, then the usual names.
pub fn id_candidates(resource: &str, param: Option<&str>) -> Vec<String> {
    let single = singular(resource);
    let mut out: Vec<String> = param.into_iter().map(str::to_owned).collect();
    out.extend(
        [
            "id".to_owned(),
            "_id".to_owned(),
            format!("{single}_id"),
            camel(&format!("{single}_id")),
        ]
        .into_iter()
        .chain(["sid", "gid", "uuid", "uid"].map(str::to_owned)),
    );
    out
}

/// Picks the identifier member among a record schema's members: a candidate by name (the
/// path parameter also case-insensitively, `{Sid}` for `sid`), else `None`.
pub fn id_member(members: &[String], resource: &str, param: Option<&str>) -> Option<String> {
    let candidates = id_candidates(resource, param);
    candidates
        .iter()
        .find(|c| members.contains(c))
        .or_else(|| {
            let p = param?.to_ascii_lowercase();
            members.iter().find(|m| m.to_ascii_lowercase() == p)
        })
        .cloned()
}

/// The pointer of the schema of member `member` of the object schema at `ptr`, following
/// `$ref`s and looking into `allOf` parts.
pub fn member_ptr(spec: &Spec, ptr: &str, member: &str) -> Option<String> {
    let (node, at) = resolve(&spec.doc, spec.at(ptr)?).ok()?;
    let here = at.unwrap_or_else(|| ptr.to_owned());
    if let Some(m) = node.get("properties").and_then(|p| p.get(member)) {
        let at = format!("{here}/properties/{}", escape(member));
        return Some(target(spec, m).unwrap_or(at));
    }
    // Later parts refine earlier ones (a generic page, then its typed `data`).
    let parts = node.get("allOf").and_then(Value::as_array)?;
    (0..parts.len())
        .rev()
        .find_map(|i| member_ptr(spec, &format!("{here}/allOf/{i}"), member))
}

/// The pointer of the item schema of the array schema at `ptr`.
pub fn items_ptr(spec: &Spec, ptr: &str) -> Option<String> {
    let (node, at) = resolve(&spec.doc, spec.at(ptr)?).ok()?;
    let here = at.unwrap_or_else(|| ptr.to_owned());
    let items = node.get("items")?;
    Some(target(spec, items).unwrap_or_else(|| format!("{here}/items")))
}

/// Where a `$ref` chain starting at `node` ends, if `node` is a reference.
fn target(spec: &Spec, node: &Value) -> Option<String> {
    let (_, at) = resolve(&spec.doc, node).ok()?;
    at
}

/// Whether the schema at `ptr` describes an object with members.
fn is_object(spec: &Spec, ptr: &str) -> bool {
    spec.at(ptr)
        .map(|s| flatten(&spec.doc, s))
        .is_some_and(|s| s.get("properties").is_some_and(Value::is_object))
}

/// Whether the schema at `ptr` describes an array.
fn is_array(spec: &Spec, ptr: &str) -> bool {
    spec.at(ptr)
        .map(|s| flatten(&spec.doc, s))
        .is_some_and(|s| s.get("type").and_then(Value::as_str) == Some("array"))
}

/// The member names an envelope around records of `resource` uses, most telling first.
fn envelope_names(resource: &str) -> Vec<String> {
    let single = singular(resource);
    let plain = resource.replace('-', "_");
    vec![
        single.clone(),
        camel(&single),
        plain.clone(),
        camel(&plain),
        "data".into(),
        "result".into(),
        "item".into(),
        "record".into(),
        "object".into(),
    ]
}

/// The object schema's property names.
fn properties(spec: &Spec, ptr: &str) -> Vec<String> {
    spec.at(ptr)
        .map(|s| flatten(&spec.doc, s))
        .and_then(|s| {
            s.get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
        })
        .unwrap_or_default()
}

/// Where a record of `resource` sits in the response schema at `ptr`: `None` when the
/// schema is the record itself; else the member holding it and the record's schema. A
/// schema with an identifier member is a record; otherwise the record is the object member
/// named like an envelope (`data`, the resource's singular...), or the only object member
/// that has an identifier of its own.
pub fn record_member(spec: &Spec, ptr: &str, resource: &str) -> Option<(String, String)> {
    let names = properties(spec, ptr);
    if names.is_empty() || id_member(&names, resource, None).is_some() {
        return None;
    }
    let object_member = |n: &String| {
        member_ptr(spec, ptr, n)
            .filter(|p| is_object(spec, p))
            .map(|p| (n.clone(), p))
    };
    if let Some(found) = envelope_names(resource)
        .iter()
        .filter(|n| names.contains(n))
        .find_map(object_member)
    {
        return Some(found);
    }
    let with_ids: Vec<(String, String)> = names
        .iter()
        .filter_map(object_member)
        .filter(|(_, p)| id_member(&properties(spec, p), resource, None).is_some())
        .collect();
    match with_ids.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Where the record sits in a request body schema: only a body of exactly one object member
/// named like an envelope (`{"data": {...}}`, `{"incident": {...}}`) is an envelope.
pub fn request_member(spec: &Spec, ptr: &str, resource: &str) -> Option<String> {
    let names = properties(spec, ptr);
    let [only] = names.as_slice() else {
        return None;
    };
    let inner = member_ptr(spec, ptr, only)?;
    (envelope_names(resource).contains(only) && is_object(spec, &inner)).then(|| only.clone())
}

/// The array members of a list schema whose items are records of the schema at
/// `item_ptr` (a page may carry the same array twice, as `buckets` and `data`).
pub fn array_members(spec: &Spec, list_ptr: &str, item_ptr: &str) -> Vec<String> {
    properties(spec, list_ptr)
        .into_iter()
        .filter(|n| {
            member_ptr(spec, list_ptr, n)
                .filter(|p| is_array(spec, p))
                .and_then(|p| items_ptr(spec, &p))
                .is_some_and(|i| i == item_ptr)
        })
        .collect()
}

/// The item schema of a list response: the array itself, or the array member named like
/// the resource's collection (`data`, `items`, the resource's name...), else the first.
pub fn list_items(spec: &Spec, list_ptr: &str, resource: &str) -> Option<String> {
    if is_array(spec, list_ptr) {
        return items_ptr(spec, list_ptr);
    }
    let names = properties(spec, list_ptr);
    let mut preferred = envelope_names(resource);
    preferred.extend(["items", "results", "records", "entries"].map(str::to_owned));
    let arrays: Vec<(String, String)> = names
        .iter()
        .filter_map(|n| {
            member_ptr(spec, list_ptr, n)
                .filter(|p| is_array(spec, p))
                .map(|p| (n.clone(), p))
        })
        .collect();
    let chosen = preferred
        .iter()
        .find_map(|want| arrays.iter().find(|(n, _)| n == want))
        .or_else(|| {
            arrays
                .iter()
                .find(|(_, p)| items_ptr(spec, p).is_some_and(|i| is_object(spec, &i)))
        })?;
    items_ptr(spec, &chosen.1)
}

/// The envelope of a response (with the record in `member`): its other members come from
/// the response's own example when it has one, else are generated once.
pub fn build(
    spec: &Spec,
    media_pointer: &str,
    outer: &str,
    member: String,
    inner: String,
) -> Envelope {
    let from_example = spec
        .at(media_pointer)
        .and_then(|m| {
            m.get("example").cloned().or_else(|| {
                m.get("examples")?
                    .as_object()?
                    .values()
                    .next()
                    .and_then(|e| resolve(&spec.doc, e).ok().map(|(v, _)| v.clone()))?
                    .get("value")
                    .cloned()
            })
        })
        .and_then(|e| e.as_object().cloned());
    let mut wrapper = from_example.unwrap_or_else(|| {
        Generator::for_spec(spec, 0, &format!("envelope {outer}"), Direction::Response)
            .value_at(outer)
            .as_object()
            .cloned()
            .unwrap_or_default()
    });
    wrapper.remove(&member);
    Envelope {
        member,
        inner,
        wrapper,
    }
}
