//! Credential presence per the operation's `security` alternatives (apiKey in header, query
//! or cookie; HTTP bearer/basic; OAuth2 and OpenID Connect as bearer tokens). The sandbox
//! checks that a credential is there, not that it is "real": every key is accepted, and the
//! credential found is returned so later layers can treat it as the tenant. The profile can
//! name schemes that are also accepted wherever any credential is required
//! (`auth.also_accept`), for clients that send one key everywhere.

use http::HeaderMap;

use crate::spec::Operation;
use crate::spec::catalog::Credential;

/// The credential that satisfied the operation's security, `Ok(None)` when none is required,
/// `Err` with a description of what was expected when nothing fits. `also_accept` are
/// credentials accepted in place of the declared ones, tried after them.
pub fn authenticate(
    op: &Operation,
    also_accept: &[Credential],
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
    if let Some(value) = also_accept
        .iter()
        .find_map(|c| find(c, headers, query, cookies))
    {
        return Ok(Some(value));
    }
    let mut expected: Vec<String> = op
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
    for c in also_accept.iter().map(describe) {
        if !expected.contains(&c) {
            expected.push(c);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::catalog::SecurityAlternative;

    fn op_requiring(c: Credential) -> Operation {
        Operation {
            id: "getThing".into(),
            method: http::Method::GET,
            path: "/things/{id}".into(),
            pointer: "/paths/~1things~1{id}/get".into(),
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
            security: vec![SecurityAlternative { all: vec![c] }],
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("a header value"));
        }
        h
    }

    #[test]
    fn also_accepted_credentials_stand_in_for_the_declared_ones() {
        let op = op_requiring(Credential::Header("x-application-token".into()));
        let also = [Credential::Header("x-api-key".into())];
        let key = headers(&[("x-api-key", "k1")]);
        assert_eq!(
            authenticate(&op, &also, &key, &[], &[]),
            Ok(Some("k1".into()))
        );
        // The declared scheme wins when both are sent.
        let both = headers(&[("x-api-key", "k1"), ("x-application-token", "t1")]);
        assert_eq!(
            authenticate(&op, &also, &both, &[], &[]),
            Ok(Some("t1".into()))
        );
        // Without the profile setting, the key is not enough.
        assert!(authenticate(&op, &[], &key, &[], &[]).is_err());
        let missing = authenticate(&op, &also, &HeaderMap::new(), &[], &[]);
        assert_eq!(
            missing,
            Err(
                "missing credentials: send header 'x-application-token', or header 'x-api-key'"
                    .into()
            )
        );
    }

    #[test]
    fn operations_without_security_ignore_also_accepted_schemes() {
        let mut op = op_requiring(Credential::Header("x-application-token".into()));
        op.security.clear();
        let also = [Credential::Header("x-api-key".into())];
        assert_eq!(
            authenticate(&op, &also, &HeaderMap::new(), &[], &[]),
            Ok(None)
        );
    }
}
