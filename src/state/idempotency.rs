//! Idempotency keys, in the header the spec declares (`x-idempotency-key`,
//! `Idempotency-Key`, ...): the first request with a key executes and its answer is kept;
//! a retry with the same request gets that answer again; the same key with a different
//! request is a conflict. Concurrent requests with one key wait for the first, so the work
//! happens once.
//!
//! Keys are remembered for a window: `ttl` virtual seconds (a day by default, as payment APIs
//! keep them) and at most `max_keys` per tenant, oldest forgotten first, so a load test with
//! a fresh key per request does not grow memory without bound.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use super::call::Snapshot;
use crate::compiled::Prepared;
use crate::hashing::HashMap;

/// Seconds a key is remembered, unless configured otherwise.
pub const DEFAULT_TTL: f64 = 24.0 * 3600.0;
/// Keys remembered per tenant, unless configured otherwise.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// What a key is bound to once its first request has completed.
#[derive(Debug, Clone)]
pub struct Saved {
    pub fingerprint: u64,
    pub response: Kept,
}

/// The first answer, as kept: its bytes, or the record it showed (shared with the store),
/// from which the same bytes are rendered again.
#[derive(Debug, Clone)]
pub enum Kept {
    Bytes(Arc<Prepared>),
    Shown(Snapshot),
}

/// A key's state.
#[derive(Debug)]
enum Entry {
    /// Its first request is executing; others wait on this lock.
    Running(Arc<tokio::sync::Mutex<()>>),
    Done(Saved),
}

#[derive(Debug, Default)]
struct Keys {
    entries: HashMap<Arc<str>, Entry>,
    /// Keys in the order they completed, with when: the window forgets from the front.
    order: VecDeque<(f64, Arc<str>)>,
}

/// What to do with a request that carries a key.
pub enum Begin {
    /// The first of its key: execute it, then [`Run::finish`].
    Run(Run),
    /// The same request again: answer what the first one answered.
    Replay(Kept),
    /// The key was used with a different request.
    Conflict,
    /// The first request with this key is still executing: wait on it, then begin again.
    Wait(Arc<tokio::sync::Mutex<()>>),
}

/// The right to execute the first request with a key; dropping it without finishing lets
/// the next request with the key execute instead.
pub struct Run {
    tenant: String,
    key: Arc<str>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

#[derive(Debug)]
pub struct Idempotency {
    tenants: Mutex<HashMap<String, Keys>>,
    /// Seconds a completed key is remembered.
    pub ttl: f64,
    /// Completed keys remembered per tenant.
    pub max_keys: usize,
}

impl Default for Idempotency {
    fn default() -> Self {
        Self {
            tenants: Mutex::new(HashMap::default()),
            ttl: DEFAULT_TTL,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

impl Idempotency {
    /// Starts a request carrying `key` whose request fingerprint is `fingerprint`.
    pub fn begin(&self, tenant: &str, key: &str, fingerprint: u64, now: f64) -> Begin {
        let mut tenants = self.tenants.lock();
        let keys = tenants.entry(tenant.to_owned()).or_default();
        self.forget_old(keys, now);
        match keys.entries.get(key) {
            Some(Entry::Done(s)) if s.fingerprint == fingerprint => {
                Begin::Replay(s.response.clone())
            }
            Some(Entry::Done(_)) => Begin::Conflict,
            // Its first request went away without an answer (the client hung up): this one
            // runs instead.
            Some(Entry::Running(lock)) => match lock.clone().try_lock_owned() {
                Ok(guard) => Begin::Run(Run {
                    tenant: tenant.to_owned(),
                    key: Arc::from(key),
                    _guard: guard,
                }),
                Err(_) => Begin::Wait(lock.clone()),
            },
            None => {
                let lock = Arc::new(tokio::sync::Mutex::new(()));
                let Ok(guard) = lock.clone().try_lock_owned() else {
                    return Begin::Wait(lock);
                };
                let key: Arc<str> = Arc::from(key);
                keys.entries.insert(key.clone(), Entry::Running(lock));
                Begin::Run(Run {
                    tenant: tenant.to_owned(),
                    key,
                    _guard: guard,
                })
            }
        }
    }

    /// The first request's answer: kept (unless it is `None`, a server error that a retry
    /// should run again), and the waiting requests released.
    pub fn finish(&self, run: Run, saved: Option<Saved>, now: f64) {
        let mut tenants = self.tenants.lock();
        let keys = tenants.entry(run.tenant.clone()).or_default();
        match saved {
            Some(s) => {
                keys.entries.insert(run.key.clone(), Entry::Done(s));
                keys.order.push_back((now, run.key.clone()));
            }
            None => {
                keys.entries.remove(&run.key);
            }
        }
        self.forget_old(keys, now);
    }

    /// Forgets completed keys past the window.
    fn forget_old(&self, keys: &mut Keys, now: f64) {
        while let Some((at, key)) = keys.order.front() {
            let expired = now - at > self.ttl || keys.order.len() > self.max_keys;
            if !expired {
                break;
            }
            if matches!(keys.entries.get(key), Some(Entry::Done(_))) {
                keys.entries.remove(key);
            }
            keys.order.pop_front();
        }
    }

    /// How many keys are remembered (all tenants).
    pub fn len(&self) -> usize {
        self.tenants.lock().values().map(|k| k.entries.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self, tenant: Option<&str>) {
        let mut tenants = self.tenants.lock();
        match tenant {
            Some(t) => {
                tenants.remove(t);
            }
            None => tenants.clear(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(fingerprint: u64) -> Option<Saved> {
        Some(Saved {
            fingerprint,
            response: Kept::Bytes(Arc::new(Prepared::json(
                201,
                "application/json",
                &serde_json::json!({}),
            ))),
        })
    }

    #[test]
    fn a_key_replays_conflicts_and_is_forgotten_after_its_window() {
        let idem = Idempotency {
            ttl: 10.0,
            max_keys: 2,
            ..Idempotency::default()
        };
        let Begin::Run(run) = idem.begin("t", "k1", 1, 0.0) else {
            panic!("first use runs")
        };
        assert!(matches!(idem.begin("t", "k1", 1, 0.0), Begin::Wait(_)));
        idem.finish(run, saved(1), 0.0);
        assert!(matches!(idem.begin("t", "k1", 1, 5.0), Begin::Replay(_)));
        assert!(matches!(idem.begin("t", "k1", 2, 5.0), Begin::Conflict));
        // Past the window, the key is new again.
        assert!(matches!(idem.begin("t", "k1", 2, 11.0), Begin::Run(_)));
        // At most two completed keys per tenant.
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            let Begin::Run(run) = idem.begin("u", k, 1, 20.0) else {
                panic!("new key {k}")
            };
            idem.finish(run, saved(1), 20.0 + i as f64);
        }
        assert!(matches!(idem.begin("u", "a", 1, 23.0), Begin::Run(_)));
        assert!(matches!(idem.begin("u", "c", 1, 23.0), Begin::Replay(_)));
    }
}
