//! Recording events: every change recorded once (for the API's events list and the admin
//! API) and queued as webhook deliveries to the targets that want its type.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::engine::Engine;
use super::events::{self, Change, Event, Payload, Unwritten};
use super::model::singular;
use super::payload::{self, Head, Object};
use super::store::{Body, Meta, Store};
use super::webhooks;

/// What the caller of [`Engine::emit_text`] has of a record's JSON text.
pub(super) enum Text {
    None,
    /// The text of the members events show (a record drafted with it).
    Shown(Bytes),
    /// The record's whole text (as stored): the event's object when events show every
    /// member.
    Whole(Bytes),
}

impl Engine {
    /// Records an event of a type the profile names (`emit` effects, a behaviour's) about
    /// `object`, and queues its webhook deliveries.
    pub(super) fn emit_typed(
        &self,
        store: &mut Store,
        tenant: &str,
        kind: &str,
        object: &Object,
        at: f64,
    ) {
        self.record_event(store, tenant, kind, object, None, at);
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
        self.emit_text(store, tenant, resource, change, (object, Text::None), at);
    }

    /// [`emit`](Self::emit), with what the caller has of the object's JSON text: the event
    /// is written with that text rather than the members again.
    pub(super) fn emit_text(
        &self,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        change: Change,
        (object, text): (&Map<String, Value>, Text),
        at: f64,
    ) {
        let Some(kind) = self.event_kind(resource, &change) else {
            return;
        };
        let previous = match change {
            Change::Updated(previous) => Some(previous),
            Change::Created | Change::Deleted => None,
        };
        // The object as the API shows the resource: members kept only for the sandbox
        // (links, balances, issued tokens) stay out of events.
        let shows;
        let object = match &text {
            Text::Shown(text) => Object::Text(text),
            Text::Whole(_) | Text::None => {
                shows = self.event_shown(resource, object.keys());
                match &text {
                    Text::Whole(text) if shows.iter().all(|s| *s) => Object::Text(text),
                    _ => Object::Members(object, Some(&shows)),
                }
            }
        };
        self.record_event(store, tenant, &kind, &object, previous.as_ref(), at);
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

    /// Stores event `kind` about `object`, lists it in the API's events collection, and
    /// queues a delivery to every target that wants it.
    fn record_event(
        &self,
        store: &mut Store,
        tenant: &str,
        kind: &str,
        object: &Object,
        previous: Option<&Value>,
        at: f64,
    ) {
        let mut events = self.events.lock();
        let created = at.floor() as i64;
        let place = (self.seed, events.count());
        let listed = self.model.resources.contains_key("events");
        let urls = self.targets_for(store, tenant, kind);
        let event = match object {
            // Nobody receives or lists it now: written (and its id minted) if it is ever
            // asked for.
            Object::Text(text) if !listed && urls.is_empty() => {
                let payload = Payload::Later(Arc::new(Unwritten {
                    profile: self.profile.clone(),
                    object: Bytes::clone(text),
                    previous: previous.cloned(),
                }));
                Event::new(place, kind, created, tenant, payload)
            }
            _ => {
                let id = events::mint_id(place, created);
                let head = Head {
                    id: &id,
                    kind,
                    created,
                    tenant,
                };
                let text = payload::write_for(&self.profile, &head, object, previous);
                self.deliver_later(tenant, &id, kind, urls, &text, at);
                let body = Body::from_json(text);
                // APIs with an events collection list their events there too: the log
                // shares the body as stored there (packed).
                let body = match listed {
                    true => self.list_event(store, &head, body),
                    false => body,
                };
                Event::new(place, kind, created, tenant, Payload::Written(body)).minted(id)
            }
        };
        events.push(event);
    }

    /// Files event `head` with payload `body` in the API's events collection; the body as
    /// stored there (packed).
    fn list_event(&self, store: &mut Store, head: &Head, body: Body) -> Body {
        let members =
            payload::filed_members(&self.profile.webhooks, &self.profile.events_envelope, head);
        let mut events = store.tenant(head.tenant);
        events.insert_body(
            "events",
            head.id,
            (body.clone(), &members),
            Meta::default(),
            None,
        );
        events
            .get("events", head.id)
            .map_or(body, |stored| stored.body.clone())
    }

    /// Queues a delivery of event `id` (`text`) to each of `urls`.
    fn deliver_later(
        &self,
        tenant: &str,
        id: &str,
        kind: &str,
        urls: Vec<(String, Option<String>)>,
        text: &Bytes,
        at: f64,
    ) {
        if urls.is_empty() {
            return;
        }
        let max_attempts = self.max_attempts();
        let event = webhooks::Outgoing {
            event_id: Some(id),
            kind,
            tenant,
            body: text,
        };
        let mut hooks = self.webhooks.lock();
        for target in urls {
            hooks.queue(&event, target, (at, max_attempts, false));
        }
    }

    /// How many times a delivery is tried: the profile's count, else the sandbox's.
    pub(super) fn max_attempts(&self) -> u32 {
        self.profile
            .webhooks
            .max_attempts
            .unwrap_or(webhooks::DEFAULT_MAX_ATTEMPTS)
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
        let max_attempts = self.max_attempts();
        let event = webhooks::Outgoing {
            event_id: None,
            kind,
            tenant,
            body: &body,
        };
        let target = (url.to_owned(), None);
        self.webhooks
            .lock()
            .queue(&event, target, (at, max_attempts, false));
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
