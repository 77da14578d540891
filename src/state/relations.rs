//! How records relate beyond parent and child: members referencing other records, arrays
//! embedding a record's children, and the delete guard of references that must not dangle.

use serde_json::{Map, Value};

use super::model::singular;
use super::shape::project;
use super::store::Store;
use super::{Engine, lists, profile};
use crate::generate::flatten;
use crate::spec::Spec;

impl Engine {
    /// The record that member `via` of `body` references, as (resource, id).
    pub(super) fn referenced(
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

    /// Writes each embedded member of record `id`: its current children, as the member's
    /// item schema shows them.
    pub(super) fn refresh_embeds(
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
    pub(super) fn delete_blocked(
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
}
