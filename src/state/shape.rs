//! The shape of stored records and of the bodies built from them. A new record is the
//! validated request body laid over a body generated from the resource's schema, with the
//! id, parent link and timestamps set by the server. A response is the record projected
//! onto the response's own schema; members the schemas it is shown through need are
//! generated when the record is made and stored with it, and anything else a schema asks for
//! is generated from the record's key, so reads never change a record and always agree.
//! Anything that would break a schema falls back to the generated value.

use jsonschema::Validator;
use serde_json::{Map, Value, json};

use crate::generate::{Generator, flatten};
use crate::schema::{Direction, violations};
use crate::spec::Spec;

/// Member names the server owns and stamps with the current time.
const CREATED: [&str; 5] = [
    "created_at",
    "createdAt",
    "created",
    "date_created",
    "dateCreated",
];
const UPDATED: [&str; 5] = [
    "updated_at",
    "updatedAt",
    "updated",
    "date_updated",
    "dateUpdated",
];

/// The schema at `schema_ptr` flattened (`$ref`s followed, `allOf` merged), once per
/// pointer: creates ask for the same few schemas on every request.
pub fn flat(spec: &Spec, schema_ptr: &str) -> Option<std::sync::Arc<Value>> {
    spec.derived.get_or(schema_ptr, || {
        Some(flatten(&spec.doc, spec.at(schema_ptr)?))
    })
}

/// A schema's property names, which of them are required, and each one's schema, worked out
/// once per schema.
#[derive(Debug, Clone)]
pub struct Members {
    pub names: Vec<String>,
    pub required: Vec<String>,
    /// Each property's schema, `$ref`s followed and `allOf` merged.
    pub schemas: Map<String, Value>,
}

impl Members {
    /// `None` for a free-form schema (or a union, whose branches have the members).
    pub fn of(spec: &Spec, schema_ptr: &str) -> Option<Self> {
        let flat = flat(spec, schema_ptr)?;
        let props = flat.get("properties")?.as_object()?;
        Some(Self {
            names: props.keys().cloned().collect(),
            required: required_names(spec, schema_ptr),
            schemas: props
                .iter()
                .map(|(k, v)| (k.clone(), flatten(&spec.doc, v)))
                .collect(),
        })
    }
}

/// The names of a schema's required properties.
pub fn required_names(spec: &Spec, schema_ptr: &str) -> Vec<String> {
    flat(spec, schema_ptr)
        .and_then(|f| f.get("required").and_then(Value::as_array).cloned())
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// For a discriminated union, the branch a body belongs to (by its discriminator value);
/// otherwise the schema itself.
pub fn branch(spec: &Spec, schema_ptr: &str, body: Option<&Map<String, Value>>) -> String {
    let Some(flat) = flat(spec, schema_ptr) else {
        return schema_ptr.to_owned();
    };
    let Some(d) = flat.get("discriminator") else {
        return schema_ptr.to_owned();
    };
    let value = d
        .get("propertyName")
        .and_then(Value::as_str)
        .and_then(|p| body?.get(p))
        .and_then(Value::as_str);
    value
        .and_then(|v| d.get("mapping")?.get(v)?.as_str())
        .and_then(crate::spec::pointer::fragment_to_pointer)
        .unwrap_or_else(|| schema_ptr.to_owned())
}

/// A time value in the format the schema gives the member: unix seconds for integers,
/// RFC 3339 for strings.
pub fn timestamp_for(spec: &Spec, schema_ptr: &str, member: &str, unix: i64) -> Value {
    stamp(in_seconds(spec, schema_ptr, member), unix)
}

/// `unix` as a number (`in_seconds`) or as RFC 3339 text.
fn stamp(in_seconds: bool, unix: i64) -> Value {
    thread_local! {
        /// The last second written, and how: a busy sandbox stamps one second thousands of
        /// times (each record made gets two or three stamps).
        static LAST: std::cell::RefCell<(i64, String)> =
            const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    if in_seconds {
        return json!(unix);
    }
    LAST.with_borrow_mut(|(second, text)| {
        if *second != unix {
            *text = chrono::DateTime::from_timestamp(unix, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            *second = unix;
        }
        Value::String(text.clone())
    })
}

/// Whether member `member` of the schema at `schema_ptr` holds a number (unix seconds).
fn in_seconds(spec: &Spec, schema_ptr: &str, member: &str) -> bool {
    let schema = flat(spec, schema_ptr);
    let member_schema = schema
        .as_deref()
        .and_then(|f| f.get("properties"))
        .and_then(|p| p.get(member));
    // The member's type may come through a `$ref` (followed here) or an `allOf` (merged
    // once, cached under a key of its own: only such a member pays for formatting it).
    let numeric = |s: &Value| {
        matches!(
            s.get("type").and_then(Value::as_str),
            Some("integer" | "number")
        )
    };
    member_schema.is_some_and(|m| {
        let resolved = crate::spec::pointer::target(&spec.doc, m).unwrap_or(m);
        match resolved.get("allOf") {
            Some(_) => {
                let key = format!("{schema_ptr} member {member}");
                spec.derived
                    .get_or(&key, || Some(flatten(&spec.doc, resolved)))
                    .is_some_and(|merged| numeric(&merged))
            }
            None => numeric(resolved),
        }
    })
}

/// The members of the schema at `schema_ptr` that the server stamps with the time
/// ([`CREATED`], [`UPDATED`]), each with whether it holds unix seconds: `{name: bool}`,
/// worked out once per schema rather than looked up on every new record.
fn time_members(spec: &Spec, schema_ptr: &str) -> Option<std::sync::Arc<Value>> {
    spec.derived
        .get_or(&format!("{schema_ptr} time members"), || {
            let flat = flat(spec, schema_ptr)?;
            let names = flat.get("properties")?.as_object()?;
            let members = CREATED
                .iter()
                .chain(&UPDATED)
                .filter(|m| names.contains_key(**m))
                .map(|m| ((*m).to_owned(), in_seconds(spec, schema_ptr, m).into()))
                .collect();
            Some(Value::Object(members))
        })
}

pub struct NewRecord<'a> {
    pub spec: &'a Spec,
    pub schema: Option<&'a str>,
    pub validator: Option<&'a Validator>,
    pub seed: u64,
    /// Seeds this record's generated members (tenant, resource and sequence number).
    pub key: String,
    pub now: i64,
    /// Generate optional members nobody sent (else only required ones).
    pub generate_optional: bool,
    /// The schema's members checked one by one, when its record may be checked so.
    pub checks: Option<std::sync::Arc<MemberChecks>>,
}

/// Validators of a plain object schema's properties (`type`, `properties`, `required` and
/// annotations, nothing that relates members to each other): a record generated for it
/// then fits it when each member that was not generated (sent, fixed, a timestamp) fits
/// its property. Checking those few instead of the whole record is what a create saves;
/// generated members are not checked again (a repair would only generate them again).
pub struct MemberChecks {
    properties: std::collections::HashMap<String, std::sync::Arc<Validator>>,
}

/// Keywords an object schema may carry and still be checked member by member.
const PLAIN_KEYWORDS: [&str; 12] = [
    "type",
    "properties",
    "required",
    "description",
    "title",
    "example",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "nullable",
    "externalDocs",
];

impl MemberChecks {
    /// The checks of the schema at `schema_ptr` (through `$ref`s), `None` unless it is a
    /// plain object schema whose every property compiles.
    pub fn of(
        spec: &Spec,
        schema_ptr: &str,
        compile: impl Fn(&str) -> Option<std::sync::Arc<Validator>>,
    ) -> Option<Self> {
        let mut ptr = schema_ptr.to_owned();
        let mut node = spec.at(&ptr)?;
        for _ in 0..8 {
            let Some(target) = crate::spec::pointer::ref_of(node) else {
                break;
            };
            ptr = target.strip_prefix('#')?.to_owned();
            node = spec.at(&ptr)?;
        }
        let map = node.as_object()?;
        let plain = map.iter().all(|(k, v)| {
            PLAIN_KEYWORDS.contains(&k.as_str())
                || k.starts_with("x-")
                || (k == "additionalProperties" && *v == Value::Bool(true))
        });
        let typed = map.get("type").is_none_or(|t| t == "object");
        let props = map.get("properties")?.as_object()?;
        if !plain || !typed {
            return None;
        }
        let properties = props
            .keys()
            .map(|name| {
                let at = crate::spec::pointer::join(&format!("{ptr}/properties"), name);
                Some((name.clone(), compile(&at)?))
            })
            .collect::<Option<_>>()?;
        Some(Self { properties })
    }

    /// Whether each of `members` that `record` holds fits its property (a member the
    /// schema does not name fits: the schema allows others).
    fn fit<'m>(
        &self,
        record: &Map<String, Value>,
        members: impl IntoIterator<Item = &'m str>,
    ) -> bool {
        members
            .into_iter()
            .all(|name| match (record.get(name), self.properties.get(name)) {
                (Some(v), Some(check)) => check.is_valid(v),
                _ => true,
            })
    }
}

/// The members a client (or a behaviour) sent for a new record.
enum Sent<'a> {
    Borrowed(&'a Map<String, Value>),
    Owned(Map<String, Value>),
}

impl NewRecord<'_> {
    /// Builds a record body from the request body; `fixed` members (id, parent link) win.
    pub fn build(
        &self,
        body: Option<&Value>,
        fixed: &[(String, Value)],
        keep_created: Option<&Value>,
    ) -> Map<String, Value> {
        let sent = body.and_then(Value::as_object).map(Sent::Borrowed);
        self.assemble(sent, fixed, keep_created)
    }

    /// [`build`](Self::build) from members the caller gives up (a behaviour's new record):
    /// they become the record rather than being copied into it.
    pub fn build_owned(
        &self,
        body: Map<String, Value>,
        fixed: &[(String, Value)],
        keep_created: Option<&Value>,
    ) -> Map<String, Value> {
        self.assemble(Some(Sent::Owned(body)), fixed, keep_created)
    }

    fn assemble(
        &self,
        sent: Option<Sent<'_>>,
        fixed: &[(String, Value)],
        keep_created: Option<&Value>,
    ) -> Map<String, Value> {
        let sent_members = sent.as_ref().map(|s| match s {
            Sent::Borrowed(m) => *m,
            Sent::Owned(m) => m,
        });
        let sent_names: Vec<String> = match (&sent_members, &self.checks) {
            (Some(m), Some(_)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let schema = self.schema.map(|s| branch(self.spec, s, sent_members));
        let schema = schema.as_deref();
        let generate = || {
            schema.map_or(Value::Null, |s| {
                Generator::for_spec(self.spec, self.seed, &self.key, Direction::Response)
                    .value_at(s)
            })
        };
        // Without optional generation, required members are filled once the record's own
        // rules ran, so those rules (`derive`) see only what the client sent.
        // The generated body is the record to start from: moved, not copied. Should a sent
        // member need repairing, the same values are generated again (same key, same
        // stream), which is rarer than a copy on every create.
        let mut record = match self.generate_optional.then(generate) {
            Some(Value::Object(generated)) => generated,
            _ => Map::new(),
        };
        // The schema's members, looked up in its flattened form (not copied out).
        let flattened = schema.and_then(|s| flat(self.spec, s));
        let names = flattened
            .as_deref()
            .and_then(|f| f.get("properties"))
            .and_then(Value::as_object);
        // Everything the client sent is kept (filters may name it), even members the read
        // schema does not show; responses only ever show their own schema's members.
        match sent {
            Some(Sent::Owned(sent)) if record.is_empty() => record = sent,
            Some(Sent::Owned(sent)) => record.extend(sent),
            Some(Sent::Borrowed(sent)) => {
                for (k, v) in sent {
                    record.insert(k.clone(), v.clone());
                }
            }
            None => {}
        }
        for (k, v) in fixed {
            if names.is_none_or(|n| n.contains_key(k)) || k == "id" {
                record.insert(k.clone(), v.clone());
            }
        }
        let times = schema.and_then(|s| time_members(self.spec, s));
        for (member, in_seconds) in times
            .as_deref()
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let value = match (keep_created, CREATED.contains(&member.as_str())) {
                (Some(old), true) => old.clone(),
                _ => stamp(in_seconds.as_bool() == Some(true), self.now),
            };
            record.insert(member.clone(), value);
        }
        if self.generate_optional {
            // What was not generated: the members sent, fixed and stamped.
            let changed = sent_names
                .iter()
                .map(String::as_str)
                .chain(fixed.iter().map(|(k, _)| k.as_str()))
                .chain(CREATED.iter().chain(&UPDATED).copied());
            let fits = self
                .checks
                .as_ref()
                .is_some_and(|c| c.fit(&record, changed));
            if let Some(v) = self.validator
                && !fits
                && !valid(v, &mut record)
            {
                repair(&mut record, generate().as_object(), self.validator, fixed);
            }
        } else if self.validator.is_some_and(|v| misfits(v, &mut record)) {
            // Fix what is there; what is missing is filled later.
            let generated = generate();
            let present: Map<String, Value> = generated
                .as_object()
                .map(|g| {
                    g.iter()
                        .filter(|(k, _)| record.contains_key(*k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            repair(&mut record, Some(&present), self.validator, fixed);
        }
        record
    }
}

/// Whether a member `record` holds breaks its schema (a missing required member does not
/// count: it is filled later).
fn misfits(validator: &Validator, record: &mut Map<String, Value>) -> bool {
    if valid(validator, record) {
        return false;
    }
    violations(validator, &Value::Object(record.clone()))
        .iter()
        .any(|p| p.keyword != "required" || p.pointer.matches('/').count() > 1)
}

/// Whether `record` is valid: the quick check (no error messages made, the members moved
/// into a value and back rather than copied) that most records pass.
pub(super) fn valid(validator: &Validator, record: &mut Map<String, Value>) -> bool {
    let value = Value::Object(std::mem::take(record));
    let ok = validator.is_valid(&value);
    if let Value::Object(members) = value {
        *record = members;
    }
    ok
}

/// Replaces top-level members that make `record` invalid with their generated values
/// (a request field whose write shape differs from the read shape, for instance).
pub fn repair(
    record: &mut Map<String, Value>,
    generated: Option<&Map<String, Value>>,
    validator: Option<&Validator>,
    fixed: &[(String, Value)],
) {
    let Some(v) = validator else { return };
    for _ in 0..4 {
        if valid(v, record) {
            return;
        }
        let value = Value::Object(record.clone());
        let problems = violations(v, &value);
        if problems.is_empty() {
            return;
        }
        let mut changed = false;
        for p in problems {
            let Some(top) = p
                .pointer
                .split('/')
                .nth(1)
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
            else {
                continue;
            };
            if fixed.iter().any(|(k, _)| *k == top) {
                continue;
            }
            match generated.and_then(|g| g.get(&top)) {
                Some(g) if record.get(&top) != Some(g) => {
                    record.insert(top, g.clone());
                    changed = true;
                }
                None if p.keyword != "required" => {
                    record.remove(&top);
                    changed = true;
                }
                _ => {}
            }
        }
        if !changed {
            return;
        }
    }
}

/// How records are shown: which seed generated members come from, and whether optional
/// members are generated at all.
#[derive(Clone, Copy)]
pub struct Shown<'a> {
    pub spec: &'a Spec,
    pub seed: u64,
    pub generate_optional: bool,
}

impl Shown<'_> {
    /// The record `key` (tenant/resource/id) projected onto the response schema at
    /// `schema_ptr`: its members, by name, in the schema's order. Members the schema asks
    /// for and the record lacks are generated from the record's key and the schema, so every
    /// read shows the same values; the record itself never changes when it is shown.
    pub fn project(
        &self,
        key: &str,
        schema_ptr: &str,
        record: &Map<String, Value>,
        validator: Option<&Validator>,
        members: Option<&Members>,
    ) -> Value {
        // A union has no members of its own: its branch, chosen by the discriminator, does.
        let branch_members;
        let (schema_ptr, members) = match members {
            Some(m) => (schema_ptr.to_owned(), m),
            None => {
                let b = branch(self.spec, schema_ptr, Some(record));
                if b == schema_ptr {
                    return Value::Object(record.clone());
                }
                match Members::of(self.spec, &b) {
                    Some(m) => {
                        branch_members = m;
                        (b, &branch_members)
                    }
                    None => return Value::Object(record.clone()),
                }
            }
        };
        let mut generated: Option<Map<String, Value>> = None;
        let mut out = Map::new();
        for name in &members.names {
            if let Some(v) = record.get(name) {
                out.insert(name.clone(), v.clone());
                continue;
            }
            if !self.generate_optional && !members.required.contains(name) {
                continue;
            }
            let g = generated.get_or_insert_with(|| self.generate(key, &schema_ptr));
            if let Some(v) = g.get(name) {
                out.insert(name.clone(), v.clone());
            }
        }
        if validator.is_some_and(|v| !valid(v, &mut out)) {
            let g = generated
                .get_or_insert_with(|| self.generate(key, &schema_ptr))
                .clone();
            repair(&mut out, Some(&g), validator, &[]);
        }
        Value::Object(out)
    }

    /// The value of member `name` (schema `member`) of the record `key`, as schema
    /// `schema_ptr` shows it, when the record lacks it: added to the record when it is
    /// made, so it is stored once and every later read (and the events of later changes)
    /// agree.
    pub fn member(&self, key: &str, schema_ptr: &str, name: &str, member: &Value) -> Value {
        let mut g = Generator::for_spec(
            self.spec,
            self.seed,
            &format!("{key} {schema_ptr} {name}"),
            Direction::Response,
        );
        g.member(name, member)
    }

    fn generate(&self, key: &str, schema_ptr: &str) -> Map<String, Value> {
        Generator::for_spec(
            self.spec,
            self.seed,
            &format!("{key} {schema_ptr}"),
            Direction::Response,
        )
        .value_at(schema_ptr)
        .as_object()
        .cloned()
        .unwrap_or_default()
    }
}

/// The pointer of the item schema of array member `member` of the schema at `schema`, when
/// the items are a `$ref` (how embedded records are shown).
pub fn item_schema(spec: &Spec, schema: &str, member: &str) -> Option<String> {
    let flat = flat(spec, schema)?;
    let items = flat.get("properties")?.get(member)?.get("items")?;
    items
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(crate::spec::pointer::fragment_to_pointer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaSet;
    use serde_json::json;

    fn spec() -> Spec {
        let doc = json!({
            "openapi": "3.0.3",
            "info": {"title": "t", "version": "1"},
            "paths": {},
            "components": {"schemas": {
                "Plain": {"$ref": "#/components/schemas/Customer"},
                "Customer": {
                    "type": "object",
                    "description": "a customer",
                    "required": ["id", "name"],
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string", "minLength": 1},
                        "kind": {"type": "string", "enum": ["business", "person"]}
                    }
                },
                "Closed": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {"id": {"type": "string"}}
                },
                "Union": {"oneOf": [{"$ref": "#/components/schemas/Customer"}]}
            }}
        });
        Spec::from_document(std::path::Path::new("t.yaml"), doc).expect("spec")
    }

    fn checks(spec: &Spec, ptr: &str) -> Option<MemberChecks> {
        let schemas = SchemaSet::new(&spec.doc).expect("schemas");
        MemberChecks::of(spec, ptr, |p| {
            schemas
                .compile(Direction::Response, p)
                .ok()
                .map(std::sync::Arc::new)
        })
    }

    #[test]
    fn plain_object_schemas_are_checked_member_by_member() {
        let spec = spec();
        let plain = checks(&spec, "/components/schemas/Plain");
        let Some(plain) = plain else {
            panic!("a plain object schema behind a $ref is checked member by member");
        };
        let record = json!({"id": "c1", "name": "", "kind": "business", "extra": 1});
        let record = record.as_object().cloned().unwrap_or_default();
        assert!(plain.fit(&record, ["id", "kind", "extra"]));
        assert!(
            !plain.fit(&record, ["name"]),
            "an empty name breaks minLength"
        );
        let wrong = json!({"kind": "robot"});
        let wrong = wrong.as_object().cloned().unwrap_or_default();
        assert!(!plain.fit(&wrong, ["kind"]));
        // Schemas that relate members or refuse others are checked whole.
        assert!(checks(&spec, "/components/schemas/Closed").is_none());
        assert!(checks(&spec, "/components/schemas/Union").is_none());
    }
}
