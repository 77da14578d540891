//! The fixture format: one YAML file per scenario, an ordered list of steps, each a request
//! and the response recorded for it. Loading checks everything that can be checked before a
//! single request is sent, and refuses a bad file with its name, the step and the reason.
//!
//! Values may contain `{{name}}` placeholders: `name` is bound by an earlier step's
//! `capture` (a JSON pointer into its response body, or `header:NAME`), so a scenario that
//! creates and then reads works against any server. `{{$uuid}}` is a fresh UUID v4 each time
//! it is used, for idempotency keys and other values that must be unique per run;
//! `{{$now}}` is the current time in ISO 8601 (UTC, whole seconds), optionally shifted
//! (`{{$now-2h}}`, `{{$now+30m}}`; units s, m, h, d), for readings and ranges that must stay
//! recent whenever the scenario runs.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One scenario file as written on disk.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Shown in reports; defaults to the file name without extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub request: Request,
    pub response: Recorded,
    /// Name -> where to take the value from: a JSON pointer into the response body, or
    /// `header:NAME`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub capture: IndexMap<String, String>,
    /// JSON pointers (`*` matches any array index or member) left out of `--compare` and
    /// snapshots: values that legitimately differ between runs or servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub method: String,
    /// The path without query string, e.g. `/customers/{{customer_id}}`.
    pub path: String,
    /// Name -> a scalar or a list of scalars (repeated parameter).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub query: IndexMap<String, Value>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// JSON, or a string sent as is when the content type is not JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    pub status: u16,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// A loaded, checked fixture.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub file: PathBuf,
    pub name: String,
    pub fixture: Fixture,
}

/// Why a fixture was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub struct FixtureError {
    pub file: PathBuf,
    /// 1-based step number, when the problem is inside a step.
    pub step: Option<usize>,
    pub reason: String,
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(n) => write!(f, "{}: step {n}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

impl FixtureError {
    fn new(file: &Path, step: Option<usize>, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            step,
            reason: reason.into(),
        }
    }
}

/// Every `*.yaml`/`*.yml` named by `inputs` (files as given, directories recursively),
/// sorted within each directory so runs are reproducible.
pub fn collect(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, FixtureError> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found = Vec::new();
            let mut stack = vec![input.clone()];
            while let Some(dir) = stack.pop() {
                let entries = std::fs::read_dir(&dir)
                    .map_err(|e| FixtureError::new(&dir, None, format!("cannot read: {e}")))?;
                for entry in entries {
                    let path = entry
                        .map_err(|e| FixtureError::new(&dir, None, format!("cannot read: {e}")))?
                        .path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if matches!(
                        path.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml")
                    ) {
                        found.push(path);
                    }
                }
            }
            if found.is_empty() {
                return Err(FixtureError::new(
                    input,
                    None,
                    "no *.yaml fixture in this folder",
                ));
            }
            found.sort();
            out.extend(found);
        } else if input.is_file() {
            out.push(input.clone());
        } else {
            return Err(FixtureError::new(input, None, "no such file or folder"));
        }
    }
    Ok(out)
}

/// Reads and checks one fixture file.
pub fn load(file: &Path) -> Result<Scenario, FixtureError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| FixtureError::new(file, None, format!("cannot read: {e}")))?;
    parse(file, &text)
}

/// Parses and checks fixture text (`file` names it in errors).
pub fn parse(file: &Path, text: &str) -> Result<Scenario, FixtureError> {
    let raw: Value = yaml_serde::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("line {} column {}: ", l.line(), l.column()))
            .unwrap_or_default();
        FixtureError::new(file, None, format!("{at}not valid YAML: {e}"))
    })?;
    let fixture: Fixture = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let mut step = None;
        let mut at = Vec::new();
        let mut segments = e.path().iter().peekable();
        while let Some(seg) = segments.next() {
            match seg {
                serde_path_to_error::Segment::Map { key } if key == "steps" && at.is_empty() => {
                    if let Some(serde_path_to_error::Segment::Seq { index }) = segments.peek() {
                        step = Some(index + 1);
                        segments.next();
                        continue;
                    }
                    at.push(key.clone());
                }
                serde_path_to_error::Segment::Map { key } => at.push(key.clone()),
                serde_path_to_error::Segment::Seq { index } => at.push(index.to_string()),
                serde_path_to_error::Segment::Enum { variant } => at.push(variant.clone()),
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let at = if at.is_empty() {
            String::new()
        } else {
            format!("{}: ", at.join("."))
        };
        FixtureError::new(file, step, format!("{at}{}", e.inner()))
    })?;
    check(file, &fixture)?;
    let name = fixture.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into())
    });
    Ok(Scenario {
        file: file.to_path_buf(),
        name,
        fixture,
    })
}

/// What serde cannot check: methods, paths, pointers, statuses, and that every placeholder
/// refers to a value an earlier step captures.
fn check(file: &Path, fixture: &Fixture) -> Result<(), FixtureError> {
    if fixture.steps.is_empty() {
        return Err(FixtureError::new(
            file,
            None,
            "a scenario needs at least one step",
        ));
    }
    let mut bound: HashSet<&str> = HashSet::new();
    for (i, step) in fixture.steps.iter().enumerate() {
        let err = |reason: String| FixtureError::new(file, Some(i + 1), reason);
        check_request(&step.request).map_err(err)?;
        if !(100..=599).contains(&step.response.status) {
            return Err(err(format!(
                "response.status: {} is not an HTTP status",
                step.response.status
            )));
        }
        check_placeholders(&step.request, &bound).map_err(err)?;
        check_captures(step).map_err(err)?;
        bound.extend(step.capture.keys().map(String::as_str));
    }
    Ok(())
}

/// The request's method, path, query values and header names.
fn check_request(req: &Request) -> Result<(), String> {
    if http::Method::from_bytes(req.method.as_bytes()).is_err() || req.method.is_empty() {
        return Err(format!(
            "request.method: '{}' is not an HTTP method",
            req.method
        ));
    }
    if !req.path.starts_with('/') {
        return Err(format!("request.path: '{}' must start with '/'", req.path));
    }
    if req.path.contains('?') {
        return Err("request.path: put the query string under request.query".into());
    }
    for (name, value) in &req.query {
        let scalar = |v: &Value| !matches!(v, Value::Object(_) | Value::Array(_) | Value::Null);
        let ok = match value {
            Value::Array(items) => items.iter().all(scalar),
            v => scalar(v),
        };
        if !ok {
            return Err(format!(
                "request.query.{name}: must be a scalar or a list of scalars"
            ));
        }
    }
    for name in req.headers.keys() {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("request.headers: '{name}' is not a header name"));
        }
    }
    Ok(())
}

/// Placeholders anywhere in the request must already be bound (or be a built-in).
fn check_placeholders(req: &Request, bound: &HashSet<&str>) -> Result<(), String> {
    let mut used = Vec::new();
    placeholders(&req.path, &mut used);
    for (k, v) in &req.query {
        placeholders(k, &mut used);
        placeholders_in(v, &mut used);
    }
    for v in req.headers.values() {
        placeholders(v, &mut used);
    }
    if let Some(body) = &req.body {
        placeholders_in(body, &mut used);
    }
    for name in used {
        if name.starts_with('$') {
            if builtin(name).is_none() {
                return Err(format!(
                    "unknown built-in {{{{{name}}}}} (known: {{{{$uuid}}}}, {{{{$now}}}}, {{{{$now-2h}}}})"
                ));
            }
        } else if !bound.contains(name) {
            return Err(format!(
                "uses {{{{{name}}}}}, which no earlier step captures"
            ));
        }
    }
    Ok(())
}

/// Capture names and sources, and `ignore` pointers.
fn check_captures(step: &Step) -> Result<(), String> {
    for (name, source) in &step.capture {
        if name.is_empty()
            || name.starts_with('$')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "capture: '{name}' is not a valid name (letters, digits, _ - .)"
            ));
        }
        let header = source.strip_prefix("header:");
        let valid = match header {
            Some(h) => http::HeaderName::from_bytes(h.trim().as_bytes()).is_ok(),
            None => source.is_empty() || source.starts_with('/'),
        };
        if !valid {
            return Err(format!(
                "capture.{name}: '{source}' is neither a JSON pointer nor header:NAME"
            ));
        }
    }
    for pointer in &step.ignore {
        if !pointer.starts_with('/') {
            return Err(format!(
                "ignore: '{pointer}' is not a JSON pointer (it must start with '/')"
            ));
        }
    }
    Ok(())
}

/// Names of the `{{name}}` placeholders in `text`, appended to `out`.
pub fn placeholders<'a>(text: &'a str, out: &mut Vec<&'a str>) {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
}

fn placeholders_in<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => placeholders(s, out),
        Value::Array(items) => items.iter().for_each(|v| placeholders_in(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            placeholders(k, out);
            placeholders_in(v, out);
        }),
        _ => {}
    }
}

/// Values bound so far in a run, by name.
pub type Vars = std::collections::HashMap<String, Value>;

/// Replaces every placeholder in `text`; `encode` is applied to each substituted value (for
/// path segments). `Err` carries the first name that is not bound.
pub fn substitute(text: &str, vars: &Vars, encode: fn(&str) -> String) -> Result<String, String> {
    if !text.contains("{{") {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        let name = after[..end].trim();
        out.push_str(&encode(&scalar_text(&lookup(name, vars)?)));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Substitutes inside a JSON value. A string that is exactly one placeholder takes the bound
/// value with its type (a captured number stays a number).
pub fn substitute_value(value: &Value, vars: &Vars) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => {
            let t = s.trim();
            if t.starts_with("{{") && t.ends_with("}}") && t[2..t.len() - 2].find("{{").is_none() {
                lookup(t[2..t.len() - 2].trim(), vars)?
            } else {
                Value::String(substitute(s, vars, str::to_owned)?)
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute_value(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    Ok((
                        substitute(k, vars, str::to_owned)?,
                        substitute_value(v, vars)?,
                    ))
                })
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn lookup(name: &str, vars: &Vars) -> Result<Value, String> {
    if let Some(value) = builtin(name) {
        return Ok(Value::String(value));
    }
    vars.get(name).cloned().ok_or_else(|| name.to_owned())
}

/// The value of a built-in placeholder (`$uuid`, `$now`, `$now-2h`), if `name` is one.
fn builtin(name: &str) -> Option<String> {
    if name == "$uuid" {
        return Some(uuid_v4());
    }
    let shift = name.strip_prefix("$now")?;
    let seconds = if shift.is_empty() {
        0
    } else {
        let (sign, rest) = match shift.split_at(1) {
            ("+", rest) => (1, rest),
            ("-", rest) => (-1, rest),
            _ => return None,
        };
        let unit = match rest.chars().last()? {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        let n: i64 = rest[..rest.len() - 1].parse().ok()?;
        sign * n * unit
    };
    let at = chrono::Utc::now() + chrono::Duration::seconds(seconds);
    Some(at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The text a value takes inside a string: strings bare, everything else as JSON.
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A random (version 4) UUID.
pub fn uuid_v4() -> String {
    crate::generate::ids::uuid_from_bytes(rand::random())
}

/// Writes a fixture as YAML (used by the recorder).
pub fn to_yaml(fixture: &Fixture) -> Result<String, String> {
    yaml_serde::to_string(fixture).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> FixtureError {
        parse(Path::new("f.yaml"), text).expect_err("the fixture is refused")
    }

    #[test]
    fn now_placeholders_shift_and_unknown_ones_are_refused() {
        let now = builtin("$now").expect("known");
        let earlier = builtin("$now-2h").expect("known");
        assert_eq!(now.len(), 20);
        assert!(earlier < now, "{earlier} < {now}");
        assert!(builtin("$now+1d").expect("known") > now);
        assert!(builtin("$now-2x").is_none());
        assert!(builtin("$today").is_none());
    }

    #[test]
    fn a_valid_fixture_loads_with_captures() {
        let s = parse(
            Path::new("dir/flow.yaml"),
            "steps:\n- request: {method: POST, path: /customers, headers: {x-idempotency-key: '{{$uuid}}'}, body: {name: Acme}}\n  response: {status: 201}\n  capture: {customer_id: /id}\n- request: {method: GET, path: '/customers/{{customer_id}}'}\n  response: {status: 200}\n",
        )
        .unwrap();
        assert_eq!(s.name, "flow");
        assert_eq!(s.fixture.steps.len(), 2);
    }

    #[test]
    fn errors_name_the_step_and_reason() {
        let e = refused(
            "steps:\n- request: {method: GET, path: /a}\n  response: {status: 200}\n- request: {method: GET, path: /b, bogus: 1}\n  response: {status: 200}\n",
        );
        assert_eq!(e.step, Some(2));
        assert!(e.reason.contains("bogus"), "{e}");
        assert!(e.to_string().starts_with("f.yaml: step 2: "), "{e}");

        let e = refused(
            "steps:\n- request: {method: GET, path: '/c/{{id}}'}\n  response: {status: 200}\n",
        );
        assert_eq!(e.step, Some(1));
        assert!(e.reason.contains("no earlier step captures"), "{e}");

        let e = refused("steps:\n- request: {method: GET, path: c}\n  response: {status: 200}\n");
        assert!(e.reason.contains("must start with '/'"), "{e}");

        let e = refused("steps:\n- request: {method: GET, path: /c}\n  response: {status: 999}\n");
        assert!(e.reason.contains("not an HTTP status"), "{e}");

        let e = refused("steps: [\n");
        assert_eq!(e.step, None);
        assert!(e.reason.contains("not valid YAML"), "{e}");

        let e = refused("steps: []\n");
        assert!(e.reason.contains("at least one step"), "{e}");
    }

    #[test]
    fn substitution_keeps_types_and_encodes_paths() {
        let mut vars = Vars::new();
        vars.insert("id".into(), Value::String("a b".into()));
        vars.insert("n".into(), serde_json::json!(5));
        let enc = |s: &str| s.replace(' ', "%20");
        assert_eq!(substitute("/x/{{id}}", &vars, enc).unwrap(), "/x/a%20b");
        let v =
            substitute_value(&serde_json::json!({"n": "{{n}}", "s": "n={{n}}"}), &vars).unwrap();
        assert_eq!(v, serde_json::json!({"n": 5, "s": "n=5"}));
        assert_eq!(substitute("{{nope}}", &vars, enc), Err("nope".into()));
        assert_eq!(uuid_v4().len(), 36);
    }
}
