//! Stateful behaviour for any spec: what a POST creates, a GET returns, a list pages
//! through and filters, a PATCH changes, a DELETE removes, per tenant (credential).
//! [`model`] infers resources from the spec (and the optional [`profile`]); `operations`
//! answers a request from the [`store`]; [`shape`] builds and projects bodies; [`lists`]
//! pages; `relations` follows references; `effects` runs lifecycles and the profile's
//! effects; `events` records changes and queues webhooks; [`idempotency`] replays.

pub mod clock;
pub mod delivery_log;
mod effects;
mod events;
pub mod expr;
pub mod idempotency;
pub mod lifecycle;
pub mod lists;
pub mod model;
mod operations;
pub mod persist;
pub mod profile;
pub mod rate_limit;
mod relations;
pub mod shape;
pub mod store;
pub mod webhooks;

pub use self::operations::handle;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use jsonschema::Validator;
use serde_json::Value;

use self::model::Model;
use self::operations::ListPlan;
use self::profile::Profile;
use self::shape::Members;
use self::store::Store;
use crate::schema::{Direction, SchemaSet};
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
    /// `(resource, member)` -> pointer of the item schema of each embedded array member.
    embed_items: HashMap<(String, String), String>,
    /// Resources whose records show the webhook deliveries of the events they caused.
    shows_caused: HashSet<String>,
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
        let mut embed_items = HashMap::new();
        let mut shows_caused = HashSet::new();
        for (resource, over) in &profile.resources {
            let schema = model
                .resources
                .get(resource)
                .and_then(|r| r.schema.as_deref());
            for (member, embed) in &over.embed {
                if matches!(embed, profile::Embed::Deliveries { .. }) {
                    shows_caused.insert(resource.clone());
                }
                if let Some(items) = schema.and_then(|s| relations::item_schema(spec, s, member)) {
                    embed_items.insert((resource.clone(), member.clone()), items);
                }
            }
        }
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
            embed_items,
            shows_caused,
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

    /// The tenant a credential acts for: its own, or, for a credential the API issued
    /// (`tenancy.issued`), the tenant owning the record that holds it.
    pub fn tenant_for(&self, credential: String) -> String {
        let issued = &self.profile.tenancy.issued;
        if issued.is_empty() {
            return credential;
        }
        let store = lock(&self.store);
        if store.tenants.contains_key(&credential) {
            return credential;
        }
        let owner = store.tenants.iter().find_map(|(t, state)| {
            issued
                .iter()
                .any(|i| {
                    state.resources.get(&i.resource).is_some_and(|recs| {
                        recs.values().any(|r| {
                            r.body.get(&i.member).and_then(Value::as_str) == Some(&credential)
                        })
                    })
                })
                .then(|| t.clone())
        });
        owner.unwrap_or(credential)
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
    /// The schema a resource's records follow, for time formats and generation.
    fn record_schema(&self, resource: &str) -> Option<&str> {
        self.model
            .resources
            .get(resource)
            .and_then(|r| r.schema.as_deref())
    }
}
