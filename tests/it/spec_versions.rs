//! Specs of every version a user brings: a FastAPI-generated OpenAPI 3.1 document, a 3.1
//! document using each keyword 3.1 and JSON Schema 2020-12 add, and a Swagger 2.0 document.
//! Each is served and used as a client would: create, read back with the sent fields, list,
//! update, delete, and a bad body refused in the API's declared error shape.

use serde_json::{Value, json};

use crate::common::{Sandbox, client, test_spec};

async fn call(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    crate::common::reply(req).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fastapi_generated_3_1_document_round_trips() {
    use reqwest::Method as M;
    let s = Sandbox::start(&["--spec", &test_spec("fastapi/openapi.json")]);
    let base = s.url();
    let sent = json!({"name": "Hammer", "category": "tool", "price_cents": 1299,
                      "dimensions": {"width_mm": 30.5, "height_mm": 300}, "notes": null});
    let (status, made) = call(M::POST, &format!("{base}/items/"), &[], Some(sent.clone())).await;
    assert_eq!(status, 201, "{made}");
    for k in ["name", "category", "price_cents", "dimensions", "notes"] {
        assert_eq!(made[k], sent[k], "{k} in {made}");
    }
    let id = made["id"].as_i64().expect("FastAPI's ids are integers");
    let item = format!("{base}/items/{id}");
    let (status, got) = call(M::GET, &item, &[], None).await;
    assert_eq!((status, &got), (200, &made));
    let (status, list) = call(M::GET, &format!("{base}/items/?limit=10"), &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let (status, patched) = call(M::PATCH, &item, &[], Some(json!({"price_cents": 999}))).await;
    assert_eq!((status, &patched["price_cents"]), (200, &json!(999)));
    assert_eq!(patched["name"], "Hammer");
    // FastAPI's own 422 shape, with each failing member located as FastAPI locates it.
    let bad = json!({"name": "", "category": "toy", "price_cents": -1});
    let (status, refused) = call(M::POST, &format!("{base}/items/"), &[], Some(bad)).await;
    assert_eq!(status, 422, "{refused}");
    let locs: Vec<&Value> = refused["detail"]
        .as_array()
        .expect("detail is a list")
        .iter()
        .map(|d| &d["loc"])
        .collect();
    assert!(locs.contains(&&json!(["body", "category"])), "{refused}");
    assert!(
        refused["detail"][0]["msg"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    let (status, _) = call(M::DELETE, &item, &[], None).await;
    assert_eq!(status, 204);
    let (status, _) = call(M::GET, &item, &[], None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_3_1_keyword_is_understood() {
    use reqwest::Method as M;
    let s = Sandbox::start(&["--spec", &test_spec("openapi31/openapi.yaml")]);
    // The server URL's path (`/api/{version}` with its default) prefixes every route.
    let notes = format!("{}/api/v2/notes", s.url());
    let sent = json!({"kind": "note", "title": "Spring", "location": [-1.5, 52.1], "rating": 4,
                      "tags": ["water"], "author": {"name": "Ada"}, "body": null});
    let (status, made) = call(M::POST, &notes, &[], Some(sent.clone())).await;
    assert_eq!(status, 201, "{made}");
    for k in [
        "kind", "title", "location", "rating", "tags", "author", "body",
    ] {
        assert_eq!(made[k], sent[k], "{k} in {made}");
    }
    let note = format!("{notes}/{}", made["id"].as_str().expect("a uuid"));
    let (status, got) = call(M::GET, &note, &[], None).await;
    assert_eq!((status, &got), (200, &made));
    let (status, list) = call(M::GET, &format!("{notes}?limit=5"), &[], None).await;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, changed) = call(M::PATCH, &note, &[], Some(json!({"rating": 5}))).await;
    assert_eq!((status, &changed["rating"]), (200, &json!(5)));
    // Each refused for the 2020-12 keyword it breaks, in the declared {message, errors}.
    let base = json!({"kind": "note", "title": "x", "location": [1, 2]});
    let breaks = [
        ("location", json!([1, 2, 3])),   // maxItems with prefixItems
        ("location", json!(["east", 2])), // prefixItems
        ("kind", json!("memo")),          // const
        ("rating", json!(0)),             // numeric exclusiveMinimum
        ("colour", json!("red")),         // unevaluatedProperties
        ("archived_at", json!("2026-01-01T00:00:00Z")), // dependentRequired
        ("tags", json!(["Bad Tag"])),     // $defs by $ref
        ("author", json!({"email": "a@example.com"})), // $ref beside required
        ("title", json!(null)),           // type without null
    ];
    for (member, value) in breaks {
        let mut body = base.clone();
        body[member] = value;
        let (status, refused) = call(M::POST, &notes, &[], Some(body.clone())).await;
        assert_eq!(status, 400, "{body} was accepted: {refused}");
        assert!(
            refused["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{refused}"
        );
    }
    let (status, _) = call(M::DELETE, &note, &[], None).await;
    assert_eq!(status, 204);
    let (status, gone) = call(M::GET, &note, &[], None).await;
    assert_eq!(status, 404);
    assert!(
        gone["message"]
            .as_str()
            .is_some_and(|m| m.contains("no note")),
        "{gone}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_swagger_2_document_round_trips() {
    use reqwest::Method as M;
    let s = Sandbox::start(&["--spec", &test_spec("swagger2/swagger.yaml")]);
    let pets = format!("{}/v2/pets", s.url());
    let key = [("api_key", "k1")];
    let (status, refused) = call(M::GET, &pets, &[], None).await;
    assert_eq!(status, 401, "securityDefinitions apply: {refused}");
    let sent = json!({"name": "Rex", "status": "available", "age_months": null, "tags": ["dog"]});
    let (status, made) = call(M::POST, &pets, &key, Some(sent.clone())).await;
    assert_eq!(status, 201, "{made}");
    for k in ["name", "status", "age_months", "tags"] {
        assert_eq!(made[k], sent[k], "{k} in {made}");
    }
    let pet = format!("{pets}/{}", made["id"].as_i64().expect("an integer id"));
    let (status, got) = call(M::GET, &pet, &key, None).await;
    assert_eq!((status, &got), (200, &made));
    let url = format!("{pets}?status=available,pending&limit=5");
    let (status, list) = call(M::GET, &url, &key, None).await;
    assert_eq!(
        (status, list.as_array().map(Vec::len)),
        (200, Some(1)),
        "{list}"
    );
    let (status, replaced) = call(
        M::PUT,
        &pet,
        &key,
        Some(json!({"name": "Rex II", "status": "adopted"})),
    )
    .await;
    assert_eq!((status, &replaced["name"]), (200, &json!("Rex II")));
    let (status, refused) = call(
        M::POST,
        &pets,
        &key,
        Some(json!({"name": "", "status": "lost"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(refused["code"], 400, "the declared Error shape: {refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("name")),
        "{refused}"
    );
    let (status, _) = call(M::DELETE, &pet, &key, None).await;
    assert_eq!(status, 204);
    let (status, gone) = call(M::GET, &pet, &key, None).await;
    assert_eq!((status, &gone["code"]), (404, &json!(404)));
}

#[test]
fn a_broken_swagger_document_points_into_the_original() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("swagger.yaml");
    std::fs::write(
        &file,
        "swagger: '2.0'\ninfo: {title: T, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n          description: ok\n          schema: {$ref: '#/definitions/Missing'}\n",
    )
    .expect("written");
    let (code, _, stderr) = crate::common::run_cli(
        &[
            "serve",
            "--spec",
            file.to_str().expect("utf-8"),
            "--port",
            "0",
        ],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("#/definitions/Missing") || stderr.contains("/definitions/Missing"),
        "{stderr}"
    );
}
