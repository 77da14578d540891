//! Records per tenant, per resource type, in creation order, kept compact and indexed.
//!
//! - A record's body is its members as compact JSON text ([`Body`]), packed against its
//!   collection's dictionary when stored: immutable and shared, so the store, the engine's
//!   recent events and an idempotent replay hold the same bytes. A change parses the body,
//!   edits it and stores new bytes.
//! - Each resource's records ([`Collection`]) are indexed: by id and creation order (pages
//!   seek instead of scanning), by parent (nested lists and cascades), by the members the
//!   engine names in the [`IndexPlan`] (list filters and sorts the spec declares, members
//!   that references look records up by), and by when their lifecycle is next due.
//! - Every write goes through [`TenantMut`], which notes what changed so the state file can
//!   write it before the request is answered.
//!
//! The whole store serialises to the JSON export format (`GET /__sandbox/state`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use roaring::RoaringTreemap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use super::body::Body;
use super::body::{Dict, Packer};
use crate::hashing::{HashMap, HashSet};

/// Version of the exported state format; a document with another version is refused.
pub const FORMAT_VERSION: u32 = 1;

type IndexMap<K, V> = indexmap::IndexMap<K, V, foldhash::fast::RandomState>;

/// A record id, shared by the collection and its indexes.
pub type Id = Arc<str>;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ParentRef {
    pub resource: String,
    pub id: String,
}

/// What the sandbox knows about a record beyond its body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Virtual time the current lifecycle state was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_at: Option<f64>,
    /// `X-Sandbox-Scenario` given at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Timed transitions are held (the create asked for it with the lifecycle's header).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// For resources with client-chosen idempotent ids: a hash of the creating request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<u64>,
    /// The record whose effects created this one: what this one causes is its cause's too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caused_by: Option<ParentRef>,
    /// Ids of the events this record caused (kept for resources that show them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caused: Vec<String>,
}

impl Meta {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub body: Body,
    /// Boxed: most records have none, and the box keeps records small.
    #[serde(default, with = "boxed_meta")]
    meta: Option<Box<Meta>>,
    /// Boxed, as `meta` is: most records have no parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<Box<ParentRef>>,
    /// Creation order within the tenant, for stable default sorting.
    pub seq: u64,
}

/// The export format writes `meta` as a plain object (`{}` when empty).
mod boxed_meta {
    use super::Meta;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[allow(clippy::ref_option, clippy::borrowed_box)]
    pub fn serialize<S: Serializer>(m: &Option<Box<Meta>>, s: S) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => m.serialize(s),
            None => Meta::default().serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<Meta>>, D::Error> {
        let m = Meta::deserialize(d)?;
        Ok((!m.is_default()).then(|| Box::new(m)))
    }
}

impl Record {
    pub fn parent(&self) -> Option<&ParentRef> {
        self.parent.as_deref()
    }

    pub fn meta(&self) -> &Meta {
        static NONE: std::sync::OnceLock<Meta> = std::sync::OnceLock::new();
        self.meta
            .as_deref()
            .unwrap_or_else(|| NONE.get_or_init(Meta::default))
    }
}

/// Members of one value that an index files it under: its text, or each item's text for an
/// array (a record with `tags: [a, b]` is found under `a` and `b`).
pub fn index_texts(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(text).collect(),
        other => vec![text(other)],
    }
}

/// A value as text: strings as they are, anything else as JSON (ids that are numbers).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "true" } else { "false" }.to_owned(),
        other => other.to_string(),
    }
}

/// A member's value in sort order: numbers and timestamps by value, other text
/// case-insensitively (the order lists use).
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Number(f64),
    Text(TextKey),
}

/// Sort text with its first eight bytes beside it as a number: most comparisons in a big
/// index (random ids) are settled by those, without reading the text through its pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextKey {
    head: u64,
    text: Box<str>,
}

impl TextKey {
    fn new(text: String) -> Self {
        let mut head = [0u8; 8];
        let n = text.len().min(8);
        head[..n].copy_from_slice(&text.as_bytes()[..n]);
        Self {
            // Big-endian with zeros after a short text: orders as the bytes do.
            head: u64::from_be_bytes(head),
            text: text.into_boxed_str(),
        }
    }
}

impl Ord for TextKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.head
            .cmp(&other.head)
            .then_with(|| self.text.cmp(&other.text))
    }
}

impl PartialOrd for TextKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl SortKey {
    pub fn of(v: &Value) -> Option<Self> {
        match v {
            Value::Number(n) => n.as_f64().map(Self::Number),
            Value::String(s) => Some(Self::of_text(s)),
            Value::Bool(_) => Some(Self::Text(TextKey::new(text(v)))),
            _ => None,
        }
    }

    /// Text as a number or a time when it reads as one.
    pub fn of_text(s: &str) -> Self {
        s.parse::<f64>()
            .ok()
            .or_else(|| {
                // A time starts with its year's digits; most text does not try.
                s.as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_digit)
                    .then(|| chrono::DateTime::parse_from_rfc3339(s).ok())
                    .flatten()
                    .map(|t| t.timestamp() as f64)
            })
            .map_or_else(|| Self::Text(TextKey::new(s.to_lowercase())), Self::Number)
    }
}

impl Eq for SortKey {}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => a.total_cmp(b),
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
            (Self::Number(_), Self::Text(_)) => Ordering::Less,
            (Self::Text(_), Self::Number(_)) => Ordering::Greater,
        }
    }
}

/// The records filed under one index value, by creation sequence (the collection keeps
/// its records in that order, so a sequence finds its record): most values of a unique
/// member name one record, which needs no set of its own; the others are compressed
/// bitmaps, a few bytes per record where a tree of ids took tens.
#[derive(Debug)]
pub enum IdSet {
    One(u64),
    Many(RoaringTreemap),
}

impl IdSet {
    fn insert(&mut self, seq: u64) {
        match self {
            Self::One(s) if *s == seq => {}
            Self::One(s) => {
                let mut many = RoaringTreemap::new();
                many.insert(*s);
                many.insert(seq);
                *self = Self::Many(many);
            }
            Self::Many(m) => {
                m.insert(seq);
            }
        }
    }

    /// Removes `seq`; whether the set is empty afterwards.
    fn remove(&mut self, seq: u64) -> bool {
        match self {
            Self::One(s) => *s == seq,
            Self::Many(m) => {
                m.remove(seq);
                m.is_empty()
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::One(..) => 1,
            Self::Many(m) => usize::try_from(m.len()).unwrap_or(usize::MAX),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, seq: u64) -> bool {
        match self {
            Self::One(s) => *s == seq,
            Self::Many(m) => m.contains(seq),
        }
    }

    /// Creation sequences, in order.
    pub fn iter(&self) -> Box<dyn DoubleEndedIterator<Item = u64> + '_> {
        match self {
            Self::One(s) => Box::new(std::iter::once(*s)),
            Self::Many(m) => Box::new(m.iter()),
        }
    }
}

/// How a member is indexed: by value (filters, lookups), in order (sorts, ranges), or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexKind {
    pub equal: bool,
    pub sorted: bool,
}

/// One indexed member of a collection's records.
#[derive(Debug, Default)]
pub struct MemberIndex {
    /// Value text -> records holding it.
    pub equal: Option<HashMap<String, IdSet>>,
    /// Sort key -> records, in creation order among equals.
    pub sorted: Option<BTreeMap<SortKey, IdSet>>,
    /// How many sort keys are numbers and how many text (a mixed member sorts by scan).
    pub numbers: usize,
    pub texts: usize,
}

fn file_under<K: Eq + std::hash::Hash>(map: &mut HashMap<K, IdSet>, key: K, seq: u64) {
    match map.get_mut(&key) {
        Some(set) => set.insert(seq),
        None => {
            map.insert(key, IdSet::One(seq));
        }
    }
}

/// One member's entry in its collection's indexes: (member, the texts its equal index files
/// it under, its sort key).
pub type IndexEntry = (Arc<str>, Vec<String>, Option<SortKey>);

/// A resource's indexed members and how each is indexed; the names are shared with the
/// entries made from them.
pub type IndexMembers = BTreeMap<Arc<str>, IndexKind>;

/// A record's entries in its collection's indexes, worked out from its members before the
/// store is locked (by the thread that reads a state log back at start).
#[derive(Debug, Default)]
pub struct IndexEntries {
    entries: Vec<IndexEntry>,
    /// Every member's name (the collection counts which occur); records of one shape share
    /// one list.
    names: Arc<[String]>,
}

impl IndexEntries {
    /// The entries of a record with `body` in a collection indexed as `kinds` says.
    pub fn of(kinds: Option<&IndexMembers>, body: &Map<String, Value>) -> Self {
        let entries = kinds
            .into_iter()
            .flatten()
            .filter_map(|(name, kind)| {
                let (texts, key) = index_entry(*kind, body.get(&**name)?);
                Some((name.clone(), texts, key))
            })
            .collect();
        Self {
            entries,
            names: body.keys().cloned().collect(),
        }
    }

    /// [`of`](Self::of) for a body of `shape`: its indexed members are found where the
    /// shape has them, without a lookup by name, and it shares the shape's names.
    fn of_shape(shape: &Shape, body: &Map<String, Value>) -> Self {
        let entries = body
            .values()
            .zip(shape.index.iter())
            .filter_map(|(v, slot)| {
                let (name, kind) = slot.as_ref()?;
                let (texts, key) = index_entry(*kind, v);
                Some((name.clone(), texts, key))
            })
            .collect();
        Self {
            entries,
            names: shape.names.clone(),
        }
    }

    /// Entries worked out elsewhere (while a stored body is read): `entries` as [`of`]
    /// makes them, and the body's member names.
    ///
    /// [`of`]: Self::of
    pub fn from_parts(entries: Vec<IndexEntry>, names: Arc<[String]>) -> Self {
        Self { entries, names }
    }

    /// The record's member names.
    pub fn names(&self) -> &Arc<[String]> {
        &self.names
    }
}

/// The entry of member `v` in an index of kind `kind`: the texts an equal index files it
/// under, and its sort key.
pub fn index_entry(kind: IndexKind, v: &Value) -> (Vec<String>, Option<SortKey>) {
    let texts = if kind.equal {
        index_texts(v)
    } else {
        Vec::new()
    };
    (texts, if kind.sorted { SortKey::of(v) } else { None })
}

/// How a stored record is filed under its collection's indexes.
pub enum Filing<'b> {
    /// From its members, parsed.
    Members(&'b Map<String, Value>),
    /// From entries worked out beforehand, with the members its lifecycle reads when its
    /// resource has timed transitions.
    Entries(IndexEntries, Option<&'b Map<String, Value>>),
    /// A new record drafted before the store was locked ([`Ready`]): its entries, and its
    /// members.
    Drafted(IndexEntries, &'b Map<String, Value>),
}

/// What a record drafted without the store's lock is packed and filed against: its
/// collection's dictionary and the member names its last records had, taken when the
/// draft began ([`Collection::template`]).
#[derive(Default, Clone)]
pub struct Template {
    dict: Option<Arc<Dict>>,
    shape: Option<Shape>,
}

/// A new record's text (packed when it packs well) and its index entries, worked out
/// before the store is locked so that storing it only files them.
pub struct Ready {
    body: Body,
    entries: IndexEntries,
    /// The record as its events show it (without the members kept only for the sandbox),
    /// as JSON text: what its created event holds.
    pub shown_text: bytes::Bytes,
}

impl Ready {
    /// `record` drafted for `resource`, whose events show the members `shown` marks (one
    /// flag per member, in order).
    pub fn new(
        plan: &IndexPlan,
        resource: &str,
        template: &Template,
        record: &Map<String, Value>,
        shown: &[bool],
    ) -> Self {
        // Written into room for a body like the collection's others, not grown as it goes.
        let room = template.dict.as_ref().map_or(256, |d| d.len() + 128);
        let (text, shown_text) = written(record, shown, room);
        let mut body = Body::from_json(text);
        if let Some(dict) = &template.dict {
            body = body.packed_with(dict);
        }
        // Records of one shape share one list of names (counted once by the collection).
        let entries = match &template.shape {
            Some(shape) if same_names(&shape.names, record) => {
                IndexEntries::of_shape(shape, record)
            }
            _ => IndexEntries::of(plan.members.get(resource), record),
        };
        Self {
            body,
            entries,
            shown_text,
        }
    }
}

/// `record` as JSON text, and the members `shown` marks as JSON text: those come first in
/// the record's text, so both are written once (the second is the first's start, closed).
fn written(
    record: &Map<String, Value>,
    shown: &[bool],
    room: usize,
) -> (bytes::Bytes, bytes::Bytes) {
    use serde::Serializer as _;
    let object = |keep: bool, room: usize| {
        let mut text = Vec::with_capacity(room);
        let members = record
            .iter()
            .zip(shown.iter().chain(std::iter::repeat(&true)))
            .filter(|(_, s)| **s == keep)
            .map(|(member, _)| member);
        if serde_json::Serializer::new(&mut text)
            .collect_map(members)
            .is_err()
        {
            text = b"{}".to_vec();
        }
        text
    };
    if shown.iter().all(|s| *s) {
        let text = bytes::Bytes::from(object(true, room));
        return (text.clone(), text);
    }
    let shows = object(true, room);
    let kept = object(false, 64);
    // `{shown...}` and `{kept...}` joined: `{shown..., kept...}`.
    let mut text = Vec::with_capacity(shows.len() + kept.len());
    text.extend_from_slice(&shows[..shows.len() - 1]);
    if shows.len() > 2 {
        text.push(b',');
    }
    text.extend_from_slice(&kept[1..]);
    (bytes::Bytes::from(text), bytes::Bytes::from(shows))
}

/// Whether `record` has exactly `names`, in that order (records of one shape).
pub(super) fn same_names(names: &[String], record: &Map<String, Value>) -> bool {
    names.len() == record.len() && names.iter().zip(record.keys()).all(|(a, b)| a == b)
}

/// Counts `n` more records holding member `name` (a lookup, not a new key, in the usual case).
fn count_present(present: &mut HashMap<String, usize>, name: &str, n: usize) {
    match present.get_mut(name) {
        Some(count) => *count += n,
        None => {
            present.insert(name.to_owned(), n);
        }
    }
}

impl MemberIndex {
    fn new(kind: IndexKind) -> Self {
        Self {
            equal: kind.equal.then(HashMap::default),
            sorted: kind.sorted.then(BTreeMap::new),
            ..Self::default()
        }
    }

    fn add(&mut self, v: &Value, seq: u64) {
        let texts = self
            .equal
            .as_ref()
            .map(|_| index_texts(v))
            .unwrap_or_default();
        let key = self.sorted.as_ref().and_then(|_| SortKey::of(v));
        self.add_entry(texts, key, seq);
    }

    /// Files a record under its value's texts and sort key (worked out here, by [`add`], or
    /// beforehand, by [`IndexEntries`]).
    ///
    /// [`add`]: Self::add
    fn add_entry(&mut self, texts: Vec<String>, key: Option<SortKey>, seq: u64) {
        if let Some(equal) = &mut self.equal {
            for t in texts {
                file_under(equal, t, seq);
            }
        }
        if let (Some(sorted), Some(k)) = (&mut self.sorted, key) {
            match k {
                SortKey::Number(_) => self.numbers += 1,
                SortKey::Text(_) => self.texts += 1,
            }
            match sorted.get_mut(&k) {
                Some(set) => set.insert(seq),
                None => {
                    sorted.insert(k, IdSet::One(seq));
                }
            }
        }
    }

    fn remove(&mut self, v: &Value, seq: u64) {
        if let Some(equal) = &mut self.equal {
            for t in index_texts(v) {
                if equal.get_mut(&t).is_some_and(|set| set.remove(seq)) {
                    equal.remove(&t);
                }
            }
        }
        if let (Some(sorted), Some(k)) = (&mut self.sorted, SortKey::of(v)) {
            match k {
                SortKey::Number(_) => self.numbers = self.numbers.saturating_sub(1),
                SortKey::Text(_) => self.texts = self.texts.saturating_sub(1),
            }
            if sorted.get_mut(&k).is_some_and(|set| set.remove(seq)) {
                sorted.remove(&k);
            }
        }
    }

    /// The records whose member reads `value` (or holds it, for arrays); `None` when the
    /// member is not indexed by value or nothing reads it.
    pub fn equal_to(&self, value: &str) -> Option<&IdSet> {
        self.equal.as_ref()?.get(value)
    }

    /// How many records the sorted index holds.
    pub fn sorted_len(&self) -> usize {
        self.numbers + self.texts
    }
}

/// When a record's lifecycle next moves on its own (virtual seconds), if it will.
pub type DueFn = dyn Fn(&str, &Map<String, Value>, &Meta, &str) -> Option<f64> + Send + Sync;

/// What the engine asks the store to index, per resource.
#[derive(Default)]
pub struct IndexPlan {
    /// Resource -> members to index, and how.
    pub members: HashMap<String, IndexMembers>,
    /// Resources whose records have timed lifecycle transitions, and when each is due
    /// (`resource, body, meta, record key`).
    pub due: Option<Box<DueFn>>,
    pub timed: BTreeSet<String>,
}

impl std::fmt::Debug for IndexPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexPlan")
            .field("members", &self.members)
            .field("timed", &self.timed)
            .finish_non_exhaustive()
    }
}

/// The member names of a record, in order (most records of a collection share one list),
/// and where indexes read them.
#[derive(Debug, Clone)]
pub struct Shape {
    pub names: Arc<[String]>,
    /// Per name, where `kinds` indexes it (when it does).
    pub index: Arc<[Option<Indexed>]>,
}

/// An indexed member: its index entries' name and the index's kind.
pub type Indexed = (Arc<str>, IndexKind);

impl Shape {
    pub fn new(names: Arc<[String]>, kinds: Option<&IndexMembers>) -> Self {
        let index = names
            .iter()
            .map(|n| {
                let (member, kind) = kinds?.get_key_value(n.as_str())?;
                Some((member.clone(), *kind))
            })
            .collect();
        Self { names, index }
    }
}

/// The records of one resource type in one tenant.
#[derive(Debug, Default)]
pub struct Collection {
    records: IndexMap<Id, Record>,
    /// Parent -> its children here, in creation order.
    children: HashMap<ParentRef, IdSet>,
    /// Indexed members.
    indexes: HashMap<String, MemberIndex>,
    /// The same, as the plan names them (what a shape's index is worked out from).
    members: Option<IndexMembers>,
    /// Member name -> how many records hold it (with `shape`).
    present: HashMap<String, usize>,
    /// Records filed in a row with one list of member names (a state log read back at
    /// start), counted once here rather than name by name, and added to `present` when
    /// another shape comes or a record is filed another way.
    /// A record of that shape is filed by walking its members, without looking each indexed
    /// one up.
    shape: Option<(Shape, usize)>,
    /// Packs the bodies stored here (see [`Packer`]).
    packer: Packer,
}

impl Collection {
    fn new(members: Option<&IndexMembers>) -> Self {
        Self {
            indexes: members
                .into_iter()
                .flatten()
                .map(|(m, kind)| (m.to_string(), MemberIndex::new(*kind)))
                .collect(),
            members: members.cloned(),
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// What a record drafted now, without the lock, is packed and filed against.
    pub fn template(&self) -> Template {
        Template {
            dict: self.packer.dict(),
            shape: self.shape.as_ref().map(|(shape, _)| shape.clone()),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Record> {
        self.records.get(id)
    }

    /// The shared id of record `id`.
    pub fn id(&self, id: &str) -> Option<&Id> {
        self.records.get_key_value(id).map(|(k, _)| k)
    }

    /// Records in creation order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Id, &Record)> + ExactSizeIterator {
        self.records.iter()
    }

    /// The record at `position` in creation order.
    pub fn at(&self, position: usize) -> Option<(&Id, &Record)> {
        self.records.get_index(position)
    }

    /// The position of record `id` in creation order.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.records.get_index_of(id)
    }

    /// Children of `parent`, in creation order.
    pub fn children(&self, parent: &ParentRef) -> Option<&IdSet> {
        self.children.get(parent)
    }

    /// Stores `record` in creation order: creates commit concurrently, so one may land
    /// after a later one, a few places from the end.
    fn keep(&mut self, id: Id, record: Record) {
        let seq = record.seq;
        if let Some(at) = self.records.get_index_of(&id) {
            if self.records[at].seq == seq {
                self.records[at] = record;
                return;
            }
            self.records.shift_remove_index(at);
        }
        // Usually the newest: appended without a search.
        let newest = self.records.last().is_none_or(|(_, r)| r.seq < seq);
        let at = if newest {
            self.records.len()
        } else {
            self.records.partition_point(|_, r| r.seq < seq)
        };
        if at == self.records.len() {
            self.records.insert(id, record);
        } else {
            self.records.shift_insert(at, id, record);
        }
    }

    /// The record created `seq`-th (records are kept in creation order).
    pub fn by_seq(&self, seq: u64) -> Option<(&Id, &Record)> {
        let at = self.records.binary_search_by_key(&seq, |_, r| r.seq).ok()?;
        self.records.get_index(at)
    }

    /// The records in `set` (an index's or a parent's), in creation order.
    pub fn by_seqs<'c>(
        &'c self,
        set: &'c IdSet,
    ) -> impl DoubleEndedIterator<Item = (&'c Id, &'c Record)> + 'c {
        set.iter().filter_map(|seq| self.by_seq(seq))
    }

    /// The ids of the records in `set` (an index's or a parent's), in creation order.
    pub fn ids<'c>(&'c self, set: &'c IdSet) -> impl DoubleEndedIterator<Item = &'c Id> + 'c {
        self.by_seqs(set).map(|(id, _)| id)
    }

    pub fn index(&self, member: &str) -> Option<&MemberIndex> {
        self.indexes.get(member)
    }

    /// How many records hold member `name`.
    pub fn holding(&self, name: &str) -> usize {
        let pending = match &self.shape {
            Some((shape, n)) if shape.names.iter().any(|m| m == name) => *n,
            _ => 0,
        };
        self.present.get(name).copied().unwrap_or(0) + pending
    }

    /// Adds the records counted by shape to the counts by name.
    fn settle_shape(&mut self) {
        if let Some((shape, n)) = self.shape.take() {
            for name in shape.names.iter() {
                count_present(&mut self.present, name, n);
            }
        }
    }

    /// The first record whose `member` reads `value`: through the index when there is one.
    pub fn find_by(&self, member: &str, value: &Value) -> Option<&Id> {
        if let Some(index) = self.indexes.get(member).filter(|i| i.equal.is_some()) {
            return self.ids(index.equal_to(&text(value))?).find(|id| {
                self.records
                    .get(&***id)
                    .is_some_and(|r| holds(r, member, value))
            });
        }
        self.records
            .iter()
            .find(|(_, r)| r.body.get(member).as_ref() == Some(value))
            .map(|(id, _)| id)
    }

    fn file(&mut self, seq: u64, parent: Option<&ParentRef>, body: &Map<String, Value>) {
        if let Some(p) = parent {
            file_under(&mut self.children, p.clone(), seq);
        }
        // Records of one shape in a row are counted by that shape (a comparison of names,
        // not a lookup per name), and filed by where that shape has its indexed members.
        let index = match &mut self.shape {
            Some((shape, n)) if same_names(&shape.names, body) => {
                *n += 1;
                Some(shape.index.clone())
            }
            _ => None,
        };
        match &index {
            Some(index) => {
                for (v, slot) in body.values().zip(index.iter()) {
                    if let Some((name, _)) = slot
                        && let Some(index) = self.indexes.get_mut(&**name)
                    {
                        index.add(v, seq);
                    }
                }
            }
            None => {
                for (name, index) in &mut self.indexes {
                    if let Some(v) = body.get(name) {
                        index.add(v, seq);
                    }
                }
            }
        }
        if index.is_none() {
            self.begin_shape(body.keys().cloned().collect());
        }
    }

    /// Starts counting records of the shape `names`.
    fn begin_shape(&mut self, names: Arc<[String]>) {
        self.settle_shape();
        self.shape = Some((Shape::new(names, self.members.as_ref()), 1));
    }

    fn file_entries(&mut self, seq: u64, parent: Option<&ParentRef>, e: IndexEntries) {
        if let Some(p) = parent {
            file_under(&mut self.children, p.clone(), seq);
        }
        for (name, texts, key) in e.entries {
            if let Some(index) = self.indexes.get_mut(&*name) {
                index.add_entry(texts, key, seq);
            }
        }
        match &mut self.shape {
            Some((shape, n)) if Arc::ptr_eq(&shape.names, &e.names) => *n += 1,
            _ => self.begin_shape(e.names),
        }
    }

    fn unfile(&mut self, seq: u64, parent: Option<&ParentRef>, body: &Map<String, Value>) {
        self.settle_shape();
        if let Some(p) = parent
            && self.children.get_mut(p).is_some_and(|set| set.remove(seq))
        {
            self.children.remove(p);
        }
        for (name, index) in &mut self.indexes {
            if let Some(v) = body.get(name) {
                index.remove(v, seq);
            }
        }
        for name in body.keys() {
            if let Some(n) = self.present.get_mut(name) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.present.remove(name);
                }
            }
        }
    }

    /// Moves the indexes from `before` to `after` for the record created `seq`-th.
    fn refile(&mut self, seq: u64, before: &Map<String, Value>, after: &Map<String, Value>) {
        // A change that keeps the members it had leaves the counts (and a shape) alone.
        let same_members =
            before.len() == after.len() && before.keys().all(|k| after.contains_key(k));
        if !same_members {
            self.settle_shape();
        }
        for (name, index) in &mut self.indexes {
            let (old, new) = (before.get(name), after.get(name));
            if old != new {
                if let Some(v) = old {
                    index.remove(v, seq);
                }
                if let Some(v) = new {
                    index.add(v, seq);
                }
            }
        }
        if same_members {
            return;
        }
        for name in before.keys().filter(|k| !after.contains_key(*k)) {
            if let Some(n) = self.present.get_mut(name) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.present.remove(name);
                }
            }
        }
        for name in after.keys().filter(|k| !before.contains_key(*k)) {
            count_present(&mut self.present, name, 1);
        }
    }
}

fn holds(r: &Record, member: &str, value: &Value) -> bool {
    r.body.get(member).as_ref() == Some(value)
}

/// A virtual time as an ordered key (due times are finite).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Due(pub f64);

impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Tenant {
    /// Resource type -> its records.
    #[serde(with = "collections")]
    pub resources: BTreeMap<String, Collection>,
    /// Singleton sub-documents: `"{resource}/{name}"` -> owner id -> body.
    #[serde(default)]
    pub singletons: BTreeMap<String, BTreeMap<String, Value>>,
    pub next_seq: u64,
    /// When records' lifecycles are next due: (time, resource, id).
    #[serde(skip)]
    due: BTreeSet<(Due, String, Id)>,
    /// Record (resource, id) -> its entry in `due`.
    #[serde(skip)]
    due_of: HashMap<(String, Id), Due>,
}

/// The export format writes each collection as an object of records by id.
mod collections {
    use super::{BTreeMap, Collection, Id, Record};
    use indexmap::IndexMap;
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// One collection's records by id, in creation order.
    struct Records<'a>(&'a Collection);

    impl Serialize for Records<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.records.len()))?;
            for (id, rec) in &self.0.records {
                map.serialize_entry(&**id, rec)?;
            }
            map.end()
        }
    }

    pub fn serialize<S: Serializer>(
        c: &BTreeMap<String, Collection>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(c.len()))?;
        for (name, coll) in c {
            map.serialize_entry(name, &Records(coll))?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Collection>, D::Error> {
        let raw = BTreeMap::<String, IndexMap<String, Record>>::deserialize(d)?;
        Ok(raw
            .into_iter()
            .map(|(name, records)| {
                let records = records.into_iter().map(|(k, v)| (Id::from(k), v)).collect();
                (
                    name,
                    Collection {
                        records,
                        ..Collection::default()
                    },
                )
            })
            .collect())
    }
}

impl Tenant {
    pub fn get(&self, resource: &str, id: &str) -> Option<&Record> {
        self.resources.get(resource)?.get(id)
    }

    pub fn collection(&self, resource: &str) -> Option<&Collection> {
        self.resources.get(resource)
    }

    /// The earliest due lifecycle step of `resource` (all resources when `None`), if it is
    /// due by `now`.
    pub fn due_by(&self, resource: Option<&str>, now: f64) -> bool {
        self.due
            .iter()
            .take_while(|(at, _, _)| at.0 <= now)
            .any(|(_, r, _)| resource.is_none_or(|x| x == r))
    }

    /// Records due by `now`, earliest first: (resource, id).
    pub fn due_records(&self, resource: Option<&str>, now: f64) -> Vec<(String, Id)> {
        self.due
            .iter()
            .take_while(|(at, _, _)| at.0 <= now)
            .filter(|(_, r, _)| resource.is_none_or(|x| x == r))
            .map(|(_, r, id)| (r.clone(), id.clone()))
            .collect()
    }

    /// When record `id` is due, if it is scheduled.
    pub fn due_at(&self, resource: &str, id: &str) -> Option<f64> {
        self.due_of
            .get(&(resource.to_owned(), Id::from(id)))
            .map(|d| d.0)
    }
}

/// What changed since the state file last heard: records, singletons, whole tenants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dirty {
    Record {
        tenant: String,
        resource: String,
        id: Id,
    },
    Singleton {
        tenant: String,
        slot: String,
        owner: String,
    },
    /// The tenant was removed (reset).
    Tenant(String),
    /// Everything was replaced (reset of all tenants, or an import).
    All,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Store {
    pub version: u32,
    pub tenants: BTreeMap<String, Tenant>,
    /// What to index, from the engine.
    #[serde(skip)]
    plan: Arc<IndexPlan>,
    /// Changes not yet taken by the state file, in order, with duplicates kept out.
    #[serde(skip)]
    dirty: Vec<Dirty>,
    #[serde(skip)]
    dirty_set: HashSet<Dirty>,
    /// Whether anyone takes the changes (a state file is open).
    #[serde(skip)]
    pub tracking: bool,
}

impl Store {
    pub fn new(plan: Arc<IndexPlan>) -> Self {
        Self {
            version: FORMAT_VERSION,
            plan,
            ..Self::default()
        }
    }

    /// Packs up to `budget` bodies still kept whole: a state log's, read at start, which
    /// lie in the file's buffer until then (and keep it alive). Whether any may remain.
    pub fn pack_loaded(&mut self, budget: usize) -> bool {
        let mut left = budget;
        for coll in self
            .tenants
            .values_mut()
            .flat_map(|t| t.resources.values_mut())
        {
            let Collection {
                records, packer, ..
            } = coll;
            for record in records.values_mut().filter(|r| r.body.is_packable()) {
                if left == 0 {
                    return true;
                }
                record.body = packer.pack(record.body.clone());
                left -= 1;
            }
        }
        false
    }

    /// What the store indexes, and which resources have timed transitions.
    pub fn plan(&self) -> Arc<IndexPlan> {
        self.plan.clone()
    }

    /// Indexes every record (after an import or a load) with `plan`.
    pub fn reindex(&mut self, plan: Arc<IndexPlan>) {
        self.plan = plan.clone();
        for (key, tenant) in &mut self.tenants {
            tenant.due.clear();
            tenant.due_of.clear();
            for (resource, coll) in &mut tenant.resources {
                let mut records = std::mem::take(&mut coll.records);
                // An imported document may list records in another order.
                records.sort_by(|_, a, _, b| a.seq.cmp(&b.seq));
                *coll = Collection::new(plan.members.get(resource));
                for (id, mut rec) in records {
                    let body = rec.body.map();
                    rec.body = coll.packer.pack(rec.body);
                    coll.file(rec.seq, rec.parent(), &body);
                    let due = plan_due(&plan, resource, &body, rec.meta(), key, &id);
                    coll.records.insert(id.clone(), rec);
                    schedule(
                        tenant_due(&mut tenant.due, &mut tenant.due_of),
                        resource,
                        &id,
                        due,
                    );
                }
            }
        }
    }

    /// A tenant to write to (created when missing).
    pub fn tenant(&mut self, key: &str) -> TenantMut<'_> {
        // Looked up before it is added: most writes go to a tenant that exists, and the key
        // need not be copied for them.
        if !self.tenants.contains_key(key) {
            self.tenants.insert(key.to_owned(), Tenant::default());
        }
        let bounds = (Bound::Included(key), Bound::Included(key));
        let Some((key, tenant)) = self.tenants.range_mut::<str, _>(bounds).next() else {
            unreachable!("the tenant was just added")
        };
        TenantMut {
            key,
            tenant,
            plan: &self.plan,
            dirty: DirtyLog {
                list: &mut self.dirty,
                set: &mut self.dirty_set,
                on: self.tracking,
            },
        }
    }

    pub fn get(&self, tenant: &str, resource: &str, id: &str) -> Option<&Record> {
        self.tenants.get(tenant)?.get(resource, id)
    }

    pub fn collection(&self, tenant: &str, resource: &str) -> Option<&Collection> {
        self.tenants.get(tenant)?.resources.get(resource)
    }

    /// Forgets one tenant, or all.
    pub fn reset(&mut self, tenant: Option<&str>) {
        match tenant {
            Some(t) => {
                self.tenants.remove(t);
                self.mark(Dirty::Tenant(t.to_owned()));
            }
            None => {
                self.tenants.clear();
                self.mark(Dirty::All);
            }
        }
    }

    /// Replaces everything with `other` (an import), indexed with this store's plan.
    pub fn replace(&mut self, other: Store) {
        self.tenants = other.tenants;
        let plan = self.plan.clone();
        self.reindex(plan);
        self.mark(Dirty::All);
    }

    fn mark(&mut self, d: Dirty) {
        if self.tracking && self.dirty_set.insert(d.clone()) {
            self.dirty.push(d);
        }
    }

    /// The changes since the last call, in order.
    pub fn take_dirty(&mut self) -> Vec<Dirty> {
        self.dirty_set.clear();
        std::mem::take(&mut self.dirty)
    }

    /// Tenants with a lifecycle step due by `now`.
    pub fn tenants_due(&self, now: f64) -> Vec<String> {
        self.tenants
            .iter()
            .filter(|(_, t)| t.due.first().is_some_and(|(at, _, _)| at.0 <= now))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

fn plan_due(
    plan: &IndexPlan,
    resource: &str,
    body: &Map<String, Value>,
    meta: &Meta,
    tenant: &str,
    id: &str,
) -> Option<f64> {
    if !plan.timed.contains(resource) {
        return None;
    }
    let key = format!("{tenant}/{resource}/{id}");
    plan.due.as_ref()?(resource, body, meta, &key)
}

type DueSets<'a> = (
    &'a mut BTreeSet<(Due, String, Id)>,
    &'a mut HashMap<(String, Id), Due>,
);

fn tenant_due<'a>(
    due: &'a mut BTreeSet<(Due, String, Id)>,
    due_of: &'a mut HashMap<(String, Id), Due>,
) -> DueSets<'a> {
    (due, due_of)
}

fn schedule((due, due_of): DueSets<'_>, resource: &str, id: &Id, at: Option<f64>) {
    let key = (resource.to_owned(), id.clone());
    if let Some(old) = due_of.remove(&key) {
        due.remove(&(old, key.0.clone(), id.clone()));
    }
    if let Some(at) = at.filter(|t| t.is_finite()) {
        due.insert((Due(at), key.0.clone(), id.clone()));
        due_of.insert(key, Due(at));
    }
}

struct DirtyLog<'a> {
    list: &'a mut Vec<Dirty>,
    set: &'a mut HashSet<Dirty>,
    on: bool,
}

impl DirtyLog<'_> {
    fn mark(&mut self, d: Dirty) {
        if self.on && self.set.insert(d.clone()) {
            self.list.push(d);
        }
    }
}

/// Writing to one tenant: every change is indexed and noted for the state file.
pub struct TenantMut<'a> {
    key: &'a str,
    tenant: &'a mut Tenant,
    plan: &'a IndexPlan,
    dirty: DirtyLog<'a>,
}

impl TenantMut<'_> {
    pub fn get(&self, resource: &str, id: &str) -> Option<&Record> {
        self.tenant.get(resource, id)
    }

    pub fn collection(&self, resource: &str) -> Option<&Collection> {
        self.tenant.resources.get(resource)
    }

    pub fn next_seq(&self) -> u64 {
        self.tenant.next_seq
    }

    fn collection_mut(&mut self, resource: &str) -> &mut Collection {
        let plan = self.plan;
        self.tenant
            .resources
            .entry(resource.to_owned())
            .or_insert_with(|| Collection::new(plan.members.get(resource)))
    }

    fn touched(&mut self, resource: &str, id: &Id) {
        if !self.dirty.on {
            return;
        }
        let d = Dirty::Record {
            tenant: self.key.to_owned(),
            resource: resource.to_owned(),
            id: id.clone(),
        };
        self.dirty.mark(d);
    }

    fn reschedule(&mut self, resource: &str, id: &Id, body: &Map<String, Value>, meta: &Meta) {
        let at = plan_due(self.plan, resource, body, meta, self.key, id);
        schedule(
            tenant_due(&mut self.tenant.due, &mut self.tenant.due_of),
            resource,
            id,
            at,
        );
    }

    /// Stores a new record (replacing one with the same id, which keeps its place).
    pub fn insert(
        &mut self,
        resource: &str,
        id: &str,
        body: Map<String, Value>,
        parent: Option<ParentRef>,
    ) {
        self.insert_with(resource, id, &body, Meta::default(), parent);
    }

    /// Claims the next place in the tenant's sequence for a record about to be made (stored
    /// later with [`put`](Self::put) at that place).
    pub fn reserve(&mut self) -> u64 {
        self.tenant.next_seq += 1;
        self.tenant.next_seq
    }

    /// Gives back a place claimed by [`reserve`](Self::reserve) for a record that was not
    /// made, when nothing was claimed after it, so the next record gets it.
    pub fn release(&mut self, seq: u64) {
        if self.tenant.next_seq == seq {
            self.tenant.next_seq -= 1;
        }
    }

    /// Stores a new record with what the sandbox knows about it.
    pub fn insert_with(
        &mut self,
        resource: &str,
        id: &str,
        body: &Map<String, Value>,
        meta: Meta,
        parent: Option<ParentRef>,
    ) {
        self.insert_body(resource, id, (Body::new(body), body), meta, parent);
    }

    /// Stores a record as it is (a state file being replayed): its own sequence number.
    pub fn put(
        &mut self,
        resource: &str,
        id: &str,
        body: &Map<String, Value>,
        meta: Meta,
        parent: Option<ParentRef>,
        seq: u64,
    ) {
        let bytes = Body::new(body);
        self.put_body(
            resource,
            id,
            (bytes, Filing::Members(body)),
            meta,
            parent,
            seq,
        );
    }

    /// Stores a new record drafted before the store was locked, at its claimed place.
    pub fn put_ready(
        &mut self,
        resource: &str,
        id: &str,
        (ready, record): (Ready, &Map<String, Value>),
        meta: Meta,
        parent: Option<ParentRef>,
        seq: u64,
    ) {
        let filing = Filing::Drafted(ready.entries, record);
        self.put_body(resource, id, (ready.body, filing), meta, parent, seq);
    }

    /// Stores a record whose body is already JSON bytes, filed as `filing` says (a state
    /// log read back at start).
    pub fn put_stored(
        &mut self,
        resource: &str,
        id: &str,
        body: (Body, Filing<'_>),
        meta: Meta,
        parent: Option<ParentRef>,
        seq: u64,
    ) {
        self.put_body(resource, id, body, meta, parent, seq);
    }

    /// Stores a new record whose body is already JSON bytes (shared with whoever holds
    /// them: an event's payload, a record's text kept for its answer), filed by `members`,
    /// the members those bytes hold.
    pub fn insert_body(
        &mut self,
        resource: &str,
        id: &str,
        (body, members): (Body, &Map<String, Value>),
        meta: Meta,
        parent: Option<ParentRef>,
    ) {
        self.tenant.next_seq += 1;
        let seq = self.tenant.next_seq;
        let filing = Filing::Members(members);
        self.put_body(resource, id, (body, filing), meta, parent, seq);
    }

    fn put_body(
        &mut self,
        resource: &str,
        id: &str,
        (bytes, filing): (Body, Filing<'_>),
        meta: Meta,
        parent: Option<ParentRef>,
        seq: u64,
    ) {
        self.tenant.next_seq = self.tenant.next_seq.max(seq);
        let coll = self.collection_mut(resource);
        let id: Id = coll.id(id).cloned().unwrap_or_else(|| Id::from(id));
        if let Some(old) = coll.records.get(&id).cloned() {
            coll.unfile(old.seq, old.parent(), &old.body.map());
        }
        // Only a timed lifecycle reads the members once the record is filed.
        let none = Map::new();
        let (body, bytes) = match filing {
            Filing::Members(body) => {
                coll.file(seq, parent.as_ref(), body);
                (body, coll.packer.pack(bytes))
            }
            // Packed already, unless it packs poorly against the dictionary it was drafted
            // with (or there was none yet).
            Filing::Drafted(entries, body) => {
                coll.file_entries(seq, parent.as_ref(), entries);
                (body, coll.packer.pack(bytes))
            }
            // A state log's bodies, read at start: packed once the server is up
            // (`pack_loaded`), so the restart does not wait for it.
            Filing::Entries(entries, due) => {
                coll.file_entries(seq, parent.as_ref(), entries);
                (due.unwrap_or(&none), bytes)
            }
        };
        let record = Record {
            body: bytes,
            meta: (!meta.is_default()).then(|| Box::new(meta.clone())),
            parent: parent.map(Box::new),
            seq,
        };
        coll.keep(id.clone(), record);
        self.reschedule(resource, &id, body, &meta);
        self.touched(resource, &id);
    }

    /// Changes record `id`: `f` gets its members and meta, parsed; the record is stored
    /// again (and re-indexed) afterwards. `None` when there is no such record.
    pub fn edit<R>(
        &mut self,
        resource: &str,
        id: &str,
        f: impl FnOnce(&mut Map<String, Value>, &mut Meta) -> R,
    ) -> Option<R> {
        let coll = self.tenant.resources.get_mut(resource)?;
        let (id, rec) = coll.records.get_key_value(id)?;
        let id = id.clone();
        let before = rec.body.map();
        let mut after = before.clone();
        let mut meta = rec.meta().clone();
        let out = f(&mut after, &mut meta);
        let seq = rec.seq;
        if after != before {
            coll.refile(seq, &before, &after);
        }
        if let Some(rec) = coll.records.get_mut(&id) {
            if after != before {
                rec.body = coll.packer.pack(Body::new(&after));
            }
            rec.meta = (!meta.is_default()).then(|| Box::new(meta.clone()));
        }
        self.reschedule(resource, &id, &after, &meta);
        self.touched(resource, &id);
        Some(out)
    }

    /// Removes a record and, recursively, every record whose parent it was.
    pub fn remove_cascade(&mut self, resource: &str, id: &str) -> Option<Record> {
        let coll = self.tenant.resources.get_mut(resource)?;
        let (key, removed) = coll.records.shift_remove_entry(id)?;
        let body = removed.body.map();
        coll.unfile(removed.seq, removed.parent(), &body);
        schedule(
            tenant_due(&mut self.tenant.due, &mut self.tenant.due_of),
            resource,
            &key,
            None,
        );
        self.touched(resource, &key);
        let target = ParentRef {
            resource: resource.to_owned(),
            id: id.to_owned(),
        };
        let children: Vec<(String, Id)> = self
            .tenant
            .resources
            .iter()
            .flat_map(|(r, coll)| {
                coll.children(&target)
                    .into_iter()
                    .flat_map(|set| coll.ids(set))
                    .map(move |i| (r.clone(), i.clone()))
            })
            .collect();
        for (r, i) in children {
            self.remove_cascade(&r, &i);
        }
        let mut cleared = Vec::new();
        for (slot, owners) in &mut self.tenant.singletons {
            if slot.split('/').next() == Some(resource) && owners.remove(id).is_some() {
                cleared.push(slot.clone());
            }
        }
        for slot in cleared {
            self.dirty.mark(Dirty::Singleton {
                tenant: self.key.to_owned(),
                slot,
                owner: id.to_owned(),
            });
        }
        Some(removed)
    }

    /// The singleton sub-document `slot` of record `owner`, created empty when missing.
    pub fn singleton(&mut self, slot: &str, owner: &str) -> &mut Value {
        self.dirty.mark(Dirty::Singleton {
            tenant: self.key.to_owned(),
            slot: slot.to_owned(),
            owner: owner.to_owned(),
        });
        self.tenant
            .singletons
            .entry(slot.to_owned())
            .or_default()
            .entry(owner.to_owned())
            .or_insert_with(|| Value::Object(Map::new()))
    }

    /// Sets a singleton sub-document as it is (a state file being replayed); `None` removes it.
    pub fn put_singleton(&mut self, slot: &str, owner: &str, value: Option<Value>) {
        match value {
            Some(v) => {
                *self.singleton(slot, owner) = v;
            }
            None => {
                if let Some(owners) = self.tenant.singletons.get_mut(slot) {
                    owners.remove(owner);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    proptest::proptest! {
        /// The number beside a text key only shortcuts the comparison: keys order as their
        /// texts do, short texts, shared prefixes and zero bytes included.
        #[test]
        fn text_keys_order_as_their_texts(a in "[a\\x00\\u{e9}]{0,10}", b in "[a\\x00\\u{e9}]{0,10}") {
            let (ka, kb) = (TextKey::new(a.clone()), TextKey::new(b.clone()));
            proptest::prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            proptest::prop_assert_eq!(ka == kb, a == b);
        }
    }

    fn plan() -> Arc<IndexPlan> {
        let mut p = IndexPlan::default();
        let kind = IndexKind {
            equal: true,
            sorted: true,
        };
        p.members.insert(
            "things".into(),
            [("status".into(), kind)].into_iter().collect(),
        );
        Arc::new(p)
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// Records read from a state log are stored whole (their text where the file's buffer
    /// holds it) and packed afterwards, a slice at a time; records stored by requests are
    /// packed at once. Either way they read back as their text.
    #[test]
    fn records_read_at_start_are_packed_afterwards() {
        let mut store = Store::new(plan());
        let thing = |i: usize| {
            body(json!({"id": format!("t{i}"), "status": "new",
            "note": "a note long enough to be worth packing, as most records are"}))
        };
        for i in 0..5 {
            let b = thing(i);
            let text = Body::new(&b);
            let entries = IndexEntries::of(store.plan().members.get("things"), &b);
            let filing = Filing::Entries(entries, None);
            let id = format!("t{i}");
            store.tenant("t").put_stored(
                "things",
                &id,
                (text, filing),
                Meta::default(),
                None,
                i as u64,
            );
        }
        store.tenant("t").insert("things", "t5", thing(5), None);
        let packed = |s: &Store| {
            let coll = s.collection("t", "things").unwrap();
            coll.iter().filter(|(_, r)| r.body.is_packed()).count()
        };
        assert_eq!(packed(&store), 1);
        assert!(store.pack_loaded(3));
        assert_eq!(packed(&store), 4);
        assert!(!store.pack_loaded(3));
        assert_eq!(packed(&store), 6);
        for i in 0..6 {
            let rec = store.get("t", "things", &format!("t{i}")).unwrap();
            assert_eq!(rec.body.map(), thing(i));
        }
        let status = store
            .collection("t", "things")
            .unwrap()
            .index("status")
            .unwrap();
        assert_eq!(status.equal_to("new").map(IdSet::len), Some(6));
    }

    /// A record of the shape its collection's last records had is indexed by where that
    /// shape has its indexed members; the entries are those found by name, and a record
    /// of another shape is indexed by name.
    #[test]
    fn records_of_the_usual_shape_are_indexed_by_position_as_by_name() {
        let mut p = IndexPlan::default();
        let (equal, sorted) = (
            IndexKind {
                equal: true,
                sorted: false,
            },
            IndexKind {
                equal: false,
                sorted: true,
            },
        );
        p.members.insert(
            "things".into(),
            [("status".into(), equal), ("size".into(), sorted)]
                .into_iter()
                .collect(),
        );
        let plan = Arc::new(p);
        let mut store = Store::new(plan.clone());
        let thing = |id: &str, status: &str, size: u64| {
            body(json!({"id": id, "size": size, "note": "n", "status": status}))
        };
        store
            .tenant("t")
            .insert("things", "a", thing("a", "new", 3), None);
        // Filed by its members, in the shape the first set.
        store
            .tenant("t")
            .insert("things", "b", thing("b", "old", 1), None);
        let sorted_entries = |e: &IndexEntries| {
            let mut v: Vec<_> = e
                .entries
                .iter()
                .map(|(m, t, k)| (m.to_string(), t.clone(), k.clone()))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let kinds = plan.members.get("things");
        for record in [
            thing("c", "new", 2),
            body(json!({"id": "d", "status": "new", "size": 5})),
        ] {
            let template = store.collection("t", "things").unwrap().template();
            let ready = Ready::new(&plan, "things", &template, &record, &[true; 4]);
            let by_name = IndexEntries::of(kinds, &record);
            assert_eq!(sorted_entries(&ready.entries), sorted_entries(&by_name));
            assert_eq!(ready.entries.names(), by_name.names());
        }
        let coll = store.collection("t", "things").unwrap();
        let status = coll.index("status").unwrap();
        let ids = |set: Option<&IdSet>| {
            coll.ids(set.unwrap())
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(status.equal_to("new")), ["a"]);
        assert_eq!(ids(status.equal_to("old")), ["b"]);
        assert_eq!(coll.index("size").unwrap().sorted_len(), 2);
    }

    #[test]
    fn records_committed_out_of_order_keep_creation_order_and_their_index_entries() {
        let mut store = Store::new(plan());
        let mut t = store.tenant("t");
        // Creates claim places 1..=3; the third commits before the second.
        let seqs = [t.reserve(), t.reserve(), t.reserve()];
        for (seq, id) in [(seqs[0], "a"), (seqs[2], "c"), (seqs[1], "b")] {
            let b = body(json!({"status": "new", "id": id}));
            t.put("things", id, &b, Meta::default(), None, seq);
        }
        let coll = store.collection("t", "things").unwrap();
        let order: Vec<&str> = coll.iter().map(|(id, _)| &**id).collect();
        assert_eq!(order, ["a", "b", "c"]);
        let set = coll.index("status").unwrap().equal_to("new").unwrap();
        let ids: Vec<&str> = coll.ids(set).map(|id| &**id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(coll.by_seq(seqs[1]).map(|(id, _)| &**id), Some("b"));
        // Stored again under another place, a record moves to it.
        let mut t = store.tenant("t");
        let later = t.reserve();
        let b = body(json!({"status": "new", "id": "a"}));
        t.put("things", "a", &b, Meta::default(), None, later);
        let coll = store.collection("t", "things").unwrap();
        let order: Vec<&str> = coll.iter().map(|(id, _)| &**id).collect();
        assert_eq!(order, ["b", "c", "a"]);
        let set = coll.index("status").unwrap().equal_to("new").unwrap();
        assert_eq!(
            coll.ids(set).map(|id| &**id).collect::<Vec<_>>(),
            ["b", "c", "a"]
        );
    }

    #[test]
    fn edits_move_records_between_index_entries() {
        let mut store = Store::new(plan());
        let mut t = store.tenant("t");
        t.insert("things", "a", body(json!({"status": "new"})), None);
        t.insert("things", "b", body(json!({"status": "new"})), None);
        t.edit("things", "a", |b, _| {
            b.insert("status".into(), json!("done"));
        });
        let coll = store.collection("t", "things").unwrap();
        let index = coll.index("status").unwrap();
        let ids = |v: &str| -> Vec<String> {
            index
                .equal_to(v)
                .map(|s| coll.ids(s).map(|i| i.to_string()).collect())
                .unwrap_or_default()
        };
        assert_eq!(ids("new"), ["b"]);
        assert_eq!(ids("done"), ["a"]);
        assert_eq!(coll.holding("status"), 2);
    }

    #[test]
    fn members_are_counted_across_shapes_edits_and_removals() {
        let mut store = Store::new(plan());
        let mut t = store.tenant("t");
        t.insert("things", "a", body(json!({"status": "new", "x": 1})), None);
        t.insert("things", "b", body(json!({"status": "new", "x": 2})), None);
        t.insert("things", "c", body(json!({"status": "new"})), None);
        t.insert("things", "d", body(json!({"x": 3, "status": "new"})), None);
        // An edit that keeps the members, one that drops one, one that adds one.
        t.edit("things", "a", |b, _| {
            b.insert("status".into(), json!("done"));
        });
        t.edit("things", "b", |b, _| {
            b.remove("x");
        });
        t.edit("things", "c", |b, _| {
            b.insert("y".into(), json!(true));
        });
        t.insert("things", "e", body(json!({"status": "new", "x": 5})), None);
        t.remove_cascade("things", "d");
        let coll = store.collection("t", "things").unwrap();
        assert_eq!(coll.holding("status"), 4);
        assert_eq!(coll.holding("x"), 2, "a and e");
        assert_eq!(coll.holding("y"), 1);
        assert_eq!(coll.holding("z"), 0);
    }

    #[test]
    fn removing_a_parent_removes_its_children_and_their_index_entries() {
        let mut store = Store::new(plan());
        let mut t = store.tenant("t");
        t.insert("owners", "o", Map::new(), None);
        let parent = ParentRef {
            resource: "owners".into(),
            id: "o".into(),
        };
        t.insert(
            "things",
            "c",
            body(json!({"status": "x"})),
            Some(parent.clone()),
        );
        t.remove_cascade("owners", "o");
        let coll = store.collection("t", "things").unwrap();
        assert!(coll.is_empty());
        assert!(coll.children(&parent).is_none());
        assert!(coll.index("status").unwrap().equal_to("x").is_none());
    }

    #[test]
    fn the_export_format_round_trips() {
        let mut store = Store::new(plan());
        store
            .tenant("t")
            .insert("things", "a", body(json!({"status": "new", "n": 1})), None);
        let text = serde_json::to_string(&store).unwrap();
        let mut back: Store = serde_json::from_str(&text).unwrap();
        back.reindex(plan());
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(
            back.get("t", "things", "a").unwrap().body.map(),
            body(json!({"status": "new", "n": 1}))
        );
    }
}
