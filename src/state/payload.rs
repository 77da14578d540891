//! An event's payload, written straight into the JSON text that webhooks carry and event
//! lists show: the profile's template (`webhooks.payload`, whose strings may name `{id}`,
//! `{type}`, `{created}`, `{created_iso}` and `{tenant}`, and whose `"{data}"` is the event's
//! data), or the sandbox's own shape (`id`, `type`, `created`, the profile's envelope
//! members, then `data`).
//!
//! Written, not built as a `Value` and then serialized: an event is recorded for every
//! change, and the object it carries is in hand already, as a record's members or as the
//! text drafted for the record.

use std::collections::BTreeMap;
use std::io::Write as _;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::profile::{Profile, WebhookProfile};

/// The object an event carries, as its caller has it.
pub enum Object<'a> {
    /// Its JSON text.
    Text(&'a Bytes),
    /// A record's members, and which of them the event shows (`None`: every one).
    Members(&'a Map<String, Value>, Option<&'a [bool]>),
}

impl Object<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Object::Text(text) => out.extend_from_slice(text),
            Object::Members(members, shown) => {
                out.push(b'{');
                let mut first = true;
                for (i, (k, v)) in members.iter().enumerate() {
                    if shown.is_some_and(|s| !s.get(i).copied().unwrap_or(true)) {
                        continue;
                    }
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    member(out, k, v);
                }
                out.push(b'}');
            }
        }
    }

    /// A rough size of its text, to reserve room for the payload.
    fn size_hint(&self) -> usize {
        match self {
            Object::Text(text) => text.len(),
            Object::Members(members, _) => members.len() * 32,
        }
    }
}

/// What an event is, apart from its data.
pub struct Head<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    /// Unix seconds.
    pub created: i64,
    pub tenant: &'a str,
}

/// [`write`] with the envelope and webhook settings of `profile`.
pub fn write_for(
    profile: &Profile,
    head: &Head,
    object: &Object,
    previous: Option<&Value>,
) -> Bytes {
    let text = write(
        &profile.webhooks,
        &profile.events_envelope,
        head,
        object,
        previous,
    );
    Bytes::from(text)
}

/// The event's payload text: `object` (and, for an update, the members' `previous` values)
/// as its data, in the API's shape.
fn write(
    hooks: &WebhookProfile,
    envelope: &BTreeMap<String, Value>,
    head: &Head,
    object: &Object,
    previous: Option<&Value>,
) -> Vec<u8> {
    // The event family's object goes under the member the profile names (`spend`), alone.
    let named = hooks.data_members.iter().find_map(|(prefix, member)| {
        head.kind
            .strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.starts_with('.'))
            .then_some(member.as_str())
    });
    let data = Data {
        member: named.unwrap_or("object"),
        object,
        previous: previous.filter(|_| named.is_none()),
    };
    let mut out = Vec::with_capacity(192 + object.size_hint());
    match &hooks.payload {
        Some(template) => {
            let vars = Vars::of(head);
            write_template(&mut out, template, &vars, &data);
        }
        None => {
            out.extend_from_slice(b"{\"id\":");
            string(&mut out, head.id);
            out.extend_from_slice(b",\"type\":");
            string(&mut out, head.kind);
            let _ = write!(out, ",\"created\":{}", head.created);
            for (k, v) in envelope {
                if !matches!(k.as_str(), "id" | "type" | "created" | "data") {
                    out.push(b',');
                    member(&mut out, k, v);
                }
            }
            out.extend_from_slice(b",\"data\":");
            data.write(&mut out);
            out.push(b'}');
        }
    }
    out
}

/// An event's `data`: `{object}` (with `previous_attributes` after an update), or
/// `{<member>: object}` for a family the profile names.
struct Data<'a> {
    member: &'a str,
    object: &'a Object<'a>,
    previous: Option<&'a Value>,
}

impl Data<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        string(out, self.member);
        out.push(b':');
        self.object.write(out);
        if let Some(previous) = self.previous {
            out.push(b',');
            member(out, "previous_attributes", previous);
        }
        out.push(b'}');
    }
}

/// The values a template's placeholders stand for.
struct Vars<'a> {
    values: [(&'static str, std::borrow::Cow<'a, str>); 5],
}

impl<'a> Vars<'a> {
    fn of(head: &Head<'a>) -> Self {
        let iso = chrono::DateTime::from_timestamp(head.created, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        Self {
            values: [
                ("{id}", head.id.into()),
                ("{type}", head.kind.into()),
                ("{created}", head.created.to_string().into()),
                ("{created_iso}", iso.into()),
                ("{tenant}", head.tenant.into()),
            ],
        }
    }

    /// `text` with every placeholder it names replaced by its value.
    fn expand(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 32);
        let mut rest = text;
        while let Some(at) = rest.find('{') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            match self.values.iter().find(|(name, _)| tail.starts_with(name)) {
                Some((name, value)) => {
                    out.push_str(value);
                    rest = &tail[name.len()..];
                }
                None => {
                    out.push('{');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

fn write_template(out: &mut Vec<u8>, template: &Map<String, Value>, vars: &Vars, data: &Data) {
    out.push(b'{');
    for (i, (k, v)) in template.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        match v {
            Value::String(s) if s == "{data}" => data.write(out),
            Value::String(s) if s.contains('{') => string(out, &vars.expand(s)),
            Value::Object(m) => write_template(out, m, vars, data),
            other => value(out, other),
        }
    }
    out.push(b'}');
}

/// The payload's members, for filing it in an API's events collection: as [`write`] writes
/// them, except the event's data, which stands as `null` (no list filters events by their
/// data, and the members are not read back from the text).
pub fn filed_members(
    hooks: &WebhookProfile,
    envelope: &BTreeMap<String, Value>,
    head: &Head,
) -> Map<String, Value> {
    match &hooks.payload {
        Some(template) => filled(template, &Vars::of(head)),
        None => {
            let mut members = Map::new();
            members.insert("id".into(), head.id.into());
            members.insert("type".into(), head.kind.into());
            members.insert("created".into(), head.created.into());
            for (k, v) in envelope {
                if !matches!(k.as_str(), "id" | "type" | "created" | "data") {
                    members.insert(k.clone(), v.clone());
                }
            }
            members.insert("data".into(), Value::Null);
            members
        }
    }
}

/// A template's members with its placeholders filled, its data left `null`.
fn filled(template: &Map<String, Value>, vars: &Vars) -> Map<String, Value> {
    template
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) if s == "{data}" => Value::Null,
                Value::String(s) if s.contains('{') => Value::String(vars.expand(s)),
                Value::Object(m) => Value::Object(filled(m, vars)),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn member(out: &mut Vec<u8>, key: &str, v: &Value) {
    string(out, key);
    out.push(b':');
    value(out, v);
}

fn string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn value(out: &mut Vec<u8>, v: &Value) {
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn head() -> Head<'static> {
        Head {
            id: "evt_1",
            kind: "spend_request.approved",
            created: 1_764_979_200,
            tenant: "acme",
        }
    }

    fn written(hooks: &WebhookProfile, envelope: &BTreeMap<String, Value>, o: &Object) -> Value {
        let text = write(
            hooks,
            envelope,
            &head(),
            o,
            Some(&json!({"status": "pending"})),
        );
        serde_json::from_slice(&text).unwrap_or(Value::Null)
    }

    /// The sandbox's shape: the engine's members first, envelope members after (never
    /// replacing them), then data with the previous values of an update.
    #[test]
    fn the_sandboxs_shape_puts_envelope_members_before_data() {
        let envelope = BTreeMap::from([
            ("api_version".to_owned(), json!("1.0.0")),
            ("id".to_owned(), json!("not-the-id")),
        ]);
        let record = json!({"id": "req_1", "status": "approved"});
        let members = record.as_object().cloned().unwrap_or_default();
        let text = write(
            &WebhookProfile::default(),
            &envelope,
            &head(),
            &Object::Members(&members, None),
            Some(&json!({"status": "pending"})),
        );
        assert_eq!(
            String::from_utf8_lossy(&text),
            r#"{"id":"evt_1","type":"spend_request.approved","created":1764979200,"api_version":"1.0.0","data":{"object":{"id":"req_1","status":"approved"},"previous_attributes":{"status":"pending"}}}"#
        );
        // Filed in an events collection by the members written, its data left null.
        let written: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        let mut filed = written.as_object().cloned().unwrap_or_default();
        filed.insert("data".into(), Value::Null);
        assert_eq!(
            filed_members(&WebhookProfile::default(), &envelope, &head()),
            filed
        );
    }

    /// A template's placeholders are filled wherever they stand, its other values are kept,
    /// and a named family's object stands alone under its member.
    #[test]
    fn a_template_is_filled_and_a_named_family_gets_its_member() {
        let template = json!({
            "id": "{id}",
            "type": "{type}",
            "occurred_at": "{created_iso}",
            "about": {"tenant": "team {tenant} at {created}", "braces": "{not a placeholder}"},
            "version": 2,
            "data": "{data}",
        });
        let hooks = WebhookProfile {
            payload: template.as_object().cloned(),
            data_members: BTreeMap::from([("spend_request".to_owned(), "spend".to_owned())]),
            ..WebhookProfile::default()
        };
        let object = Bytes::from_static(br#"{"id":"req_1","note":"\"quoted\" \u00fc"}"#);
        assert_eq!(
            written(&hooks, &BTreeMap::new(), &Object::Text(&object)),
            json!({
                "id": "evt_1",
                "type": "spend_request.approved",
                "occurred_at": "2025-12-06T00:00:00.000Z",
                "about": {"tenant": "team acme at 1764979200", "braces": "{not a placeholder}"},
                "version": 2,
                "data": {"spend": {"id": "req_1", "note": "\"quoted\" ü"}},
            })
        );
        let filed = filed_members(&hooks, &BTreeMap::new(), &head());
        assert_eq!(filed["about"]["tenant"], "team acme at 1764979200");
        assert_eq!(filed["data"], Value::Null);
    }

    /// Members an event does not show stay out of its object.
    #[test]
    fn only_shown_members_are_written() {
        let record = json!({"id": "cus_1", "secret": "s", "name": "Ünïcode"});
        let members = record.as_object().cloned().unwrap_or_default();
        let shown = [true, false, true];
        let payload = written(
            &WebhookProfile::default(),
            &BTreeMap::new(),
            &Object::Members(&members, Some(&shown)),
        );
        assert_eq!(
            payload["data"]["object"],
            json!({"id": "cus_1", "name": "Ünïcode"})
        );
    }
}
