//! Identifiers minted from the seeded RNG, so the same seed yields the same ids.

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

/// KSUID epoch offset: KSUID timestamps count seconds from 2014-05-13T16:53:20Z.
const KSUID_EPOCH: i64 = 1_400_000_000;

/// A KSUID (27 base62 characters) whose time part is `unix_seconds`.
pub fn ksuid(rng: &mut ChaCha8Rng, unix_seconds: i64) -> String {
    let mut payload = [0u8; 16];
    rng.fill(&mut payload);
    let ts = u32::try_from((unix_seconds - KSUID_EPOCH).max(0)).unwrap_or(u32::MAX);
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&ts.to_be_bytes());
    bytes[4..].copy_from_slice(&payload);
    base62(&bytes)
}

/// A KSUID's 20 bytes in its 27 base62 characters, zero-padded: the fixed-width long
/// division of the reference implementation (segmentio/ksuid), on five 32-bit words, taking
/// five digits per pass (62^5 fits in 32 bits): six passes over the words rather than 27.
/// The general big-number conversion `svix_ksuid` formats with cost more than the rest of
/// minting an id, which happens for every record made and every event.
fn base62(bytes: &[u8; 20]) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const FIVE: u64 = 62 * 62 * 62 * 62 * 62;
    let mut words = [0u32; 5];
    for (w, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *w = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    // 30 digits, of which the first three are always 0 (62^27 > 2^160).
    let mut out = [b'0'; 30];
    for five in out.chunks_exact_mut(5).rev() {
        let mut rem = 0u64;
        for w in &mut words {
            let acc = (rem << 32) | u64::from(*w);
            // rem < FIVE < 2^30, so the quotient fits in 32 bits.
            *w = (acc / FIVE) as u32;
            rem = acc % FIVE;
        }
        for slot in five.iter_mut().rev() {
            *slot = DIGITS[(rem % 62) as usize];
            rem /= 62;
        }
    }
    out[3..].iter().map(|&b| char::from(b)).collect()
}

/// A version-4 UUID in its canonical hyphenated form, from the seeded stream.
pub fn uuid(rng: &mut ChaCha8Rng) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b);
    uuid_from_bytes(b)
}

/// A UUID that always comes out the same for `name` (to name a derived thing stably).
pub fn uuid_from(name: &str) -> String {
    use rand::SeedableRng;
    let mut rng = ChaCha8Rng::seed_from_u64(super::seed::stable_hash(name));
    uuid(&mut rng)
}

/// Formats 16 random bytes as a version-4 UUID.
pub fn uuid_from_bytes(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An id that carries its own time, as a `pattern` describes it: a literal prefix (`req_`),
/// then a KSUID or a ULID.
pub struct TimeOrdered<'p> {
    prefix: &'p str,
    kind: Kind,
}

enum Kind {
    Ksuid,
    /// In upper case (as the ULID specification writes them) or lower.
    Ulid {
        lower: bool,
    },
}

impl<'p> TimeOrdered<'p> {
    /// The time-ordered id `pattern` describes: a KSUID (27 base62 characters, the class
    /// spelled any way) or a ULID (26 Crockford base32 characters, in either case) after a
    /// literal prefix. `None` for any other pattern.
    pub fn of(pattern: &'p str) -> Option<Self> {
        let p = pattern.strip_prefix('^').unwrap_or(pattern);
        let p = p.strip_suffix('$').unwrap_or(p);
        let (prefix, class) = p.split_at(p.find('[')?);
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return None;
        }
        let kind = match class {
            "[0-9A-Za-z]{27}" | "[A-Za-z0-9]{27}" | "[a-zA-Z0-9]{27}" | "[0-9a-zA-Z]{27}" => {
                Kind::Ksuid
            }
            "[0-9A-HJKMNP-TV-Z]{26}" => Kind::Ulid { lower: false },
            "[0-9a-hjkmnp-tv-z]{26}" => Kind::Ulid { lower: true },
            _ => return None,
        };
        Some(Self { prefix, kind })
    }

    /// A new id of this shape, made at `unix_ms`: ids minted later sort later, as the real
    /// APIs' do.
    pub fn mint(&self, rng: &mut ChaCha8Rng, unix_ms: i64) -> String {
        let id = match self.kind {
            Kind::Ksuid => ksuid(rng, unix_ms.div_euclid(1000)),
            Kind::Ulid { lower } => {
                let ms = u64::try_from(unix_ms).unwrap_or(0);
                let id = ulid::Ulid::from_parts(ms, rng.random::<u128>()).to_string();
                if lower { id.to_ascii_lowercase() } else { id }
            }
        };
        format!("{}{id}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ids_are_well_formed_and_seeded() {
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        let k = ksuid(&mut a, 1_750_000_000);
        assert_eq!(k, ksuid(&mut b, 1_750_000_000));
        assert!(crate::schema::formats::is_ksuid(&k), "{k}");
        let u = uuid(&mut a);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    /// KSUIDs and ULIDs, bare or after a prefix, fit their pattern and carry their time:
    /// ids minted later sort later. Other patterns are not taken for either.
    #[test]
    fn time_ordered_ids_fit_their_pattern_and_sort_by_time() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for pattern in [
            "^req_[0-9a-hjkmnp-tv-z]{26}$",
            "^[0-9A-HJKMNP-TV-Z]{26}$",
            "^cus_[0-9A-Za-z]{27}$",
            "^[a-zA-Z0-9]{27}$",
        ] {
            let re = regex::Regex::new(pattern).expect("a regex");
            let shape = TimeOrdered::of(pattern).expect("a time-ordered id");
            let earlier = shape.mint(&mut rng, 1_750_000_000_000);
            let later = shape.mint(&mut rng, 1_750_000_005_000);
            assert!(
                re.is_match(&earlier) && re.is_match(&later),
                "{earlier} {later}"
            );
            assert!(earlier < later, "{pattern}: {earlier} !< {later}");
        }
        let shape = TimeOrdered::of("^le_[0-9a-hjkmnp-tv-z]{26}$").expect("a ULID");
        let id = shape.mint(&mut rng, 1_750_000_000_000);
        let decoded = ulid::Ulid::from_string(&id[3..].to_ascii_uppercase()).expect("a ULID");
        assert_eq!(decoded.timestamp_ms(), 1_750_000_000_000);
        for other in [
            "^[0-9a-f]{26}$",
            "^req_[0-9a-z]{26}",
            "^a.b[0-9A-Za-z]{27}$",
            "[0-9A-Z]{26}",
        ] {
            assert!(TimeOrdered::of(other).is_none(), "{other}");
        }
    }

    #[test]
    fn ksuids_read_as_the_reference_writes_them() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for t in [
            KSUID_EPOCH,
            1_750_000_000,
            KSUID_EPOCH + i64::from(u32::MAX),
        ] {
            for _ in 0..200 {
                let mut payload = [0u8; 16];
                rng.fill(&mut payload);
                let mut bytes = [0u8; 20];
                let ts = u32::try_from(t - KSUID_EPOCH).unwrap_or(u32::MAX);
                bytes[..4].copy_from_slice(&ts.to_be_bytes());
                bytes[4..].copy_from_slice(&payload);
                let reference = svix_ksuid::Ksuid::new_raw(ts, Some(&payload)).to_string();
                assert_eq!(base62(&bytes), reference);
            }
        }
        assert_eq!(base62(&[0; 20]), "0".repeat(27));
        assert_eq!(base62(&[0xff; 20]), "aWgEPTl1tmebfsQzFP4bxwgy80V");
    }
}
