//! Stable seeds: every generated value is drawn from a generator seeded with the global
//! `--seed` and a key naming what is generated, so the same seed gives the same data.

/// Stable 64-bit FNV-1a, used to derive per-key seeds (`DefaultHasher` is not stable).
pub fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
