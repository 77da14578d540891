//! What the engine does for behaviours ([`Services`]) and where it calls them: to answer an
//! operation bound to a behaviour, to admit a record of a bound resource, after such a
//! record changed, and on every tick of the clock.

use serde_json::{Map, Value};

use super::behaviour::{Cx, Happened, Object, Refusal, Services, Settled, Usage};
use super::call::{Call, Outcome};
use super::effects::{Made, MembersBy, Site};
use super::engine::Engine;
use super::events::Change;
use super::store::Store;
use crate::compiled::Api;
use crate::profile::Profile;
use crate::spec::Spec;

impl Services for Engine {
    fn profile(&self) -> &Profile {
        &self.profile
    }

    fn seed(&self) -> u64 {
        self.seed
    }

    fn create_settled(
        &self,
        store: &mut Store,
        spec: &Spec,
        tenant: &str,
        resource: &str,
        body: Map<String, Value>,
    ) -> (String, Option<Settled>) {
        let site = Site {
            spec,
            tenant,
            resource: "",
            id: "",
            transition: None,
            at: self.clock.now(),
            depth: 0,
        };
        let made = Made {
            resource,
            parent: None,
            caused_by: None,
            members_by: MembersBy::Behaviour,
        };
        self.make_settled(store, site, made, body)
    }

    fn update(
        &self,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        id: &str,
        changes: Map<String, Value>,
    ) {
        let edited = store.tenant(tenant).edit(resource, id, |body, _| {
            let previous: Map<String, Value> = changes
                .keys()
                .filter_map(|k| body.get(k).map(|v| (k.clone(), v.clone())))
                .collect();
            body.extend(changes);
            (previous, body.clone())
        });
        if let Some((previous, after)) = edited {
            let now = self.clock.now();
            self.emit(
                store,
                tenant,
                resource,
                Change::Updated(Value::Object(previous)),
                &after,
                now,
            );
        }
    }

    fn emit(&self, store: &mut Store, tenant: &str, kind: &str, object: &Object) {
        let now = self.clock.now();
        self.emit_typed(store, tenant, kind, object, now);
    }

    fn deliver(&self, tenant: &str, url: &str, kind: &str, payload: &Value) {
        self.queue_delivery(tenant, url, kind, payload, self.clock.now());
    }

    fn perform(&self, api: &Api, store: &mut Store, oi: usize, call: &Call) -> Outcome {
        self.handle_locked(api, store, oi, call)
    }

    fn usage(&self, tenant: &str) -> Usage {
        self.rate_limit.usage(tenant, self.clock.now_secs())
    }

    fn keeps_changes(&self) -> bool {
        self.log.is_some()
    }
}

impl Engine {
    /// Answers operation `oi` with the behaviour it is bound to.
    pub(super) fn by_behaviour(&self, api: &Api, oi: usize, call: &Call) -> Outcome {
        let Some(b) = self.model.bindings[oi]
            .behaviour
            .as_deref()
            .and_then(|n| self.behaviours.get(n))
            .cloned()
        else {
            return Outcome::Stateless;
        };
        let mut store = self.write();
        let mut cx = Cx {
            spec: &api.spec,
            api: Some(api),
            engine: self,
            store: &mut store,
            tenant: call.tenant,
            call: Some(call),
            op: Some(oi),
            resource: &self.model.bindings[oi].resource,
            now: self.clock.now(),
        };
        b.answer(&mut cx)
    }

    /// Lets the behaviour bound to `resource` change or refuse a record about to be stored.
    pub(super) fn admit(
        &self,
        spec: &Spec,
        store: &mut Store,
        call: &Call,
        oi: usize,
        resource: &str,
        record: &mut Map<String, Value>,
    ) -> Result<(), Refusal> {
        let Some(b) = self.behaviour_of(resource).cloned() else {
            return Ok(());
        };
        let mut cx = Cx {
            spec,
            api: None,
            engine: self,
            store,
            tenant: call.tenant,
            call: Some(call),
            op: Some(oi),
            resource,
            now: self.clock.now(),
        };
        b.admit(&mut cx, record)
    }

    /// Tells the behaviour bound to `resource` that record `id` was created, updated or
    /// deleted.
    pub(super) fn changed(
        &self,
        spec: &Spec,
        store: &mut Store,
        tenant: &str,
        what: (&str, &str, Happened),
        record: &Map<String, Value>,
    ) {
        let (resource, id, happened) = what;
        let Some(b) = self.behaviour_of(resource).cloned() else {
            return;
        };
        let mut cx = Cx {
            spec,
            api: None,
            engine: self,
            store,
            tenant,
            call: None,
            op: None,
            resource,
            now: self.clock.now(),
        };
        b.after(&mut cx, happened, id, record);
    }

    /// Every behaviour's tick, on the clock's step.
    pub fn tick_behaviours(&self, spec: &Spec) {
        if self.behaviours.is_empty() {
            return;
        }
        let mut store = self.write();
        for b in self.behaviours.values() {
            let mut cx = Cx {
                spec,
                api: None,
                engine: self,
                store: &mut store,
                tenant: "",
                call: None,
                op: None,
                resource: "",
                now: self.clock.now(),
            };
            b.tick(&mut cx);
        }
    }
}
