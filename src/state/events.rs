//! Events as the engine records them: one per create, update, delete or lifecycle
//! transition (and per `emit` effect), listed by the admin API and the API's own events
//! operation, and delivered as webhooks. An event keeps its payload as the bytes a webhook
//! carries; the events list, the API's events collection and every delivery share them.
//!
//! The engine keeps the most recent events ([`EventLog`], 10,000 by default): a load test
//! that records millions does not grow memory without bound. An API's own events collection
//! is state and keeps every event.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::payload::{self, Head, Object};
use super::store::Body;
use crate::generate::{Generator, ids};
use crate::profile::Profile;
use crate::schema::Direction;

/// One recorded change.
#[derive(Debug, Clone)]
pub struct Event {
    id: EventId,
    pub kind: String,
    pub created: i64,
    pub tenant: String,
    pub payload: Payload,
}

/// An event's payload as delivered: `{id, type, created, ...envelope, data}`.
#[derive(Clone)]
pub enum Payload {
    Written(Body),
    /// Not written yet: an event that no target is sent and no events collection lists, as
    /// most are under load, is only written if it is ever asked for.
    Later(Arc<Unwritten>),
}

/// What an unwritten payload is written from: the profile's envelope and the object's text
/// (shared with the record it shows).
pub struct Unwritten {
    pub profile: Arc<Profile>,
    pub object: Bytes,
    pub previous: Option<Value>,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payload::Written(body) => body.fmt(f),
            Payload::Later(_) => f.write_str("<unwritten payload>"),
        }
    }
}

/// The id of event number `ordinal` of the log, recorded at `created`, under `seed`.
pub fn mint_id((seed, ordinal): (u64, usize), created: i64) -> String {
    let key = format!("event {ordinal}");
    let mut g = Generator::new(&Value::Null, seed, &key, Direction::Response);
    ids::ksuid(g.rng(), created)
}

/// An event's id: minted when first read, from the sandbox's seed and the event's place
/// in the log (most events under load are never read, and minting one cost as much as the
/// rest of recording it, under the store's lock).
#[derive(Debug, Clone)]
struct EventId {
    minted: OnceLock<String>,
    seed: u64,
    ordinal: usize,
}

impl Event {
    /// Event number `ordinal` of the log, recorded at `created`: its id is minted from
    /// `seed` when first read.
    pub fn new(
        (seed, ordinal): (u64, usize),
        kind: &str,
        created: i64,
        tenant: &str,
        payload: Payload,
    ) -> Self {
        Self {
            id: EventId {
                minted: OnceLock::new(),
                seed,
                ordinal,
            },
            kind: kind.to_owned(),
            created,
            tenant: tenant.to_owned(),
            payload,
        }
    }

    /// [`new`](Self::new), its id minted already (to write its payload now).
    pub fn minted(mut self, id: String) -> Self {
        self.id.minted = OnceLock::from(id);
        self
    }

    /// The event's id (a KSUID of the time it was recorded).
    pub fn id(&self) -> &str {
        self.id
            .minted
            .get_or_init(|| mint_id((self.id.seed, self.id.ordinal), self.created))
    }

    /// The payload, written now if it was not.
    pub fn payload(&self) -> Body {
        match &self.payload {
            Payload::Written(body) => body.clone(),
            Payload::Later(u) => {
                let head = Head {
                    id: self.id(),
                    kind: &self.kind,
                    created: self.created,
                    tenant: &self.tenant,
                };
                let object = Object::Text(&u.object);
                Body::from_json(payload::write_for(
                    &u.profile,
                    &head,
                    &object,
                    u.previous.as_ref(),
                ))
            }
        }
    }

    /// The event's `data` member (`{object, previous_attributes}`).
    pub fn data(&self) -> Value {
        self.payload().get("data").unwrap_or(Value::Null)
    }
}

/// The admin API's view: `{id, type, created, tenant, data}`.
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("id", self.id())?;
        map.serialize_entry("type", &self.kind)?;
        map.serialize_entry("created", &self.created)?;
        map.serialize_entry("tenant", &self.tenant)?;
        map.serialize_entry("data", &self.data())?;
        map.end()
    }
}

/// Events the engine keeps, unless configured otherwise.
pub const DEFAULT_KEPT: usize = 10_000;

/// The most recent events, oldest first, and how many were ever recorded.
#[derive(Debug)]
pub struct EventLog {
    recent: VecDeque<Event>,
    /// Events forgotten from the front.
    forgotten: usize,
    /// Events kept.
    pub kept: usize,
}

impl Default for EventLog {
    fn default() -> Self {
        Self {
            recent: VecDeque::new(),
            forgotten: 0,
            kept: DEFAULT_KEPT,
        }
    }
}

impl EventLog {
    pub fn push(&mut self, event: Event) {
        self.recent.push_back(event);
        while self.recent.len() > self.kept.max(1) {
            self.recent.pop_front();
            self.forgotten += 1;
        }
    }

    /// Events ever recorded: a mark to ask for the ones recorded after it ([`since`]).
    ///
    /// [`since`]: Self::since
    pub fn count(&self) -> usize {
        self.forgotten + self.recent.len()
    }

    /// The events kept, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Event> {
        self.recent.iter()
    }

    /// The events kept that were recorded after `mark` (a [`count`]).
    ///
    /// [`count`]: Self::count
    pub fn since(&self, mark: usize) -> impl Iterator<Item = &Event> {
        self.recent.iter().skip(mark.saturating_sub(self.forgotten))
    }
}

/// What happened to a record, as its event tells it.
pub enum Change {
    Created,
    /// With the changed members' values before (the event's `previous_attributes`).
    Updated(Value),
    Deleted,
}

impl Change {
    /// The action in an event type named after its resource (`customer.updated`).
    pub fn action(&self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated(_) => "updated",
            Change::Deleted => "deleted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize) -> Event {
        let payload = Payload::Written(Body::from_json(bytes::Bytes::from_static(b"{}")));
        Event::new((7, n), "thing.created", 0, "t", payload).minted(format!("evt_{n}"))
    }

    /// An id minted when first read is the one the event would have been given when
    /// recorded (seed, place in the log, time), and the same every time it is read.
    #[test]
    fn an_id_minted_late_is_the_id_minted_early() {
        let payload = || Payload::Written(Body::from_json(bytes::Bytes::from_static(b"{}")));
        let late = Event::new((7, 42), "thing.created", 1_750_000_000, "t", payload());
        let mut g = Generator::new(&Value::Null, 7, "event 42", Direction::Response);
        let early = ids::ksuid(g.rng(), 1_750_000_000);
        assert_eq!(late.id(), early);
        assert_eq!(mint_id((7, 42), 1_750_000_000), early);
        assert_eq!(late.clone().id(), late.id());
        let other = Event::new((7, 43), "thing.created", 1_750_000_000, "t", payload());
        assert_ne!(other.id(), late.id());
    }

    #[test]
    fn the_log_keeps_the_most_recent_events_and_counts_them_all() {
        let mut log = EventLog {
            kept: 3,
            ..EventLog::default()
        };
        for n in 0..5 {
            log.push(event(n));
        }
        assert_eq!(log.count(), 5);
        let ids = |it: &mut dyn Iterator<Item = &Event>| {
            it.map(|e| e.id().to_owned()).collect::<Vec<_>>()
        };
        assert_eq!(ids(&mut log.iter()), ["evt_2", "evt_3", "evt_4"]);
        assert_eq!(ids(&mut log.since(4)), ["evt_4"]);
        // A mark older than the window gives what is still kept.
        assert_eq!(ids(&mut log.since(1)).len(), 3);
        assert!(log.since(5).next().is_none());
    }
}
