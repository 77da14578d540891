//! `POST` to a collection: a new record from the request body, with its id, parent link,
//! timestamps, derived members, lifecycle start and effects; references checked first.
//! Served creates claim an id, draft the record without the store's lock, then commit.

use serde_json::{Map, Value, json};

use super::{Ctx, kept_as};
use crate::generate::{Generator, ids};
use crate::schema::Direction;
use crate::state::call::Outcome;
use crate::state::effects::Site;
use crate::state::lists;
use crate::state::model::singular;
use crate::state::shape::valid;
use crate::state::store::{Collection, Meta, Ready, Store, Template, same_names};

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
            Some(m) if m.get("format").is_some() || m.get("pattern").is_some() => {
                g.minted_at = Some(self.call.now * 1000);
                g.value(m)
            }
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

    /// A create under a write lock the caller holds: claimed, drafted and stored at once.
    pub(super) fn create(&self, store: &mut Store) -> Outcome {
        let claim = match self.claim(store) {
            Ok(claim) => claim,
            Err(answer) => return answer,
        };
        let draft = self.draft(&claim);
        self.commit(store, claim, draft)
    }

    /// A create that drafts its record (generation, most of its cost) between two short
    /// holds of the write lock, so creates on several threads draft at once: the first hold
    /// claims the id and its place in the tenant's sequence, the second checks again what
    /// may have changed meanwhile (the parent, the id, references) and stores the record.
    pub(super) fn create_unlocked(self) -> Outcome {
        let (ctx, claim) = {
            let mut store = self.engine.write();
            match self.claimed(&mut store) {
                Ok(claimed) => claimed,
                Err(answer) => return answer,
            }
        };
        let draft = ctx.draft(&claim);
        ctx.stored(&mut ctx.engine.write(), claim, draft)
    }

    /// [`create_unlocked`](Self::create_unlocked) for a request being served: each hold of
    /// the lock waits for the request's turn first, without blocking the thread. Also
    /// returns the state log append the answer waits for (0 for none).
    pub(super) async fn create_in_turns(self) -> (Outcome, u64) {
        let engine = self.engine;
        let (claimed, first) = engine.in_turn(|| self.claimed(&mut engine.write())).await;
        let (ctx, claim) = match claimed {
            Ok(claimed) => claimed,
            Err(answer) => return (answer, first),
        };
        let draft = ctx.draft(&claim);
        let (outcome, second) = engine
            .in_turn(|| ctx.stored(&mut engine.write(), claim, draft))
            .await;
        (outcome, first.max(second))
    }

    /// The first hold of a create: what is due applied, the parent checked, the id claimed.
    fn claimed(self, store: &mut Store) -> Result<(Self, Claim), Outcome> {
        self.catch_up(store);
        let ctx = self.with_parent(store)?;
        let claim = ctx.claim(store)?;
        Ok((ctx, claim))
    }

    /// The second hold of a create: stores the drafted record unless something changed
    /// meanwhile refuses it.
    fn stored(&self, store: &mut Store, claim: Claim, draft: Draft) -> Outcome {
        if let Some(refused) = self.changed_meanwhile(store, &claim) {
            store.tenant(self.call.tenant).release(claim.seq);
            return refused;
        }
        self.commit(store, claim, draft)
    }

    /// The new record's id and place in its tenant's sequence, once nothing already there
    /// refuses the create (an existing id, a dangling reference).
    fn claim(&self, store: &mut Store) -> Result<Claim, Outcome> {
        let id_value = self.mint_id(store);
        let id = lists::text(&id_value);
        // Only a resource whose ids are idempotent compares what was sent.
        let idempotent = self
            .engine
            .profile
            .resources
            .get(&self.resource.name)
            .is_some_and(|o| o.idempotent_id);
        let fingerprint = self
            .call
            .body
            .filter(|_| idempotent)
            .map(|b| crate::generate::stable_hash(&b.to_string()));
        if let Some(answer) = self.existing(store, &id, fingerprint) {
            return Err(answer);
        }
        if let Some(refused) = self.dangling_reference(store) {
            return Err(refused);
        }
        let template = store
            .collection(self.call.tenant, &self.resource.name)
            .map(Collection::template)
            .unwrap_or_default();
        let seq = store.tenant(self.call.tenant).reserve();
        Ok(Claim {
            id_value,
            id,
            fingerprint,
            seq,
            template,
        })
    }

    /// The record as it will be stored (completed now when nothing else must run first),
    /// and, unless a behaviour may still change it, its text and index entries; needs
    /// nothing from the store.
    fn draft(&self, claim: &Claim) -> Draft {
        let name = &self.resource.name;
        let key = self.key(&claim.id);
        let mut record =
            self.new_record(key.clone())
                .build(self.call.body, &self.fixed(&claim.id_value), None);
        if self.engine.completes_before_stored(name) {
            self.engine.complete(self.spec(), &key, name, &mut record);
        }
        let ready = self.engine.behaviour_of(name).is_none().then(|| {
            let shown = self.engine.event_shown(name, record.keys());
            Ready::new(&self.engine.plan, name, &claim.template, &record, &shown)
        });
        // A settled record's answer needs nothing the commit does: made here, not while
        // the store is locked.
        let answer =
            (self.engine.settles_when_stored(name) && !self.responds_parent()).then(|| {
                self.as_written(&mut record, ready.as_ref())
                    .unwrap_or_else(|| self.respond(&record, &key))
            });
        Draft {
            record,
            ready,
            answer,
        }
    }

    /// The answer showing a drafted record exactly as it was written: when the response's
    /// schema is the record's own, the record has that schema's members in its order, and
    /// it passes the schema, showing it would copy it member by member into the same text.
    fn as_written(
        &self,
        record: &mut Map<String, Value>,
        ready: Option<&Ready>,
    ) -> Option<Outcome> {
        let ready = ready?;
        // The response's schema is the resource's, whose members (in order) the record has
        // all and only: every member shown, so the events' text is the whole record.
        if !self.binding.shows_record || !same_names(&self.resource.members, record) {
            return None;
        }
        let validator = self.validator?;
        valid(validator, record).then(|| Outcome::Text(ready.shown_text.clone()))
    }

    /// Whether the answer shows the path's parent rather than the new record.
    fn responds_parent(&self) -> bool {
        self.binding.respond_parent && self.parent.is_some()
    }

    /// What refuses a claimed create now, after the lock was let go: the parent gone, the
    /// id taken, a reference left dangling.
    fn changed_meanwhile(&self, store: &Store, claim: &Claim) -> Option<Outcome> {
        if let Some(p) = &self.parent
            && store.get(self.call.tenant, &p.resource, &p.id).is_none()
        {
            return Some(self.not_found(&p.resource, &p.id));
        }
        self.existing(store, &claim.id, claim.fingerprint)
            .or_else(|| self.dangling_reference(store))
    }

    /// Stores a drafted record at its claimed place, runs what its creation runs, and
    /// answers (a settled record with the answer it was drafted with).
    fn commit(&self, store: &mut Store, claim: Claim, draft: Draft) -> Outcome {
        let Draft {
            mut record,
            ready,
            answer,
        } = draft;
        let name = &self.resource.name;
        let tenant = self.call.tenant;
        let over = self.engine.profile.resources.get(name);
        let Claim {
            id,
            fingerprint,
            seq,
            ..
        } = claim;
        if let Err(refused) = self.admit(store, &mut record) {
            store.tenant(tenant).release(seq);
            return refused;
        }
        let meta = Meta {
            fingerprint: fingerprint.filter(|_| over.is_some_and(|o| o.idempotent_id)),
            ..Meta::default()
        };
        let parent = self.parent.clone();
        let text = ready.as_ref().map(|r| r.shown_text.clone());
        match ready {
            Some(ready) => {
                store
                    .tenant(tenant)
                    .put_ready(name, &id, (ready, &record), meta, parent, seq)
            }
            None => store
                .tenant(tenant)
                .put(name, &id, &record, meta, parent, seq),
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
        let outcome = match answer {
            // Settled (drafted with its answer): creation only records its event.
            Some(answer) => {
                let snapshot = self.snapshot_of(store, name, &id);
                self.engine.created_settled(store, site, (&record, text));
                kept_as(answer, snapshot)
            }
            None => {
                let completed = self.engine.completes_before_stored(name);
                let known = completed.then_some(&record);
                let instant = self.call.instant;
                self.engine
                    .created(store, site, Some(self.call), instant, known, None);
                let (resource, id) = match &self.parent {
                    Some(p) if self.binding.respond_parent => (&p.resource, &p.id),
                    _ => (name, &id),
                };
                self.respond_stored(store, resource, id)
            }
        };
        // Secrets are shown once (an answer showing the parent shows none).
        if let Some(o) = over.filter(|o| !o.once.is_empty() && !self.responds_parent()) {
            store.tenant(tenant).edit(name, &id, |body, _| {
                for m in &o.once {
                    body.remove(m);
                }
            });
        }
        outcome
    }
}

/// A create's id and its place in the tenant's sequence, claimed before its record is drafted.
struct Claim {
    id_value: Value,
    id: String,
    fingerprint: Option<u64>,
    seq: u64,
    /// What the draft is packed and filed against.
    template: Template,
}

/// A record drafted without the lock: its members and, when nothing may change them
/// before it is stored, its text and index entries; when it settles as stored, its answer.
struct Draft {
    record: Map<String, Value>,
    ready: Option<Ready>,
    answer: Option<Outcome>,
}
