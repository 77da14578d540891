//! The recording proxy: a client is pointed at it, every exchange is forwarded to the target
//! and appended to a fixture, which is rewritten after each exchange (so stopping the proxy
//! at any moment loses nothing). Credentials in auth headers are redacted unless asked not
//! to be.
//!
//! To make recordings replayable against another server, the proxy writes the captures a
//! person would: an `id` in a 2xx answer is captured (`customer_id: /id` after
//! `POST /customers`), and where that value reappears in a later request (path, query or
//! body) it is replaced by `{{customer_id}}`. Idempotency keys become `{{$uuid}}`.
//! `POST /__record/scenario?name=NAME` on the proxy closes the current scenario and starts
//! `NAME.yaml`.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use indexmap::IndexMap;
use serde_json::Value;
use tokio::sync::Mutex;

use super::error::ContractError;
use super::fixture::{Fixture, Recorded, Request, Step, to_yaml};

/// Where the proxy's own control endpoint lives.
pub const CONTROL_PATH: &str = "/__record/scenario";

/// What stands in for a redacted credential.
pub const REDACTED: &str = "<redacted>";

#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub target: String,
    pub host: IpAddr,
    pub port: u16,
    pub out: PathBuf,
    pub name: String,
    pub redact: bool,
}

struct Session {
    name: String,
    fixture: Fixture,
    /// Captured value -> variable name, most recent last.
    captured: Vec<(Value, String)>,
    names: HashSet<String>,
}

impl Session {
    fn new(name: String) -> Self {
        Self {
            fixture: Fixture {
                name: Some(name.clone()),
                ..Fixture::default()
            },
            name,
            captured: Vec::new(),
            names: HashSet::new(),
        }
    }
}

struct Proxy {
    client: reqwest::Client,
    target: String,
    out: PathBuf,
    redact: bool,
    session: Mutex<Session>,
}

/// Headers that carry credentials.
pub fn is_credential(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "api-key" | "apikey"
    ) || [
        "api-key", "apikey", "token", "secret", "auth", "password", "session",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Connection-level headers, and ones the transport rewrites, are not part of an exchange.
fn is_transport_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "host"
            | "content-length"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-connection"
            | "accept-encoding"
    )
}

/// Runs the proxy until `stop` resolves. Prints the proxy's URL on stdout once listening.
pub async fn record(
    options: RecordOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ContractError> {
    let target = options.target.trim_end_matches('/').to_owned();
    match reqwest::Url::parse(&target) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => {
            return Err(ContractError::Record(format!(
                "--target '{target}' is not an http(s) URL"
            )));
        }
    }
    std::fs::create_dir_all(&options.out).map_err(|e| ContractError::Io {
        path: options.out.clone(),
        reason: e.to_string(),
    })?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ContractError::Record(format!("cannot build the HTTP client: {e}")))?;
    let proxy = Arc::new(Proxy {
        client,
        target: target.clone(),
        out: options.out.clone(),
        redact: options.redact,
        session: Mutex::new(Session::new(options.name.clone())),
    });
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(options.host, options.port))
        .await
        .map_err(|e| {
            ContractError::Record(format!(
                "cannot listen on {}:{}: {e}",
                options.host, options.port
            ))
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| ContractError::Record(e.to_string()))?;
    println!(
        "Recording http://{local} -> {target}, writing {}",
        options.out.join(format!("{}.yaml", options.name)).display()
    );
    let app = axum::Router::new().fallback(handle).with_state(proxy);
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| ContractError::Record(e.to_string()))
}

async fn handle(State(proxy): State<Arc<Proxy>>, request: axum::extract::Request) -> Response {
    match exchange(&proxy, request).await {
        Ok(r) => r,
        Err(reason) => (
            http::StatusCode::BAD_GATEWAY,
            [(http::header::CONTENT_TYPE, "text/plain")],
            format!("sandbox record: {reason}\n"),
        )
            .into_response(),
    }
}

async fn exchange(proxy: &Proxy, request: axum::extract::Request) -> Result<Response, String> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .map_err(|e| format!("cannot read the request body: {e}"))?;
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    if path == CONTROL_PATH && parts.method == http::Method::POST {
        return start_scenario(proxy, &raw_query).await;
    }
    let url = if raw_query.is_empty() {
        format!("{}{path}", proxy.target)
    } else {
        format!("{}{path}?{raw_query}", proxy.target)
    };
    let mut forward = proxy.client.request(parts.method.clone(), &url);
    for (name, value) in &parts.headers {
        if !is_transport_header(name.as_str()) {
            forward = forward.header(name, value);
        }
    }
    let answer = forward
        .body(body.clone())
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let answer_body = answer
        .bytes()
        .await
        .map_err(|e| format!("cannot read the answer from {url}: {e}"))?;

    let mut session = proxy.session.lock().await;
    let step = to_step(
        &mut session,
        proxy.redact,
        &parts.method,
        &path,
        &raw_query,
        &parts.headers,
        &body,
        status.as_u16(),
        &headers,
        &answer_body,
    );
    session.fixture.steps.push(step);
    save(proxy, &session)?;
    drop(session);

    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if !is_transport_header(name.as_str()) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(answer_body))
        .map_err(|e| e.to_string())
}

async fn start_scenario(proxy: &Proxy, query: &str) -> Result<Response, String> {
    let name = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.into_owned())
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        .ok_or("POST /__record/scenario needs ?name=NAME (letters, digits, - _ .)")?;
    let mut session = proxy.session.lock().await;
    *session = Session::new(name.clone());
    Ok((
        http::StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "scenario": name }).to_string(),
    )
        .into_response())
}

fn save(proxy: &Proxy, session: &Session) -> Result<(), String> {
    let text = to_yaml(&session.fixture)?;
    let path = proxy.out.join(format!("{}.yaml", session.name));
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A request or response body as the fixture holds it: JSON when it parses, else text.
fn body_value(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    Some(
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
    )
}

/// Replaces values captured earlier with their placeholders.
fn templated(value: &Value, captured: &[(Value, String)]) -> Value {
    if let Some((_, name)) = captured.iter().rev().find(|(v, _)| v == value) {
        return Value::String(format!("{{{{{name}}}}}"));
    }
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| templated(v, captured)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), templated(v, captured)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn header_map(headers: &http::HeaderMap, redact: bool) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    for (name, value) in headers {
        let n = name.as_str();
        if is_transport_header(n) || n == "user-agent" || n == "date" {
            continue;
        }
        let v = if redact && is_credential(n) {
            REDACTED.to_owned()
        } else if n.contains("idempotency") {
            // A recorded key would make a replay an idempotent repeat of the recording.
            "{{$uuid}}".to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        out.insert(n.to_owned(), v);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn to_step(
    session: &mut Session,
    redact: bool,
    method: &http::Method,
    path: &str,
    query: &str,
    request_headers: &http::HeaderMap,
    request_body: &[u8],
    status: u16,
    response_headers: &http::HeaderMap,
    response_body: &[u8],
) -> Step {
    let captured = &session.captured;
    let mut literal = None;
    let segments: Vec<String> = path
        .split('/')
        .map(|seg| {
            let decoded = percent_encoding::percent_decode_str(seg)
                .decode_utf8_lossy()
                .into_owned();
            match templated(&Value::String(decoded), captured) {
                Value::String(s) if s.starts_with("{{") => s,
                _ => {
                    if !seg.is_empty() {
                        literal = Some(seg.to_owned());
                    }
                    seg.to_owned()
                }
            }
        })
        .collect();
    let mut query_map: IndexMap<String, Value> = IndexMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let v = templated(&Value::String(v.into_owned()), captured);
        match query_map.get_mut(k.as_ref()) {
            Some(Value::Array(items)) => items.push(v),
            Some(first) => *first = Value::Array(vec![first.clone(), v]),
            None => {
                query_map.insert(k.into_owned(), v);
            }
        }
    }
    let mut response_headers = header_map(response_headers, redact);
    // Per-request values never match between runs; keeping them would only mislead.
    response_headers.shift_remove("x-request-id");
    let response = body_value(response_body);
    let mut capture = IndexMap::new();
    if (200..300).contains(&status)
        && let Some(id) = response.as_ref().and_then(|b| b.get("id"))
        && (id.is_string() || id.is_number())
        && !session.captured.iter().any(|(v, _)| v == id)
    {
        let base = literal
            .as_deref()
            .map(crate::state::model::singular)
            .unwrap_or_else(|| "resource".into());
        let mut name = format!("{base}_id");
        let mut n = 2;
        while session.names.contains(&name) {
            name = format!("{base}_id_{n}");
            n += 1;
        }
        session.names.insert(name.clone());
        session.captured.push((id.clone(), name.clone()));
        capture.insert(name, "/id".to_owned());
    }
    let captured = &session.captured[..session.captured.len() - capture.len()];
    Step {
        name: None,
        request: Request {
            method: method.as_str().to_owned(),
            path: segments.join("/"),
            query: query_map,
            headers: header_map(request_headers, redact),
            body: body_value(request_body).map(|b| templated(&b, captured)),
        },
        response: Recorded {
            status,
            headers: response_headers,
            body: response,
        },
        capture,
        ignore: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_recognised() {
        for h in ["Authorization", "x-api-key", "X-Auth-Token", "cookie"] {
            assert!(is_credential(h), "{h}");
        }
        for h in ["content-type", "x-idempotency-key", "accept"] {
            assert!(!is_credential(h), "{h}");
        }
    }

    #[test]
    fn ids_are_captured_and_reused() {
        let mut s = Session::new("t".into());
        let mut h = http::HeaderMap::new();
        h.insert("x-api-key", http::HeaderValue::from_static("secret"));
        h.insert("x-idempotency-key", http::HeaderValue::from_static("k1"));
        let first = to_step(
            &mut s,
            true,
            &http::Method::POST,
            "/customers",
            "",
            &h,
            b"{}",
            201,
            &http::HeaderMap::new(),
            br#"{"id":"abc123"}"#,
        );
        assert_eq!(
            first.capture.get("customer_id").map(String::as_str),
            Some("/id")
        );
        assert_eq!(first.request.headers["x-api-key"], REDACTED);
        assert_eq!(first.request.headers["x-idempotency-key"], "{{$uuid}}");
        let second = to_step(
            &mut s,
            true,
            &http::Method::POST,
            "/customers/abc123/recipients",
            "customer=abc123",
            &h,
            br#"{"owner":"abc123"}"#,
            201,
            &http::HeaderMap::new(),
            br#"{"id":"r1"}"#,
        );
        assert_eq!(second.request.path, "/customers/{{customer_id}}/recipients");
        assert_eq!(second.request.query["customer"], "{{customer_id}}");
        assert_eq!(
            second.request.body,
            Some(serde_json::json!({"owner": "{{customer_id}}"}))
        );
        assert!(second.capture.contains_key("recipient_id"));
    }
}
