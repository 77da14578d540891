//! `--state` is crash-safe: what a 2xx acknowledged is on disk before the answer leaves, a
//! torn tail (the end of a write cut short) is skipped with everything before it loaded, and
//! state files of earlier formats are carried over.

use serde_json::{Value, json};

use crate::common::{Sandbox, bundled_dakota, client};

/// Creates a customer named `name` with tenant `key`; returns its id.
async fn create(base: &str, key: &str, name: &str) -> String {
    let res = client()
        .post(format!("{base}/customers"))
        .header("x-api-key", key)
        .header("x-idempotency-key", crate::contract_uuid())
        .json(&json!({"name": name, "customer_type": "business"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 201, "create {name}");
    let body: Value = res.json().await.expect("json");
    body["id"].as_str().expect("an id").to_owned()
}

async fn name_of(base: &str, key: &str, id: &str) -> Option<String> {
    let res = client()
        .get(format!("{base}/customers/{id}"))
        .header("x-api-key", key)
        .send()
        .await
        .expect("answers");
    if res.status().as_u16() == 404 {
        return None;
    }
    let body: Value = res.json().await.expect("json");
    body["name"].as_str().map(str::to_owned)
}

fn kill_hard(s: &Sandbox) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &s.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// The byte offsets where the log's frames start (`[len u32][crc u32][payload]`).
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        starts.push(at);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += 8 + len;
    }
    starts
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.log");
    let file_arg = file.to_string_lossy().into_owned();
    let spec = bundled_dakota();
    // A slow disk: were answers not held until their writes are done, they would leave
    // first, and the kill below would lose them.
    let s = Sandbox::start_with_env(
        &["--spec", &spec, "--state", &file_arg],
        &[("SANDBOX_STATE_WRITE_DELAY_MS", "150")],
    );
    let base = s.url().to_owned();
    // Forty creates at once, all acknowledged, then the process is killed at once: no
    // graceful shutdown, no later write.
    let creates = (0..40).map(|i| {
        let base = base.clone();
        async move { (i, create(&base, "durable", &format!("Customer {i}")).await) }
    });
    let ids = futures_join_all(creates).await;
    kill_hard(&s);
    s.wait();

    let s = Sandbox::start(&["--spec", &spec, "--state", &file_arg]);
    for (i, id) in &ids {
        assert_eq!(
            name_of(s.url(), "durable", id).await.as_deref(),
            Some(format!("Customer {i}").as_str()),
            "customer {i} ({id}) was acknowledged before the kill"
        );
    }
    let list: Value = client()
        .get(format!("{}/customers?limit=100", s.url()))
        .header("x-api-key", "durable")
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(list["meta"]["total_count"], 40, "{list}");
    // The indexes are rebuilt from the log: filters and sorts find the same records.
    let query = |q: &'static str| {
        let url = format!("{}/customers?{q}", s.url());
        async move {
            client()
                .get(url)
                .header("x-api-key", "durable")
                .send()
                .await
                .expect("answers")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let pending = query("kyb_status=pending&limit=1").await;
    assert_eq!(pending["meta"]["total_count"], 40, "{pending}");
    let sorted = query("sort_by=name&sort_dir=desc&limit=1").await;
    assert_eq!(sorted["data"][0]["name"], "Customer 9", "{sorted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_tail_is_skipped_and_everything_before_it_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.log");
    let file_arg = file.to_string_lossy().into_owned();
    let spec = bundled_dakota();
    let s = Sandbox::start(&["--spec", &spec, "--state", &file_arg]);
    let a = create(s.url(), "k", "Alpha").await;
    let b = create(s.url(), "k", "Bravo").await;
    let before_c = std::fs::metadata(&file).expect("the log exists").len() as usize;
    let c = create(s.url(), "k", "Charlie").await;
    kill_hard(&s);
    s.wait();

    // Cut the file in the middle of the first record Charlie's create wrote.
    let bytes = std::fs::read(&file).expect("read");
    let first_of_c = frame_starts(&bytes)
        .into_iter()
        .find(|at| *at >= before_c)
        .expect("Charlie's create wrote a frame");
    let len = u32::from_le_bytes(
        bytes[first_of_c..first_of_c + 4]
            .try_into()
            .expect("4 bytes"),
    );
    let tear = first_of_c + 8 + len as usize / 2;
    std::fs::write(&file, &bytes[..tear]).expect("truncate");

    let s = Sandbox::start(&["--spec", &spec, "--state", &file_arg]);
    assert_eq!(name_of(s.url(), "k", &a).await.as_deref(), Some("Alpha"));
    assert_eq!(name_of(s.url(), "k", &b).await.as_deref(), Some("Bravo"));
    assert_eq!(name_of(s.url(), "k", &c).await, None, "Charlie was torn");
    // The tear is cut off, so what comes next is appended after Bravo, and loads again.
    let d = create(s.url(), "k", "Delta").await;
    drop(s);
    let s = Sandbox::start(&["--spec", &spec, "--state", &file_arg]);
    assert_eq!(name_of(s.url(), "k", &d).await.as_deref(), Some("Delta"));
    assert_eq!(name_of(s.url(), "k", &a).await.as_deref(), Some("Alpha"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_file_of_the_previous_format_is_carried_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.json");
    let file_arg = file.to_string_lossy().into_owned();
    let old = json!({
        "version": 1,
        "apis": {
            "Dakota Platform API": {
                "version": 1,
                "tenants": {"k": {
                    "resources": {"customers": {"2zzzzzzzzzzzzzzzzzzzzzzzzzz": {
                        "body": {"id": "2zzzzzzzzzzzzzzzzzzzzzzzzzz", "name": "Legacy Ltd",
                                 "customer_type": "business", "kyb_status": "active"},
                        "meta": {}, "seq": 1}}},
                    "singletons": {}, "next_seq": 1}}
            },
            "Some API not served": {"version": 1, "tenants": {}}
        }
    });
    std::fs::write(&file, serde_json::to_vec(&old).expect("json")).expect("write");
    let s = Sandbox::start(&["--spec", &bundled_dakota(), "--state", &file_arg]);
    assert_eq!(
        name_of(s.url(), "k", "2zzzzzzzzzzzzzzzzzzzzzzzzzz")
            .await
            .as_deref(),
        Some("Legacy Ltd")
    );
    assert!(
        dir.path().join("state.v1").exists(),
        "the old file is kept beside the new one"
    );
    let now = std::fs::read(&file).expect("read");
    assert_ne!(now.first(), Some(&b'{'), "the file is a log now");
}

/// A frame of the state log: `[len u32][crc32 u32][payload]`, little-endian.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend(crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_log_of_the_previous_version_is_rewritten_in_this_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.log");
    let file_arg = file.to_string_lossy().into_owned();
    // Version 2 kept a record's body inside its change.
    let id = "2yyyyyyyyyyyyyyyyyyyyyyyyyy";
    let mut old = frame(br#"{"header":{"format":"api-sandbox state log","version":2}}"#);
    let put = json!({"put": {"api": "Dakota Platform API", "tenant": "k",
        "resource": "customers", "id": id, "seq": 1,
        "body": {"id": id, "name": "Version Two Ltd", "customer_type": "business",
                 "kyb_status": "active"}}});
    old.extend(frame(&serde_json::to_vec(&put).expect("json")));
    std::fs::write(&file, &old).expect("write");

    let spec = bundled_dakota();
    let s = Sandbox::start(&["--spec", &spec, "--state", &file_arg]);
    assert_eq!(
        name_of(s.url(), "k", id).await.as_deref(),
        Some("Version Two Ltd")
    );
    let added = create(s.url(), "k", "Added After").await;
    drop(s);
    assert_eq!(
        std::fs::read(dir.path().join("state.v2")).expect("the old file is kept"),
        old
    );
    let now = std::fs::read(&file).expect("read");
    let header_len = u32::from_le_bytes(now[..4].try_into().expect("4 bytes")) as usize;
    let header: Value = serde_json::from_slice(&now[8..8 + header_len]).expect("a header");
    assert_eq!(header["header"]["version"], 3, "{header}");

    let s = Sandbox::start(&["--spec", &spec, "--state", &file_arg]);
    assert_eq!(
        name_of(s.url(), "k", id).await.as_deref(),
        Some("Version Two Ltd")
    );
    assert_eq!(
        name_of(s.url(), "k", &added).await.as_deref(),
        Some("Added After")
    );
}

/// Runs the futures concurrently and returns their results in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
