//! The APIs this product bundles (`specs/<name>/openapi.yaml` plus its `sandbox.yaml`),
//! embedded in the binary so an installed `sandbox` serves them from any directory. A
//! folder `specs/<name>/` in the current directory overrides the embedded one of that name.
//! Embedded files are written once to a folder of their own under the system's temporary
//! directory (named after their contents), so relative `$ref`s and profiles load as usual.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

static BUNDLED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/specs");

/// Spec file names looked for in a folder.
const SPEC_FILES: [&str; 3] = ["openapi.yaml", "openapi.yml", "openapi.json"];

/// The names of the bundled APIs, sorted.
pub fn names() -> Vec<&'static str> {
    let mut out: Vec<&str> = BUNDLED
        .dirs()
        .filter(|d| {
            SPEC_FILES
                .iter()
                .any(|f| d.get_file(d.path().join(f)).is_some())
        })
        .filter_map(|d| d.path().file_name()?.to_str())
        .collect();
    out.sort_unstable();
    out
}

/// The spec file of API `name`: `specs/<name>/` under `local` when it is there, else the
/// embedded copy (written out on first use). `None` when there is no such API.
pub fn spec_for(name: &str, local: &Path) -> std::io::Result<Option<PathBuf>> {
    if let Some(found) = spec_in(&local.join(name)) {
        return Ok(Some(found));
    }
    let Some(dir) = BUNDLED.get_dir(name) else {
        return Ok(None);
    };
    let root = extracted()?;
    Ok(spec_in(&root.join(dir.path())))
}

/// Every API to serve when none is named: each bundled one (from `local` when it has its
/// folder), then the other APIs under `local`, sorted by name.
pub fn all(local: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for name in names() {
        if let Some(spec) = spec_for(name, local)? {
            out.push(spec);
            seen.push(local.join(name));
        }
    }
    if local.is_dir() {
        for spec in discover(local)? {
            if !seen.iter().any(|s| spec.starts_with(s)) {
                out.push(spec);
            }
        }
    }
    Ok(out)
}

fn spec_in(dir: &Path) -> Option<PathBuf> {
    SPEC_FILES.iter().map(|f| dir.join(f)).find(|p| p.is_file())
}

/// The folder the embedded files are written to, written on first use.
fn extracted() -> std::io::Result<PathBuf> {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(root) = ROOT.get() {
        return Ok(root.clone());
    }
    let root = extract()?;
    Ok(ROOT.get_or_init(|| root).clone())
}

fn extract() -> std::io::Result<PathBuf> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for file in files(&BUNDLED) {
        file.path().hash(&mut h);
        file.contents().hash(&mut h);
    }
    let root = std::env::temp_dir().join(format!(
        "api-sandbox-{}-specs-{:016x}",
        env!("CARGO_PKG_VERSION"),
        h.finish()
    ));
    if !root.join(".complete").exists() {
        // Written beside, then moved in place, so two sandboxes starting at once never read
        // a half-written folder.
        let tmp = root.with_extension(format!("tmp{}", std::process::id()));
        BUNDLED.extract(&tmp)?;
        std::fs::write(tmp.join(".complete"), b"")?;
        if std::fs::rename(&tmp, &root).is_err() {
            // Another process got there first.
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    Ok(root)
}

fn files<'a>(dir: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut out: Vec<_> = dir.files().collect();
    for d in dir.dirs() {
        out.extend(files(d));
    }
    out.sort_by_key(|f| f.path());
    out
}

/// Every `openapi.{yaml,yml,json}` below `dir`, sorted for a stable port order.
pub fn discover(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| SPEC_FILES.contains(&n))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_apis_are_embedded_and_load_from_anywhere() {
        assert!(names().contains(&"dakota"), "{:?}", names());
        let empty = std::env::temp_dir().join("api-sandbox-no-such-dir");
        let spec = spec_for("dakota", &empty)
            .expect("written out")
            .expect("bundled");
        assert!(spec.is_file());
        assert!(
            spec.with_file_name("sandbox.yaml").is_file(),
            "the profile comes along"
        );
        assert!(
            spec_for("nothing-by-that-name", &empty)
                .expect("io")
                .is_none()
        );
    }
}
