//! The admin token. On loopback without `--admin-token`, `/__sandbox/` (the admin API and the
//! dashboard) is open; otherwise every request under it must carry the token, as
//! `Authorization: Bearer <token>`, a `?token=` query parameter (the dashboard URL printed at
//! start carries one), or the cookie the dashboard sets from that parameter. The API's own
//! routes are never checked here: they keep the spec's own security.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

use super::sandbox::Sandbox;
use super::ui::page;
use crate::spec::ADMIN_PREFIX;

/// The cookie the dashboard keeps the token in (scoped to `/__sandbox`).
pub const COOKIE: &str = "sandbox_admin_token";

/// A fresh random token: 32 hex characters.
pub fn generate() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Middleware: lets a request under `/__sandbox` through only with the token (when one is
/// set); remembers a token that came as `?token=` in a cookie.
pub async fn admin_only(State(sandbox): State<Arc<Sandbox>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let admin = crate::spec::is_admin_path(path);
    let Some(token) = sandbox.admin_token.as_deref().filter(|_| admin) else {
        return next.run(req).await;
    };
    let in_query = query_token(req.uri().query());
    let presented = bearer(req.headers())
        .or_else(|| in_query.clone())
        .or_else(|| cookie(req.headers()));
    if !presented.is_some_and(|p| same(&p, token)) {
        return refuse(path);
    }
    let mut res = next.run(req).await;
    if in_query.is_some_and(|q| same(&q, token)) {
        let value = format!("{COOKIE}={token}; Path={ADMIN_PREFIX}; HttpOnly; SameSite=Strict");
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// Compares digests, so the comparison takes the same time wherever the strings differ.
fn same(presented: &str, token: &str) -> bool {
    Sha256::digest(presented.as_bytes()) == Sha256::digest(token.as_bytes())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == COOKIE).then(|| v.to_owned())
        })
}

/// 401: a page saying where the token comes from for the dashboard, problem JSON elsewhere.
fn refuse(path: &str) -> Response {
    let (content_type, body) = if path.starts_with(&format!("{ADMIN_PREFIX}/ui")) {
        ("text/html; charset=utf-8", page::locked().into_string())
    } else {
        let detail = "this sandbox's admin API needs its admin token: send \
                      'Authorization: Bearer <token>' (the token is printed at start)";
        let problem = serde_json::json!({"type": "about:blank", "title": "Unauthorized",
                                         "status": 401, "detail": detail});
        ("application/problem+json", problem.to_string())
    };
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"sandbox admin\""),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_from_header_query_and_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sandbox_admin_token=xyz"),
        );
        assert_eq!(bearer(&h).as_deref(), Some("abc"));
        assert_eq!(cookie(&h).as_deref(), Some("xyz"));
        assert_eq!(query_token(Some("x=1&token=t%2B1")).as_deref(), Some("t+1"));
        assert!(same("abc", "abc") && !same("abc", "abd"));
        assert_eq!(generate().len(), 32);
    }
}
