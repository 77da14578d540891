//! Matches request paths against the spec's path templates. Literal segments beat templated
//! ones (`/customers/sub-client-summary` before `/customers/{customer_id}`), parameters are
//! percent-decoded after splitting (so `%2F` stays inside a value), and a template segment may
//! mix text and parameters (`{id}.json`, `v{major}`), which general-purpose routers refuse.

use http::Method;

use crate::hashing::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `prefix{name}suffix`; plain `{name}` has empty prefix and suffix.
    Param {
        prefix: String,
        name: String,
        suffix: String,
    },
}

#[derive(Debug)]
struct Route {
    segments: Vec<Segment>,
    /// Method -> (index of the operation in the API's catalogue, its parameter names in order).
    /// Names are per method: two paths may spell the same position differently.
    methods: HashMap<Method, (usize, Vec<String>)>,
}

/// The route table of one API.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
    /// Routes by their first segment, when literal: a request is matched against the few
    /// that can match it, not the whole table (900 operations).
    by_head: HashMap<String, Vec<usize>>,
    /// Routes whose first segment is templated (or that have none).
    templated_head: Vec<usize>,
    /// Path prefixes of the spec's servers (`/v1`): a request under one is routed as if
    /// the prefix were not there, when the full path matches nothing.
    bases: Vec<String>,
}

/// Outcome of matching a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Match {
    Found {
        operation: usize,
        params: Vec<(String, String)>,
    },
    /// The path exists, the method does not; carries the allowed methods.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

fn parse_template(template: &str) -> Vec<Segment> {
    split(template)
        .map(|seg| match (seg.find('{'), seg.rfind('}')) {
            (Some(open), Some(close)) if open < close => Segment::Param {
                prefix: seg[..open].to_owned(),
                name: seg[open + 1..close].to_owned(),
                suffix: seg[close + 1..].to_owned(),
            },
            _ => Segment::Literal(seg.to_owned()),
        })
        .collect()
}

/// Path segments, ignoring one trailing slash (clients add them carelessly).
fn split(path: &str) -> impl Iterator<Item = &str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    trimmed.split('/').filter(|s| !s.is_empty())
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl Router {
    /// Adds an operation; templates that differ only in parameter names share one route.
    pub fn add(&mut self, template: &str, method: Method, operation: usize) {
        let segments = parse_template(template);
        let shape = |s: &[Segment]| -> Vec<Option<(String, String)>> {
            s.iter()
                .map(|x| match x {
                    Segment::Literal(l) => Some((l.clone(), String::new())),
                    Segment::Param { prefix, suffix, .. }
                        if prefix.is_empty() && suffix.is_empty() =>
                    {
                        None
                    }
                    Segment::Param { prefix, suffix, .. } => {
                        Some((format!("{{{prefix}"), suffix.clone()))
                    }
                })
                .collect()
        };
        let wanted = shape(&segments);
        let names: Vec<String> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param { name, .. } => Some(name.clone()),
                Segment::Literal(_) => None,
            })
            .collect();
        match self
            .routes
            .iter_mut()
            .find(|r| shape(&r.segments) == wanted)
        {
            Some(route) => {
                route.methods.entry(method).or_insert((operation, names));
            }
            None => {
                let mut methods = HashMap::default();
                methods.insert(method, (operation, names));
                let at = self.routes.len();
                match segments.first() {
                    Some(Segment::Literal(l)) => {
                        self.by_head.entry(l.clone()).or_default().push(at)
                    }
                    _ => self.templated_head.push(at),
                }
                self.routes.push(Route { segments, methods });
            }
        }
    }

    /// Server path prefixes requests may carry (`/v1`).
    pub fn set_bases(&mut self, bases: Vec<String>) {
        self.bases = bases;
    }

    pub fn find(&self, method: &Method, path: &str) -> Match {
        let found = self.find_exact(method, path);
        if found != Match::NotFound {
            return found;
        }
        for base in &self.bases {
            if let Some(rest) = path.strip_prefix(base.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                let inner = self.find_exact(method, rest);
                if inner != Match::NotFound {
                    return inner;
                }
            }
        }
        found
    }

    fn find_exact(&self, method: &Method, path: &str) -> Match {
        let parts: Vec<&str> = split(path).collect();
        let head = parts.first().copied().unwrap_or_default();
        let decoded = head.contains('%').then(|| decode(head));
        let candidates = [Some(head), decoded.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(|h| self.by_head.get(h))
            .flatten()
            .chain(&self.templated_head)
            .map(|&i| &self.routes[i])
            .filter(|r| r.segments.len() == parts.len());
        let mut best: Option<(Vec<u8>, &Route, Vec<String>)> = None;
        for route in candidates {
            let Some((score, params)) = match_route(route, &parts) else {
                continue;
            };
            if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, route, params));
            }
        }
        let Some((_, route, values)) = best else {
            return Match::NotFound;
        };
        // HEAD is answered like GET when the spec does not declare it.
        let op = route.methods.get(method).or_else(|| {
            (*method == Method::HEAD)
                .then(|| route.methods.get(&Method::GET))
                .flatten()
        });
        match op {
            Some((operation, names)) => Match::Found {
                operation: *operation,
                params: names.iter().cloned().zip(values).collect(),
            },
            None => {
                let mut allowed: Vec<Method> = route.methods.keys().cloned().collect();
                allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                Match::MethodNotAllowed(allowed)
            }
        }
    }
}

/// Score: per segment, 2 for a literal, 1 for a mixed template, 0 for a bare parameter;
/// compared lexicographically so the leftmost literal decides.
fn match_route(route: &Route, parts: &[&str]) -> Option<(Vec<u8>, Vec<String>)> {
    let mut score = Vec::with_capacity(parts.len());
    let mut params = Vec::new();
    for (seg, raw) in route.segments.iter().zip(parts) {
        match seg {
            Segment::Literal(l) => {
                if l != raw && !(raw.contains('%') && *l == decode(raw)) {
                    return None;
                }
                score.push(2);
            }
            Segment::Param { prefix, suffix, .. } => {
                let value = raw
                    .strip_prefix(prefix.as_str())?
                    .strip_suffix(suffix.as_str())?;
                if value.is_empty() {
                    return None;
                }
                params.push(decode(value));
                score.push(if prefix.is_empty() && suffix.is_empty() {
                    0
                } else {
                    1
                });
            }
        }
    }
    Some((score, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let mut r = Router::default();
        r.add("/customers/{customer_id}", Method::GET, 0);
        r.add("/customers/sub-client-summary", Method::GET, 1);
        r.add("/customers/{id}", Method::DELETE, 2);
        r.add("/files/{name}.json", Method::GET, 3);
        r.add("/customers", Method::POST, 4);
        r
    }

    #[test]
    fn literals_beat_parameters_and_values_decode() {
        let r = router();
        assert_eq!(
            r.find(&Method::GET, "/customers/sub-client-summary"),
            Match::Found {
                operation: 1,
                params: vec![]
            }
        );
        assert_eq!(
            r.find(&Method::GET, "/customers/a%2Fb%20c"),
            Match::Found {
                operation: 0,
                params: vec![("customer_id".into(), "a/b c".into())]
            }
        );
        assert_eq!(
            r.find(&Method::DELETE, "/customers/x/"),
            Match::Found {
                operation: 2,
                params: vec![("id".into(), "x".into())]
            }
        );
        assert_eq!(
            r.find(&Method::GET, "/files/report.json"),
            Match::Found {
                operation: 3,
                params: vec![("name".into(), "report".into())]
            }
        );
    }

    #[test]
    fn a_server_base_path_may_prefix_any_route() {
        let mut r = router();
        r.set_bases(vec!["/api/v3".into()]);
        assert!(matches!(
            r.find(&Method::GET, "/api/v3/customers/abc"),
            Match::Found { .. }
        ));
        assert!(matches!(
            r.find(&Method::GET, "/customers/abc"),
            Match::Found { .. }
        ));
        assert_eq!(r.find(&Method::GET, "/api/v3x/customers"), Match::NotFound);
    }

    #[test]
    fn unknown_paths_and_methods() {
        let r = router();
        assert_eq!(r.find(&Method::GET, "/nope"), Match::NotFound);
        assert_eq!(r.find(&Method::GET, "/customers/a/b"), Match::NotFound);
        assert_eq!(
            r.find(&Method::GET, "/customers"),
            Match::MethodNotAllowed(vec![Method::POST])
        );
        assert_eq!(
            r.find(&Method::HEAD, "/customers/x"),
            Match::Found {
                operation: 0,
                params: vec![("customer_id".into(), "x".into())]
            }
        );
    }
}
