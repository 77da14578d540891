//! Stable seeds: every generated value is drawn from a generator seeded with the global
//! `--seed` and a key naming what is generated, so the same seed gives the same data.

/// Stable 64-bit FNV-1a, used to derive per-key seeds (`DefaultHasher` is not stable).
pub fn stable_hash(s: &str) -> u64 {
    let mut h = StableHasher::default();
    h.add(s);
    h.finish()
}

/// [`stable_hash`] of a key written in pieces (`write!`), the same as of the whole text,
/// without the text being collected first (a key made per record made).
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl StableHasher {
    fn add(&mut self, s: &str) {
        self.0 = s.bytes().fold(self.0, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl std::fmt::Write for StableHasher {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.add(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::*;

    #[test]
    fn a_key_written_in_pieces_hashes_as_the_whole_text() {
        let (team, at, seq) = ("team", 1_765_000_000.25_f64, 7);
        let mut h = StableHasher::default();
        let _ = write!(h, "related {team}/{at}/{seq}");
        assert_eq!(h.finish(), stable_hash("related team/1765000000.25/7"));
        assert_ne!(h.finish(), stable_hash("related team/1765000000.25/8"));
        // FNV-1a's published value for "a".
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
