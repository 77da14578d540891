//! Snapshots of normalised response bodies in insta's file format, so that a change in a
//! server's behaviour shows up as a diff that `cargo insta review` can show and accept.
//!
//! A file is `DIR/<scenario>__<NN>_<step>.snap`: a `---`-delimited YAML header with `source`
//! (the fixture file) and `expression` (the request), then the body as pretty JSON, exactly
//! as insta writes file snapshots. A missing snapshot is written; a different one is left in
//! place and the new body goes to `<name>.snap.new`, which is what `cargo insta review`
//! looks for. insta's public API can read snapshot files but cannot build their metadata,
//! so the (small, stable) format is written here, and the tests read it back with insta.

use std::path::{Path, PathBuf};

/// The outcome of checking one step's snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Matched,
    /// No snapshot existed; it was written.
    Written(PathBuf),
    /// The snapshot differs; the new contents are in this `.snap.new` file.
    Changed(PathBuf),
}

/// insta snapshot names are file-name safe: lowercase letters, digits and `_`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_owned();
    if out.is_empty() { "step".into() } else { out }
}

/// The file a step's snapshot lives in.
pub fn path_for(dir: &Path, scenario: &str, step: usize, step_name: &str) -> PathBuf {
    dir.join(format!(
        "{}__{step:02}_{}.snap",
        slug(scenario),
        slug(step_name)
    ))
}

fn render(source: &str, expression: &str, contents: &str) -> String {
    // YAML-quote both values through serde so any character is safe.
    let header = |k: &str, v: &str| {
        let quoted = yaml_serde::to_string(v).unwrap_or_else(|_| format!("{v:?}"));
        format!("{k}: {}\n", quoted.trim_end())
    };
    format!(
        "---\n{}{}---\n{}\n",
        header("source", source),
        header("expression", expression),
        contents.trim_end()
    )
}

/// The body part of a snapshot file (after the second `---` line), trailing space trimmed the
/// way insta compares.
fn contents_of(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(rest[end + 5..].trim_end())
}

/// Compares `contents` with the snapshot at `path`, writing it or a `.snap.new` as needed.
pub fn check(
    path: &Path,
    source: &str,
    expression: &str,
    contents: &str,
) -> std::io::Result<Outcome> {
    let rendered = render(source, expression, contents);
    let new_path = path.with_extension("snap.new");
    match std::fs::read_to_string(path) {
        Ok(existing) => {
            if contents_of(&existing) == Some(contents.trim_end()) {
                // A stale pending file would show up in review for nothing.
                let _ = std::fs::remove_file(&new_path);
                Ok(Outcome::Matched)
            } else {
                std::fs::write(&new_path, rendered)?;
                Ok(Outcome::Changed(new_path))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, rendered)?;
            Ok(Outcome::Written(path.to_path_buf()))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_matched_then_changed() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(dir.path(), "Customer flow", 1, "POST /customers");
        assert!(p.ends_with("customer_flow__01_post_customers.snap"));
        assert_eq!(
            check(&p, "f.yaml", "POST /customers", "{\n  \"a\": 1\n}").unwrap(),
            Outcome::Written(p.clone())
        );
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("---\nsource: f.yaml\nexpression: POST /customers\n---\n{"));
        assert_eq!(
            check(&p, "f.yaml", "POST /customers", "{\n  \"a\": 1\n}").unwrap(),
            Outcome::Matched
        );
        let changed = check(&p, "f.yaml", "POST /customers", "{}").unwrap();
        assert_eq!(changed, Outcome::Changed(p.with_extension("snap.new")));
        let snap = insta::Snapshot::from_file(&p.with_extension("snap.new")).unwrap();
        assert_eq!(snap.metadata().source(), Some("f.yaml"));
    }
}
