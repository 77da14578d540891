//! Idempotency keys, in the header the spec declares (`x-idempotency-key`,
//! `Idempotency-Key`, ...): the first request with a key executes and its answer is kept;
//! a retry with the same request gets that answer again; the same key with a different
//! request is a conflict. Concurrent requests with one key wait for the first, so the work
//! happens once.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::compiled::Prepared;

/// What a key is bound to once its first request has completed.
#[derive(Debug, Clone)]
pub struct Saved {
    pub fingerprint: u64,
    pub response: Arc<Prepared>,
}

pub type Slot = Arc<tokio::sync::Mutex<Option<Saved>>>;

#[derive(Debug, Default)]
pub struct Idempotency {
    slots: Mutex<HashMap<(String, String), Slot>>,
}

impl Idempotency {
    /// The slot for `(tenant, key)`; lock it for the duration of the request.
    pub fn slot(&self, tenant: &str, key: &str) -> Slot {
        let mut slots = self.slots.lock();
        slots
            .entry((tenant.to_owned(), key.to_owned()))
            .or_default()
            .clone()
    }

    pub fn clear(&self, tenant: Option<&str>) {
        let mut slots = self.slots.lock();
        match tenant {
            Some(t) => slots.retain(|(owner, _), _| owner != t),
            None => slots.clear(),
        }
    }
}

/// A stable fingerprint of what makes two requests "the same".
pub fn fingerprint(method: &str, path: &str, query: Option<&str>, body: &[u8]) -> u64 {
    let mut h = crate::generate::stable_hash(method);
    for part in [path.as_bytes(), query.unwrap_or("").as_bytes(), body] {
        h = h.rotate_left(17)
            ^ part.iter().fold(0xcbf2_9ce4_8422_2325_u64, |a, b| {
                (a ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            });
    }
    h
}
