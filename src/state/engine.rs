//! The engine of one API: the resources inferred from its spec and profile, the store of
//! records per tenant, and everything that changes with requests and time (idempotency keys,
//! rate windows, the virtual clock, events and webhook deliveries). What it does with them
//! lives beside it, one job per file: `operations` answers a request, `effects` runs
//! lifecycles and the profile's effects, `relations` follows references, `emit` records
//! events, `delivery_log` serves webhook history.

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonschema::Validator;
use parking_lot::{Mutex, RwLock, RwLockWriteGuard};
use serde_json::Value;

use super::behaviour::{Behaviour, OwnData};
use super::clock::Clock;
use super::credentials::Patterns;
use super::events::EventLog;
use super::idempotency::Idempotency;
use super::lifecycle;
use super::lists::ListPlan;
use super::model::Kind;
use super::model::Model;
use super::persist::{Part, StateLog};
use super::rate_limit::RateLimiter;
use super::shape::{Members, item_schema};
use super::store::{IndexPlan, Store};
use super::turns::Turns;
use super::webhooks::{Signer, WebhookState};
use crate::compiled::Api;
use crate::hashing::{HashMap, HashSet};
use crate::profile::{Embed, Profile};
use crate::schema::Direction;
use crate::spec::catalog::Location;
use crate::spec::{Spec, SpecError};

/// How deep effects may cascade (an update whose transition updates another record...).
pub const MAX_EFFECT_DEPTH: usize = 8;

pub struct Engine {
    /// The API's name (the state file keeps each API's records under it).
    pub name: String,
    pub model: Model,
    pub profile: Arc<Profile>,
    pub store: RwLock<Store>,
    /// Served creates and behaviours' answers take turns here before they lock the store
    /// for writing.
    turns: Turns,
    /// Tenants known to be in the store (provisioned when the profile provisions), so a
    /// request need not look at the store, perhaps locked for writing, to know. Changed
    /// only under the store's write lock.
    pub(super) provisioned: RwLock<HashSet<String>>,
    /// Resource type -> validator of its stored representation.
    pub validators: HashMap<String, Arc<Validator>>,
    pub idempotency: Idempotency,
    /// `--stateless`: answer every operation from the spec alone, storing nothing.
    pub stateless: bool,
    pub rate_limit: RateLimiter,
    pub clock: Clock,
    /// Every event, all tenants, in order.
    pub events: Mutex<EventLog>,
    pub webhooks: Mutex<WebhookState>,
    pub signer: Signer,
    pub seed: u64,
    /// Schema pointer -> its members (`None`: free-form), computed once.
    pub(super) names: RwLock<rustc_hash::FxHashMap<String, Option<Arc<Members>>>>,
    /// Resource -> its schema's members checked one by one, when they may be (worked out
    /// on its first create).
    member_checks: RwLock<HashMap<String, Option<Arc<super::shape::MemberChecks>>>>,
    /// Resource -> what completing one of its new records generates, worked out once.
    completions: RwLock<HashMap<String, Arc<Completion>>>,
    /// Operation -> how its list responses are shaped, computed once.
    pub(super) list_plans: Mutex<HashMap<usize, Arc<ListPlan>>>,
    /// `(resource, member)` -> pointer of the item schema of each embedded array member.
    pub(super) embed_items: HashMap<(String, String), String>,
    /// Resources whose records show the webhook deliveries of the events they caused.
    pub(super) shows_caused: HashSet<String>,
    /// Resource -> the response schemas its records are shown through (item, list item,
    /// create and update answers): what a new record is completed for.
    pub(super) shown: HashMap<String, Vec<String>>,
    /// Resource -> the flattened schema of its id member.
    pub(super) id_schemas: HashMap<String, Value>,
    /// What the store indexes.
    pub plan: Arc<IndexPlan>,
    /// The `--state` log, when there is one: every change is written before it is answered.
    pub log: Option<Arc<StateLog>>,
    /// The credential classes' patterns, compiled.
    pub(super) patterns: Patterns,
    /// The behaviours the profile names, by that name (plugged in by whoever builds the
    /// engine: the registry of behaviours sits above this layer).
    pub behaviours: BTreeMap<String, Arc<dyn Behaviour>>,
}

thread_local! {
    /// The state log append made by the last write on this thread (requests read it right
    /// after the engine answers, on the same thread, to wait for it to be on disk).
    static LAST_APPEND: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The store, locked for writing: when it is released, what changed goes to the state log.
pub struct Writing<'a> {
    guard: RwLockWriteGuard<'a, Store>,
    engine: &'a Engine,
}

impl std::ops::Deref for Writing<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.guard
    }
}

impl std::ops::DerefMut for Writing<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.guard
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if let Some(log) = &self.engine.log {
            let own = self.engine.own_data();
            let frames = super::persist::changes(&self.engine.name, &mut self.guard, &own);
            let seq = log.append(frames);
            if seq > 0 {
                LAST_APPEND.with(|c| c.set(seq));
            }
        } else {
            // Without a state file nobody reads the changes: dropped here, or they would
            // pile up for the life of the process (a million readings' worth, for one).
            for (_, data) in self.engine.own_data() {
                drop(data.take_changes());
            }
        }
    }
}

impl Engine {
    /// The engine of a compiled API: its resources inferred, their validators at hand, its
    /// store empty.
    pub fn new(api: &Api) -> Result<Self, SpecError> {
        let spec = &api.spec;
        let profile = api.profile.clone();
        let model = Model::infer(spec, &profile);
        let (embed_items, shows_caused) = embeds(spec, &profile, &model);
        let patterns = Patterns::compile(&profile.tenancy.credentials).map_err(|reason| {
            SpecError::new(
                crate::profile::file_for(&spec.file),
                "/tenancy/credentials",
                reason,
            )
        })?;
        let plan = Arc::new(index_plan(spec, &profile, &model));
        let shown = shown_schemas(spec, &model);
        let id_schemas = id_schemas(spec, &model);
        let mut validators = HashMap::default();
        for r in model.resources.values() {
            // Usually compiled already (the item GET's response schema).
            if let Some(ptr) = &r.schema {
                validators.insert(r.name.clone(), api.validator(Direction::Response, ptr)?);
            }
        }
        Ok(Self {
            name: api.name.clone(),
            log: None,
            behaviours: BTreeMap::new(),
            patterns,
            rate_limit: RateLimiter::new(spec, &profile),
            signer: Signer::new(
                profile.webhooks.signing.as_deref(),
                webhook_secret(api.seed),
            ),
            model,
            profile,
            store: RwLock::new(Store::new(plan.clone())),
            turns: Turns::default(),
            provisioned: RwLock::new(HashSet::default()),
            validators,
            idempotency: Idempotency::default(),
            stateless: false,
            clock: Clock::new(1.0),
            events: Mutex::new(EventLog::default()),
            webhooks: Mutex::new(WebhookState::default()),
            seed: api.seed,
            names: RwLock::default(),
            completions: RwLock::default(),
            member_checks: RwLock::default(),
            list_plans: Mutex::new(HashMap::default()),
            embed_items,
            shows_caused,
            shown,
            id_schemas,
            plan,
        })
    }

    /// The store, for writing; what changes is logged when it is released.
    pub fn write(&self) -> Writing<'_> {
        Writing {
            guard: self.store.write(),
            engine: self,
        }
    }

    /// Runs `write` (which takes [`write`](Self::write)) in this request's turn
    /// ([`Turns`]), then hands the turn over ([`Turns::hand_over`]). Also returns the state
    /// log append `write` made (0 for none), read on the thread that made it, before the
    /// hand-over may move the request to another thread.
    pub(super) async fn in_turn<R>(&self, write: impl FnOnce() -> R) -> (R, u64) {
        let out = {
            let _turn = self.turns.take().await;
            write()
        };
        let append = self.take_append();
        self.turns.hand_over().await;
        (out, append)
    }

    /// Packs the bodies a state log left whole at start ([`Store::pack_loaded`]), a slice
    /// at a time, so requests are answered meanwhile.
    pub fn pack_loaded(&self) {
        const SLICE: usize = 2048;
        while self.store.write().pack_loaded(SLICE) {
            std::thread::yield_now();
        }
    }

    /// The state log append the last write on this thread made (0 for none), cleared.
    pub fn take_append(&self) -> u64 {
        LAST_APPEND.with(|c| c.replace(0))
    }

    /// Waits until state log append `seq` is on disk (at once without a log).
    pub async fn durable(&self, seq: u64) {
        if let Some(log) = &self.log {
            log.durable(seq).await;
        }
    }

    /// The data this engine's behaviours keep, by name, for the state file.
    pub fn own_data(&self) -> Vec<(&str, &dyn OwnData)> {
        self.behaviours
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_ref() as &dyn OwnData))
            .collect()
    }

    /// This API's share of the state file.
    pub fn part(&self) -> Part<'_> {
        Part {
            api: &self.name,
            store: &self.store,
            own: self.own_data(),
        }
    }

    /// The behaviour the profile binds to `resource`, if any.
    pub(super) fn behaviour_of(&self, resource: &str) -> Option<&Arc<dyn Behaviour>> {
        let name = self.profile.resources.get(resource)?.behaviour.as_deref()?;
        self.behaviours.get(name)
    }

    /// Replaces every record with an export's.
    pub fn import(&self, store: Store) {
        let mut writing = self.write();
        writing.replace(store);
        self.provisioned.write().clear();
        drop(writing);
        self.idempotency.clear(None);
    }

    /// The property names (and required ones) of the schema at `ptr`, cached.
    pub(crate) fn names_of(&self, spec: &Spec, ptr: &str) -> Option<Arc<Members>> {
        // Read by every answer that shows a record: a read lock, and FxHash for the keys
        // (the spec's own pointers).
        if let Some(n) = self.names.read().get(ptr) {
            return n.clone();
        }
        let n = Members::of(spec, ptr).map(Arc::new);
        self.names.write().insert(ptr.to_owned(), n.clone());
        n
    }

    /// The tenant a credential acts for: its own, or, for a credential the API issued
    /// (`tenancy.issued`), the tenant owning the record that holds it.
    pub fn tenant_for(&self, credential: String) -> String {
        let issued = &self.profile.tenancy.issued;
        if issued.is_empty() {
            return credential;
        }
        let store = self.store.read();
        if store.tenants.contains_key(&credential) {
            return credential;
        }
        let wanted = Value::String(credential.clone());
        let owner = store.tenants.iter().find_map(|(t, state)| {
            issued
                .iter()
                .any(|i| {
                    state
                        .collection(&i.resource)
                        .is_some_and(|c| c.find_by(&i.member, &wanted).is_some())
                })
                .then(|| t.clone())
        });
        owner.unwrap_or(credential)
    }

    /// Clears all state, or one tenant's.
    pub fn reset(&self, tenant: Option<&str>) {
        let mut writing = self.write();
        writing.reset(tenant);
        let mut known = self.provisioned.write();
        match tenant {
            Some(t) => {
                known.remove(t);
            }
            None => known.clear(),
        }
        drop((known, writing));
        self.idempotency.clear(tenant);
        if tenant.is_none() {
            self.rate_limit.clear();
        }
        for b in self.behaviours.values() {
            b.reset(tenant);
        }
    }

    /// The flattened schema of `resource`'s id member, if its schema declares one.
    pub(super) fn id_schema(&self, _spec: &Spec, resource: &str) -> Option<&Value> {
        self.id_schemas.get(resource)
    }

    /// Generates, once, the members a new record of `resource` (key `key`) will be shown
    /// with and lacks, so every later read and event agrees on them.
    pub(super) fn complete(
        &self,
        spec: &Spec,
        key: &str,
        resource: &str,
        record: &mut serde_json::Map<String, Value>,
    ) {
        let completion = self.completion(spec, resource);
        // A schema asking for `id` shows the record's id, whatever its member's name.
        let id_field = self
            .model
            .resources
            .get(resource)
            .map(|r| r.id_field.as_str());
        if let Some(field) = id_field.filter(|f| *f != "id")
            && completion.shows_id
            && !record.contains_key("id")
            && let Some(id) = record.get(field).cloned()
        {
            record.insert("id".to_owned(), id);
        }
        let shown = super::shape::Shown {
            spec,
            seed: self.seed,
            generate_optional: self.profile.generate_optional,
        };
        for i in completion.missing(record) {
            if let Some((schema, name, member)) = completion.members.get(i) {
                record.insert(name.clone(), shown.member(key, schema, name, member));
            }
        }
    }

    /// The member-by-member checks of `resource`'s schema, when it is a plain object.
    pub(super) fn member_checks(
        &self,
        api: &crate::compiled::Api,
        resource: &str,
    ) -> Option<Arc<super::shape::MemberChecks>> {
        if let Some(c) = self.member_checks.read().get(resource) {
            return c.clone();
        }
        let schema = self.model.resources.get(resource)?.schema.as_deref()?;
        let compile = |ptr: &str| api.validator(crate::schema::Direction::Response, ptr).ok();
        let checks = super::shape::MemberChecks::of(&api.spec, schema, compile).map(Arc::new);
        self.member_checks
            .write()
            .insert(resource.to_owned(), checks.clone());
        checks
    }

    /// What completing a new record of `resource` generates, worked out once.
    fn completion(&self, spec: &Spec, resource: &str) -> Arc<Completion> {
        if let Some(c) = self.completions.read().get(resource) {
            return c.clone();
        }
        let schemas: Vec<(&String, Arc<Members>)> = self
            .shown
            .get(resource)
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s, self.names_of(spec, s)?)))
            .collect();
        let generate_optional = self.profile.generate_optional;
        let mut members: Vec<(String, String, Value)> = Vec::new();
        // A member is generated under the first schema that would generate it: the later
        // ones find it there.
        for (schema, m) in &schemas {
            for name in &m.names {
                let wanted = generate_optional || m.required.contains(name);
                if wanted
                    && !members.iter().any(|(_, n, _)| n == name)
                    && let Some(member) = m.schemas.get(name)
                {
                    members.push(((*schema).clone(), name.clone(), member.clone()));
                }
            }
        }
        let completion = Arc::new(Completion {
            shows_id: schemas
                .iter()
                .any(|(_, m)| m.names.iter().any(|n| n == "id")),
            members,
            last: Mutex::default(),
        });
        self.completions
            .write()
            .insert(resource.to_owned(), completion.clone());
        completion
    }

    /// The schema a resource's records follow, for time formats and generation.
    pub(super) fn record_schema(&self, resource: &str) -> Option<&str> {
        self.model
            .resources
            .get(resource)
            .and_then(|r| r.schema.as_deref())
    }
}

/// The item schema of each embedded array member, and the resources whose records show the
/// deliveries of the events they caused: worked out once, not per record shown.
fn embeds(
    spec: &Spec,
    profile: &Profile,
    model: &Model,
) -> (HashMap<(String, String), String>, HashSet<String>) {
    let mut embed_items = HashMap::default();
    let mut shows_caused = HashSet::default();
    for (resource, over) in &profile.resources {
        let schema = model
            .resources
            .get(resource)
            .and_then(|r| r.schema.as_deref());
        for (member, embed) in &over.embed {
            if matches!(embed, Embed::Deliveries { .. }) {
                shows_caused.insert(resource.clone());
            }
            if let Some(items) = schema.and_then(|s| item_schema(spec, s, member)) {
                embed_items.insert((resource.clone(), member.clone()), items);
            }
        }
    }
    (embed_items, shows_caused)
}

/// The members the store indexes: those the spec's list operations filter and sort on, and
/// those records are looked up by (references by member, lookups, issued credentials, links
/// kept on the child's side); and when each resource's lifecycle is next due.
fn index_plan(spec: &Spec, profile: &Arc<Profile>, model: &Model) -> IndexPlan {
    let mut plan = IndexPlan::default();
    let mut add = |resource: &str, member: &str, equal: bool, sorted: bool| {
        let kind = plan
            .members
            .entry(resource.to_owned())
            .or_default()
            .entry(Arc::from(member))
            .or_default();
        kind.equal |= equal;
        kind.sorted |= sorted;
    };
    for (op, b) in spec.operations.iter().zip(&model.bindings) {
        if b.kind == Kind::List {
            for p in op.params.iter().filter(|p| p.location == Location::Query) {
                for (member, ordered) in filter_members(&p.name) {
                    add(&b.resource, &member, !ordered, ordered);
                }
                if matches!(p.name.as_str(), "sort_by" | "sort") {
                    for field in sort_fields(spec, p.schema.as_deref()) {
                        add(&b.resource, &field, false, true);
                    }
                }
            }
        }
        if let Some(lookup) = &b.lookup {
            add(&b.resource, lookup, true, false);
        }
        if let Some(link) = &b.link {
            match (&link.by, link.parent_holds) {
                (Some(by), true) => add(&b.resource, by, true, false),
                (_, false) => add(&b.resource, &link.member, true, false),
                _ => {}
            }
        }
    }
    for over in profile.resources.values() {
        for reference in over.references.values() {
            if let Some(member) = reference.member() {
                add(reference.resource(), member, true, false);
            }
        }
    }
    for issued in &profile.tenancy.issued {
        add(&issued.resource, &issued.member, true, false);
    }
    plan.timed = profile
        .lifecycles
        .iter()
        .filter(|(_, lc)| lc.transitions.iter().any(|t| t.after.is_some()))
        .map(|(r, _)| r.clone())
        .collect();
    let lifecycles = profile.clone();
    plan.due = Some(Box::new(move |resource, body, meta, key| {
        lifecycle::due_at(lifecycles.lifecycles.get(resource)?, body, meta, key)
    }));
    plan
}

/// The record members a list's query parameter may filter on, and whether in order (a
/// range) rather than by value: the parameter itself, the singular of a plural (`statuses`
/// -> `status`), the base of a range (`amount_min` -> `amount`), `created_at` for date
/// bounds.
fn filter_members(param: &str) -> Vec<(String, bool)> {
    if crate::state::lists::PAGING.contains(&param) || param == "search" {
        return Vec::new();
    }
    let mut out = vec![(param.to_owned(), false)];
    for suffix in ["_from", "_to", "_min", "_max"] {
        if let Some(base) = param.strip_suffix(suffix) {
            out.push((base.to_owned(), true));
        }
    }
    if matches!(
        param,
        "start_date" | "end_date" | "from" | "to" | "created_after" | "created_before"
    ) {
        out.push(("created_at".to_owned(), true));
    }
    for suffix in ["es", "s"] {
        if let Some(single) = param.strip_suffix(suffix) {
            out.push((single.to_owned(), false));
        }
    }
    out
}

/// The fields a `sort_by` parameter enumerates (`-field` sorts the other way).
fn sort_fields(spec: &Spec, schema: Option<&str>) -> Vec<String> {
    let Some(s) = schema.and_then(|p| spec.at(p)) else {
        return Vec::new();
    };
    crate::generate::flatten(&spec.doc, s)
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|f| f.trim_start_matches('-').to_owned())
        .collect()
}

/// The members a new record of one resource is completed with: each member a schema it is
/// shown through has (or requires), under the first such schema, with the member's schema.
pub(super) struct Completion {
    /// Whether a schema shows `id` (the record's id, whatever its id member's name).
    shows_id: bool,
    /// `(schema pointer, member, member schema)`.
    members: Vec<(String, String, Value)>,
    /// The member names of the record completed last, and which of `members` it lacked:
    /// a resource's new records mostly come in one shape, which then needs no lookups.
    last: Mutex<Option<(Vec<String>, Vec<usize>)>>,
}

impl Completion {
    /// Which of `members` `record` lacks.
    fn missing(&self, record: &serde_json::Map<String, Value>) -> Vec<usize> {
        if let Some((names, missing)) = &*self.last.lock()
            && super::store::same_names(names, record)
        {
            return missing.clone();
        }
        let missing: Vec<usize> = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, (_, name, _))| !record.contains_key(name))
            .map(|(i, _)| i)
            .collect();
        *self.last.lock() = Some((record.keys().cloned().collect(), missing.clone()));
        missing
    }
}

/// Each resource's distinct response schemas (item reads, list items, creates, updates).
fn shown_schemas(spec: &Spec, model: &Model) -> HashMap<String, Vec<String>> {
    let mut shown: HashMap<String, Vec<String>> = HashMap::default();
    for (oi, b) in model.bindings.iter().enumerate() {
        if !matches!(
            b.kind,
            Kind::Read | Kind::List | Kind::Create | Kind::Update | Kind::Replace
        ) || b.resource.is_empty()
            || b.respond_parent
        {
            continue;
        }
        let Some(schema) = model.shown_schema(spec, oi) else {
            continue;
        };
        let list = shown.entry(b.resource.clone()).or_default();
        if !list.contains(&schema) {
            list.push(schema);
        }
    }
    shown
}

/// The flattened schema of each resource's id member.
fn id_schemas(spec: &Spec, model: &Model) -> HashMap<String, Value> {
    model
        .resources
        .values()
        .filter_map(|r| {
            let schema = crate::generate::flatten(&spec.doc, spec.at(r.schema.as_deref()?)?);
            let member = schema.get("properties")?.get(&r.id_field)?;
            Some((r.name.clone(), crate::generate::flatten(&spec.doc, member)))
        })
        .collect()
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
