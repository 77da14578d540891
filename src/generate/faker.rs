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

/// What a property's name says its strings look like.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Email,
    FirstName,
    LastName,
    Username,
    Company,
    FullName,
    Phone,
    Secondary,
    Street,
    City,
    State,
    Zip,
    /// A country; `code` when the name ends in "code".
    Country {
        code: bool,
    },
    Currency,
    Url,
    Ip,
    Sentence,
    Title,
    Slogan,
    Timezone,
    Language,
    Token,
    Nothing,
}

/// Reads a (normalised) property name: the first rule that matches wins.
fn classify(n: &str) -> Kind {
    let has = |parts: &[&str]| parts.iter().any(|p| n.contains(p));
    let is = |parts: &[&str]| parts.contains(&n);
    if has(&["email"]) {
        Kind::Email
    } else if has(&["firstname", "givenname"]) {
        Kind::FirstName
    } else if has(&["lastname", "surname", "familyname"]) {
        Kind::LastName
    } else if is(&["username", "login", "handle"]) {
        Kind::Username
    } else if has(&[
        "company",
        "business",
        "legalname",
        "organization",
        "organisation",
        "merchant",
    ]) {
        Kind::Company
    } else if is(&[
        "name",
        "fullname",
        "displayname",
        "contactname",
        "holdername",
        "accountholdername",
    ]) {
        Kind::FullName
    } else if has(&["phone", "mobile", "telephone"]) {
        Kind::Phone
    } else if has(&["line2", "address2", "secondary", "suite", "unit"]) {
        Kind::Secondary
    } else if has(&["street", "line1", "address1", "addressline"]) || is(&["address"]) {
        Kind::Street
    } else if is(&["city", "town", "locality"]) {
        Kind::City
    } else if is(&["state", "province", "region", "county"]) {
        Kind::State
    } else if has(&["postalcode", "postcode", "zip"]) {
        Kind::Zip
    } else if has(&["country"]) {
        Kind::Country {
            code: n.ends_with("code"),
        }
    } else if has(&["currency"]) {
        Kind::Currency
    } else if has(&[
        "url", "uri", "website", "homepage", "link", "endpoint", "callback",
    ]) {
        Kind::Url
    } else if is(&["ip", "ipaddress", "ipv4"]) {
        Kind::Ip
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
        Kind::Sentence
    } else if is(&["title", "label", "headline"]) {
        Kind::Title
    } else if has(&["slogan", "tagline"]) {
        Kind::Slogan
    } else if has(&["timezone"]) {
        Kind::Timezone
    } else if is(&["language", "locale", "lang"]) {
        Kind::Language
    } else if has(&["token", "secret", "apikey", "signature", "hash"]) {
        Kind::Token
    } else {
        Kind::Nothing
    }
}

/// Names read so far on this thread: a spec has a bounded set of property names, and
/// reading one runs some fifty substring searches.
const KNOWN_NAMES: usize = 4096;

/// What `name` says, read once per thread.
fn kind_of(name: &str) -> Kind {
    thread_local! {
        static KINDS: std::cell::RefCell<rustc_hash::FxHashMap<Box<str>, Kind>> =
            std::cell::RefCell::default();
    }
    KINDS.with_borrow_mut(|kinds| {
        if let Some(kind) = kinds.get(name) {
            return *kind;
        }
        let kind = classify(&normalise(name));
        if kinds.len() < KNOWN_NAMES {
            kinds.insert(name.into(), kind);
        }
        kind
    })
}

/// A string that suits a property called `name`, or `None` when the name says nothing.
pub fn by_property_name(
    name: &str,
    max_len: Option<usize>,
    rng: &mut ChaCha8Rng,
) -> Option<String> {
    let s: String = match kind_of(name) {
        Kind::Email => SafeEmail().fake_with_rng(rng),
        Kind::FirstName => FirstName().fake_with_rng(rng),
        Kind::LastName => LastName().fake_with_rng(rng),
        Kind::Username => Username().fake_with_rng(rng),
        Kind::Company => CompanyName().fake_with_rng(rng),
        Kind::FullName => Name().fake_with_rng(rng),
        Kind::Phone => format!("+1{}", rng.random_range(2_000_000_000u64..9_999_999_999)),
        Kind::Secondary => SecondaryAddress().fake_with_rng(rng),
        Kind::Street => format!(
            "{} {}",
            BuildingNumber().fake_with_rng::<String, _>(rng),
            StreetName().fake_with_rng::<String, _>(rng)
        ),
        Kind::City => CityName().fake_with_rng(rng),
        Kind::State => StateName().fake_with_rng(rng),
        Kind::Zip => ZipCode().fake_with_rng(rng),
        Kind::Country { code } => match max_len {
            Some(2) => "US".into(),
            Some(3) => "USA".into(),
            _ if code => "US".into(),
            _ => CountryName().fake_with_rng(rng),
        },
        Kind::Currency => "USD".into(),
        Kind::Url => format!(
            "https://{}.example.com/{}",
            Word().fake_with_rng::<String, _>(rng),
            Word().fake_with_rng::<String, _>(rng)
        ),
        Kind::Ip => IPv4().fake_with_rng(rng),
        Kind::Sentence => Sentence(3..8).fake_with_rng(rng),
        Kind::Title => {
            let words: Vec<String> = Words(2..4).fake_with_rng(rng);
            words.join(" ")
        }
        Kind::Slogan => CatchPhrase().fake_with_rng(rng),
        Kind::Timezone => "UTC".into(),
        Kind::Language => "en".into(),
        Kind::Token => alphanumeric(32, rng),
        Kind::Nothing => return None,
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
