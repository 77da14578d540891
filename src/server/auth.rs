//! Credential presence per the operation's `security` alternatives (apiKey in header, query
//! or cookie; HTTP bearer/basic; OAuth2 and OpenID Connect as bearer tokens). The sandbox
//! checks that a credential is there, not that it is "real": every key is accepted, and the
//! credential found is returned so later layers can treat it as the tenant.

use http::HeaderMap;

use crate::spec::Operation;
use crate::spec::catalog::Credential;

/// The credential that satisfied the operation's security, `Ok(None)` when none is required,
/// `Err` with a description of what was expected when nothing fits.
pub fn authenticate(
    op: &Operation,
    headers: &HeaderMap,
    query: &[(String, String)],
    cookies: &[(String, String)],
) -> Result<Option<String>, String> {
    if op.security.is_empty() || op.security.iter().any(|alt| alt.all.is_empty()) {
        return Ok(None);
    }
    for alternative in &op.security {
        let found: Option<Vec<String>> = alternative
            .all
            .iter()
            .map(|c| find(c, headers, query, cookies))
            .collect();
        if let Some(values) = found {
            return Ok(values.into_iter().next());
        }
    }
    let expected: Vec<String> = op
        .security
        .iter()
        .map(|alt| {
            alt.all
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join(" and ")
        })
        .collect();
    Err(format!(
        "missing credentials: send {}",
        expected.join(", or ")
    ))
}

fn find(
    c: &Credential,
    headers: &HeaderMap,
    query: &[(String, String)],
    cookies: &[(String, String)],
) -> Option<String> {
    let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    match c {
        Credential::Header(name) => headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .and_then(non_empty),
        Credential::Query(name) => query
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| non_empty(v)),
        Credential::Cookie(name) => cookies
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| non_empty(v)),
        Credential::Authorization(scheme) => headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                let (s, token) = v.trim().split_once(' ')?;
                (s.eq_ignore_ascii_case(scheme))
                    .then(|| non_empty(token))
                    .flatten()
            }),
    }
}

fn describe(c: &Credential) -> String {
    match c {
        Credential::Header(n) => format!("header '{n}'"),
        Credential::Query(n) => format!("query parameter '{n}'"),
        Credential::Cookie(n) => format!("cookie '{n}'"),
        Credential::Authorization(s) => format!("'Authorization: {} <credentials>'", capitalise(s)),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}
