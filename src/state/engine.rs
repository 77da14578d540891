//! The engine of one API: the resources inferred from its spec and profile, the store of
//! records per tenant, and everything that changes with requests and time (idempotency keys,
//! rate windows, the virtual clock, events and webhook deliveries). What it does with them
//! lives beside it, one job per file: `operations` answers a request, `effects` runs
//! lifecycles and the profile's effects, `relations` follows references, `emit` records
//! events, `delivery_log` serves webhook history.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jsonschema::Validator;
use parking_lot::Mutex;
use serde_json::Value;

use super::clock::Clock;
use super::events::Event;
use super::idempotency::Idempotency;
use super::lists::ListPlan;
use super::model::Model;
use super::rate_limit::RateLimiter;
use super::shape::{Members, item_schema};
use super::store::Store;
use super::webhooks::{Signer, WebhookState};
use crate::compiled::Api;
use crate::profile::{Embed, Profile};
use crate::schema::Direction;
use crate::spec::{Spec, SpecError};

/// How deep effects may cascade (an update whose transition updates another record...).
pub const MAX_EFFECT_DEPTH: usize = 8;

pub struct Engine {
    pub model: Model,
    pub profile: Arc<Profile>,
    pub store: Mutex<Store>,
    /// Resource type -> validator of its stored representation.
    pub validators: HashMap<String, Arc<Validator>>,
    pub idempotency: Idempotency,
    /// `--stateless`: answer every operation from the spec alone, storing nothing.
    pub stateless: bool,
    pub rate_limit: RateLimiter,
    pub clock: Clock,
    /// Every event, all tenants, in order.
    pub events: Mutex<Vec<Event>>,
    pub webhooks: Mutex<WebhookState>,
    pub signer: Signer,
    pub seed: u64,
    /// Schema pointer -> its members (`None`: free-form), computed once.
    pub(super) names: Mutex<HashMap<String, Option<Arc<Members>>>>,
    /// Operation -> how its list responses are shaped, computed once.
    pub(super) list_plans: Mutex<HashMap<usize, Arc<ListPlan>>>,
    /// `(resource, member)` -> pointer of the item schema of each embedded array member.
    pub(super) embed_items: HashMap<(String, String), String>,
    /// Resources whose records show the webhook deliveries of the events they caused.
    pub(super) shows_caused: HashSet<String>,
}

impl Engine {
    /// The engine of a compiled API: its resources inferred, their validators at hand, its
    /// store empty.
    pub fn new(api: &Api) -> Result<Self, SpecError> {
        let spec = &api.spec;
        let profile = api.profile.clone();
        let model = Model::infer(spec, &profile);
        let (embed_items, shows_caused) = embeds(spec, &profile, &model);
        let mut validators = HashMap::new();
        for r in model.resources.values() {
            // Usually compiled already (the item GET's response schema).
            if let Some(ptr) = &r.schema {
                validators.insert(r.name.clone(), api.validator(Direction::Response, ptr)?);
            }
        }
        Ok(Self {
            rate_limit: RateLimiter::new(spec, &profile),
            signer: Signer::new(
                profile.webhooks.signing.as_deref(),
                webhook_secret(api.seed),
            ),
            model,
            profile,
            store: Mutex::new(Store::new()),
            validators,
            idempotency: Idempotency::default(),
            stateless: false,
            clock: Clock::new(1.0),
            events: Mutex::new(Vec::new()),
            webhooks: Mutex::new(WebhookState::default()),
            seed: api.seed,
            names: Mutex::new(HashMap::new()),
            list_plans: Mutex::new(HashMap::new()),
            embed_items,
            shows_caused,
        })
    }

    /// The property names (and required ones) of the schema at `ptr`, cached.
    pub(crate) fn names_of(&self, spec: &Spec, ptr: &str) -> Option<Arc<Members>> {
        if let Some(n) = self.names.lock().get(ptr) {
            return n.clone();
        }
        let n = Members::of(spec, ptr).map(Arc::new);
        self.names.lock().insert(ptr.to_owned(), n.clone());
        n
    }

    /// The tenant a credential acts for: its own, or, for a credential the API issued
    /// (`tenancy.issued`), the tenant owning the record that holds it.
    pub fn tenant_for(&self, credential: String) -> String {
        let issued = &self.profile.tenancy.issued;
        if issued.is_empty() {
            return credential;
        }
        let store = self.store.lock();
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
        let mut store = self.store.lock();
        match tenant {
            Some(t) => {
                store.tenants.remove(t);
            }
            None => store.tenants.clear(),
        }
        self.idempotency.clear(tenant);
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
    let mut embed_items = HashMap::new();
    let mut shows_caused = HashSet::new();
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
