//! Behaviour over HTTP against the petstore test spec: routing, auth variants, validation
//! errors in the API's own shape, leniency towards sloppy clients, 204s, binary bodies.

use serde_json::{Value, json};

use crate::common::{Sandbox, client, test_spec};

/// Snapshot settings shared by every test: files under `snapshots/`, volatile members masked.
fn snapshot(name: &str, body: &Value) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_json_snapshot!(name, body, {
            ".request_id" => "[request_id]",
            ".instance" => "[instance]",
        });
    });
}

async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.expect("answers")
}

async fn json_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let body = res.json::<Value>().await.expect("a JSON body");
    (status, body)
}

fn petstore() -> Sandbox {
    // Routing, auth and validation are the stateless core; state has its own tests.
    Sandbox::start(&[
        "--spec",
        &test_spec("petstore.yaml"),
        "--seed",
        "3",
        "--stateless",
    ])
}

#[tokio::test]
async fn literal_segments_beat_parameters_and_values_are_decoded() {
    let s = petstore();
    let (status, body) = json_of(get(&format!("{}/pets/mine?api_key=k", s.url())).await).await;
    assert_eq!(status, 200);
    assert!(body["data"].is_array(), "{body}");
    // %35 is "5": decoded before validation as an int64.
    let (status, body) = json_of(get(&format!("{}/pets/%35?api_key=k", s.url())).await).await;
    assert_eq!(status, 200);
    assert!(body["id"].is_i64() && body["name"].is_string(), "{body}");
    let res = get(&format!("{}/pets/3/photos/rex.png", s.url())).await;
    assert_eq!(
        res.status().as_u16(),
        401,
        "the photo route needs its cookie"
    );
    let res = client()
        .get(format!("{}/pets/3/photos/rex.png", s.url()))
        .header("cookie", "session=abc")
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_the_api_format() {
    let s = petstore();
    let (status, body) = json_of(get(&format!("{}/nowhere", s.url())).await).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], 404);
    snapshot("petstore_unknown_path", &body);
    let res = client()
        .put(format!("{}/pets", s.url()))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers()["allow"], "GET, POST");
    let (_, body) = json_of(res).await;
    assert_eq!(body["code"], 405);
}

#[tokio::test]
async fn every_security_scheme_kind_is_checked() {
    let s = petstore();
    let pets = format!("{}/pets", s.url());
    let res = client()
        .get(&pets)
        .header("x-trace", "abc")
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 401);
    let (_, body) = json_of(res).await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("api_key") && m.contains("Bearer")),
        "{body}"
    );
    snapshot("petstore_missing_credentials", &body);
    let ok_query = client()
        .get(format!("{pets}?api_key=k"))
        .header("x-trace", "abc")
        .send()
        .await
        .expect("answers");
    assert_eq!(ok_query.status().as_u16(), 200);
    let ok_bearer = client()
        .get(&pets)
        .bearer_auth("t")
        .header("X-TRACE", "abc")
        .send()
        .await
        .expect("answers");
    assert_eq!(ok_bearer.status().as_u16(), 200);
    let empty_bearer = client()
        .get(&pets)
        .header("authorization", "Bearer  ")
        .header("x-trace", "abc")
        .send()
        .await
        .expect("answers");
    assert_eq!(empty_bearer.status().as_u16(), 401);
    let basic = client()
        .get(format!("{}/trees", s.url()))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .expect("answers");
    assert_eq!(basic.status().as_u16(), 200);
    let (_, tree) = json_of(basic).await;
    assert!(
        tree["children"].is_array(),
        "recursive schema generated: {tree}"
    );
    let open = client()
        .delete(format!("{}/pets/1", s.url()))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        open.status().as_u16(),
        204,
        "security: [] needs no credentials"
    );
}

#[tokio::test]
async fn invalid_parameters_are_named_in_the_declared_error_shape() {
    let s = petstore();
    let pets = format!("{}/pets?api_key=k", s.url());
    let (status, body) = json_of(client().get(&pets).send().await.expect("answers")).await;
    assert_eq!(status, 400);
    assert_eq!(body["fields"][0]["name"], "X-Trace", "{body}");
    let url = format!("{pets}&limit=0&tags=dog,fish");
    let (status, body) = json_of(
        client()
            .get(&url)
            .header("x-trace", "ab")
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 400);
    let named: Vec<&str> = body["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(named, ["limit", "tags", "X-Trace"], "{body}");
    snapshot("petstore_invalid_parameters", &body);
    let (status, _) = json_of(
        client()
            .get(format!("{pets}&tags=dog,cat&limit=5"))
            .header("x-trace", "abc")
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = json_of(get(&format!("{}/pets/0?api_key=k", s.url())).await).await;
    assert_eq!(
        (status, body["fields"][0]["name"].as_str()),
        (400, Some("petId")),
        "{body}"
    );
}

#[tokio::test]
async fn bodies_are_validated_with_the_declared_status() {
    let s = petstore();
    let pets = format!("{}/pets?api_key=k", s.url());
    // createPet declares 422, not 400, for bad input; readOnly `id` is not required in requests.
    let res = client()
        .post(&pets)
        .json(&json!({"name": "Rex", "status": "available"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 201);
    let (status, body) = json_of(
        client()
            .post(&pets)
            .json(&json!({"name": "", "status": "lost", "tag": 5}))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 422);
    let named: Vec<&str> = body["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(named, ["name", "status", "tag"], "{body}");
    snapshot("petstore_invalid_body", &body);
    let (status, body) = json_of(
        client()
            .post(&pets)
            .header("content-type", "application/json")
            .body("{\"name\":")
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid JSON")),
        "{body}"
    );
    let res = client()
        .post(&pets)
        .header("content-type", "application/xml")
        .body("<pet/>")
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 415);
    // A discriminated union reports the missing member of the chosen branch.
    let (status, body) = json_of(
        client()
            .post(format!("{}/shapes", s.url()))
            .json(&json!({"kind": "circle"}))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["fields"][0]["name"], "radius", "{body}");
    let (status, body) = json_of(
        client()
            .post(format!("{}/shapes", s.url()))
            .json(&json!({"kind": "square", "side": 2.5}))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!((status, body["kind"].as_str().is_some()), (200, true));
}

#[tokio::test]
async fn sloppy_but_harmless_requests_are_accepted() {
    let s = petstore();
    // Content-Type: application/json with an empty body on an operation without a body.
    let res = client()
        .get(format!("{}/pets/mine?api_key=k", s.url()))
        .header("content-type", "application/json")
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    // A JSON body on DELETE.
    let res = client()
        .delete(format!("{}/pets/1", s.url()))
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 204);
    assert!(res.headers().get("content-type").is_none());
    assert!(res.bytes().await.expect("body").is_empty());
    // A trailing slash.
    let res = get(&format!("{}/pets/mine/?api_key=k", s.url())).await;
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn declared_headers_and_request_ids_are_sent() {
    let s = petstore();
    let res = client()
        .get(format!("{}/pets?api_key=k", s.url()))
        .header("x-trace", "abc")
        .send()
        .await
        .expect("answers");
    let limit = res
        .headers()
        .get("x-ratelimit-limit")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(limit.is_some_and(|l| l >= 1), "{:?}", res.headers());
    assert!(
        res.headers()["x-request-id"]
            .to_str()
            .is_ok_and(|v| v.starts_with("req_"))
    );
}

#[tokio::test]
async fn the_same_seed_gives_byte_identical_responses() {
    let spec = test_spec("kitchen-sink.yaml");
    let bodies = |seed: &'static str| {
        let spec = spec.clone();
        async move {
            let s = Sandbox::start(&["--spec", &spec, "--seed", seed]);
            let mut out = Vec::new();
            for path in ["/graphs", "/numbers", "/strings"] {
                out.push(
                    get(&format!("{}{path}", s.url()))
                        .await
                        .bytes()
                        .await
                        .expect("body"),
                );
            }
            out
        }
    };
    let (a, b, c) = (bodies("7").await, bodies("7").await, bodies("8").await);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[tokio::test]
async fn several_specs_each_get_their_own_port() {
    let s = Sandbox::start(&[
        "--spec",
        &test_spec("petstore.yaml"),
        "--spec",
        &test_spec("kitchen-sink.yaml"),
    ]);
    assert_eq!(s.urls.len(), 2);
    assert_ne!(s.urls[0], s.urls[1]);
    assert_eq!(
        get(&format!("{}/pets/mine?api_key=k", s.urls[0]))
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        get(&format!("{}/numbers", s.urls[1]))
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        get(&format!("{}/numbers", s.urls[0]))
            .await
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn without_spec_flags_the_bundled_specs_are_served() {
    let s = Sandbox::start(&[]);
    // One port per bundled API, in name order: dakkio, dakota, dino.
    assert_eq!(s.urls.len(), 3, "{:?}", s.urls);
    let dakkio = client()
        .get(format!("{}/api/buckets", s.urls[0]))
        .header("x-api-key", "dakkio_a_k")
        .send()
        .await
        .expect("answers");
    assert_eq!(dakkio.status().as_u16(), 200);
    let dakota = client()
        .get(format!("{}/customers", s.urls[1]))
        .header("x-api-key", "k")
        .send()
        .await
        .expect("answers");
    assert_eq!(dakota.status().as_u16(), 200);
    let dino = client()
        .get(format!("{}/v1/balance", s.urls[2]))
        .header("authorization", "Bearer din_test_acme")
        .send()
        .await
        .expect("answers");
    assert_eq!(dino.status().as_u16(), 200);
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args([
            "serve",
            "--port",
            "0",
            "--spec",
            &test_spec("petstore.yaml"),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped");
    let mut reader = std::io::BufReader::new(stdout);
    while !line.contains("http://") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).expect("reads") > 0,
            "exited early"
        );
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn dakota_errors_are_problem_details_with_a_request_id() {
    let s = Sandbox::start(&["--spec", &crate::common::bundled_dakota()]);
    let res = client()
        .post(format!("{}/customers", s.url()))
        .header("x-api-key", "k")
        .header("x-idempotency-key", "0b7e4d4c-8d55-4a3c-9b1a-7f6e2d1c0a9b")
        .json(&json!({"name": 5}))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let request_id = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let (_, body) = json_of(res).await;
    assert_eq!(body["request_id"], request_id.as_str());
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("#invalid-request")),
        "{body}"
    );
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["customer_type", "name"], "{body}");
    snapshot("dakota_invalid_customer", &body);
}

/// Once up, the server has transparent huge pages off for itself: a fault in a growing
/// store would otherwise zero 2 MB while every request waits for the store's lock. Linux
/// shows the setting per process (since 5.0).
#[cfg(target_os = "linux")]
#[test]
fn a_serving_sandbox_has_huge_pages_off() {
    let s = Sandbox::start(&["--spec", &crate::common::bundled_dakota()]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid()))
        .expect("the server's /proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .expect("the kernel reports THP_enabled");
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
}
