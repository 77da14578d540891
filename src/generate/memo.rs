//! Generated values that drew nothing from the stream, kept per schema node: most of a
//! real record is `example`s and `const`s, the same on every create, and building it again
//! walked the schema, looked up `$ref`s and checked each example against its keywords.
//!
//! A node's value depends only on the node, where it is generated (property name, depth,
//! `$ref`s being expanded, minimal mode), the direction, whether examples are used, and the
//! stream. When generating it drew no randomness, the same place gives the same value every
//! time, so it is kept; a node that did draw is remembered as such and generated each time.
//! Keys are verified in full on a hit (a hash collision cannot return another node's value).

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHasher};
use serde_json::Value;

use crate::schema::Direction;

/// Places a thread keeps at most before it starts over.
const MAX_ENTRIES: usize = 200_000;

/// Where a value is generated: the node (by its stable address) and its context.
pub(super) struct Place<'k> {
    pub node: usize,
    pub name: Option<&'k str>,
    pub depth: usize,
    pub refs: &'k [&'k str],
    pub minimal: bool,
    pub direction: Direction,
    pub examples: bool,
}

impl Place<'_> {
    fn hash(&self) -> u64 {
        let mut h = FxHasher::default();
        self.node.hash(&mut h);
        self.name.hash(&mut h);
        self.depth.hash(&mut h);
        self.refs.hash(&mut h);
        self.minimal.hash(&mut h);
        self.direction.hash(&mut h);
        self.examples.hash(&mut h);
        h.finish()
    }
}

/// A place as kept, owned.
struct Key {
    node: usize,
    name: Option<Box<str>>,
    depth: usize,
    refs: Box<[Box<str>]>,
    minimal: bool,
    direction: Direction,
    examples: bool,
}

impl Key {
    fn of(p: &Place<'_>) -> Self {
        Self {
            node: p.node,
            name: p.name.map(Into::into),
            depth: p.depth,
            refs: p.refs.iter().map(|r| (*r).into()).collect(),
            minimal: p.minimal,
            direction: p.direction,
            examples: p.examples,
        }
    }

    fn is(&self, p: &Place<'_>) -> bool {
        self.node == p.node
            && self.depth == p.depth
            && self.minimal == p.minimal
            && self.direction == p.direction
            && self.examples == p.examples
            && self.name.as_deref() == p.name
            && self.refs.len() == p.refs.len()
            && self.refs.iter().zip(p.refs).all(|(a, b)| &**a == *b)
    }
}

/// What is known of a place.
#[derive(Clone)]
pub(super) enum Known {
    /// Generating it draws from the stream.
    Drawn,
    /// Its value, always the same.
    Fixed(Arc<Value>),
    /// An object some of whose members draw: the members it has, in order, each with its
    /// value when that is always the same. Only the others are generated again.
    Members(Arc<[Slot]>),
}

/// One member of an object that [`Known::Members`] describes.
pub(super) struct Slot {
    /// The member's position among the schema's `properties`.
    pub index: usize,
    /// Its value, when generating it draws nothing.
    pub fixed: Option<Arc<Value>>,
}

/// Each thread's places, by (document, place hash). They live with the thread that
/// generated them: generation runs on every create, and a map shared between threads made
/// each of its many lookups contend for one lock.
type Places = FxHashMap<(u64, u64), Vec<(Key, Known)>>;

thread_local! {
    static PLACES: RefCell<Places> = RefCell::default();
}

/// What is known of `place` in document `doc` (a [`crate::spec::DocumentId`]), with its
/// hash (to keep what is learnt).
pub(super) fn look(doc: u64, place: &Place<'_>) -> (u64, Option<Known>) {
    let hash = place.hash();
    let known = PLACES.with_borrow(|places| {
        places
            .get(&(doc, hash))
            .and_then(|list| list.iter().find(|(k, _)| k.is(place)))
            .map(|(_, known)| known.clone())
    });
    (hash, known)
}

/// Keeps what generating `place` showed.
pub(super) fn keep(doc: u64, hash: u64, place: &Place<'_>, known: Known) {
    PLACES.with_borrow_mut(|places| {
        // Specs come and go in one process (tests, reloads): starting over bounds what
        // the places of specs gone by hold.
        if places.len() >= MAX_ENTRIES {
            places.clear();
        }
        let list = places.entry((doc, hash)).or_default();
        if !list.iter().any(|(k, _)| k.is(place)) {
            list.push((Key::of(place), known));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place<'k>(refs: &'k [&'k str], depth: usize) -> Place<'k> {
        Place {
            node: 0x1000,
            name: Some("status"),
            depth,
            refs,
            minimal: false,
            direction: Direction::Response,
            examples: true,
        }
    }

    #[test]
    fn a_value_is_found_only_at_the_place_it_was_kept() {
        let doc = u64::MAX - 1;
        let refs = ["#/components/schemas/A"];
        let here = place(&refs, 2);
        let (hash, known) = look(doc, &here);
        assert!(known.is_none());
        keep(
            doc,
            hash,
            &here,
            Known::Fixed(Arc::new(Value::from("active"))),
        );
        let same_refs = [String::from("#/components/schemas/A")];
        let same_refs: Vec<&str> = same_refs.iter().map(String::as_str).collect();
        match look(doc, &place(&same_refs, 2)).1 {
            Some(Known::Fixed(v)) => assert_eq!(*v, Value::from("active")),
            _ => panic!("the value kept at an equal place is found"),
        }
        assert!(look(doc, &place(&refs, 3)).1.is_none(), "another depth");
        assert!(look(doc, &place(&[], 2)).1.is_none(), "other refs");
        assert!(look(doc + 1, &here).1.is_none(), "another document");
        let drawn = place(&refs, 4);
        keep(doc, drawn.hash(), &drawn, Known::Drawn);
        assert!(matches!(look(doc, &drawn).1, Some(Known::Drawn)));
    }
}
