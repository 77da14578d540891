//! What a profile says a record may not be: a second record sharing a `unique` member
//! (409), or one record too many for its tenant (`max_records`). Checked before a record is
//! stored, on create, update and replace alike.

use serde_json::{Map, Value};

use super::Ctx;
use crate::profile::Within;
use crate::state::call::Outcome;
use crate::state::lists;
use crate::state::store::Store;

impl Ctx<'_> {
    /// The refusal, if `record` breaks one of the resource's declared constraints.
    pub(super) fn constraints(
        &self,
        store: &Store,
        record: &Map<String, Value>,
    ) -> Result<(), Outcome> {
        let name = &self.resource.name;
        let Some(over) = self.engine.profile.resources.get(name) else {
            return Ok(());
        };
        let own_id = lists::id_of(record, &self.resource.id_field);
        let coll = store.collection(self.call.tenant, name);
        if let (Some(max), Some(coll)) = (&over.max_records, coll) {
            let is_new = own_id.as_deref().is_none_or(|id| coll.get(id).is_none());
            if is_new && coll.len() >= max.count {
                let message = max
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("no more than {} {name} may exist", max.count));
                return Err(Outcome::Problem(max.status.unwrap_or(403), message));
            }
        }
        for rule in &over.unique {
            let Some(mine) = record.get(&rule.member).map(lists::text) else {
                continue;
            };
            let same = |v: &Value| {
                let theirs = lists::text(v);
                if rule.ignore_case {
                    theirs.to_lowercase() == mine.to_lowercase()
                } else {
                    theirs == mine
                }
            };
            let clash = coll.into_iter().flat_map(|c| c.iter()).any(|(id, r)| {
                Some(id.as_ref()) != own_id.as_deref()
                    && (rule.within == Within::Tenant || r.parent() == self.parent.as_ref())
                    && r.body.get(&rule.member).is_some_and(|v| same(&v))
            });
            if clash {
                let message = rule.message.clone().unwrap_or_else(|| {
                    format!("another record already has {} '{mine}'", rule.member)
                });
                return Err(Outcome::Problem(409, message));
            }
        }
        Ok(())
    }
}
