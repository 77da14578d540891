//! Stateful resources on the Dakota specs (ours, and the official one from `../shared`):
//! create and read back, 250 nested children paged both ways, filters and search, update,
//! delete, tenancy, concurrent idempotent creates, and state kept across a restart.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::common::{Sandbox, bundled_dakota, client, vendor_dakota};

static KEYS: AtomicU64 = AtomicU64::new(1);

/// A fresh idempotency key (the spec asks for a UUID).
fn idem() -> String {
    let n = KEYS.fetch_add(1, Ordering::Relaxed);
    format!("00000000-0000-4000-8000-{n:012}")
}

struct Api {
    base: String,
    key: &'static str,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        idem_key: Option<String>,
    ) -> (u16, Value) {
        let mut req = client()
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", self.key);
        if let Some(k) = idem_key {
            req = req.header("x-idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("answers");
        let status = res.status().as_u16();
        let bytes = res.bytes().await.expect("body");
        (
            status,
            if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("JSON")
            },
        )
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body), Some(idem()))
            .await
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

async fn crud_pages_tenancy(spec: &str) {
    let s = Sandbox::start(&["--spec", spec]);
    let api = Api {
        base: s.url().to_owned(),
        key: "tenant-one",
    };
    let other = Api {
        base: s.url().to_owned(),
        key: "tenant-two",
    };

    // Create a customer and read it back, identically, twice.
    let (status, created) = api
        .post(
            "/customers",
            json!({"name": "Acme Robotics", "customer_type": "business", "external_id": "ext-1"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("an id").to_owned();
    let (status, first) = api.get(&format!("/customers/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            first["id"].as_str(),
            first["name"].as_str(),
            first["customer_type"].as_str()
        ),
        (Some(id.as_str()), Some("Acme Robotics"), Some("business"))
    );
    assert_eq!(
        first["application_id"], created["application_id"],
        "members the create response showed are kept"
    );
    assert_eq!(api.get(&format!("/customers/{id}")).await.1, first);

    // 250 recipients under it, with distinct ids.
    let mut created_ids = Vec::new();
    for i in 0..250 {
        let (status, r) = api
            .post(
                &format!("/customers/{id}/recipients"),
                json!({"name": format!("Recipient {i:03}")}),
            )
            .await;
        assert_eq!(status, 201, "{r}");
        created_ids.push(r["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(created_ids.iter().collect::<BTreeSet<_>>().len(), 250);

    // Forward with starting_after, then backward with ending_before: each id exactly once.
    let mut forward = Vec::new();
    let mut path = format!("/customers/{id}/recipients?limit=40");
    loop {
        let (status, page) = api.get(&path).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["meta"]["total_count"], 250);
        forward.extend(ids(&page));
        if page["meta"]["has_more_after"] != true {
            break;
        }
        path = format!(
            "/customers/{id}/recipients?limit=40&starting_after={}",
            forward.last().expect("an item")
        );
    }
    assert_eq!(
        forward, created_ids,
        "forward walk yields every recipient once, in creation order"
    );
    let mut backward: Vec<String> = Vec::new();
    let mut before = created_ids.last().expect("items").clone();
    backward.push(before.clone());
    loop {
        let (_, page) = api
            .get(&format!(
                "/customers/{id}/recipients?limit=33&ending_before={before}"
            ))
            .await;
        let mut chunk = ids(&page);
        chunk.reverse();
        backward.extend(chunk.iter().cloned());
        if page["meta"]["has_more_before"] != true {
            break;
        }
        before = chunk
            .last()
            .expect("a page before the start has items")
            .clone();
    }
    backward.reverse();
    assert_eq!(
        backward, created_ids,
        "backward walk yields every recipient once"
    );

    // Filters and search on customers.
    api.post(
        "/customers",
        json!({"name": "Blue Harbor Ltd", "customer_type": "business", "external_id": "ext-2"}),
    )
    .await;
    api.post(
        "/customers",
        json!({"name": "Jane Doe", "customer_type": "individual", "external_id": "ext-3"}),
    )
    .await;
    let (_, by_ext) = api.get("/customers?external_id=ext-2").await;
    assert_eq!(by_ext["data"].as_array().map(Vec::len), Some(1), "{by_ext}");
    assert_eq!(by_ext["data"][0]["name"], "Blue Harbor Ltd");
    let (_, searched) = api.get("/customers?search=harbor").await;
    assert_eq!(searched["meta"]["total_count"], 1, "{searched}");
    let (_, sorted) = api
        .get("/customers?sort_by=name&sort_dir=desc&limit=2")
        .await;
    let names: Vec<&str> = sorted["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Jane Doe", "Blue Harbor Ltd"]);

    // Update (PUT replaces), then delete and 404.
    let rid = &created_ids[7];
    let (status, updated) = api
        .send(
            reqwest::Method::PUT,
            &format!("/recipients/{rid}"),
            Some(json!({"name": "Renamed"})),
            Some(idem()),
        )
        .await;
    assert_eq!(
        (status, updated["name"].as_str()),
        (200, Some("Renamed")),
        "{updated}"
    );
    assert_eq!(
        api.get(&format!("/recipients/{rid}")).await.1["name"],
        "Renamed"
    );
    let (status, _) = api
        .send(
            reqwest::Method::DELETE,
            &format!("/recipients/{rid}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, gone) = api.get(&format!("/recipients/{rid}")).await;
    assert_eq!(status, 404, "{gone}");
    assert_eq!(
        api.get(&format!("/customers/{id}/recipients?limit=1"))
            .await
            .1["meta"]["total_count"],
        249
    );

    // Another credential is another tenant: nothing of the first is visible.
    assert_eq!(other.get(&format!("/customers/{id}")).await.0, 404);
    assert_eq!(
        other
            .get(&format!("/recipients/{}", created_ids[0]))
            .await
            .0,
        404
    );
    assert_eq!(
        other.get(&format!("/customers/{id}/recipients")).await.0,
        404,
        "children of a parent the tenant cannot see"
    );
    assert_eq!(other.get("/customers").await.1["meta"]["total_count"], 0);
    let (status, _) = other
        .post(&format!("/customers/{id}/recipients"), json!({"name": "x"}))
        .await;
    assert_eq!(status, 404, "creating under a missing parent");
}

#[tokio::test(flavor = "multi_thread")]
async fn bundled_dakota_is_stateful() {
    crud_pages_tenancy(&bundled_dakota()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn official_dakota_is_stateful() {
    let Some(spec) = vendor_dakota() else { return };
    crud_pages_tenancy(&spec).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_with_one_idempotency_key_create_once() {
    // The official spec when this checkout has it (CI does), else ours.
    let spec = vendor_dakota().unwrap_or_else(bundled_dakota);
    let s = Sandbox::start(&["--spec", &spec]);
    let key = idem();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let url = format!("{}/customers", s.url());
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let res = client()
                .post(url)
                .header("x-api-key", "k")
                .header("x-idempotency-key", key)
                .json(&json!({"name": "Only Once Inc", "customer_type": "business"}))
                .send()
                .await
                .expect("answers");
            (res.status().as_u16(), res.text().await.expect("body"))
        }));
    }
    let mut answers = BTreeSet::new();
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 201, "{body}");
        answers.insert(body);
    }
    assert_eq!(answers.len(), 1, "every request got the same body");
    let api = Api {
        base: s.url().to_owned(),
        key: "k",
    };
    assert_eq!(api.get("/customers").await.1["meta"]["total_count"], 1);
    // The same key with a different request is a conflict.
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/customers",
            Some(json!({"name": "Someone Else", "customer_type": "business"})),
            Some(key),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("#conflict")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn state_survives_a_restart_and_admin_api_sees_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.json");
    let file_arg = file.to_string_lossy().into_owned();
    let spec = vendor_dakota().unwrap_or_else(bundled_dakota);
    let id = {
        let s = Sandbox::start(&["--spec", &spec, "--state", &file_arg]);
        let api = Api {
            base: s.url().to_owned(),
            key: "k",
        };
        let (_, c) = api
            .post(
                "/customers",
                json!({"name": "Durable Co", "customer_type": "business"}),
            )
            .await;
        let id = c["id"].as_str().expect("id").to_owned();
        api.post(
            &format!("/customers/{id}/recipients"),
            json!({"name": "Kept"}),
        )
        .await;
        // Graceful stop writes the file.
        let pid = s.pid();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        s.wait();
        id
    };
    assert!(file.exists(), "the state file was written on shutdown");
    let s = Sandbox::start(&["--spec", &spec, "--state", &file_arg]);
    let api = Api {
        base: s.url().to_owned(),
        key: "k",
    };
    assert_eq!(
        api.get(&format!("/customers/{id}")).await.1["name"],
        "Durable Co"
    );
    assert_eq!(
        api.get(&format!("/customers/{id}/recipients")).await.1["meta"]["total_count"],
        1
    );

    // Admin API: resources, journal, export/import, reset.
    let admin = |path: &str| format!("{}/__sandbox{path}", s.url());
    let recs: Value = client()
        .get(admin("/resources/customers"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(recs["records"].as_array().map(Vec::len), Some(1));
    let journal: Value = client()
        .get(admin("/journal"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert!(
        journal["requests"]
            .as_array()
            .is_some_and(|r| r.iter().any(|e| e["tenant"] == "k" && e["status"] == 200)),
        "{journal}"
    );
    let exported = client()
        .get(admin("/state"))
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("body");
    let reset = client()
        .post(admin("/reset"))
        .send()
        .await
        .expect("answers");
    assert_eq!(reset.status().as_u16(), 200);
    assert_eq!(api.get(&format!("/customers/{id}")).await.0, 404);
    let imported = client()
        .put(admin("/state"))
        .body(exported)
        .send()
        .await
        .expect("answers");
    assert_eq!(imported.status().as_u16(), 200);
    assert_eq!(api.get(&format!("/customers/{id}")).await.0, 200);
    let bad = client()
        .put(admin("/state"))
        .body("{\"version\": 99, \"tenants\": {}}")
        .send()
        .await
        .expect("answers");
    assert_eq!(bad.status().as_u16(), 400);
    drop(s);

    // A corrupt state file is refused, not overwritten.
    std::fs::write(&file, "not json").expect("write");
    let (code, _, stderr) = crate::common::run_cli(
        &[
            "serve", "--port", "0", "--spec", &spec, "--state", &file_arg,
        ],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("not a sandbox state file"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "not json");
}

/// Offset pages, plain-array lists, integer ids, a profile (allowed keys, id prefix),
/// PATCH merging, cascade deletes and spec-declared rate-limit headers.
/// Creates draft their records outside the store's lock: concurrent creates still each get
/// an id and a place of their own, all of them are listed once, and of concurrent creates
/// naming one id exactly one wins.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_are_each_stored_once() {
    let spec = crate::common::test_spec("petstore.yaml");
    let s = Sandbox::start(&["--spec", &spec]);
    let send = |body: Value| {
        let url = format!("{}/pets", s.url());
        tokio::spawn(async move {
            let res = client()
                .post(url)
                .bearer_auth("t")
                .json(&body)
                .send()
                .await
                .expect("answers");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.expect("JSON"))
        })
    };
    let made: Vec<_> = (0..40)
        .map(|i| send(json!({"name": format!("p{i}"), "status": "available"})))
        .collect();
    let mut ids = BTreeSet::new();
    for t in made {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 201, "{body}");
        assert!(ids.insert(body["id"].to_string()), "id given twice: {body}");
    }
    let same: Vec<_> = (0..20)
        .map(|_| send(json!({"id": 4242, "name": "one", "status": "sold"})))
        .collect();
    let mut statuses = Vec::new();
    for t in same {
        statuses.push(t.await.expect("task").0);
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let listed = client()
        .get(format!("{}/pets?limit=100", s.url()))
        .bearer_auth("t")
        .header("x-trace", "abc")
        .send()
        .await
        .expect("answers")
        .json::<Value>()
        .await
        .expect("JSON");
    let listed: Vec<String> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["id"].to_string())
        .collect();
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(listed.len(), 41, "{listed:?}");
    assert_eq!(unique.len(), 41, "{listed:?}");
    assert!(ids.iter().all(|id| unique.contains(id)));
}

#[tokio::test(flavor = "multi_thread")]
async fn profiled_api_with_offset_pages_and_cascades() {
    let spec = crate::common::repo_root()
        .join("tests/specs/profiled/openapi.yaml")
        .to_string_lossy()
        .into_owned();
    let s = Sandbox::start(&["--spec", &spec]);
    let call = |key: &'static str, method: reqwest::Method, path: String, body: Option<Value>| {
        let url = format!("{}{path}", s.url());
        async move {
            let mut req = client().request(method, url).bearer_auth(key);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let res = req.send().await.expect("answers");
            let status = res.status().as_u16();
            let remaining = res
                .headers()
                .get("x-ratelimit-remaining")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = res.bytes().await.expect("body");
            (
                status,
                if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice::<Value>(&bytes).expect("JSON")
                },
                remaining,
            )
        }
    };
    use reqwest::Method as M;
    let (status, body, _) = call("mallory", M::GET, "/projects".into(), None).await;
    assert_eq!(
        status, 401,
        "a key outside the profile's allowed list: {body}"
    );

    let (status, p1, _) = call(
        "alpha",
        M::POST,
        "/projects".into(),
        Some(json!({"name": "Apollo", "status": "active"})),
    )
    .await;
    assert_eq!(status, 201, "{p1}");
    assert_eq!(p1["id"], 1, "integer ids count up");
    assert!(
        p1["created_at"].as_str().is_some_and(|t| t.contains('T')),
        "{p1}"
    );
    for name in ["Borealis", "Cygnus", "Draco", "Eridanus"] {
        call(
            "alpha",
            M::POST,
            "/projects".into(),
            Some(json!({"name": name, "status": "archived"})),
        )
        .await;
    }
    let (_, page, remaining) =
        call("alpha", M::GET, "/projects?limit=2&offset=2".into(), None).await;
    let names: Vec<&str> = page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["Cygnus", "Draco"]);
    assert_eq!(
        page["pagination"],
        json!({"total": 5, "limit": 2, "offset": 2})
    );
    assert!(
        remaining.is_some_and(|r| r.parse::<u32>().is_ok_and(|r| r < 1000)),
        "rate-limit headers count requests"
    );
    assert_eq!(
        call("alpha", M::GET, "/projects?status=archived".into(), None)
            .await
            .1["pagination"]["total"],
        4
    );
    assert_eq!(
        call("beta", M::GET, "/projects/1".into(), None).await.0,
        404,
        "beta is another tenant"
    );

    // PATCH merges: the name stays, the status changes, updated_at appears.
    let (status, patched, _) = call(
        "alpha",
        M::PATCH,
        "/projects/1".into(),
        Some(json!({"status": "archived"})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (patched["name"].as_str(), patched["status"].as_str()),
        (Some("Apollo"), Some("archived"))
    );

    // Children: ids with the profile's prefix, listed as a plain array, readable at the top.
    let mut task_ids = Vec::new();
    for title in ["one", "two", "three"] {
        let (status, t, _) = call(
            "alpha",
            M::POST,
            "/projects/1/tasks".into(),
            Some(json!({"title": title, "done": false})),
        )
        .await;
        assert_eq!(status, 201, "{t}");
        assert_eq!(t["project_id"], 1, "the parent link is set by the server");
        task_ids.push(t["id"].as_str().expect("id").to_owned());
    }
    assert!(
        task_ids.iter().all(|t| t.starts_with("task_")),
        "{task_ids:?}"
    );
    let (_, tasks, _) = call("alpha", M::GET, "/projects/1/tasks".into(), None).await;
    assert_eq!(tasks.as_array().map(Vec::len), Some(3));
    assert_eq!(
        call("alpha", M::GET, format!("/tasks/{}", task_ids[1]), None)
            .await
            .1["title"],
        "two"
    );
    assert_eq!(
        call(
            "alpha",
            M::POST,
            "/projects/99/tasks".into(),
            Some(json!({"title": "x", "done": true}))
        )
        .await
        .0,
        404
    );

    // Deleting the parent removes its children.
    assert_eq!(
        call("alpha", M::DELETE, "/projects/1".into(), None).await.0,
        204
    );
    assert_eq!(
        call("alpha", M::GET, "/projects/1".into(), None).await.0,
        404
    );
    let (status, gone, _) = call("alpha", M::GET, format!("/tasks/{}", task_ids[0]), None).await;
    assert_eq!(status, 404);
    assert!(
        gone["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no task")),
        "errors keep the API's format: {gone}"
    );
    assert_eq!(
        call("alpha", M::GET, "/projects/1/tasks".into(), None)
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn any_spec_links_collections_created_elsewhere() {
    let spec = crate::common::repo_root()
        .join("tests/specs/links/openapi.yaml")
        .to_string_lossy()
        .into_owned();
    let s = Sandbox::start(&["--spec", &spec]);
    let api = Api {
        base: s.url().to_owned(),
        key: "links-key",
    };
    use reqwest::Method as M;
    let id = |v: &Value| v["id"].as_str().expect("an id").to_owned();
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("an array")
            .iter()
            .map(|x| x["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (_, red) = api
        .send(M::POST, "/teams", Some(json!({"name": "Red"})), None)
        .await;
    let (_, blue) = api
        .send(M::POST, "/teams", Some(json!({"name": "Blue"})), None)
        .await;
    let (_, ann) = api
        .send(M::POST, "/users", Some(json!({"name": "Ann"})), None)
        .await;
    let (_, bob) = api
        .send(M::POST, "/users", Some(json!({"name": "Bob"})), None)
        .await;
    let (red, blue, ann, bob) = (id(&red), id(&blue), id(&ann), id(&bob));

    for (team, user) in [(&red, &ann), (&red, &bob), (&blue, &ann)] {
        let (status, body) = api
            .send(M::PUT, &format!("/teams/{team}/users/{user}"), None, None)
            .await;
        assert_eq!(status, 204, "{body}");
    }
    // Attaching never rewrites the records it joins.
    let (_, ann_now) = api.get(&format!("/users/{ann}")).await;
    assert_eq!(ann_now["name"], "Ann");
    let (_, red_users) = api
        .send(M::GET, &format!("/teams/{red}/users"), None, None)
        .await;
    assert_eq!(names(&red_users), ["Ann", "Bob"]);
    let (_, ann_teams) = api
        .send(M::GET, &format!("/users/{ann}/teams"), None, None)
        .await;
    assert_eq!(names(&ann_teams), ["Red", "Blue"]);

    let (status, _) = api
        .send(M::DELETE, &format!("/teams/{red}/users/{ann}"), None, None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .send(M::DELETE, &format!("/teams/{red}/users/{ann}"), None, None)
        .await;
    assert_eq!(status, 404, "not attached any more");
    let (status, _) = api
        .send(M::PUT, &format!("/teams/{red}/users/nobody"), None, None)
        .await;
    assert_eq!(status, 404, "an unknown user cannot be attached");
    let (status, _) = api.get("/teams/nowhere/users").await;
    assert_eq!(status, 404);
    let (_, red_users) = api
        .send(M::GET, &format!("/teams/{red}/users"), None, None)
        .await;
    assert_eq!(names(&red_users), ["Bob"]);
    let (_, ann_teams) = api
        .send(M::GET, &format!("/users/{ann}/teams"), None, None)
        .await;
    assert_eq!(names(&ann_teams), ["Blue"]);

    // Orders name their user; the user's orders are those.
    for (user, total) in [(&ann, 10), (&bob, 20), (&ann, 30)] {
        let (status, body) = api
            .send(
                M::POST,
                "/orders",
                Some(json!({"user_id": user, "total": total})),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (_, orders) = api
        .send(M::GET, &format!("/users/{ann}/orders"), None, None)
        .await;
    let totals: Vec<i64> = orders
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["total"].as_i64().unwrap_or_default())
        .collect();
    assert_eq!(totals, [10, 30]);
}

/// Credential classes from a profile: a pattern's own tenant with a role, keys an API record
/// issues acting for its owner with the record's role and limited to its project, operations
/// allowing some roles only, unknown credentials refused, and a tenant's first request
/// provisioning its records.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_have_roles_scopes_and_provisioned_tenants() {
    let s = Sandbox::start(&["--spec", &crate::common::test_spec("roles/openapi.yaml")]);
    let call = |key: &str, method: reqwest::Method, path: &str, body: Option<Value>| {
        let req = client()
            .request(method, format!("{}{path}", s.url()))
            .header("x-key", key);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        async move {
            let res = req.send().await.expect("answers");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    use reqwest::Method as M;
    // First use of an admin key makes its organisation's settings.
    let (status, settings) = call("admin_acme", M::GET, "/settings", None).await;
    assert_eq!(status, 200);
    assert_eq!(settings[0]["owner"], "acme", "{settings}");
    assert_eq!(settings[0]["plan"], "pro");
    let (_, p1) = call(
        "admin_acme",
        M::POST,
        "/projects",
        Some(json!({"name": "One"})),
    )
    .await;
    let (_, p2) = call(
        "admin_acme",
        M::POST,
        "/projects",
        Some(json!({"name": "Two"})),
    )
    .await;
    let (p1, p2) = (
        p1["id"].as_str().expect("id"),
        p2["id"].as_str().expect("id"),
    );
    let (status, key) = call(
        "admin_acme",
        M::POST,
        &format!("/projects/{p1}/keys"),
        Some(json!({"role": "reader"})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["secret"].as_str().expect("the key's secret").to_owned();
    // The issued key acts for acme, as a reader, within project one only.
    assert_eq!(
        call(&secret, M::GET, &format!("/projects/{p1}"), None)
            .await
            .0,
        200
    );
    let (status, refused) = call(&secret, M::GET, &format!("/projects/{p2}"), None).await;
    assert_eq!(status, 403);
    assert_eq!(
        refused["message"],
        "This key does not belong to that project"
    );
    let (status, refused) = call(&secret, M::GET, "/projects", None).await;
    assert_eq!(status, 403);
    assert_eq!(refused["message"], "Only admin keys can list projects");
    // Credentials no class knows are refused; another admin key is another organisation.
    assert_eq!(call("someone", M::GET, "/settings", None).await.0, 401);
    assert_eq!(
        call("admin_globex", M::GET, &format!("/projects/{p1}"), None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn a_create_answering_with_its_record_shows_it_as_stored_and_replays_it() {
    let s = Sandbox::start(&["--spec", &crate::common::test_spec("shapes/ledger.yaml")]);
    let base = s.url();
    let post = |key: &'static str, body: Value| {
        let url = format!("{base}/entries");
        async move {
            let res = client()
                .post(url)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .expect("answers");
            (res.status().as_u16(), res.bytes().await.expect("body"))
        }
    };
    let (status, first) = post("k1", json!({"amount": 250, "memo": "rent"})).await;
    assert_eq!(status, 201, "{first:?}");
    let entry: Value = serde_json::from_slice(&first).expect("JSON");
    assert_eq!(
        (entry["amount"].clone(), entry["memo"].clone()),
        (json!(250), json!("rent"))
    );
    let id = entry["id"].as_str().expect("an id");
    // Every member of the schema, generated ones included, in the schema's order.
    let names: Vec<&str> = entry
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(names, ["id", "amount", "memo", "account", "created_at"]);
    let account = entry["account"].as_str().unwrap_or_default();
    assert!(
        account.starts_with("acct_") && account.len() == 13,
        "{entry}"
    );

    // The same text when read back, and when the key is replayed (nothing new is made).
    let read = client()
        .get(format!("{base}/entries/{id}"))
        .send()
        .await
        .expect("answers")
        .bytes()
        .await
        .expect("body");
    assert_eq!(read, first);
    let (status, again) = post("k1", json!({"amount": 250, "memo": "rent"})).await;
    assert_eq!((status, &again), (201, &first));
    let (status, _) = post("k1", json!({"amount": 9, "memo": "other"})).await;
    assert_eq!(status, 409);
    let (_, listed) = crate::common::reply(client().get(format!("{base}/entries"))).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}
