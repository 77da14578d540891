//! Broken specs fail fast with `file: JSON pointer: reason` and a non-zero exit; odd but valid
//! ones (JSON, relative refs, cycles) load; no input makes the loader panic.

use std::path::Path;

use api_sandbox::spec::Spec;
use api_sandbox::spec::load::parse_text;
use proptest::prelude::*;

use crate::common::run_cli;

/// Writes `files` into a temp dir and runs `sandbox serve --spec <first file>`; the process
/// must exit (a valid spec would keep serving, so these are all expected to fail).
pub fn serve_fails(files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("a temp dir");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dirs");
        }
        std::fs::write(&path, text).expect("write");
    }
    let spec = dir.path().join(files[0].0);
    let (code, _, stderr) = run_cli(
        &["serve", "--port", "0", "--spec", &spec.to_string_lossy()],
        dir.path(),
    );
    assert_eq!(code, 1, "expected exit code 1, stderr: {stderr}");
    stderr
}

const HEAD: &str = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n";

#[test]
fn syntax_errors_name_the_line() {
    let err = serve_fails(&[("api.yaml", "openapi: 3.0.3\ninfo: [unclosed\n")]);
    assert!(err.contains("api.yaml: /: invalid YAML at line"), "{err}");
    let err = serve_fails(&[("api.json", "{\"openapi\": \"3.0.3\",}")]);
    assert!(err.contains("api.json: /: invalid JSON at line 1"), "{err}");
}

#[test]
fn dangling_and_cyclic_refs_name_the_pointer() {
    let spec = format!(
        "{HEAD}paths:\n  /a:\n    get:\n      responses:\n        '200':\n          description: x\n          content:\n            application/json:\n              schema: {{$ref: '#/components/schemas/Nope'}}\n"
    );
    let err = serve_fails(&[("api.yaml", &spec)]);
    assert!(
        err.contains("api.yaml: /paths/~1a/get/responses/200/content/application~1json/schema/$ref: reference '#/components/schemas/Nope' points to nothing"),
        "{err}"
    );
    let cyclic = format!(
        "{HEAD}paths: {{}}\ncomponents:\n  schemas:\n    A: {{$ref: '#/components/schemas/B'}}\n    B: {{$ref: '#/components/schemas/A'}}\n"
    );
    let err = serve_fails(&[("api.yaml", &cyclic)]);
    assert!(
        err.contains(
            "/components/schemas/A/$ref: reference '#/components/schemas/B' is part of a cycle"
        ),
        "{err}"
    );
}

#[test]
fn refs_may_not_leave_the_spec_folder_or_the_machine() {
    let outside = format!(
        "{HEAD}paths: {{}}\ncomponents:\n  schemas:\n    A: {{$ref: '../secret.yaml#/X'}}\n"
    );
    let err = serve_fails(&[
        ("spec/api.yaml", &outside),
        ("secret.yaml", "X: {type: string}\n"),
    ]);
    assert!(err.contains("/components/schemas/A/$ref: reference '../secret.yaml#/X' points outside the spec's folder"), "{err}");
    let remote = format!(
        "{HEAD}paths: {{}}\ncomponents:\n  schemas:\n    A: {{$ref: 'https://example.com/x.yaml#/X'}}\n"
    );
    let err = serve_fails(&[("api.yaml", &remote)]);
    assert!(
        err.contains("remote reference 'https://example.com/x.yaml#/X' is not supported"),
        "{err}"
    );
    let missing =
        format!("{HEAD}paths: {{}}\ncomponents:\n  schemas:\n    A: {{$ref: 'gone.yaml#/X'}}\n");
    let err = serve_fails(&[("api.yaml", &missing)]);
    assert!(
        err.contains("reference 'gone.yaml#/X' names a file that cannot be read"),
        "{err}"
    );
}

#[test]
fn unsupported_versions_and_reserved_paths_are_refused() {
    // 3.0, 3.1 and Swagger 2.0 are read (tests/it/spec_versions.rs); others are not.
    let err = serve_fails(&[(
        "api.yaml",
        "openapi: 4.0.0\ninfo: {title: t, version: '1'}\npaths: {}\n",
    )]);
    assert!(
        err.contains("api.yaml: /openapi: unsupported OpenAPI version \"4.0.0\""),
        "{err}"
    );
    let err = serve_fails(&[(
        "api.yaml",
        "swagger: '1.2'\ninfo: {title: t, version: '1'}\npaths: {}\n",
    )]);
    assert!(
        err.contains("api.yaml: /swagger: Swagger 1.2 is not a version this sandbox reads"),
        "{err}"
    );
    let reserved = format!(
        "{HEAD}paths:\n  /__sandbox/reset:\n    post:\n      responses: {{'204': {{description: x}}}}\n"
    );
    let err = serve_fails(&[("api.yaml", &reserved)]);
    assert!(
        err.contains("/paths/~1__sandbox~1reset: paths under /__sandbox/ are reserved"),
        "{err}"
    );
}

#[test]
fn structural_errors_name_the_pointer() {
    let bad = format!("{HEAD}paths:\n  /a:\n    get:\n      responses:\n        '200': 42\n");
    let err = serve_fails(&[("api.yaml", &bad)]);
    assert!(
        err.contains("api.yaml: /paths/~1a/get/responses/200: not valid OpenAPI 3.0"),
        "{err}"
    );
    let no_version = "info: {title: t, version: '1'}\npaths: {}\n";
    let err = serve_fails(&[("api.yaml", no_version)]);
    assert!(
        err.contains("api.yaml: /openapi: missing 'openapi' version field"),
        "{err}"
    );
    let bad_regex = format!(
        "{HEAD}paths:\n  /a:\n    get:\n      parameters:\n        - {{name: q, in: query, schema: {{type: string, pattern: '(unclosed'}}}}\n      responses: {{'204': {{description: x}}}}\n"
    );
    let err = serve_fails(&[("api.yaml", &bad_regex)]);
    assert!(
        err.contains("api.yaml: /paths/~1a/get/parameters/0/schema: schema cannot be compiled"),
        "{err}"
    );
}

#[test]
fn missing_spec_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (code, _, stderr) = run_cli(&["serve", "--spec", "nope.yaml"], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("nope.yaml: /: cannot read"), "{stderr}");
    // A name that is not bundled is refused with the names that are.
    let (code, _, stderr) = run_cli(&["serve", "nosuch"], dir.path());
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no bundled API 'nosuch'") && stderr.contains("dakota"),
        "{stderr}"
    );
}

#[test]
fn json_specs_and_nested_relative_refs_load() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir_all(dir.path().join("parts")).expect("dir");
    std::fs::write(
        dir.path().join("api.json"),
        r##"{"openapi": "3.0.1", "info": {"title": "j", "version": "1"},
            "paths": {"/x": {"$ref": "parts/paths.yaml#/x"}}}"##,
    )
    .expect("write");
    std::fs::write(
        dir.path().join("parts/paths.yaml"),
        "x:\n  get:\n    responses:\n      '200':\n        description: ok\n        content:\n          application/json:\n            schema: {$ref: 'schemas.yaml#/Thing'}\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("parts/schemas.yaml"), "Thing: {type: object, required: [self], properties: {self: {$ref: '#/Thing'}, name: {type: string}}}\n")
        .expect("write");
    let spec = Spec::load(&dir.path().join("api.json")).expect("loads");
    assert_eq!(spec.operations.len(), 1);
    assert_eq!(spec.operations[0].path, "/x");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary text, and arbitrary YAML-ish documents, never panic the loader.
    #[test]
    fn loading_never_panics(text in ".{0,400}", openapi in prop_oneof![Just("3.0.3".to_owned()), Just("3.1.0".to_owned()), ".{0,5}"], body in "[a-z/{}$#:' \\n\\[\\]-]{0,300}") {
        let file = Path::new("fuzz.yaml");
        if let Ok(doc) = parse_text(file, &text) {
            let _ = Spec::from_document(file, doc);
        }
        let doc_text = format!("openapi: '{openapi}'\ninfo: {{title: t, version: '1'}}\npaths:\n{body}");
        if let Ok(doc) = parse_text(file, &doc_text)
            && let Ok(spec) = Spec::from_document(file, doc)
            && let Ok(api) = api_sandbox::compiled::Api::build(spec, 0) {
                let _ = api_sandbox::server::Sandbox::new(api);
            }
    }
}
