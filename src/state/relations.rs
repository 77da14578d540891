//! How records relate beyond parent and child: members referencing other records (one, or
//! an array of them), many-to-many links kept in such members, arrays embedding a record's
//! children or referenced records, and the delete guard of references that must not dangle.

use serde_json::{Map, Value};

use super::engine::Engine;
use super::model::{Link, singular};
use super::shape::Shown as Showing;
use super::store::{Collection, Id, ParentRef, Store, Tenant};
use super::{delivery_log, lists};
use crate::profile::{self, Embed};
use crate::spec::Spec;

impl Engine {
    /// The record that member `via` of `body` references, as (resource, id); for an array
    /// member, the first one that exists.
    pub(super) fn referenced(
        &self,
        store: &Store,
        tenant: &str,
        resource: &str,
        body: &Map<String, Value>,
        via: &str,
    ) -> Option<(String, String)> {
        self.referenced_all(store, tenant, resource, body, via)
            .into_iter()
            .next()
    }

    /// Every record that member `via` of `body` references (one, or one per array item).
    pub(super) fn referenced_all(
        &self,
        store: &Store,
        tenant: &str,
        resource: &str,
        body: &Map<String, Value>,
        via: &str,
    ) -> Vec<(String, String)> {
        let Some(reference) = self
            .profile
            .resources
            .get(resource)
            .and_then(|o| o.references.get(via))
        else {
            return Vec::new();
        };
        one_or_many(body.get(via))
            .into_iter()
            .filter_map(|v| resolve(store, tenant, reference, v))
            .collect()
    }

    /// Sent values of member `via` naming no existing record (each item of an array).
    pub(super) fn dangling(
        &self,
        store: &Store,
        tenant: &str,
        reference: &profile::Reference,
        value: &Value,
    ) -> Option<String> {
        one_or_many(Some(value))
            .into_iter()
            .find(|v| resolve(store, tenant, reference, v).is_none())
            .map(lists::text)
    }

    /// The value a link stores for record `id` of `resource`: its id, or its member `by`.
    pub(super) fn link_value(
        &self,
        store: &Store,
        tenant: &str,
        resource: &str,
        id: &str,
        by: Option<&str>,
    ) -> Option<Value> {
        let rec = store.get(tenant, resource, id)?;
        match by {
            Some(member) => rec.body.get(member),
            None => Some(Value::String(id.to_owned())),
        }
    }

    /// Where link `link` between `parent` and record `child_id` of `child` is kept: the
    /// holding record and the value it stores for the other side.
    pub(super) fn link_slot(
        &self,
        store: &Store,
        tenant: &str,
        link: &Link,
        parent: &ParentRef,
        child: &str,
        child_id: &str,
    ) -> Option<(String, String, Value)> {
        if link.parent_holds {
            let value = self.link_value(store, tenant, child, child_id, link.by.as_deref())?;
            Some((parent.resource.clone(), parent.id.clone(), value))
        } else {
            let value = self.link_value(
                store,
                tenant,
                &parent.resource,
                &parent.id,
                link.by.as_deref(),
            )?;
            Some((child.to_owned(), child_id.to_owned(), value))
        }
    }

    /// Whether record `child_id` of `child` is linked to `parent`.
    pub(super) fn linked(
        &self,
        store: &Store,
        tenant: &str,
        link: &Link,
        parent: &ParentRef,
        child: &str,
        child_id: &str,
    ) -> bool {
        self.link_slot(store, tenant, link, parent, child, child_id)
            .and_then(|(r, i, value)| {
                let holder = store.get(tenant, &r, &i)?;
                Some(holds(holder.body.get(&link.member).as_ref(), &value))
            })
            .unwrap_or(false)
    }

    /// Record `id` as it is shown: its members, with its embedded members as they are now.
    pub(super) fn view(
        &self,
        spec: &Spec,
        store: &Store,
        tenant: &str,
        resource: &str,
        id: &str,
    ) -> Option<Map<String, Value>> {
        let mut body = store.get(tenant, resource, id)?.body.map();
        body.extend(self.embeds(spec, store, tenant, resource, id));
        Some(body)
    }

    /// The embedded members of record `id` as they are now.
    pub(super) fn embeds(
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
        let Some(records) = store.tenants.get(tenant).map(|t| &t.resources) else {
            return Vec::new();
        };
        let own = store.get(tenant, resource, id).map(|r| r.body.map());
        let mut values = Vec::new();
        let shown = Showing {
            spec,
            seed: self.seed,
            generate_optional: self.profile.generate_optional,
        };
        for (member, embed) in &over.embed {
            let item_schema = self
                .embed_items
                .get(&(resource.to_owned(), member.clone()))
                .map(String::as_str);
            let (child, children): (&str, Vec<Shown>) = match embed {
                Embed::Deliveries { .. } => {
                    let items =
                        self.caused_deliveries(spec, store, tenant, resource, id, item_schema);
                    values.push((member.clone(), Value::Array(items)));
                    continue;
                }
                Embed::Children(child) => {
                    let parent = ParentRef {
                        resource: resource.to_owned(),
                        id: id.to_owned(),
                    };
                    let coll = records.get(child);
                    (
                        child,
                        coll.and_then(|c| Some((c, c.children(&parent)?)))
                            .into_iter()
                            .flat_map(|(c, set)| c.by_seqs(set))
                            .map(|(i, r)| (i.clone(), r.body.map()))
                            .collect(),
                    )
                }
                Embed::Via { via } => {
                    let (Some(body), Some(child)) = (
                        own.as_ref(),
                        over.references.get(via).map(profile::Reference::resource),
                    ) else {
                        continue;
                    };
                    let recs = records.get(child);
                    let named = self.referenced_all(store, tenant, resource, body, via);
                    (
                        child,
                        named
                            .iter()
                            .filter_map(|(_, i)| {
                                let (id, r) = recs?.id(i).zip(recs?.get(i))?;
                                Some((id.clone(), r.body.map()))
                            })
                            .collect(),
                    )
                }
            };
            let items: Vec<Value> = children
                .into_iter()
                .map(|(cid, body)| match item_schema {
                    Some(s) => shown.project(
                        &format!("{tenant}/{child}/{cid}"),
                        s,
                        &body,
                        None,
                        self.names_of(spec, s).as_deref(),
                    ),
                    None => Value::Object(body),
                })
                .collect();
            values.push((member.clone(), Value::Array(items)));
        }
        values
    }

    /// The webhook deliveries of the events record `id` caused, in the order they were
    /// queued, as `item_schema` shows them (their state is read now, not when caused).
    fn caused_deliveries(
        &self,
        spec: &Spec,
        store: &Store,
        tenant: &str,
        resource: &str,
        id: &str,
        item_schema: Option<&str>,
    ) -> Vec<Value> {
        let Some(rec) = store.get(tenant, resource, id) else {
            return Vec::new();
        };
        let hooks = self.webhooks.lock();
        let mut items = Vec::new();
        let shown = Showing {
            spec,
            seed: self.seed,
            generate_optional: false,
        };
        for event in &rec.meta().caused {
            for d in hooks
                .deliveries
                .iter()
                .filter(|d| d.event_id == *event && d.tenant == tenant && !d.replay)
            {
                let replays = hooks.replays.get(event).copied().unwrap_or(0);
                let mut known = delivery_log::known(spec, item_schema, d, replays);
                // What the log does not know (not delivered yet, no error) stays absent.
                known.retain(|_, v| !v.is_null());
                items.push(match item_schema {
                    Some(s) => shown.project(
                        &format!("{tenant}/deliveries/{}", d.id),
                        s,
                        &known,
                        None,
                        self.names_of(spec, s).as_deref(),
                    ),
                    None => Value::Object(known),
                });
            }
        }
        items
    }

    /// Why record `id` (with everything its delete cascades to) cannot be deleted: a live
    /// record references it through a reference declared `blocks_delete`.
    pub(super) fn delete_blocked(
        &self,
        store: &Store,
        tenant: &str,
        resource: &str,
        id: &str,
    ) -> Option<String> {
        let t = store.tenants.get(tenant)?;
        let doomed = descendants(t, resource, id);
        for (holder, over) in &self.profile.resources {
            for (member, reference) in &over.references {
                let profile::Reference::Full(spec) = reference else {
                    continue;
                };
                if !spec.blocks_delete {
                    continue;
                }
                let Some(coll) = t.collection(holder) else {
                    continue;
                };
                for (target, target_id) in &doomed {
                    if target != &spec.resource {
                        continue;
                    }
                    // The value a holder's member would hold to name this record.
                    let named = match &spec.member {
                        None => Some(Value::String(target_id.clone())),
                        Some(m) => t.get(target, target_id).and_then(|r| r.body.get(m)),
                    };
                    let Some(named) = named else { continue };
                    for hid in holders(coll, member, &named) {
                        let Some(rec) = coll.get(&hid) else { continue };
                        let body = rec.body.map();
                        if !spec.unless.is_empty() && profile::matches(&spec.unless, Some(&body)) {
                            continue;
                        }
                        if doomed.iter().any(|(d, did)| d == holder && *did == *hid) {
                            continue;
                        }
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
}

/// Record `id` of `resource` and everything under it, as (resource, id).
fn descendants(t: &Tenant, resource: &str, id: &str) -> Vec<(String, String)> {
    let mut doomed: Vec<(String, String)> = vec![(resource.to_owned(), id.to_owned())];
    let mut i = 0;
    while i < doomed.len() {
        let parent = ParentRef {
            resource: doomed[i].0.clone(),
            id: doomed[i].1.clone(),
        };
        for (cr, coll) in &t.resources {
            for cid in coll.children(&parent).into_iter().flat_map(|s| coll.ids(s)) {
                doomed.push((cr.clone(), cid.to_string()));
            }
        }
        i += 1;
    }
    doomed
}

/// The records of `coll` whose `member` names `value` (the value, or an array holding it).
fn holders(coll: &Collection, member: &str, value: &Value) -> Vec<Id> {
    let wanted = lists::text(value);
    match coll.index(member).filter(|i| i.equal.is_some()) {
        Some(index) => index
            .equal_to(&wanted)
            .map(|set| coll.ids(set).cloned().collect())
            .unwrap_or_default(),
        _ => coll
            .iter()
            .filter(|(_, r)| holds(r.body.get(member).as_ref(), value))
            .map(|(id, _)| id.clone())
            .collect(),
    }
}

/// The values a reference member holds: each item of an array, or the one value (none when
/// it is missing or null).
fn one_or_many(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(v) => vec![v],
    }
}

/// The record of `reference`'s resource that `value` names (by id, or by its member).
fn resolve(
    store: &Store,
    tenant: &str,
    reference: &profile::Reference,
    value: &Value,
) -> Option<(String, String)> {
    let target = reference.resource();
    let records = store.collection(tenant, target)?;
    match reference.member() {
        None => {
            let id = lists::text(value);
            records.get(&id).map(|_| (target.to_owned(), id))
        }
        Some(member) => records
            .find_by(member, value)
            .map(|id| (target.to_owned(), id.to_string())),
    }
}

/// Whether a link member (an array, or a single value) holds `value`.
pub(super) fn holds(member: Option<&Value>, value: &Value) -> bool {
    let wanted = lists::text(value);
    match member {
        Some(Value::Array(items)) => items.iter().any(|v| lists::text(v) == wanted),
        Some(Value::Null) | None => false,
        Some(v) => lists::text(v) == wanted,
    }
}

/// Adds `value` to a link member: an array (created when missing) or a single value.
/// Returns whether anything changed.
pub(super) fn attach(body: &mut Map<String, Value>, member: &str, value: &Value) -> bool {
    if holds(body.get(member), value) {
        return false;
    }
    match body.get_mut(member) {
        Some(Value::Array(items)) => items.push(value.clone()),
        Some(Value::Null) | None => {
            body.insert(member.to_owned(), Value::Array(vec![value.clone()]));
        }
        Some(single) => *single = value.clone(),
    }
    true
}

/// Removes `value` from a link member. Returns whether anything changed.
pub(super) fn detach(body: &mut Map<String, Value>, member: &str, value: &Value) -> bool {
    if !holds(body.get(member), value) {
        return false;
    }
    let wanted = lists::text(value);
    match body.get_mut(member) {
        Some(Value::Array(items)) => items.retain(|v| lists::text(v) != wanted),
        Some(single) => *single = Value::Null,
        None => {}
    }
    true
}

/// A record about to be shown embedded: its id and members.
type Shown = (Id, Map<String, Value>);
