//! The sandbox as a library and as an installed binary: started from Rust code on a free
//! port and stopped when dropped; `sandbox list` and `sandbox serve NAME` from a directory
//! that holds no specs at all, served from the copies embedded in the binary.

use serde_json::{Value, json};

use crate::common::{Sandbox, client, run_cli, test_spec};

#[tokio::test(flavor = "multi_thread")]
async fn a_test_starts_a_sandbox_in_process_and_dropping_it_stops_it() {
    let sandbox = api_sandbox::Running::start(&test_spec("notes/openapi.yaml"))
        .await
        .expect("starts");
    let base = sandbox.url().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let created: Value = client()
        .post(format!("{base}/notes"))
        .bearer_auth("lib")
        .json(&json!({"text": "from a library"}))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("an id");
    let read: Value = client()
        .get(format!("{base}/notes/{id}"))
        .bearer_auth("lib")
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(read["text"], "from a library");
    drop(sandbox);
    // The listener goes away with the handle.
    let mut refused = false;
    for _ in 0..50 {
        if client().get(format!("{base}/notes")).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        refused,
        "the sandbox still answers after its handle was dropped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bundled_api_starts_by_name_in_process() {
    let sandbox = api_sandbox::Running::start("dakota").await.expect("starts");
    let res = client()
        .get(format!("{}/customers", sandbox.url()))
        .header("x-api-key", "lib")
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    assert!(api_sandbox::Running::start("no-such-api").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_the_bundled_apis_from_an_empty_directory() {
    let empty = tempfile::tempdir().expect("temp dir");
    let (code, listed, _) = run_cli(&["list"], empty.path());
    assert_eq!(code, 0);
    assert!(listed.lines().any(|l| l == "dakota"), "{listed}");
    let s = Sandbox::start_in(empty.path(), &["dakota"], &[]);
    let res = client()
        .post(format!("{}/customers", s.url()))
        .header("x-api-key", "anywhere")
        .header("x-idempotency-key", crate::contract_uuid())
        .json(&json!({"name": "Installed Co", "customer_type": "business"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 201);
    let (code, _, stderr) = run_cli(&["serve", "--port", "0", "no-such-api"], empty.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("no bundled API 'no-such-api'"), "{stderr}");
}
