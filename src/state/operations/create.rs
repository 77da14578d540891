//! `POST` to a collection: a new record from the request body, with its id, parent link,
//! timestamps, derived members, lifecycle start and effects; references checked first.

use serde_json::{Value, json};

use super::Ctx;
use crate::generate::{Generator, ids};
use crate::schema::Direction;
use crate::state::call::Outcome;
use crate::state::effects::Site;
use crate::state::lists;
use crate::state::model::singular;
use crate::state::store::{Meta, Store};

impl Ctx<'_> {
    /// A new id: the client's, or one in the format the id member's schema asks for.
    fn mint_id(&self, store: &Store) -> Value {
        let field = &self.resource.id_field;
        if let Some(v) = self
            .call
            .body
            .and_then(|b| b.get(field))
            .filter(|v| v.is_string() || v.is_number())
        {
            return v.clone();
        }
        let seq = store
            .tenants
            .get(self.call.tenant)
            .map_or(0, |t| t.next_seq)
            + 1;
        let key = format!("id {}/{}/{seq}", self.call.tenant, self.resource.name);
        let mut g = Generator::for_spec(self.spec(), self.api.seed, &key, Direction::Response);
        // Examples are one fixed value; ids must be fresh every time.
        g.use_examples = false;
        if let Some(prefix) = &self.resource.id_prefix {
            let t = self.call.now;
            return json!(format!("{prefix}{}", ids::ksuid(g.rng(), t)));
        }
        let member = self.engine.id_schema(self.spec(), &self.resource.name);
        match member.as_ref() {
            Some(m)
                if matches!(
                    m.get("type").and_then(Value::as_str),
                    Some("integer" | "number")
                ) =>
            {
                json!(seq)
            }
            Some(m) if m.get("format").is_some() || m.get("pattern").is_some() => g.value(m),
            _ => json!(ids::ksuid(g.rng(), self.call.now)),
        }
    }

    /// A client-chosen id that exists already: a retry of the same request (for resources
    /// with idempotent ids) answers like the first; anything else is 409.
    fn existing(&self, store: &Store, id: &str, fingerprint: Option<u64>) -> Option<Outcome> {
        let name = &self.resource.name;
        let existing = store.get(self.call.tenant, name, id)?;
        let idempotent = self
            .engine
            .profile
            .resources
            .get(name)
            .is_some_and(|o| o.idempotent_id);
        if idempotent && existing.meta().fingerprint == fingerprint {
            return Some(self.respond_stored(store, name, id));
        }
        Some(Outcome::Problem(
            409,
            format!(
                "a {} with id '{id}' already exists{}",
                singular(name).replace('_', " "),
                if idempotent {
                    " with different parameters"
                } else {
                    ""
                }
            ),
        ))
    }

    /// Members naming other records must name existing ones (404 naming the first that
    /// does not).
    fn dangling_reference(&self, store: &Store) -> Option<Outcome> {
        let over = self.engine.profile.resources.get(&self.resource.name)?;
        let Some(Value::Object(sent)) = self.call.body else {
            return None;
        };
        for (member, reference) in &over.references {
            let Some(v) = sent.get(member) else {
                continue;
            };
            if let Some(missing) = self.engine.dangling(store, self.call.tenant, reference, v) {
                let target = singular(reference.resource()).replace('_', " ");
                let by = reference.member().unwrap_or("id");
                return Some(Outcome::Problem(
                    404,
                    format!("no {target} with {by} '{missing}'"),
                ));
            }
        }
        None
    }

    pub(super) fn create(&self, store: &mut Store) -> Outcome {
        let name = &self.resource.name;
        let tenant = self.call.tenant;
        let over = self.engine.profile.resources.get(name);
        let id_value = self.mint_id(store);
        let id = lists::text(&id_value);
        let fingerprint = self
            .call
            .body
            .map(|b| crate::generate::stable_hash(&b.to_string()));
        if let Some(answer) = self.existing(store, &id, fingerprint) {
            return answer;
        }
        if let Some(refused) = self.dangling_reference(store) {
            return refused;
        }
        let mut record =
            self.new_record(self.key(&id))
                .build(self.call.body, &self.fixed(&id_value), None);
        if let Err(refused) = self.admit(store, &mut record) {
            return refused;
        }
        let meta = Meta {
            fingerprint: fingerprint.filter(|_| over.is_some_and(|o| o.idempotent_id)),
            ..Meta::default()
        };
        let completed = self.engine.completes_before_stored(name);
        if completed {
            let key = self.key(&id);
            self.engine.complete(self.spec(), &key, name, &mut record);
        }
        let settled = self.engine.settles_when_stored(name);
        store
            .tenant(tenant)
            .insert_with(name, &id, &record, meta, self.parent.clone());
        let site = Site {
            spec: self.spec(),
            tenant,
            resource: name,
            id: &id,
            transition: None,
            at: self.engine.clock.now(),
            depth: 0,
        };
        let known = completed.then_some(&record);
        let instant = self.call.instant;
        self.engine
            .created(store, site, Some(self.call), instant, known);
        if self.binding.respond_parent
            && let Some(p) = &self.parent
        {
            return self.respond_stored(store, &p.resource, &p.id);
        }
        let outcome = if settled {
            self.answer_stored(store, name, &id, &record)
        } else {
            self.respond_stored(store, name, &id)
        };
        // Secrets are shown once.
        if let Some(o) = over.filter(|o| !o.once.is_empty()) {
            store.tenant(tenant).edit(name, &id, |body, _| {
                for m in &o.once {
                    body.remove(m);
                }
            });
        }
        outcome
    }
}
