//! The hash maps and sets the engine looks things up in on every request (routes, schema
//! pointers, validators, tenants' keys): foldhash, seeded per map, in place of std's SipHash,
//! which cost about 2% of a create's instructions in these lookups alone. Keys may come from
//! clients (tenants, idempotency keys), so the seed stays random.

pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
