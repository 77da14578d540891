//! The alert-condition language: plain English the way people write alert rules
//! ("temperature exceeds 30", "humidity is less than 40 for 10 minutes", "cpu usage > 80
//! percent", "no data received for 30 minutes"), parsed into
//! `{field, operator, value[, durationMinutes]}` or `{type: no_data, durationMinutes}`.
//! Matching is case-insensitive and the longest operator phrase wins ("is greater than or
//! equal to" over "is greater than"); unit words after the number are ignored.

use serde_json::{Map, Value, json};

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Threshold {
        field: String,
        op: Op,
        value: f64,
        minutes: Option<f64>,
    },
    NoData {
        minutes: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Ne,
}

/// Operator phrases, longest first within each operator's group (all are tried longest
/// first anyway).
const PHRASES: &[(&str, Op)] = &[
    ("is greater than or equal to", Op::Gte),
    ("is less than or equal to", Op::Lte),
    ("is not equal to", Op::Ne),
    ("does not equal", Op::Ne),
    ("is greater than", Op::Gt),
    ("is more than", Op::Gt),
    ("rises above", Op::Gt),
    ("goes above", Op::Gt),
    ("is above", Op::Gt),
    ("is over", Op::Gt),
    ("exceeds", Op::Gt),
    ("is at least", Op::Gte),
    ("is at most", Op::Lte),
    ("is less than", Op::Lt),
    ("drops below", Op::Lt),
    ("falls below", Op::Lt),
    ("goes below", Op::Lt),
    ("is below", Op::Lt),
    ("is under", Op::Lt),
    ("is equal to", Op::Eq),
    ("equals", Op::Eq),
    (">=", Op::Gte),
    ("<=", Op::Lte),
    ("!=", Op::Ne),
    ("<>", Op::Ne),
    ("==", Op::Eq),
    (">", Op::Gt),
    ("<", Op::Lt),
    ("=", Op::Eq),
];

const UNIT_WORDS: &[&str] = &[
    "%",
    "percent",
    "°c",
    "°f",
    "c",
    "f",
    "degrees",
    "celsius",
    "fahrenheit",
    "hpa",
    "ms",
    "s",
];

const NO_DATA: &[&str] = &["no data received", "no data", "no readings", "missing data"];

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::Eq => "eq",
            Self::Ne => "ne",
        }
    }

    /// The symbol alert payloads use (`>`).
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            _ => return None,
        })
    }

    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Self::Gt => a > b,
            Self::Gte => a >= b,
            Self::Lt => a < b,
            Self::Lte => a <= b,
            Self::Eq => a == b,
            Self::Ne => a != b,
        }
    }
}

/// Parses `text`; `fields` are the data source's declared field names, which a field
/// phrase is matched against ("cpu usage" names `cpu_usage` or `cpuUsage`).
pub fn parse(text: &str, fields: &[String]) -> Result<Condition, String> {
    let lower = text.trim().to_lowercase();
    if lower.is_empty() {
        return Err("the condition is empty".into());
    }
    if let Some(rest) = NO_DATA.iter().find_map(|p| lower.strip_prefix(p)) {
        let minutes = duration(rest.trim()).ok_or_else(|| {
            format!("'{text}': say for how long, as in 'no data received for 30 minutes'")
        })?;
        return Ok(Condition::NoData { minutes });
    }
    let (at, phrase, op) = find_operator(&lower).ok_or_else(|| {
        format!("'{text}': no comparison found (try 'temperature exceeds 30' or 'humidity < 40')")
    })?;
    let field_phrase = lower[..at].trim();
    if field_phrase.is_empty() {
        return Err(format!("'{text}': name the field before the comparison"));
    }
    let rest = lower[at + phrase.len()..].trim();
    let (number, after) = split_number(rest)
        .ok_or_else(|| format!("'{text}': a number must follow the comparison"))?;
    let after = skip_unit(after.trim());
    let minutes = if after.is_empty() {
        None
    } else {
        Some(duration(after).ok_or_else(|| {
            format!("'{text}': did not understand '{after}' (a duration reads 'for 5 minutes')")
        })?)
    };
    Ok(Condition::Threshold {
        field: resolve_field(field_phrase, fields),
        op,
        value: number,
        minutes,
    })
}

/// The first operator phrase in `text` (at a word boundary), longest first.
fn find_operator(text: &str) -> Option<(usize, &'static str, Op)> {
    let mut best: Option<(usize, &'static str, Op)> = None;
    for (phrase, op) in PHRASES {
        let mut from = 0;
        while let Some(found) = text[from..].find(phrase) {
            let at = from + found;
            let symbolic = !phrase.chars().next().is_some_and(char::is_alphabetic);
            let bounded = symbolic
                || ((at == 0 || text.as_bytes()[at - 1] == b' ')
                    && text[at + phrase.len()..].starts_with(' '));
            if bounded && at > 0 {
                let better = best.is_none_or(|(b_at, b_phrase, _)| {
                    at < b_at || (at == b_at && phrase.len() > b_phrase.len())
                });
                if better {
                    best = Some((at, phrase, *op));
                }
                break;
            }
            from = at + phrase.len();
        }
    }
    best
}

/// A leading number (`-3.5`), and what follows it.
fn split_number(text: &str) -> Option<(f64, &str)> {
    let end = text
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '-' || *c == '+'))))
        .map_or(text.len(), |(i, _)| i);
    let n: f64 = text[..end].parse().ok()?;
    n.is_finite().then_some((n, &text[end..]))
}

fn skip_unit(text: &str) -> &str {
    let first = text.split_whitespace().next().unwrap_or("");
    if UNIT_WORDS.contains(&first) {
        text[first.len()..].trim()
    } else if let Some(rest) = text.strip_prefix('%') {
        rest.trim()
    } else {
        text
    }
}

/// `for 5 minutes`, `for 1 hour`, `for 90 seconds`, `for 2 days`, in minutes.
fn duration(text: &str) -> Option<f64> {
    let rest = text.strip_prefix("for")?.trim();
    let (n, unit) = split_number(rest)?;
    let per = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0 / 60.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 1.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 60.0,
        "d" | "day" | "days" => 1440.0,
        _ => return None,
    };
    (n >= 0.0).then_some(n * per)
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The declared field a phrase names, else the phrase in snake case.
fn resolve_field(phrase: &str, fields: &[String]) -> String {
    let wanted = normalise(phrase);
    fields
        .iter()
        .find(|f| normalise(f) == wanted)
        .cloned()
        .unwrap_or_else(|| phrase.split_whitespace().collect::<Vec<_>>().join("_"))
}

impl Condition {
    /// The `parsedCondition` shape records show.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Threshold {
                field,
                op,
                value,
                minutes,
            } => {
                let mut m = Map::new();
                m.insert("field".into(), json!(field));
                m.insert("operator".into(), json!(op.name()));
                m.insert(
                    "value".into(),
                    super::series::number(*value, value.fract() == 0.0),
                );
                if let Some(min) = minutes {
                    m.insert(
                        "durationMinutes".into(),
                        super::series::number(*min, min.fract() == 0.0),
                    );
                }
                Value::Object(m)
            }
            Self::NoData { minutes } => {
                json!({"type": "no_data", "durationMinutes": super::series::number(*minutes, minutes.fract() == 0.0)})
            }
        }
    }

    /// Reads a stored `parsedCondition`.
    pub fn from_json(v: &Value) -> Option<Self> {
        let minutes = v.get("durationMinutes").and_then(Value::as_f64);
        if v.get("type").and_then(Value::as_str) == Some("no_data") {
            return Some(Self::NoData { minutes: minutes? });
        }
        Some(Self::Threshold {
            field: v.get("field")?.as_str()?.to_owned(),
            op: Op::parse(v.get("operator")?.as_str()?)?,
            value: v.get("value")?.as_f64()?,
            minutes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<String> {
        vec!["temperature".into(), "cpu_usage".into(), "humidity".into()]
    }

    fn threshold(text: &str) -> (String, Op, f64, Option<f64>) {
        match parse(text, &fields()) {
            Ok(Condition::Threshold {
                field,
                op,
                value,
                minutes,
            }) => (field, op, value, minutes),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn the_phrases_people_write() {
        assert_eq!(
            threshold("temperature exceeds 30"),
            ("temperature".into(), Op::Gt, 30.0, None)
        );
        assert_eq!(
            threshold("Humidity is less than 40"),
            ("humidity".into(), Op::Lt, 40.0, None)
        );
        assert_eq!(
            threshold("pressure drops below 1000 hPa"),
            ("pressure".into(), Op::Lt, 1000.0, None)
        );
        assert_eq!(
            threshold("cpu usage exceeds 80 percent"),
            ("cpu_usage".into(), Op::Gt, 80.0, None)
        );
        assert_eq!(
            threshold("temperature is greater than or equal to 30"),
            ("temperature".into(), Op::Gte, 30.0, None)
        );
        assert_eq!(
            threshold("temperature > 30 for 5 minutes"),
            ("temperature".into(), Op::Gt, 30.0, Some(5.0))
        );
        assert_eq!(
            threshold("temperature >= -2.5 for 1 hour"),
            ("temperature".into(), Op::Gte, -2.5, Some(60.0))
        );
        assert_eq!(
            threshold("temperature is not equal to 3"),
            ("temperature".into(), Op::Ne, 3.0, None)
        );
        assert_eq!(threshold("temperature > 30 for 90 seconds").3, Some(1.5));
    }

    #[test]
    fn silence_and_nonsense() {
        assert_eq!(
            parse("no data received for 30 minutes", &fields()),
            Ok(Condition::NoData { minutes: 30.0 })
        );
        assert_eq!(
            parse("missing data for 2 hours", &fields()),
            Ok(Condition::NoData { minutes: 120.0 })
        );
        assert!(parse("make it nice", &fields()).is_err());
        assert!(parse("temperature exceeds thirty", &fields()).is_err());
        assert!(parse("> 30", &fields()).is_err());
        assert!(parse("temperature > 30 sometimes", &fields()).is_err());
    }

    #[test]
    fn parsed_conditions_round_trip_through_records() {
        for text in [
            "temperature > 30 for 5 minutes",
            "no readings for 1 hour",
            "humidity <= 40.5",
        ] {
            let c = parse(text, &fields()).expect("parses");
            assert_eq!(Condition::from_json(&c.to_json()), Some(c), "{text}");
        }
    }
}
