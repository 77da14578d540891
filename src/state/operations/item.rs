//! Operations on one item: read, update (merge), replace (and create a missing id), delete,
//! and actions, with lifecycle triggers applied first and events and effects after.

use serde_json::{Map, Value};

use super::Ctx;
use crate::state::behaviour::Happened;
use crate::state::call::Outcome;
use crate::state::effects::Site;
use crate::state::events::Change;
use crate::state::lifecycle;
use crate::state::model::{Kind, singular};
use crate::state::shape::{repair, timestamp_for};
use crate::state::store::Store;

impl Ctx<'_> {
    /// Item operations, with lifecycle triggers before and events after.
    pub(super) fn item(&self, store: &mut Store) -> Outcome {
        let Some(id) = self.item_id(store) else {
            return Outcome::Stateless;
        };
        let id = id.as_str();
        let name = &self.resource.name;
        let now = self.engine.clock.now();
        let tenant = self.call.tenant;
        let exists = self.in_scope(store, id);
        let over = self.engine.profile.resources.get(name);
        // The item, for effects of this call (a lifecycle step names its own transition).
        let site = Site {
            spec: self.spec(),
            tenant,
            resource: name,
            id,
            transition: None,
            at: now,
            depth: 0,
        };
        if exists && self.binding.kind == Kind::Delete {
            if let Some(why) = self.engine.delete_blocked(store, tenant, name, id) {
                return Outcome::Problem(409, why);
            }
            // A delete's effects read the record as it was, so they run before it goes.
            if let Some(effects) = over.and_then(|o| o.on_delete.as_ref()) {
                self.engine.apply_effects(store, site, effects);
            }
        }
        if exists && let Some(refused) = self.trigger(store, site) {
            return refused;
        }
        let before = store.get(tenant, name, id).map(|r| r.body.map());
        let outcome = self.item_inner(store, id);
        if matches!(outcome, Outcome::Problem(..)) {
            return outcome;
        }
        let after = store.get(tenant, name, id).map(|r| r.body.map());
        let updated = matches!(self.binding.kind, Kind::Update | Kind::Replace)
            && before.is_some()
            && after.is_some()
            && before != after;
        if updated && let Some(effects) = over.and_then(|o| o.on_update.as_ref()) {
            self.engine.apply_effects(store, site, effects);
        }
        if self.binding.respond_parent
            && let Some(p) = &self.parent
        {
            let parent_outcome = self.respond_stored(store, &p.resource, &p.id);
            self.emit_item_change(store, before, after, now);
            return parent_outcome;
        }
        self.emit_item_change(store, before, after, now);
        outcome
    }

    /// The lifecycle transition this operation triggers on the item, if it drives one;
    /// the refusal when it is not allowed from the item's state.
    fn trigger(&self, store: &mut Store, site: Site<'_>) -> Option<Outcome> {
        let name = &self.resource.name;
        let lc = self.engine.profile.lifecycles.get(name)?;
        let (op_id, body, now) = (self.op_id, self.call.body, site.at);
        let triggered = store.tenant(site.tenant).edit(name, site.id, |rec, meta| {
            lifecycle::trigger(lc, op_id, body, rec, meta, now)
        });
        match triggered {
            None => Some(self.not_found(name, site.id)),
            Some(lifecycle::Triggered::Unknown(why)) => Some(Outcome::Problem(400, why)),
            Some(lifecycle::Triggered::Illegal(why)) => {
                let op = &self.api.spec.operations[self.oi];
                let status = [409, 400, 422]
                    .into_iter()
                    .find(|s| op.declares(*s))
                    .unwrap_or(409);
                Some(Outcome::Problem(
                    status,
                    format!(
                        "{} '{}': {} is {why}",
                        singular(name).replace('_', " "),
                        site.id,
                        self.op_id
                    ),
                ))
            }
            Some(lifecycle::Triggered::Applied((from, to, at))) => {
                let step = Site {
                    transition: Some((&from, &to)),
                    at,
                    ..site
                };
                self.engine.transitioned(store, step);
                None
            }
            Some(lifecycle::Triggered::NotALifecycleOperation) => None,
        }
    }

    fn emit_item_change(
        &self,
        store: &mut Store,
        before: Option<Map<String, Value>>,
        after: Option<Map<String, Value>>,
        now: f64,
    ) {
        let (tenant, name) = (self.call.tenant, &self.resource.name);
        let happened = match (self.binding.kind, &before, &after) {
            (Kind::Update | Kind::Replace, Some(old), Some(new)) if old != new => {
                Some((Happened::Updated, new.clone()))
            }
            (Kind::Replace, None, Some(new)) => Some((Happened::Created, new.clone())),
            (Kind::Delete, Some(old), None) => Some((Happened::Deleted, old.clone())),
            _ => None,
        };
        if let (Some((happened, record)), Some(id)) = (happened, self.path_id()) {
            let what = (name.as_str(), id, happened);
            self.engine
                .changed(self.spec(), store, tenant, what, &record);
        }
        match (self.binding.kind, before, after) {
            (Kind::Update | Kind::Replace, Some(old), Some(new)) if old != new => {
                let previous: Map<String, Value> = old
                    .iter()
                    .filter(|(k, v)| new.get(*k) != Some(v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.engine.emit(
                    store,
                    tenant,
                    name,
                    Change::Updated(Value::Object(previous)),
                    &new,
                    now,
                );
            }
            (Kind::Replace, None, Some(new)) => {
                self.engine
                    .emit(store, tenant, name, Change::Created, &new, now);
            }
            (Kind::Delete, Some(old), None) => {
                self.engine
                    .emit(store, tenant, name, Change::Deleted, &old, now);
            }
            _ => {}
        }
    }

    fn item_inner(&self, store: &mut Store, id: &str) -> Outcome {
        let name = &self.resource.name;
        let exists = self.in_scope(store, id);
        match self.binding.kind {
            Kind::Replace if !exists => self.upsert(store, id),
            _ if !exists => self.not_found(name, id),
            Kind::Read => self.respond_stored(store, name, id),
            Kind::Update => self.update(store, id),
            Kind::Replace => self.replace(store, id),
            Kind::Delete => match store.tenant(self.call.tenant).remove_cascade(name, id) {
                Some(removed) => self.respond(&removed.body.map(), &self.key(id)),
                None => self.not_found(name, id),
            },
            // An action on an existing item answers with the item shown through the action's
            // response schema: members by name (`simulation_id`, `previous_state`...), the
            // rest generated.
            _ => match store.get(self.call.tenant, name, id) {
                Some(r) if self.schema.is_some() => self.respond(&r.body.map(), &self.key(id)),
                _ => Outcome::Stateless,
            },
        }
    }

    /// PUT to an id that does not exist yet creates it.
    fn upsert(&self, store: &mut Store, id: &str) -> Outcome {
        let name = &self.resource.name;
        let key = self.key(id);
        let mut record = self.new_record(key.clone()).build(
            self.call.body,
            &self.fixed(&self.typed(&self.resource.id_field, id)),
            None,
        );
        if let Err(refused) = self.admit(store, &mut record) {
            return refused;
        }
        self.engine.complete(self.spec(), &key, name, &mut record);
        store
            .tenant(self.call.tenant)
            .insert(name, id, record, self.parent.clone());
        self.respond_stored(store, name, id)
    }

    /// PATCH merges the body into the record (the id stays), stamps `updated_at`, and puts
    /// back generated values where a sent one breaks the record's schema.
    fn update(&self, store: &mut Store, id: &str) -> Outcome {
        let name = &self.resource.name;
        let Some(before) = store.get(self.call.tenant, name, id).map(|r| r.body.map()) else {
            return self.not_found(name, id);
        };
        let mut body = before.clone();
        if let Some(Value::Object(changes)) = self.call.body {
            for (k, v) in changes {
                if *k != self.resource.id_field {
                    body.insert(k.clone(), v.clone());
                }
            }
        }
        if let Some(s) = &self.resource.schema {
            for member in ["updated_at", "updatedAt", "updated"] {
                if body.contains_key(member) {
                    let stamp = timestamp_for(self.spec(), s, member, self.call.now);
                    body.insert(member.to_owned(), stamp);
                }
            }
        }
        let validator = self.engine.validators.get(name).map(|v| v.as_ref());
        repair(&mut body, Some(&before), validator, &[]);
        if let Err(refused) = self.admit(store, &mut body) {
            return refused;
        }
        match store
            .tenant(self.call.tenant)
            .edit(name, id, |stored, _| *stored = body)
        {
            Some(()) => self.respond_stored(store, name, id),
            None => self.not_found(name, id),
        }
    }

    /// PUT replaces the record's members (its creation time stays).
    fn replace(&self, store: &mut Store, id: &str) -> Outcome {
        let name = &self.resource.name;
        let created = store.get(self.call.tenant, name, id).and_then(|r| {
            let body = r.body.map();
            ["created_at", "createdAt", "created"]
                .iter()
                .find_map(|m| body.get(*m).cloned())
        });
        let key = self.key(id);
        let mut record = self.new_record(key.clone()).build(
            self.call.body,
            &self.fixed(&self.typed(&self.resource.id_field, id)),
            created.as_ref(),
        );
        if let Err(refused) = self.admit(store, &mut record) {
            return refused;
        }
        self.engine.complete(self.spec(), &key, name, &mut record);
        let replaced = store
            .tenant(self.call.tenant)
            .edit(name, id, |body, _| *body = record);
        match replaced {
            Some(()) => self.respond_stored(store, name, id),
            None => self.not_found(name, id),
        }
    }
}
