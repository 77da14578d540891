//! What happens when records change: lifecycle transitions on the clock and on operations,
//! derived members of new records, and the profile's effects (set, update a referenced
//! record, adjust a balance, create a related record), cascading to a bounded depth.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use bytes::Bytes;

use super::behaviour::{Happened, Settled};
use super::call::Call;
use super::emit::Text;
use super::engine::{Engine, MAX_EFFECT_DEPTH};
use super::events::Change;
use super::model::SINGLETON_ID;
use super::payload::Object;
use super::shape::{NewRecord, timestamp_for};
use super::store::{Body, Id, Meta, ParentRef, Store};
use super::{expr, lifecycle, lists};
use crate::generate::{Generator, StableHasher, ids};
use crate::profile;
use crate::schema::Direction;
use crate::spec::Spec;

/// A record to make: of which resource, under which parent, caused by which record.
pub(super) struct Made<'a> {
    pub resource: &'a str,
    pub parent: Option<ParentRef>,
    pub caused_by: Option<ParentRef>,
    /// Who answers for the members: the engine, which checks them against the schema and
    /// repairs misfits (an effect's or a new tenant's record, written in the profile), or
    /// the behaviour that made it.
    pub members_by: MembersBy,
}

/// Who answers for a made record's members (see [`Made::members_by`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum MembersBy {
    /// Checked against the schema, misfits repaired: the profile's words may be wrong.
    Profile,
    /// Stored as the behaviour wrote them, as its updates are (see `Services::create`).
    Behaviour,
}

/// Which lifecycle steps to apply: of one tenant or all, one resource or all, one record or
/// all.
#[derive(Clone, Copy)]
pub(super) struct Due<'a> {
    pub tenant: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub only: Option<&'a str>,
}

/// The record something happened to, and when: what an effect reads (`$id`, `$now`,
/// `$from`, `$to`, the record's references) and where its cascade starts.
#[derive(Clone, Copy)]
pub(super) struct Site<'a> {
    pub spec: &'a Spec,
    pub tenant: &'a str,
    pub resource: &'a str,
    pub id: &'a str,
    /// The lifecycle transition being applied, if any (`$from`, `$to`).
    pub transition: Option<(&'a str, &'a str)>,
    pub at: f64,
    /// How many effects led here; cascades stop past `MAX_EFFECT_DEPTH`.
    pub depth: usize,
}

impl Engine {
    /// Applies the lifecycle steps due by `now`: of one tenant or all, of one resource or
    /// all, of one record or all. Each record's due steps are applied in order, records in
    /// the order they fell due.
    pub(super) fn advance(&self, spec: &Spec, store: &mut Store, due: Due<'_>, now: f64) {
        let tenants = match due.tenant {
            Some(t) => vec![t.to_owned()],
            None => store.tenants_due(now),
        };
        let mut changes = Vec::new();
        for t in tenants {
            let records: Vec<(String, Id)> = match (store.tenants.get(&t), due.only) {
                (None, _) => continue,
                (Some(state), Some(id)) => due
                    .resource
                    .filter(|r| state.due_at(r, id).is_some_and(|at| at <= now))
                    .map(|r| vec![(r.to_owned(), Id::from(id))])
                    .unwrap_or_default(),
                (Some(state), None) => state.due_records(due.resource, now),
            };
            for (resource, id) in records {
                let Some(lc) = self.profile.lifecycles.get(&resource) else {
                    continue;
                };
                let key = format!("{t}/{resource}/{id}");
                let steps = store.tenant(&t).edit(&resource, &id, |body, meta| {
                    lifecycle::advance(lc, body, meta, now, false, &key)
                });
                for (from, to, at) in steps.unwrap_or_default() {
                    changes.push((t.clone(), resource.clone(), id.clone(), from, to, at));
                }
            }
        }
        for (t, resource, id, from, to, at) in changes {
            let site = Site {
                spec,
                tenant: &t,
                resource: &resource,
                id: &id,
                transition: Some((&from, &to)),
                at,
                depth: 0,
            };
            self.transitioned(store, site);
        }
    }

    /// Applies due lifecycle transitions to `resource` records (one tenant, or all; one
    /// record, or all).
    pub(super) fn advance_resource(
        &self,
        spec: &Spec,
        store: &mut Store,
        tenant: Option<&str>,
        resource: &str,
        now: f64,
        only: Option<&str>,
    ) {
        let due = Due {
            tenant,
            resource: Some(resource),
            only,
        };
        self.advance(spec, store, due, now);
    }

    /// A lifecycle transition (`site.transition`) happened: apply what entering the state
    /// does, then record it.
    pub(super) fn transitioned(&self, store: &mut Store, site: Site<'_>) {
        let mark = self.event_mark();
        self.enter_state(store, site);
        self.attribute(store, site.tenant, site.resource, site.id, mark);
    }

    fn enter_state(&self, store: &mut Store, site: Site<'_>) {
        let Site {
            tenant,
            resource,
            id,
            at,
            ..
        } = site;
        // Every caller names the step; a site without one has no state to enter.
        let (Some(lc), Some((from, to))) = (self.profile.lifecycles.get(resource), site.transition)
        else {
            return;
        };
        let field = lc.field.clone();
        if let Some(effects) = lc.on_enter.get(to) {
            self.apply_effects(store, site, effects);
        }
        let Some(mut body) = store.get(tenant, resource, id).map(|r| r.body.map()) else {
            return;
        };
        // Several due steps are applied at once; each event shows the state it entered.
        body.insert(field.clone(), json!(to));
        self.emit(
            store,
            tenant,
            resource,
            Change::Updated(json!({ field: from })),
            &body,
            at,
        );
    }

    /// Evaluates `exprs` against the site's record (which may not be stored yet: `body` is
    /// its current state), member by member so later ones can read earlier ones.
    pub(super) fn evaluate(
        &self,
        store: &Store,
        site: Site<'_>,
        body: &Map<String, Value>,
        exprs: &Map<String, Value>,
        target_schema: Option<&str>,
    ) -> Map<String, Value> {
        let Site {
            spec,
            tenant,
            resource,
            id,
            transition,
            at,
            ..
        } = site;
        let mut scratch = body.clone();
        let mut out = Map::new();
        let mut g = Generator::for_spec(
            spec,
            self.seed,
            // Each set of expressions draws its own values (a trace id and an address
            // evaluated for one record at one time must not share digits).
            &format!(
                "expr {tenant}/{resource}/{id} {at} {}",
                crate::generate::stable_hash(&Value::Object(exprs.clone()).to_string())
            ),
            Direction::Response,
        );
        g.use_examples = false;
        for (member, expr) in exprs {
            let value = {
                let lookup = |via: &str, field: &str| {
                    // A reference of this record, or a singleton resource by name.
                    let (r, i) = self
                        .referenced(store, tenant, resource, &scratch, via)
                        .or_else(|| {
                            self.model
                                .resources
                                .get(via)
                                .filter(|r| r.singleton)
                                .map(|_| (via.to_owned(), SINGLETON_ID.to_owned()))
                        })?;
                    store.get(tenant, &r, &i)?.body.get(field)
                };
                let time = |m: &str, unix: i64| match target_schema {
                    Some(s) => timestamp_for(spec, s, m, unix),
                    None => json!(unix),
                };
                let generate = |m: &str| {
                    let s = target_schema.and_then(|s| super::shape::flat(spec, s))?;
                    let ms = s.get("properties")?.get(m)?.clone();
                    Some(
                        Generator::for_spec(
                            spec,
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
                    tenant,
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
    /// to the site's record: its own members set, referenced records updated, balances
    /// adjusted, related records created.
    pub(super) fn apply_effects(
        &self,
        store: &mut Store,
        site: Site<'_>,
        list: &profile::EffectList,
    ) {
        let Site {
            tenant,
            resource,
            id,
            at,
            depth,
            ..
        } = site;
        if depth > MAX_EFFECT_DEPTH {
            return;
        }
        for effects in list.iter() {
            let Some(body) = store.get(tenant, resource, id).map(|r| r.body.map()) else {
                return;
            };
            if !profile::matches(&effects.when, Some(&body)) {
                continue;
            }
            let own = self.evaluate(
                store,
                site,
                &body,
                &effects.set,
                self.record_schema(resource),
            );
            if !own.is_empty() {
                store
                    .tenant(tenant)
                    .edit(resource, id, |body, _| body.extend(own));
            }
            let Some(body) = store.get(tenant, resource, id).map(|r| r.body.map()) else {
                return;
            };
            for u in &effects.update {
                self.update_related(store, site, &body, u);
            }
            // One update event per adjusted record, however many of its members moved.
            let mut adjusted: Vec<(String, String, Map<String, Value>)> = Vec::new();
            for a in &effects.adjust {
                let Some((r, i, before)) = self.adjust(store, site, &body, a) else {
                    continue;
                };
                match adjusted.iter_mut().find(|(ar, ai, _)| *ar == r && *ai == i) {
                    Some((_, _, previous)) => {
                        previous.entry(a.field.clone()).or_insert(before);
                    }
                    None => {
                        let mut previous = Map::new();
                        previous.insert(a.field.clone(), before);
                        adjusted.push((r, i, previous));
                    }
                }
            }
            for (r, i, previous) in adjusted {
                if let Some(updated) = store.get(tenant, &r, &i).map(|x| x.body.map()) {
                    self.emit(
                        store,
                        tenant,
                        &r,
                        Change::Updated(Value::Object(previous)),
                        &updated,
                        at,
                    );
                }
            }
            for e in &effects.emit {
                let object = self.evaluate(store, site, &body, &e.object, None);
                self.emit_typed(store, tenant, &e.kind, &Object::Members(&object, None), at);
            }
            for c in &effects.create {
                self.create_related(store, site, &body, c);
            }
        }
    }

    pub(super) fn update_related(
        &self,
        store: &mut Store,
        site: Site<'_>,
        body: &Map<String, Value>,
        u: &profile::UpdateRelated,
    ) {
        let Site {
            tenant,
            resource,
            at,
            ..
        } = site;
        let Some((target, target_id)) = self.referenced(store, tenant, resource, body, &u.via)
        else {
            return;
        };
        let values = self.evaluate(store, site, body, &u.set, self.record_schema(&target));
        let lifecycle = self.profile.lifecycles.get(&target);
        let edited = store.tenant(tenant).edit(&target, &target_id, |rec, meta| {
            let before = rec.clone();
            let mut step = None;
            for (k, v) in values {
                match (lifecycle, v.as_str()) {
                    (Some(lc), Some(state)) if lc.field == k => {
                        step = lifecycle::force(lc, rec, meta, state, at);
                    }
                    _ => {
                        rec.insert(k, v);
                    }
                }
            }
            (before, rec.clone(), step)
        });
        let Some((before, after, step)) = edited else {
            return;
        };
        let changed: Map<String, Value> = before
            .iter()
            .filter(|(k, v)| after.get(*k) != Some(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match step {
            // A transition records itself (and runs what entering the state does).
            Some((from, to, at)) => self.transitioned(
                store,
                Site {
                    resource: &target,
                    id: &target_id,
                    transition: Some((&from, &to)),
                    at,
                    depth: site.depth + 1,
                    ..site
                },
            ),
            None if !changed.is_empty() => self.emit(
                store,
                tenant,
                &target,
                Change::Updated(Value::Object(changed)),
                &after,
                at,
            ),
            None => {}
        }
    }

    /// The tenant's record of singleton resource `resource`, made on first use (with its
    /// derived members and effects). `None` when the resource is not a singleton.
    pub(super) fn singleton(
        &self,
        spec: &Spec,
        store: &mut Store,
        tenant: &str,
        resource: &str,
    ) -> Option<String> {
        let r = self.model.resources.get(resource).filter(|r| r.singleton)?;
        if store.get(tenant, resource, SINGLETON_ID).is_none() {
            let now = self.clock.now();
            let body = NewRecord {
                spec,
                schema: r.schema.as_deref(),
                validator: self.validators.get(resource).map(|v| v.as_ref()),
                seed: self.seed,
                key: format!("{tenant}/{resource}/{SINGLETON_ID}"),
                now: now.floor() as i64,
                generate_optional: self.profile.generate_optional,
                checks: None,
            }
            .build(None, &[], None);
            store
                .tenant(tenant)
                .insert(resource, SINGLETON_ID, body, None);
            let site = Site {
                spec,
                tenant,
                resource,
                id: SINGLETON_ID,
                transition: None,
                at: now,
                depth: 0,
            };
            self.created(store, site, None, false, None, None);
        }
        Some(SINGLETON_ID.to_owned())
    }

    /// Credits or debits a numeric member of another record: a number, a decimal string
    /// (keeping its decimals), or one entry of an array of per-currency balances. Returns
    /// the record changed and the member's value before.
    pub(super) fn adjust(
        &self,
        store: &mut Store,
        site: Site<'_>,
        body: &Map<String, Value>,
        a: &profile::Adjust,
    ) -> Option<(String, String, Value)> {
        let Site {
            spec,
            tenant,
            resource,
            ..
        } = site;
        // Through the declared reference when there is one (`wallet_address` names a
        // wallet by its address), else the member holds the id.
        let target_id = match &a.id_from {
            None => self.singleton(spec, store, tenant, &a.resource)?,
            Some(via) => match self.referenced(store, tenant, resource, body, via) {
                Some((_, i)) => i,
                None => lists::text(body.get(via)?),
            },
        };
        let amount_text = match &a.by {
            Value::Number(n) => n.to_string(),
            Value::String(member) => match body.get(member)? {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return None,
            },
            _ => return None,
        };
        let amount = amount_text.trim().parse::<f64>().ok()? * a.times.unwrap_or(1.0);
        let delta = if a.debit { -amount } else { amount };
        let entry = a.entry.as_ref().map(|e| {
            let new = self.evaluate(store, site, body, &e.new, self.record_schema(&a.resource));
            (e, new)
        });
        let before = store
            .get(tenant, &a.resource, &target_id)?
            .body
            .get(&a.field)
            .unwrap_or(Value::Null);
        let after = match entry {
            None => add_to(&before, delta, &amount_text),
            Some((e, new)) => {
                let new = Value::Object(new);
                let mut items = before.as_array().cloned().unwrap_or_default();
                let same = |item: &Value| {
                    e.key.iter().all(|path| {
                        let p = format!("/{}", path.replace('.', "/"));
                        item.pointer(&p) == new.pointer(&p)
                    })
                };
                let at_index = match items.iter().position(same) {
                    Some(i) => i,
                    None => {
                        items.push(new.clone());
                        items.len() - 1
                    }
                };
                if let Some(Value::Object(item)) = items.get_mut(at_index) {
                    let current = item.get(&e.member).cloned().unwrap_or(Value::Null);
                    item.insert(e.member.clone(), add_to(&current, delta, &amount_text));
                }
                Value::Array(items)
            }
        };
        store
            .tenant(tenant)
            .edit(&a.resource, &target_id, |rec, _| {
                rec.insert(a.field.clone(), after)
            })?;
        Some((a.resource.clone(), target_id, before))
    }

    pub(super) fn create_related(
        &self,
        store: &mut Store,
        site: Site<'_>,
        body: &Map<String, Value>,
        c: &profile::CreateRelated,
    ) {
        let Site {
            tenant,
            resource,
            id,
            ..
        } = site;
        let target_schema = self.record_schema(&c.resource);
        // `$id` in a related create is the creating record's id.
        let exprs: Map<String, Value> =
            c.body.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let new_body = self.evaluate(store, site, body, &exprs, target_schema);
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
        let cause = ParentRef {
            resource: resource.to_owned(),
            id: id.to_owned(),
        };
        let made = Made {
            resource: &c.resource,
            parent,
            caused_by: Some(cause),
            members_by: MembersBy::Profile,
        };
        self.make(store, site, made, new_body);
    }

    /// Stores a new record of `made.resource` from `body` (evaluated already): its id
    /// (minted when the body has none), its parent's member, the members its schema needs,
    /// then what being created runs. Returns its id.
    pub(super) fn make(
        &self,
        store: &mut Store,
        site: Site<'_>,
        made: Made<'_>,
        new_body: Map<String, Value>,
    ) -> String {
        self.make_settled(store, site, made, new_body).0
    }

    /// [`make`](Self::make), and the record as stored when it
    /// [settles when stored](Self::settles_when_stored) (nothing changed it afterwards), so
    /// the caller need not read it back.
    pub(super) fn make_settled(
        &self,
        store: &mut Store,
        site: Site<'_>,
        made: Made<'_>,
        mut new_body: Map<String, Value>,
    ) -> (String, Option<Settled>) {
        let Site {
            spec, tenant, at, ..
        } = site;
        let target = self.model.resources.get(made.resource);
        let id_field = target.map_or("id", |r| r.id_field.as_str());
        // The tenant's sequence keeps two records made at one instant (a frozen clock)
        // from getting one id.
        let seq = store.tenants.get(tenant).map_or(0, |t| t.next_seq);
        let minted = self.mint_made_id(site, &made, seq);
        new_body
            .entry(id_field.to_owned())
            .or_insert_with(|| json!(minted));
        let new_id = lists::id_of(&new_body, id_field).unwrap_or(minted);
        // The parent's path parameter is a member of the child too (`customer_id`).
        if let Some(p) = &made.parent
            && let Some(param) = self.model.bindings.iter().find_map(|b| {
                b.parent
                    .as_ref()
                    .filter(|(_, pt)| *pt == p.resource && b.resource == made.resource)
                    .map(|(param, _)| param.clone())
            })
        {
            new_body.entry(param).or_insert_with(|| json!(p.id));
        }
        // Names the record to whatever generates its members.
        let key = format!("{tenant}/{}/{new_id}", made.resource);
        let validator = self.validators.get(made.resource).map(|v| v.as_ref());
        if let Some(schema) = self.record_schema(made.resource) {
            new_body = NewRecord {
                spec,
                schema: Some(schema),
                // A behaviour's record is its own: checking it is the test suite's work (in
                // debug builds, below), not every request's. The check of a Dino decision's
                // two records was 6% of the server's CPU, all inside the store's lock;
                // without it the spend bench decided 16% more.
                validator: validator.filter(|_| made.members_by == MembersBy::Profile),
                seed: self.seed,
                key: key.clone(),
                now: at.floor() as i64,
                generate_optional: self.profile.generate_optional,
                checks: None,
            }
            .build_owned(new_body, &[(id_field.to_owned(), json!(new_id))], None);
        }
        let meta = Meta {
            caused_by: made.caused_by,
            ..Meta::default()
        };
        let completed = self.completes_before_stored(made.resource);
        if completed {
            self.complete(spec, &key, made.resource, &mut new_body);
        }
        if cfg!(debug_assertions) && made.members_by == MembersBy::Behaviour {
            misfit_made(validator, made.resource, &new_body);
        }
        // A record complete when stored is written once: its text is stored, and shown by
        // its created event and by whoever answers with it.
        let text = completed.then(|| crate::compiled::prepared::json_bytes(&new_body));
        let body = text
            .clone()
            .map_or_else(|| Body::new(&new_body), Body::from_json);
        store.tenant(tenant).insert_body(
            made.resource,
            &new_id,
            (body, &new_body),
            meta,
            made.parent,
        );
        let known = completed.then_some(new_body);
        // The new record is made, not moved: what its creation runs sees no `$from`/`$to`.
        let site = Site {
            resource: made.resource,
            id: &new_id,
            transition: None,
            depth: site.depth + 1,
            ..site
        };
        self.created(store, site, None, false, known.as_ref(), text.as_ref());
        let settled = known
            .zip(text)
            .filter(|_| self.settles_when_stored(made.resource))
            .map(|(record, text)| Settled { record, text });
        (new_id, settled)
    }

    /// A new id for a record of `made.resource` made at `site`, as a create operation mints
    /// them: the prefix the profile gives, else the id schema's pattern or format, else a
    /// KSUID. `seq` (the tenant's sequence) keeps two records made at one instant (a frozen
    /// clock) from getting one id.
    fn mint_made_id(&self, site: Site<'_>, made: &Made<'_>, seq: u64) -> String {
        let Site {
            spec, tenant, at, ..
        } = site;
        let mut key = StableHasher::default();
        // The instant by its bits: writing a float out in decimal cost more than the rest.
        let _ = write!(
            key,
            "related {tenant}/{}/{}/{}/{}/{seq}",
            site.resource,
            site.id,
            at.to_bits(),
            made.resource
        );
        let mut g = Generator::for_spec_hashed(spec, self.seed, key.finish(), Direction::Response);
        g.use_examples = false;
        g.minted_at = Some((at * 1000.0).floor() as i64);
        let target = self.model.resources.get(made.resource);
        match target.and_then(|r| r.id_prefix.as_deref()) {
            Some(prefix) => format!("{prefix}{}", ids::ksuid(g.rng(), at.floor() as i64)),
            None => match self.id_schema(spec, made.resource) {
                Some(m)
                    if m.get("type").and_then(Value::as_str) == Some("string")
                        && (m.get("pattern").is_some() || m.get("format").is_some()) =>
                {
                    match g.value(m) {
                        Value::String(s) => s,
                        _ => ids::ksuid(g.rng(), at.floor() as i64),
                    }
                }
                _ => ids::ksuid(g.rng(), at.floor() as i64),
            },
        }
    }

    /// A record was just stored (at `site.at`; a site with no transition): its derived
    /// members, its lifecycle's start (and, when due or asked for, its run), the created
    /// event, and its effects.
    ///
    /// `known` is the record as stored, already completed, when it
    /// [`completes_before_stored`](Self::completes_before_stored); `text`, the JSON text it
    /// was stored as, when the caller has it.
    pub(super) fn created(
        &self,
        store: &mut Store,
        site: Site<'_>,
        call: Option<&Call>,
        instant: bool,
        known: Option<&Map<String, Value>>,
        text: Option<&Bytes>,
    ) {
        let mark = self.event_mark();
        self.start(store, site, call, instant, (known, text));
        self.attribute(store, site.tenant, site.resource, site.id, mark);
        if let Some(known) = known {
            self.heard_created(store, site, known);
            return;
        }
        let key = format!("{}/{}/{}", site.tenant, site.resource, site.id);
        // Only a behaviour hears of the finished record: the copy is for it.
        let heard = self.behaviour_of(site.resource).is_some();
        let body = store
            .tenant(site.tenant)
            .edit(site.resource, site.id, |body, _| {
                self.complete(site.spec, &key, site.resource, body);
                heard.then(|| body.clone())
            })
            .flatten();
        if let Some(body) = body {
            let what = (site.resource, site.id, Happened::Created);
            self.changed(site.spec, store, site.tenant, what, &body);
        }
    }

    /// A record that [`settles_when_stored`](Self::settles_when_stored) was just stored,
    /// as `record` (with its JSON text, when it was drafted with it): all its creation does
    /// is record its created event.
    pub(super) fn created_settled(
        &self,
        store: &mut Store,
        site: Site<'_>,
        record: (&Map<String, Value>, Option<bytes::Bytes>),
    ) {
        let mark = self.event_mark();
        let Site {
            tenant, resource, ..
        } = site;
        let (record, shown) = record;
        let text = shown.map_or(Text::None, Text::Shown);
        self.emit_text(
            store,
            tenant,
            resource,
            Change::Created,
            (record, text),
            site.at,
        );
        self.attribute(store, tenant, resource, site.id, mark);
    }

    /// Whether a new record of `resource` may be completed before it is stored: none of its
    /// own rules (derived members, a lifecycle's start), which must see only what was sent,
    /// run on it. Such a record's creation then works from the members in hand (`known` of
    /// [`created`](Self::created)) instead of reading the stored bytes back.
    pub(super) fn completes_before_stored(&self, resource: &str) -> bool {
        let own_rules = self
            .profile
            .resources
            .get(resource)
            .is_some_and(|o| !o.derive.is_empty());
        !own_rules && !self.profile.lifecycles.contains_key(resource)
    }

    /// Whether a new record of `resource` is final once stored: it completes before it is
    /// stored, and no creation effects, behaviour or embeds change or add to it afterwards,
    /// so its answer is made from the members in hand too.
    pub(super) fn settles_when_stored(&self, resource: &str) -> bool {
        let plain =
            self.profile.resources.get(resource).is_none_or(|o| {
                o.on_create.is_none() && o.behaviour.is_none() && o.embed.is_empty()
            });
        plain && self.completes_before_stored(resource)
    }

    /// A behaviour hears of a record completed before it was stored: as it is now, which is
    /// `known` unless creation effects changed it since.
    fn heard_created(&self, store: &mut Store, site: Site<'_>, known: &Map<String, Value>) {
        let Some(over) = self.profile.resources.get(site.resource) else {
            return;
        };
        if self.behaviour_of(site.resource).is_none() {
            return;
        }
        let what = (site.resource, site.id, Happened::Created);
        if over.on_create.is_none() {
            self.changed(site.spec, store, site.tenant, what, known);
        } else if let Some(body) = store.get(site.tenant, site.resource, site.id) {
            let body = body.body.map();
            self.changed(site.spec, store, site.tenant, what, &body);
        }
    }

    /// How many events there are, when some resource shows the events its records cause.
    fn event_mark(&self) -> Option<usize> {
        (!self.shows_caused.is_empty()).then(|| self.events.lock().count())
    }

    /// The events recorded since `mark` in `tenant` were caused by record `id`: they are
    /// kept on the first record, from it up through what created it, whose resource shows
    /// the deliveries it caused.
    fn attribute(
        &self,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        id: &str,
        mark: Option<usize>,
    ) {
        let Some(mark) = mark else { return };
        let new: Vec<String> = self
            .events
            .lock()
            .since(mark)
            .filter(|e| e.tenant == tenant)
            .map(|e| e.id().to_owned())
            .collect();
        if new.is_empty() {
            return;
        }
        let (mut r, mut i) = (resource.to_owned(), id.to_owned());
        for _ in 0..=MAX_EFFECT_DEPTH {
            let Some(rec) = store.get(tenant, &r, &i) else {
                return;
            };
            if self.shows_caused.contains(&r) {
                store.tenant(tenant).edit(&r, &i, |_, meta| {
                    for e in new {
                        if !meta.caused.contains(&e) {
                            meta.caused.push(e);
                        }
                    }
                });
                return;
            }
            let Some(cause) = rec.meta().caused_by.clone() else {
                return;
            };
            (r, i) = (cause.resource, cause.id);
        }
    }

    fn start(
        &self,
        store: &mut Store,
        site: Site<'_>,
        call: Option<&Call>,
        instant: bool,
        (known, text): (Option<&Map<String, Value>>, Option<&Bytes>),
    ) {
        let Site {
            tenant,
            resource,
            id,
            at: now,
            ..
        } = site;
        let schema = self.record_schema(resource);
        if let Some(over) = self.profile.resources.get(resource) {
            for d in &over.derive {
                let Some(body) = store.get(tenant, resource, id).map(|r| r.body.map()) else {
                    return;
                };
                if !profile::matches(&d.when, Some(&body)) {
                    continue;
                }
                let values = self.evaluate(store, site, &body, &d.set, schema);
                store
                    .tenant(tenant)
                    .edit(resource, id, |body, _| body.extend(values));
            }
        }
        let mut steps = Vec::new();
        if let Some(lc) = self.profile.lifecycles.get(resource) {
            let key = format!("{tenant}/{resource}/{id}");
            steps = store
                .tenant(tenant)
                .edit(resource, id, |body, meta| {
                    if let Some(call) = call {
                        meta.scenario.clone_from(&call.scenario);
                        meta.held = lc.hold_header.as_deref().is_some_and(|h| call.flag(h));
                    }
                    lifecycle::start(lc, body, meta, now);
                    lifecycle::advance(lc, body, meta, now, instant, &key)
                })
                .unwrap_or_default();
        }
        // Without derived members or a lifecycle, the record is still the one stored.
        let read;
        let body = match known {
            Some(known) => known,
            None => {
                let Some(body) = store.get(tenant, resource, id).map(|r| r.body.map()) else {
                    return;
                };
                read = body;
                &read
            }
        };
        let text = match text.filter(|_| known.is_some()) {
            Some(stored) => Text::Whole(stored.clone()),
            None => Text::None,
        };
        self.emit_text(store, tenant, resource, Change::Created, (body, text), now);
        if let Some(effects) = self
            .profile
            .resources
            .get(resource)
            .and_then(|o| o.on_create.as_ref())
        {
            self.apply_effects(store, site, effects);
        }
        if let Some(lc) = self.profile.lifecycles.get(resource)
            && let Some(initial) = &lc.initial
            && let Some(effects) = lc.on_enter.get(initial)
        {
            self.apply_effects(store, site, effects);
        }
        for (from, to, at) in steps {
            let step = Site {
                transition: Some((&from, &to)),
                at,
                ..site
            };
            self.transitioned(store, step);
        }
    }

    /// The scheduler's step: every due transition in every tenant. Returns how many
    /// resources were looked at.
    pub fn tick(&self, spec: &Spec) {
        self.tick_behaviours(spec);
        let now = self.clock.now();
        if self.store.read().tenants_due(now).is_empty() {
            return;
        }
        let mut store = self.write();
        let due = Due {
            tenant: None,
            resource: None,
            only: None,
        };
        self.advance(spec, &mut store, due, now);
    }
}

/// `value` plus `delta`: decimal strings keep as many decimals as they, or the amount
/// (`amount_text`), had; integers stay integers.
fn add_to(value: &Value, delta: f64, amount_text: &str) -> Value {
    let places = |t: &str| t.split('.').nth(1).map_or(0, str::len);
    match value {
        Value::String(text) => {
            let decimals = places(text).max(places(amount_text));
            json!(format!(
                "{:.*}",
                decimals,
                text.parse::<f64>().unwrap_or(0.0) + delta
            ))
        }
        Value::Number(n) if n.is_i64() => json!(n.as_i64().unwrap_or(0) + delta.round() as i64),
        Value::Null => json!(delta),
        other => json!(other.as_f64().unwrap_or(0.0) + delta),
    }
}

/// In debug builds (the test suite), a behaviour's record that breaks its schema fails
/// loudly, naming each misfit: in release it is stored as the behaviour wrote it.
fn misfit_made(
    validator: Option<&jsonschema::Validator>,
    resource: &str,
    record: &Map<String, Value>,
) {
    let Some(v) = validator else { return };
    let record = Value::Object(record.clone());
    let misfits = crate::schema::violations(v, &record);
    assert!(
        misfits.is_empty(),
        "a behaviour made a {resource} record that breaks its schema: {misfits:?} in {record}"
    );
}
