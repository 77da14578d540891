//! Credential classes' patterns (`dakkio_a_*`, `din_test_{team}`), compiled once: which
//! credentials a class matches, and the named parts a match gives.

use std::collections::BTreeMap;

use regex::Regex;

use crate::profile::CredentialClass;

/// The classes' patterns, compiled once.
#[derive(Debug, Default)]
pub struct Patterns(pub Vec<Option<Regex>>);

impl Patterns {
    /// `dakkio_a_*` or `din_test_{team}` as an anchored regex (`*` any text, `{name}` a
    /// named part); a class without a pattern gets `None`.
    pub fn compile(classes: &[CredentialClass]) -> Result<Self, String> {
        classes
            .iter()
            .map(|c| c.pattern.as_deref().map(pattern).transpose())
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

pub fn pattern(p: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let mut rest = p;
    while let Some(i) = rest.find(['*', '{']) {
        re.push_str(&regex::escape(&rest[..i]));
        if rest[i..].starts_with('*') {
            re.push_str(".*");
            rest = &rest[i + 1..];
        } else {
            let Some(end) = rest[i..].find('}') else {
                return Err(format!("'{p}': a '{{' without its '}}'"));
            };
            let name = &rest[i + 1..i + end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("'{p}': '{name}' is not a name"));
            }
            re.push_str(&format!("(?P<{name}>.+?)"));
            rest = &rest[i + end + 1..];
        }
    }
    re.push_str(&regex::escape(rest));
    re.push('$');
    Regex::new(&re).map_err(|e| format!("'{p}': {e}"))
}

/// `template` with `{name}` replaced by the credential's parts.
pub fn fill(template: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_globs_and_named_parts() {
        let re = pattern("din_test_{team}").unwrap();
        let caps = re.captures("din_test_acme").unwrap();
        assert_eq!(&caps["team"], "acme");
        assert!(re.captures("din_live_acme").is_none());
        let glob = pattern("dakkio_a_*").unwrap();
        assert!(glob.is_match("dakkio_a_anything"));
        assert!(!glob.is_match("dakkio_w_x"));
        assert!(pattern("x{").is_err());
        assert_eq!(
            fill(
                "{team} Inc",
                &BTreeMap::from([("team".into(), "acme".into())])
            ),
            "acme Inc"
        );
    }
}
