//! The Dino sandbox as a team building an agent meets it: the agent's spending key asks to
//! spend and gets approved, held or declined by its account's policy with the documented
//! budget figures; the team key approves (once) what was held, changes the policy, and
//! reads the ledger, whose entries always add up to the wallet; a held request expires on
//! the clock; teams never see each other; a burst of retries with one idempotency key makes
//! one request; and every decision reaches a real receiver as a signed webhook.

use reqwest::Method as M;
use serde_json::{Value, json};

use crate::common::webhooks::{receiver, wait_for};
use crate::common::{Sandbox, client, repo_root};

/// Hex HMAC-SHA256 of `body` under `secret`'s text, as Dino signs.
fn hmac_hex(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Ids, times and keys replaced, so the snapshot holds only what is stable.
fn snapshot(name: &str, body: &Value) {
    fn redact(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let volatile = k == "id"
                            || k.ends_with("_id")
                            || k.ends_with("_at")
                            || k == "approval_url";
                        let out = if volatile && v.is_string() {
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
    crate::common::snapshot(name, &redact(body));
}

fn dino_spec() -> String {
    repo_root()
        .join("specs/dino/openapi.yaml")
        .to_string_lossy()
        .into_owned()
}

/// One key of one sandbox.
struct Key<'a> {
    base: &'a str,
    token: String,
}

impl Key<'_> {
    async fn send(
        &self,
        method: M,
        path: &str,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let mut req = client()
            .request(method, format!("{}/v1{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token));
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        crate::common::reply(req).await
    }

    async fn spend(&self, cents: i64, merchant: &str) -> Value {
        let body = json!({"amount_cents": cents, "currency": "usd", "merchant_name": merchant, "reason": "agent task"});
        let (status, r) = self
            .send(M::POST, "/spend-requests", Some(body), None)
            .await;
        assert_eq!(status, 201, "{r}");
        r
    }
}

fn key<'a>(base: &'a str, token: &str) -> Key<'a> {
    Key {
        base,
        token: token.to_owned(),
    }
}

fn decided(r: &Value) -> (&str, &str, i64) {
    (
        r["status"].as_str().unwrap_or_default(),
        r["decision_reason"].as_str().unwrap_or_default(),
        r["remaining_budget_cents"].as_i64().unwrap_or(-1),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_spends_under_policy_and_an_operator_decides() {
    let s = Sandbox::start(&["--spec", &dino_spec()]);
    let base = s.url();
    let (url, seen) = receiver(false).await;
    let target: Value = client()
        .post(format!("{base}/__sandbox/webhooks/targets"))
        .json(&json!({"url": url}))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    // The target's own signing secret, shown this once.
    let secret = target["secret"].as_str().expect("a secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{target}");
    let agent = key(base, "din_test_acme");
    let team = key(base, "dba_test_acme");

    // The provisioned account: 50,000 a month, 25,000 at most, approval above 10,000.
    let (_, accounts) = agent.send(M::GET, "/accounts", None, None).await;
    let account = &accounts["data"][0];
    assert_eq!(account["budget_cents"], 50000, "{accounts}");
    assert_eq!(account["approval_threshold_cents"], 10000);
    let account_id = account["id"].as_str().expect("an id").to_owned();
    assert!(account_id.starts_with("agent_"), "{account_id}");

    let a = agent.spend(12000 - 7000, "AWS").await;
    assert_eq!(decided(&a), ("approved", "Spend request approved", 45000));
    assert!(
        a["id"].as_str().is_some_and(|i| i.starts_with("req_")),
        "{a}"
    );
    let held = agent.spend(15000, "Lambda Labs").await;
    assert_eq!(
        decided(&held),
        ("needs_approval", "Amount requires approval", 45000)
    );
    assert!(
        held["approval_url"]
            .as_str()
            .is_some_and(|u| u.contains(held["id"].as_str().unwrap_or("?")))
    );
    let too_big = agent.spend(30000, "AWS").await;
    assert_eq!(
        decided(&too_big),
        (
            "declined",
            "Amount exceeds the maximum purchase size",
            45000
        )
    );

    // Only the team key decides, once.
    let approve = format!(
        "/spend-requests/{}/approve",
        held["id"].as_str().expect("an id")
    );
    let (status, refused) = agent.send(M::POST, &approve, Some(json!({})), None).await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (403, &json!("insufficient_scope"))
    );
    let (status, ok) = team.send(M::POST, &approve, Some(json!({})), None).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(decided(&ok), ("approved", "Spend request approved", 30000));
    assert_eq!(ok["decided_by"], "operator");
    let (status, again) = team.send(M::POST, &approve, Some(json!({})), None).await;
    assert_eq!(
        (status, &again["error"]["code"]),
        (409, &json!("invalid_request"))
    );

    // The budget runs out: 30,000 left, 20,000 + 15,000 does not fit.
    let b = agent.spend(10000, "AWS").await;
    assert_eq!(decided(&b), ("approved", "Spend request approved", 20000));
    let over = agent.spend(25000, "AWS").await;
    assert_eq!(
        decided(&over).1,
        "Amount would exceed the budget for this period"
    );

    // The team changes the policy: a denied merchant is declined whatever the amount.
    let patch = json!({"merchant_denylist": ["Casino Royale"]});
    let (status, changed) = team
        .send(
            M::PATCH,
            &format!("/accounts/{account_id}"),
            Some(patch),
            None,
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["spent_cents"], 30000);
    let denied = agent.spend(100, "casino royale").await;
    assert_eq!(decided(&denied).1, "Merchant is not allowed by policy");

    // Money: three approvals (5,000 + 15,000 + 10,000) and a top-up, all in the ledger.
    let (status, top) = agent
        .send(
            M::POST,
            "/sandbox/faucet",
            Some(json!({"amount_cents": 2500})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{top}");
    let (_, balance) = agent.send(M::GET, "/balance", None, None).await;
    assert_eq!(
        balance["wallet"]["available_cents"],
        100_000 - 30_000 + 2500,
        "{balance}"
    );
    assert_eq!(
        (&balance["spent_cents"], &balance["remaining_budget_cents"]),
        (&json!(30000), &json!(20000))
    );
    let (_, ledger) = team.send(M::GET, "/ledger?limit=100", None, None).await;
    let entries = ledger["data"].as_array().expect("entries");
    assert_eq!(entries.len(), 4, "{ledger}");
    let sum: i64 = entries
        .iter()
        .filter_map(|e| e["amount_cents"].as_i64())
        .sum();
    assert_eq!(
        100_000 + sum,
        balance["wallet"]["available_cents"].as_i64().unwrap_or(0)
    );
    let last = entries
        .iter()
        .map(|e| e["wallet_balance_after_cents"].as_i64().unwrap_or(0));
    assert!(
        last.clone().any(|b| b == 72_500),
        "the top-up's entry shows the balance after it"
    );

    // Teams never see each other.
    let other = key(base, "din_test_globex");
    let (status, _) = other
        .send(
            M::GET,
            &format!("/spend-requests/{}", a["id"].as_str().expect("an id")),
            None,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, nobody) = key(base, "sk_test_nope")
        .send(M::GET, "/balance", None, None)
        .await;
    assert_eq!(
        (status, &nobody["error"]["code"]),
        (401, &json!("invalid_api_key"))
    );

    // Every decision reached the receiver in Dino's envelope, signed with the secret.
    let hooks = wait_for(&seen, 10).await;
    for h in &hooks {
        let mac = hmac_hex(&secret, &h.body);
        assert_eq!(
            h.header("x-dino-signature-sha256"),
            Some(mac.as_str()),
            "signed"
        );
        let event = h.json();
        assert_eq!(h.header("dino-event-id"), event["id"].as_str());
        assert_eq!(h.header("dino-event-type"), event["type"].as_str());
        assert_eq!(h.header("dino-delivery-attempt"), Some("1"));
        assert!(
            event["occurred_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{event}"
        );
        let spend = event["data"]["spend"]["id"].as_str();
        assert!(spend.is_some_and(|i| i.starts_with("req_")), "{event}");
    }
    let types: Vec<String> = hooks
        .iter()
        .map(|h| h.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    for t in [
        "spend_request.created",
        "spend_request.approved",
        "spend_request.declined",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn held_requests_expire_and_retries_make_one_request() {
    let s = Sandbox::start(&["--spec", &dino_spec()]);
    let base = s.url();
    client()
        .post(format!("{base}/__sandbox/clock/freeze"))
        .send()
        .await
        .expect("answers");
    let agent = key(base, "din_test_initech");
    let held = agent.spend(12000, "GPU Cloud").await;
    assert_eq!(held["status"], "needs_approval");
    let path = format!("/spend-requests/{}", held["id"].as_str().expect("an id"));
    // A day later (the account's window) it is cancelled by expiry.
    client()
        .post(format!("{base}/__sandbox/clock/advance"))
        .json(&json!({"seconds": 86_401}))
        .send()
        .await
        .expect("answers");
    let (_, now) = agent.send(M::GET, &path, None, None).await;
    assert_eq!(
        (&now["status"], &now["decided_by"]),
        (&json!("cancelled"), &json!("expiry")),
        "{now}"
    );
    assert_eq!(now["decision_reason"], "Approval request expired");

    // 40 concurrent retries of one request with one key: one spend request, one debit.
    let body = json!({"amount_cents": 4000, "currency": "usd", "merchant_name": "AWS", "reason": "retry storm"});
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (base, body) = (base.to_owned(), body.clone());
        tasks.push(tokio::spawn(async move {
            key(&base, "din_test_initech")
                .send(M::POST, "/spend-requests", Some(body), Some("storm-1"))
                .await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, r) = t.await.expect("joins");
        assert_eq!(status, 201, "{r}");
        ids.insert(r["id"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (_, balance) = agent.send(M::GET, "/balance", None, None).await;
    assert_eq!(balance["wallet"]["available_cents"], 96_000, "{balance}");
    // The key may come in the body instead of the header.
    let in_body = json!({"amount_cents": 300, "currency": "usd", "merchant_name": "AWS", "reason": "body key", "idempotency_key": "body-1"});
    let (_, first) = agent
        .send(M::POST, "/spend-requests", Some(in_body.clone()), None)
        .await;
    let (_, second) = agent
        .send(M::POST, "/spend-requests", Some(in_body), None)
        .await;
    assert_eq!(first["id"], second["id"], "one request for one body key");
    snapshot("dino_spend_request_by_body_key", &first);
    // The same key with another body is a conflict.
    let other =
        json!({"amount_cents": 1, "currency": "usd", "merchant_name": "AWS", "reason": "x"});
    let (status, conflict) = agent
        .send(M::POST, "/spend-requests", Some(other), Some("storm-1"))
        .await;
    assert_eq!(
        (status, &conflict["error"]["code"]),
        (409, &json!("idempotency_key_conflict")),
        "{conflict}"
    );
    // A bad body: each problem named, nothing recorded.
    let (status, bad) = agent
        .send(
            M::POST,
            "/spend-requests",
            Some(json!({"amount_cents": 0, "currency": "usd", "merchant_name": "AWS"})),
            None,
        )
        .await;
    assert_eq!(
        (status, &bad["error"]["code"]),
        (400, &json!("invalid_request"))
    );
    let fields: Vec<&str> = bad["error"]["details"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"reason") && fields.contains(&"amount_cents"),
        "{bad}"
    );
    // A wallet that cannot cover a spend: 402, nothing recorded.
    let team = key(base, "dba_test_initech");
    let (_, accounts) = team.send(M::GET, "/accounts", None, None).await;
    let id = accounts["data"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    team.send(M::PATCH, &format!("/accounts/{id}"), Some(json!({"budget_cents": 10_000_000, "max_transaction_cents": null, "approval_threshold_cents": null})), None)
        .await;
    let (status, short) = agent
        .send(M::POST, "/spend-requests", Some(json!({"amount_cents": 500_000, "currency": "usd", "merchant_name": "AWS", "reason": "too much"})), None)
        .await;
    assert_eq!(
        (status, &short["error"]["code"]),
        (402, &json!("insufficient_wallet_balance")),
        "{short}"
    );
    let (_, list) = agent.send(M::GET, "/spend-requests", None, None).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(3), "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn teams_transfer_money_only_when_the_recipient_accepts() {
    let s = Sandbox::start(&["--spec", &dino_spec()]);
    let base = s.url();
    let acme = key(base, "din_test_acme");
    let globex = key(base, "dba_test_globex");
    // Globex shares its receive address; Acme checks whose it is, then sends.
    let (_, addr) = globex
        .send(M::GET, "/transfers/receive-address", None, None)
        .await;
    let address = addr["address"].as_str().expect("an address").to_owned();
    assert!(
        address.starts_with("mid1") && address.len() == 36,
        "{address}"
    );
    let (status, who) = acme
        .send(
            M::GET,
            &format!("/transfers/receive-address/{address}"),
            None,
            None,
        )
        .await;
    assert_eq!((status, &who["workspace_name"]), (200, &json!("globex")));
    let offer = json!({"amount_cents": 2500, "currency": "usd", "receive_address": address, "memo": "Invoice 42"});
    let (status, sent) = acme
        .send(M::POST, "/transfers", Some(offer), Some("t-1"))
        .await;
    assert_eq!(
        (status, &sent["status"]),
        (201, &json!("pending_acceptance")),
        "{sent}"
    );
    assert_eq!(sent["direction"], "outgoing");
    let id = sent["id"].as_str().expect("an id").to_owned();
    // Nothing moves yet; the recipient sees it as incoming; a third team does not see it.
    let (_, bal) = acme.send(M::GET, "/balance", None, None).await;
    assert_eq!(bal["wallet"]["available_cents"], 100_000);
    let (_, seen) = globex
        .send(M::GET, &format!("/transfers/{id}"), None, None)
        .await;
    assert_eq!(seen["direction"], "incoming", "{seen}");
    let (status, _) = key(base, "din_test_initech")
        .send(M::GET, &format!("/transfers/{id}"), None, None)
        .await;
    assert_eq!(status, 404);
    // Only the recipient accepts; then both wallets and both ledgers move at once.
    let accept = format!("/transfers/{id}/accept");
    let (status, refused) = acme.send(M::POST, &accept, Some(json!({})), None).await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (409, &json!("invalid_request"))
    );
    let (status, done) = globex.send(M::POST, &accept, Some(json!({})), None).await;
    assert_eq!(
        (status, &done["status"]),
        (200, &json!("completed")),
        "{done}"
    );
    for (k, wallet, kind) in [
        (&acme, 97_500, "transfer_out"),
        (&globex, 102_500, "transfer_in"),
    ] {
        let (_, bal) = k.send(M::GET, "/balance", None, None).await;
        assert_eq!(bal["wallet"]["available_cents"], wallet, "{bal}");
        let (_, ledger) = key(base, &k.token.replace("din_test_", "dba_test_"))
            .send(M::GET, "/ledger", None, None)
            .await;
        let entry = &ledger["data"][0];
        assert_eq!(
            (&entry["type"], &entry["wallet_balance_after_cents"]),
            (&json!(kind), &json!(wallet)),
            "{ledger}"
        );
    }
    let (status, again) = globex.send(M::POST, &accept, Some(json!({})), None).await;
    assert_eq!(
        (status, &again["error"]["code"]),
        (409, &json!("invalid_request"))
    );

    // An address nobody holds: a bad request.
    let nobody = json!({"amount_cents": 100, "currency": "usd", "receive_address": "mid1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"});
    let (status, refused) = acme
        .send(M::POST, "/transfers", Some(nobody), Some("t-2"))
        .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (400, &json!("invalid_request")),
        "{refused}"
    );
    // A refused request is not remembered: corrected, it may reuse its idempotency key.
    let fixed = json!({"amount_cents": 100, "currency": "usd", "receive_address": address});
    let (status, retried) = acme
        .send(M::POST, "/transfers", Some(fixed), Some("t-2"))
        .await;
    assert_eq!(
        (status, &retried["status"]),
        (201, &json!("pending_acceptance")),
        "{retried}"
    );
    // A payment code, paid and then withdrawn by the sender: it can be paid again.
    let (status, code) = globex
        .send(
            M::POST,
            "/transfers/payment-codes",
            Some(json!({"amount_cents": 1200, "memo": "Coffee"})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{code}");
    // A payment code, shown as one (its item GET answers a transfer recipient instead).
    assert_eq!(code["object"], "payment_code", "{code}");
    let code = code["code"].as_str().expect("a code").to_owned();
    assert!(code.starts_with("CTX-") && code.len() == 13, "{code}");
    let pay = json!({"currency": "usd", "payment_code": code});
    let (status, offered) = acme
        .send(M::POST, "/transfers", Some(pay.clone()), None)
        .await;
    assert_eq!(
        (status, &offered["amount_cents"]),
        (201, &json!(1200)),
        "{offered}"
    );
    let (status, used) = acme
        .send(M::POST, "/transfers", Some(pay.clone()), None)
        .await;
    assert_eq!(status, 409, "a used code: {used}");
    let cancel = format!(
        "/transfers/{}/cancel",
        offered["id"].as_str().expect("an id")
    );
    let (status, withdrawn) = acme
        .send(
            M::POST,
            &cancel,
            Some(json!({"reason": "wrong amount"})),
            None,
        )
        .await;
    assert_eq!(
        (status, &withdrawn["status"]),
        (200, &json!("cancelled")),
        "{withdrawn}"
    );
    let (status, _) = acme.send(M::POST, "/transfers", Some(pay), None).await;
    assert_eq!(status, 201, "the code is active again");
    let (_, bal) = acme.send(M::GET, "/balance", None, None).await;
    assert_eq!(
        bal["wallet"]["available_cents"], 97_500,
        "nothing moved for pending or cancelled transfers"
    );
}

/// A team forgotten through the admin API is provisioned afresh on its next request: a new
/// wallet of 100,000 cents, not the spent one, and no 404 for its missing account.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_team_is_provisioned_again() {
    let s = Sandbox::start(&["--spec", &dino_spec()]);
    let base = s.url();
    let agent = key(base, "din_test_reborn");
    let spent = agent.spend(4_000, "Bookshop").await;
    assert_eq!(decided(&spent).0, "approved", "{spent}");
    let (_, balance) = agent.send(M::GET, "/balance", None, None).await;
    assert_eq!(
        balance["wallet"]["available_cents"],
        json!(96_000),
        "{balance}"
    );
    let reset = client()
        .post(format!("{base}/__sandbox/reset?tenant=reborn"))
        .send()
        .await
        .expect("the admin API answers");
    assert!(reset.status().is_success(), "{}", reset.status());
    let (status, balance) = agent.send(M::GET, "/balance", None, None).await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(
        balance["wallet"]["available_cents"],
        json!(100_000),
        "{balance}"
    );
    let again = agent.spend(1_000, "Bookshop").await;
    assert_eq!(
        decided(&again),
        ("approved", "Spend request approved", 49_000)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_no_receiver_was_sent_are_written_in_dinos_envelope_when_asked_for() {
    // No webhook target: the decision's events are kept unwritten until the admin API asks.
    let s = Sandbox::start(&["--spec", &dino_spec()]);
    let base = s.url();
    let agent = key(base, "din_test_quiet");
    let spent = agent.spend(2_500, "Bookshop").await;
    let id = spent["id"].as_str().expect("a request id");
    let (_, events) = crate::common::reply(client().get(format!("{base}/__sandbox/events"))).await;
    let about: Vec<(&str, &Value)> = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["data"]["spend"]["id"] == id)
        .map(|e| (e["type"].as_str().unwrap_or_default(), &e["data"]["spend"]))
        .collect();
    let kinds: Vec<&str> = about.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        ["spend_request.created", "spend_request.approved"],
        "{events}"
    );
    // Each shows the request as the answer did, member for member.
    for (kind, spend) in about {
        assert_eq!(spend, &spent, "{kind}");
    }
}
