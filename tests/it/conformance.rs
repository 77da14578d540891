//! Every operation of a spec, called over HTTP with a valid request, answers a declared
//! success status with a body that validates; every operation that has something required
//! refuses an invalid request with a declared 4xx whose body has the declared shape.

use std::collections::HashMap;
use std::path::Path;

use api_sandbox::generate::Generator;
use api_sandbox::schema::{Direction, SchemaSet};
use api_sandbox::spec::catalog::{Credential, Location, Operation, is_json};
use api_sandbox::spec::{Spec, pointer};
use serde_json::Value;

use crate::common::{Sandbox, bundled_dakota, client, test_spec, vendor_dakota};

/// A request the test sends, and what it proves.
struct Call {
    method: reqwest::Method,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A valid request for `op`: every required parameter, credentials, and a generated body.
fn valid_call(spec: &Spec, op: &Operation, seed: u64) -> Call {
    let gen_for = |ptr: &Option<String>, key: &str| -> Value {
        let mut g = Generator::new(
            &spec.doc,
            seed,
            &format!("{} {key}", op.id),
            Direction::Request,
        );
        ptr.as_deref()
            .map_or(Value::String("x".into()), |p| g.value_at(p))
    };
    let mut path = op.path.clone();
    let mut query = Vec::new();
    let mut headers = Vec::new();
    for p in &op.params {
        if !p.required {
            continue;
        }
        let v = gen_for(&p.schema, &p.name);
        match p.location {
            Location::Path => {
                path = path.replace(
                    &format!("{{{}}}", p.name),
                    &encode_segment(&scalar_text(&v)),
                )
            }
            Location::Query => query.push((p.name.clone(), scalar_text(&v))),
            Location::Header => headers.push((p.name.clone(), scalar_text(&v))),
            Location::Cookie => {
                headers.push(("cookie".into(), format!("{}={}", p.name, scalar_text(&v))))
            }
        }
    }
    if let Some(alt) = op.security.first() {
        for c in &alt.all {
            match c {
                Credential::Header(n) => headers.push((n.clone(), "test-key".into())),
                Credential::Query(n) => query.push((n.clone(), "test-key".into())),
                Credential::Cookie(n) => headers.push(("cookie".into(), format!("{n}=test-key"))),
                Credential::Authorization(s) => {
                    headers.push(("authorization".into(), format!("{s} dGVzdDp0ZXN0")))
                }
            }
        }
    }
    let body = op.body.as_ref().and_then(|b| b.content.first()).map(|m| {
        if is_json(&m.media_type) {
            let v = gen_for(&m.schema, "body");
            (
                "application/json".to_owned(),
                serde_json::to_vec(&v).unwrap_or_default(),
            )
        } else {
            let v = gen_for(&m.schema, "body");
            form_body(&m.media_type, &v)
        }
    });
    Call {
        method: reqwest::Method::from_bytes(op.method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::GET),
        path,
        query,
        headers,
        body,
    }
}

/// A generated body in a form encoding: `k=v&...`, or multipart parts (one file part for
/// each binary member); any other media type gets a plain payload.
fn form_body(media_type: &str, v: &Value) -> (String, Vec<u8>) {
    let members: Vec<(String, String)> = v
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), scalar_text(v))).collect())
        .unwrap_or_default();
    if media_type.starts_with("application/x-www-form-urlencoded") {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let pairs: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        return (media_type.to_owned(), pairs.join("&").into_bytes());
    }
    if media_type.starts_with("multipart/form-data") {
        let boundary = "sandbox-conformance-boundary";
        let mut out = String::new();
        for (k, v) in &members {
            out.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{k}.txt\"\r\n\r\n{v}\r\n"
            ));
        }
        out.push_str(&format!("--{boundary}--\r\n"));
        return (
            format!("multipart/form-data; boundary={boundary}"),
            out.into_bytes(),
        );
    }
    (media_type.to_owned(), b"field=value".to_vec())
}

/// An invalid variant of a valid call, or `None` when the operation has nothing that can be
/// got wrong (no required input and no constrained path parameter).
fn invalid_call(spec: &Spec, op: &Operation, mut call: Call) -> Option<(Call, String)> {
    let security_headers: Vec<String> = op
        .security
        .iter()
        .flat_map(|a| &a.all)
        .filter_map(|c| {
            if let Credential::Header(n) = c {
                Some(n.to_ascii_lowercase())
            } else {
                None
            }
        })
        .collect();
    // An idempotency key is never required on DELETE, whatever the spec says (SDKs send
    // none there; see the README), so leaving it out is not an invalid request.
    let optional_on_delete = |name: &str| {
        op.method.as_str() == "DELETE" && name.to_ascii_lowercase().contains("idempotency")
    };
    if let Some(p) = op.params.iter().find(|p| {
        p.required
            && matches!(p.location, Location::Query | Location::Header)
            && !security_headers.contains(&p.name.to_ascii_lowercase())
            && !optional_on_delete(&p.name)
    }) {
        call.query.retain(|(k, _)| *k != p.name);
        call.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case(&p.name));
        return Some((
            call,
            format!(
                "without required {} parameter '{}'",
                p.location.as_str(),
                p.name
            ),
        ));
    }
    if op
        .body
        .as_ref()
        .is_some_and(|b| b.required && b.content.iter().any(|m| is_json(&m.media_type)))
    {
        call.body = Some((
            "application/json".into(),
            b"[\"not\", \"the\", \"declared\", \"body\"]".to_vec(),
        ));
        return Some((call, "with a body of the wrong type".into()));
    }
    let constrained = op.params.iter().find(|p| {
        p.location == Location::Path
            && p.schema
                .as_deref()
                .and_then(|s| spec.at(s))
                .and_then(|s| pointer::resolve(&spec.doc, s).ok())
                .is_some_and(|(s, _)| {
                    [
                        "pattern",
                        "format",
                        "enum",
                        "minLength",
                        "maxLength",
                        "minimum",
                        "maximum",
                    ]
                    .iter()
                    .any(|k| s.get(k).is_some())
                        || s.get("type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| t != "string")
                })
    })?;
    call.path = replace_segment(&op.path, &call.path, &constrained.name);
    Some((
        call,
        format!("with an invalid path parameter '{}'", constrained.name),
    ))
}

/// The valid path with only parameter `name` replaced by a value that breaks its schema.
fn replace_segment(template: &str, valid: &str, name: &str) -> String {
    let placeholder = format!("{{{name}}}");
    template
        .split('/')
        .zip(valid.split('/'))
        .map(|(t, v)| {
            // `{Sid}.json`: the parameter is part of the segment.
            if t.contains(&placeholder) {
                t.replace(&placeholder, "%21%21not-valid%21%21")
            } else {
                v.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn send(base: &str, call: &Call) -> (u16, Option<String>, Vec<u8>) {
    let mut req = client()
        .request(call.method.clone(), format!("{base}{}", call.path))
        .query(&call.query);
    for (k, v) in &call.headers {
        req = req.header(k, v);
    }
    if let Some((ct, body)) = &call.body {
        req = req.header("content-type", ct).body(body.clone());
    }
    let res = req.send().await.expect("the sandbox answers");
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.bytes().await.expect("a body arrives").to_vec();
    (status, ct, body)
}

/// Checks an answer against what the spec declares for it; returns the problem, if any.
fn check_answer(
    spec: &Spec,
    schemas: &SchemaSet,
    op: &Operation,
    status: u16,
    ct: Option<&str>,
    body: &[u8],
) -> Result<(), String> {
    let Some(response) = op.response_for(status) else {
        return Err(format!("status {status} is not declared"));
    };
    if status == 204 {
        return if body.is_empty() {
            Ok(())
        } else {
            Err("204 with a body".into())
        };
    }
    let Some(ct) = ct else {
        return Err("no content type".into());
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    let Some(media) = response
        .content
        .iter()
        .find(|m| m.media_type == essence || m.media_type == "*/*")
    else {
        if response.content.is_empty() && essence == "application/json" {
            return Ok(());
        }
        return Err(format!("content type {ct} is not declared for {status}"));
    };
    if !is_json(&media.media_type) {
        return Ok(());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let Some(schema) = &media.schema else {
        return Ok(());
    };
    let validator = schemas
        .compile(Direction::Response, schema)
        .map_err(|e| e.to_string())?;
    let problems = api_sandbox::schema::violations(&validator, &value);
    let _ = spec;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("body violates its schema: {problems:?}"))
    }
}

/// Calls every operation of `spec_path` validly and invalidly; returns the summary line.
async fn conform(spec_path: &str) -> String {
    let spec = Spec::load(Path::new(spec_path)).expect("the spec loads");
    let schemas = SchemaSet::new(&spec.doc).expect("schemas compile");
    // The engine core's contract: every operation answers from the spec alone.
    let sandbox = Sandbox::start(&["--spec", spec_path, "--stateless"]);
    let mut failures: HashMap<String, String> = HashMap::new();
    let mut negative = 0;
    for op in &spec.operations {
        let call = valid_call(&spec, op, 1);
        let (status, ct, body) = send(sandbox.url(), &call).await;
        if !(200..300).contains(&status) {
            failures.insert(
                op.id.clone(),
                format!(
                    "valid request got {status}: {}",
                    String::from_utf8_lossy(&body)
                ),
            );
            continue;
        }
        if let Err(e) = check_answer(&spec, &schemas, op, status, ct.as_deref(), &body) {
            failures.insert(op.id.clone(), format!("valid request: {e}"));
            continue;
        }
        if let Some((bad, how)) = invalid_call(&spec, op, valid_call(&spec, op, 1)) {
            negative += 1;
            let (status, ct, body) = send(sandbox.url(), &bad).await;
            if !(400..500).contains(&status) || !op.declares(status) {
                failures.insert(
                    op.id.clone(),
                    format!(
                        "request {how} got undeclared {status}: {}",
                        String::from_utf8_lossy(&body)
                    ),
                );
                continue;
            }
            if let Err(e) = check_answer(&spec, &schemas, op, status, ct.as_deref(), &body) {
                failures.insert(op.id.clone(), format!("request {how}: {e}"));
            }
        }
    }
    let total = spec.operations.len();
    let ok = total - failures.len();
    let mut listed: Vec<_> = failures.iter().collect();
    listed.sort();
    for (id, why) in &listed {
        eprintln!("FAIL {id}: {why}");
    }
    let line = format!(
        "{ok}/{total} operations conform ({negative} also refused an invalid request as declared)"
    );
    let root = crate::common::repo_root();
    let shown = Path::new(spec_path)
        .strip_prefix(&root)
        .map_or_else(|_| spec_path.to_owned(), |p| p.display().to_string());
    println!("{shown} ({}): {line}", spec.title);
    assert!(failures.is_empty(), "{line}");
    line
}

#[tokio::test(flavor = "multi_thread")]
async fn official_dakota_spec_conforms() {
    let Some(spec) = vendor_dakota() else { return };
    let line = conform(&spec).await;
    assert!(line.starts_with("100/100 operations conform"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bundled_dakota_spec_conforms() {
    let line = conform(&bundled_dakota()).await;
    assert!(line.starts_with("100/100 operations conform"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn petstore_style_spec_conforms() {
    conform(&test_spec("petstore.yaml")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn specs_of_every_version_and_shape_conform() {
    for spec in [
        "fastapi/openapi.json",
        "openapi31/openapi.yaml",
        "swagger2/swagger.yaml",
        "shapes/telephony.yaml",
        "shapes/workmgmt.yaml",
        "shapes/incidents.yaml",
        "shapes/refs-in-examples.yaml",
    ] {
        conform(&test_spec(spec)).await;
    }
}
