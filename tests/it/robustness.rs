//! Hostile input over HTTP: random methods, paths, queries, headers and bodies never get a
//! 5xx and never take the server down.

use proptest::prelude::*;

use crate::common::{Sandbox, bundled_dakota, test_spec};

fn path_strategy() -> impl Strategy<Value = String> {
    let known = prop_oneof![
        Just("/customers".to_owned()),
        Just("/customers/sub-client-summary".to_owned()),
        Just("/recipients/{id}/destinations".to_owned()),
        Just("/pets/{id}".to_owned()),
        Just("/shapes".to_owned()),
        "/[a-z%0-9{}./-]{0,30}",
    ];
    (known, "[A-Za-z0-9%._~-]{0,40}").prop_map(|(p, id)| p.replace("{id}", &id))
}

/// The servers live in this function (not in a static), so they are killed when it ends:
/// a leaked child would keep the test harness's stderr pipe open and hang the run.
#[test]
fn random_requests_never_get_a_server_error() {
    let servers = [
        Sandbox::start(&["--spec", &bundled_dakota()]),
        Sandbox::start(&["--spec", &test_spec("petstore.yaml")]),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client");
    let strategy = (
        0usize..2,
        prop_oneof![
            Just("GET"),
            Just("POST"),
            Just("PUT"),
            Just("PATCH"),
            Just("DELETE"),
            Just("OPTIONS"),
            Just("HEAD")
        ],
        path_strategy(),
        "[a-z_=&%0-9\\[\\],]{0,40}",
        prop_oneof![
            Just("application/json"),
            Just("text/plain"),
            Just("application/x-www-form-urlencoded"),
            Just("multipart/form-data; boundary=x"),
            Just("")
        ],
        prop_oneof![
            Just(Vec::new()),
            "\\PC{0,60}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..60),
            Just(b"{\"name\": \"x\", \"kind\": \"circle\", \"radius\": -1}".to_vec())
        ],
        any::<bool>(),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        ..ProptestConfig::default()
    });
    let result = runner.run(
        &strategy,
        |(server, method, path, query, content_type, body, with_key)| {
            let base = servers[server].url().to_owned();
            let status = runtime.block_on(async {
                let mut req = client.request(
                    reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                    format!("{base}{path}?{query}"),
                );
                if with_key {
                    req = req.header("x-api-key", "k").bearer_auth("t");
                }
                if !content_type.is_empty() {
                    req = req.header("content-type", content_type);
                }
                req.body(body.clone())
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            });
            let status = status.map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
            prop_assert!(status < 500, "{method} {path}?{query} got {status}");
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
