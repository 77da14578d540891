//! The dakkio sandbox as an IoT developer uses it: an admin key makes buckets and their
//! write and read keys, a gateway ingests readings with the write key, a dashboard queries
//! them back aggregated with the read key, an alert rule fires once into a real receiver,
//! analytics count what was ingested, and deleting a bucket takes everything under it. The
//! aggregates are checked against values this test computes itself.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::webhooks::{public_key, receiver, wait_for};
use crate::common::{Sandbox, client, repo_root};

fn dakkio_spec() -> String {
    repo_root()
        .join("specs/dakkio/openapi.yaml")
        .to_string_lossy()
        .into_owned()
}

/// One caller: the sandbox's URL and an API key.
struct Caller<'a> {
    base: &'a str,
    key: String,
}

impl Caller<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = client().request(method, format!("{}{path}", self.base));
        if !self.key.is_empty() {
            req = req.header("x-api-key", &self.key);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        crate::common::reply(req).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    /// POSTs and expects `status`; returns the body.
    async fn expect(&self, path: &str, body: Value, status: u16) -> Value {
        let (got, answer) = self.post(path, body).await;
        assert_eq!(got, status, "POST {path}: {answer}");
        answer
    }
}

fn key_of<'a>(base: &'a str, key: &str) -> Caller<'a> {
    Caller {
        base,
        key: key.to_owned(),
    }
}

/// Replaces ids and times with placeholders so a snapshot holds only what is stable.
fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let volatile = k == "_id"
                        || k.ends_with("Id")
                        || k.ends_with("At")
                        || k == "timestamp"
                        || k == "webhookId";
                    let out = if volatile && !v.is_null() {
                        json!(format!("[{k}]"))
                    } else {
                        redact(v)
                    };
                    (k.clone(), out)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

fn snapshot(name: &str, body: &Value) {
    crate::common::snapshot(name, &redact(body));
}

/// The frozen clock's instant, in Unix seconds.
async fn frozen_now(base: &str) -> i64 {
    let clock: Value = client()
        .post(format!("{base}/__sandbox/clock/freeze"))
        .send()
        .await
        .expect("the admin API answers")
        .json()
        .await
        .expect("clock JSON");
    clock["now"].as_f64().expect("now") as i64
}

fn iso(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .expect("a time")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_scoped_by_type_and_bucket() {
    let s = Sandbox::start(&["--spec", &dakkio_spec()]);
    let base = s.url();
    let admin = key_of(base, "dakkio_a_greenhouse");
    let a = admin
        .expect("/api/buckets", json!({"name": "Greenhouse A"}), 201)
        .await;
    snapshot("dakkio_bucket_created", &a);
    let bucket = a["bucket"]["_id"].as_str().expect("an id").to_owned();
    assert_eq!(a["bucket"]["retentionDays"], 365);
    assert_eq!(a["bucket"]["status"], "active");
    // Names are unique in the organisation, whatever their case.
    let dup = admin
        .expect("/api/buckets", json!({"name": "greenhouse a"}), 409)
        .await;
    assert_eq!(dup["message"], "A bucket with this name already exists");
    let other = admin
        .expect("/api/buckets", json!({"name": "Greenhouse B"}), 201)
        .await;
    let other = other["bucket"]["_id"].as_str().expect("an id").to_owned();

    // Keys: the secret once, its first 12 characters after.
    let w = admin
        .expect(
            &format!("/api/buckets/{bucket}/keys"),
            json!({"name": "gateway", "type": "write"}),
            201,
        )
        .await;
    let secret = w["apiKey"]["key"].as_str().expect("the secret").to_owned();
    assert!(
        secret.starts_with("dakkio_w_") && secret.len() == 49,
        "{secret}"
    );
    assert_eq!(w["apiKey"]["keyPrefix"], format!("{}...", &secret[..12]));
    let (_, listed) = admin.get(&format!("/api/buckets/{bucket}/keys")).await;
    assert_eq!(listed["apiKeys"].as_array().map(Vec::len), Some(1));
    assert!(listed["apiKeys"][0].get("key").is_none(), "{listed}");
    let r = admin
        .expect(
            &format!("/api/buckets/{bucket}/keys"),
            json!({"name": "dashboard", "type": "read"}),
            201,
        )
        .await;
    let reader = key_of(base, r["apiKey"]["key"].as_str().expect("the secret"));
    let writer = key_of(base, &secret);

    // Unknown and missing keys: 401 in dakkio's words.
    for key in [
        "",
        "dakkio_w_0000000000000000000000000000000000000000",
        "sk_live_x",
    ] {
        let (status, body) = key_of(base, key).get("/api/buckets").await;
        assert_eq!(status, 401, "{key}: {body}");
        assert_eq!(body["error"], "Unauthorized");
        assert_eq!(body["message"], "Invalid or missing API key");
    }
    // The permission matrix: the wrong key type gets 403 with the documented message.
    let (status, body) = writer.get("/api/buckets").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("Only Admin keys can list buckets"))
    );
    let (status, body) = reader
        .post(
            &format!("/api/buckets/{bucket}/sources"),
            json!({"name": "s", "schema": {"t": "number"}}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("Read keys cannot create data sources"))
    );
    // Another bucket, existing or not, is out of a bucket key's reach.
    for target in [other.as_str(), "0123456789abcdef01234567"] {
        let (status, body) = writer.get(&format!("/api/buckets/{target}/sources")).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(
            body["message"],
            "API key does not have access to this bucket"
        );
    }
    // Organisations never see each other.
    let (status, _) = key_of(base, "dakkio_a_someone_else")
        .get(&format!("/api/buckets/{bucket}"))
        .await;
    assert_eq!(status, 404);
    // Deleting a key stops it at once.
    let key_id = w["apiKey"]["_id"].as_str().expect("an id");
    let (status, _) = admin
        .send(
            Method::DELETE,
            &format!("/api/buckets/{bucket}/keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = writer.get(&format!("/api/buckets/{bucket}/sources")).await;
    assert_eq!(status, 401);
}

/// Readings of one source over ten hours: one every 36 s, temperature varying.
fn readings(start: i64) -> Vec<(i64, f64, f64)> {
    (0..1000_i32)
        .map(|i| {
            let t = start + i64::from(i) * 36;
            let temperature = 18.0 + f64::from(i * 7 % 23) / 2.0;
            let humidity = 40.0 + f64::from(i % 11);
            (t, temperature, humidity)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn readings_are_ingested_queried_aggregated_and_alerted_on() {
    let s = Sandbox::start(&["--spec", &dakkio_spec()]);
    let base = s.url();
    let now = frozen_now(base).await;
    let admin = key_of(base, "dakkio_a_farm");
    let b = admin
        .expect("/api/buckets", json!({"name": "Field 1"}), 201)
        .await;
    let bucket = b["bucket"]["_id"].as_str().expect("an id").to_owned();
    let w = admin
        .expect(
            &format!("/api/buckets/{bucket}/keys"),
            json!({"name": "gw", "type": "write"}),
            201,
        )
        .await;
    let writer = key_of(base, w["apiKey"]["key"].as_str().expect("a secret"));
    let r = admin
        .expect(
            &format!("/api/buckets/{bucket}/keys"),
            json!({"name": "ro", "type": "read"}),
            201,
        )
        .await;
    let reader = key_of(base, r["apiKey"]["key"].as_str().expect("a secret"));

    // A source declared in shorthand is stored in object form.
    let src = writer
        .expect(
            &format!("/api/buckets/{bucket}/sources"),
            json!({"name": "probe", "schema": {"temperature": "number", "humidity": {"type": "number", "unit": "%"}}}),
            201,
        )
        .await;
    assert_eq!(
        src["dataSource"]["schema"]["temperature"],
        json!({"type": "number"})
    );
    assert_eq!(src["dataSource"]["type"], "sensor");
    let source = src["dataSource"]["_id"].as_str().expect("an id").to_owned();

    // 1,000 readings in one batch, starting on an hour ten hours ago.
    let start = (now / 3600 - 10) * 3600;
    let points = readings(start);
    let batch: Vec<Value> = points
        .iter()
        .map(|(t, temp, hum)| json!({"dataSourceId": source, "timestamp": iso(*t), "values": {"temperature": temp, "humidity": hum}}))
        .collect();
    let done = writer
        .expect(
            "/api/data/batch",
            json!({"bucketId": bucket, "dataPoints": batch}),
            201,
        )
        .await;
    assert_eq!(done["count"], 1000);

    // A batch with one bad item stores nothing and names the item.
    let bad = json!({"bucketId": bucket, "dataPoints": [
        {"dataSourceId": source, "timestamp": iso(now - 5), "values": {"temperature": 20}},
        {"dataSourceId": source, "timestamp": iso(now - 4), "values": {"temperature": "warm"}},
    ]});
    let refused = writer.expect("/api/data/batch", bad, 400).await;
    assert_eq!(refused["error"], "Validation Error", "{refused}");
    assert_eq!(
        refused["details"][0]["path"],
        json!(["body", "dataPoints", 1, "values", "temperature"])
    );
    // A read key cannot write.
    let (status, body) = reader
        .post(
            "/api/data",
            json!({"bucketId": bucket, "dataSourceId": source, "values": {"temperature": 1}}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("Read keys cannot ingest data"))
    );

    // Hourly averages, as the read key sees them, against our own arithmetic.
    let mut hours: BTreeMap<i64, (usize, f64, f64)> = BTreeMap::new();
    for (t, temp, hum) in &points {
        let e = hours.entry(t - t % 3600).or_default();
        *e = (e.0 + 1, e.1 + temp, e.2 + hum);
    }
    let q = reader
        .expect(
            "/api/data/query",
            json!({"bucketId": bucket, "aggregation": "avg", "groupBy": "hour", "filters": {"order": "asc", "startTime": iso(start)}}),
            200,
        )
        .await;
    let rows = q["data"].as_array().expect("rows");
    assert_eq!(rows.len(), hours.len(), "{q}");
    for (row, (hour, (n, temp, hum))) in rows.iter().zip(&hours) {
        assert_eq!(row["timestamp"], iso(*hour));
        assert_eq!(row["count"], *n);
        let avg = |v: &Value| v.as_f64().expect("a number");
        assert!(
            (avg(&row["values"]["temperature"]) - temp / *n as f64).abs() < 1e-9,
            "{row}"
        );
        assert!(
            (avg(&row["values"]["humidity"]) - hum / *n as f64).abs() < 1e-9,
            "{row}"
        );
    }
    assert_eq!(q["metadata"]["aggregation"], "avg");
    assert_eq!(q["metadata"]["groupBy"], "hour");
    // More than 500 raw readings from a downsampling source come back as hourly averages.
    let all = reader
        .expect(
            "/api/data/query",
            json!({"bucketId": bucket, "filters": {"startTime": iso(start)}}),
            200,
        )
        .await;
    assert_eq!(
        all["metadata"]["downsamplingApplied"], true,
        "{}",
        all["metadata"]
    );
    assert_eq!(all["metadata"]["groupBy"], "hour");
    assert_eq!(all["metadata"]["total"], hours.len());
    // Fewer come back raw, newest first, in pages.
    let raw = reader
        .expect("/api/data/query", json!({"bucketId": bucket, "filters": {"limit": 3, "dataSourceId": source, "startTime": iso(points[900].0)}}), 200)
        .await;
    assert_eq!(raw["metadata"]["total"], 100, "{}", raw["metadata"]);
    assert_eq!(raw["metadata"]["hasMore"], true);
    assert_eq!(raw["metadata"]["downsamplingApplied"], false);
    assert_eq!(raw["data"][0]["timestamp"], iso(points[999].0));
    assert_eq!(raw["data"][0]["values"]["temperature"], points[999].1);

    // An alert rule fires once into a real receiver, signed; the cooldown holds the second.
    let (url, seen) = receiver(false).await;
    let rule = writer
        .expect(
            "/api/alerts",
            json!({"bucketId": bucket, "dataSourceId": source, "name": "Too hot", "condition": "temperature exceeds 40", "webhookUrl": url}),
            201,
        )
        .await;
    assert_eq!(
        rule["alertRule"]["parsedCondition"],
        json!({"field": "temperature", "operator": "gt", "value": 40})
    );
    for (t, v) in [(now - 3, 41.5), (now - 2, 43.0), (now - 1, 20.0)] {
        writer
            .expect("/api/data", json!({"bucketId": bucket, "dataSourceId": source, "timestamp": iso(t), "values": {"temperature": v}}), 201)
            .await;
    }
    let hooks = wait_for(&seen, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        seen.lock().expect("lock").len(),
        1,
        "the cooldown holds the second firing"
    );
    let hook = hooks[0].json();
    assert!(
        hooks[0].verifies(&public_key(base).await),
        "signed by the sandbox's key"
    );
    assert_eq!(hook["data"]["currentValue"], 41.5);
    snapshot("dakkio_alert_webhook", &hook);
    let (_, rules) = reader.get(&format!("/api/buckets/{bucket}/alerts")).await;
    assert_eq!(rules["alertRules"][0]["triggerCount"], 1, "{rules}");

    // Analytics count what was ingested.
    let (status, a) = reader
        .get(&format!("/api/analytics/buckets/{bucket}"))
        .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["analytics"]["summary"]["totalDataPoints"], 1003);
    assert_eq!(a["analytics"]["alertActivity"]["totalTriggered"], 1);
    let (_, o) = admin.get("/api/analytics/overview").await;
    assert_eq!(o["overview"]["totals"]["dataPoints"], 1003, "{o}");
    assert_eq!(
        o["overview"]["totals"]["apiKeys"], 3,
        "two bucket keys and the admin key"
    );
    let (_, got) = admin.get(&format!("/api/buckets/{bucket}")).await;
    assert_eq!(
        got["bucket"]["stats"],
        json!({"dataSourceCount": 1, "dataPointCount": 1003, "apiKeyCount": 2})
    );

    // Deleting the bucket takes everything under it; its keys stop working at once.
    let (status, gone) = admin
        .send(Method::DELETE, &format!("/api/buckets/{bucket}"), None)
        .await;
    assert_eq!(status, 200, "{gone}");
    assert_eq!(
        gone["deletedResources"],
        json!({"dataSources": 1, "dataPoints": 1003, "apiKeys": 2, "alertRules": 1})
    );
    let (status, _) = reader
        .post("/api/data/query", json!({"bucketId": bucket}))
        .await;
    assert_eq!(status, 401);
    let (status, body) = admin
        .post("/api/data/query", json!({"bucketId": bucket}))
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("Bucket not found"))
    );
    let (_, o) = admin.get("/api/analytics/overview").await;
    assert_eq!(o["overview"]["totals"]["dataPoints"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_monthly_quota_runs_out_with_429() {
    let s = Sandbox::start(&["--spec", &dakkio_spec()]);
    let base = s.url();
    let admin = key_of(base, "dakkio_a_quota");
    let (status, _) = admin.get("/api/buckets").await;
    assert_eq!(status, 200);
    // A tester shrinks the organisation's allowance to see what the client does at the end.
    let set = client()
        .put(format!("{base}/__sandbox/rate-limit?tenant=dakkio_a_quota"))
        .json(&json!({"limit": 3, "used": 2}))
        .send()
        .await
        .expect("answers");
    assert_eq!(set.status().as_u16(), 200);
    let res = client()
        .get(format!("{base}/api/buckets"))
        .header("x-api-key", "dakkio_a_quota")
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
    let (status, body) = admin.get("/api/buckets").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Rate limit exceeded")),
        "{body}"
    );
    // Other organisations keep their own allowance.
    let (status, _) = key_of(base, "dakkio_a_other").get("/api/buckets").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_source_fires_its_no_data_rule_when_the_clock_moves() {
    let s = Sandbox::start(&["--spec", &dakkio_spec()]);
    let base = s.url();
    let now = frozen_now(base).await;
    let admin = key_of(base, "dakkio_a_quiet");
    let b = admin
        .expect("/api/buckets", json!({"name": "Remote"}), 201)
        .await;
    let bucket = b["bucket"]["_id"].as_str().expect("an id").to_owned();
    let src = admin
        .expect(
            &format!("/api/buckets/{bucket}/sources"),
            json!({"name": "beacon", "schema": {"battery": "number"}}),
            201,
        )
        .await;
    let source = src["dataSource"]["_id"].as_str().expect("an id").to_owned();
    admin
        .expect(
            "/api/data",
            json!({"bucketId": bucket, "dataSourceId": source, "timestamp": iso(now), "values": {"battery": 3.7}}),
            201,
        )
        .await;
    // The receiver fails its first delivery: the retry comes on the virtual clock.
    let (url, seen) = receiver(true).await;
    let rule = admin
        .expect(
            "/api/alerts",
            json!({"bucketId": bucket, "dataSourceId": source, "name": "Beacon silent", "condition": "no data received for 30 minutes", "webhookUrl": url}),
            201,
        )
        .await;
    assert_eq!(
        rule["alertRule"]["parsedCondition"],
        json!({"type": "no_data", "durationMinutes": 30})
    );
    let advance = |seconds: u64| {
        client()
            .post(format!("{base}/__sandbox/clock/advance"))
            .json(&json!({ "seconds": seconds }))
            .send()
    };
    // Twenty minutes of silence is not yet thirty.
    advance(20 * 60).await.expect("advances");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(seen.lock().expect("lock").is_empty());
    advance(11 * 60).await.expect("advances");
    let hooks = wait_for(&seen, 1).await;
    assert_eq!(hooks.len(), 1, "one firing after thirty silent minutes");
    // The first attempt got a 500; moving the clock past the backoff sends it again, once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while seen.lock().expect("lock").len() < 2 && std::time::Instant::now() < deadline {
        advance(60).await.expect("advances");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let hooks = seen.lock().expect("lock").clone();
    assert_eq!(hooks.len(), 2, "the firing and its retry, no second firing");
    assert_eq!(
        hooks[0].body, hooks[1].body,
        "the retry is the same delivery"
    );
    let log: Value = client()
        .get(format!("{base}/__sandbox/webhooks/deliveries"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(log["deliveries"][0]["attempts"], 2, "{log}");
    let hook = hooks[0].json();
    assert_eq!(hook["event"], "alert.triggered");
    assert_eq!(hook["data"]["alertName"], "Beacon silent");
    assert_eq!(hook["data"]["operator"], "no_data");
}
