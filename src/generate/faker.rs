//! Realistic strings chosen by property name: a `name` looks like a name, an `email` like an
//! email, a `city` like a city. Only consulted when the schema itself (enum, format, pattern)
//! says nothing more specific.

use fake::Fake;
use fake::faker::address::en::{
    BuildingNumber, CityName, CountryName, SecondaryAddress, StateName, StreetName, ZipCode,
};
use fake::faker::company::en::{CatchPhrase, CompanyName};
use fake::faker::internet::en::{IPv4, SafeEmail, Username};
use fake::faker::lorem::en::{Sentence, Word, Words};
use fake::faker::name::en::{FirstName, LastName, Name};
use rand::RngExt;
use rand::rngs::ChaCha8Rng;

/// Lower-cases and strips separators so `first_name`, `firstName` and `first-name` agree.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A string that suits a property called `name`, or `None` when the name says nothing.
pub fn by_property_name(
    name: &str,
    max_len: Option<usize>,
    rng: &mut ChaCha8Rng,
) -> Option<String> {
    let n = normalise(name);
    let has = |parts: &[&str]| parts.iter().any(|p| n.contains(p));
    let is = |parts: &[&str]| parts.iter().any(|p| n == *p);
    let s: String = if has(&["email"]) {
        SafeEmail().fake_with_rng(rng)
    } else if has(&["firstname", "givenname"]) {
        FirstName().fake_with_rng(rng)
    } else if has(&["lastname", "surname", "familyname"]) {
        LastName().fake_with_rng(rng)
    } else if is(&["username", "login", "handle"]) {
        Username().fake_with_rng(rng)
    } else if has(&[
        "company",
        "business",
        "legalname",
        "organization",
        "organisation",
        "merchant",
    ]) {
        CompanyName().fake_with_rng(rng)
    } else if is(&[
        "name",
        "fullname",
        "displayname",
        "contactname",
        "holdername",
        "accountholdername",
    ]) {
        Name().fake_with_rng(rng)
    } else if has(&["phone", "mobile", "telephone"]) {
        format!("+1{}", rng.random_range(2_000_000_000u64..9_999_999_999))
    } else if has(&["line2", "address2", "secondary", "suite", "unit"]) {
        SecondaryAddress().fake_with_rng(rng)
    } else if has(&["street", "line1", "address1", "addressline"]) || is(&["address"]) {
        format!(
            "{} {}",
            BuildingNumber().fake_with_rng::<String, _>(rng),
            StreetName().fake_with_rng::<String, _>(rng)
        )
    } else if is(&["city", "town", "locality"]) {
        CityName().fake_with_rng(rng)
    } else if is(&["state", "province", "region", "county"]) {
        StateName().fake_with_rng(rng)
    } else if has(&["postalcode", "postcode", "zip"]) {
        ZipCode().fake_with_rng(rng)
    } else if has(&["country"]) {
        match max_len {
            Some(2) => "US".into(),
            Some(3) => "USA".into(),
            _ if n.ends_with("code") => "US".into(),
            _ => CountryName().fake_with_rng(rng),
        }
    } else if has(&["currency"]) {
        "USD".into()
    } else if has(&[
        "url", "uri", "website", "homepage", "link", "endpoint", "callback",
    ]) {
        format!(
            "https://{}.example.com/{}",
            Word().fake_with_rng::<String, _>(rng),
            Word().fake_with_rng::<String, _>(rng)
        )
    } else if is(&["ip", "ipaddress", "ipv4"]) {
        IPv4().fake_with_rng(rng)
    } else if has(&[
        "description",
        "note",
        "comment",
        "memo",
        "reason",
        "message",
        "summary",
        "detail",
    ]) {
        Sentence(3..8).fake_with_rng(rng)
    } else if is(&["title", "label", "headline"]) {
        let words: Vec<String> = Words(2..4).fake_with_rng(rng);
        words.join(" ")
    } else if has(&["slogan", "tagline"]) {
        CatchPhrase().fake_with_rng(rng)
    } else if has(&["timezone"]) {
        "UTC".into()
    } else if is(&["language", "locale", "lang"]) {
        "en".into()
    } else if has(&["token", "secret", "apikey", "signature", "hash"]) {
        alphanumeric(32, rng)
    } else {
        return None;
    };
    Some(s)
}

/// A random string of ASCII letters and digits.
pub fn alphanumeric(len: usize, rng: &mut ChaCha8Rng) -> String {
    const CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// A plain word, for strings nothing else applies to.
pub fn word(rng: &mut ChaCha8Rng) -> String {
    Word().fake_with_rng(rng)
}

/// A few words joined by spaces.
pub fn words(rng: &mut ChaCha8Rng) -> String {
    let words: Vec<String> = Words(1..4).fake_with_rng(rng);
    words.join(" ")
}
