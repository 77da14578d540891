//! A record's body: its members as compact JSON text, kept packed.
//!
//! Records of one collection mostly share their text: the same member names in the same
//! order, the same generated values (links, statuses, example URLs), differing in ids,
//! names and times. So a stored body is LZ4-compressed against a *dictionary*: the text of
//! an earlier body of its collection ([`Packer`]). A Dakota customer of about 900 bytes
//! packs into about 80, unpacks in well under a microsecond, and packs in about one.
//! Bodies are immutable and cloning one shares its bytes, so the store, the events a change
//! records and an idempotent replay all hold one copy.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A record's members as compact JSON text. Cloning shares the bytes.
#[derive(Clone)]
pub struct Body(Text);

#[derive(Clone)]
enum Text {
    /// The text itself (small bodies, and bodies not stored yet).
    Whole(Bytes),
    /// The text compressed against `dict`; `data` starts with the text's length.
    Packed { data: Box<[u8]>, dict: Arc<Dict> },
}

/// Text that bodies are compressed against (shared by every body packed with it, and freed
/// with the last of them).
pub struct Dict(Box<[u8]>);

impl Dict {
    /// The dictionary's size: about the size of a body of its collection, as a guess at
    /// the next one's.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Below this size packing saves less than it costs.
const PACK_MIN: usize = 64;
/// The most of a body's text a dictionary takes: compressing reads the whole dictionary
/// first, so a longer one makes every write slower.
const DICT_MAX: usize = 4096;

impl Body {
    pub fn new(members: &Map<String, Value>) -> Self {
        Self::from_json(crate::compiled::prepared::json_bytes(members))
    }

    /// Bytes known to be a JSON object (read back from the store's own output).
    pub fn from_json(bytes: Bytes) -> Self {
        Self(Text::Whole(bytes))
    }

    /// Text lying in a larger buffer (a state file read at start), left there until it is
    /// packed; a text too small to be packed is copied out, so that nothing keeps the
    /// buffer alive once the rest is packed.
    pub fn in_buffer(text: Bytes) -> Self {
        if text.len() < PACK_MIN {
            return Self::from_json(Bytes::copy_from_slice(&text));
        }
        Self::from_json(text)
    }

    /// The members, parsed.
    pub fn map(&self) -> Map<String, Value> {
        serde_json::from_slice(&self.bytes()).unwrap_or_default()
    }

    /// One member, parsed with the rest of the body.
    pub fn get(&self, member: &str) -> Option<Value> {
        self.map().remove(member)
    }

    /// Whether `other` holds the same text (cheaply, when both were packed alike).
    pub fn same_text(&self, other: &Body) -> bool {
        match (&self.0, &other.0) {
            (Text::Whole(a), Text::Whole(b)) => a == b,
            (Text::Packed { data: a, dict: x }, Text::Packed { data: b, dict: y })
                if Arc::ptr_eq(x, y) =>
            {
                a == b
            }
            _ => self.bytes() == other.bytes(),
        }
    }

    /// The text, unpacked when it is packed.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match &self.0 {
            Text::Whole(b) => Cow::Borrowed(b),
            Text::Packed { data, dict } => Cow::Owned(unpack(data, dict)),
        }
    }

    /// Appends the text to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Text::Whole(b) => out.extend_from_slice(b),
            Text::Packed { .. } => out.extend_from_slice(&self.bytes()),
        }
    }

    /// The text as one buffer (shared, when it is whole).
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Text::Whole(b) => b.clone(),
            Text::Packed { .. } => Bytes::from(self.bytes().into_owned()),
        }
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Text::Whole(b) => b.len(),
            Text::Packed { data, .. } => lz4_flex::block::uncompressed_size(data)
                .map(|(n, _)| n)
                .unwrap_or_default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= 2
    }

    /// Whether the text is kept packed.
    pub fn is_packed(&self) -> bool {
        matches!(self.0, Text::Packed { .. })
    }

    /// Whether a [`Packer`] would pack the body (it is whole and not small).
    pub fn is_packable(&self) -> bool {
        matches!(&self.0, Text::Whole(b) if b.len() >= PACK_MIN)
    }
}

/// The text of `data`, packed against `dict`. The bytes were packed here, in this process:
/// failing to unpack them would be a bug, answered with an empty text rather than a crash.
fn unpack(data: &[u8], dict: &Dict) -> Vec<u8> {
    lz4_flex::block::decompress_size_prepended_with_dict(data, &dict.0).unwrap_or_else(|e| {
        tracing::error!("a stored body does not unpack: {e}");
        Vec::new()
    })
}

/// Packs the bodies of one collection, against the text of an earlier one: the first body
/// it sees, then each body that packs poorly against the current dictionary (a record of
/// another shape), so the dictionary follows what the collection holds. A body keeps the
/// dictionary it was packed with alive.
#[derive(Default)]
pub struct Packer {
    dict: Option<Arc<Dict>>,
}

/// Bodies up to this size are compressed into a buffer kept per thread (then copied out at
/// their exact size); larger ones into one of their own.
const SCRATCH_MAX: usize = 64 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl std::fmt::Debug for Packer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.dict.as_ref().map_or(0, |d| d.0.len());
        write!(f, "Packer {{ dict: {len} bytes }}")
    }
}

impl Packer {
    /// `body` as it is best kept: packed, unless it is small or packed already.
    pub fn pack(&mut self, body: Body) -> Body {
        match &body.0 {
            Text::Whole(text) if text.len() >= PACK_MIN => self.packed(text),
            _ => body,
        }
    }

    fn packed(&mut self, text: &[u8]) -> Body {
        if text.len() > SCRATCH_MAX {
            return self.packed_into(text, &mut Vec::new());
        }
        SCRATCH.with_borrow_mut(|scratch| self.packed_into(text, scratch))
    }

    /// Packs `text`, compressing into `scratch` (grown as needed).
    fn packed_into(&mut self, text: &[u8], scratch: &mut Vec<u8>) -> Body {
        if let Some(dict) = &self.dict
            && let Some(body) = packed_well(text, dict, scratch)
        {
            return body;
        }
        let dict = Arc::new(Dict(text[..text.len().min(DICT_MAX)].into()));
        let body = packed(text, &dict, scratch);
        self.dict = Some(dict);
        body.unwrap_or_else(|| Body::from_json(Bytes::copy_from_slice(text)))
    }

    /// The dictionary bodies are packed against now: a body packed with it before the store
    /// is locked ([`Body::packed_with`]) is kept as it is.
    pub fn dict(&self) -> Option<Arc<Dict>> {
        self.dict.clone()
    }
}

impl Body {
    /// This body packed against `dict`, when it packs well; else as it is (the collection's
    /// [`Packer`] then packs it, against a new dictionary). Needs nothing from the store, so
    /// a record drafted without the store's lock is packed there too.
    pub fn packed_with(self, dict: &Arc<Dict>) -> Body {
        match &self.0 {
            Text::Whole(text) if text.len() >= PACK_MIN && text.len() <= SCRATCH_MAX => SCRATCH
                .with_borrow_mut(|scratch| packed_well(text, dict, scratch))
                .unwrap_or(self),
            _ => self,
        }
    }
}

/// `text` compressed against `dict`, with its length first; `None` when it does not fit in
/// a `u32` or does not compress.
fn packed(text: &[u8], dict: &Arc<Dict>, scratch: &mut Vec<u8>) -> Option<Body> {
    let len = u32::try_from(text.len()).ok()?;
    let room = 4 + lz4_flex::block::get_maximum_output_size(text.len());
    if scratch.len() < room {
        scratch.resize(room, 0);
    }
    scratch[..4].copy_from_slice(&len.to_le_bytes());
    let n = lz4_flex::block::compress_into_with_dict(text, &mut scratch[4..], &dict.0).ok()?;
    Some(Body(Text::Packed {
        data: scratch[..4 + n].into(),
        dict: dict.clone(),
    }))
}

/// `text` packed against `dict` when that at least halves it (else the dictionary no
/// longer suits the collection's records).
fn packed_well(text: &[u8], dict: &Arc<Dict>, scratch: &mut Vec<u8>) -> Option<Body> {
    let body = packed(text, dict, scratch)?;
    match &body.0 {
        Text::Packed { data, .. } if data.len() * 2 <= text.len() => Some(body),
        _ => None,
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Body {}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.bytes()))
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = self.bytes();
        let text = std::str::from_utf8(&bytes).map_err(serde::ser::Error::custom)?;
        let raw: &RawValue = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let members = Map::<String, Value>::deserialize(d)?;
        Ok(Self::new(&members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn customer(i: usize) -> Body {
        let v = json!({
            "id": format!("cus_{i:08}"),
            "name": format!("Customer {i}"),
            "status": "active",
            "links": [{"url": "https://example.com/verify/abcdef", "status": "pending"}],
            "created_at": 1_700_000_000 + i,
        });
        Body::new(v.as_object().expect("object"))
    }

    /// Bodies of one shape pack to a fraction of their text against one dictionary, and
    /// unpack to exactly their text.
    #[test]
    fn bodies_of_one_shape_pack_small_and_read_back_exactly() {
        let mut packer = Packer::default();
        let bodies: Vec<Body> = (0..50).map(customer).collect();
        let packed: Vec<Body> = bodies.iter().map(|b| packer.pack(b.clone())).collect();
        for (plain, body) in bodies.iter().zip(&packed) {
            assert!(body.is_packed());
            assert_eq!(body.bytes(), plain.bytes());
            assert_eq!(body.len(), plain.len());
            assert_eq!(body.map(), plain.map());
            assert_eq!(body.to_bytes(), plain.to_bytes());
            let mut out = b"[".to_vec();
            body.write_to(&mut out);
            assert_eq!(&out[1..], &*plain.bytes());
        }
        let Text::Packed { data, dict } = &packed[49].0 else {
            unreachable!()
        };
        assert!(data.len() * 3 < bodies[49].len(), "{} bytes", data.len());
        // One dictionary serves them all.
        assert!(packed.iter().all(|b| matches!(&b.0,
            Text::Packed { dict: d, .. } if Arc::ptr_eq(d, dict))));
    }

    /// A body unlike the dictionary becomes the next dictionary; bodies packed before keep
    /// theirs and still read back.
    #[test]
    fn a_body_of_another_shape_starts_a_new_dictionary() {
        let mut packer = Packer::default();
        let first = packer.pack(customer(1));
        let v = json!({"kind": "transfer", "amount": {"value": "12.50", "currency": "USD"},
            "memo": "quarterly invoice settlement", "reference": "INV-2026-0042-XYZ"});
        let other = packer.pack(Body::new(v.as_object().expect("object")));
        let (Text::Packed { dict: a, .. }, Text::Packed { dict: b, .. }) = (&first.0, &other.0)
        else {
            panic!("both packed")
        };
        assert!(!Arc::ptr_eq(a, b));
        assert_eq!(first.map(), customer(1).map());
        assert_eq!(Value::Object(other.map()), v);
    }

    proptest::proptest! {
        /// Whatever a collection holds, in whatever order (shapes that come and go, so the
        /// dictionary changes), every body reads back as exactly its text.
        #[test]
        fn every_body_reads_back_exactly(
            objects in proptest::collection::vec(
                proptest::collection::btree_map("[a-e]{1,8}", "[ -~]{0,120}", 0..12),
                1..40,
            )
        ) {
            let mut packer = Packer::default();
            let plain: Vec<Body> = objects
                .iter()
                .map(|o| Body::new(&o.iter().map(|(k, v)| (k.clone(), json!(v))).collect()))
                .collect();
            let packed: Vec<Body> = plain.iter().map(|b| packer.pack(b.clone())).collect();
            for (p, b) in plain.iter().zip(&packed) {
                proptest::prop_assert_eq!(p.bytes(), b.bytes());
                proptest::prop_assert_eq!(p.len(), b.len());
            }
        }
    }

    /// A body too large for the per-thread buffer is packed in a buffer of its own and
    /// reads back exactly; the next body still packs against its dictionary.
    #[test]
    fn a_large_body_packs_and_reads_back() {
        let mut packer = Packer::default();
        let items: Vec<Value> = (0..3000)
            .map(|i| json!({"n": i, "label": format!("item {i}")}))
            .collect();
        let large = Body::new(json!({"items": items}).as_object().expect("object"));
        assert!(large.len() > SCRATCH_MAX);
        let packed = packer.pack(large.clone());
        assert!(packed.is_packed());
        assert_eq!(packed.bytes(), large.bytes());
        let after = packer.pack(customer(3));
        assert_eq!(after.map(), customer(3).map());
    }

    /// Small bodies stay whole; a packed body is not packed again.
    #[test]
    fn small_bodies_stay_whole() {
        let mut packer = Packer::default();
        let small = packer.pack(Body::new(json!({"id": "a"}).as_object().expect("object")));
        assert!(!small.is_packed());
        let packed = packer.pack(customer(2));
        let again = packer.pack(packed.clone());
        assert!(again.is_packed());
        assert_eq!(again, packed);
    }
}
