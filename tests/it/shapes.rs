//! Zero-code state on the shapes real APIs have, each from a small spec of our own in
//! `tests/specs/shapes/` with no profile: `sid` ids, `.json` suffixes, form bodies and
//! nested records (telephony); `{data: {gid}}` envelopes both ways under a parent that must
//! exist (work management); `{incident: {...}}` singular envelopes with PUT as a partial
//! update (incidents); and `$ref` members that are data or names, not references (a schema
//! registry). Each: create, read back with the sent fields, list, update, delete, and a bad
//! body refused in the API's declared error shape.

use reqwest::Method as M;
use serde_json::{Value, json};

use crate::common::{Sandbox, client, test_spec};

/// One call; `form` sends the body as `application/x-www-form-urlencoded`.
async fn call(
    method: M,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
    form: bool,
) -> (u16, Value) {
    let mut req = client().request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match (body, form) {
        (Some(b), true) => {
            let pairs: Vec<(String, String)> = b
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                            (k.clone(), text)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let encoded: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    let enc = |s: &str| {
                        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                            .to_string()
                    };
                    format!("{}={}", enc(k), enc(v))
                })
                .collect();
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encoded.join("&"));
        }
        (Some(b), false) => req = req.json(&b),
        (None, _) => {}
    }
    crate::common::reply(req).await
}

fn shape(name: &str) -> String {
    test_spec(&format!("shapes/{name}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn sid_keyed_json_suffixed_form_bodied_nested_records() {
    let s = Sandbox::start(&["--spec", &shape("telephony.yaml")]);
    let base = format!("{}/2010-04-01", s.url());
    let auth = [("authorization", "Basic QUMxOnRvaw==")];
    let (status, account) = call(
        M::POST,
        &format!("{base}/Accounts.json"),
        &auth,
        Some(json!({"friendly_name": "Main"})),
        true,
    )
    .await;
    assert_eq!(status, 201, "{account}");
    assert_eq!(account["friendly_name"], "Main");
    let ac = account["sid"].as_str().expect("a sid").to_owned();
    assert!(ac.starts_with("AC") && ac.len() == 34, "{ac}");
    let (status, got) = call(
        M::GET,
        &format!("{base}/Accounts/{ac}.json"),
        &auth,
        None,
        false,
    )
    .await;
    assert_eq!((status, &got), (200, &account));

    let messages = format!("{base}/Accounts/{ac}/Messages.json");
    let sent = json!({"to": "+15551234567", "from": "+15557654321", "body": "Hello", "max_price": 0.5, "provide_feedback": true});
    let (status, msg) = call(M::POST, &messages, &auth, Some(sent.clone()), true).await;
    assert_eq!(status, 201, "{msg}");
    for k in ["to", "from", "body", "max_price", "provide_feedback"] {
        assert_eq!(msg[k], sent[k], "{k} typed from the form: {msg}");
    }
    assert_eq!(
        msg["account_sid"],
        ac.as_str(),
        "the parent named from the path"
    );
    let sm = msg["sid"].as_str().expect("a sid").to_owned();
    let one = format!("{base}/Accounts/{ac}/Messages/{sm}.json");
    let (status, got) = call(M::GET, &one, &auth, None, false).await;
    assert_eq!((status, &got), (200, &msg));
    let (status, list) = call(M::GET, &messages, &auth, None, false).await;
    assert_eq!(status, 200);
    assert_eq!(list["messages"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["next_page_uri"], Value::Null);
    let (status, changed) = call(M::POST, &one, &auth, Some(json!({"body": "Bye"})), true).await;
    assert_eq!(
        (status, &changed["body"], &changed["to"]),
        (200, &json!("Bye"), &sent["to"])
    );
    let (status, refused) =
        call(M::POST, &messages, &auth, Some(json!({"to": "nope"})), true).await;
    assert_eq!(
        (status, &refused["status"]),
        (400, &json!(400)),
        "{refused}"
    );
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("from")),
        "{refused}"
    );
    let other = format!("{base}/Accounts/AC{}/Messages.json", "0".repeat(32));
    let (status, _) = call(M::POST, &other, &auth, Some(sent), true).await;
    assert_eq!(status, 404, "the parent account must exist");
    let (status, _) = call(M::DELETE, &one, &auth, None, false).await;
    assert_eq!(status, 204);
    let (status, gone) = call(M::GET, &one, &auth, None, false).await;
    assert_eq!((status, &gone["code"]), (404, &json!(404)));
}

#[tokio::test(flavor = "multi_thread")]
async fn data_envelopes_with_gid_under_a_parent() {
    let s = Sandbox::start(&["--spec", &shape("workmgmt.yaml")]);
    let base = format!("{}/api/1.0", s.url());
    let auth = [("authorization", "Bearer t1")];
    let (status, project) = call(
        M::POST,
        &format!("{base}/projects"),
        &auth,
        Some(json!({"data": {"name": "Launch", "color": "dark-blue"}})),
        false,
    )
    .await;
    assert_eq!(status, 201, "{project}");
    assert_eq!(project["data"]["name"], "Launch");
    let pg = project["data"]["gid"].as_str().expect("a gid").to_owned();
    let tasks = format!("{base}/projects/{pg}/tasks");
    let sent = json!({"name": "Write copy", "notes": "200 words", "completed": false});
    let (status, task) = call(M::POST, &tasks, &auth, Some(json!({ "data": sent })), false).await;
    assert_eq!(status, 201, "{task}");
    for k in ["name", "notes", "completed"] {
        assert_eq!(task["data"][k], sent[k], "{k}: {task}");
    }
    let tg = task["data"]["gid"].as_str().expect("a gid").to_owned();
    let one = format!("{base}/tasks/{tg}");
    let (status, got) = call(M::GET, &one, &auth, None, false).await;
    assert_eq!((status, &got), (200, &task));
    let (status, list) = call(M::GET, &tasks, &auth, None, false).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["next_page"], Value::Null);
    // PUT here changes what it names and keeps the rest.
    let (status, done) = call(
        M::PUT,
        &one,
        &auth,
        Some(json!({"data": {"completed": true}})),
        false,
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (&done["data"]["completed"], &done["data"]["name"]),
        (&json!(true), &json!("Write copy"))
    );
    let (status, refused) = call(
        M::POST,
        &tasks,
        &auth,
        Some(json!({"data": {"name": ""}})),
        false,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("name")),
        "{refused}"
    );
    let (status, _) = call(
        M::POST,
        &format!("{base}/projects/999/tasks"),
        &auth,
        Some(json!({"data": {"name": "x"}})),
        false,
    )
    .await;
    assert_eq!(status, 404, "the project must exist");
    let (status, _) = call(M::DELETE, &one, &auth, None, false).await;
    assert_eq!(status, 200);
    let (status, _) = call(M::GET, &one, &auth, None, false).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn singular_envelopes_and_put_as_a_partial_update() {
    let s = Sandbox::start(&["--spec", &shape("incidents.yaml")]);
    let base = format!("{}/incidents", s.url());
    let auth = [("authorization", "Token token=abc")];
    let sent = json!({"type": "incident", "title": "DB down", "urgency": "high",
                      "service": {"id": "PSVC1", "type": "service_reference"}});
    let (status, made) = call(
        M::POST,
        &base,
        &auth,
        Some(json!({ "incident": sent })),
        false,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    for k in ["type", "title", "urgency", "service"] {
        assert_eq!(made["incident"][k], sent[k], "{k}: {made}");
    }
    let one = format!("{base}/{}", made["incident"]["id"].as_str().expect("an id"));
    let (status, got) = call(M::GET, &one, &auth, None, false).await;
    assert_eq!((status, &got), (200, &made));
    let (status, list) = call(M::GET, &format!("{base}?limit=5"), &auth, None, false).await;
    assert_eq!(status, 200);
    assert_eq!(
        list["incidents"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    assert_eq!(
        (&list["total"], &list["more"]),
        (&json!(1), &json!(false)),
        "{list}"
    );
    let change = json!({"incident": {"type": "incident_reference", "status": "resolved"}});
    let (status, changed) = call(M::PUT, &one, &auth, Some(change), false).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["incident"]["status"], "resolved");
    assert_eq!(
        changed["incident"]["title"], "DB down",
        "what the PUT left out stays"
    );
    assert_eq!(changed["incident"]["service"], sent["service"]);
    let (status, refused) = call(
        M::POST,
        &base,
        &auth,
        Some(json!({"incident": {"type": "incident", "title": ""}})),
        false,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{refused}"
    );
    assert_eq!(refused["error"]["code"], 400);
    let (status, gone) = call(M::GET, &format!("{base}/NOPE"), &auth, None, false).await;
    assert_eq!((status, &gone["error"]["code"]), (404, &json!(404)));
}

#[tokio::test(flavor = "multi_thread")]
async fn refs_in_examples_and_a_property_named_ref_are_not_references() {
    let s = Sandbox::start(&["--spec", &shape("refs-in-examples.yaml")]);
    let base = format!("{}/schemas", s.url());
    let sent = json!({"name": "address", "definition": {"$ref": "#/definitions/Address", "type": "object"}});
    let (status, made) = call(M::POST, &base, &[], Some(sent.clone()), false).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["definition"], sent["definition"]);
    let one = format!("{base}/{}", made["id"].as_str().expect("an id"));
    let (status, got) = call(M::GET, &one, &[], None, false).await;
    assert_eq!((status, &got), (200, &made));
    let bad = json!({"name": "x", "definition": {"$ref": 5}});
    let (status, refused) = call(M::POST, &base, &[], Some(bad), false).await;
    assert_eq!(status, 400);
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("$ref")),
        "{refused}"
    );
}
