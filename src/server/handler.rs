//! The one request handler every API route goes through. A request's journey, each step a
//! function below that either hands on or refuses in the API's own error format:
//!
//! admin? -> [`route`](Journey::route) -> [`authenticate`](Journey::authenticate) (tenant)
//! -> [`limit_rate`](Journey::limit_rate) -> [`admit`](Journey::admit) -> read the body ->
//! [`validate`](Journey::validate) -> [`faults`](Journey::faults) ->
//! [`answer_once`](Journey::answer_once) (idempotency) -> [`execute`](Journey::execute)
//! (engine, else the spec), and every request lands in the journal.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use parking_lot::Mutex;
use serde_json::Value;

use super::auth;
use super::journal::{self, Exchange, JournalEntry, Reason};
use super::request::{self, Incoming, Rejection};
use super::sandbox::Sandbox;
use crate::compiled::Prepared;
use crate::compiled::problem::{self, FieldError, Problem};
use crate::compiled::respond;
use crate::compiled::routing::Match;
use crate::state::idempotency::{self, Begin, Kept};
use crate::state::tenancy::Identity;
use crate::state::{Call, Outcome};

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

pub async fn handle(State(sandbox): State<Arc<Sandbox>>, req: Request) -> Response {
    let started = Instant::now();
    let arrived = sandbox.engine.clock.now();
    let request_id = sandbox.next_request_id();
    let (mut parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    if crate::spec::is_admin_path(&path) {
        let prepared = super::admin::handle(&sandbox, &parts, body).await;
        return to_response(&prepared, &request_id, &[]);
    }
    let mut journey = Journey::new(&sandbox, &parts, &request_id);
    let answer = journey.run(body).await.unwrap_or_else(|refused| refused);
    let (request_body, reason) = (journey.body, journey.reason.into_inner());
    // Headers of this request's own (its rate limit, its id under the names the operation
    // declares for it), sent after the answer's and replacing any of the same name: the
    // answer itself, perhaps kept for replays, is not copied to add them.
    let mut extra = answer.rate_headers;
    if let Some(oi) = answer.op {
        let op = &sandbox.api.spec.operations[oi];
        extra.extend(
            request_id_headers(op, answer.prepared.status).map(|n| (n, request_id.clone())),
        );
    }
    let status = answer.prepared.status;
    let op_id = answer.op.map(|i| sandbox.api.spec.operations[i].id.clone());
    let api = &sandbox.api.name;
    if status >= 400 {
        tracing::info!(%api, %method, %path, status, operation = op_id.as_deref().unwrap_or("-"), request_id, verdict = %answer.verdict, "request refused");
    } else {
        tracing::debug!(%api, %method, %path, status, operation = op_id.as_deref().unwrap_or("-"), "request served");
    }
    let response = to_response(&answer.prepared, &request_id, &extra);
    // The request's headers are needed no more: the journal keeps them (values copied).
    let exchange = Exchange {
        query: journal::query(parts.uri.query()),
        request: journal::received(std::mem::take(&mut parts.headers), &request_body),
        response: journal::answered(answer.prepared, request_id.clone(), extra),
    };
    let entry = JournalEntry {
        seq: 0,
        id: request_id,
        at: arrived,
        method: method.to_string(),
        path,
        status,
        tenant: answer.tenant,
        operation: op_id,
        verdict: answer.verdict,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        reason,
    };
    sandbox.journal.record(entry, exchange);
    response
}

/// One request on its way through the pipeline; each step refuses with an [`Answer`].
struct Journey<'a> {
    sandbox: &'a Sandbox,
    parts: &'a http::request::Parts,
    request_id: &'a str,
    /// The operation, once routed.
    op: Option<usize>,
    /// The tenant, once authenticated (`-` before).
    tenant: String,
    /// Who the credential is, once authenticated (none when the operation needs none).
    identity: Option<Identity>,
    rate_headers: Vec<(String, String)>,
    /// The request body, once read.
    body: bytes::Bytes,
    /// The detail and field errors of the problem answered, if any, for the journal. (A
    /// mutex, not a cell: steps hold `&self` across awaits, so the journey must be `Sync`.)
    reason: Mutex<Option<Reason>>,
}

/// A step's result: what it found, or the answer that ends the journey.
type Step<T> = Result<T, Answer>;

impl<'a> Journey<'a> {
    fn new(sandbox: &'a Sandbox, parts: &'a http::request::Parts, request_id: &'a str) -> Self {
        Self {
            sandbox,
            parts,
            request_id,
            op: None,
            tenant: "-".into(),
            identity: None,
            rate_headers: Vec::new(),
            body: bytes::Bytes::new(),
            reason: Mutex::new(None),
        }
    }

    async fn run(&mut self, body: Body) -> Step<Answer> {
        let path_params = self.route()?;
        let query = request::parse_query(self.parts.uri.query());
        self.identity = self.authenticate(&query)?;
        self.tenant = self
            .identity
            .as_ref()
            .map_or_else(|| ANONYMOUS.to_owned(), |i| i.tenant.clone());
        self.rate_headers = self.limit_rate()?;
        self.admit()?;
        self.authorize()?;
        let bytes = self.read_body(body).await?;
        self.body = bytes.clone();
        let incoming = Incoming {
            path_params: &path_params,
            query,
            headers: &self.parts.headers,
            body: &bytes,
        };
        let parsed = self.validate(&incoming)?;
        self.within_scope(&path_params, &incoming.query, parsed.as_ref())?;
        let scenario = self.faults().await?;
        if let Some(identity) = &self.identity {
            let engine = &self.sandbox.engine;
            let written = engine.provision(&self.sandbox.api.spec, identity);
            engine.durable(written).await;
        }
        let call = Call {
            tenant: &self.tenant,
            path_params: &path_params,
            query: &incoming.query,
            body: parsed.as_ref(),
            now: self.sandbox.engine.clock.now_secs(),
            scenario,
            instant: self.flag("x-sandbox-instant-completion"),
            headers: Some(&self.parts.headers),
            identity: self.identity.as_ref(),
        };
        self.answer_once(&call, &bytes).await
    }

    /// The absolute request URL (problem `instance` members are usually `format: uri`).
    fn instance(&self) -> String {
        let host = self
            .parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let uri = &self.parts.uri;
        let path = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        format!("http://{host}{path}")
    }

    fn oi(&self) -> usize {
        self.op.unwrap_or_default()
    }

    /// An error in the API's format for the operation (if routed).
    fn problem(&self, status: u16, detail: String, errors: &[FieldError]) -> Prepared {
        self.coded_problem(status, None, detail, errors)
    }

    /// The same, with the machine code the answer names.
    fn coded_problem(
        &self,
        status: u16,
        code: Option<&str>,
        detail: String,
        errors: &[FieldError],
    ) -> Prepared {
        *self.reason.lock() = Some(Reason {
            detail: detail.clone(),
            errors: errors.to_vec(),
        });
        let p = Problem {
            status,
            code,
            detail,
            errors,
            request_id: self.request_id,
            instance: &self.instance(),
        };
        problem::render(&self.sandbox.api, self.op, &p)
    }

    /// The answer that ends the journey here.
    fn refuse(&self, prepared: Prepared, verdict: &str) -> Answer {
        self.answer(Arc::new(prepared), verdict)
    }

    fn answer(&self, prepared: Arc<Prepared>, verdict: &str) -> Answer {
        Answer {
            op: self.op,
            prepared,
            tenant: self.tenant.clone(),
            verdict: verdict.to_owned(),
            rate_headers: self.rate_headers.clone(),
        }
    }

    /// The operation the method and path name, and its path parameters.
    fn route(&mut self) -> Step<Vec<(String, String)>> {
        let (method, path) = (&self.parts.method, self.parts.uri.path());
        match self.sandbox.api.router.find(method, path) {
            Match::Found { operation, params } => {
                self.op = Some(operation);
                Ok(params)
            }
            Match::NotFound => {
                let detail = format!("no operation matches {method} {path}");
                Err(self.refuse(self.problem(404, detail, &[]), "unknown path"))
            }
            Match::MethodNotAllowed(allowed) => {
                let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
                let detail = format!(
                    "{method} is not allowed on {path}; allowed: {}",
                    list.join(", ")
                );
                let mut p = self.problem(405, detail, &[]);
                p.headers.push(("allow".into(), list.join(", ")));
                Err(self.refuse(p, "method not allowed"))
            }
        }
    }

    /// The tenant the credentials act for (anonymous where the operation needs none).
    /// Who the credentials are (none where the operation needs none).
    fn authenticate(&self, query: &[(String, String)]) -> Step<Option<Identity>> {
        let api = &self.sandbox.api;
        let op = &api.spec.operations[self.oi()];
        let cookies = request::cookies(&self.parts.headers);
        match auth::authenticate(op, &api.also_accept, &self.parts.headers, query, &cookies) {
            Ok(None) => Ok(None),
            Ok(Some(credential)) => match self.sandbox.engine.identify(credential) {
                Ok(identity) => Ok(Some(identity)),
                Err(detail) => {
                    let detail = self.unauthorized(detail);
                    Err(self.refuse(self.problem(401, detail, &[]), "unknown credential"))
                }
            },
            Err(detail) => {
                let detail = self.unauthorized(detail);
                Err(self.refuse(self.problem(401, detail, &[]), "missing credentials"))
            }
        }
    }

    /// A 401's message: the profile's, when it words one.
    fn unauthorized(&self, detail: String) -> String {
        let profile = &self.sandbox.engine.profile;
        profile.tenancy.unauthorized.clone().unwrap_or(detail)
    }

    /// The operation allows the credential's role (403 otherwise).
    fn authorize(&self) -> Step<()> {
        let Some(identity) = &self.identity else {
            return Ok(());
        };
        let op = &self.sandbox.api.spec.operations[self.oi()];
        self.sandbox
            .engine
            .permitted(&op.id, identity)
            .map_err(|detail| self.refuse(self.problem(403, detail, &[]), "forbidden"))
    }

    /// The request names only what the credential is limited to (403 otherwise).
    fn within_scope(
        &self,
        path: &[(String, String)],
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Step<()> {
        let Some(identity) = self.identity.as_ref().filter(|i| !i.scope.is_empty()) else {
            return Ok(());
        };
        let named: Vec<(String, String)> = path.iter().chain(query).cloned().collect();
        self.sandbox
            .engine
            .within_scope(identity, &named, body)
            .map_err(|detail| self.refuse(self.problem(403, detail, &[]), "out of scope"))
    }

    /// The tenant's rate-limit headers, or 429 once its window is used up.
    fn limit_rate(&self) -> Step<Vec<(String, String)>> {
        let engine = &self.sandbox.engine;
        let verdict = engine
            .rate_limit
            .check(&self.tenant, engine.clock.now_secs());
        if verdict.allowed {
            return Ok(verdict.headers);
        }
        let resets = chrono::DateTime::from_timestamp(verdict.reset, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let detail = format!(
            "Rate limit exceeded ({} requests per {}). Resets at {resets}",
            verdict.limit,
            engine.rate_limit.window_name()
        );
        let mut p = self.problem(429, detail, &[]);
        p.headers
            .push(("retry-after".into(), verdict.retry_after.to_string()));
        p.headers.extend(verdict.headers);
        Err(self.refuse(p, "rate limited"))
    }

    /// Only the credentials the profile allows, when it names any.
    fn admit(&mut self) -> Step<()> {
        let allowed = &self.sandbox.engine.profile.tenancy.allowed_keys;
        if self.tenant == ANONYMOUS || allowed.is_empty() || allowed.contains(&self.tenant) {
            return Ok(());
        }
        self.tenant = "-".into();
        let detail = "the credential is not one this sandbox accepts".to_owned();
        Err(self.refuse(self.problem(401, detail, &[]), "unknown credential"))
    }

    async fn read_body(&self, body: Body) -> Step<bytes::Bytes> {
        axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                let detail = format!("the request body is larger than {MAX_BODY_BYTES} bytes");
                self.refuse(self.problem(413, detail, &[]), "body too large")
            })
    }

    /// Parameters and body against the spec; the parsed JSON body, if any.
    fn validate(&self, incoming: &Incoming) -> Step<Option<Value>> {
        let op = &self.sandbox.api.spec.operations[self.oi()];
        match request::check(&self.sandbox.api, self.oi(), incoming) {
            Ok(parsed) => Ok(parsed),
            Err(Rejection::Invalid(errors)) => {
                let status = validation_status(op, &errors);
                let p = self.problem(status, summarise(&errors), &errors);
                Err(self.refuse(p, "invalid request"))
            }
            Err(Rejection::UnsupportedMediaType(detail)) => {
                Err(self.refuse(self.problem(415, detail, &[]), "unsupported media type"))
            }
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }

    fn flag(&self, name: &str) -> bool {
        self.header(name)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
    }

    /// Faults the request asks for: added latency, an injected error, a scenario preset.
    /// Returns the scenario, which a created record keeps.
    async fn faults(&self) -> Step<Option<String>> {
        if let Some(ms) = self
            .header("x-sandbox-latency-ms")
            .and_then(|v| v.parse::<u64>().ok())
        {
            tokio::time::sleep(std::time::Duration::from_millis(ms.min(MAX_LATENCY_MS))).await;
        }
        let scenario = self
            .header("x-sandbox-scenario")
            .filter(|v| !v.is_empty() && v.len() <= 100)
            .map(str::to_owned);
        let injected = self
            .header("x-sandbox-error-status")
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|s| (400..=599).contains(s))
            .map(|s| {
                let message = self
                    .header("x-sandbox-error-message")
                    .filter(|m| m.len() <= 500)
                    .map_or_else(|| "injected error".to_owned(), str::to_owned);
                (s, message)
            });
        let preset = scenario
            .as_deref()
            .and_then(|s| self.sandbox.engine.profile.scenarios.get(s))
            .map(|p| (p.status, p.message.clone()));
        match injected.or(preset) {
            Some((status, message)) => {
                Err(self.refuse(self.problem(status, message, &[]), "injected error"))
            }
            None => Ok(scenario),
        }
    }

    /// Runs the call once per idempotency key: a retry with the same request replays the
    /// first answer; the same key with another request is a conflict. Never on GET or
    /// DELETE, and only when the client sends the API's key header.
    async fn answer_once(&self, call: &Call<'_>, bytes: &[u8]) -> Step<Answer> {
        let engine = &self.sandbox.engine;
        let method = &self.parts.method;
        let writes = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        let from_header = self
            .sandbox
            .api
            .idempotency_header
            .as_deref()
            .filter(|_| writes)
            .and_then(|h| self.parts.headers.get(h))
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty());
        // Some APIs also take the key as a member of the body (`idempotency_key`).
        let member = self.sandbox.api.profile.idempotency_member.as_deref();
        let from_body = member
            .filter(|_| writes)
            .and_then(|m| call.body?.get(m)?.as_str())
            .filter(|v| !v.is_empty());
        let Some(key) = from_header.or(from_body) else {
            let (prepared, _, written) = self.execute(call).await;
            engine.durable(written).await;
            let verdict = executed(&prepared);
            return Ok(self.answer(prepared, verdict));
        };
        let uri = &self.parts.uri;
        let fingerprint = idempotency::fingerprint(method.as_str(), uri.path(), uri.query(), bytes);
        loop {
            let now = engine.clock.now();
            match engine
                .idempotency
                .begin(&self.tenant, key, fingerprint, now)
            {
                Begin::Replay(kept) => {
                    return Ok(self.answer(self.replayed(call, kept), "replayed"));
                }
                Begin::Conflict => {
                    let op = &self.sandbox.api.spec.operations[self.oi()];
                    let status = if !op.declares(409) && op.declares(422) {
                        422
                    } else {
                        409
                    };
                    let detail = format!(
                        "idempotency key '{key}' was already used with a different request"
                    );
                    let code = self.sandbox.api.errors.idempotency_code();
                    let p = self.coded_problem(status, code, detail, &[]);
                    return Err(self.refuse(p, "idempotency conflict"));
                }
                // Another request with this key is executing: its answer is ours.
                Begin::Wait(running) => {
                    drop(running.lock().await);
                }
                Begin::Run(run) => {
                    let (prepared, kept, written) = self.execute(call).await;
                    // What the answer acknowledges is on disk before it leaves.
                    engine.durable(written).await;
                    // Server errors and refused input (400, 422) are not remembered, so a
                    // retry, or a corrected request under the same key, runs again.
                    let remembered = prepared.status < 500 && !matches!(prepared.status, 400 | 422);
                    let saved = remembered.then_some(idempotency::Saved {
                        fingerprint,
                        response: kept,
                    });
                    engine.idempotency.finish(run, saved, engine.clock.now());
                    let verdict = executed(&prepared);
                    return Ok(self.answer(prepared, verdict));
                }
            }
        }
    }

    /// The engine's answer, or the spec's where the operation keeps no state; and what an
    /// idempotent replay keeps of it.
    async fn execute(&self, call: &Call<'_>) -> (Arc<Prepared>, Kept, u64) {
        let (api, oi) = (&self.sandbox.api, self.oi());
        let engine = &self.sandbox.engine;
        let (outcome, written) = engine.answer(api, oi, call).await;
        let snapshot = match &outcome {
            Outcome::Shown(_, s) | Outcome::ShownText(_, s) => Some(s.clone()),
            _ => None,
        };
        let prepared = self.prepare(outcome);
        let kept = match snapshot {
            Some(s) => Kept::Shown(s),
            None => Kept::Bytes(prepared.clone()),
        };
        (prepared, kept, written)
    }

    /// The response for what the engine decided.
    fn prepare(&self, outcome: Outcome) -> Arc<Prepared> {
        let (api, oi) = (&self.sandbox.api, self.oi());
        match outcome {
            Outcome::Body(value) | Outcome::Shown(value, _) => {
                Arc::new(respond::with_body(api, oi, value))
            }
            Outcome::Text(text) | Outcome::ShownText(text, _) => {
                Arc::new(respond::with_text(api, oi, text))
            }
            Outcome::Problem(status, detail) => Arc::new(self.problem(status, detail, &[])),
            Outcome::Coded(status, code, detail) => {
                Arc::new(self.coded_problem(status, Some(&code), detail, &[]))
            }
            Outcome::Invalid(status, detail, errors) => {
                Arc::new(self.problem(status, detail, &errors))
            }
            Outcome::Stateless => respond::success(api, oi),
        }
    }

    /// The first answer to an idempotency key, again.
    fn replayed(&self, call: &Call, kept: Kept) -> Arc<Prepared> {
        match kept {
            Kept::Bytes(p) => p,
            Kept::Shown(snapshot) => {
                let (api, oi) = (&self.sandbox.api, self.oi());
                self.prepare(self.sandbox.engine.replay(api, oi, call, &snapshot))
            }
        }
    }
}

/// The verdict on an executed call: `ok`, or the error the engine answered with, in words
/// (`not found`, `conflict`).
fn executed(prepared: &Prepared) -> &'static str {
    if prepared.status < 400 {
        return "ok";
    }
    StatusCode::from_u16(prepared.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map_or("refused", |r| match r {
            "Not Found" => "not found",
            "Conflict" => "conflict",
            "Unprocessable Entity" => "unprocessable",
            "Bad Request" => "bad request",
            _ => "refused",
        })
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

/// The response headers the operation declares for `status` that carry the request's id
/// (`Dino-Request-Id`, `X-Request-Id`): the sandbox's own id goes in them, not an example.
fn request_id_headers(
    op: &crate::spec::Operation,
    status: u16,
) -> impl Iterator<Item = String> + '_ {
    let ends = |name: &str, tail: &str| {
        let (name, tail) = (name.as_bytes(), tail.as_bytes());
        name.len() >= tail.len() && name[name.len() - tail.len()..].eq_ignore_ascii_case(tail)
    };
    op.response_for(status)
        .into_iter()
        .flat_map(|r| &r.headers)
        .filter(move |h| ends(&h.name, "request-id") || ends(&h.name, "request_id"))
        .map(|h| h.name.clone())
}

/// The response made from answer `p` to request `request_id`, with `extra` headers.
pub fn to_response(p: &Prepared, request_id: &str, extra: &[(String, String)]) -> Response {
    let mut res = Response::new(Body::from(p.body.clone()));
    *res.status_mut() = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *res.headers_mut() = p.header_map(request_id, extra);
    res.into_response()
}
