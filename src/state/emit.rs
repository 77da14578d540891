//! Recording events: every change recorded once (for the API's events list and the admin
//! API) and queued as webhook deliveries to the targets that want its type.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::engine::Engine;
use super::events::{Change, Event};
use super::model::singular;
use super::store::{Body, Store};
use super::webhooks;
use crate::generate::{Generator, ids};
use crate::schema::Direction;

impl Engine {
    /// Records an event of a type the profile names (`emit` effects) and queues its
    /// webhook deliveries.
    pub(super) fn emit_typed(
        &self,
        store: &mut Store,
        tenant: &str,
        kind: &str,
        object: Map<String, Value>,
        at: f64,
    ) {
        let data = object_data(Value::Object(object));
        self.record_event(store, tenant, (kind.to_owned(), data, None), at);
    }

    /// Records an event and queues its webhook deliveries.
    pub(super) fn emit(
        &self,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        change: Change,
        object: &Map<String, Value>,
        at: f64,
    ) {
        let Some(kind) = self.event_kind(resource, &change) else {
            return;
        };
        // The object as the API shows the resource: members kept only for the sandbox
        // (links, balances, issued tokens) stay out of events.
        let shows = self.event_shown(resource, object.keys());
        let shown: Map<String, Value> = object
            .iter()
            .zip(shows)
            .filter(|(_, shown)| *shown)
            .map(|((k, v), _)| (k.clone(), v.clone()))
            .collect();
        self.emit_shown(store, tenant, (kind, change), (shown, None), at);
    }

    /// [`emit`](Self::emit) of an object the caller gives up, with the JSON text of its
    /// members that [`event_shown`](Self::event_shown) when the caller has it (a record
    /// drafted with it): the event keeps the object, and its text is not made again.
    pub(super) fn emit_owned(
        &self,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        change: Change,
        (mut object, text): (Map<String, Value>, Option<Bytes>),
        at: f64,
    ) {
        let Some(kind) = self.event_kind(resource, &change) else {
            return;
        };
        let shown = self.event_shown(resource, object.keys());
        let mut shown = shown.iter();
        object.retain(|_, _| shown.next().copied().unwrap_or(true));
        self.emit_shown(store, tenant, (kind, change), (object, text), at);
    }

    /// Which of a record's members (`names`, in order) events about `resource` show: those
    /// the API shows (links, balances, issued tokens the sandbox keeps stay out).
    pub(super) fn event_shown<'n>(
        &self,
        resource: &str,
        names: impl Iterator<Item = &'n String>,
    ) -> Vec<bool> {
        match self.model.resources.get(resource) {
            Some(r) if !r.members.is_empty() => r.shows_each(names),
            _ => names.map(|_| true).collect(),
        }
    }

    /// The type of the event `change` to a record of `resource` records, if it records one.
    fn event_kind(&self, resource: &str, change: &Change) -> Option<String> {
        if resource == "events" {
            return None;
        }
        let names = self.profile.events.get(resource);
        let configured = names.and_then(|n| match change {
            Change::Created => n.created.clone(),
            Change::Updated(_) => n.updated.clone(),
            Change::Deleted => n.deleted.clone(),
        });
        if configured.is_none() && !self.profile.undeclared_events {
            return None;
        }
        Some(configured.unwrap_or_else(|| format!("{}.{}", singular(resource), change.action())))
    }

    fn emit_shown(
        &self,
        store: &mut Store,
        tenant: &str,
        (kind, change): (String, Change),
        (shown, text): (Map<String, Value>, Option<Bytes>),
        at: f64,
    ) {
        // An object whose text is in hand stands in the event as a mark, which that text
        // replaces once the event is written out.
        let object = match &text {
            Some(_) => Value::String(OBJECT_MARK.clone()),
            None => Value::Object(shown),
        };
        let mut data = object_data(object);
        if let Change::Updated(previous) = change {
            data["previous_attributes"] = previous;
        }
        self.record_event(store, tenant, (kind, data, text), at);
    }

    /// Stores event `kind` with `data`, lists it in the API's events collection, and queues
    /// a delivery to every target that wants it. With `object_text`, `data` holds the
    /// object as [`OBJECT_MARK`], written out as that text.
    fn record_event(
        &self,
        store: &mut Store,
        tenant: &str,
        (kind, data, object_text): (String, Value, Option<Bytes>),
        at: f64,
    ) {
        let mut events = self.events.lock();
        let mut g = Generator::new(
            &Value::Null,
            self.seed,
            &format!("event {}", events.count()),
            Direction::Response,
        );
        let id = ids::ksuid(g.rng(), at.floor() as i64);
        let created = at.floor() as i64;
        let payload = webhooks::shaped_payload(
            &self.profile.webhooks,
            (&id, &kind, created, tenant),
            data,
            &self.profile.events_envelope,
        );
        let text = match &object_text {
            Some(object) => marked_json(&payload, object),
            None => crate::compiled::prepared::json_bytes(&payload),
        };
        let mut body = Body::from_json(text.clone());
        // APIs with an events collection list their events there too: the log shares the
        // body as stored there (packed).
        if self.model.resources.contains_key("events")
            && let Some(members) = payload.as_object()
        {
            let mut events = store.tenant(tenant);
            events.insert_body("events", &id, (body.clone(), members), None);
            if let Some(stored) = events.get("events", &id) {
                body = stored.body.clone();
            }
        }
        let urls = self.targets_for(store, tenant, &kind);
        if !urls.is_empty() {
            let max_attempts = self
                .profile
                .webhooks
                .max_attempts
                .unwrap_or(webhooks::DEFAULT_MAX_ATTEMPTS);
            let mut hooks = self.webhooks.lock();
            for (url, secret) in urls {
                let n = hooks.deliveries.len() + 1;
                hooks.deliveries.push(webhooks::Delivery {
                    id: format!("dlv_{n:08}"),
                    event_id: id.clone(),
                    event_type: kind.clone(),
                    tenant: tenant.to_owned(),
                    url,
                    status: "pending".into(),
                    attempts: 0,
                    max_attempts,
                    next_attempt_at: at,
                    response_code: None,
                    last_error: None,
                    replay: false,
                    created_at: at,
                    delivered_at: None,
                    body: text.clone(),
                    in_flight: false,
                    secret,
                });
            }
        }
        events.push(Event {
            id,
            kind,
            created,
            tenant: tenant.to_owned(),
            payload: body,
        });
    }

    /// Queues a webhook of `kind` to `url` (an address a record names, not a registered
    /// target) with `payload` as its body.
    pub(super) fn queue_delivery(
        &self,
        tenant: &str,
        url: &str,
        kind: &str,
        payload: &Value,
        at: f64,
    ) {
        let body = crate::compiled::prepared::json_bytes(payload);
        let max_attempts = self
            .profile
            .webhooks
            .max_attempts
            .unwrap_or(webhooks::DEFAULT_MAX_ATTEMPTS);
        let mut hooks = self.webhooks.lock();
        let n = hooks.deliveries.len() + 1;
        let id = format!("dlv_{n:08}");
        hooks.deliveries.push(webhooks::Delivery {
            event_id: id.clone(),
            id,
            event_type: kind.to_owned(),
            tenant: tenant.to_owned(),
            url: url.to_owned(),
            status: "pending".into(),
            attempts: 0,
            max_attempts,
            next_attempt_at: at,
            response_code: None,
            last_error: None,
            replay: false,
            created_at: at,
            delivered_at: None,
            body,
            in_flight: false,
            secret: None,
        });
    }

    /// URLs of the targets that want events of type `kind` from `tenant`.
    /// The URLs (with their own secrets, if any) that want events of `kind` in `tenant`.
    pub(super) fn targets_for(
        &self,
        store: &Store,
        tenant: &str,
        kind: &str,
    ) -> Vec<(String, Option<String>)> {
        let wants = |types: &[String]| types.is_empty() || types.iter().any(|t| t == kind);
        let mut urls: Vec<(String, Option<String>)> = self
            .webhooks
            .lock()
            .targets
            .iter()
            .filter(|t| t.tenant.as_deref().is_none_or(|x| x == tenant) && wants(&t.event_types))
            .map(|t| (t.url.clone(), t.secret.clone()))
            .collect();
        if let Some(resource) = &self.profile.webhooks.targets_resource {
            let records = store.collection(tenant, resource);
            for (_, r) in records.into_iter().flat_map(|m| m.iter()) {
                let body = r.body.map();
                let Some(url) = body.get("url").and_then(Value::as_str) else {
                    continue;
                };
                let global = body.get("global").and_then(Value::as_bool).unwrap_or(false);
                let types = webhooks::event_types(body.get("event_types"));
                if global
                    || types.iter().any(|t| t == kind)
                    || (body.get("global").is_none() && types.is_empty())
                {
                    urls.push((url.to_owned(), None));
                }
            }
        }
        urls
    }
}

/// An event's `data`: `{object}`. Built by hand: `json!` would copy the object by
/// serializing it into a new value.
fn object_data(object: Value) -> Value {
    let mut data = Map::new();
    data.insert("object".to_owned(), object);
    Value::Object(data)
}

/// What stands for an event's object whose text is in hand: a string no API value holds
/// (it starts with a control character and differs in every process).
static OBJECT_MARK: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("\u{1}sandbox-object-{nonce:x}-{}", std::process::id())
});

/// `payload` as compact JSON, with `object` (JSON text) wherever it holds [`OBJECT_MARK`].
fn marked_json(payload: &Value, object: &[u8]) -> Bytes {
    let text = serde_json::to_vec(payload).unwrap_or_default();
    static WRITTEN: std::sync::LazyLock<Vec<u8>> =
        std::sync::LazyLock::new(|| serde_json::to_vec(&*OBJECT_MARK).unwrap_or_default());
    let mark = WRITTEN.as_slice();
    let mut out = Vec::with_capacity(text.len() + object.len());
    let mut rest = text.as_slice();
    while let Some(at) = memchr::memmem::find(rest, mark) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(object);
        rest = &rest[at + mark.len()..];
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_objects_text_is_written_wherever_its_mark_stands() {
        let object = json!({"id": "cus_1", "name": "Ünïcode \"quoted\"", "tags": [1, 2]});
        let text = serde_json::to_vec(&object).unwrap_or_default();
        let mark = Value::String(OBJECT_MARK.clone());
        let payload = json!({"id": "evt_1", "data": {"object": mark}, "copy": [mark], "n": 3});
        let written: Value =
            serde_json::from_slice(&marked_json(&payload, &text)).unwrap_or(Value::Null);
        assert_eq!(
            written,
            json!({"id": "evt_1", "data": {"object": object}, "copy": [object], "n": 3})
        );
        // Without a mark the payload is written as it is.
        let plain = json!({"id": "evt_2", "data": {"object": {"a": 1}}});
        assert_eq!(
            &marked_json(&plain, &text)[..],
            &serde_json::to_vec(&plain).unwrap_or_default()[..]
        );
    }
}
