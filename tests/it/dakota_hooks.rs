//! The bundled Dakota profile over HTTP: `x-api-key` on application-token routes, the event
//! envelope's `api_version`, and the `X-Sandbox-Scenario` error presets.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Sandbox, bundled_dakota, client};

/// Speaks to one sandbox as one tenant.
struct Dakota {
    base: String,
    key: &'static str,
}

/// One answer: status, content type and JSON body (`Null` when there is none).
struct Reply {
    status: u16,
    content_type: String,
    body: Value,
}

impl Dakota {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = client().request(method.clone(), format!("{}{path}", self.base));
        if !self.key.is_empty() {
            req = req.header("x-api-key", self.key);
        }
        if method == Method::POST && !path.contains("/replay") {
            req = req.header("x-idempotency-key", crate::contract_uuid());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("the sandbox answers");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = res.bytes().await.expect("a body");
        Reply {
            status,
            content_type,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, &[]).await
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = client().request(method, format!("{}/__sandbox{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
            .await
            .expect("the admin API answers")
            .json()
            .await
            .expect("admin JSON")
    }
}

fn dakota(s: &Sandbox, key: &'static str) -> Dakota {
    Dakota {
        base: s.url().to_owned(),
        key,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_is_accepted_on_application_token_routes() {
    let s = Sandbox::start(&["--spec", &bundled_dakota()]);
    let api = dakota(&s, "key-apps");
    let path = "/applications/2hCjxJzUAW6JVRkZqaF9E0KpM3a";

    // Only the application token is declared here; the SDK sends its API key instead.
    let with_key = api.get(path).await;
    assert_ne!(with_key.status, 401, "{}", with_key.body);
    let journal = api.admin(Method::GET, "/journal", None).await;
    let last = journal["requests"]
        .as_array()
        .and_then(|r| r.last())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(last["path"], path, "{journal}");
    assert_eq!(last["tenant"], "key-apps", "the key is the tenant: {last}");

    // The declared token still works, and is its own tenant.
    let with_token = api
        .send(Method::GET, path, None, &[("x-application-token", "tok-1")])
        .await;
    assert_ne!(with_token.status, 401, "{}", with_token.body);

    // Nothing at all is still refused, in Dakota's problem format.
    let anonymous = dakota(&s, "").get(path).await;
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
