//! Answers one operation from state, shaped by the operation's response schema: `create`,
//! the item operations (`item`: read, update, replace, delete, actions, with lifecycle
//! triggers), `list` pages, `link` (attach, detach) and `singleton` sub-documents.
//!
//! Reads (an item GET, a list) take the store's read lock and change nothing, unless a
//! lifecycle step is due, which they apply first so that no read shows a state older than
//! the clock allows. Everything else takes the write lock; a create takes it twice, briefly,
//! and generates its record in between (see `create`).

mod constraints;
mod create;
mod item;
mod link;
mod list;
mod singleton;

use jsonschema::Validator;
use serde_json::{Map, Value, json};

use super::behaviour::Refusal;
use super::call::{Call, Outcome, Snapshot};
use super::engine::Engine;
use super::model::{Binding, Kind, Resource, singular, success_schema};
use super::shape::{NewRecord, Shown};
use super::store::{ParentRef, Store};
use super::{delivery_log, lists};
use crate::compiled::Api;
use crate::generate::flatten;
use crate::spec::Spec;

impl Engine {
    /// Shows again the answer operation `oi` gave from `snapshot` (an idempotent replay).
    pub fn replay(&self, api: &Api, oi: usize, call: &Call, snapshot: &Snapshot) -> Outcome {
        let binding = &self.model.bindings[oi];
        let Some(resource) = self.model.resources.get(&binding.resource) else {
            return Outcome::Stateless;
        };
        let op = &api.spec.operations[oi];
        let schema = success_schema(op);
        let validator = schema.as_ref().and_then(|_| api.success_validator(oi));
        let ctx = Ctx {
            api,
            engine: self,
            binding,
            resource,
            call,
            schema,
            validator,
            parent: None,
            op_id: &op.id,
            oi,
        };
        ctx.replay(snapshot)
    }

    /// Answers operation `oi` of `api` from the store.
    pub fn handle(&self, api: &Api, oi: usize, call: &Call) -> Outcome {
        if let Some(outcome) = self.elsewhere(api, oi, call) {
            return outcome;
        }
        let inner = self.request_inner(oi, call);
        let unwrapped = inner.as_ref().map(|b| call.with_body(Some(b)));
        let call = unwrapped.as_ref().unwrap_or(call);
        let Some(ctx) = self.ctx(api, oi, call) else {
            return Outcome::Stateless;
        };
        let ctx = match ctx.try_read() {
            Ok(outcome) => return outcome,
            Err(ctx) => ctx,
        };
        if ctx.binding.kind == Kind::Create {
            return ctx.create_unlocked();
        }
        ctx.write_locked()
    }

    /// [`handle`](Self::handle) for a request being served: a create, and a behaviour's
    /// answer, take turns at the store's lock instead of blocking the thread on it (see
    /// `Engine::in_turn`). Also returns the state log append the answer waits for (0 for
    /// none).
    ///
    /// A create drafts its record without the lock, so a worker whose create waits has
    /// other connections' drafts to get on with. A behaviour's answer (a Dino decision)
    /// holds the lock throughout, but its worker still has other requests to read, check
    /// and answer up to the lock: with turns, `cargo bench --bench spend` decided 9,503 /
    /// 10,088 / 10,216 against 7,872 / 7,038 / 7,072/s blocking (interleaved, one build),
    /// where blocked workers had left the two cores 16% idle. (Under `wrk` an earlier
    /// session measured turns 7% slower; five interleaved pairs now gave 9% faster.) Other
    /// writes (an update, a delete) still wait on the lock itself.
    ///
    /// A request that gives a turn back hands it over ([`Turns::hand_over`]) before it goes
    /// on to answer: a waiter woken on this thread would otherwise wait for that answer
    /// with the turn free. Three interleaved pairs of `cargo bench --bench spend`: 8,662 /
    /// 8,484 / 8,731 -> 11,341 / 11,101 / 10,779 decisions/s.
    ///
    /// [`Turns::hand_over`]: super::turns::Turns::hand_over
    pub async fn answer(&self, api: &Api, oi: usize, call: &Call<'_>) -> (Outcome, u64) {
        let kind = self.model.bindings[oi].kind;
        if self.stateless || !matches!(kind, Kind::Create | Kind::Behaviour) {
            let outcome = self.handle(api, oi, call);
            return (outcome, self.take_append());
        }
        if kind == Kind::Behaviour {
            return self.in_turn(|| self.by_behaviour(api, oi, call)).await;
        }
        let inner = self.request_inner(oi, call);
        let unwrapped = inner.as_ref().map(|b| call.with_body(Some(b)));
        let call = unwrapped.as_ref().unwrap_or(call);
        let Some(ctx) = self.ctx(api, oi, call) else {
            return (Outcome::Stateless, 0);
        };
        ctx.create_in_turns().await
    }

    /// The answer to an operation the store does not hold (stateless, the delivery log, a
    /// behaviour's), or `None`.
    fn elsewhere(&self, api: &Api, oi: usize, call: &Call) -> Option<Outcome> {
        let binding = &self.model.bindings[oi];
        if binding.kind == Kind::Stateless || self.stateless {
            return Some(Outcome::Stateless);
        }
        if let Kind::Webhooks(what) = binding.kind {
            return Some(delivery_log::handle(api, self, oi, what, call));
        }
        if binding.kind == Kind::Behaviour {
            return Some(self.by_behaviour(api, oi, call));
        }
        None
    }

    /// The record inside a request envelope: what is stored.
    fn request_inner(&self, oi: usize, call: &Call) -> Option<Value> {
        self.model.bindings[oi]
            .request_envelope
            .as_deref()
            .and_then(|m| call.body?.get(m))
            .cloned()
    }

    /// What operation `oi` works with, when it is bound to a resource.
    fn ctx<'c>(&'c self, api: &'c Api, oi: usize, call: &'c Call<'c>) -> Option<Ctx<'c>> {
        let binding = &self.model.bindings[oi];
        let resource = self.model.resources.get(&binding.resource)?;
        let op = &api.spec.operations[oi];
        let schema = success_schema(op);
        let validator = schema.as_ref().and_then(|_| api.success_validator(oi));
        Some(Ctx {
            api,
            engine: self,
            binding,
            resource,
            call,
            schema,
            validator,
            parent: None,
            op_id: &op.id,
            oi,
        })
    }
}

impl Engine {
    /// Operation `oi` as the engine answers it when no behaviour does, under the write lock
    /// the caller (a behaviour) already holds.
    pub(super) fn handle_locked(
        &self,
        api: &Api,
        store: &mut Store,
        oi: usize,
        call: &Call,
    ) -> Outcome {
        let mut binding = self.model.bindings[oi].clone();
        binding.kind = binding.underlying;
        let Some(resource) = self.model.resources.get(&binding.resource) else {
            return Outcome::Stateless;
        };
        if matches!(
            binding.kind,
            Kind::Stateless | Kind::Behaviour | Kind::Webhooks(_)
        ) {
            return Outcome::Stateless;
        }
        let op = &api.spec.operations[oi];
        let schema = success_schema(op);
        let validator = schema.as_ref().and_then(|_| api.success_validator(oi));
        let ctx = Ctx {
            api,
            engine: self,
            binding: &binding,
            resource,
            call,
            schema,
            validator,
            parent: None,
            op_id: &op.id,
            oi,
        };
        ctx.catch_up(store);
        match ctx.with_parent(store) {
            Ok(ctx) => ctx.write(store),
            Err(outcome) => outcome,
        }
    }
}

pub(super) fn not_found(resource: &str, id: &str) -> Outcome {
    Outcome::Problem(
        404,
        format!("no {} with id '{id}'", singular(resource).replace('_', " ")),
    )
}

/// One operation on one resource, for one request.
pub(super) struct Ctx<'a> {
    api: &'a Api,
    engine: &'a Engine,
    binding: &'a Binding,
    resource: &'a Resource,
    call: &'a Call<'a>,
    /// The operation's success response schema.
    schema: Option<&'a str>,
    validator: Option<&'a Validator>,
    /// The parent item the path names, once checked to exist.
    parent: Option<ParentRef>,
    op_id: &'a str,
    oi: usize,
}

impl<'a> Ctx<'a> {
    /// 404 for record `id` of `resource`, in the profile's words when it has some
    /// (`not_found: Bucket not found`).
    fn not_found(&self, resource: &str, id: &str) -> Outcome {
        match self
            .engine
            .profile
            .resources
            .get(resource)
            .and_then(|o| o.not_found.as_deref())
        {
            Some(message) => Outcome::Problem(404, message.replace("{id}", id)),
            None => not_found(resource, id),
        }
    }

    fn spec(&self) -> &Spec {
        &self.api.spec
    }

    fn shown(&self) -> Shown<'_> {
        Shown {
            spec: self.spec(),
            seed: self.api.seed,
            generate_optional: self.engine.profile.generate_optional,
        }
    }

    fn key(&self, id: &str) -> String {
        format!("{}/{}/{id}", self.call.tenant, self.resource.name)
    }

    /// The id of the item named in the path.
    fn path_id(&self) -> Option<&str> {
        self.binding
            .item_param
            .as_deref()
            .and_then(|p| self.call.param(p))
    }

    /// The answer of a read that changes nothing, under the read lock; the context back for
    /// a write (or a read with a lifecycle step due first).
    // `Err` is not an error but this context, handed back (moved, on the stack) to write.
    #[allow(clippy::result_large_err)]
    fn try_read(self) -> Result<Outcome, Self> {
        if !matches!(
            self.binding.kind,
            Kind::Read | Kind::List | Kind::SingletonRead
        ) {
            return Err(self);
        }
        let engine = self.engine;
        let store = engine.store.read();
        if self.needs_write(&store) {
            return Err(self);
        }
        Ok(match self.with_parent(&store) {
            Ok(ctx) => ctx.read(&store),
            Err(outcome) => outcome,
        })
    }

    /// The answer of a write (any operation but a create), under the write lock.
    fn write_locked(self) -> Outcome {
        let mut store = self.engine.write();
        self.catch_up(&mut store);
        match self.with_parent(&store) {
            Ok(ctx) => ctx.write(&mut store),
            Err(outcome) => outcome,
        }
    }

    /// Whether answering needs the write lock even for a read: a lifecycle step is due for
    /// what the read shows, or a singleton record does not exist yet.
    fn needs_write(&self, store: &Store) -> bool {
        let Some(tenant) = store.tenants.get(self.call.tenant) else {
            return self.resource.singleton;
        };
        if self.resource.singleton
            && tenant
                .get(&self.resource.name, super::model::SINGLETON_ID)
                .is_none()
        {
            return true;
        }
        // An operation that moves a lifecycle changes the record even when it reads.
        let triggers = |lc: &crate::profile::Lifecycle| {
            lc.transitions
                .iter()
                .any(|t| t.on.as_deref() == Some(self.op_id))
        };
        if self
            .engine
            .profile
            .lifecycles
            .get(&self.resource.name)
            .is_some_and(triggers)
        {
            return true;
        }
        let now = self.engine.clock.now();
        match (self.binding.kind, self.path_id()) {
            (Kind::List, _) => tenant.due_by(Some(&self.resource.name), now),
            (_, Some(id)) => tenant
                .due_at(&self.resource.name, id)
                .is_some_and(|at| at <= now),
            _ => false,
        }
    }

    /// Applies what is due before answering: lifecycle steps (a list brings its records up
    /// to date, an item operation its item; a create reads nothing that exists), and the
    /// tenant's record of a singleton resource.
    fn catch_up(&self, store: &mut Store) {
        let name = &self.resource.name;
        if self.engine.profile.lifecycles.contains_key(name) && self.binding.kind != Kind::Create {
            let only = self.path_id();
            if only.is_some() || self.binding.kind == Kind::List {
                self.engine.advance_resource(
                    self.spec(),
                    store,
                    Some(self.call.tenant),
                    name,
                    self.engine.clock.now(),
                    only,
                );
            }
        }
        if self.resource.singleton {
            self.engine
                .singleton(self.spec(), store, self.call.tenant, name);
        }
    }

    /// This context with the path's parent item, which must exist (404 otherwise).
    fn with_parent(self, store: &Store) -> Result<Self, Outcome> {
        let Some((param, ptype)) = &self.binding.parent else {
            return self.with_named_parent(store);
        };
        let Some(pid) = self.call.param(param) else {
            return Err(Outcome::Stateless);
        };
        if store.get(self.call.tenant, ptype, pid).is_none() {
            return Err(self.not_found(ptype, pid));
        }
        let parent = Some(ParentRef {
            resource: ptype.clone(),
            id: pid.to_owned(),
        });
        Ok(Self { parent, ..self })
    }

    /// A create outside any parent's path whose body names the parent in the resource's
    /// parent member (`POST /alerts {bucketId}`): that parent must exist, and the record
    /// becomes its child.
    fn with_named_parent(self, store: &Store) -> Result<Self, Outcome> {
        let named = self
            .resource
            .parent_member
            .as_ref()
            .filter(|_| self.binding.kind == Kind::Create)
            .and_then(|(member, ptype)| {
                let id = self.call.body?.get(member)?;
                Some((lists::text(id), ptype.clone()))
            });
        let Some((pid, ptype)) = named else {
            return Ok(self);
        };
        if store.get(self.call.tenant, &ptype, &pid).is_none() {
            return Err(self.not_found(&ptype, &pid));
        }
        let parent = Some(ParentRef {
            resource: ptype,
            id: pid,
        });
        Ok(Self { parent, ..self })
    }

    /// Reads: an item, a list page, a singleton sub-document.
    fn read(&self, store: &Store) -> Outcome {
        match self.binding.kind {
            Kind::List => self.list(store),
            Kind::SingletonRead => self.singleton_read(store),
            _ => match self.item_id(store) {
                Some(id) if self.in_scope(store, &id) => {
                    match (&self.parent, self.binding.respond_parent) {
                        (Some(p), true) => self.respond_stored(store, &p.resource, &p.id),
                        _ => self.respond_stored(store, &self.resource.name, &id),
                    }
                }
                Some(id) => self.not_found(&self.resource.name, &id),
                None => Outcome::Stateless,
            },
        }
    }

    /// Everything else, and reads that had to catch up first.
    fn write(&self, store: &mut Store) -> Outcome {
        match self.binding.kind {
            Kind::Create => self.create(store),
            Kind::List => self.list(store),
            Kind::Read | Kind::Update | Kind::Replace | Kind::Delete | Kind::Action => {
                self.item(store)
            }
            Kind::DeleteAll => self.delete_all(store),
            Kind::SingletonRead => self.singleton_read(store),
            Kind::SingletonWrite => self.singleton_write(store),
            Kind::Link => self.link(store, true),
            Kind::Unlink => self.link(store, false),
            Kind::Stateless | Kind::Webhooks(_) | Kind::Behaviour => Outcome::Stateless,
        }
    }

    /// Server-owned members: the id and the link to the parent.
    fn fixed(&self, id: &Value) -> Vec<(String, Value)> {
        let mut fixed = vec![(self.resource.id_field.clone(), id.clone())];
        if let (Some((param, _)), Some(p)) = (&self.binding.parent, &self.parent) {
            fixed.push((param.clone(), self.typed(param, &p.id)));
            // The member that names the parent (`account_sid` under `{AccountSid}`).
            if let Some((member, ptype)) = &self.resource.parent_member
                && *ptype == p.resource
                && member != param
            {
                fixed.push((member.clone(), self.typed(member, &p.id)));
            }
        }
        fixed
    }

    /// The flattened schema of one member of the resource's stored representation.
    fn member_schema(&self, member: &str) -> Option<Value> {
        let doc = &self.spec().doc;
        let resource = crate::state::shape::flat(self.spec(), self.resource.schema.as_deref()?)?;
        resource
            .get("properties")
            .and_then(|p| p.get(member))
            .map(|m| flatten(doc, m))
    }

    /// An id taken from the path, typed as the record's member schema wants it.
    fn typed(&self, member: &str, raw: &str) -> Value {
        let numeric = self.member_schema(member).is_some_and(|m| {
            matches!(
                m.get("type").and_then(Value::as_str),
                Some("integer" | "number")
            )
        });
        match raw.parse::<i64>() {
            Ok(n) if numeric => json!(n),
            _ => json!(raw),
        }
    }

    fn new_record(&self, key: String) -> NewRecord<'_> {
        NewRecord {
            spec: self.spec(),
            schema: self.resource.schema.as_deref(),
            validator: self
                .engine
                .validators
                .get(&self.resource.name)
                .map(|v| v.as_ref()),
            seed: self.api.seed,
            key,
            now: self.call.now,
            generate_optional: self.engine.profile.generate_optional,
            checks: self.engine.member_checks(self.api, &self.resource.name),
        }
    }

    /// `record` shown through the operation's response schema (inside its envelope, if
    /// it has one).
    fn respond(&self, record: &Map<String, Value>, key: &str) -> Outcome {
        let Some(outer) = self.schema else {
            return Outcome::Body(Value::Null);
        };
        let (s, validator) = match &self.binding.envelope {
            Some(e) => {
                let own = self.resource.schema.as_deref() == Some(e.inner.as_str());
                let v = own
                    .then(|| self.engine.validators.get(&self.resource.name))
                    .flatten()
                    .map(|v| v.as_ref());
                (e.inner.as_str(), v)
            }
            None => (outer, self.validator),
        };
        let names = self.engine.names_of(self.spec(), s);
        // A schema asking for `id` gets the record's id, whatever its member's name.
        let wants_id = self.resource.id_field != "id"
            && !record.contains_key("id")
            && names
                .as_ref()
                .is_some_and(|n| n.names.iter().any(|x| x == "id"));
        let with_id;
        let record = match record.get(&self.resource.id_field) {
            Some(v) if wants_id => {
                let mut r = record.clone();
                r.insert("id".to_owned(), v.clone());
                with_id = r;
                &with_id
            }
            _ => record,
        };
        let shown = self
            .shown()
            .project(key, s, record, validator, names.as_deref());
        Outcome::Body(match &self.binding.envelope {
            Some(e) => e.wrap(shown),
            None => shown,
        })
    }

    /// Answers with stored record `id` of `resource`, its embedded members as they are now.
    fn respond_stored(&self, store: &Store, resource: &str, id: &str) -> Outcome {
        let tenant = self.call.tenant;
        let Some(body) = self.engine.view(self.spec(), store, tenant, resource, id) else {
            return self.not_found(resource, id);
        };
        self.answer_stored(store, resource, id, &body)
    }

    /// The answer showing stored record `id`, whose members (embeds included) are `body`.
    fn answer_stored(
        &self,
        store: &Store,
        resource: &str,
        id: &str,
        body: &Map<String, Value>,
    ) -> Outcome {
        let snapshot = self.snapshot_of(store, resource, id);
        self.answer_shown(resource, id, body, snapshot)
    }

    /// The stored bytes of record `id`, which an idempotent replay shows again, when the
    /// answer shows the record as it is stored (no embeds overlaid).
    fn snapshot_of(&self, store: &Store, resource: &str, id: &str) -> Option<Snapshot> {
        let plain = resource == self.resource.name
            && self
                .engine
                .profile
                .resources
                .get(resource)
                .is_none_or(|o| o.embed.is_empty());
        let coll = store
            .collection(self.call.tenant, resource)
            .filter(|_| plain)?;
        Some(Snapshot {
            id: coll.id(id)?.clone(),
            body: coll.get(id)?.body.clone(),
        })
    }

    /// The answer showing record `id` with members `body`, kept for replays as `snapshot`.
    /// Needs nothing from the store: a create answers this way after letting it go.
    fn answer_shown(
        &self,
        resource: &str,
        id: &str,
        body: &Map<String, Value>,
        snapshot: Option<Snapshot>,
    ) -> Outcome {
        let key = format!("{}/{resource}/{id}", self.call.tenant);
        kept_as(self.respond(body, &key), snapshot)
    }

    /// The answer `snapshot` gave, shown again.
    fn replay(&self, snapshot: &Snapshot) -> Outcome {
        let key = self.key(&snapshot.id);
        self.respond(&snapshot.body.map(), &key)
    }

    /// The id of the item named in the path (which may name it by another member).
    fn item_id(&self, store: &Store) -> Option<String> {
        if self.resource.singleton {
            return Some(super::model::SINGLETON_ID.to_owned());
        }
        let raw = self.path_id()?;
        if self.binding.lookup.is_none() {
            return Some(raw.to_owned());
        }
        let found = self.find_by(store, self.binding.lookup.as_deref(), raw);
        Some(found.unwrap_or_else(|| raw.to_owned()))
    }

    /// The id of the resource's record whose `member` (its id when `None`) reads `wanted`.
    fn find_by(&self, store: &Store, member: Option<&str>, wanted: &str) -> Option<String> {
        let coll = store.collection(self.call.tenant, &self.resource.name)?;
        match member {
            None => coll.get(wanted).map(|_| wanted.to_owned()),
            Some(m) => lists::find_text(coll, m, wanted).map(|id| id.to_string()),
        }
    }

    /// Whether record `id` exists where the path puts it: under the path's parent, or linked
    /// to it.
    fn in_scope(&self, store: &Store, id: &str) -> bool {
        let Some(rec) = store.get(self.call.tenant, &self.resource.name, id) else {
            return false;
        };
        match (&self.binding.link, &self.parent) {
            (Some(link), Some(p)) => {
                self.engine
                    .linked(store, self.call.tenant, link, p, &self.resource.name, id)
            }
            _ => self.parent.is_none() || rec.parent() == self.parent.as_ref(),
        }
    }

    /// Lets the resource's behaviour, if it has one, change or refuse a record about to be
    /// stored.
    fn admit(&self, store: &mut Store, record: &mut Map<String, Value>) -> Result<(), Outcome> {
        self.constraints(store, record)?;
        self.engine
            .admit(
                self.spec(),
                store,
                self.call,
                self.oi,
                &self.resource.name,
                record,
            )
            .map_err(Refusal::outcome)
    }

    /// Deletes every record of the collection under the path's parent.
    fn delete_all(&self, store: &mut Store) -> Outcome {
        let ids: Vec<String> = store
            .collection(self.call.tenant, &self.resource.name)
            .map(|coll| {
                coll.iter()
                    .filter(|(_, r)| r.parent() == self.parent.as_ref())
                    .map(|(i, _)| i.to_string())
                    .collect()
            })
            .unwrap_or_default();
        let mut tenant = store.tenant(self.call.tenant);
        for id in ids {
            tenant.remove_cascade(&self.resource.name, &id);
        }
        Outcome::Body(Value::Null)
    }
}

/// An answer showing a record, kept for replays as `snapshot` (the record's stored bytes)
/// when there is one.
fn kept_as(answer: Outcome, snapshot: Option<Snapshot>) -> Outcome {
    match (answer, snapshot) {
        (Outcome::Body(value), Some(snapshot)) => Outcome::Shown(value, snapshot),
        (Outcome::Text(text), Some(snapshot)) => Outcome::ShownText(text, snapshot),
        (answer, _) => answer,
    }
}
