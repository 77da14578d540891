//! Lifecycles on a frozen virtual clock, events, injected faults, and signed webhooks
//! delivered to a real receiver started by the test.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::webhooks::{public_key, receiver};
use crate::common::{Sandbox, client, repo_root};

struct Client {
    base: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = client()
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", "k");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        crate::common::reply(req).await
    }
    async fn admin(&self, path: &str, body: Option<Value>) -> Value {
        let req = match body {
            Some(b) => client()
                .post(format!("{}/__sandbox{path}", self.base))
                .json(&b),
            None if path.starts_with("/clock/") => {
                client().post(format!("{}/__sandbox{path}", self.base))
            }
            None => client().get(format!("{}/__sandbox{path}", self.base)),
        };
        req.send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("json")
    }
    async fn status_of(&self, id: &str) -> String {
        self.call(reqwest::Method::GET, &format!("/payments/{id}"), None, &[])
            .await
            .1["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    async fn create(&self, headers: &[(&str, &str)]) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            "/payments",
            Some(json!({"amount": 1200})),
            headers,
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn payments_move_through_their_lifecycle_and_webhooks_arrive_signed() {
    let spec = repo_root()
        .join("tests/specs/payments/openapi.yaml")
        .to_string_lossy()
        .into_owned();
    let s = Sandbox::start(&["--spec", &spec]);
    let api = Client {
        base: s.url().to_owned(),
    };
    let (hook_url, seen) = receiver(true).await;
    api.admin("/clock/freeze", None).await;
    api.admin("/webhooks/targets", Some(json!({"url": hook_url})))
        .await;

    // pending -> processing -> completed, step by step on the frozen clock.
    let (status, p) = api.create(&[]).await;
    assert_eq!(
        (status, p["status"].as_str()),
        (201, Some("pending")),
        "{p}"
    );
    let id = p["id"].as_str().expect("id").to_owned();
    api.admin("/clock/advance", Some(json!({"seconds": 4})))
        .await;
    assert_eq!(api.status_of(&id).await, "pending");
    api.admin("/clock/advance", Some(json!({"seconds": 1})))
        .await;
    assert_eq!(api.status_of(&id).await, "processing");
    api.admin("/clock/advance", Some(json!({"seconds": 10})))
        .await;
    let (_, done) = api
        .call(reqwest::Method::GET, &format!("/payments/{id}"), None, &[])
        .await;
    assert_eq!(done["status"], "completed");
    assert!(
        done["completed_at"].as_i64().is_some_and(|t| t > 0),
        "entering completed set completed_at: {done}"
    );

    // Entering `completed` debits the payment's account and creates a receipt.
    let (_, account) = api
        .call(
            reqwest::Method::POST,
            "/accounts",
            Some(json!({"balance": 5000})),
            &[],
        )
        .await;
    let account_id = account["id"].as_str().expect("account id").to_owned();
    let (_, paid) = api
        .call(
            reqwest::Method::POST,
            "/payments",
            Some(json!({"amount": 1200, "account_id": account_id})),
            &[],
        )
        .await;
    let paid_id = paid["id"].as_str().expect("id").to_owned();
    api.admin("/clock/advance", Some(json!({"seconds": 15})))
        .await;
    assert_eq!(api.status_of(&paid_id).await, "completed");
    let (_, account) = api
        .call(
            reqwest::Method::GET,
            &format!("/accounts/{account_id}"),
            None,
            &[],
        )
        .await;
    assert_eq!(account["balance"], 3800, "{account}");
    let (_, receipts) = api.call(reqwest::Method::GET, "/receipts", None, &[]).await;
    let mine: Vec<&Value> = receipts
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["payment_id"] == paid_id.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{receipts}");
    assert_eq!(mine[0]["amount"], 1200);
    assert!(
        mine[0]["issued_at"]
            .as_str()
            .is_some_and(|t| t.contains('T')),
        "$now in the member's own format: {receipts}"
    );

    // Cancel from pending works once; from canceled it is refused and nothing changes.
    let (_, p2) = api.create(&[]).await;
    let id2 = p2["id"].as_str().expect("id").to_owned();
    let (status, canceled) = api
        .call(
            reqwest::Method::POST,
            &format!("/payments/{id2}/cancel"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (status, canceled["status"].as_str()),
        (200, Some("canceled")),
        "{canceled}"
    );
    let (status, refused) = api
        .call(
            reqwest::Method::POST,
            &format!("/payments/{id2}/cancel"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("canceled")),
        "{refused}"
    );
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            &format!("/payments/{id}/cancel"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, 409, "a completed payment cannot be canceled");
    assert_eq!(api.status_of(&id).await, "completed");

    // Instant completion, a scenario branch, an injected error, a preset.
    let (_, instant) = api
        .create(&[("x-sandbox-instant-completion", "true")])
        .await;
    assert_eq!(instant["status"], "completed", "{instant}");
    let (_, declined) = api.create(&[("x-sandbox-scenario", "decline")]).await;
    let id4 = declined["id"].as_str().expect("id").to_owned();
    api.admin("/clock/advance", Some(json!({"seconds": 15})))
        .await;
    assert_eq!(api.status_of(&id4).await, "failed");
    let (status, injected) = api
        .create(&[
            ("x-sandbox-error-status", "402"),
            ("x-sandbox-error-message", "card declined"),
        ])
        .await;
    assert_eq!(
        (
            status,
            injected["message"].as_str(),
            injected["code"].as_i64()
        ),
        (402, Some("card declined"), Some(402))
    );
    let (status, preset) = api
        .create(&[("x-sandbox-scenario", "insufficient_funds")])
        .await;
    assert_eq!(
        (status, preset["message"].as_str()),
        (422, Some("Insufficient funds"))
    );
    let before = api
        .call(reqwest::Method::GET, "/payments", None, &[])
        .await
        .1;
    assert_eq!(
        before.as_array().map(Vec::len),
        Some(5),
        "injected errors created nothing"
    );

    // Events: every change, in order, in the sandbox's log and in the API's own collection.
    let events = api.admin("/events", None).await;
    let first: Vec<(String, Option<String>)> = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["data"]["object"]["id"] == id.as_str())
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["data"]["object"]["status"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let expected = [
        ("payment.created", "pending"),
        ("payment.updated", "processing"),
        ("payment.updated", "completed"),
    ];
    assert_eq!(
        first,
        expected.map(|(t, s)| (t.to_owned(), Some(s.to_owned())))
    );
    let listed = api.call(reqwest::Method::GET, "/events", None, &[]).await.1;
    let total = events["events"].as_array().map_or(0, Vec::len);
    assert_eq!(
        listed["data"].as_array().map(Vec::len),
        Some(total.min(20)),
        "{listed}"
    );

    // Webhooks: after the retry backoff, every event arrives, in order, correctly signed.
    api.admin("/clock/advance", Some(json!({"seconds": 60})))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().expect("lock").len() < total + 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        api.admin("/clock/advance", Some(json!({"seconds": 5})))
            .await;
    }
    let vk = public_key(&api.base).await;
    let got = seen.lock().expect("lock").clone();
    assert_eq!(
        got.len(),
        total + 1,
        "every event once, plus one retry of the first"
    );
    let mut ids = Vec::new();
    for hook in &got {
        assert!(hook.verifies(&vk), "signature verifies");
        ids.push(hook.json()["id"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(
        ids[0], ids[1],
        "the first delivery was retried after the 500"
    );
    let sent: Vec<String> = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(&ids[1..], &sent[..], "events arrive in order");
    let log = api.admin("/webhooks/deliveries", None).await;
    assert_eq!(log["deliveries"][0]["attempts"], 2, "{log}");
    assert!(
        log["deliveries"]
            .as_array()
            .is_some_and(|d| d.iter().all(|x| x["status"] == "delivered"))
    );
}

/// A spec with no profile records `<resource>.created|updated|deleted` and delivers them,
/// signed, to a registered target: the built-in defaults are the documented ones.
#[tokio::test(flavor = "multi_thread")]
async fn a_spec_without_a_profile_delivers_signed_events() {
    let s = Sandbox::start(&["--spec", &crate::common::test_spec("notes/openapi.yaml")]);
    let (url, seen) = crate::common::webhooks::receiver(false).await;
    let registered = client()
        .post(format!("{}/__sandbox/webhooks/targets", s.url()))
        .json(&json!({"url": url}))
        .send()
        .await
        .expect("answers");
    assert_eq!(registered.status().as_u16(), 201);
    let send = |method: reqwest::Method, path: String, body: Option<Value>| {
        let req = client()
            .request(method, format!("{}{path}", s.url()))
            .bearer_auth("writer");
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        async move { req.send().await.expect("answers") }
    };
    let created: Value = send(
        reqwest::Method::POST,
        "/notes".into(),
        Some(json!({"text": "hi"})),
    )
    .await
    .json()
    .await
    .expect("json");
    let id = created["id"].as_str().expect("an id").to_owned();
    send(
        reqwest::Method::PATCH,
        format!("/notes/{id}"),
        Some(json!({"text": "hello"})),
    )
    .await;
    send(reqwest::Method::DELETE, format!("/notes/{id}"), None).await;
    let hooks = crate::common::webhooks::wait_for(&seen, 3).await;
    let key = crate::common::webhooks::public_key(s.url()).await;
    let types: Vec<String> = hooks
        .iter()
        .map(|h| h.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(types, ["note.created", "note.updated", "note.deleted"]);
    assert!(
        hooks.iter().all(|h| h.verifies(&key)),
        "every webhook is signed"
    );
    assert_eq!(hooks[1].json()["data"]["object"]["text"], "hello");
    assert_eq!(hooks[1].json()["data"]["previous_attributes"]["text"], "hi");
}
