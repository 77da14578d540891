//! The one request handler every API route goes through:
//! route -> authenticate -> validate -> answer, with errors in the API's format.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};

use super::api::Api;
use super::auth;
use super::problem::{self, FieldError, Problem};
use super::request::{self, Incoming, Rejection};
use super::respond::{self, Prepared};
use super::routing::Match;

/// Largest request body read; larger ones get 413.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

pub async fn handle(State(api): State<Arc<Api>>, req: Request) -> Response {
    let n = api.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let request_id = format!("req_{n:016}");
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let (op, prepared) = answer(&api, parts, body, &request_id).await;
    let op_id = op
        .map(|i| api.spec.operations[i].id.as_str())
        .unwrap_or("-");
    if prepared.status >= 400 {
        tracing::info!(api = %api.name, %method, %path, status = prepared.status, operation = op_id, request_id, "request refused");
    } else {
        tracing::debug!(api = %api.name, %method, %path, status = prepared.status, operation = op_id, "request served");
    }
    to_response(&prepared, &request_id)
}

async fn answer(
    api: &Api,
    parts: http::request::Parts,
    body: Body,
    request_id: &str,
) -> (Option<usize>, Arc<Prepared>) {
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
    let (oi, path_params) = match api.router.find(&parts.method, path) {
        Match::Found { operation, params } => (operation, params),
        Match::NotFound => {
            return (
                None,
                problem(
                    None,
                    404,
                    format!("no operation matches {} {path}", parts.method),
                    &[],
                ),
            );
        }
        Match::MethodNotAllowed(allowed) => {
            let list: Vec<&str> = allowed.iter().map(http::Method::as_str).collect();
            let mut p = (*problem(
                None,
                405,
                format!(
                    "{} is not allowed on {path}; allowed: {}",
                    parts.method,
                    list.join(", ")
                ),
                &[],
            ))
            .clone();
            p.headers.push(("allow".into(), list.join(", ")));
            return (None, Arc::new(p));
        }
    };
    let op = &api.spec.operations[oi];
    let query = request::parse_query(parts.uri.query());
    let cookies = request::cookies(&parts.headers);
    if let Err(detail) = auth::authenticate(op, &parts.headers, &query, &cookies) {
        return (Some(oi), problem(Some(oi), 401, detail, &[]));
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return (
                Some(oi),
                problem(
                    Some(oi),
                    413,
                    format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
                    &[],
                ),
            );
        }
    };
    let incoming = Incoming {
        path_params: &path_params,
        query,
        headers: &parts.headers,
        body: &bytes,
    };
    match request::check(api, oi, &incoming) {
        Ok(_) => (Some(oi), respond::success(api, oi)),
        Err(Rejection::Invalid(errors)) => {
            let status = validation_status(op, &errors);
            let detail = summarise(&errors);
            (Some(oi), problem(Some(oi), status, detail, &errors))
        }
        Err(Rejection::UnsupportedMediaType(detail)) => {
            (Some(oi), problem(Some(oi), 415, detail, &[]))
        }
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

fn to_response(p: &Prepared, request_id: &str) -> Response {
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
