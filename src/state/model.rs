//! Resources inferred from the spec's paths, so any API becomes stateful without code:
//!
//! - a literal segment is a **collection** when an item path (`/recipients/{recipient_id}`)
//!   exists under it, or when it is both listed (GET) and created into (POST);
//! - `POST /customers/{customer_id}/recipients` creates a child of a customer, and
//!   `GET /recipients/{recipient_id}` reads the same resource type at the top level;
//! - a literal after an item that is not a collection is an **action** (POST) or a
//!   **singleton** sub-document (GET/PUT/PATCH), e.g. `/applications/{id}/edd`;
//! - a collection under another one's item is a **link** (many-to-many) rather than a child
//!   when its records are created elsewhere and never under that item:
//!   `PUT /wallets/{w}/signer-groups/{g}` attaches an existing group, `DELETE` detaches it,
//!   `GET /wallets/{w}/signer-groups` lists the attached ones (see [`Link`]);
//! - everything else stays stateless and is answered from the spec.
//!
//! The profile can override the kind and resource of any operation, and can bind operations
//! to the webhook delivery log instead of a resource (see [`super::delivery_log`]).

use std::collections::{BTreeMap, BTreeSet};

use http::Method;
use serde_json::Value;

use super::envelope::{self, Envelope};
use crate::generate::flatten;
use crate::profile::Profile;
use crate::spec::Spec;
use crate::spec::catalog::is_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Create,
    List,
    Read,
    Update,
    Replace,
    Delete,
    DeleteAll,
    Action,
    SingletonRead,
    SingletonWrite,
    /// Attach an existing record to the path's parent item (see [`Link`]).
    Link,
    /// Detach it.
    Unlink,
    Stateless,
    /// Served from the engine's webhook delivery log rather than a resource.
    Webhooks(WebhookOp),
    /// Answered by the behaviour the binding names.
    Behaviour,
}

/// What an operation of kind [`Kind::Webhooks`] does with the delivery log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOp {
    /// `webhook_deliveries`: the tenant's deliveries, newest event first.
    List,
    /// `webhook_delivery`: one event's delivery record, by event id.
    Read,
    /// `webhook_replay`: send an event again to every current target.
    Replay,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "create" => Self::Create,
            "list" => Self::List,
            "read" => Self::Read,
            "update" => Self::Update,
            "replace" => Self::Replace,
            "delete" => Self::Delete,
            "delete_all" => Self::DeleteAll,
            "action" => Self::Action,
            "singleton_read" => Self::SingletonRead,
            "singleton_write" => Self::SingletonWrite,
            "link" => Self::Link,
            "unlink" => Self::Unlink,
            "stateless" => Self::Stateless,
            "webhook_deliveries" => Self::Webhooks(WebhookOp::List),
            "webhook_delivery" => Self::Webhooks(WebhookOp::Read),
            "webhook_replay" => Self::Webhooks(WebhookOp::Replay),
            _ => return None,
        })
    }
}

/// How one operation acts on state.
#[derive(Debug, Clone)]
pub struct Binding {
    pub kind: Kind,
    /// What the path makes of the operation, also when a behaviour answers it (and may
    /// ask the engine to do that first: see `Services::perform`).
    pub underlying: Kind,
    /// Resource type (the collection's path segment, e.g. `recipients`).
    pub resource: String,
    /// Path parameter naming the item (for item operations and actions).
    pub item_param: Option<String>,
    /// `(path parameter, parent resource type)` when the path sits under a parent item.
    pub parent: Option<(String, String)>,
    /// For singletons: the sub-document's name (`edd`).
    pub singleton: Option<String>,
    /// Answer with the parent record rather than the one acted on (profile `respond: parent`).
    pub respond_parent: bool,
    /// The path's parent and the resource are linked, not parent and child.
    pub link: Option<Link>,
    /// Item operations: the member the path parameter matches, when not the id
    /// (`DELETE /signers/{public_key}`).
    pub lookup: Option<String>,
    /// The behaviour (by the profile's name for it) that answers the operation.
    pub behaviour: Option<String>,
    /// The member of the response body that holds the record, when not the body itself.
    pub envelope: Option<Envelope>,
    /// The member of the request body that holds the record, when not the body itself.
    pub request_envelope: Option<String>,
    /// The success response's schema is the resource's own (the same schema, perhaps
    /// through `$ref`s), unwrapped: the answer may be a record's text as stored.
    pub shows_record: bool,
}

/// A many-to-many link between the path's parent item (`A`) and records of the operation's
/// resource (`B`), kept as a member of one side: an array of the other side's ids (or of
/// another of its members), or a single one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `A` holds the member (`wallets.signer_groups`); otherwise each `B` does
    /// (`wallets.policies` for `/policies/{p}/wallets`).
    pub parent_holds: bool,
    pub member: String,
    /// The member of the other side's records that is stored, when not their id.
    pub by: Option<String>,
    /// A link operation naming the record in a body member instead of the path
    /// (`POST /signer-groups/{g}/signers {member_key}`).
    pub value_from: Option<String>,
}

impl Resource {
    /// Whether `member` is one of the schema's properties.
    pub fn shows(&self, member: &str) -> bool {
        self.position(member).is_some()
    }

    /// `members` sorted by name, each with its place in `members` (what `sorted_members`
    /// holds).
    fn sorted_positions(members: &[String]) -> Vec<(String, usize)> {
        let mut sorted: Vec<(String, usize)> = members.iter().cloned().zip(0..).collect();
        sorted.sort_unstable();
        sorted
    }

    /// Where `member` is among the schema's properties.
    fn position(&self, member: &str) -> Option<usize> {
        self.sorted_members
            .binary_search_by(|(m, _)| m.as_str().cmp(member))
            .ok()
            .map(|k| self.sorted_members[k].1)
    }

    /// [`shows`](Self::shows) for each of a record's `names`, in order. A record made from
    /// the schema has its properties in the schema's order (others after them), so each
    /// name is mostly the property expected next, found by one comparison; a name out of
    /// that order (a behaviour's record listing `id` last) is searched for, and the names
    /// after it are expected after it.
    pub fn shows_each<'n>(&self, names: impl Iterator<Item = &'n String>) -> Vec<bool> {
        let mut next = 0;
        names
            .map(|name| match self.members.get(next) {
                Some(m) if m == name => {
                    next += 1;
                    true
                }
                _ => match self.position(name) {
                    Some(at) => {
                        next = at + 1;
                        true
                    }
                    None => false,
                },
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub name: String,
    pub id_field: String,
    pub id_prefix: Option<String>,
    /// Pointer of the schema a stored item follows (item GET response, else list item, else
    /// create response).
    pub schema: Option<String>,
    /// That schema's property names.
    pub members: Vec<String>,
    /// The same, sorted, each with its place in `members`: whether a record's member is one
    /// of them (and where) is asked for each member of each event's object.
    sorted_members: Vec<(String, usize)>,
    /// One record per tenant (profile `singleton`), with id [`SINGLETON_ID`].
    pub singleton: bool,
    /// The member naming the parent record, and the parent's resource, when the resource
    /// is also listed or made under a parent (`/buckets/{bucketId}/alerts`) and its records
    /// carry that member: a record created elsewhere (`POST /alerts {bucketId}`) is then
    /// the named parent's child.
    pub parent_member: Option<(String, String)>,
}

/// The id of a singleton resource's record.
pub const SINGLETON_ID: &str = "singleton";

#[derive(Debug, Default)]
pub struct Model {
    pub resources: BTreeMap<String, Resource>,
    /// One per catalogue operation.
    pub bindings: Vec<Binding>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Param(String),
}

/// Format suffixes that are part of a route, not of a resource's name
/// (`/Accounts/{Sid}.json`).
const FORMAT_SUFFIXES: [&str; 2] = [".json", ".xml"];

fn segments(path: &str) -> Vec<Seg> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            FORMAT_SUFFIXES
                .iter()
                .find_map(|x| s.strip_suffix(x))
                .unwrap_or(s)
        })
        .map(|s| match (s.strip_prefix('{'), s.ends_with('}')) {
            (Some(inner), true) => Seg::Param(inner.trim_end_matches('}').to_owned()),
            _ => Seg::Lit(s.to_owned()),
        })
        .collect()
}

pub use super::names::singular;

impl Binding {
    /// An operation that keeps no state.
    fn stateless() -> Self {
        Self {
            kind: Kind::Stateless,
            underlying: Kind::Stateless,
            resource: String::new(),
            item_param: None,
            parent: None,
            singleton: None,
            respond_parent: false,
            link: None,
            lookup: None,
            behaviour: None,
            envelope: None,
            request_envelope: None,
            shows_record: false,
        }
    }

    /// The profile's override of an operation, laid over what inference found.
    fn overridden(self, over: Option<&crate::profile::OperationOverride>) -> Self {
        let Some(o) = over else { return self };
        let underlying = o.kind.as_deref().and_then(Kind::parse).unwrap_or(self.kind);
        let kind = match &o.behaviour {
            Some(_) => Kind::Behaviour,
            None => underlying,
        };
        // The delivery log is not a resource: such an operation names none.
        let resource = match kind {
            Kind::Webhooks(_) => String::new(),
            _ => o.resource.clone().unwrap_or(self.resource),
        };
        Self {
            kind,
            underlying,
            resource,
            respond_parent: o.respond.as_deref() == Some("parent"),
            lookup: o.lookup.clone(),
            behaviour: o.behaviour.clone(),
            ..self
        }
    }
}

/// Path segments that name collections: followed by a parameter somewhere, or both listed
/// (GET) and created into (POST).
fn collections(paths: &[(Method, Vec<Seg>)]) -> BTreeSet<String> {
    let mut collections: BTreeSet<String> = BTreeSet::new();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    let mut created: BTreeSet<String> = BTreeSet::new();
    for (method, segs) in paths {
        for w in segs.windows(2) {
            if let [Seg::Lit(l), Seg::Param(_)] = w {
                collections.insert(l.clone());
            }
        }
        if let Some(Seg::Lit(last)) = segs.last() {
            if *method == Method::GET {
                listed.insert(last.clone());
            } else if *method == Method::POST {
                created.insert(last.clone());
            }
        }
    }
    collections.extend(listed.intersection(&created).cloned());
    collections
}

/// How the operation at `method` + `segs` acts, from the shape of its path alone.
fn infer_binding(method: &Method, segs: &[Seg], collections: &BTreeSet<String>) -> Binding {
    // The nearest `collection/{param}` pair before the end.
    let parent_of = |segs: &[Seg]| -> Option<(String, String)> {
        segs.windows(2).rev().find_map(|w| match w {
            [Seg::Lit(l), Seg::Param(p)] if collections.contains(l) => Some((p.clone(), l.clone())),
            _ => None,
        })
    };
    let n = segs.len();
    match (segs.get(n.wrapping_sub(2)), segs.last()) {
        // `/things/{id}`: an item.
        (Some(Seg::Lit(l)), Some(Seg::Param(p))) if collections.contains(l) => Binding {
            kind: match *method {
                Method::GET => Kind::Read,
                Method::PUT => Kind::Replace,
                Method::PATCH | Method::POST => Kind::Update,
                Method::DELETE => Kind::Delete,
                _ => Kind::Stateless,
            },
            resource: l.clone(),
            item_param: Some(p.clone()),
            parent: parent_of(&segs[..n - 2]),
            ..Binding::stateless()
        },
        // `/things`: the collection.
        (_, Some(Seg::Lit(l))) if collections.contains(l) => Binding {
            kind: match *method {
                Method::GET => Kind::List,
                Method::POST => Kind::Create,
                Method::DELETE => Kind::DeleteAll,
                _ => Kind::Stateless,
            },
            resource: l.clone(),
            parent: parent_of(&segs[..n - 1]),
            ..Binding::stateless()
        },
        // `/things/{id}/word`: an action, or a singleton sub-document.
        (Some(Seg::Param(p)), Some(Seg::Lit(sub))) if n >= 3 => match &segs[n - 3] {
            Seg::Lit(owner) if collections.contains(owner) => Binding {
                kind: match *method {
                    Method::GET => Kind::SingletonRead,
                    Method::PUT | Method::PATCH => Kind::SingletonWrite,
                    _ => Kind::Action,
                },
                resource: owner.clone(),
                item_param: Some(p.clone()),
                parent: parent_of(&segs[..n - 3]),
                singleton: Some(sub.clone()),
                ..Binding::stateless()
            },
            _ => Binding::stateless(),
        },
        _ => Binding::stateless(),
    }
}

impl Model {
    pub fn infer(spec: &Spec, profile: &Profile) -> Self {
        let paths: Vec<(Method, Vec<Seg>)> = spec
            .operations
            .iter()
            .map(|o| (o.method.clone(), segments(&o.path)))
            .collect();
        let collections = collections(&paths);
        let mut bindings: Vec<Binding> = spec
            .operations
            .iter()
            .zip(&paths)
            .map(|(op, (method, segs))| {
                let mut b = infer_binding(method, segs, &collections);
                b.underlying = b.kind;
                b.overridden(profile.operations.get(&op.id))
            })
            .collect();
        infer_links(&mut bindings, spec, profile);
        let mut model = Self {
            resources: BTreeMap::new(),
            bindings,
        };
        model.describe_resources(spec, profile);
        model.find_envelopes(spec, profile);
        model.find_partial_puts(spec, profile);
        model.resolve_links(profile);
        model.find_parent_members();
        model.find_own_answers(spec);
        model
    }

    /// Which operations answer with their resource's own schema ([`Binding::shows_record`]).
    fn find_own_answers(&mut self, spec: &Spec) {
        let resolved = |ptr: &str| {
            spec.at(ptr)
                .and_then(|node| crate::spec::pointer::target(&spec.doc, node).ok())
        };
        for (op, b) in spec.operations.iter().zip(self.bindings.iter_mut()) {
            let own = self
                .resources
                .get(&b.resource)
                .and_then(|r| r.schema.as_deref())
                .and_then(resolved);
            let answer = success_schema(op).and_then(resolved);
            b.shows_record = b.envelope.is_none()
                && matches!((own, answer), (Some(x), Some(y)) if std::ptr::eq(x, y));
        }
    }

    /// Which side of each link holds it, and in which member: a reference the profile
    /// declares (on either side) wins; else `B`'s `<a>_id` member; else the side whose path
    /// attaches the other holds an array named after it (`/teams/{t}/users/{u}`: teams hold
    /// `users`, which `/users/{u}/teams` then reads from the other side).
    fn resolve_links(&mut self, profile: &Profile) {
        let writes: BTreeSet<(String, String)> = self
            .bindings
            .iter()
            .filter(|b| matches!(b.kind, Kind::Link | Kind::Unlink))
            .filter_map(|b| Some((b.parent.as_ref()?.1.clone(), b.resource.clone())))
            .collect();
        for i in 0..self.bindings.len() {
            let b = &self.bindings[i];
            let (Some(link), Some((param, parent))) = (&b.link, &b.parent) else {
                continue;
            };
            let child = &b.resource;
            let declared = |holder: &str, target: &str| {
                profile.resources.get(holder).and_then(|o| {
                    o.references
                        .iter()
                        .find(|(_, r)| r.resource() == target)
                        .map(|(m, r)| (m.clone(), r.member().map(str::to_owned)))
                })
            };
            let named_by = self
                .resources
                .get(child)
                .and_then(|r| naming_member(param, parent, &r.members));
            let (parent_holds, member, by) = if let Some((m, by)) = declared(parent, child) {
                (true, m, by)
            } else if let Some((m, by)) = declared(child, parent) {
                (false, m, by)
            } else if let Some(scalar) = named_by {
                (false, scalar, None)
            } else if !writes.contains(&(parent.clone(), child.clone()))
                && writes.contains(&(child.clone(), parent.clone()))
            {
                (false, parent.replace('-', "_"), None)
            } else {
                (true, child.replace('-', "_"), None)
            };
            let resolved = Link {
                parent_holds,
                member,
                by,
                value_from: link.value_from.clone(),
            };
            self.bindings[i].link = Some(resolved);
        }
    }

    /// Where each operation's record sits in its response and request bodies, when inside
    /// a member (`{"data": {...}}`); the profile's `envelope` names it outright.
    fn find_envelopes(&mut self, spec: &Spec, profile: &Profile) {
        for (op, b) in spec.operations.iter().zip(self.bindings.iter_mut()) {
            let single = matches!(
                b.underlying,
                Kind::Create
                    | Kind::Read
                    | Kind::Update
                    | Kind::Replace
                    | Kind::Delete
                    | Kind::Action
            );
            if b.resource.is_empty() || !single {
                continue;
            }
            let named = profile
                .operations
                .get(&op.id)
                .and_then(|o| o.envelope.clone());
            let media = op
                .success()
                .and_then(|(_, r)| r.content.iter().find(|m| is_json(&m.media_type)));
            if let Some(media) = media
                && let Some(outer) = media.schema.as_deref()
            {
                let found = match &named {
                    Some(m) => envelope::member_ptr(spec, outer, m).map(|p| (m.clone(), p)),
                    None => envelope::record_member(spec, outer, &b.resource),
                };
                b.envelope = found.map(|(member, inner)| {
                    envelope::build(spec, &media.pointer, outer, member, inner)
                });
            }
            let request = op.body.as_ref().and_then(|body| {
                body.content
                    .iter()
                    .find(|m| is_json(&m.media_type))
                    .and_then(|m| m.schema.clone())
            });
            b.request_envelope = match (&named, request) {
                (Some(m), Some(_)) => Some(m.clone()),
                (None, Some(r)) => envelope::request_member(spec, &r, &b.resource),
                _ => None,
            };
        }
    }

    /// A `PUT` whose body does not require what a record requires is a partial update (as
    /// many APIs use it), not a replacement that would lose every member left out.
    fn find_partial_puts(&mut self, spec: &Spec, profile: &Profile) {
        for (op, b) in spec.operations.iter().zip(self.bindings.iter_mut()) {
            let declared = profile
                .operations
                .get(&op.id)
                .is_some_and(|o| o.kind.is_some());
            if b.kind != Kind::Replace || declared {
                continue;
            }
            let Some(resource) = self.resources.get(&b.resource) else {
                continue;
            };
            let record = resource
                .schema
                .as_deref()
                .and_then(|p| spec.at(p))
                .map(|s| flatten(&spec.doc, s));
            let sent = op
                .body
                .as_ref()
                .and_then(|body| body.content.iter().find(|m| is_json(&m.media_type)))
                .and_then(|m| m.schema.as_deref())
                .and_then(|p| spec.at(p))
                .map(|s| flatten(&spec.doc, s))
                .map(|s| match &b.request_envelope {
                    Some(member) => s
                        .get("properties")
                        .and_then(|p| p.get(member))
                        .map_or(Value::Null, |inner| flatten(&spec.doc, inner)),
                    None => s,
                });
            let (Some(record), Some(sent)) = (record, sent) else {
                continue;
            };
            let sent_required = required_of(&sent);
            let read_only = |m: &str| {
                record
                    .get("properties")
                    .and_then(|p| p.get(m))
                    .map(|s| flatten(&spec.doc, s))
                    .is_some_and(|s| s.get("readOnly") == Some(&Value::Bool(true)))
            };
            let wanted: Vec<String> = required_of(&record)
                .into_iter()
                .filter(|m| *m != resource.id_field && !read_only(m))
                .collect();
            if wanted.is_empty() || !wanted.iter().all(|m| sent_required.contains(m)) {
                b.kind = Kind::Update;
                b.underlying = Kind::Update;
            }
        }
    }

    /// Which resources name their parent in a member of their own (see
    /// [`Resource::parent_member`]).
    fn find_parent_members(&mut self) {
        for b in &self.bindings {
            let Some((param, parent)) = &b.parent else {
                continue;
            };
            // A link held by the parent (an array of ids) is no parenthood; one where each
            // record names the parent in a member of its own is (`GET /buckets/{b}/alerts`
            // beside `POST /alerts {bucketId}`).
            let held_by_parent = b.link.as_ref().is_some_and(|l| l.parent_holds);
            if held_by_parent || !matches!(b.kind, Kind::Create | Kind::List) {
                continue;
            }
            let Some(r) = self.resources.get_mut(&b.resource) else {
                continue;
            };
            let member = naming_member(param, parent, &r.members);
            if r.parent_member.is_none() {
                r.parent_member = member.map(|m| (m, parent.clone()));
            }
        }
    }

    /// The schema operation `oi`'s answers show a record through: its success schema, the
    /// record member of its envelope, or a list's items.
    pub fn shown_schema(&self, spec: &Spec, oi: usize) -> Option<String> {
        let b = &self.bindings[oi];
        let outer = success_schema(&spec.operations[oi])?;
        match (&b.envelope, b.kind) {
            (_, Kind::List) => list_item_schema(spec, outer, &b.resource),
            (Some(e), _) => Some(e.inner.clone()),
            (None, _) => Some(outer.to_owned()),
        }
    }

    /// Picks each resource's representation schema and id field.
    fn describe_resources(&mut self, spec: &Spec, profile: &Profile) {
        let mut schemas: BTreeMap<String, (u8, String)> = BTreeMap::new();
        let mut item_params: BTreeMap<String, String> = BTreeMap::new();
        for (op, b) in spec.operations.iter().zip(&self.bindings) {
            let Some(ptr) = success_schema(op) else {
                continue;
            };
            // What the operation would be without a behaviour taking it: a read a behaviour
            // answers still shows the resource's records.
            let rank = match b.underlying {
                Kind::Read => 0,
                Kind::List => 1,
                Kind::Create => 2,
                _ => continue,
            };
            if b.underlying == Kind::Read
                && let Some(p) = &b.item_param
            {
                item_params
                    .entry(b.resource.clone())
                    .or_insert_with(|| p.clone());
            }
            let ptr = if b.underlying == Kind::List {
                list_item_schema(spec, ptr, &b.resource)
            } else {
                Some(
                    envelope::record_member(spec, ptr, &b.resource)
                        .map_or_else(|| ptr.to_owned(), |(_, inner)| inner),
                )
            };
            let Some(ptr) = ptr else { continue };
            let entry = schemas
                .entry(b.resource.clone())
                .or_insert((rank, ptr.clone()));
            if rank < entry.0 {
                *entry = (rank, ptr);
            }
        }
        let names: BTreeSet<String> = self
            .bindings
            .iter()
            .filter(|b| {
                !matches!(b.kind, Kind::Stateless | Kind::Webhooks(_)) && !b.resource.is_empty()
            })
            .map(|b| b.resource.clone())
            .collect();
        for name in names {
            let over = profile.resources.get(&name);
            // The profile may name the stored representation: a component or a pointer.
            let schema = match over.and_then(|o| o.schema.as_deref()) {
                Some(s) if s.starts_with('/') => Some(s.to_owned()),
                Some(s) if s.starts_with("#/") => Some(s[1..].to_owned()),
                Some(s) => Some(format!(
                    "/components/schemas/{}",
                    crate::spec::pointer::escape(s)
                )),
                None => schemas.get(&name).map(|(_, p)| p.clone()),
            };
            let props: Vec<String> = schema
                .as_deref()
                .and_then(|p| spec.at(p))
                .map(|s| flatten(&spec.doc, s))
                .and_then(|s| {
                    s.get("properties")
                        .and_then(Value::as_object)
                        .map(|m| m.keys().cloned().collect())
                })
                .unwrap_or_default();
            let id_field = over
                .and_then(|o| o.id_field.clone())
                .or_else(|| {
                    envelope::id_member(&props, &name, item_params.get(&name).map(String::as_str))
                })
                .unwrap_or_else(|| "id".to_owned());
            let sorted_members = Resource::sorted_positions(&props);
            let resource = Resource {
                name: name.clone(),
                id_field,
                id_prefix: over.and_then(|o| o.id_prefix.clone()),
                schema,
                members: props,
                sorted_members,
                singleton: over.is_some_and(|o| o.singleton),
                parent_member: None,
            };
            self.resources.insert(name, resource);
        }
    }
}

fn required_of(schema: &Value) -> Vec<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The member of a record that names its `parent` (path parameter `param`): the parameter's
/// own name, `<parent>_id` or `<parent>Id`, whichever the record has.
fn naming_member(param: &str, parent: &str, members: &[String]) -> Option<String> {
    let snake = format!("{}_id", singular(parent));
    let camel = super::names::camel(&snake);
    // `AccountSid` names the member `account_sid`.
    let param_snake = super::names::snake(param);
    [param.to_owned(), snake, camel, param_snake]
        .into_iter()
        .find(|m| members.contains(m))
}

/// Marks the operations on `/A/{a}/B...` that link `A` and `B` rather than nest `B` under
/// `A`: `B` is created somewhere else and never at `/A/{a}/B`. The profile can also make any
/// operation a link (`kind: link`, with `value_from` for a link named in the body).
fn infer_links(bindings: &mut [Binding], spec: &Spec, profile: &Profile) {
    let creates: Vec<(String, Option<String>)> = bindings
        .iter()
        .filter(|b| b.kind == Kind::Create)
        .map(|b| {
            (
                b.resource.clone(),
                b.parent.as_ref().map(|(_, p)| p.clone()),
            )
        })
        .collect();
    for (op, b) in spec.operations.iter().zip(bindings.iter_mut()) {
        let Some((_, parent)) = &b.parent else {
            continue;
        };
        let over = profile.operations.get(&op.id);
        let declared = over.and_then(|o| o.kind.as_deref());
        let linked = matches!(b.kind, Kind::Link | Kind::Unlink)
            || (declared.is_none()
                && creates
                    .iter()
                    .any(|(r, p)| *r == b.resource && p.as_ref() != Some(parent))
                && !creates
                    .iter()
                    .any(|(r, p)| *r == b.resource && p.as_ref() == Some(parent)));
        if !linked {
            continue;
        }
        if declared.is_none() {
            b.kind = match b.kind {
                Kind::Replace => Kind::Link,
                Kind::Delete => Kind::Unlink,
                k => k,
            };
        }
        if matches!(
            b.kind,
            Kind::List | Kind::Read | Kind::Link | Kind::Unlink | Kind::Update
        ) {
            b.link = Some(Link {
                parent_holds: true,
                member: String::new(),
                by: None,
                value_from: over.and_then(|o| o.value_from.clone()),
            });
        }
    }
}

/// Pointer of the JSON schema of an operation's success response.
pub fn success_schema(op: &crate::spec::Operation) -> Option<&str> {
    let (_, r) = op.success()?;
    r.content
        .iter()
        .find(|m| is_json(&m.media_type))
        .and_then(|m| m.schema.as_deref())
}

/// The item schema of a list response (see [`super::envelope::list_items`]).
pub fn list_item_schema(spec: &Spec, list_ptr: &str, resource: &str) -> Option<String> {
    super::envelope::list_items(spec, list_ptr, resource)
}

#[cfg(test)]
mod tests {
    use super::Resource;

    fn resource(members: &[&str]) -> Resource {
        let members: Vec<String> = members.iter().map(|m| (*m).to_owned()).collect();
        Resource {
            sorted_members: Resource::sorted_positions(&members),
            name: "things".into(),
            id_field: "id".into(),
            id_prefix: None,
            schema: None,
            members,
            singleton: false,
            parent_member: None,
        }
    }

    /// Names in the schema's order, out of it, and not in it at all are each told apart.
    #[test]
    fn shows_each_answers_for_every_name_whatever_its_order() {
        let r = resource(&["id", "object", "status", "amount", "created_at"]);
        let names: Vec<String> = [
            "object",
            "status",
            "secret",
            "amount",
            "id",
            "created_at",
            "zz",
        ]
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
        assert_eq!(
            r.shows_each(names.iter()),
            [true, true, false, true, true, true, false]
        );
        for n in &names {
            assert_eq!(r.shows(n), !matches!(n.as_str(), "secret" | "zz"), "{n}");
        }
    }
}
