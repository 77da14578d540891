//! Answers one operation from state: create, read, update, replace, delete, actions,
//! singletons and list pages, shaped by the operation's response schema.

use std::sync::Arc;

use jsonschema::Validator;
use serde_json::{Map, Value, json};

use super::call::{Call, Outcome};
use super::effects::Site;
use super::engine::Engine;
use super::events::Change;
use super::lists::{ListPlan, fill_meta};
use super::model::{
    Binding, Kind, Resource, SINGLETON_ID, list_item_schema, singular, success_schema,
};
use super::shape::{NewRecord, project, property_names, repair, timestamp_for};
use super::store::{ParentRef, Store};
use super::{delivery_log, lifecycle, lists, relations};
use crate::compiled::Api;
use crate::generate::{Generator, flatten, ids};
use crate::schema::Direction;
use crate::spec::Spec;

impl Engine {
    pub(super) fn list_plan(&self, spec: &Spec, oi: usize, schema_ptr: &str) -> Arc<ListPlan> {
        if let Some(p) = self.list_plans.lock().get(&oi) {
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
        self.list_plans.lock().insert(oi, plan.clone());
        plan
    }
}

impl Engine {
    /// Answers operation `oi` of `api` from the store.
    pub fn handle(&self, api: &Api, oi: usize, call: &Call) -> Outcome {
        answer(api, self, oi, call)
    }
}

/// Runs operation `oi` against the store.
fn answer(api: &Api, engine: &Engine, oi: usize, call: &Call) -> Outcome {
    let binding = &engine.model.bindings[oi];
    if binding.kind == Kind::Stateless || engine.stateless {
        return Outcome::Stateless;
    }
    if let Kind::Webhooks(what) = binding.kind {
        return delivery_log::handle(api, engine, oi, what, call);
    }
    let Some(resource) = engine.model.resources.get(&binding.resource) else {
        return Outcome::Stateless;
    };
    let op = &api.spec.operations[oi];
    let schema = success_schema(op);
    let validator = schema.as_ref().and_then(|_| api.success_validator(oi));
    let mut store = engine.store.lock();
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
    if resource.singleton {
        engine.singleton(&api.spec, &mut store, call.tenant, &resource.name);
    }
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
        Kind::Link => ctx.link(&mut store, true),
        Kind::Unlink => ctx.link(&mut store, false),
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
                let Some(v) = sent.get(member) else {
                    continue;
                };
                if let Some(missing) = self.engine.dangling(store, tenant, reference, v) {
                    let target = singular(reference.resource()).replace('_', " ");
                    let by = reference.member().unwrap_or("id");
                    return Outcome::Problem(404, format!("no {target} with {by} '{missing}'"));
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
        let site = Site {
            spec: self.spec(),
            tenant,
            resource: name,
            id: &id,
            transition: None,
            at: self.engine.clock.now(),
            depth: 0,
        };
        self.engine
            .created(store, site, Some(self.call), self.call.instant);
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
        let Some(id) = self.item_id(store) else {
            return Outcome::Stateless;
        };
        let id = id.as_str();
        let name = &self.resource.name;
        let now = self.engine.clock.now();
        let tenant_key = self.call.tenant;
        let exists = self.in_scope(store, id);
        let over = self.engine.profile.resources.get(name);
        // The item, for effects of this call (a lifecycle step names its own transition).
        let site = Site {
            spec: self.spec(),
            tenant: tenant_key,
            resource: name,
            id,
            transition: None,
            at: now,
            depth: 0,
        };
        if exists && self.binding.kind == Kind::Delete {
            if let Some(why) = self.engine.delete_blocked(store, tenant_key, name, id) {
                return Outcome::Problem(409, why);
            }
            // A delete's effects read the record as it was, so they run before it goes.
            if let Some(effects) = over.and_then(|o| o.on_delete.as_ref()) {
                self.engine.apply_effects(store, site, effects);
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
                    let step = Site {
                        transition: Some((&from, &to)),
                        at,
                        ..site
                    };
                    self.engine.transitioned(store, step);
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
            self.engine.apply_effects(store, site, effects);
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
                    Change::Updated(Value::Object(previous)),
                    &new,
                    now,
                );
            }
            (Kind::Replace, None, Some(new)) => {
                self.engine
                    .emit(store, tenant_key, name, Change::Created, &new, now)
            }
            (Kind::Delete, Some(old), None) => {
                self.engine
                    .emit(store, tenant_key, name, Change::Deleted, &old, now)
            }
            _ => {}
        }
    }

    /// The id of the item named in the path (which may name it by another member).
    fn item_id(&self, store: &Store) -> Option<String> {
        if self.resource.singleton {
            return Some(SINGLETON_ID.to_owned());
        }
        let raw = self
            .binding
            .item_param
            .as_deref()
            .and_then(|p| self.call.param(p))?;
        if self.binding.lookup.is_none() {
            return Some(raw.to_owned());
        }
        let found = self.find_by(store, self.binding.lookup.as_deref(), raw);
        Some(found.unwrap_or_else(|| raw.to_owned()))
    }

    /// The id of the resource's record whose `member` (its id when `None`) reads `wanted`.
    fn find_by(&self, store: &Store, member: Option<&str>, wanted: &str) -> Option<String> {
        let recs = store
            .tenants
            .get(self.call.tenant)?
            .resources
            .get(&self.resource.name)?;
        recs.iter()
            .find(|(i, r)| match member {
                Some(m) => r.body.get(m).is_some_and(|v| lists::text(v) == wanted),
                None => *i == wanted,
            })
            .map(|(i, _)| i.clone())
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
            _ => self.parent.is_none() || rec.parent == self.parent,
        }
    }

    /// Attaches (or detaches) a record to the path's parent item, in the member that holds
    /// the link; answers with the parent (`respond: parent`), the record, or nothing.
    fn link(&self, store: &mut Store, attach: bool) -> Outcome {
        let (Some(link), Some(parent)) = (&self.binding.link, &self.parent) else {
            return Outcome::Stateless;
        };
        let (tenant, name) = (self.call.tenant, &self.resource.name);
        let child_id = match &link.value_from {
            Some(member) => {
                let Some(wanted) = self.call.body.and_then(|b| b.get(member)).map(lists::text)
                else {
                    return Outcome::Problem(400, format!("'{member}' is required"));
                };
                // The body names the record as the link stores it.
                let by = link.by.as_deref().filter(|_| link.parent_holds);
                match self.find_by(store, by, &wanted) {
                    Some(i) => i,
                    None => return not_found(name, &wanted),
                }
            }
            None => match self.item_id(store) {
                Some(i) => i,
                None => return Outcome::Stateless,
            },
        };
        if store.get(tenant, name, &child_id).is_none() {
            return not_found(name, &child_id);
        }
        let Some((holder, holder_id, value)) = self
            .engine
            .link_slot(store, tenant, link, parent, name, &child_id)
        else {
            return not_found(name, &child_id);
        };
        let Some(rec) = store.tenant(tenant).get_mut(&holder, &holder_id) else {
            return not_found(&holder, &holder_id);
        };
        let before = rec.body.get(&link.member).cloned().unwrap_or(Value::Null);
        let changed = if attach {
            relations::attach(&mut rec.body, &link.member, &value)
        } else {
            relations::detach(&mut rec.body, &link.member, &value)
        };
        if !attach && !changed {
            return Outcome::Problem(
                404,
                format!(
                    "{} '{child_id}' is not attached to {} '{}'",
                    singular(name).replace('_', " "),
                    singular(&parent.resource).replace('_', " "),
                    parent.id
                ),
            );
        }
        if changed {
            let after = rec.body.clone();
            let now = self.engine.clock.now();
            self.engine.emit(
                store,
                tenant,
                &holder,
                Change::Updated(json!({ link.member.clone(): before })),
                &after,
                now,
            );
        }
        if self.binding.respond_parent {
            let (r, i) = (parent.resource.clone(), parent.id.clone());
            return self.respond_stored(store, &r, &i);
        }
        match self.schema {
            Some(_) => self.respond_stored(store, name, &child_id),
            None => Outcome::Body(Value::Null),
        }
    }

    fn item_inner(&self, store: &mut Store, id: &str) -> Outcome {
        let key = self.key(id);
        let name = &self.resource.name;
        let exists = self.in_scope(store, id);
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
                recs.iter()
                    .filter(|(i, _)| self.in_scope(store, i))
                    .map(|(_, r)| &r.body)
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
        let extra = self
            .engine
            .profile
            .operations
            .get(self.op_id)
            .map(|o| &o.extra)
            .filter(|e| !e.is_empty());
        let items: Vec<Value> = page
            .items
            .iter()
            .map(|r| {
                let mut copy = (*r).clone();
                let id = lists::id_of(r, &self.resource.id_field).unwrap_or_default();
                let added = extra.map(|e| {
                    let site = Site {
                        spec: self.spec(),
                        tenant: self.call.tenant,
                        resource: &self.resource.name,
                        id: &id,
                        transition: None,
                        at: self.engine.clock.now(),
                        depth: 0,
                    };
                    self.engine
                        .evaluate(store, site, r, e, plan.item_schema.as_deref())
                });
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
                        match (shown, added) {
                            (Value::Object(mut item), Some(added)) => {
                                item.extend(added);
                                Value::Object(item)
                            }
                            (shown, _) => shown,
                        }
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
