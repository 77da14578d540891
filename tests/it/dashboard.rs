//! The dashboard at `/__sandbox/ui`: the admin endpoints it reads (journal exchanges and
//! refusal reasons, one record with its lifecycle, what an advance made due), the admin token
//! off loopback, and the page itself in a real headless Chromium driven through chromedriver.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver`. Without them it skips
//! with a message, unless `SANDBOX_REQUIRE_CHROMIUM=1` (set by `.ci/run`) makes their
//! absence a failure. It saves a screenshot to `target/dashboard.png`; with
//! `SANDBOX_UPDATE_SCREENSHOT=1` it also refreshes the README's `snapshots/dashboard.png`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::dakota::{Dakota, dakota};
use crate::common::{Sandbox, bundled_dakota, client, repo_root};

async fn admin_get(base: &str, path: &str) -> Value {
    client()
        .get(format!("{base}/__sandbox{path}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A customer of `api`'s tenant; returns its id.
async fn customer(api: &Dakota, name: &str) -> String {
    let body = json!({"name": name, "customer_type": "business"});
    let created = api.created("/customers", body).await;
    created["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journal_keeps_exchanges_and_says_why_a_request_was_refused() {
    let sandbox = Sandbox::start(&["--spec", &bundled_dakota()]);
    let api = dakota(&sandbox, "journal-key");
    customer(&api, "Journal Co").await;
    let refused = api
        .send(Method::POST, "/customers", Some(json!({"name": 5})), &[])
        .await;
    assert_eq!(refused.status, 400);
    let base = sandbox.url();

    let list = admin_get(base, "/journal?status=4xx&order=newest").await;
    let entry = &list["requests"][0];
    assert_eq!(entry["status"], 400, "{list}");
    assert_eq!(
        list["requests"].as_array().unwrap().len(),
        1,
        "only the refusal is 4xx"
    );
    let errors = entry["reason"]["errors"].as_array().unwrap();
    let name = errors
        .iter()
        .find(|e| e["field"] == "name")
        .expect("the name error");
    assert_eq!(name["location"], "body");
    assert!(
        name["message"].as_str().unwrap().contains("not of type"),
        "{name}"
    );
    assert!(entry["latency_ms"].as_f64().unwrap() > 0.0);

    let id = entry["id"].as_str().unwrap();
    let one = admin_get(base, &format!("/journal/{id}")).await;
    let request = &one["exchange"]["request"];
    let header = |name: &str| {
        request["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].clone())
    };
    assert_eq!(header("x-api-key"), Some(json!("<redacted>")), "{one}");
    assert!(header("x-idempotency-key").is_some_and(|v| v != "<redacted>"));
    assert_eq!(request["body"], r#"{"name":5}"#);
    let response = one["exchange"]["response"]["body"].as_str().unwrap();
    assert!(response.contains("invalid-request"), "{response}");

    let by_tenant = admin_get(base, "/journal?tenant=journal-key&path=/customers").await;
    assert_eq!(by_tenant["requests"].as_array().unwrap().len(), 2);
    let other = admin_get(base, "/journal?tenant=someone-else").await;
    assert_eq!(other["requests"], json!([]));
    let missing = client()
        .get(format!("{base}/__sandbox/journal/req_nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_advance_says_what_became_due_and_bad_controls_change_nothing() {
    let sandbox = Sandbox::start(&["--spec", &bundled_dakota()]);
    let api = dakota(&sandbox, "clock-key");
    let base = sandbox.url();
    api.admin(Method::POST, "/clock/freeze", None).await;
    let id = customer(&api, "Clockwork Ltd").await;

    let record = admin_get(base, &format!("/resources/customers/{id}")).await;
    assert_eq!(record["lifecycle"]["state"], "pending", "{record}");
    assert_eq!(record["lifecycle"]["next"][0]["to"], "active");
    assert!(record["lifecycle"]["next"][0]["due_at"].is_f64());
    let events: Vec<&str> = record["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["customer.created"]);

    for bad in [
        json!({"seconds": -5}),
        json!({"seconds": "soon"}),
        json!({}),
    ] {
        let res = client()
            .post(format!("{base}/__sandbox/clock/advance"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("seconds must be"),
            "{body}"
        );
    }
    let import = client()
        .put(format!("{base}/__sandbox/state"))
        .body(r#"{"not": "state"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(import.status(), StatusCode::BAD_REQUEST);
    let still = admin_get(base, &format!("/resources/customers/{id}")).await;
    assert_eq!(
        still["lifecycle"]["state"], "pending",
        "nothing moved or was lost"
    );

    let advanced = api
        .admin(
            Method::POST,
            "/clock/advance",
            Some(json!({"seconds": 3600})),
        )
        .await;
    let changed = &advanced["due"]["changed"][0];
    assert_eq!(
        (&changed["id"], &changed["from"], &changed["to"]),
        (&json!(id), &json!("pending"), &json!("active")),
        "{advanced}"
    );
    assert_eq!(advanced["due"]["events"][0]["type"], "customer.updated");

    let info = admin_get(base, "/info").await;
    assert_eq!(info["title"], "Dakota Platform API");
    assert_eq!(info["operations"], 100);
    let tenant = &info["tenants"][0];
    assert_eq!(
        (&tenant["tenant"], &tenant["records"]["customers"]),
        (&json!("clock-key"), &json!(1))
    );
    let scenarios = admin_get(base, "/scenarios").await;
    assert!(
        scenarios["presets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "insufficient_funds" && p["status"] == 422)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_assets_come_from_the_binary() {
    let sandbox = Sandbox::start(&["--spec", &bundled_dakota()]);
    let dashboard = sandbox
        .table
        .iter()
        .find_map(|l| l.split_whitespace().find(|w| w.ends_with("/__sandbox/ui")))
        .expect("serve prints the dashboard URL")
        .to_owned();
    assert_eq!(dashboard, format!("{}/__sandbox/ui", sandbox.url()));
    let page = client().get(&dashboard).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Dakota Platform API</h1>"), "{html}");
    // Nothing from elsewhere: every asset is the sandbox's own.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for (asset, kind) in [
        ("dashboard.css", "text/css"),
        ("dashboard.js", "text/javascript"),
    ] {
        let res = client()
            .get(format!("{dashboard}/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
}

/// The dashboard URL a token-guarded sandbox printed, reached through loopback.
fn printed_dashboard(sandbox: &Sandbox, port_url: &str) -> String {
    let printed = sandbox
        .table
        .iter()
        .find_map(|l| l.split_whitespace().find(|w| w.contains("/__sandbox/ui")))
        .expect("serve prints the dashboard URL")
        .to_owned();
    let port = port_url.rsplit(':').next().unwrap();
    let path = printed.split_once(&format!(":{port}")).unwrap().1;
    format!("http://127.0.0.1:{port}{path}")
}

#[tokio::test(flavor = "multi_thread")]
async fn off_loopback_the_admin_api_needs_a_generated_token_and_the_api_does_not() {
    // Listening on every address; the test still speaks to loopback only.
    let sandbox = Sandbox::start(&["--spec", &bundled_dakota(), "--host", "0.0.0.0"]);
    let dashboard = printed_dashboard(&sandbox, sandbox.url());
    let token = dashboard
        .split_once("?token=")
        .expect("the URL carries the token")
        .1;
    assert_eq!(token.len(), 32);
    let base = dashboard.split("/__sandbox").next().unwrap().to_owned();

    let status = |req: reqwest::RequestBuilder| async move { req.send().await.unwrap().status() };
    let info = format!("{base}/__sandbox/info");
    assert_eq!(status(client().get(&info)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status(client().get(&info).bearer_auth("wrong")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(client().get(&info).bearer_auth(token)).await,
        StatusCode::OK
    );
    let ui = format!("{base}/__sandbox/ui");
    let locked = client().get(&ui).send().await.unwrap();
    assert_eq!(locked.status(), StatusCode::UNAUTHORIZED);
    assert!(locked.text().await.unwrap().contains("Token required"));
    // The printed URL opens the page and leaves the token in a cookie for the page's fetches.
    let opened = client().get(&dashboard).send().await.unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    let cookie = opened.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with(&format!("sandbox_admin_token={token};")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let pair = cookie.split(';').next().unwrap();
    let stream = client()
        .get(format!("{base}/__sandbox/journal"))
        .header("cookie", pair);
    assert_eq!(status(stream).await, StatusCode::OK);
    // The API's own routes keep the spec's security only.
    let own = client()
        .get(format!("{base}/customers"))
        .header("x-api-key", "k");
    assert_eq!(status(own).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_given_token_is_required_on_loopback_too_and_never_printed() {
    let sandbox = Sandbox::start(&["--spec", &bundled_dakota(), "--admin-token", "s3cret-t0ken"]);
    assert!(
        !sandbox.table.iter().any(|l| l.contains("s3cret-t0ken")),
        "{:?}",
        sandbox.table
    );
    let clock = format!("{}/__sandbox/clock", sandbox.url());
    let res = client().get(&clock).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let ok = client()
        .get(&clock)
        .bearer_auth("s3cret-t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

// ---- The browser ---------------------------------------------------------------------

/// `name` on the PATH.
fn find_program(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` (skip) when missing and not required.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let found = find_program("chromium").zip(find_program("chromedriver"));
    if found.is_none() {
        assert!(
            std::env::var("SANDBOX_REQUIRE_CHROMIUM").is_err(),
            "SANDBOX_REQUIRE_CHROMIUM is set but chromium or chromedriver is not installed \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipping: chromium or chromedriver is not installed");
    }
    found
}

/// A chromedriver process on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(chromedriver: &PathBuf) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while client().get(format!("{url}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the element `css` shows `needle`; returns its text.
async fn shows(c: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = match c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never showed {needle:?}; it shows:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Clicks `css`. The page re-renders as live updates arrive, so an element found a moment
/// ago may be gone (stale) by the click: it is found and clicked again until it takes.
async fn click(c: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let err = match c.find(Locator::Css(css)).await {
            Ok(el) => match el.click().await {
                Ok(_) => return,
                Err(e) => e,
            },
            Err(e) => e,
        };
        assert!(Instant::now() < deadline, "cannot click {css}: {err}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_in_a_real_browser_shows_records_refusals_events_and_the_clock() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    // Relative to the repository, as a user types it (the page shows it, and so does the
    // README's screenshot).
    let sandbox = Sandbox::start(&["--spec", "specs/dakota/openapi.yaml"]);
    let api = dakota(&sandbox, "dashboard-key");
    let (_hook_url, _hooks) = api.listen().await; // freezes the clock, registers a target
    let id = customer(&api, "Acme Dashboard Inc").await;
    let refused = api
        .send(Method::POST, "/customers", Some(json!({"name": 5})), &[])
        .await;
    assert_eq!(refused.status, 400);

    let driver = Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1440,960",
    ];
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": args}),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session");
    let url = format!("{}/__sandbox/ui", sandbox.url());
    let run = tokio::spawn(drive(browser.clone(), url, api.base.clone(), id));
    let outcome = run.await;
    let _ = browser.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A customer id in the right shape that no tenant has (404, not 400).
const LIVE_CHECK: &str = "2NFHrqBHb3cTfLVkFSGmHZqdDPi";

/// What a person does with the dashboard, asserting what they see.
async fn drive(c: Client, url: String, base: String, id: String) {
    c.goto(&url).await.unwrap();
    // Overview: the API and its tenant's records.
    shows(&c, "#info", "Dakota Platform API").await;
    shows(&c, "#counts", "dashboard-key").await;
    shows(&c, "#live", "live").await;
    shows(&c, "#clock-mode", "Frozen").await;
    assert!(!shows(&c, "#clock-time", "Z").await.is_empty());

    // Records: the customer, pending.
    click(&c, "#tab-records").await;
    c.find(Locator::Css("#record-resource"))
        .await
        .unwrap()
        .select_by_value("customers")
        .await
        .unwrap();
    let row = shows(&c, "#records-table", &id).await;
    assert!(
        row.contains("pending") && row.contains("Acme Dashboard Inc"),
        "{row}"
    );

    // Journal: the refusal, with its reason in plain words, and a new request, live.
    click(&c, "#tab-journal").await;
    let journal = shows(&c, "#journal-table", "invalid request").await;
    assert!(journal.contains("body name: 5 is not of type"), "{journal}");
    let missing = client()
        .get(format!("{base}/customers/{LIVE_CHECK}"))
        .header("x-api-key", "dashboard-key")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    shows(&c, "#journal-table", &format!("/customers/{LIVE_CHECK}")).await;

    // Events and webhooks: the creation event and its delivery.
    click(&c, "#tab-events").await;
    shows(&c, "#events-table", "customer.created").await;
    shows(&c, "#deliveries-table", "customer.created").await;

    // The clock refuses nonsense on the page, then an hour moves the customer on.
    c.find(Locator::Css("#advance-amount"))
        .await
        .unwrap()
        .send_keys("soon")
        .await
        .unwrap();
    click(&c, "#advance-form button[type=submit]").await;
    shows(&c, "#message", "seconds must be a number").await;
    click(&c, "#tab-records").await;
    click(&c, "[data-advance='3600']").await;
    let due = shows(&c, "#due", "pending → active").await;
    assert!(due.contains(&id), "{due}");
    let row = shows(&c, "#records-table", "active").await;
    assert!(row.contains(&id), "{row}");

    // The record's own view: its lifecycle and the events it caused.
    click(&c, "#records-table button[type=button]").await;
    let detail = shows(&c, "#detail-body", "customer.updated").await;
    assert!(
        detail.contains("kyb_status: active") && detail.contains("customer.created"),
        "{detail}"
    );
    click(&c, "#detail form button").await;

    click(&c, "#tab-journal").await;
    shows(&c, "#journal-table", &format!("/customers/{LIVE_CHECK}")).await;
    save_screenshot(&c.screenshot().await.unwrap());
}

fn save_screenshot(png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let target = repo_root().join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("dashboard.png"), png).unwrap();
    if std::env::var("SANDBOX_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        std::fs::write(repo_root().join("snapshots/dashboard.png"), png).unwrap();
    }
}
