//! The one request handler every API route goes through:
//! admin? -> route -> authenticate (tenant) -> validate -> idempotency -> state or spec
//! answer, with every error in the API's format and every request in the journal.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, StatusCode};

use super::api::Api;
use super::auth;
use super::problem::{self, FieldError, Problem};
use super::request::{self, Incoming, Rejection};
use super::respond::{self, Prepared};
use super::routing::Match;
use crate::state::{self, Call, JournalEntry, Outcome, idempotency};

/// Longest latency `X-Sandbox-Latency-Ms` may add.
const MAX_LATENCY_MS: u64 = 10_000;
/// Largest request body read; larger ones get 413.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Tenant of requests to operations that need no credentials.
pub const ANONYMOUS: &str = "anonymous";

/// What happened to one request.
struct Answer {
    op: Option<usize>,
    prepared: Arc<Prepared>,
    tenant: String,
    verdict: String,
    /// Rate-limit headers for this tenant, added to whatever the answer is.
    rate_headers: Vec<(String, String)>,
}

pub async fn handle(State(api): State<Arc<Api>>, req: Request) -> Response {
    let n = api.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let request_id = format!("req_{n:016}");
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    if path == crate::spec::ADMIN_PREFIX
        || path.starts_with(&format!("{}/", crate::spec::ADMIN_PREFIX))
    {
        let prepared = super::admin::handle(&api, &parts, body).await;
        return to_response(&prepared, &request_id);
    }
    let mut answer = answer(&api, parts, body, &request_id).await;
    if !answer.rate_headers.is_empty() {
        let mut p = (*answer.prepared).clone();
        p.headers.append(&mut answer.rate_headers);
        answer.prepared = Arc::new(p);
    }
    let status = answer.prepared.status;
    let op_id = answer.op.map(|i| api.spec.operations[i].id.clone());
    if status >= 400 {
        tracing::info!(api = %api.name, %method, %path, status, operation = op_id.as_deref().unwrap_or("-"), request_id, verdict = %answer.verdict, "request refused");
    } else {
        tracing::debug!(api = %api.name, %method, %path, status, operation = op_id.as_deref().unwrap_or("-"), "request served");
    }
    api.engine.record_journal(JournalEntry {
        method: method.to_string(),
        path,
        status,
        tenant: answer.tenant,
        operation: op_id,
        verdict: answer.verdict,
    });
    to_response(&answer.prepared, &request_id)
}

async fn answer(api: &Api, parts: http::request::Parts, body: Body, request_id: &str) -> Answer {
    let path = parts.uri.path();
    // Problem `instance` members are usually `format: uri`: give the absolute request URL.
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let instance = format!(
        "http://{host}{}",
        parts.uri.path_and_query().map_or(path, |pq| pq.as_str())
    );
    let problem = |op: Option<usize>, status: u16, detail: String, errors: &[FieldError]| {
        let p = Problem {
            status,
            detail,
            errors,
            request_id,
            instance: &instance,
        };
        Arc::new(problem::render(api, op, &p))
    };
    let refuse = |op: Option<usize>, prepared: Arc<Prepared>, tenant: &str, verdict: &str| Answer {
        op,
        prepared,
        tenant: tenant.to_owned(),
        verdict: verdict.to_owned(),
        rate_headers: Vec::new(),
    };
    let (oi, path_params) = match api.router.find(&parts.method, path) {
        Match::Found { operation, params } => (operation, params),
        Match::NotFound => {
            let p = problem(
                None,
                404,
                format!("no operation matches {} {path}", parts.method),
                &[],
            );
            return refuse(None, p, "-", "unknown path");
        }
        Match::MethodNotAllowed(allowed) => {
            let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
            let detail = format!(
                "{} is not allowed on {path}; allowed: {}",
                parts.method,
                list.join(", ")
            );
            let mut p = (*problem(None, 405, detail, &[])).clone();
            p.headers.push(("allow".into(), list.join(", ")));
            return refuse(None, Arc::new(p), "-", "method not allowed");
        }
    };
    let op = &api.spec.operations[oi];
    let query = request::parse_query(parts.uri.query());
    let cookies = request::cookies(&parts.headers);
    let tenant = match auth::authenticate(op, &api.also_accept, &parts.headers, &query, &cookies) {
        Ok(credential) => {
            credential.map_or_else(|| ANONYMOUS.to_owned(), |c| api.engine.tenant_for(c))
        }
        Err(detail) => {
            return refuse(
                Some(oi),
                problem(Some(oi), 401, detail, &[]),
                "-",
                "missing credentials",
            );
        }
    };
    let verdict = api
        .engine
        .rate_limit
        .check(&tenant, api.engine.clock.now_secs());
    if !verdict.allowed {
        let limit = api.engine.rate_limit.limit.unwrap_or_default();
        let mut p = (*problem(
            Some(oi),
            429,
            format!(
                "more than {limit} requests in a minute; retry in {} s",
                verdict.retry_after
            ),
            &[],
        ))
        .clone();
        p.headers
            .push(("retry-after".into(), verdict.retry_after.to_string()));
        p.headers.extend(verdict.headers);
        return refuse(Some(oi), Arc::new(p), &tenant, "rate limited");
    }
    let rate_headers = verdict.headers;
    let refuse = |op: Option<usize>, prepared: Arc<Prepared>, tenant: &str, why: &str| Answer {
        rate_headers: rate_headers.clone(),
        ..refuse(op, prepared, tenant, why)
    };
    let allowed = &api.engine.profile.tenancy.allowed_keys;
    if tenant != ANONYMOUS && !allowed.is_empty() && !allowed.contains(&tenant) {
        return refuse(
            Some(oi),
            problem(
                Some(oi),
                401,
                "the credential is not one this sandbox accepts".into(),
                &[],
            ),
            "-",
            "unknown credential",
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        let p = problem(
            Some(oi),
            413,
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            &[],
        );
        return refuse(Some(oi), p, &tenant, "body too large");
    };
    let incoming = Incoming {
        path_params: &path_params,
        query,
        headers: &parts.headers,
        body: &bytes,
    };
    let parsed = match request::check(api, oi, &incoming) {
        Ok(parsed) => parsed,
        Err(Rejection::Invalid(errors)) => {
            let status = validation_status(op, &errors);
            let p = problem(Some(oi), status, summarise(&errors), &errors);
            return refuse(Some(oi), p, &tenant, "invalid request");
        }
        Err(Rejection::UnsupportedMediaType(detail)) => {
            return refuse(
                Some(oi),
                problem(Some(oi), 415, detail, &[]),
                &tenant,
                "unsupported media type",
            );
        }
    };
    // Faults on request: an injected error, a scenario preset, added latency.
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("x-sandbox-latency-ms").and_then(|v| v.parse::<u64>().ok()) {
        tokio::time::sleep(std::time::Duration::from_millis(ms.min(MAX_LATENCY_MS))).await;
    }
    let injected = header("x-sandbox-error-status")
        .and_then(|v| v.parse::<u16>().ok())
        .filter(|s| (400..=599).contains(s));
    let scenario = header("x-sandbox-scenario")
        .filter(|v| !v.is_empty() && v.len() <= 100)
        .map(str::to_owned);
    let preset = scenario
        .as_deref()
        .and_then(|s| api.engine.profile.scenarios.get(s));
    if let Some((status, message)) = injected
        .map(|s| {
            (
                s,
                header("x-sandbox-error-message")
                    .filter(|m| m.len() <= 500)
                    .map_or_else(|| "injected error".to_owned(), str::to_owned),
            )
        })
        .or_else(|| preset.map(|p| (p.status, p.message.clone())))
    {
        return refuse(
            Some(oi),
            problem(Some(oi), status, message, &[]),
            &tenant,
            "injected error",
        );
    }
    let instant = header("x-sandbox-instant-completion")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    let now = api.engine.clock.now_secs();
    let execute = || {
        let call = Call {
            tenant: &tenant,
            path_params: &path_params,
            query: &incoming.query,
            body: parsed.as_ref(),
            now,
            scenario: scenario.clone(),
            instant,
            headers: Some(&parts.headers),
        };
        match state::handle(api, oi, &call) {
            Outcome::Body(value) => Arc::new(respond::with_body(api, oi, value)),
            Outcome::Problem(status, detail) => problem(Some(oi), status, detail, &[]),
            Outcome::Stateless => respond::success(api, oi),
        }
    };
    // Idempotency: never on GET or DELETE; only when the client sends the API's key header.
    let key = api
        .engine
        .idempotency_header
        .as_deref()
        .filter(|_| matches!(parts.method, Method::POST | Method::PUT | Method::PATCH))
        .and_then(|h| parts.headers.get(h))
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let Some(key) = key else {
        return Answer {
            op: Some(oi),
            prepared: execute(),
            tenant,
            verdict: "ok".into(),
            rate_headers,
        };
    };
    let fingerprint =
        idempotency::fingerprint(parts.method.as_str(), path, parts.uri.query(), &bytes);
    let slot = api.engine.idempotency.slot(&tenant, key);
    let mut saved = slot.lock().await;
    if let Some(s) = saved.as_ref() {
        if s.fingerprint == fingerprint {
            return Answer {
                op: Some(oi),
                prepared: s.response.clone(),
                tenant,
                verdict: "replayed".into(),
                rate_headers,
            };
        }
        let status = if !op.declares(409) && op.declares(422) {
            422
        } else {
            409
        };
        let detail = format!("idempotency key '{key}' was already used with a different request");
        return refuse(
            Some(oi),
            problem(Some(oi), status, detail, &[]),
            &tenant,
            "idempotency conflict",
        );
    }
    let prepared = execute();
    // Server errors are not remembered, so a retry runs again.
    if prepared.status < 500 {
        *saved = Some(idempotency::Saved {
            fingerprint,
            response: prepared.clone(),
        });
    }
    Answer {
        op: Some(oi),
        prepared,
        tenant,
        verdict: "ok".into(),
        rate_headers,
    }
}

/// The status the operation declares for bad input: 400, else 422; a malformed id in the
/// path is, to a client, a resource that does not exist, so 404 is used when declared.
fn validation_status(op: &crate::spec::Operation, errors: &[FieldError]) -> u16 {
    let path_only = errors.iter().all(|e| e.location == "path");
    let order: &[u16] = if path_only {
        &[400, 404, 422]
    } else {
        &[400, 422]
    };
    order
        .iter()
        .copied()
        .find(|s| op.declares(*s))
        .unwrap_or(400)
}

fn summarise(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.message.clone(),
        [first, rest @ ..] => format!("{} (and {} more)", first.message, rest.len()),
        [] => "the request is invalid".into(),
    }
}

pub fn to_response(p: &Prepared, request_id: &str) -> Response {
    let mut res = Response::new(Body::from(p.body.clone()));
    *res.status_mut() = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = res.headers_mut();
    if let Some(ct) = &p.content_type
        && let Ok(v) = HeaderValue::from_str(ct)
    {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    for (k, v) in &p.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.insert(k, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
    res.into_response()
}
