//! Many-to-many links: `PUT /A/{a}/B/{b}` attaches an existing `B` to `A`, `DELETE` detaches
//! it, in the member of whichever side holds the link.

use serde_json::{Value, json};

use super::Ctx;
use crate::state::call::Outcome;
use crate::state::events::Change;
use crate::state::lists;
use crate::state::model::singular;
use crate::state::relations;
use crate::state::store::Store;

impl Ctx<'_> {
    /// The record to attach or detach: named in the path, or in a body member.
    fn link_target(&self, store: &Store) -> Result<String, Outcome> {
        let (Some(link), name) = (&self.binding.link, &self.resource.name) else {
            return Err(Outcome::Stateless);
        };
        let Some(member) = &link.value_from else {
            return self.item_id(store).ok_or(Outcome::Stateless);
        };
        let Some(wanted) = self.call.body.and_then(|b| b.get(member)).map(lists::text) else {
            return Err(Outcome::Problem(400, format!("'{member}' is required")));
        };
        // The body names the record as the link stores it.
        let by = link.by.as_deref().filter(|_| link.parent_holds);
        self.find_by(store, by, &wanted)
            .ok_or_else(|| self.not_found(name, &wanted))
    }

    /// Attaches (or detaches) a record to the path's parent item, in the member that holds
    /// the link; answers with the parent (`respond: parent`), the record, or nothing.
    pub(super) fn link(&self, store: &mut Store, attach: bool) -> Outcome {
        let (Some(link), Some(parent)) = (&self.binding.link, &self.parent) else {
            return Outcome::Stateless;
        };
        let (tenant, name) = (self.call.tenant, &self.resource.name);
        let child_id = match self.link_target(store) {
            Ok(id) => id,
            Err(outcome) => return outcome,
        };
        if store.get(tenant, name, &child_id).is_none() {
            return self.not_found(name, &child_id);
        }
        let Some((holder, holder_id, value)) = self
            .engine
            .link_slot(store, tenant, link, parent, name, &child_id)
        else {
            return self.not_found(name, &child_id);
        };
        let edited = store.tenant(tenant).edit(&holder, &holder_id, |body, _| {
            let before = body.get(&link.member).cloned().unwrap_or(Value::Null);
            let changed = if attach {
                relations::attach(body, &link.member, &value)
            } else {
                relations::detach(body, &link.member, &value)
            };
            (before, changed, body.clone())
        });
        let Some((before, changed, after)) = edited else {
            return self.not_found(&holder, &holder_id);
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
            return self.respond_stored(store, &parent.resource, &parent.id);
        }
        match self.schema {
            Some(_) => self.respond_stored(store, name, &child_id),
            None => Outcome::Body(Value::Null),
        }
    }
}
