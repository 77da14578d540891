//! The bundled Dakota profile over HTTP: `x-api-key` on application-token routes, webhook
//! delivery history and replay through Dakota's own operations, the event envelope's
//! `api_version`, and the `X-Sandbox-Scenario` error presets.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::dakota::dakota;
use crate::common::webhooks::{public_key, wait_for};
use crate::common::{Sandbox, bundled_dakota};

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_is_accepted_on_application_token_routes() {
    let s = Sandbox::start(&["--spec", &bundled_dakota()]);
    let api = dakota(&s, "key-apps");
    let customer = api
        .send(
            Method::POST,
            "/customers",
            Some(json!({"name": "Acme Robotics", "customer_type": "business"})),
            &[],
        )
        .await;
    assert_eq!(customer.status, 201, "{}", customer.body);
    let application_id = customer.body["application_id"]
        .as_str()
        .expect("the customer's application")
        .to_owned();
    let path = format!("/applications/{application_id}");

    // Only the application token is declared here; the SDK sends its API key instead, and
    // the key is the tenant: the customer's own application is found.
    let with_key = api.get(&path).await;
    assert_eq!(with_key.status, 200, "{}", with_key.body);
    assert_eq!(with_key.body["application_id"], application_id.as_str());
    let journal = api.admin(Method::GET, "/journal", None).await;
    let last = journal["requests"]
        .as_array()
        .and_then(|r| r.last())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(last["path"], path.as_str(), "{journal}");
    assert_eq!(last["tenant"], "key-apps", "the key is the tenant: {last}");

    // Applications are listed with an `id` too: the TS SDK pages by it.
    let listed = api.get("/applications").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let item = &listed.body["data"][0];
    assert_eq!(item["application_id"], application_id.as_str());
    assert_eq!(item["id"], application_id.as_str());
    assert_eq!(item["individuals"], json!([]));

    // The token in the customer's application_url is a credential of its own: alone, it
    // reaches the same application. A token nobody issued is a tenant of its own, with
    // nothing in it.
    let url = customer.body["application_url"]
        .as_str()
        .unwrap_or_default();
    let token = url.split("token=").nth(1).expect("a token in the URL");
    let applicant = dakota(&s, "");
    let with_token = applicant
        .send(Method::GET, &path, None, &[("x-application-token", token)])
        .await;
    assert_eq!(with_token.status, 200, "{}", with_token.body);
    assert_eq!(with_token.body["application_id"], application_id.as_str());
    let stranger = applicant
        .send(
            Method::GET,
            &path,
            None,
            &[("x-application-token", "tok-1")],
        )
        .await;
    assert_eq!(stranger.status, 404, "{}", stranger.body);

    // Nothing at all is still refused, in Dakota's problem format.
    let anonymous = dakota(&s, "").get(&path).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(
        anonymous
            .content_type
            .starts_with("application/problem+json"),
        "{}",
        anonymous.content_type
    );
    assert!(
        anonymous.body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("#authentication-error")),
        "{}",
        anonymous.body
    );
    let detail = anonymous.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("x-application-token") && detail.contains("x-api-key"),
        "both accepted credentials are named: {detail}"
    );
}

#[test]
fn an_unknown_scheme_in_auth_also_accept_is_refused_at_start() {
    let spec = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /things:\n    get:\n      responses: {'200': {description: ok}}\n";
    let stderr = crate::spec_loading::serve_fails(&[
        ("openapi.yaml", spec),
        ("sandbox.yaml", "auth:\n  also_accept: [NoSuchScheme]\n"),
    ]);
    assert!(
        stderr.contains("sandbox.yaml: /auth/also_accept/0") && stderr.contains("NoSuchScheme"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scenario_presets_answer_with_their_error_and_store_nothing() {
    let s = Sandbox::start(&["--spec", &bundled_dakota()]);
    let api = dakota(&s, "key-scenarios");
    let customer = json!({"name": "Acme Robotics", "customer_type": "business"});
    // Declared by createCustomer (403), borrowed from the API's usual error (503, 504), and
    // the two client errors.
    for (scenario, status, fragment) in [
        ("compliance_block", 403, "forbidden"),
        ("account_frozen", 403, "forbidden"),
        ("provider_maintenance", 503, "service-unavailable"),
        ("network_timeout", 504, "gateway-timeout"),
        ("insufficient_funds", 422, "validation-error"),
        ("invalid_swift", 400, "invalid-request"),
    ] {
        let r = api
            .send(
                Method::POST,
                "/customers",
                Some(customer.clone()),
                &[("x-sandbox-scenario", scenario)],
            )
            .await;
        assert_eq!(r.status, status, "{scenario}: {}", r.body);
        assert!(
            r.content_type.starts_with("application/problem+json"),
            "{scenario}: {}",
            r.content_type
        );
        let t = r.body["type"].as_str().unwrap_or_default();
        assert_eq!(
            t,
            format!("https://docs.dakota.xyz/api-reference/errors#{fragment}"),
            "{scenario}: {}",
            r.body
        );
        assert_eq!(r.body["status"], status, "{scenario}: {}", r.body);
        assert!(
            r.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{scenario}: {}",
            r.body
        );
    }
    let listed = api.get("/customers").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        listed.body["meta"]["total_count"], 0,
        "a preset stores nothing: {}",
        listed.body
    );
    // A scenario without a preset lets the request through.
    let created = api
        .send(
            Method::POST,
            "/customers",
            Some(customer),
            &[("x-sandbox-scenario", "happy_path")],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_history_and_replay_through_dakotas_own_operations() {
    let s = Sandbox::start(&["--spec", &bundled_dakota()]);
    let api = dakota(&s, "key-hooks");
    // A frozen clock keeps the KYB lifecycle still, so the only events are ours.
    let (hook_url, seen) = api.listen().await;
    let customer = api
        .send(
            Method::POST,
            "/customers",
            Some(json!({"name": "Acme Robotics", "customer_type": "business"})),
            &[],
        )
        .await;
    assert_eq!(customer.status, 201, "{}", customer.body);
    // target.created (the new target is global, so it gets its own creation) and
    // customer.created.
    let got = wait_for(&seen, 2).await;
    assert_eq!(got.len(), 2, "two webhooks arrive");
    let created = got
        .iter()
        .find(|h| h.json()["type"] == "customer.created")
        .cloned()
        .expect("customer.created arrives");
    let event = created.json();
    let event_id = event["id"].as_str().expect("an event id").to_owned();
    assert!(
        !created.replay,
        "an original delivery is not marked as a replay"
    );

    // The envelope: Dakota's events name their API version, before `data`.
    assert_eq!(event["api_version"], "1.0.0", "{event}");
    let keys: Vec<&str> = event
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        ["id", "type", "created", "api_version", "data"],
        "{event}"
    );

    // History, newest first, in Dakota's {data, has_more, cursor} shape.
    let history = api.get("/webhooks").await;
    assert_eq!(history.status, 200, "{}", history.body);
    let data = history.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(data.len(), 2, "{}", history.body);
    assert_eq!(history.body["has_more"], false);
    assert_eq!(history.body["cursor"], Value::Null);
    let row = &data[0];
    assert_eq!(
        row["id"],
        event_id.as_str(),
        "newest first: {}",
        history.body
    );
    assert_eq!(row["event_type"], "customer.created");
    assert_eq!(row["endpoint_url"], hook_url.as_str());
    assert_eq!(row["status"], "delivered", "{row}");
    assert_eq!(row["attempts"], 1);
    assert_eq!(row["is_replay"], false);
    assert_eq!(row["replay_count"], 0);
    assert_eq!(row["simulation_id"], Value::Null, "{row}");
    assert_eq!(row["payload"], event, "the payload is the body sent");
    for member in ["created_at", "delivered_at"] {
        assert!(
            row[member]
                .as_str()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
            "{member} is RFC 3339: {row}"
        );
    }
    assert_eq!(data[1]["event_type"], "target.created");

    // Pages: the cursor is the event id of the last item.
    let first = api.get("/webhooks?limit=1").await;
    assert_eq!(first.body["has_more"], true, "{}", first.body);
    assert_eq!(first.body["cursor"], event_id.as_str());
    let second = api
        .get(&format!("/webhooks?limit=1&cursor={event_id}"))
        .await;
    assert_eq!(
        second.body["data"][0]["event_type"], "target.created",
        "{}",
        second.body
    );
    assert_eq!(second.body["has_more"], false);
    // Filters.
    let only = api.get("/webhooks?event_type=customer.created").await;
    assert_eq!(
        only.body["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        only.body
    );
    let failed = api.get("/webhooks?status=failed").await;
    assert_eq!(
        failed.body["data"].as_array().map(Vec::len),
        Some(0),
        "{}",
        failed.body
    );

    // One event's record, and an unknown one.
    let one = api.get(&format!("/webhooks/{event_id}")).await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body, *row, "the same record as in the list");
    let unknown = api.get("/webhooks/2Nf5xCw4k3G8m9PqR7sTuVwXyZa").await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.content_type.starts_with("application/problem+json"));

    // Replay: queued to the one current target, delivered again with the replay header and
    // the same signed bytes.
    let replay_path = format!("/webhooks/events/{event_id}/replay");
    let replayed = api.send(Method::POST, &replay_path, None, &[]).await;
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    assert_eq!(
        replayed.body,
        json!({"webhook_id": event_id, "status": "queued", "replayed_to_count": 1})
    );
    let got = wait_for(&seen, 3).await;
    assert_eq!(got.len(), 3);
    let again = &got[2];
    assert!(again.replay, "X-Webhook-Replay: true");
    assert_eq!(again.body, created.body, "the same event");
    let vk = public_key(&api.base).await;
    for hook in &got {
        assert!(hook.verifies(&vk), "every webhook is signed");
    }
    let history = api.get("/webhooks").await;
    let rows = history.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 3, "{}", history.body);
    assert_eq!(
        (
            rows[0]["id"].as_str(),
            &rows[0]["is_replay"],
            &rows[0]["replay_count"]
        ),
        (Some(event_id.as_str()), &json!(true), &json!(1)),
        "the replay is listed with its event: {}",
        history.body
    );
    assert_eq!(rows[1]["is_replay"], false);
    // Both deliveries of the event stay on one page, so the cursor skips nothing.
    let page = api.get("/webhooks?limit=1").await;
    assert_eq!(
        page.body["data"].as_array().map(Vec::len),
        Some(2),
        "{}",
        page.body
    );
    let rest = api
        .get(&format!(
            "/webhooks?limit=1&cursor={}",
            page.body["cursor"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(
        rest.body["data"][0]["event_type"], "target.created",
        "{}",
        rest.body
    );
    let one = api.get(&format!("/webhooks/{event_id}")).await;
    assert_eq!(
        (&one.body["is_replay"], &one.body["replay_count"]),
        (&json!(false), &json!(1)),
        "the record of the original delivery: {}",
        one.body
    );

    // Ten replays per event, then 409.
    for n in 2..=10 {
        let r = api.send(Method::POST, &replay_path, None, &[]).await;
        assert_eq!(r.status, 200, "replay {n}: {}", r.body);
    }
    let refused = api.send(Method::POST, &replay_path, None, &[]).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.content_type.starts_with("application/problem+json"));
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Replay limit exceeded")),
        "{}",
        refused.body
    );
    assert!(
        refused.body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("#conflict")),
        "{}",
        refused.body
    );
    let got = wait_for(&seen, 12).await;
    assert_eq!(
        got.iter().filter(|h| h.replay).count(),
        10,
        "ten replays went out"
    );

    // Unknown events, and another tenant's, are not found.
    let unknown = api
        .send(
            Method::POST,
            "/webhooks/events/2Nf5xCw4k3G8m9PqR7sTuVwXyZa/replay",
            None,
            &[],
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let other = dakota(&s, "key-other");
    let theirs = other.send(Method::POST, &replay_path, None, &[]).await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    let empty = other.get("/webhooks").await;
    assert_eq!(
        empty.body["data"].as_array().map(Vec::len),
        Some(0),
        "{}",
        empty.body
    );
    assert_eq!(
        other.get(&format!("/webhooks/{event_id}")).await.status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dakota_events_name_the_api_version() {
    let s = Sandbox::start(&["--spec", &bundled_dakota()]);
    let api = dakota(&s, "key-events");
    let customer = api
        .send(
            Method::POST,
            "/customers",
            Some(json!({"name": "Acme Robotics", "customer_type": "business"})),
            &[],
        )
        .await;
    assert_eq!(customer.status, 201, "{}", customer.body);
    // Stored with the event, not generated for the response: the stored record has it.
    let stored = api
        .admin(Method::GET, "/resources/events?tenant=key-events", None)
        .await;
    let records = stored["records"].as_array().cloned().unwrap_or_default();
    assert!(!records.is_empty(), "{stored}");
    for r in &records {
        assert_eq!(r["body"]["api_version"], "1.0.0", "{r}");
    }
    let events = api.get("/events").await;
    let data = events.body["data"].as_array().cloned().unwrap_or_default();
    assert!(
        !data.is_empty() && data.iter().all(|e| e["api_version"] == "1.0.0"),
        "{}",
        events.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_simulations_callbacks_are_the_webhooks_it_caused_with_their_delivery_state() {
    let s = Sandbox::start(&["--spec", &bundled_dakota()]);
    let api = dakota(&s, "key-callbacks");
    let (_, seen) = api.listen().await;
    let account = api
        .send(
            Method::POST,
            "/accounts",
            Some(json!({"account_type": "onramp", "source_asset": "USD", "destination_asset": "USDC"})),
            &[],
        )
        .await;
    assert_eq!(account.status, 201, "{}", account.body);
    let inbound = api
        .send(
            Method::POST,
            "/sandbox/simulate/inbound",
            Some(
                json!({"simulation_id": "sim_callbacks", "type": "ach_inbound",
                "account_id": account.body["id"], "amount": "100.00", "currency": "USD"}),
            ),
            &[],
        )
        .await;
    assert_eq!(inbound.status, 200, "{}", inbound.body);
    // Webhooks made before the simulation (the account's) are not its callbacks.
    let callbacks = |body: &Value| -> Vec<(String, String, String)> {
        body["callbacks"]
            .as_array()
            .expect("callbacks")
            .iter()
            .map(|c| {
                let payload: Value =
                    serde_json::from_str(c["payload_json"].as_str().unwrap_or("null"))
                        .expect("payload_json holds the webhook body");
                (
                    payload["type"].as_str().unwrap_or_default().to_owned(),
                    payload["data"]["object"]["status"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    c["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let first = api.get("/sandbox/simulations/sim_callbacks").await;
    let types: Vec<_> = callbacks(&first.body)
        .into_iter()
        .map(|(t, s, _)| (t, s))
        .collect();
    assert_eq!(
        types,
        [("transaction.auto.created".to_owned(), "pending".to_owned())]
    );

    // The auto-transaction it started settles later; those webhooks are its callbacks too,
    // and each shows its delivery as it is now.
    api.admin(Method::POST, "/clock/advance", Some(json!({"seconds": 20})))
        .await;
    wait_for(&seen, 4).await;
    // The receiver has them; the sandbox records each delivery once its answer is in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let later = loop {
        let got = api.get("/sandbox/simulations/sim_callbacks").await;
        let settled = callbacks(&got.body)
            .iter()
            .all(|(_, _, s)| s == "delivered");
        if settled || std::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        callbacks(&later.body),
        [
            ("transaction.auto.created", "pending", "delivered"),
            ("transaction.auto.updated", "processing", "delivered"),
            ("transaction.auto.updated", "completed", "delivered"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    let each = &later.body["callbacks"][0];
    assert_eq!(each["attempts"], 1);
    assert!(
        each["callback_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "{each}"
    );
    assert!(
        each["scheduled_for"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{each}"
    );
}
