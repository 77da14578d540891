//! Stateful behaviour for any spec: what a POST creates, a GET returns, a list pages
//! through and filters, a PATCH changes, a DELETE removes, per tenant (credential).
//! [`model`] infers resources from the spec (and the optional [`profile`]); [`store`] holds
//! records; [`shape`] builds and projects bodies; [`lists`] pages; [`idempotency`] replays.

pub mod clock;
pub mod delivery_log;
pub mod expr;
pub mod idempotency;
pub mod lifecycle;
pub mod lists;
pub mod model;
pub mod persist;
pub mod profile;
pub mod rate_limit;
pub mod shape;
pub mod store;
pub mod webhooks;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use jsonschema::Validator;
use serde_json::{Map, Value, json};

use self::model::{Binding, Kind, Model, Resource, list_item_schema, singular, success_schema};
use self::profile::Profile;
use self::shape::{Members, NewRecord, project, property_names, repair, timestamp_for};
use self::store::{ParentRef, Store};
use crate::generate::{Generator, flatten, ids};
use crate::schema::{Direction, SchemaSet};
use crate::server::api::Api;
use crate::spec::{Spec, SpecError};

/// Requests kept in the journal.
const JOURNAL_LEN: usize = 1000;

/// One line of `GET /__sandbox/journal`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JournalEntry {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub tenant: String,
    pub operation: Option<String>,
    /// `ok`, or why the request was refused.
    pub verdict: String,
}

pub struct Engine {
    pub model: Model,
    pub profile: Profile,
    pub store: Mutex<Store>,
    /// Resource type -> validator of its stored representation.
    pub validators: HashMap<String, Arc<Validator>>,
    pub idempotency: idempotency::Idempotency,
    /// The request header the spec uses for idempotency keys, lower-cased.
    pub idempotency_header: Option<String>,
    pub journal: Mutex<VecDeque<JournalEntry>>,
    /// `--stateless`: answer every operation from the spec alone, storing nothing.
    pub stateless: bool,
    pub rate_limit: rate_limit::RateLimiter,
    pub clock: clock::Clock,
    /// Every event, all tenants, in order.
    pub events: Mutex<Vec<Event>>,
    pub webhooks: Mutex<WebhookState>,
    pub signer: webhooks::Signer,
    pub seed: u64,
    /// Schema pointer -> its members (`None`: free-form), computed once.
    names: Mutex<HashMap<String, Option<Arc<Members>>>>,
    /// Operation -> how its list responses are shaped, computed once.
    list_plans: Mutex<HashMap<usize, Arc<ListPlan>>>,
}

/// What a list response needs, worked out once per operation.
struct ListPlan {
    /// The response is a bare array.
    bare: bool,
    /// The wrapper generated from the schema, without its items.
    wrapper: Map<String, Value>,
    array_member: String,
    item_schema: Option<String>,
    item_members: Option<Arc<Members>>,
    default_limit: usize,
    max_limit: usize,
}

/// One recorded change: create, update, delete or lifecycle transition.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub tenant: String,
    pub data: Value,
}

#[derive(Debug, Default)]
pub struct WebhookState {
    pub targets: Vec<webhooks::Target>,
    pub deliveries: Vec<webhooks::Delivery>,
    /// Event id -> replays made through the API's own replay operation.
    pub replays: HashMap<String, u32>,
}

/// How deep effects may cascade (an update whose transition updates another record...).
const MAX_EFFECT_DEPTH: usize = 8;

/// What the engine decided for a request.
pub enum Outcome {
    /// A body for the operation's success status (`Value::Null` for none).
    Body(Value),
    /// An error: status and detail.
    Problem(u16, String),
    /// Not a stateful operation: answer from the spec.
    Stateless,
}

/// The parts of a validated request the engine reads.
pub struct Call<'a> {
    pub tenant: &'a str,
    pub path_params: &'a [(String, String)],
    pub query: &'a [(String, String)],
    pub body: Option<&'a Value>,
    pub now: i64,
    /// `X-Sandbox-Scenario`, kept on created resources to choose lifecycle branches.
    pub scenario: Option<String>,
    /// `X-Sandbox-Instant-Completion`: run a new resource's lifecycle to its end at once.
    pub instant: bool,
    pub headers: Option<&'a http::HeaderMap>,
}

impl Call<'_> {
    /// A boolean request header (`true`, `1`, `yes`; anything else is false).
    fn flag(&self, name: &str) -> bool {
        self.headers
            .and_then(|h| h.get(name))
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.path_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Engine {
    pub fn new(
        spec: &Spec,
        schemas: &SchemaSet,
        profile: Profile,
        seed: u64,
        compiled: &crate::server::api::Compiled,
    ) -> Result<Self, SpecError> {
        let model = Model::infer(spec, &profile);
        let rate_limit = rate_limit::RateLimiter::new(spec, &profile);
        let profile_signing = profile.webhooks.signing.clone();
        let profile_signing = profile_signing.as_deref();
        let mut validators = HashMap::new();
        for r in model.resources.values() {
            let Some(ptr) = &r.schema else { continue };
            // Usually compiled already (the item GET's response schema); compile otherwise.
            let key = (
                Direction::Response,
                crate::server::api::canonical_pointer(&spec.doc, ptr),
            );
            let v = match compiled.get(&key) {
                Some(v) => v.clone(),
                None => Arc::new(schemas.compile(Direction::Response, ptr).map_err(|e| {
                    SpecError::new(
                        &spec.file,
                        &e.pointer,
                        format!("schema cannot be compiled: {}", e.reason),
                    )
                })?),
            };
            validators.insert(r.name.clone(), v);
        }
        let idempotency_header = spec
            .operations
            .iter()
            .flat_map(|o| &o.params)
            .find(|p| {
                p.location == crate::spec::catalog::Location::Header
                    && p.name.to_ascii_lowercase().contains("idempotency")
            })
            .map(|p| p.name.to_ascii_lowercase());
        Ok(Self {
            model,
            profile,
            store: Mutex::new(Store::new()),
            validators,
            idempotency: idempotency::Idempotency::default(),
            idempotency_header,
            journal: Mutex::new(VecDeque::new()),
            stateless: false,
            rate_limit,
            clock: clock::Clock::new(1.0),
            events: Mutex::new(Vec::new()),
            webhooks: Mutex::new(WebhookState::default()),
            signer: webhooks::Signer::new(profile_signing, webhook_secret(seed)),
            seed,
            names: Mutex::new(HashMap::new()),
            list_plans: Mutex::new(HashMap::new()),
        })
    }

    pub fn record_journal(&self, entry: JournalEntry) {
        let mut j = lock(&self.journal);
        if j.len() >= JOURNAL_LEN {
            j.pop_front();
        }
        j.push_back(entry);
    }

    /// The property names (and required ones) of the schema at `ptr`, cached.
    pub(crate) fn names_of(&self, spec: &Spec, ptr: &str) -> Option<Arc<Members>> {
        if let Some(n) = lock(&self.names).get(ptr) {
            return n.clone();
        }
        let n = Members::of(spec, ptr).map(Arc::new);
        lock(&self.names).insert(ptr.to_owned(), n.clone());
        n
    }

    fn list_plan(&self, spec: &Spec, oi: usize, schema_ptr: &str) -> Arc<ListPlan> {
        if let Some(p) = lock(&self.list_plans).get(&oi) {
            return p.clone();
        }
        let flat = spec
            .at(schema_ptr)
            .map(|s| flatten(&spec.doc, s))
            .unwrap_or(Value::Null);
        let bare = flat.get("type").and_then(Value::as_str) == Some("array");
        let array_member = property_names(spec, schema_ptr)
            .unwrap_or_default()
            .into_iter()
            .find(|n| {
                flat.get("properties")
                    .and_then(|p| p.get(n))
                    .map(|p| flatten(&spec.doc, p))
                    .is_some_and(|p| p.get("type").and_then(Value::as_str) == Some("array"))
            })
            .unwrap_or_else(|| "data".to_owned());
        let wrapper = if bare {
            Map::new()
        } else {
            Generator::new(
                &spec.doc,
                self.seed,
                &format!("list wrapper {schema_ptr}"),
                Direction::Response,
            )
            .value_at(schema_ptr)
            .as_object()
            .cloned()
            .unwrap_or_default()
        };
        let item_schema = list_item_schema(spec, schema_ptr);
        let item_members = item_schema.as_deref().and_then(|s| self.names_of(spec, s));
        let op = &spec.operations[oi];
        let limit = op
            .params
            .iter()
            .find(|p| p.name == "limit")
            .and_then(|p| p.schema.as_deref())
            .and_then(|s| spec.at(s))
            .map(|s| flatten(&spec.doc, s));
        let plan = Arc::new(ListPlan {
            bare,
            wrapper,
            array_member,
            item_schema,
            item_members,
            default_limit: limit
                .as_ref()
                .and_then(|l| l.get("default"))
                .and_then(Value::as_u64)
                .unwrap_or(20) as usize,
            max_limit: limit
                .as_ref()
                .and_then(|l| l.get("maximum"))
                .and_then(Value::as_u64)
                .unwrap_or(100) as usize,
        });
        lock(&self.list_plans).insert(oi, plan.clone());
        plan
    }

    /// Clears all state, or one tenant's.
    pub fn reset(&self, tenant: Option<&str>) {
        let mut store = lock(&self.store);
        match tenant {
            Some(t) => {
                store.tenants.remove(t);
            }
            None => store.tenants.clear(),
        }
        self.idempotency.clear(tenant);
    }
}

/// The webhook signing secret derived from the seed, so runs are reproducible.
pub fn webhook_secret(seed: u64) -> [u8; 32] {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(
        seed ^ crate::generate::stable_hash("webhook signing key"),
    );
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    key
}

impl Engine {
    /// Records an event and queues its webhook deliveries.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        action: &str,
        object: &Map<String, Value>,
        previous: Option<Value>,
        at: f64,
    ) {
        if resource == "events" {
            return;
        }
        let names = self.profile.events.get(resource);
        let configured = names.and_then(|n| match action {
            "created" => n.created.clone(),
            "updated" => n.updated.clone(),
            _ => n.deleted.clone(),
        });
        if configured.is_none() && !self.profile.undeclared_events {
            return;
        }
        let kind = configured.unwrap_or_else(|| format!("{}.{action}", singular(resource)));
        let mut events = lock(&self.events);
        let mut g = Generator::new(
            &Value::Null,
            self.seed,
            &format!("event {}", events.len()),
            Direction::Response,
        );
        let id = ids::ksuid(g.rng(), at.floor() as i64);
        let mut data = json!({"object": object});
        if let Some(p) = previous {
            data["previous_attributes"] = p;
        }
        let created = at.floor() as i64;
        let payload =
            webhooks::event_payload(&id, &kind, created, &data, &self.profile.events_envelope);
        // APIs with an events collection list their events there too.
        if self.model.resources.contains_key("events")
            && let Value::Object(body) = payload.clone()
        {
            store
                .tenant(tenant)
                .insert("events", id.clone(), body, None);
        }
        let urls = self.targets_for(store, tenant, &kind);
        if !urls.is_empty() {
            let body = bytes::Bytes::from(serde_json::to_vec(&payload).unwrap_or_default());
            let max_attempts = self
                .profile
                .webhooks
                .max_attempts
                .unwrap_or(webhooks::DEFAULT_MAX_ATTEMPTS);
            let mut hooks = lock(&self.webhooks);
            for url in urls {
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
                    body: body.clone(),
                    in_flight: false,
                });
            }
        }
        events.push(Event {
            id,
            kind,
            created,
            tenant: tenant.to_owned(),
            data,
        });
    }

    /// URLs of the targets that want events of type `kind` from `tenant`.
    fn targets_for(&self, store: &Store, tenant: &str, kind: &str) -> Vec<String> {
        let wants = |types: &[String]| types.is_empty() || types.iter().any(|t| t == kind);
        let mut urls: Vec<String> = lock(&self.webhooks)
            .targets
            .iter()
            .filter(|t| t.tenant.as_deref().is_none_or(|x| x == tenant) && wants(&t.event_types))
            .map(|t| t.url.clone())
            .collect();
        if let Some(resource) = &self.profile.webhooks.targets_resource {
            let records = store
                .tenants
                .get(tenant)
                .and_then(|t| t.resources.get(resource));
            for r in records.into_iter().flat_map(|m| m.values()) {
                let Some(url) = r.body.get("url").and_then(Value::as_str) else {
                    continue;
                };
                let global = r
                    .body
                    .get("global")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let types: Vec<String> = r
                    .body
                    .get("event_types")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if global
                    || types.iter().any(|t| t == kind)
                    || (r.body.get("global").is_none() && types.is_empty())
                {
                    urls.push(url.to_owned());
                }
            }
        }
        urls
    }

    /// Applies due lifecycle transitions to `resource` records (one tenant, or all).
    fn advance_resource(
        &self,
        spec: &Spec,
        store: &mut Store,
        tenant: Option<&str>,
        resource: &str,
        now: f64,
        only: Option<&str>,
    ) {
        let Some(lc) = self.profile.lifecycles.get(resource) else {
            return;
        };
        let mut changes = Vec::new();
        for (t, state) in store
            .tenants
            .iter_mut()
            .filter(|(t, _)| tenant.is_none_or(|x| x == t.as_str()))
        {
            let Some(records) = state.resources.get_mut(resource) else {
                continue;
            };
            // One item: look it up; otherwise every record of the type.
            let selected: Vec<(&String, &mut store::Record)> = match only {
                Some(o) => records.get_key_value_mut(o).into_iter().collect(),
                None => records.iter_mut().collect(),
            };
            for (id, rec) in selected {
                let key = format!("{t}/{resource}/{id}");
                for (from, to, at) in
                    lifecycle::advance(lc, &mut rec.body, &mut rec.meta, now, false, &key)
                {
                    changes.push((t.clone(), id.clone(), from, to, at));
                }
            }
        }
        for (t, id, from, to, at) in changes {
            self.transitioned(spec, store, &t, resource, &id, &from, &to, at, 0);
        }
    }

    /// A lifecycle transition happened: apply what entering the state does, then record it.
    #[allow(clippy::too_many_arguments)]
    fn transitioned(
        &self,
        spec: &Spec,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        id: &str,
        from: &str,
        to: &str,
        at: f64,
        depth: usize,
    ) {
        let Some(lc) = self.profile.lifecycles.get(resource) else {
            return;
        };
        let field = lc.field.clone();
        if let Some(effects) = lc.on_enter.get(to) {
            self.apply_effects(
                spec,
                store,
                tenant,
                resource,
                id,
                effects,
                Some((from, to)),
                at,
                depth,
            );
        }
        let Some(body) = store.get(tenant, resource, id).map(|r| r.body.clone()) else {
            return;
        };
        self.emit(
            store,
            tenant,
            resource,
            "updated",
            &body,
            Some(json!({ field: from })),
            at,
        );
    }

    /// The schema a resource's records follow, for time formats and generation.
    fn record_schema(&self, resource: &str) -> Option<&str> {
        self.model
            .resources
            .get(resource)
            .and_then(|r| r.schema.as_deref())
    }

    /// The record that member `via` of `body` references, as (resource, id).
    fn referenced(
        &self,
        store: &Store,
        tenant: &str,
        resource: &str,
        body: &Map<String, Value>,
        via: &str,
    ) -> Option<(String, String)> {
        let reference = self.profile.resources.get(resource)?.references.get(via)?;
        let value = body.get(via)?;
        let target = reference.resource();
        let records = store.tenants.get(tenant)?.resources.get(target)?;
        match reference.member() {
            None => {
                let id = lists::text(value);
                records.contains_key(&id).then(|| (target.to_owned(), id))
            }
            Some(member) => records
                .iter()
                .find(|(_, r)| r.body.get(member) == Some(value))
                .map(|(id, _)| (target.to_owned(), id.clone())),
        }
    }

    /// Evaluates `exprs` against record `id` of `resource` (which may not be stored yet:
    /// `body` is its current state), member by member so later ones can read earlier ones.
    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &self,
        spec: &Spec,
        store: &Store,
        tenant: &str,
        resource: &str,
        id: &str,
        body: &Map<String, Value>,
        exprs: &Map<String, Value>,
        target_schema: Option<&str>,
        transition: Option<(&str, &str)>,
        at: f64,
    ) -> Map<String, Value> {
        let mut scratch = body.clone();
        let mut out = Map::new();
        let mut g = Generator::new(
            &spec.doc,
            self.seed,
            &format!("expr {tenant}/{resource}/{id} {at}"),
            Direction::Response,
        );
        g.use_examples = false;
        for (member, expr) in exprs {
            let value = {
                let lookup = |via: &str, field: &str| {
                    let (r, i) = self.referenced(store, tenant, resource, &scratch, via)?;
                    store.get(tenant, &r, &i)?.body.get(field).cloned()
                };
                let time = |m: &str, unix: i64| match target_schema {
                    Some(s) => timestamp_for(spec, s, m, unix),
                    None => json!(unix),
                };
                let generate = |m: &str| {
                    let s = target_schema
                        .and_then(|s| spec.at(s))
                        .map(|s| flatten(&spec.doc, s))?;
                    let ms = s.get("properties")?.get(m)?.clone();
                    Some(
                        Generator::new(
                            &spec.doc,
                            self.seed,
                            &format!("generate {tenant}/{resource}/{id}/{m}"),
                            Direction::Response,
                        )
                        .value(&ms),
                    )
                };
                let scope = expr::Scope {
                    record: &scratch,
                    id,
                    now: at,
                    transition,
                    lookup: &lookup,
                    time: &time,
                    generate: &generate,
                };
                expr::eval(expr, member, &scope, g.rng())
            };
            scratch.insert(member.clone(), value.clone());
            out.insert(member.clone(), value);
        }
        out
    }

    /// Applies effects (those whose `when` matches the record) of something that happened
    /// to record `id`: its own members set, referenced records updated, balances adjusted,
    /// related records created.
    #[allow(clippy::too_many_arguments)]
    fn apply_effects(
        &self,
        spec: &Spec,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        id: &str,
        list: &profile::EffectList,
        transition: Option<(&str, &str)>,
        at: f64,
        depth: usize,
    ) {
        if depth > MAX_EFFECT_DEPTH {
            return;
        }
        for effects in list.iter() {
            let Some(body) = store.get(tenant, resource, id).map(|r| r.body.clone()) else {
                return;
            };
            if !profile::matches(&effects.when, Some(&body)) {
                continue;
            }
            let own = self.evaluate(
                spec,
                store,
                tenant,
                resource,
                id,
                &body,
                &effects.set,
                self.record_schema(resource),
                transition,
                at,
            );
            if let Some(rec) = store.tenant(tenant).get_mut(resource, id) {
                for (k, v) in own {
                    rec.body.insert(k, v);
                }
            }
            let Some(body) = store.get(tenant, resource, id).map(|r| r.body.clone()) else {
                return;
            };
            for u in &effects.update {
                self.update_related(
                    spec, store, tenant, resource, id, &body, u, transition, at, depth,
                );
            }
            for a in &effects.adjust {
                self.adjust(store, tenant, &body, a, at);
            }
            for c in &effects.create {
                self.create_related(
                    spec, store, tenant, resource, id, &body, c, transition, at, depth,
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn update_related(
        &self,
        spec: &Spec,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        id: &str,
        body: &Map<String, Value>,
        u: &profile::UpdateRelated,
        transition: Option<(&str, &str)>,
        at: f64,
        depth: usize,
    ) {
        let Some((target, target_id)) = self.referenced(store, tenant, resource, body, &u.via)
        else {
            return;
        };
        let values = self.evaluate(
            spec,
            store,
            tenant,
            resource,
            id,
            body,
            &u.set,
            self.record_schema(&target),
            transition,
            at,
        );
        let lifecycle = self.profile.lifecycles.get(&target);
        let Some(rec) = store.tenant(tenant).get_mut(&target, &target_id) else {
            return;
        };
        let before = rec.body.clone();
        let mut step = None;
        for (k, v) in values {
            match (lifecycle, v.as_str()) {
                (Some(lc), Some(state)) if lc.field == k => {
                    step = lifecycle::force(lc, &mut rec.body, &mut rec.meta, state, at);
                }
                _ => {
                    rec.body.insert(k, v);
                }
            }
        }
        let after = rec.body.clone();
        let changed: Map<String, Value> = before
            .iter()
            .filter(|(k, v)| after.get(*k) != Some(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match step {
            // A transition records itself (and runs what entering the state does).
            Some((from, to, at)) => self.transitioned(
                spec,
                store,
                tenant,
                &target,
                &target_id,
                &from,
                &to,
                at,
                depth + 1,
            ),
            None if !changed.is_empty() => self.emit(
                store,
                tenant,
                &target,
                "updated",
                &after,
                Some(Value::Object(changed)),
                at,
            ),
            None => {}
        }
    }

    fn adjust(
        &self,
        store: &mut Store,
        tenant: &str,
        body: &Map<String, Value>,
        a: &profile::Adjust,
        at: f64,
    ) {
        let Some(target_id) = body.get(&a.id_from).map(lists::text) else {
            return;
        };
        let amount = match &a.by {
            Value::Number(n) => n.as_f64(),
            Value::String(member) => match body.get(member) {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => s.parse::<f64>().ok(),
                _ => None,
            },
            _ => None,
        };
        let Some(amount) = amount else { return };
        let delta = if a.debit { -amount } else { amount };
        let Some(rec) = store.tenant(tenant).get_mut(&a.resource, &target_id) else {
            return;
        };
        let before = rec.body.get(&a.field).cloned().unwrap_or(Value::Null);
        let after = match &before {
            // Decimal strings keep their number of decimals ("100.00").
            Value::String(text) => {
                let decimals = text.split('.').nth(1).map_or(0, str::len);
                json!(format!(
                    "{:.*}",
                    decimals,
                    text.parse::<f64>().unwrap_or(0.0) + delta
                ))
            }
            Value::Number(n) if n.is_i64() => {
                json!(n.as_i64().unwrap_or(0) + delta.round() as i64)
            }
            Value::Null => json!(delta),
            other => json!(other.as_f64().unwrap_or(0.0) + delta),
        };
        rec.body.insert(a.field.clone(), after);
        let updated = rec.body.clone();
        self.emit(
            store,
            tenant,
            &a.resource,
            "updated",
            &updated,
            Some(json!({ a.field.clone(): before })),
            at,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn create_related(
        &self,
        spec: &Spec,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        id: &str,
        body: &Map<String, Value>,
        c: &profile::CreateRelated,
        transition: Option<(&str, &str)>,
        at: f64,
        depth: usize,
    ) {
        let target = self.model.resources.get(&c.resource);
        let target_schema = target.and_then(|r| r.schema.as_deref());
        // `$id` in a related create is the creating record's id.
        let exprs: Map<String, Value> =
            c.body.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut new_body = self.evaluate(
            spec,
            store,
            tenant,
            resource,
            id,
            body,
            &exprs,
            target_schema,
            transition,
            at,
        );
        let id_field = target.map_or("id", |r| r.id_field.as_str());
        let mut g = Generator::new(
            &spec.doc,
            self.seed,
            &format!("related {tenant}/{resource}/{id}/{at}/{}", c.resource),
            Direction::Response,
        );
        let minted = match target.and_then(|r| r.id_prefix.as_deref()) {
            Some(prefix) => format!("{prefix}{}", ids::ksuid(g.rng(), at.floor() as i64)),
            None => ids::ksuid(g.rng(), at.floor() as i64),
        };
        new_body
            .entry(id_field.to_owned())
            .or_insert_with(|| json!(minted));
        let new_id = lists::id_of(&new_body, id_field).unwrap_or(minted);
        let parent = if c.child {
            Some(ParentRef {
                resource: resource.to_owned(),
                id: id.to_owned(),
            })
        } else {
            c.parent_from.as_deref().and_then(|via| {
                self.referenced(store, tenant, resource, body, via)
                    .map(|(r, i)| ParentRef { resource: r, id: i })
            })
        };
        // The parent's path parameter is a member of the child too (`customer_id`).
        if let Some(p) = &parent
            && let Some(param) = self.model.bindings.iter().find_map(|b| {
                b.parent
                    .as_ref()
                    .filter(|(_, pt)| *pt == p.resource && b.resource == c.resource)
                    .map(|(param, _)| param.clone())
            })
        {
            new_body.entry(param).or_insert_with(|| json!(p.id));
        }
        if let Some(schema) = target_schema {
            let key = format!("{tenant}/{}/{new_id}", c.resource);
            let record = NewRecord {
                spec,
                schema: Some(schema),
                validator: self.validators.get(&c.resource).map(|v| v.as_ref()),
                seed: self.seed,
                key,
                now: at.floor() as i64,
                generate_optional: self.profile.generate_optional,
            }
            .build(
                Some(&Value::Object(new_body.clone())),
                &[(id_field.to_owned(), json!(new_id))],
                None,
            );
            new_body = record;
        }
        store
            .tenant(tenant)
            .insert(&c.resource, new_id.clone(), new_body.clone(), parent);
        self.created(
            spec,
            store,
            tenant,
            &c.resource,
            &new_id,
            None,
            false,
            at,
            depth + 1,
        );
    }

    /// A record was just stored: its derived members, its lifecycle's start (and, when
    /// due or asked for, its run), the created event, and its effects.
    #[allow(clippy::too_many_arguments)]
    fn created(
        &self,
        spec: &Spec,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        id: &str,
        call: Option<&Call>,
        instant: bool,
        now: f64,
        depth: usize,
    ) {
        let schema = self.record_schema(resource);
        if let Some(over) = self.profile.resources.get(resource) {
            for d in &over.derive {
                let Some(body) = store.get(tenant, resource, id).map(|r| r.body.clone()) else {
                    return;
                };
                if !profile::matches(&d.when, Some(&body)) {
                    continue;
                }
                let values = self.evaluate(
                    spec, store, tenant, resource, id, &body, &d.set, schema, None, now,
                );
                if let Some(rec) = store.tenant(tenant).get_mut(resource, id) {
                    rec.body.extend(values);
                }
            }
        }
        let mut steps = Vec::new();
        if let Some(lc) = self.profile.lifecycles.get(resource)
            && let Some(rec) = store.tenant(tenant).get_mut(resource, id)
        {
            if let Some(call) = call {
                rec.meta.scenario.clone_from(&call.scenario);
                rec.meta.held = lc.hold_header.as_deref().is_some_and(|h| call.flag(h));
            }
            lifecycle::start(lc, &mut rec.body, &mut rec.meta, now);
            let key = format!("{tenant}/{resource}/{id}");
            steps = lifecycle::advance(lc, &mut rec.body, &mut rec.meta, now, instant, &key);
        }
        let Some(body) = store.get(tenant, resource, id).map(|r| r.body.clone()) else {
            return;
        };
        self.emit(store, tenant, resource, "created", &body, None, now);
        if let Some(effects) = self
            .profile
            .resources
            .get(resource)
            .and_then(|o| o.on_create.as_ref())
        {
            self.apply_effects(spec, store, tenant, resource, id, effects, None, now, depth);
        }
        if let Some(lc) = self.profile.lifecycles.get(resource)
            && let Some(initial) = &lc.initial
            && let Some(effects) = lc.on_enter.get(initial)
        {
            self.apply_effects(spec, store, tenant, resource, id, effects, None, now, depth);
        }
        for (from, to, at) in steps {
            self.transitioned(spec, store, tenant, resource, id, &from, &to, at, depth);
        }
    }

    /// Writes each embedded member of record `id`: its current children, as the member's
    /// item schema shows them.
    fn refresh_embeds(
        &self,
        spec: &Spec,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        id: &str,
    ) {
        let values = self.embeds(spec, store, tenant, resource, id);
        if values.is_empty() {
            return;
        }
        if let Some(r) = store.tenant(tenant).get_mut(resource, id) {
            r.body.extend(values);
        }
    }

    /// The embedded members of record `id` as they are now.
    fn embeds(
        &self,
        spec: &Spec,
        store: &Store,
        tenant: &str,
        resource: &str,
        id: &str,
    ) -> Vec<(String, Value)> {
        let Some(over) = self.profile.resources.get(resource) else {
            return Vec::new();
        };
        let schema = self.record_schema(resource);
        let mut values = Vec::new();
        for (member, child) in &over.embed {
            let item_schema = schema.and_then(|s| {
                let flat = flatten(&spec.doc, spec.at(s)?);
                let items = flat.get("properties")?.get(member)?.get("items")?;
                items
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(crate::spec::pointer::fragment_to_pointer)
            });
            let children: Vec<(String, Map<String, Value>)> = store
                .tenants
                .get(tenant)
                .and_then(|t| t.resources.get(child))
                .map(|recs| {
                    recs.iter()
                        .filter(|(_, r)| {
                            r.parent
                                .as_ref()
                                .is_some_and(|p| p.resource == resource && p.id == id)
                        })
                        .map(|(i, r)| (i.clone(), r.body.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let items: Vec<Value> = children
                .into_iter()
                .map(|(cid, mut body)| match &item_schema {
                    Some(s) => project(
                        spec,
                        self.seed,
                        &format!("{tenant}/{child}/{cid}"),
                        s,
                        &mut body,
                        None,
                        self.names_of(spec, s).as_deref(),
                        self.profile.generate_optional,
                    ),
                    None => Value::Object(body),
                })
                .collect();
            values.push((member.clone(), Value::Array(items)));
        }
        values
    }

    /// Why record `id` (with everything its delete cascades to) cannot be deleted: a live
    /// record references it through a reference declared `blocks_delete`.
    fn delete_blocked(
        &self,
        store: &Store,
        tenant: &str,
        resource: &str,
        id: &str,
    ) -> Option<String> {
        let t = store.tenants.get(tenant)?;
        // The record and its descendants.
        let mut doomed: Vec<(String, String)> = vec![(resource.to_owned(), id.to_owned())];
        let mut i = 0;
        while i < doomed.len() {
            let (r, rid) = doomed[i].clone();
            for (cr, recs) in &t.resources {
                for (cid, rec) in recs {
                    if rec
                        .parent
                        .as_ref()
                        .is_some_and(|p| p.resource == r && p.id == rid)
                    {
                        doomed.push((cr.clone(), cid.clone()));
                    }
                }
            }
            i += 1;
        }
        for (holder, over) in &self.profile.resources {
            for (member, reference) in &over.references {
                let profile::Reference::Full(spec) = reference else {
                    continue;
                };
                if !spec.blocks_delete {
                    continue;
                }
                for (hid, rec) in t.resources.get(holder).into_iter().flatten() {
                    if !spec.unless.is_empty() && profile::matches(&spec.unless, Some(&rec.body)) {
                        continue;
                    }
                    let Some((r, rid)) = self.referenced(store, tenant, holder, &rec.body, member)
                    else {
                        continue;
                    };
                    if doomed.iter().any(|(d, did)| *d == r && *did == rid) {
                        return Some(format!(
                            "{} '{id}' is still in use by {} '{hid}'",
                            singular(resource).replace('_', " "),
                            singular(holder).replace('_', " ")
                        ));
                    }
                }
            }
        }
        None
    }

    /// The scheduler's step: every due transition in every tenant. Returns how many
    /// resources were looked at.
    pub fn tick(&self, spec: &Spec) {
        let now = self.clock.now();
        let mut store = lock(&self.store);
        for resource in self.profile.lifecycles.keys() {
            self.advance_resource(spec, &mut store, None, resource, now, None);
        }
    }
}

/// Runs operation `oi` against the store.
pub fn handle(api: &Api, oi: usize, call: &Call) -> Outcome {
    let engine = &api.engine;
    let binding = &engine.model.bindings[oi];
    if binding.kind == Kind::Stateless || engine.stateless {
        return Outcome::Stateless;
    }
    if let Kind::Webhooks(what) = binding.kind {
        return delivery_log::handle(api, oi, what, call);
    }
    let Some(resource) = engine.model.resources.get(&binding.resource) else {
        return Outcome::Stateless;
    };
    let op = &api.spec.operations[oi];
    let schema = success_schema(op);
    let validator = schema.as_ref().and_then(|_| api.success_validator(oi));
    let mut store = lock(&engine.store);
    // A read never shows a state older than the clock allows: a list brings its records up
    // to date, an item operation its item; a create reads nothing that exists.
    if engine.profile.lifecycles.contains_key(&binding.resource) && binding.kind != Kind::Create {
        let only = binding.item_param.as_deref().and_then(|p| call.param(p));
        if only.is_some() || binding.kind == Kind::List {
            engine.advance_resource(
                &api.spec,
                &mut store,
                Some(call.tenant),
                &binding.resource,
                engine.clock.now(),
                only,
            );
        }
    }
    // The parent named in the path must exist, for every kind of operation under it.
    let parent = match &binding.parent {
        Some((param, ptype)) => {
            let Some(pid) = call.param(param) else {
                return Outcome::Stateless;
            };
            if store.get(call.tenant, ptype, pid).is_none() {
                return not_found(ptype, pid);
            }
            Some(ParentRef {
                resource: ptype.clone(),
                id: pid.to_owned(),
            })
        }
        None => None,
    };
    let ctx = Ctx {
        api,
        engine,
        binding,
        resource,
        call,
        schema: schema.as_deref(),
        validator: validator.as_deref(),
        parent,
        op_id: &op.id,
        oi,
    };
    match binding.kind {
        Kind::Create => ctx.create(&mut store),
        Kind::List => ctx.list(&mut store),
        Kind::Read | Kind::Update | Kind::Replace | Kind::Delete | Kind::Action => {
            ctx.item(&mut store)
        }
        Kind::DeleteAll => {
            let tenant = store.tenant(call.tenant);
            let ids: Vec<String> = tenant
                .resources
                .get(&resource.name)
                .map(|recs| {
                    recs.iter()
                        .filter(|(_, r)| r.parent == ctx.parent)
                        .map(|(i, _)| i.clone())
                        .collect()
                })
                .unwrap_or_default();
            for id in ids {
                tenant.remove_cascade(&resource.name, &id);
            }
            Outcome::Body(Value::Null)
        }
        Kind::SingletonRead | Kind::SingletonWrite => ctx.singleton(&mut store),
        Kind::Stateless | Kind::Webhooks(_) => Outcome::Stateless,
    }
}

fn not_found(resource: &str, id: &str) -> Outcome {
    Outcome::Problem(
        404,
        format!("no {} with id '{id}'", singular(resource).replace('_', " ")),
    )
}

struct Ctx<'a> {
    api: &'a Api,
    engine: &'a Engine,
    binding: &'a Binding,
    resource: &'a Resource,
    call: &'a Call<'a>,
    /// The operation's success response schema.
    schema: Option<&'a str>,
    validator: Option<&'a Validator>,
    parent: Option<ParentRef>,
    op_id: &'a str,
    oi: usize,
}

impl Ctx<'_> {
    fn spec(&self) -> &Spec {
        &self.api.spec
    }

    fn key(&self, id: &str) -> String {
        format!("{}/{}/{id}", self.call.tenant, self.resource.name)
    }

    /// Server-owned members: the id and the link to the parent.
    fn fixed(&self, id: &Value) -> Vec<(String, Value)> {
        let mut fixed = vec![(self.resource.id_field.clone(), id.clone())];
        if let (Some((param, _)), Some(p)) = (&self.binding.parent, &self.parent) {
            fixed.push((param.clone(), self.typed(param, &p.id)));
        }
        fixed
    }

    /// The flattened schema of one member of the resource's stored representation.
    fn member_schema(&self, member: &str) -> Option<Value> {
        let doc = &self.spec().doc;
        let resource = self
            .resource
            .schema
            .as_deref()
            .and_then(|s| self.spec().at(s))
            .map(|s| flatten(doc, s))?;
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
        }
    }

    fn respond(&self, record: &mut Map<String, Value>, key: &str) -> Outcome {
        match self.schema {
            Some(s) => {
                let names = self.engine.names_of(self.spec(), s);
                // A schema asking for `id` gets the record's id, whatever its member's name.
                if self.resource.id_field != "id"
                    && !record.contains_key("id")
                    && names
                        .as_ref()
                        .is_some_and(|n| n.names.iter().any(|x| x == "id"))
                    && let Some(v) = record.get(&self.resource.id_field).cloned()
                {
                    record.insert("id".to_owned(), v);
                }
                Outcome::Body(project(
                    self.spec(),
                    self.api.seed,
                    key,
                    s,
                    record,
                    self.validator,
                    names.as_deref(),
                    self.engine.profile.generate_optional,
                ))
            }
            None => Outcome::Body(Value::Null),
        }
    }

    /// Answers with stored record `id` of `resource`, its embedded children refreshed.
    fn respond_stored(&self, store: &mut Store, resource: &str, id: &str) -> Outcome {
        self.engine
            .refresh_embeds(self.spec(), store, self.call.tenant, resource, id);
        let key = format!("{}/{resource}/{id}", self.call.tenant);
        match store.tenant(self.call.tenant).get_mut(resource, id) {
            Some(r) => self.respond(&mut r.body, &key),
            None => not_found(resource, id),
        }
    }

    /// A new id: the client's, or one in the format the id member's schema asks for.
    fn mint_id(&self, store: &mut Store) -> Value {
        let field = &self.resource.id_field;
        if let Some(v) = self
            .call
            .body
            .and_then(|b| b.get(field))
            .filter(|v| v.is_string() || v.is_number())
        {
            return v.clone();
        }
        let tenant = store.tenant(self.call.tenant);
        let seq = tenant.next_seq + 1;
        let key = format!("id {}/{}/{seq}", self.call.tenant, self.resource.name);
        let mut g = Generator::new(&self.spec().doc, self.api.seed, &key, Direction::Response);
        // Examples are one fixed value; ids must be fresh every time.
        g.use_examples = false;
        if let Some(prefix) = &self.resource.id_prefix {
            let t = self.call.now;
            return json!(format!("{prefix}{}", ids::ksuid(g.rng(), t)));
        }
        let member = self.member_schema(field);
        match member {
            Some(m)
                if matches!(
                    m.get("type").and_then(Value::as_str),
                    Some("integer" | "number")
                ) =>
            {
                json!(seq)
            }
            Some(m) if m.get("format").is_some() || m.get("pattern").is_some() => g.value(&m),
            _ => json!(ids::ksuid(g.rng(), self.call.now)),
        }
    }

    fn create(&self, store: &mut Store) -> Outcome {
        let name = &self.resource.name;
        let tenant = self.call.tenant;
        let over = self.engine.profile.resources.get(name);
        let id_value = self.mint_id(store);
        let id = lists::text(&id_value);
        let fingerprint = self
            .call
            .body
            .map(|b| crate::generate::stable_hash(&b.to_string()));
        if let Some(existing) = store.get(tenant, name, &id) {
            // A client-chosen id repeated with the same request is a retry.
            if over.is_some_and(|o| o.idempotent_id) && existing.meta.fingerprint == fingerprint {
                return self.respond_stored(store, name, &id);
            }
            return Outcome::Problem(
                409,
                format!(
                    "a {} with id '{id}' already exists{}",
                    singular(name).replace('_', " "),
                    if over.is_some_and(|o| o.idempotent_id) {
                        " with different parameters"
                    } else {
                        ""
                    }
                ),
            );
        }
        // Members naming other records must name existing ones.
        if let (Some(o), Some(Value::Object(sent))) = (over, self.call.body) {
            for (member, reference) in &o.references {
                let Some(v) = sent.get(member).filter(|v| !v.is_null()) else {
                    continue;
                };
                if self
                    .engine
                    .referenced(store, tenant, name, sent, member)
                    .is_none()
                {
                    let shown = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    return not_found(reference.resource(), &shown);
                }
            }
        }
        let key = self.key(&id);
        let record =
            self.new_record(key.clone())
                .build(self.call.body, &self.fixed(&id_value), None);
        let t = store.tenant(tenant);
        t.insert(name, id.clone(), record, self.parent.clone());
        if let Some(r) = t.get_mut(name, &id) {
            r.meta.fingerprint = fingerprint.filter(|_| over.is_some_and(|o| o.idempotent_id));
        }
        let now = self.engine.clock.now();
        self.engine.created(
            self.spec(),
            store,
            tenant,
            name,
            &id,
            Some(self.call),
            self.call.instant,
            now,
            0,
        );
        if self.binding.respond_parent
            && let Some(p) = &self.parent
        {
            let (r, i) = (p.resource.clone(), p.id.clone());
            return self.respond_stored(store, &r, &i);
        }
        let outcome = self.respond_stored(store, name, &id);
        // Secrets are shown once.
        if let (Some(o), Some(r)) = (over, store.tenant(tenant).get_mut(name, &id)) {
            for m in &o.once {
                r.body.remove(m);
            }
        }
        outcome
    }

    /// Item operations, with lifecycle triggers before and events after.
    fn item(&self, store: &mut Store) -> Outcome {
        let Some(id) = self.item_id() else {
            return Outcome::Stateless;
        };
        let name = &self.resource.name;
        let now = self.engine.clock.now();
        let tenant_key = self.call.tenant;
        let exists = store
            .get(tenant_key, name, id)
            .is_some_and(|r| self.parent.is_none() || r.parent == self.parent);
        let over = self.engine.profile.resources.get(name);
        if exists && self.binding.kind == Kind::Delete {
            if let Some(why) = self.engine.delete_blocked(store, tenant_key, name, id) {
                return Outcome::Problem(409, why);
            }
            // A delete's effects read the record as it was, so they run before it goes.
            if let Some(effects) = over.and_then(|o| o.on_delete.as_ref()) {
                self.engine.apply_effects(
                    self.spec(),
                    store,
                    tenant_key,
                    name,
                    id,
                    effects,
                    None,
                    now,
                    0,
                );
            }
        }
        if let (true, Some(lc)) = (exists, self.engine.profile.lifecycles.get(name)) {
            let Some(rec) = store.tenant(tenant_key).get_mut(name, id) else {
                return not_found(name, id);
            };
            match lifecycle::trigger(
                lc,
                self.op_id,
                self.call.body,
                &mut rec.body,
                &mut rec.meta,
                now,
            ) {
                lifecycle::Triggered::Unknown(why) => {
                    return Outcome::Problem(400, why);
                }
                lifecycle::Triggered::Illegal(why) => {
                    let op = self.api.spec.operations.iter().find(|o| o.id == self.op_id);
                    let status = [409, 400, 422]
                        .into_iter()
                        .find(|s| op.is_some_and(|o| o.declares(*s)))
                        .unwrap_or(409);
                    return Outcome::Problem(
                        status,
                        format!(
                            "{} '{id}': {} is {why}",
                            singular(name).replace('_', " "),
                            self.op_id
                        ),
                    );
                }
                lifecycle::Triggered::Applied((from, to, at)) => {
                    self.engine.transitioned(
                        self.spec(),
                        store,
                        tenant_key,
                        name,
                        id,
                        &from,
                        &to,
                        at,
                        0,
                    );
                }
                lifecycle::Triggered::NotALifecycleOperation => {}
            }
        }
        let before = store.get(tenant_key, name, id).map(|r| r.body.clone());
        let outcome = self.item_inner(store, id);
        if matches!(outcome, Outcome::Problem(..)) {
            return outcome;
        }
        let after = store.get(tenant_key, name, id).map(|r| r.body.clone());
        let updated = matches!(self.binding.kind, Kind::Update | Kind::Replace)
            && before.is_some()
            && after.is_some()
            && before != after;
        if updated && let Some(effects) = over.and_then(|o| o.on_update.as_ref()) {
            self.engine.apply_effects(
                self.spec(),
                store,
                tenant_key,
                name,
                id,
                effects,
                None,
                now,
                0,
            );
        }
        if self.binding.respond_parent
            && let Some(p) = &self.parent
        {
            let (r, i) = (p.resource.clone(), p.id.clone());
            let parent_outcome = self.respond_stored(store, &r, &i);
            self.emit_item_change(store, before, after, now);
            return parent_outcome;
        }
        self.emit_item_change(store, before, after, now);
        outcome
    }

    fn emit_item_change(
        &self,
        store: &mut Store,
        before: Option<Map<String, Value>>,
        after: Option<Map<String, Value>>,
        now: f64,
    ) {
        let (tenant_key, name) = (self.call.tenant, &self.resource.name);
        match (self.binding.kind, before, after) {
            (Kind::Update | Kind::Replace, Some(old), Some(new)) if old != new => {
                let previous: Map<String, Value> = old
                    .iter()
                    .filter(|(k, v)| new.get(*k) != Some(v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.engine.emit(
                    store,
                    tenant_key,
                    name,
                    "updated",
                    &new,
                    Some(Value::Object(previous)),
                    now,
                );
            }
            (Kind::Replace, None, Some(new)) => self
                .engine
                .emit(store, tenant_key, name, "created", &new, None, now),
            (Kind::Delete, Some(old), None) => self
                .engine
                .emit(store, tenant_key, name, "deleted", &old, None, now),
            _ => {}
        }
    }

    /// The id of the item named in the path.
    fn item_id(&self) -> Option<&str> {
        self.binding
            .item_param
            .as_deref()
            .and_then(|p| self.call.param(p))
    }

    fn item_inner(&self, store: &mut Store, id: &str) -> Outcome {
        let key = self.key(id);
        let name = &self.resource.name;
        let exists = store
            .get(self.call.tenant, name, id)
            .is_some_and(|r| self.parent.is_none() || r.parent == self.parent);
        let tenant = store.tenant(self.call.tenant);
        match self.binding.kind {
            Kind::Replace if !exists => {
                // PUT to an id that does not exist yet creates it (an upsert).
                let record = self.new_record(key.clone()).build(
                    self.call.body,
                    &self.fixed(&self.typed(&self.resource.id_field, id)),
                    None,
                );
                tenant.insert(name, id.to_owned(), record, self.parent.clone());
                let Some(stored) = tenant.get_mut(name, id) else {
                    return Outcome::Stateless;
                };
                self.respond(&mut stored.body, &key)
            }
            _ if !exists => not_found(name, id),
            Kind::Read => self.respond_stored(store, name, id),
            Kind::Update => {
                let validator = self.engine.validators.get(name).map(|v| v.as_ref());
                let schema = self.resource.schema.clone();
                let Some(r) = tenant.get_mut(name, id) else {
                    return not_found(name, id);
                };
                let before = r.body.clone();
                if let Some(Value::Object(changes)) = self.call.body {
                    for (k, v) in changes {
                        if *k != self.resource.id_field {
                            r.body.insert(k.clone(), v.clone());
                        }
                    }
                }
                if let Some(s) = &schema {
                    for member in ["updated_at", "updatedAt", "updated"] {
                        if r.body.contains_key(member) {
                            r.body.insert(
                                member.to_owned(),
                                timestamp_for(self.spec(), s, member, self.call.now),
                            );
                        }
                    }
                }
                repair(&mut r.body, Some(&before), validator, &[]);
                self.respond(&mut r.body, &key)
            }
            Kind::Replace => {
                let created = tenant.get_mut(name, id).and_then(|r| {
                    ["created_at", "createdAt", "created"]
                        .iter()
                        .find_map(|m| r.body.get(*m).cloned())
                });
                let record = self.new_record(key.clone()).build(
                    self.call.body,
                    &self.fixed(&self.typed(&self.resource.id_field, id)),
                    created.as_ref(),
                );
                let Some(r) = tenant.get_mut(name, id) else {
                    return not_found(name, id);
                };
                r.body = record;
                self.respond(&mut r.body, &key)
            }
            Kind::Delete => match tenant.remove_cascade(name, id) {
                Some(mut removed) => self.respond(&mut removed.body, &key),
                None => not_found(name, id),
            },
            _ => {
                // An action on an existing item: answer with the item when the response is
                // its representation, else from the spec.
                // A different response schema is filled from the record's members by name
                // (`simulation_id`, `previous_state`...), the rest generated.
                match tenant.get_mut(name, id) {
                    Some(r) if self.schema.is_some() => {
                        let same = canonical(self.spec(), self.schema)
                            == canonical(self.spec(), self.resource.schema.as_deref());
                        if same {
                            self.respond(&mut r.body, &key)
                        } else {
                            // Members generated for another schema are not the record's.
                            self.respond(&mut r.body.clone(), &key)
                        }
                    }
                    _ => Outcome::Stateless,
                }
            }
        }
    }

    /// A page of the collection. Members generated for its items are kept on the records,
    /// as item reads keep them, so a list is not regenerated on every request.
    fn list(&self, store: &mut Store) -> Outcome {
        let Some(schema) = self.schema else {
            return Outcome::Stateless;
        };
        let mut generated = Vec::new();
        let outcome = self.list_page(store, schema, &mut generated);
        let embedded = self
            .engine
            .profile
            .resources
            .get(&self.resource.name)
            .map(|o| &o.embed);
        let tenant = store.tenant(self.call.tenant);
        for (id, copy) in generated {
            let Some(r) = tenant.get_mut(&self.resource.name, &id) else {
                continue;
            };
            for (k, v) in copy {
                if !r.body.contains_key(&k) && embedded.is_none_or(|e| !e.contains_key(&k)) {
                    r.body.insert(k, v);
                }
            }
        }
        outcome
    }

    fn list_page(
        &self,
        store: &Store,
        schema: &str,
        generated: &mut Vec<(String, Map<String, Value>)>,
    ) -> Outcome {
        let plan = self.engine.list_plan(self.spec(), self.oi, schema);
        let records: Vec<&Map<String, Value>> = store
            .tenants
            .get(self.call.tenant)
            .and_then(|t| t.resources.get(&self.resource.name))
            .map(|recs| {
                recs.values()
                    .filter(|r| self.parent.is_none() || r.parent == self.parent)
                    .map(|r| &r.body)
                    .collect()
            })
            .unwrap_or_default();
        let query = lists::ListQuery {
            params: self.call.query,
            default_limit: plan.default_limit,
            max_limit: plan.max_limit,
            id_field: &self.resource.id_field,
        };
        let page = match lists::page(records, &query) {
            Ok(p) => p,
            Err(e) => return Outcome::Problem(400, e.message),
        };
        let items: Vec<Value> = page
            .items
            .iter()
            .map(|r| {
                let mut copy = (*r).clone();
                let id = lists::id_of(r, &self.resource.id_field).unwrap_or_default();
                copy.extend(self.engine.embeds(
                    self.spec(),
                    store,
                    self.call.tenant,
                    &self.resource.name,
                    &id,
                ));
                match &plan.item_schema {
                    Some(s) => {
                        let before = copy.len();
                        let shown = project(
                            self.spec(),
                            self.api.seed,
                            &self.key(&id),
                            s,
                            &mut copy,
                            None,
                            plan.item_members.as_deref(),
                            self.engine.profile.generate_optional,
                        );
                        if copy.len() > before {
                            generated.push((id, copy));
                        }
                        shown
                    }
                    None => Value::Object(copy),
                }
            })
            .collect();
        if plan.bare {
            return Outcome::Body(Value::Array(items));
        }
        let last_id = page
            .items
            .last()
            .and_then(|r| lists::id_of(r, &self.resource.id_field));
        let mut body = plan.wrapper.clone();
        body.insert(plan.array_member.clone(), Value::Array(items));
        fill_meta(&mut body, &page, last_id.as_deref(), &plan.array_member);
        Outcome::Body(Value::Object(body))
    }

    fn singleton(&self, store: &mut Store) -> Outcome {
        let (Some(id), Some(sub)) = (
            self.binding
                .item_param
                .as_deref()
                .and_then(|p| self.call.param(p)),
            &self.binding.singleton,
        ) else {
            return Outcome::Stateless;
        };
        let name = &self.resource.name;
        if store
            .get(self.call.tenant, name, id)
            .is_none_or(|r| self.parent.is_some() && r.parent != self.parent)
        {
            return not_found(name, id);
        }
        let Some(schema) = self.schema else {
            return Outcome::Body(Value::Null);
        };
        let key = format!("{}/{sub}", self.key(id));
        let slot = format!("{name}/{sub}");
        let tenant = store.tenant(self.call.tenant);
        let doc = tenant
            .singletons
            .entry(slot)
            .or_default()
            .entry(id.to_owned())
            .or_insert_with(|| json!({}));
        if self.binding.kind == Kind::SingletonWrite
            && let (Value::Object(target), Some(Value::Object(changes))) =
                (&mut *doc, self.call.body)
        {
            for (k, v) in changes {
                target.insert(k.clone(), v.clone());
            }
        }
        let Value::Object(map) = doc else {
            return Outcome::Stateless;
        };
        let names = self.engine.names_of(self.spec(), schema);
        Outcome::Body(project(
            self.spec(),
            self.api.seed,
            &key,
            schema,
            map,
            self.validator,
            names.as_deref(),
            self.engine.profile.generate_optional,
        ))
    }
}

fn canonical(spec: &Spec, ptr: Option<&str>) -> Option<String> {
    let ptr = ptr?;
    let node = spec.at(ptr)?;
    Some(
        crate::spec::pointer::resolve(&spec.doc, node)
            .ok()
            .and_then(|(_, at)| at)
            .unwrap_or_else(|| ptr.to_owned()),
    )
}

fn fill_meta(
    map: &mut Map<String, Value>,
    page: &lists::Page,
    last_id: Option<&str>,
    array_member: &str,
) {
    for (k, v) in map.iter_mut() {
        if k == array_member {
            continue;
        }
        match (k.as_str(), &*v) {
            (
                "total_count" | "total" | "count" | "total_items" | "totalCount",
                Value::Number(_),
            ) => *v = json!(page.total),
            (
                "has_more" | "has_more_after" | "has_next" | "has_next_page" | "hasMore",
                Value::Bool(_),
            ) => *v = json!(page.has_more_after),
            (
                "has_more_before" | "has_previous" | "has_prev" | "has_previous_page",
                Value::Bool(_),
            ) => *v = json!(page.has_more_before),
            ("limit" | "page_size" | "per_page", Value::Number(_)) => *v = json!(page.limit),
            ("offset", Value::Number(_)) => *v = json!(page.offset),
            ("page", Value::Number(_)) => *v = json!(page.offset / page.limit.max(1) + 1),
            ("next_cursor" | "cursor" | "next" | "next_page_token", _) => {
                *v = match (page.has_more_after, last_id) {
                    (true, Some(id)) => json!(id),
                    _ => Value::Null,
                }
            }
            (_, Value::Object(inner)) => {
                let mut inner = inner.clone();
                fill_meta(&mut inner, page, last_id, array_member);
                *v = Value::Object(inner);
            }
            _ => {}
        }
    }
}
