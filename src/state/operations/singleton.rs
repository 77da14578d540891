//! Singleton sub-documents of an item (`GET`/`PUT /applications/{id}/edd`): one document per
//! record, empty until written, merged on write, shown through the response schema.

use serde_json::{Map, Value};

use super::Ctx;
use crate::state::call::Outcome;
use crate::state::store::Store;

impl Ctx<'_> {
    /// The owner's id and the sub-document's slot, when the owner exists where the path
    /// says; the 404 otherwise.
    fn sub_document(&self, store: &Store) -> Result<(String, String, String), Outcome> {
        let (Some(id), Some(sub)) = (self.path_id(), &self.binding.singleton) else {
            return Err(Outcome::Stateless);
        };
        let name = &self.resource.name;
        if store
            .get(self.call.tenant, name, id)
            .is_none_or(|r| self.parent.is_some() && r.parent() != self.parent.as_ref())
        {
            return Err(self.not_found(name, id));
        }
        let key = format!("{}/{sub}", self.key(id));
        Ok((id.to_owned(), format!("{name}/{sub}"), key))
    }

    fn show_document(&self, doc: &Map<String, Value>, key: &str) -> Outcome {
        let Some(schema) = self.schema else {
            return Outcome::Body(Value::Null);
        };
        let names = self.engine.names_of(self.spec(), schema);
        Outcome::Body(
            self.shown()
                .project(key, schema, doc, self.validator, names.as_deref()),
        )
    }

    pub(super) fn singleton_read(&self, store: &Store) -> Outcome {
        let (id, slot, key) = match self.sub_document(store) {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        if self.schema.is_none() {
            return Outcome::Body(Value::Null);
        }
        let doc = store
            .tenants
            .get(self.call.tenant)
            .and_then(|t| t.singletons.get(&slot))
            .and_then(|owners| owners.get(&id));
        match doc {
            Some(Value::Object(map)) => self.show_document(map, &key),
            Some(_) => Outcome::Stateless,
            None => self.show_document(&Map::new(), &key),
        }
    }

    pub(super) fn singleton_write(&self, store: &mut Store) -> Outcome {
        let (id, slot, key) = match self.sub_document(store) {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        if self.schema.is_none() {
            return Outcome::Body(Value::Null);
        }
        let mut tenant = store.tenant(self.call.tenant);
        let doc = tenant.singleton(&slot, &id);
        if let (Value::Object(target), Some(Value::Object(changes))) = (&mut *doc, self.call.body) {
            for (k, v) in changes {
                target.insert(k.clone(), v.clone());
            }
        }
        let Value::Object(map) = doc.clone() else {
            return Outcome::Stateless;
        };
        self.show_document(&map, &key)
    }
}
