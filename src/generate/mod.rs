//! Synthesises values from OpenAPI 3.0 schemas: `fake` data chosen by property name and
//! format, honouring type, enum, pattern, bounds, required, `allOf`/`oneOf`/`anyOf` and
//! discriminators. Every value comes from a ChaCha8 stream seeded by (seed, key), so the same
//! seed gives byte-identical output and one operation's data never shifts another's.
//! Recursive schemas are cut off: past one level of self-reference only required fields are
//! generated, and past a hard depth the smallest valid value is used.

pub mod faker;
pub mod ids;
mod memo;
pub mod seed;

use crate::hashing::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Number, Value, json};

use self::memo::{Known, Place, Slot};
pub use self::seed::{StableHasher, stable_hash};
use crate::schema::Direction;
use crate::spec::pointer::{self, ref_of};
use crate::spec::{Flattened, Spec};

/// Generated timestamps fall around this instant (2025-06-15T12:00:00Z), not the wall clock,
/// so output is reproducible.
pub const BASE_UNIX_SECONDS: i64 = 1_750_000_000 - 4_800_000;
/// Depth at which optional properties stop being generated.
const OPTIONAL_DEPTH: usize = 5;
/// Depth at which only the smallest valid value is produced.
const HARD_DEPTH: usize = 24;

/// Whether a schema has a non-empty `allOf`.
/// Schema keywords, found by comparing names: a schema object has a handful of members, and
/// a few short comparisons cost less than hashing the name (serde_json's maps hash with
/// SipHash), which generation does for every keyword of every node it visits.
trait Keywords {
    fn kw(&self, key: &str) -> Option<&Value>;

    fn has(&self, key: &str) -> bool {
        self.kw(key).is_some()
    }
}

impl Keywords for Map<String, Value> {
    fn kw(&self, key: &str) -> Option<&Value> {
        pointer::member(self, key)
    }
}

impl Keywords for Value {
    fn kw(&self, key: &str) -> Option<&Value> {
        self.as_object()?.kw(key)
    }
}

fn has_all_of(schema: &Value) -> bool {
    schema
        .kw("allOf")
        .and_then(Value::as_array)
        .is_some_and(|all| !all.is_empty())
}

/// The schema with `$ref`s followed and `allOf` merged into one object schema, so callers
/// can read its `properties`, `required` and `type` directly.
pub fn flatten(doc: &Value, schema: &Value) -> Value {
    let g = Generator::new(doc, 0, "", Direction::Response);
    let resolved = pointer::target(doc, schema).unwrap_or(schema);
    if resolved.kw("allOf").is_some() {
        g.merge_all_of(resolved, &mut Vec::new())
    } else {
        resolved.clone()
    }
}

pub struct Generator<'a> {
    doc: &'a Value,
    /// The spec whose document `doc` is, when it is a spec's: its pointers parsed once,
    /// its cache of flattened schema nodes, and its id for the values generated without
    /// drawing (see [`memo`]).
    spec: Option<&'a Spec>,
    rng: ChaCha8Rng,
    direction: Direction,
    /// Use `example` values found on scalar properties when they fit their schema.
    pub use_examples: bool,
    /// When (unix milliseconds) an id that carries its time (a KSUID or ULID pattern) is
    /// minted: the record's creation, for a new record's id; else a recent time drawn.
    pub minted_at: Option<i64>,
    /// The members of the object [`gen_object`](Self::gen_object) generated last at a
    /// stable place (by the address of its schema), for [`Known::Members`].
    made: Option<(usize, Vec<Slot>)>,
}

#[derive(Clone, Default)]
struct Ctx<'n> {
    name: Option<&'n str>,
    depth: usize,
    /// `$ref`s currently being expanded, to cut recursion.
    refs: Vec<&'n str>,
    /// Only required properties and minimal arrays from here down.
    minimal: bool,
    /// The schema in hand lives in the document or in its cache of flattened nodes (not in
    /// a temporary), so it may be looked up in that cache by address.
    stable: bool,
}

impl<'n> Ctx<'n> {
    /// Where member `name` of an object generated here is generated.
    fn member<'c>(&self, name: &'c str) -> Ctx<'c>
    where
        'n: 'c,
    {
        Ctx {
            name: Some(name),
            depth: self.depth + 1,
            refs: self.refs.clone(),
            minimal: self.minimal,
            stable: self.stable,
        }
    }
}

/// A schema node: the document's, the spec's cached flattening, or one made just now.
enum Node<'v> {
    Borrowed(&'v Value),
    Shared(Arc<Value>),
    Owned(Value),
}

impl std::ops::Deref for Node<'_> {
    type Target = Value;

    fn deref(&self) -> &Value {
        match self {
            Node::Borrowed(v) => v,
            Node::Shared(v) => v,
            Node::Owned(v) => v,
        }
    }
}

impl Node<'_> {
    /// Whether the node may be looked up in the cache by address.
    fn stable(&self) -> bool {
        !matches!(self, Node::Owned(_))
    }
}

impl<'a> Generator<'a> {
    /// A generator whose stream depends only on `seed` and `key` (e.g. an operation id).
    pub fn new(doc: &'a Value, seed: u64, key: &str, direction: Direction) -> Self {
        Self::hashed(doc, seed, stable_hash(key), direction)
    }

    /// [`new`](Self::new) with the key already hashed ([`StableHasher`]).
    fn hashed(doc: &'a Value, seed: u64, key: u64, direction: Direction) -> Self {
        Self {
            doc,
            spec: None,
            rng: ChaCha8Rng::seed_from_u64(seed ^ key),
            direction,
            use_examples: true,
            minted_at: None,
            made: None,
        }
    }

    /// A generator for `spec`'s document that reuses the schemas it flattened before.
    pub fn for_spec(spec: &'a Spec, seed: u64, key: &str, direction: Direction) -> Self {
        Self::for_spec_hashed(spec, seed, stable_hash(key), direction)
    }

    /// [`for_spec`](Self::for_spec) with the key already hashed ([`StableHasher`]).
    pub fn for_spec_hashed(spec: &'a Spec, seed: u64, key: u64, direction: Direction) -> Self {
        Self {
            spec: Some(spec),
            ..Self::hashed(&spec.doc, seed, key, direction)
        }
    }

    /// The spec's cache of flattened schema nodes, when the document is a spec's.
    fn flat(&self) -> Option<&'a Flattened> {
        self.spec.map(|s| &s.flattened)
    }

    /// The document's id for the values generated without drawing, when it is a spec's.
    fn memo(&self) -> Option<u64> {
        self.spec.map(|s| s.id.get())
    }

    /// Direct access to the stream, for callers that mint ids or pick alternatives.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Generates a value for the schema at `ptr`, or for `schema` itself.
    pub fn value(&mut self, schema: &Value) -> Value {
        self.gen_value(schema, &Ctx::default())
    }

    /// Generates the value of an object's member `name` (whose name picks realistic data).
    pub fn member(&mut self, name: &str, schema: &Value) -> Value {
        let ctx = Ctx {
            name: Some(name),
            depth: 1,
            ..Ctx::default()
        };
        self.gen_value(schema, &ctx)
    }

    pub fn value_at(&mut self, ptr: &str) -> Value {
        let doc = self.doc;
        let ctx = Ctx {
            stable: true,
            ..Ctx::default()
        };
        let node = match self.spec {
            Some(spec) => spec.at(ptr),
            None => pointer::lookup(doc, ptr),
        };
        node.map_or(Value::Null, |s| self.gen_value(s, &ctx))
    }

    /// What `$ref` node `schema` stands for: the end of its chain, with that node's `allOf`
    /// merged. A stable `$ref` node is itself the cache key, so a hit skips following it.
    fn ref_target<'s>(&self, schema: &'s Value, stable: bool) -> Option<Node<'s>>
    where
        'a: 's,
    {
        let doc: &'s Value = self.doc;
        if let (Some(cache), true) = (self.flat(), stable) {
            return cache
                .get_or_try(schema, || {
                    let target = pointer::target(doc, schema).ok()?;
                    Some(if has_all_of(target) {
                        self.merge_all_of(target, &mut Vec::new())
                    } else {
                        target.clone()
                    })
                })
                .map(Node::Shared);
        }
        let target = pointer::target(doc, schema).ok()?;
        // The target lives in the document, so it is stable itself.
        Some(if has_all_of(target) {
            self.all_of(target, true)
        } else {
            Node::Borrowed(target)
        })
    }

    /// Inline `allOf` node `schema`, merged.
    fn all_of(&self, schema: &Value, stable: bool) -> Node<'static> {
        match self.flat() {
            Some(cache) if stable => {
                Node::Shared(cache.get_or(schema, || self.merge_all_of(schema, &mut Vec::new())))
            }
            _ => Node::Owned(self.merge_all_of(schema, &mut Vec::new())),
        }
    }

    /// A value for `schema` where `ctx` says: the one kept for this place when generating
    /// it draws nothing from the stream (see [`memo`]), else a fresh one.
    fn gen_value(&mut self, schema: &Value, ctx: &Ctx) -> Value {
        let Some(doc) = self.memo().filter(|_| ctx.stable) else {
            return self.gen_fresh(schema, ctx);
        };
        let place = Place {
            node: std::ptr::from_ref(schema) as usize,
            name: ctx.name,
            depth: ctx.depth,
            refs: &ctx.refs,
            minimal: ctx.minimal,
            direction: self.direction,
            examples: self.use_examples,
        };
        let (hash, known) = memo::look(doc, &place);
        match known {
            Some(Known::Fixed(value)) => return Value::clone(&value),
            Some(Known::Drawn) => return self.gen_fresh(schema, ctx),
            Some(Known::Members(slots)) => return self.gen_members(schema, &slots, ctx),
            None => {}
        }
        let before = self.rng.get_word_pos();
        self.made = None;
        let value = self.gen_fresh(schema, ctx);
        let here = schema.as_object().map(|m| std::ptr::from_ref(m) as usize);
        let known = match self.made.take() {
            _ if self.rng.get_word_pos() == before => Known::Fixed(Arc::new(value.clone())),
            // This very node's members (not those of a node it led to).
            Some((node, slots)) if Some(node) == here => Known::Members(slots.into()),
            _ => Known::Drawn,
        };
        memo::keep(doc, hash, &place, known);
        value
    }

    fn gen_fresh(&mut self, schema: &Value, ctx: &Ctx) -> Value {
        if ctx.depth > HARD_DEPTH {
            return self.smallest(schema, 0);
        }
        if let Some(r) = ref_of(schema) {
            let seen = ctx.refs.iter().filter(|x| **x == r).count();
            if seen >= 3 {
                let doc = self.doc;
                return pointer::target(doc, schema).map_or(Value::Null, |t| self.smallest(t, 0));
            }
            let Some(target) = self.ref_target(schema, ctx.stable) else {
                return Value::Null;
            };
            let mut inner = ctx.clone();
            inner.refs.push(r);
            // One level of self-reference reads naturally; deeper only what is required.
            inner.minimal |= seen >= 1;
            inner.stable = target.stable();
            return self.gen_value(&target, &inner);
        }
        let Value::Object(map) = schema else {
            return json!("string");
        };
        if has_all_of(schema) {
            let merged = self.all_of(schema, ctx.stable);
            let inner = Ctx {
                stable: merged.stable(),
                ..ctx.clone()
            };
            return self.gen_value(&merged, &inner);
        }
        if self.use_examples
            && is_scalar_type(map)
            && let Some(ex) = map.kw("example")
            && self.fits_scalar(map, ex)
        {
            return ex.clone();
        }
        if let Some(Value::Array(values)) = map.kw("enum") {
            let candidates: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
            if !candidates.is_empty() {
                let i = self.rng.random_range(0..candidates.len());
                return candidates[i].clone();
            }
        }
        if let Some(c) = map.kw("const") {
            return c.clone();
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = map.kw(key)
                && !branches.is_empty()
            {
                return self.gen_alternative(map, key, branches, ctx);
            }
        }
        match schema_type(map) {
            "object" => self.gen_object(map, ctx),
            "array" => self.gen_array(map, ctx),
            "integer" => self.gen_integer(map, ctx),
            "number" => self.gen_number(map),
            "boolean" => Value::Bool(self.rng.random_bool(0.5)),
            _ => Value::String(self.gen_string(map, ctx)),
        }
    }

    /// Flattens `allOf` (recursively, through refs) into one schema.
    fn merge_all_of(&self, schema: &Value, seen: &mut Vec<String>) -> Value {
        let mut out = Map::new();
        let doc = self.doc;
        let resolved = match ref_of(schema) {
            Some(r) if seen.iter().any(|s| s == r) => return Value::Object(out),
            Some(r) => {
                seen.push(r.to_owned());
                pointer::target(doc, schema).unwrap_or(&Value::Null)
            }
            None => schema,
        };
        let Value::Object(map) = resolved else {
            return Value::Object(out);
        };
        for (k, v) in map {
            if k != "allOf" {
                merge_key(&mut out, k, v);
            }
        }
        if let Some(Value::Array(parts)) = map.kw("allOf") {
            for part in parts {
                if let Value::Object(p) = self.merge_all_of(part, seen) {
                    for (k, v) in &p {
                        merge_key(&mut out, k, v);
                    }
                }
            }
        }
        Value::Object(out)
    }

    fn gen_alternative(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        branches: &[Value],
        ctx: &Ctx,
    ) -> Value {
        // Prefer a non-null branch; `{type: null}` alternatives only express nullability.
        let usable: Vec<&Value> = branches
            .iter()
            .filter(|b| b.kw("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if usable.is_empty() {
            return Value::Null;
        }
        let i = if ctx.minimal {
            0
        } else {
            self.rng.random_range(0..usable.len())
        };
        let branch = usable[i];
        // Sibling keywords (shared properties) combine with the chosen branch.
        let mut base = map.clone();
        base.remove(key);
        let discriminator = base.remove("discriminator");
        let has_siblings = base
            .keys()
            .any(|k| matches!(k.as_str(), "properties" | "required" | "type"));
        let mut value = if has_siblings {
            let combined = json!({"allOf": [Value::Object(base), branch]});
            let temporary = Ctx {
                stable: false,
                ..ctx.clone()
            };
            self.gen_value(&combined, &temporary)
        } else {
            self.gen_value(branch, ctx)
        };
        if let (Some(d), Value::Object(obj)) = (discriminator, &mut value)
            && let Some(prop) = d.kw("propertyName").and_then(Value::as_str)
            && let Some(tag) = discriminator_tag(&d, branch)
        {
            obj.insert(prop.to_owned(), Value::String(tag));
        }
        value
    }

    fn gen_object(&mut self, map: &Map<String, Value>, ctx: &Ctx) -> Value {
        let mut out = Map::new();
        let required: Vec<&str> = map
            .kw("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let skip_flag = match self.direction {
            Direction::Request => "readOnly",
            Direction::Response => "writeOnly",
        };
        let optional_too = !ctx.minimal && ctx.depth < OPTIONAL_DEPTH;
        // At a stable place, which members draw is kept, so that next time only they are
        // generated (see `Known::Members`).
        let mut slots = (ctx.stable && self.memo().is_some()).then(Vec::new);
        if let Some(Value::Object(props)) = map.kw("properties") {
            for (index, (name, sub)) in props.iter().enumerate() {
                let is_required = required.contains(&name.as_str());
                if !is_required {
                    if !optional_too {
                        continue;
                    }
                    let doc = self.doc;
                    let resolved = pointer::target(doc, sub).unwrap_or(sub);
                    if resolved.kw(skip_flag) == Some(&Value::Bool(true)) {
                        continue;
                    }
                    // An optional property that recurses into a type being expanded adds nothing.
                    if ref_of(sub).is_some_and(|r| ctx.refs.contains(&r)) {
                        continue;
                    }
                }
                let child = ctx.member(name);
                let before = self.rng.get_word_pos();
                let v = self.gen_value(sub, &child);
                if let Some(slots) = &mut slots {
                    let fixed = self.rng.get_word_pos() == before;
                    slots.push(Slot {
                        index,
                        fixed: fixed.then(|| Arc::new(v.clone())),
                    });
                }
                out.insert(name.clone(), v);
            }
        }
        let min_props = map.kw("minProperties").and_then(Value::as_u64).unwrap_or(0) as usize;
        let additional = map.kw("additionalProperties");
        let wants_entry =
            optional_too && out.is_empty() && matches!(additional, Some(Value::Object(_)));
        if out.len() < min_props || wants_entry {
            // Made-up members are not described by slots.
            slots = None;
            let text = json!({"type": "string"});
            let sub = match additional {
                Some(s @ Value::Object(_)) => s,
                _ => &text,
            };
            let mut i = 1;
            while out.len() < min_props.max(1) {
                let child = Ctx {
                    name: None,
                    depth: ctx.depth + 1,
                    refs: ctx.refs.clone(),
                    minimal: ctx.minimal,
                    stable: ctx.stable && std::ptr::eq(sub, additional.unwrap_or(&text)),
                };
                let v = self.gen_value(sub, &child);
                out.insert(format!("key{i}"), v);
                i += 1;
            }
        }
        self.made = slots.map(|slots| (std::ptr::from_ref(map) as usize, slots));
        Value::Object(out)
    }

    /// An object whose members are known (see [`Known::Members`]): the fixed ones copied,
    /// the others generated, as [`gen_object`](Self::gen_object) would in the same order.
    fn gen_members(&mut self, schema: &Value, slots: &[Slot], ctx: &Ctx) -> Value {
        let Some(Value::Object(props)) = schema.kw("properties") else {
            return self.gen_fresh(schema, ctx);
        };
        let mut out = Map::with_capacity(slots.len());
        let mut props = props.iter().enumerate();
        for slot in slots {
            let Some((_, (name, sub))) = props.find(|(i, _)| *i == slot.index) else {
                break;
            };
            let v = match &slot.fixed {
                Some(v) => Value::clone(v),
                None => self.gen_value(sub, &ctx.member(name)),
            };
            out.insert(name.clone(), v);
        }
        Value::Object(out)
    }

    fn gen_array(&mut self, map: &Map<String, Value>, ctx: &Ctx) -> Value {
        let min = map.kw("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = map
            .kw("maxItems")
            .and_then(Value::as_u64)
            .map_or(usize::MAX, |m| m as usize);
        let wanted = if ctx.minimal || ctx.depth >= OPTIONAL_DEPTH {
            min
        } else {
            min.max(1)
        };
        // JSON Schema 2020-12 tuples: position i follows `prefixItems[i]`, the rest `items`.
        let prefix: &[Value] = map
            .kw("prefixItems")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let n = wanted.max(prefix.len().min(max)).min(max);
        let any = json!({});
        let items = map.kw("items").unwrap_or(&any);
        let unique = map.kw("uniqueItems") == Some(&Value::Bool(true));
        let mut out: Vec<Value> = Vec::with_capacity(n);
        let mut attempts = 0;
        while out.len() < n && attempts < n * 10 + 10 {
            attempts += 1;
            let schema = prefix.get(out.len()).unwrap_or(items);
            let child = Ctx {
                name: ctx.name,
                depth: ctx.depth + 1,
                refs: ctx.refs.clone(),
                minimal: ctx.minimal,
                stable: ctx.stable && !std::ptr::eq(schema, &any),
            };
            let v = self.gen_value(schema, &child);
            if unique && out.contains(&v) {
                continue;
            }
            out.push(v);
        }
        Value::Array(out)
    }

    fn gen_integer(&mut self, map: &Map<String, Value>, ctx: &Ctx) -> Value {
        let (lo, hi) = bounds(map);
        let looks_like_time = ctx.name.is_some_and(is_time_name);
        let (lo, hi) = match (lo, hi) {
            (None, None) if looks_like_time => {
                let t = BASE_UNIX_SECONDS as f64;
                (Some(t - 86_400.0 * 30.0), Some(t))
            }
            (lo, hi) => {
                let lo = lo.unwrap_or_else(|| hi.map_or(1.0, |h| (h - 1000.0).min(1.0)));
                let hi = hi.unwrap_or(lo + 1000.0).max(lo);
                (Some(lo), Some(hi))
            }
        };
        let (lo, hi) = (lo.unwrap_or(0.0).ceil(), hi.unwrap_or(1000.0).floor());
        let step = map
            .kw("multipleOf")
            .and_then(Value::as_f64)
            .filter(|m| *m >= 1.0)
            .unwrap_or(1.0);
        let first = (lo / step).ceil() * step;
        let steps = ((hi - first) / step).floor().max(0.0) as u64;
        let k = if steps == 0 {
            0
        } else {
            self.rng.random_range(0..=steps.min(1_000_000))
        };
        let v = first + k as f64 * step;
        Value::Number(Number::from(v as i64))
    }

    fn gen_number(&mut self, map: &Map<String, Value>) -> Value {
        let (lo, hi) = bounds(map);
        let lo = lo.unwrap_or_else(|| hi.map_or(0.0, |h| (h - 1000.0).min(0.0)));
        let hi = hi.unwrap_or(lo + 1000.0).max(lo);
        if let Some(step) = map
            .kw("multipleOf")
            .and_then(Value::as_f64)
            .filter(|m| *m > 0.0)
        {
            let first = (lo / step).ceil();
            let last = (hi / step).floor();
            let k = if last > first {
                self.rng.random_range(first as i64..=last as i64) as f64
            } else {
                first
            };
            return Number::from_f64(k * step).map_or(json!(0), Value::Number);
        }
        // Two decimals, strictly inside the bounds so exclusive limits hold too.
        let span = hi - lo;
        let v = lo + span * (0.1 + 0.8 * self.rng.random::<f64>());
        let v = (v * 100.0).round() / 100.0;
        let v = if v <= lo || v >= hi {
            lo + span / 2.0
        } else {
            v
        };
        Number::from_f64(v).map_or(json!(0), Value::Number)
    }

    fn gen_string(&mut self, map: &Map<String, Value>, ctx: &Ctx) -> String {
        let min = map
            .kw("minLength")
            .and_then(Value::as_u64)
            .map(|n| n as usize);
        let max = map
            .kw("maxLength")
            .and_then(Value::as_u64)
            .map(|n| n as usize);
        let format = map.kw("format").and_then(Value::as_str).unwrap_or("");
        let pattern = map.kw("pattern").and_then(Value::as_str);
        if format == "ksuid" {
            let t = BASE_UNIX_SECONDS - self.rng.random_range(0..86_400 * 30);
            return ids::ksuid(&mut self.rng, t);
        }
        if let Some(shape) = pattern.and_then(ids::TimeOrdered::of) {
            let ms = match self.minted_at {
                Some(ms) => ms,
                None => (BASE_UNIX_SECONDS - self.rng.random_range(0..86_400 * 30)) * 1000,
            };
            return shape.mint(&mut self.rng, ms);
        }
        if let Some(p) = pattern
            && let Some(s) = self.matching(p, min, max)
        {
            return s;
        }
        let s = match self.formatted(format) {
            Some(s) => s,
            None => ctx
                .name
                .and_then(|n| faker::by_property_name(n, max, &mut self.rng))
                .unwrap_or_else(|| {
                    if max.is_some_and(|m| m < 12) {
                        faker::word(&mut self.rng)
                    } else {
                        faker::words(&mut self.rng)
                    }
                }),
        };
        fit_length(s, min, max)
    }

    fn formatted(&mut self, format: &str) -> Option<String> {
        let t = BASE_UNIX_SECONDS - self.rng.random_range(0..86_400 * 60);
        let dt = chrono::DateTime::from_timestamp(t, 0)?;
        Some(match format {
            "date-time" => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "date" => dt.format("%Y-%m-%d").to_string(),
            "time" => dt.format("%H:%M:%SZ").to_string(),
            "uuid" => ids::uuid(&mut self.rng),
            "email" | "idn-email" => faker::by_property_name("email", None, &mut self.rng)?,
            "uri" | "url" | "iri" | "uri-reference" | "iri-reference" => {
                faker::by_property_name("url", None, &mut self.rng)?
            }
            "hostname" | "idn-hostname" => format!("{}.example.com", faker::word(&mut self.rng)),
            "ipv4" => faker::by_property_name("ip", None, &mut self.rng)?,
            "ipv6" => format!("2001:db8::{:x}", self.rng.random_range(1..0xffffu32)),
            "byte" => {
                let mut b = [0u8; 12];
                self.rng.fill(&mut b);
                base64::engine::general_purpose::STANDARD.encode(b)
            }
            "password" | "binary" => faker::alphanumeric(16, &mut self.rng),
            _ => return None,
        })
    }

    fn matching(
        &mut self,
        pattern: &str,
        min: Option<usize>,
        max: Option<usize>,
    ) -> Option<String> {
        let compiled = compiled_pattern(pattern)?;
        for _ in 0..16 {
            let s: String = self.rng.sample(&*compiled);
            let len = s.chars().count();
            if min.is_none_or(|m| len >= m) && max.is_none_or(|m| len <= m) {
                return Some(s);
            }
        }
        None
    }

    /// The smallest value a schema accepts, without expanding anything optional.
    fn smallest(&mut self, schema: &Value, hops: usize) -> Value {
        let doc = self.doc;
        let schema = pointer::target(doc, schema).unwrap_or(schema);
        let Value::Object(map) = schema else {
            return Value::Null;
        };
        if map.kw("nullable") == Some(&Value::Bool(true)) {
            return Value::Null;
        }
        if let Some(Value::Array(values)) = map.kw("enum")
            && let Some(v) = values.first()
        {
            return v.clone();
        }
        match schema_type(map) {
            "object" if hops < 4 => {
                let mut out = Map::new();
                let required = map
                    .kw("required")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for name in required.iter().filter_map(Value::as_str) {
                    let sub = map
                        .kw("properties")
                        .and_then(|p| p.get(name))
                        .cloned()
                        .unwrap_or(json!({}));
                    out.insert(name.to_owned(), self.smallest(&sub, hops + 1));
                }
                Value::Object(out)
            }
            "object" => json!({}),
            "array" => json!([]),
            "integer" | "number" => {
                let (lo, _) = bounds(map);
                json!(lo.map_or(0, |l| l.ceil() as i64))
            }
            "boolean" => json!(false),
            _ => {
                let ctx = Ctx {
                    depth: HARD_DEPTH,
                    ..Ctx::default()
                };
                Value::String(self.gen_string(map, &ctx))
            }
        }
    }

    /// A cheap local check that a scalar `example` honours its schema's own constraints.
    fn fits_scalar(&mut self, map: &Map<String, Value>, v: &Value) -> bool {
        let type_ok = match (schema_type(map), v) {
            ("string", Value::String(_)) | ("boolean", Value::Bool(_)) => true,
            ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
            ("number", Value::Number(_)) => true,
            _ => false,
        };
        if !type_ok {
            return false;
        }
        if let Some(Value::Array(values)) = map.kw("enum")
            && !values.contains(v)
        {
            return false;
        }
        if let Some(n) = v.as_f64() {
            let (lo, hi) = bounds(map);
            return lo.is_none_or(|l| n >= l) && hi.is_none_or(|h| n <= h);
        }
        let Some(s) = v.as_str() else { return true };
        let len = s.chars().count();
        let min = map.kw("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = map
            .kw("maxLength")
            .and_then(Value::as_u64)
            .map_or(usize::MAX, |m| m as usize);
        if len < min || len > max {
            return false;
        }
        if let Some(p) = map.kw("pattern").and_then(Value::as_str)
            && !pattern_matches(p, s)
        {
            return false;
        }
        match map.kw("format").and_then(Value::as_str) {
            Some("date-time") => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            Some("date") => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            Some("uuid") => s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
            Some("email") => s.contains('@'),
            Some("ksuid") => crate::schema::formats::is_ksuid(s),
            Some("uri" | "url") => s.contains("://"),
            _ => true,
        }
    }
}

fn merge_key(out: &mut Map<String, Value>, k: &str, v: &Value) {
    match (k, out.get_mut(k), v) {
        ("properties", Some(Value::Object(existing)), Value::Object(new)) => {
            for (name, schema) in new {
                match existing.get(name) {
                    // The same property constrained twice must satisfy both.
                    Some(old) if old != schema => {
                        let both = json!({"allOf": [old.clone(), schema.clone()]});
                        existing.insert(name.clone(), both);
                    }
                    _ => {
                        existing.insert(name.clone(), schema.clone());
                    }
                }
            }
        }
        ("required", Some(Value::Array(existing)), Value::Array(new)) => {
            for r in new {
                if !existing.contains(r) {
                    existing.push(r.clone());
                }
            }
        }
        ("minimum" | "minLength" | "minItems" | "minProperties", Some(existing), new) => {
            if new.as_f64() > existing.as_f64() {
                *existing = new.clone();
            }
        }
        ("maximum" | "maxLength" | "maxItems" | "maxProperties", Some(existing), new) => {
            if new.as_f64() < existing.as_f64() {
                *existing = new.clone();
            }
        }
        ("enum", Some(Value::Array(existing)), Value::Array(new)) => {
            existing.retain(|e| new.contains(e))
        }
        // Sub-schemas constrained by several parts must satisfy all of them.
        (
            "items" | "additionalProperties" | "not",
            Some(existing @ Value::Object(_)),
            Value::Object(_),
        ) if existing != v => {
            *existing = json!({"allOf": [existing.clone(), v.clone()]});
        }
        ("nullable", Some(existing), new) => {
            // Null is allowed only if every part allows it.
            *existing =
                Value::Bool(existing.as_bool() == Some(true) && new.as_bool() == Some(true));
        }
        (_, Some(_), _)
            if k.starts_with("x-") || k == "description" || k == "example" || k == "title" => {}
        (_, Some(existing), new) => {
            // Other keywords: first one wins unless it is uninformative.
            if existing.is_null() {
                *existing = new.clone();
            }
        }
        (_, None, _) => {
            out.insert(k.to_owned(), v.clone());
        }
    }
}

/// The discriminator value that selects `branch`: from the mapping, else the schema name.
fn discriminator_tag(d: &Value, branch: &Value) -> Option<String> {
    let r = ref_of(branch)?;
    if let Some(Value::Object(mapping)) = d.kw("mapping")
        && let Some((tag, _)) = mapping.iter().find(|(_, v)| v.as_str() == Some(r))
    {
        return Some(tag.clone());
    }
    r.rsplit('/').next().map(str::to_owned)
}

fn schema_type(map: &Map<String, Value>) -> &str {
    match map.kw("type") {
        Some(Value::String(t)) => t,
        _ if map.has("properties") || map.has("additionalProperties") => "object",
        _ if map.has("items") || map.has("prefixItems") => "array",
        _ if map.has("minimum") || map.has("maximum") => "number",
        _ => "string",
    }
}

fn is_scalar_type(map: &Map<String, Value>) -> bool {
    matches!(
        map.kw("type").and_then(Value::as_str),
        Some("string" | "integer" | "number" | "boolean")
    )
}

/// Inclusive numeric bounds, tightened for exclusive limits (3.0 boolean or numeric form).
fn bounds(map: &Map<String, Value>) -> (Option<f64>, Option<f64>) {
    let integer = map.kw("type").and_then(Value::as_str) == Some("integer");
    let nudge = if integer { 1.0 } else { 0.000_001 };
    let mut lo = map.kw("minimum").and_then(Value::as_f64);
    let mut hi = map.kw("maximum").and_then(Value::as_f64);
    match map.kw("exclusiveMinimum") {
        Some(Value::Bool(true)) => lo = lo.map(|l| l + nudge),
        Some(Value::Number(n)) => lo = n.as_f64().map(|l| l + nudge),
        _ => {}
    }
    match map.kw("exclusiveMaximum") {
        Some(Value::Bool(true)) => hi = hi.map(|h| h - nudge),
        Some(Value::Number(n)) => hi = n.as_f64().map(|h| h - nudge),
        _ => {}
    }
    if let Some("int32") = map.kw("format").and_then(Value::as_str) {
        lo = Some(lo.unwrap_or(f64::from(i32::MIN)).max(f64::from(i32::MIN)));
        hi = Some(hi.unwrap_or(f64::from(i32::MAX)).min(f64::from(i32::MAX)));
        // Unbounded int32 fields still deserve small, friendly numbers.
        if lo == Some(f64::from(i32::MIN)) && hi == Some(f64::from(i32::MAX)) {
            return (None, None);
        }
    }
    (lo, hi)
}

/// `created_at`, `updatedAt`, `timestamp`, `expiry_time`: integer fields holding unix seconds.
fn is_time_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with("_at")
        || (name.ends_with("At") && name.len() > 2)
        || n.ends_with("_time")
        || n.ends_with("timestamp")
        || matches!(n.as_str(), "created" | "updated" | "time" | "date")
}

/// Compiles an ECMA-style `pattern` for generation. Outer anchors are dropped (a string that
/// matches the body matches the anchored form), and classes are ASCII as in ECMA-262, so
/// `\d` never yields a non-ASCII digit.
/// Whether `s` matches `pattern`; each pattern is compiled once per process (a spec has a
/// fixed set, and a check runs for every generated value).
fn pattern_matches(pattern: &str, s: &str) -> bool {
    // Shared, not cloned: a cloned `Regex` starts with an empty matching cache, which made
    // every check rebuild its automaton.
    type Compiled = HashMap<String, Option<std::sync::Arc<regex::Regex>>>;
    static COMPILED: std::sync::LazyLock<parking_lot::Mutex<Compiled>> =
        std::sync::LazyLock::new(Default::default);
    let re = {
        let mut cache = COMPILED.lock();
        match cache.get(pattern) {
            Some(re) => re.clone(),
            None => {
                let re = regex::Regex::new(pattern).ok().map(std::sync::Arc::new);
                cache.insert(pattern.to_owned(), re.clone());
                re
            }
        }
    };
    re.is_some_and(|r| r.is_match(s))
}

/// Patterns compiled for generation, shared by every generator: a record is generated by a
/// generator of its own, and compiling its patterns again each time cost more than the rest.
static PATTERNS: std::sync::LazyLock<
    parking_lot::RwLock<HashMap<String, Option<std::sync::Arc<rand_regex::Regex>>>>,
> = std::sync::LazyLock::new(Default::default);
/// Patterns kept at most (specs have a few hundred; past this, compiled each time).
const MAX_PATTERNS: usize = 10_000;

fn compiled_pattern(pattern: &str) -> Option<std::sync::Arc<rand_regex::Regex>> {
    if let Some(hit) = PATTERNS.read().get(pattern) {
        return hit.clone();
    }
    let compiled = compile_pattern(pattern).map(std::sync::Arc::new);
    let mut cache = PATTERNS.write();
    if cache.len() < MAX_PATTERNS {
        cache.insert(pattern.to_owned(), compiled.clone());
    }
    compiled
}

fn compile_pattern(pattern: &str) -> Option<rand_regex::Regex> {
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    let body = match body.strip_suffix('$') {
        Some(b) if !b.ends_with('\\') => b,
        _ => body,
    };
    let ascii = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(true)
        .build()
        .parse(body);
    let hir = match ascii {
        Ok(h) => h,
        Err(_) => regex_syntax::ParserBuilder::new()
            .build()
            .parse(body)
            .ok()?,
    };
    rand_regex::Regex::with_hir(hir, 8).ok()
}

/// Pads or trims a string to honour `minLength` / `maxLength`.
fn fit_length(mut s: String, min: Option<usize>, max: Option<usize>) -> String {
    if let Some(max) = max
        && s.chars().count() > max
    {
        s = s
            .chars()
            .take(max)
            .collect::<String>()
            .trim_end()
            .to_owned();
    }
    if let Some(min) = min {
        while s.chars().count() < min {
            s.push('x');
        }
    }
    s
}
