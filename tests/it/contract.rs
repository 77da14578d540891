//! The contract tester run like a user runs it (`sandbox contract-test`, `sandbox record`):
//! our fixtures pass against a fresh sandbox; a deliberately broken server gets every break
//! reported with the right pointer, exit code 1 and a JUnit file that parses as JUnit; a flow
//! recorded through the proxy replays against a fresh sandbox; snapshots are written, matched
//! and, when changed, left for `cargo insta review`; runs that cannot start exit 2.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::common::{Sandbox, bundled_dakota, client, repo_root, run_cli};

fn contract_test(base_url: &str, extra: &[&str], fixtures: &[&str]) -> (i32, String, String) {
    let spec = bundled_dakota();
    let mut args = vec![
        "contract-test",
        "--spec",
        &spec,
        "--base-url",
        base_url,
        "--header",
        "x-api-key: contract-tests",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(fixtures);
    run_cli(&args, &repo_root())
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the report exists"))
        .expect("the report is JSON")
}

/// (testcase count, failure count) of a JUnit file, read with a real XML parser; panics
/// unless the root is `<testsuites>` holding `<testsuite>`s of `<testcase>`s.
fn parse_junit(path: &Path) -> (usize, usize) {
    use quick_xml::events::Event;
    let text = std::fs::read_to_string(path).expect("the JUnit file exists");
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut stack: Vec<String> = Vec::new();
    let (mut cases, mut failures) = (0, 0);
    loop {
        match reader
            .read_event()
            .expect("the JUnit file is well-formed XML")
        {
            ev @ (Event::Start(_) | Event::Empty(_)) => {
                let (e, empty) = match &ev {
                    Event::Start(e) => (e, false),
                    Event::Empty(e) => (e, true),
                    _ => unreachable!(),
                };
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let parent = stack.last().map(String::as_str);
                match name.as_str() {
                    "testsuites" => assert!(parent.is_none(), "testsuites is the root"),
                    "testsuite" => assert_eq!(parent, Some("testsuites")),
                    "testcase" => {
                        assert_eq!(parent, Some("testsuite"));
                        cases += 1;
                    }
                    "failure" => {
                        assert_eq!(parent, Some("testcase"));
                        failures += 1;
                    }
                    _ => {}
                }
                if !empty {
                    stack.push(name);
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (cases, failures)
}

/// Replays `fixtures/<api>` against a sandbox serving `specs/<api>`, comparing snapshots,
/// and expects `passed` steps and no failure.
fn bundled_fixtures_pass(api: &str, passed: usize) {
    let spec = repo_root().join(format!("specs/{api}/openapi.yaml"));
    let spec = spec.to_str().unwrap();
    let sandbox = Sandbox::start(&["--spec", spec]);
    let fixtures = format!("fixtures/{api}");
    let args = [
        "contract-test",
        "--spec",
        spec,
        "--base-url",
        sandbox.url(),
        "--compare",
        &fixtures,
    ];
    let (code, stdout, stderr) = run_cli(&args, &repo_root());
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let summary = format!("{passed} passed, 0 failed");
    assert!(stdout.contains(&summary), "{stdout}");
}

/// dakkio's journey: its keys are made during the scenario (captured, then sent as
/// `{{write_key}}`), so no `--header` replaces the fixture's own.
#[test]
fn the_dakkio_sandbox_passes_its_fixtures() {
    bundled_fixtures_pass("dakkio", 27);
}

/// Dino's journey, with team `contract`'s keys as the fixture names them.
#[test]
fn the_dino_sandbox_passes_its_fixtures() {
    bundled_fixtures_pass("dino", 16);
}

#[test]
fn the_sandbox_passes_its_own_fixtures() {
    let sandbox = Sandbox::start(&["--spec", &bundled_dakota()]);
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let report = dir.path().join("report.json");
    let html = dir.path().join("report.html");
    let (code, stdout, stderr) = contract_test(
        sandbox.url(),
        &[
            "--compare",
            "--junit",
            junit.to_str().unwrap(),
            "--json",
            report.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        &["fixtures/dakota"],
    );
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains(r#"<span class="pass">PASS</span> Contract test of"#),
        "{page}"
    );
    assert!(!page.contains(r#"class="fail""#), "{page}");
    let json = read_json(&report);
    assert_eq!(json["passed"], true);
    let steps = json["summary"]["steps"].as_u64().unwrap();
    assert!(steps >= 10, "{steps} steps");
    assert_eq!(json["summary"]["violations"], 0);
    assert!(json["summary"]["check_ms"].as_f64().unwrap() > 0.0);
    let (cases, failures) = parse_junit(&junit);
    assert_eq!((cases as u64, failures), (steps, 0));
    assert!(stdout.contains("0 failed"), "{stdout}");
}

/// A server that breaks the Dakota contract in five different ways.
async fn start_broken_server() -> String {
    let customer_without_name = json!({"id": "2NFHrqBHb3cTfLVkFSGmHZqdDPi", "customer_type": "business",
        "kyb_status": "pending", "kyc_status": "pending", "created_at": 1, "updated_at": 1});
    let app = axum::Router::new()
        .route(
            "/customers/{id}",
            get(move || async move { axum::Json(customer_without_name) }),
        )
        .route(
            "/customers",
            get(|| async {
                axum::Json(json!({"data": "not a list",
                    "meta": {"total_count": 0, "has_more_after": false, "has_more_before": false}}))
            }),
        )
        .route(
            "/recipients/{id}",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "a recipient").into_response() })
                .put(|| async {
                    (
                        StatusCode::NOT_FOUND,
                        [(header::CONTENT_TYPE, "application/problem+json")],
                        json!({"type": "https://example.com/not-found", "title": "Not Found", "status": 404})
                            .to_string(),
                    )
                        .into_response()
                })
                .delete(|| async { StatusCode::ACCEPTED }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

const BROKEN_FIXTURE: &str = r#"
name: broken
steps:
- name: missing required field
  request: {method: GET, path: /customers/2NFHrqBHb3cTfLVkFSGmHZqdDPi}
  response: {status: 200}
- name: wrong type
  request: {method: GET, path: /customers}
  response: {status: 200}
- name: wrong content type
  request: {method: GET, path: /recipients/2NFHrqBHb3cTfLVkFSGmHZqdDPi}
  response: {status: 200}
- name: wrong status
  request: {method: PUT, path: /recipients/2NFHrqBHb3cTfLVkFSGmHZqdDPi, body: {name: Renamed}}
  response: {status: 200}
- name: undocumented status
  request: {method: DELETE, path: /recipients/2NFHrqBHb3cTfLVkFSGmHZqdDPi}
  response: {status: 204}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn every_break_of_a_broken_server_is_reported() {
    let url = start_broken_server().await;
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("broken.yaml");
    std::fs::write(&fixture, BROKEN_FIXTURE).unwrap();
    let junit = dir.path().join("junit.xml");
    let report = dir.path().join("report.json");
    let html = dir.path().join("report.html");
    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let (junit, report, fixture, html) =
            (junit.clone(), report.clone(), fixture.clone(), html.clone());
        move || {
            contract_test(
                &url,
                &[
                    "--junit",
                    junit.to_str().unwrap(),
                    "--json",
                    report.to_str().unwrap(),
                    "--html",
                    html.to_str().unwrap(),
                ],
                &[fixture.to_str().unwrap()],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let json = read_json(&report);
    let steps = json["scenarios"][0]["steps"].as_array().unwrap();
    let found = |step: usize| -> Vec<(String, String)> {
        steps[step]["violations"]
            .as_array()
            .unwrap()
            .iter()
            .inspect(|v| {
                assert_eq!(v["scenario"], "broken");
                assert_eq!(v["step"], step + 1);
                assert!(v["operation"].as_str().is_some_and(|o| !o.is_empty()));
            })
            .map(|v| {
                (
                    v["kind"].as_str().unwrap().to_owned(),
                    v["pointer"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let has = |step: usize, kind: &str, pointer: &str| {
        let f = found(step);
        assert!(
            f.iter().any(|(k, p)| k == kind && p == pointer),
            "step {}: expected [{kind}] at '{pointer}', got {f:?}\n{stdout}",
            step + 1
        );
    };
    has(0, "schema", "/name");
    assert_eq!(steps[0]["operation"], "getCustomer");
    has(1, "schema", "/data");
    has(2, "content-type", "");
    has(3, "recorded-status", "");
    assert!(
        !found(3).iter().any(|(k, _)| k == "status"),
        "404 is declared for updateRecipient"
    );
    has(4, "status", "");
    has(4, "recorded-status", "");
    assert_eq!(json["summary"]["failed_steps"], 5);
    assert!(stdout.contains("[schema] at /name"), "{stdout}");
    assert_eq!(parse_junit(&junit), (5, 5));
    assert_html_report(&std::fs::read_to_string(&html).unwrap());
}

/// The HTML report of the broken server: every failing step with its pointer, and nothing
/// the page would fetch from elsewhere.
fn assert_html_report(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<style>"), "the CSS is inline");
    for absent in ["<script", "<link", "src=", "href=", "url("] {
        assert!(!html.contains(absent), "{absent} in\n{html}");
    }
    assert!(html.contains("FAIL</span> <h2>broken</h2>"), "{html}");
    assert_eq!(
        html.matches(r#"<span class="fail">FAIL</span>"#).count(),
        1 + 1 + 5
    );
    for finding in [
        "<code>schema</code> at <code>/name</code>: ",
        "<code>schema</code> at <code>/data</code>: ",
        "<code>content-type</code>: ",
        "<code>recorded-status</code>: ",
    ] {
        assert!(html.contains(finding), "{finding} in\n{html}");
    }
    assert!(html.contains("<code>GET /customers/2NFHrqBHb3cTfLVkFSGmHZqdDPi</code>"));
}

#[test]
fn runs_that_cannot_start_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    // Unreachable: a port that was just free.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, stderr) = contract_test(
        &format!("http://127.0.0.1:{port}"),
        &[],
        &["fixtures/dakota"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");

    // A malformed fixture names file, step and reason.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "steps:\n- request: {method: GET, path: /customers}\n  response: {status: 200}\n- request: {method: GET, path: '/customers/{{nope}}'}\n  response: {status: 200}\n",
    )
    .unwrap();
    let (code, _, stderr) = contract_test("http://127.0.0.1:9", &[], &[bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("bad.yaml: step 2: uses {{nope}}, which no earlier step captures"),
        "{stderr}"
    );

    // A step the spec does not serve is a fixture error too.
    std::fs::write(
        &bad,
        "steps:\n- request: {method: GET, path: /nowhere}\n  response: {status: 200}\n",
    )
    .unwrap();
    let (code, _, stderr) = contract_test("http://127.0.0.1:9", &[], &[bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("step 1: GET /nowhere matches no operation"),
        "{stderr}"
    );

    // A bad spec.
    let (code, _, stderr) = run_cli(
        &[
            "contract-test",
            "--spec",
            "/nonexistent/openapi.yaml",
            "--base-url",
            "http://127.0.0.1:9",
            "fixtures/dakota",
        ],
        &repo_root(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/nonexistent/openapi.yaml"), "{stderr}");
}

/// `sandbox record` as a child process; yields its URL.
struct Recorder(std::process::Child);

impl Recorder {
    fn start(target: &str, out: &Path) -> (Self, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args([
                "record", "--target", target, "--port", "0", "--name", "flow",
            ])
            .arg("--out")
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        (Self(child), url)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flow_recorded_through_the_proxy_replays_against_a_fresh_sandbox() {
    let original = Sandbox::start(&["--spec", &bundled_dakota()]);
    let dir = tempfile::tempdir().unwrap();
    let (recorder, proxy) = Recorder::start(original.url(), dir.path());
    let c = client();
    let send = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut req = c
            .request(method, format!("{proxy}{path}"))
            .header("x-api-key", "secret-key-123")
            .header("x-idempotency-key", crate::contract_uuid());
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, customer) = send(
        reqwest::Method::POST,
        "/customers".into(),
        Some(json!({"name": "Round Trip Ltd", "customer_type": "business"})),
    )
    .await;
    assert_eq!(s, 201, "{customer}");
    let id = customer["id"].as_str().unwrap().to_owned();
    let (s, _) = send(reqwest::Method::GET, format!("/customers/{id}"), None).await;
    assert_eq!(s, 200);
    let (s, recipient) = send(
        reqwest::Method::POST,
        format!("/customers/{id}/recipients"),
        Some(json!({"name": "Payee"})),
    )
    .await;
    assert_eq!(s, 201, "{recipient}");
    let rid = recipient["id"].as_str().unwrap().to_owned();
    let (s, _) = send(reqwest::Method::GET, format!("/recipients/{rid}"), None).await;
    assert_eq!(s, 200);
    drop(recorder);

    let recorded = std::fs::read_to_string(dir.path().join("flow.yaml")).unwrap();
    assert!(
        !recorded.contains("secret-key-123"),
        "credentials are redacted"
    );
    assert!(
        recorded.contains("/customers/{{customer_id}}/recipients"),
        "{recorded}"
    );
    assert!(
        recorded.contains("/recipients/{{recipient_id}}"),
        "{recorded}"
    );

    let fresh = Sandbox::start(&["--spec", &bundled_dakota()]);
    let fixture = dir.path().join("flow.yaml");
    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let url = fresh.url().to_owned();
        // Contract checks only: the recorder cannot know which generated members vary.
        move || contract_test(&url, &[], &[fixture.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("4 steps: 4 passed"), "{stdout}");
}

#[test]
fn snapshots_are_written_matched_and_left_for_review_when_changed() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snapshots");
    let snaps_arg = snaps.to_str().unwrap().to_owned();
    for round in 0..2 {
        let sandbox = Sandbox::start(&["--spec", &bundled_dakota()]);
        let (code, stdout, stderr) = contract_test(
            sandbox.url(),
            &["--snapshot", &snaps_arg],
            &["fixtures/dakota/recipients.yaml"],
        );
        assert_eq!(
            code, 0,
            "round {round}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    let file = snaps.join("recipients__04_get_recipient.snap");
    let snap = insta::Snapshot::from_file(&file).expect("insta reads the snapshot");
    assert_eq!(
        snap.metadata().source(),
        Some("fixtures/dakota/recipients.yaml")
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"id\": \"[id]\""), "{text}");
    std::fs::write(&file, text.replace("Supplier One", "Someone Else")).unwrap();

    let sandbox = Sandbox::start(&["--spec", &bundled_dakota()]);
    let (code, stdout, _) = contract_test(
        sandbox.url(),
        &["--snapshot", &snaps_arg],
        &["fixtures/dakota/recipients.yaml"],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("[snapshot]"), "{stdout}");
    let pending = file.with_extension("snap.new");
    let new = insta::Snapshot::from_file(&pending).expect("insta reads the pending snapshot");
    assert!(new.as_text().unwrap().to_string().contains("Supplier One"));
}
