//! The one extension point: a [`Behaviour`] is the part of an API that cannot be declared
//! in a profile (a query language over stored data, a condition language evaluated on
//! every change, a policy that decides). Behaviours live in `src/behaviours/`, one file per
//! behaviour, each generic (named after what it does, not after an API); a profile names
//! the ones it uses and binds them:
//!
//! ```yaml
//! behaviours:
//!   alerts: {use: threshold_alerts, points: points}   # a registered behaviour, with settings
//! operations:
//!   queryData: {behaviour: alerts}      # the behaviour answers this operation
//! resources:
//!   alert-rules: {behaviour: alerts}    # ... and sees these records made and changed
//! ```
//!
//! The engine calls a behaviour at four points, always holding the store's write lock and
//! handing it a [`Cx`]: to **answer** an operation bound to it, to **admit** a record of a
//! bound resource before it is stored (changing members, or refusing it with a status),
//! **after** such a record was created, updated or deleted, and on every **tick** of the
//! clock. Everything else (routing, validation, auth, idempotency, errors in the API's
//! format, events and webhooks) stays the engine's.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::call::{Call, Outcome};
pub use super::payload::Object;
pub use super::persist::OwnData;
use super::store::Store;
use crate::compiled::Api;
use crate::profile::Profile;
use crate::spec::Spec;

/// What the engine does for a behaviour: the narrow set of its services a behaviour may
/// use, so that behaviours never reach into the engine's internals.
pub trait Services: Send + Sync {
    /// The API's profile.
    fn profile(&self) -> &Profile;
    /// The seed generated data comes from.
    fn seed(&self) -> u64;
    /// Creates a record as a create operation would (id, derived members, lifecycle,
    /// events, effects); returns its id. The behaviour answers for the members it gives,
    /// as it does for an [`update`](Self::update)'s: they are stored as given, not checked
    /// against the schema and repaired (debug builds, and so the test suite, fail on a
    /// record that breaks its schema).
    fn create(
        &self,
        store: &mut Store,
        spec: &Spec,
        tenant: &str,
        resource: &str,
        body: Map<String, Value>,
    ) -> String {
        self.create_settled(store, spec, tenant, resource, body).0
    }
    /// [`create`](Self::create), and the record as stored when nothing (a lifecycle, rules
    /// or effects of its resource) changed it after it was stored; `None` means read it.
    fn create_settled(
        &self,
        store: &mut Store,
        spec: &Spec,
        tenant: &str,
        resource: &str,
        body: Map<String, Value>,
    ) -> (String, Option<Settled>);
    /// Changes members of a record, with its update event and effects.
    fn update(
        &self,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        id: &str,
        changes: Map<String, Value>,
    );
    /// Records an event of type `kind` whose `data.object` is `object` (its members, or its
    /// JSON text when the caller has it), delivered to the targets that want it.
    fn emit(&self, store: &mut Store, tenant: &str, kind: &str, object: &Object);
    /// Queues a webhook to `url` (not a registered target: an address a record names) with
    /// `payload` as its body, signed and retried like every delivery.
    fn deliver(&self, tenant: &str, url: &str, kind: &str, payload: &Value);
    /// Does what the engine does for operation `oi` when no behaviour answers it (a read,
    /// a delete...), so a behaviour can add to that answer rather than redo it.
    fn perform(&self, api: &Api, store: &mut Store, oi: usize, call: &Call) -> Outcome;
    /// The tenant's use of its rate-limit window.
    fn usage(&self, tenant: &str) -> Usage;
    /// Whether a state file is kept. A behaviour's own changes
    /// ([`OwnData::take_changes`](super::persist::OwnData::take_changes)) are read only
    /// then: without one, it need not write them (a dakkio batch wrote every reading again,
    /// a Dino decision its wallet, each under the store's lock, to be dropped unread).
    fn keeps_changes(&self) -> bool;
}

/// A record just created, as it was stored: its members, and the JSON text stored (an answer
/// or an event about it can show that text rather than write the members again).
pub struct Settled {
    pub record: Map<String, Value>,
    pub text: bytes::Bytes,
}

/// A tenant's use of its rate-limit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Requests counted in the current window.
    pub used: u64,
    /// The window's allowance (`None`: unlimited).
    pub limit: Option<u64>,
    /// When the window starts over (unix seconds).
    pub reset: i64,
}

/// What a behaviour sees when it is called.
pub struct Cx<'a> {
    pub spec: &'a Spec,
    /// The compiled API, when a request caused the call.
    pub api: Option<&'a Api>,
    pub engine: &'a dyn Services,
    pub store: &'a mut Store,
    /// The tenant acted for.
    pub tenant: &'a str,
    /// The request, when a request caused the call (not on a tick).
    pub call: Option<&'a Call<'a>>,
    /// The operation, when a request caused the call.
    pub op: Option<usize>,
    /// The resource whose record is admitted or changed (empty otherwise).
    pub resource: &'a str,
    /// Virtual time.
    pub now: f64,
}

impl Cx<'_> {
    /// The spec's operation id of the call, if any.
    pub fn op_id(&self) -> Option<&str> {
        self.op.map(|oi| self.spec.operations[oi].id.as_str())
    }

    /// What the engine answers for the call's operation (see [`Services::perform`]).
    pub fn perform(&mut self) -> Outcome {
        match (self.api, self.op, self.call) {
            (Some(api), Some(oi), Some(call)) => self.engine.perform(api, self.store, oi, call),
            _ => Outcome::Stateless,
        }
    }
}

/// A record refused: the status and the reason (written into the API's error format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    /// The body member at fault, when one is.
    pub field: Option<String>,
}

impl Refusal {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
        }
    }

    /// The same refusal, naming the body member at fault.
    #[must_use]
    pub fn at(self, field: &str) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..self
        }
    }

    /// The engine's answer for it.
    pub fn outcome(self) -> Outcome {
        match self.field {
            None => Outcome::Problem(self.status, self.message),
            Some(field) => {
                let error = crate::compiled::problem::FieldError {
                    location: "body",
                    field,
                    message: self.message.clone(),
                    code: "invalid".into(),
                };
                Outcome::Invalid(self.status, self.message, vec![error])
            }
        }
    }
}

/// What happened to a record a behaviour watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happened {
    Created,
    Updated,
    Deleted,
}

/// A part of an API's behaviour that cannot be declared. Every method has a default that
/// does nothing, so a behaviour implements only the points it needs.
/// Data a behaviour keeps outside the store's records goes to the state file through
/// [`OwnData`]: its changes as they happen, its whole data when the file is compacted.
pub trait Behaviour: OwnData {
    /// Answers an operation the profile binds to this behaviour. `Outcome::Stateless`
    /// lets the spec answer.
    fn answer(&self, cx: &mut Cx<'_>) -> Outcome {
        let _ = cx;
        Outcome::Stateless
    }

    /// A record of a bound resource is about to be stored (created, updated or replaced):
    /// change its members, or refuse it.
    fn admit(&self, cx: &mut Cx<'_>, record: &mut Map<String, Value>) -> Result<(), Refusal> {
        let _ = (cx, record);
        Ok(())
    }

    /// A record of a bound resource was created, updated or deleted (`record` as it is
    /// now, or as it was for a delete).
    fn after(&self, cx: &mut Cx<'_>, happened: Happened, id: &str, record: &Map<String, Value>) {
        let _ = (cx, happened, id, record);
    }

    /// The clock moved: do what became due (for every tenant in the store).
    fn tick(&self, cx: &mut Cx<'_>) {
        let _ = cx;
    }

    /// A tenant's data was dropped (`None`: every tenant's).
    fn reset(&self, tenant: Option<&str>) {
        let _ = tenant;
    }
}

/// Builds a behaviour from its registered name and its profile settings.
pub type Factory = fn(&Map<String, Value>) -> Result<Arc<dyn Behaviour>, String>;
