//! Who a credential is: the tenant it acts for, its role, and which records it is limited
//! to, from the profile's `tenancy.credentials` classes (or, without them, each credential
//! its own tenant, and credentials the API issued acting for the tenant owning the record
//! that holds them). Operations name the roles they allow; a credential limited to a
//! record's members (`scope: [bucketId]`) may not name another value of them; a tenant's
//! first request makes the records the profile provisions.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub use super::call::Identity;
use super::credentials::fill;
use super::effects::{Made, MembersBy, Site};
use super::engine::Engine;
use super::lists::text;
use super::store::Store;
use crate::profile::{CredentialClass, Others, Role};
use crate::spec::Spec;

impl Engine {
    /// Who `credential` is; `Err` with the reason when no class accepts it (401).
    pub fn identify(&self, credential: String) -> Result<Identity, String> {
        let classes = &self.profile.tenancy.credentials;
        if classes.is_empty() {
            return Ok(Identity {
                tenant: self.tenant_for(credential),
                ..Identity::default()
            });
        }
        for (i, class) in classes.iter().enumerate() {
            if let Some(found) = self.match_class(i, class, &credential) {
                return Ok(found);
            }
        }
        match self.profile.tenancy.others {
            Others::Accept => Ok(Identity {
                tenant: credential,
                ..Identity::default()
            }),
            Others::Refuse => Err("the credential is not one this API knows".to_owned()),
        }
    }

    fn match_class(&self, i: usize, class: &CredentialClass, credential: &str) -> Option<Identity> {
        let mut vars = BTreeMap::new();
        if let Some(re) = self.patterns.0.get(i).and_then(Option::as_ref) {
            let caps = re.captures(credential)?;
            for name in re.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    vars.insert(name.to_owned(), m.as_str().to_owned());
                }
            }
        }
        let mut identity = Identity {
            tenant: class
                .tenant
                .as_deref()
                .map_or_else(|| credential.to_owned(), |t| fill(t, &vars)),
            role: match &class.role {
                Some(Role::Named(r)) => Some(r.clone()),
                _ => None,
            },
            class: Some(i),
            vars,
            ..Identity::default()
        };
        if let Some(issued) = &class.issued {
            // A credential a record holds: its owner's tenant, role and scope.
            let wanted = Value::String(credential.to_owned());
            let store = self.store.read();
            let (owner, record) = store.tenants.iter().find_map(|(t, state)| {
                let coll = state.collection(&issued.resource)?;
                let id = coll.find_by(&issued.member, &wanted)?;
                Some((t.clone(), coll.get(id)?.body.map()))
            })?;
            identity.tenant = owner;
            if let Some(Role::Member { member }) = &class.role {
                identity.role = record.get(member).map(text);
            }
            identity.scope = class
                .scope
                .iter()
                .filter_map(|m| Some((m.clone(), text(record.get(m)?))))
                .collect();
        }
        Some(identity)
    }

    /// Whether `identity` may call operation `op_id` (the profile's `roles`); `Err` with the
    /// 403's message.
    pub fn permitted(&self, op_id: &str, identity: &Identity) -> Result<(), String> {
        let Some(over) = self.profile.operations.get(op_id) else {
            return Ok(());
        };
        if over.roles.is_empty()
            || identity
                .role
                .as_ref()
                .is_some_and(|r| over.roles.contains(r))
        {
            return Ok(());
        }
        Err(over.forbidden.clone().unwrap_or_else(|| {
            format!(
                "this operation needs a credential with role {}",
                over.roles.join(" or ")
            )
        }))
    }

    /// Whether a request naming these values stays within `identity`'s scope: a member the
    /// credential is limited to may be named (in the path, the query or the body) only with
    /// the credential's own value. `Err` with the 403's message.
    pub fn within_scope(
        &self,
        identity: &Identity,
        named: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<(), String> {
        for (member, own) in &identity.scope {
            let in_request = named
                .iter()
                .filter(|(k, _)| k == member)
                .map(|(_, v)| v.clone())
                .chain(body.and_then(|b| b.get(member)).map(text));
            for value in in_request {
                if value != *own {
                    let class = identity
                        .class
                        .and_then(|c| self.profile.tenancy.credentials.get(c));
                    return Err(class
                        .and_then(|c| c.scope_forbidden.clone())
                        .unwrap_or_else(|| {
                            format!("the credential has no access to {member} '{value}'")
                        }));
                }
            }
        }
        Ok(())
    }

    /// Makes the records the profile provisions in `identity`'s tenant, if this is its
    /// first request.
    ///
    /// Returns the state log append to wait for (0 for none). A tenant seen before is
    /// known without the store's lock (a request finding it held for writing parked its
    /// thread: 5.5% of a Dino decision's time).
    pub fn provision(&self, spec: &Spec, identity: &Identity) -> u64 {
        let wanted = &self.profile.tenancy.provision;
        let tenant = &identity.tenant;
        if wanted.is_empty() || self.provisioned.read().contains(tenant) {
            return 0;
        }
        {
            let store = self.store.read();
            if store.tenants.contains_key(tenant) {
                self.provisioned.write().insert(tenant.clone());
                return 0;
            }
        }
        let mut store = self.write();
        if !store.tenants.contains_key(tenant) {
            store.tenant(tenant);
            for p in wanted {
                let body = filled(&p.body, &identity.vars);
                self.provide(spec, &mut store, tenant, &p.resource, body);
            }
        }
        self.provisioned.write().insert(tenant.clone());
        drop(store);
        self.take_append()
    }

    fn provide(
        &self,
        spec: &Spec,
        store: &mut Store,
        tenant: &str,
        resource: &str,
        body: Map<String, Value>,
    ) {
        let site = Site {
            spec,
            tenant,
            resource: "",
            id: "",
            transition: None,
            at: self.clock.now(),
            depth: 0,
        };
        let made = Made {
            resource,
            parent: None,
            caused_by: None,
            members_by: MembersBy::Profile,
        };
        self.make(store, site, made, body);
    }
}

/// A body whose strings name the credential's parts, filled in.
fn filled(body: &Map<String, Value>, vars: &BTreeMap<String, String>) -> Map<String, Value> {
    fn walk(v: &Value, vars: &BTreeMap<String, String>) -> Value {
        match v {
            Value::String(s) => Value::String(fill(s, vars)),
            Value::Array(items) => Value::Array(items.iter().map(|i| walk(i, vars)).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), walk(v, vars))).collect())
            }
            other => other.clone(),
        }
    }
    body.iter()
        .map(|(k, v)| (k.clone(), walk(v, vars)))
        .collect()
}
