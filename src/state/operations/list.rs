//! `GET` on a collection: the records in scope (all, a parent's children, or those linked
//! to the path's parent), filtered, sorted and paged by the list engine, each shown through
//! the list's item schema, wrapped in the API's own list shape.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::Ctx;
use crate::generate::{Generator, flatten};
use crate::schema::Direction;
use crate::spec::Spec;
use crate::state::call::Outcome;
use crate::state::effects::Site;
use crate::state::engine::Engine;
use crate::state::envelope;
use crate::state::lists::{self, ListPlan, Scope, fill_meta};
use crate::state::model::list_item_schema;
use crate::state::store::{Id, Store};

impl Engine {
    /// How operation `oi`'s list responses are shaped, worked out once.
    pub(crate) fn list_plan(&self, spec: &Spec, oi: usize, schema_ptr: &str) -> Arc<ListPlan> {
        if let Some(p) = self.list_plans.lock().get(&oi) {
            return p.clone();
        }
        let flat = spec
            .at(schema_ptr)
            .map(|s| flatten(&spec.doc, s))
            .unwrap_or(Value::Null);
        let bare = flat.get("type").and_then(Value::as_str) == Some("array");
        let resource = &self.model.bindings[oi].resource;
        let item_schema = list_item_schema(spec, schema_ptr, resource);
        let mut arrays = item_schema
            .as_deref()
            .map(|i| envelope::array_members(spec, schema_ptr, i))
            .unwrap_or_default()
            .into_iter();
        let array_member = arrays.next().unwrap_or_else(|| "data".to_owned());
        let also: Vec<String> = arrays.collect();
        let wrapper = if bare {
            Map::new()
        } else {
            Generator::for_spec(
                spec,
                self.seed,
                &format!("list wrapper {schema_ptr}"),
                Direction::Response,
            )
            .value_at(schema_ptr)
            .as_object()
            .cloned()
            .unwrap_or_default()
        };
        let item_members = item_schema.as_deref().and_then(|s| self.names_of(spec, s));
        let limit = spec.operations[oi]
            .params
            .iter()
            .find(|p| p.name == "limit")
            .and_then(|p| p.schema.as_deref())
            .and_then(|s| spec.at(s))
            .map(|s| flatten(&spec.doc, s));
        let bound = |name: &str, default: u64| {
            limit
                .as_ref()
                .and_then(|l| l.get(name))
                .and_then(Value::as_u64)
                .unwrap_or(default) as usize
        };
        let plan = Arc::new(ListPlan {
            bare,
            wrapper,
            array_member,
            also,
            item_schema,
            item_members,
            default_limit: bound("default", 20),
            max_limit: bound("maximum", 100),
        });
        self.list_plans.lock().insert(oi, plan.clone());
        plan
    }
}

impl Ctx<'_> {
    /// The records a list starts from: every record, a parent's children, or those linked
    /// to the path's parent.
    fn scope(&self, store: &Store) -> Scope<'_> {
        let (Some(parent), name) = (&self.parent, &self.resource.name) else {
            return Scope::All;
        };
        let Some(link) = &self.binding.link else {
            return Scope::Children(parent);
        };
        let tenant = self.call.tenant;
        if link.parent_holds {
            // The parent's array names the records (by id, or by another member of theirs).
            let held = store
                .get(tenant, &parent.resource, &parent.id)
                .and_then(|r| r.body.get(&link.member));
            let Some(coll) = store.collection(tenant, name) else {
                return Scope::Ids(Vec::new());
            };
            let mut ids: Vec<Id> = match held {
                Some(Value::Array(items)) => items,
                Some(Value::Null) | None => Vec::new(),
                Some(v) => vec![v],
            }
            .iter()
            .filter_map(|v| {
                let wanted = lists::text(v);
                match &link.by {
                    None => coll.id(&wanted).cloned(),
                    Some(by) => lists::find_text(coll, by, &wanted).cloned(),
                }
            })
            .collect();
            ids.sort_by_key(|id| coll.position(id));
            ids.dedup();
            return Scope::Ids(ids);
        }
        // Each record names the parent (by id, or by another member of the parent's).
        let value = match &link.by {
            None => Some(parent.id.clone()),
            Some(by) => store
                .get(tenant, &parent.resource, &parent.id)
                .and_then(|r| r.body.get(by))
                .map(|v| lists::text(&v)),
        };
        match value {
            Some(v) => Scope::Member(&link.member, v),
            None => Scope::Ids(Vec::new()),
        }
    }

    /// A page of the collection.
    pub(super) fn list(&self, store: &Store) -> Outcome {
        let Some(schema) = self.schema else {
            return Outcome::Stateless;
        };
        let plan = self.engine.list_plan(self.spec(), self.oi, schema);
        let query = lists::ListQuery {
            params: self.call.query,
            default_limit: plan.default_limit,
            max_limit: plan.max_limit,
            id_field: &self.resource.id_field,
        };
        let name = &self.resource.name;
        let page = match store.collection(self.call.tenant, name) {
            Some(coll) => match lists::page_collection(coll, self.scope(store), &query) {
                Ok(p) => p,
                Err(e) => return Outcome::Problem(400, e.message),
            },
            // An empty collection still checks its paging parameters.
            None => match lists::page(Vec::new(), &query) {
                Ok(p) => lists::Listed {
                    ids: Vec::new(),
                    window: p.window,
                },
                Err(e) => return Outcome::Problem(400, e.message),
            },
        };
        let items: Vec<Value> = page
            .ids
            .iter()
            .filter_map(|id| self.list_item(store, &plan, id))
            .collect();
        if plan.bare {
            return Outcome::Body(Value::Array(items));
        }
        let last_id = page.ids.last().map(ToString::to_string);
        let mut body = plan.wrapper.clone();
        for member in &plan.also {
            body.insert(member.clone(), Value::Array(items.clone()));
        }
        body.insert(plan.array_member.clone(), Value::Array(items));
        fill_meta(
            &mut body,
            &page.window,
            last_id.as_deref(),
            &plan.array_member,
        );
        Outcome::Body(Value::Object(body))
    }

    /// One record as the list shows it: its members and embeds through the item schema,
    /// plus the profile's `extra` members.
    fn list_item(&self, store: &Store, plan: &ListPlan, id: &str) -> Option<Value> {
        let tenant = self.call.tenant;
        let name = &self.resource.name;
        let record = store.get(tenant, name, id)?.body.map();
        let extra = self
            .engine
            .profile
            .operations
            .get(self.op_id)
            .map(|o| &o.extra)
            .filter(|e| !e.is_empty());
        let added = extra.map(|e| {
            let site = Site {
                spec: self.spec(),
                tenant,
                resource: name,
                id,
                transition: None,
                at: self.engine.clock.now(),
                depth: 0,
            };
            self.engine
                .evaluate(store, site, &record, e, plan.item_schema.as_deref())
        });
        let mut shown = record;
        shown.extend(self.engine.embeds(self.spec(), store, tenant, name, id));
        let Some(s) = &plan.item_schema else {
            return Some(Value::Object(shown));
        };
        let projected =
            self.shown()
                .project(&self.key(id), s, &shown, None, plan.item_members.as_deref());
        Some(match (projected, added) {
            (Value::Object(mut item), Some(added)) => {
                item.extend(added);
                Value::Object(item)
            }
            (projected, _) => projected,
        })
    }
}
