//! Value expressions in profiles: how `derive`, effects and related creates say what a
//! server-set member holds. A string starting with `$` is a whole value; a string with
//! `{...}` parts is a template whose parts are expressions; anything else is literal.
//!
//! | expression | value |
//! |---|---|
//! | `$now`, `$now+30d` | the time (plus `s`/`m`/`h`/`d`), in the member's own format |
//! | `$now_s`, `$now_ms`, `$now_ns` (`+30d`) | integer time in that unit |
//! | `$ksuid`, `$uuid` | a fresh id |
//! | `$token` | a 32-character secret; `$hex:40`, `$digits:9` random text of that length |
//! | `$generate` | a value generated from the member's schema |
//! | `$id` | this record's id |
//! | `$from`, `$to` | the states of the transition being applied |
//! | `$tenant` | the tenant (the credential it acts for, or its named part) |
//! | `$member`, `$member.field` | a member of this record; `.field` reads the record it references, or into an object member (`$intent.operation.amount`) |
//! | `{member\|last:4}`, `{member\|first:12}` | in templates: the last 4 or first 12 characters |
//! | `{member\|hex:24}` | in templates: 24 hex digits digested from the text (the same text always gives the same digits: an organisation id for a tenant) |
//!
//! Random values are drawn from the generator seeded for the record, so a `--seed` fixes them.

use rand::RngExt;
use rand::rngs::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::generate::ids;

/// What an expression can read.
pub struct Scope<'a> {
    pub record: &'a Map<String, Value>,
    pub id: &'a str,
    pub tenant: &'a str,
    pub now: f64,
    pub transition: Option<(&'a str, &'a str)>,
    /// `$member.field`: the referenced record's member.
    pub lookup: &'a dyn Fn(&str, &str) -> Option<Value>,
    /// `$now` for a member: its schema decides integer or RFC 3339.
    pub time: &'a dyn Fn(&str, i64) -> Value,
    /// `$generate` for a member.
    pub generate: &'a dyn Fn(&str) -> Option<Value>,
}

/// Evaluates `expr` as the value of `member`.
pub fn eval(expr: &Value, member: &str, scope: &Scope, rng: &mut ChaCha8Rng) -> Value {
    match expr {
        Value::String(s) if s.starts_with('$') => whole(s, member, scope, rng),
        Value::String(s) if s.contains('{') => Value::String(template(s, member, scope, rng)),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), eval(v, k, scope, rng)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| eval(v, member, scope, rng)).collect()),
        other => other.clone(),
    }
}

fn whole(s: &str, member: &str, scope: &Scope, rng: &mut ChaCha8Rng) -> Value {
    let body = &s[1..];
    if let Some(rest) = body.strip_prefix("now") {
        let (unit, offset) = match rest.split_once('+') {
            Some((u, o)) => (u, duration(o.trim())),
            None => (rest, 0.0),
        };
        let at = scope.now + offset;
        return match unit.trim() {
            "_s" => json!(at.floor() as i64),
            "_ms" => json!((at * 1e3).floor() as i64),
            "_ns" => json!((at * 1e3).floor() as i64 * 1_000_000),
            _ => (scope.time)(member, at.floor() as i64),
        };
    }
    let (name, arg) = match body.split_once(':') {
        Some((n, a)) => (n, a.parse::<usize>().unwrap_or(16)),
        None => (body, 16),
    };
    match name {
        "ksuid" => json!(ids::ksuid(rng, scope.now.floor() as i64)),
        "uuid" => json!(ids::uuid(rng)),
        "token" => json!(random_text(rng, ALNUM, 32)),
        "hex" => json!(random_text(rng, b"0123456789abcdef", arg)),
        "digits" => json!(random_text(rng, b"0123456789", arg)),
        "generate" => (scope.generate)(member).unwrap_or(Value::Null),
        "id" => json!(scope.id),
        "tenant" => json!(scope.tenant),
        "from" => scope.transition.map_or(Value::Null, |(f, _)| json!(f)),
        "to" => scope.transition.map_or(Value::Null, |(_, t)| json!(t)),
        path => match path.split_once('.') {
            // An object member is read into; any other member is a reference to follow.
            Some((member, inner)) if scope.record.get(member).is_some_and(Value::is_object) => {
                let pointer = format!("/{}", inner.replace('.', "/"));
                scope
                    .record
                    .get(member)
                    .and_then(|v| v.pointer(&pointer))
                    .cloned()
                    .unwrap_or(Value::Null)
            }
            Some((via, field)) => (scope.lookup)(via, field).unwrap_or(Value::Null),
            None => scope.record.get(path).cloned().unwrap_or(Value::Null),
        },
    }
}

fn template(s: &str, member: &str, scope: &Scope, rng: &mut ChaCha8Rng) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 1..start + len];
        let (expr, filter) = match inner.split_once('|') {
            Some((e, f)) => (e.trim(), Some(f.trim())),
            None => (inner.trim(), None),
        };
        let expr = if expr.starts_with('$') {
            expr.to_owned()
        } else {
            format!("${expr}")
        };
        let mut text = match whole(&expr, member, scope, rng) {
            Value::String(t) => t,
            Value::Null => String::new(),
            v => v.to_string(),
        };
        if let Some(f) = filter {
            text = apply_filter(&text, f);
        }
        out.push_str(&text);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// `n` hex digits digested from `text`: the same text always gives the same digits.
pub fn digest_hex(text: &str, n: usize) -> String {
    let mut out = String::new();
    let mut round = 0u64;
    while out.len() < n {
        let h = crate::generate::stable_hash(&format!("{round}:{text}"));
        out.push_str(&format!("{h:016x}"));
        round += 1;
    }
    out.truncate(n);
    out
}

/// A template part's filter: `last:N`, `first:N`, `hex:N`.
fn apply_filter(text: &str, filter: &str) -> String {
    let (name, n) = filter.split_once(':').unwrap_or((filter, "0"));
    let n = n.trim().parse::<usize>().unwrap_or(0);
    let chars: Vec<char> = text.chars().collect();
    match name.trim() {
        "last" => chars[chars.len().saturating_sub(n)..].iter().collect(),
        "first" => chars[..n.min(chars.len())].iter().collect(),
        "hex" => digest_hex(text, n),
        _ => text.to_owned(),
    }
}

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_text(rng: &mut ChaCha8Rng, alphabet: &[u8], len: usize) -> String {
    (0..len.min(4096))
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// `30d`, `12h`, `5m`, `90s` or plain seconds.
fn duration(s: &str) -> f64 {
    let (n, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = n.trim().parse().unwrap_or(0.0);
    n * match unit {
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn scope_eval(expr: Value, record: &Map<String, Value>) -> Value {
        let lookup = |via: &str, field: &str| Some(json!(format!("{via}->{field}")));
        let time = |_: &str, t: i64| json!(t);
        let generate = |_: &str| Some(json!("generated"));
        let scope = Scope {
            record,
            id: "rec1",
            tenant: "t1",
            now: 1000.5,
            transition: Some(("pending", "active")),
            lookup: &lookup,
            time: &time,
            generate: &generate,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        eval(&expr, "m", &scope, &mut rng)
    }

    #[test]
    fn expressions() {
        let mut record = Map::new();
        record.insert("key".into(), json!("dk_test_abcdefgh"));
        record.insert("app".into(), json!("A1"));
        assert_eq!(
            scope_eval(json!("$now_ns+1d"), &record),
            json!(87_400_500_000_000i64)
        );
        assert_eq!(scope_eval(json!("$now"), &record), json!(1000));
        assert_eq!(scope_eval(json!("{key|last:4}"), &record), json!("efgh"));
        assert_eq!(
            scope_eval(json!("https://x/{app}?t={$id}&p={app.name}"), &record),
            json!("https://x/A1?t=rec1&p=app->name")
        );
        assert_eq!(scope_eval(json!("$to"), &record), json!("active"));
        record.insert("intent".into(), json!({"operation": {"amount": "5.00"}}));
        assert_eq!(
            scope_eval(json!("$intent.operation.amount"), &record),
            json!("5.00")
        );
        assert_eq!(scope_eval(json!(3), &record), json!(3));
        assert_eq!(
            scope_eval(json!("{key|first:4}..."), &record),
            json!("dk_t...")
        );
        let digest = scope_eval(json!("{$tenant|hex:24}"), &record);
        assert_eq!(digest, scope_eval(json!("{$tenant|hex:24}"), &record));
        assert_eq!(digest.as_str().map(str::len), Some(24));
        let hex = scope_eval(json!("0x{$hex:40}"), &record);
        assert_eq!(hex.as_str().map(str::len), Some(42));
    }
}
