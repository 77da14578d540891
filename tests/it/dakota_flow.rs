//! What an SDK user does against the bundled Dakota sandbox, over HTTP only: onboard a
//! customer, pay a recipient through destinations and accounts, page through transactions,
//! simulate an inbound ACH and watch its auto-transaction settle on the virtual clock, and
//! receive every event as a signed webhook. Each response is an insta snapshot, with ids
//! and times replaced by stable placeholders (the same id always gets the same one, so
//! the snapshots still show which record points at which).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::common::webhooks::{public_key, receiver, wait_for};
use crate::common::{Sandbox, bundled_dakota, client};

/// Members whose values change from run to run.
const VOLATILE: [&str; 15] = [
    "time_last_healthy",
    "time_last_attempted",
    "url",
    "application_url",
    "application_expires_at",
    "created_at",
    "updated_at",
    "completed_at",
    "crypto_address",
    "source_crypto_address",
    "trace_id",
    "key",
    "created",
    "scheduled_for",
    "delivered_at",
];

/// Members of a simulation's callbacks that depend on when the delivery loop last ran.
const DELIVERY_STATE: [&str; 2] = ["state", "attempts"];

/// KSUIDs and prefixed ids; not network names or the client-chosen `sim_` ids.
fn looks_like_id(s: &str) -> bool {
    !s.starts_with("sim_")
        && s.len() >= 20
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces ids (and volatile members) with placeholders numbered in order of appearance.
#[derive(Default)]
struct Redactor {
    ids: HashMap<String, String>,
}

impl Redactor {
    fn redact(&mut self, v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let is_id = k == "id" || k.ends_with("_id");
                        let out = match v {
                            Value::String(s) if is_id && looks_like_id(s) => {
                                let n = self.ids.len() + 1;
                                json!(self.ids.entry(s.clone()).or_insert(format!("[id {n}]")))
                            }
                            _ if VOLATILE.contains(&k.as_str()) => json!(format!("[{k}]")),
                            // A webhook body held as text is shown (and redacted) as JSON.
                            Value::String(s) if k == "payload_json" => {
                                match serde_json::from_str::<Value>(s) {
                                    Ok(inner) => self.redact(&inner),
                                    Err(_) => v.clone(),
                                }
                            }
                            Value::Array(items) if k == "callbacks" => Value::Array(
                                items
                                    .iter()
                                    .map(|c| {
                                        let mut c = self.redact(c);
                                        for member in DELIVERY_STATE {
                                            if let Some(x) = c.get_mut(member) {
                                                *x = json!(format!("[{member}]"));
                                            }
                                        }
                                        c
                                    })
                                    .collect(),
                            ),
                            other => self.redact(other),
                        };
                        (k.clone(), out)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.redact(x)).collect()),
            other => other.clone(),
        }
    }
}

struct Flow {
    base: String,
    redactor: Redactor,
}

impl Flow {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = client()
            .request(method.clone(), format!("{}{path}", self.base))
            .header("x-api-key", "sdk-user");
        // The SDK sends a fresh idempotency key on every POST, PUT and PATCH.
        if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
            req = req.header("x-idempotency-key", crate::contract_uuid());
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        crate::common::reply(req).await
    }

    /// Calls, checks the status, snapshots the redacted body and returns the raw one.
    async fn step(
        &mut self,
        name: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let (status, got) = self.call(method, path, body).await;
        assert_eq!(status, expect, "{name}: {got}");
        let redacted = self.redactor.redact(&got);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../../snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_json_snapshot!(format!("dakota_flow_{name}"), redacted));
        got
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        client()
            .post(format!("{}/__sandbox{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .unwrap_or(Value::Null)
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sdk_user_onboards_pays_and_receives_signed_webhooks() {
    use reqwest::Method as M;
    let spec = bundled_dakota();
    let s = Sandbox::start(&["--spec", &spec, "--seed", "5"]);
    let mut f = Flow {
        base: s.url().to_owned(),
        redactor: Redactor::default(),
    };
    f.admin("/clock/freeze", json!({})).await;
    let (hook_url, seen) = receiver(false).await;
    f.step(
        "webhook_target",
        M::POST,
        "/webhooks/targets",
        Some(json!({"url": hook_url, "global": true})),
        201,
    )
    .await;

    // Onboarding: the customer is pending until the simulation approves it.
    let customer = f
        .step(
            "customer_created",
            M::POST,
            "/customers",
            Some(json!({"name": "Northwind Traders", "customer_type": "business"})),
            201,
        )
        .await;
    let customer_id = id_of(&customer);
    let application_id = customer["application_id"]
        .as_str()
        .expect("application")
        .to_owned();
    let url = customer["application_url"].as_str().expect("url");
    assert!(
        url.contains(&application_id) && url.contains("token="),
        "{url}"
    );
    let expires = customer["application_expires_at"]
        .as_i64()
        .expect("nanoseconds");
    assert!(
        expires > 1_000_000_000_000_000_000,
        "nanoseconds: {expires}"
    );
    let (_, before) = f
        .call(M::GET, &format!("/customers/{customer_id}"), None)
        .await;
    assert_eq!(before["kyb_status"], "pending");
    f.step(
        "onboarding_simulated",
        M::POST,
        "/sandbox/simulate/onboarding",
        Some(json!({"type": "kyb_approve", "applicant_id": application_id, "simulation_id": "sim_onboard_1"})),
        200,
    )
    .await;
    let active = f
        .step(
            "customer_active",
            M::GET,
            &format!("/customers/{customer_id}"),
            None,
            200,
        )
        .await;
    assert_eq!(active["kyb_status"], "active");
    assert_eq!(active["application_status"], "approved");
    let (_, auto) = f
        .call(
            M::GET,
            &format!("/customers/{customer_id}/recipients"),
            None,
        )
        .await;
    assert_eq!(
        auto["meta"]["total_count"], 1,
        "approval adds a recipient: {auto}"
    );

    // A recipient with a bank account and a wallet.
    let recipient = f
        .step(
            "recipient_created",
            M::POST,
            &format!("/customers/{customer_id}/recipients"),
            Some(json!({"name": "Contoso Supplies", "address": {
                "street1": "500 Market St", "city": "Denver", "region": "CO",
                "postal_code": "80202", "country": "US"}})),
            201,
        )
        .await;
    let recipient_id = id_of(&recipient);
    let fiat = f
        .step(
            "fiat_destination_created",
            M::POST,
            &format!("/recipients/{recipient_id}/destinations"),
            Some(
                json!({"destination_type": "fiat_us", "name": "Contoso operating",
                "aba_routing_number": "021000021", "account_number": "000123456789",
                "account_type": "checking", "account_holder_name": "Contoso Supplies",
                "bank_name": "First Bank"}),
            ),
            201,
        )
        .await;
    let crypto = f
        .step(
            "crypto_destination_created",
            M::POST,
            &format!("/recipients/{recipient_id}/destinations"),
            Some(
                json!({"destination_type": "crypto", "name": "Contoso treasury",
                "crypto_address": "0x52908400098527886e0f7030069857d2e4169ee7",
                "network_id": "ethereum-mainnet"}),
            ),
            201,
        )
        .await;
    let destinations = f
        .step(
            "destinations_listed",
            M::GET,
            &format!("/recipients/{recipient_id}/destinations"),
            None,
            200,
        )
        .await;
    let listed: Vec<&str> = destinations["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|d| d["destination_id"].as_str())
        .collect();
    assert!(listed.contains(&id_of(&fiat).as_str()) && listed.contains(&id_of(&crypto).as_str()));

    // Accounts: an offramp pays the bank account, an onramp funds the wallet.
    let offramp = f
        .step(
            "offramp_account_created",
            M::POST,
            "/accounts",
            Some(
                json!({"account_type": "offramp", "fiat_destination_id": id_of(&fiat),
                "source_asset": "USDC", "source_network_id": "ethereum-mainnet",
                "destination_asset": "USD", "capabilities": ["ach"], "rail": "ach"}),
            ),
            201,
        )
        .await;
    assert!(
        offramp["source_crypto_address"]
            .as_str()
            .is_some_and(|a| a.starts_with("0x") && a.len() == 42)
    );
    let onramp = f
        .step(
            "onramp_account_created",
            M::POST,
            "/accounts",
            Some(json!({"account_type": "onramp", "crypto_destination_id": id_of(&crypto),
                "source_asset": "USD", "destination_asset": "USDC",
                "destination_network_id": "ethereum-mainnet", "capabilities": ["ach"], "rail": "ach"})),
            201,
        )
        .await;
    assert!(onramp["bank_account"].is_object(), "{onramp}");
    let (status, _) = f.call(M::GET, "/accounts", None).await;
    assert_eq!(status, 400, "account_type is required");
    let (status, _) = f
        .call(M::DELETE, &format!("/recipients/{recipient_id}"), None)
        .await;
    assert_eq!(status, 409, "a recipient with active accounts stays");

    // One-off transactions, then every page of the customer's list, as the SDK pages.
    let mut created = Vec::new();
    for i in 0..23 {
        let body = json!({"customer_id": customer_id, "source_network_id": "ethereum-mainnet",
            "source_asset": "USDC", "destination_id": id_of(&fiat), "destination_asset": "USD",
            "amount": format!("{}.00", 100 + i), "destination_payment_rail": "ach"});
        let t = if i == 0 {
            f.step(
                "transaction_created",
                M::POST,
                "/transactions",
                Some(body),
                201,
            )
            .await
        } else {
            let (status, t) = f.call(M::POST, "/transactions", Some(body)).await;
            assert_eq!(status, 201, "{t}");
            t
        };
        created.push(id_of(&t));
    }
    let mut seen_ids = Vec::new();
    let mut path = format!("/transactions?customer_id={customer_id}");
    let mut pages = 0;
    loop {
        let page = if pages == 0 {
            f.step("transactions_first_page", M::GET, &path, None, 200)
                .await
        } else {
            f.call(M::GET, &path, None).await.1
        };
        pages += 1;
        let items = page["data"].as_array().expect("data").clone();
        if items.is_empty() {
            break;
        }
        seen_ids.extend(items.iter().map(id_of));
        if page["meta"]["has_more_after"] != json!(true) {
            break;
        }
        let last = id_of(items.last().expect("an item"));
        path = format!("/transactions?customer_id={customer_id}&starting_after={last}");
        assert!(pages < 10, "paging must end");
    }
    assert_eq!(pages, 2, "20 per page by default");
    let mut sorted = seen_ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        created.len(),
        "every transaction exactly once"
    );

    // Money arrives on the onramp: an auto-transaction settles as the clock moves.
    f.step(
        "inbound_ach_simulated",
        M::POST,
        "/sandbox/simulate/inbound",
        Some(json!({"simulation_id": "sim_ach_1", "type": "ach_inbound",
            "account_id": id_of(&onramp), "amount": "250.00", "currency": "USD"})),
        200,
    )
    .await;
    let list = format!("/auto-transactions?auto_account_id={}", id_of(&onramp));
    let (_, autos) = f.call(M::GET, &list, None).await;
    assert_eq!(autos["data"][0]["status"], "pending", "{autos}");
    let auto_id = id_of(&autos["data"][0]);
    for (seconds, expected) in [(5, "processing"), (10, "completed")] {
        f.admin("/clock/advance", json!({"seconds": seconds})).await;
        let (_, a) = f
            .call(M::GET, &format!("/auto-transactions/{auto_id}"), None)
            .await;
        assert_eq!(a["status"], expected);
    }
    f.step(
        "auto_transaction_completed",
        M::GET,
        &format!("/auto-transactions/{auto_id}"),
        None,
        200,
    )
    .await;
    // Its callbacks are webhooks delivered in the background: wait until each has been, so
    // the snapshot does not depend on how far delivery got.
    let sim = "/sandbox/simulations/sim_ach_1";
    for _ in 0..200 {
        let (_, s) = f.call(M::GET, sim, None).await;
        let callbacks = s["callbacks"].as_array().cloned().unwrap_or_default();
        if !callbacks.is_empty() && callbacks.iter().all(|c| c.get("delivered_at").is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    f.step(
        "simulation_inspected",
        M::GET,
        "/sandbox/simulations/sim_ach_1",
        None,
        200,
    )
    .await;

    // Webhooks: every event arrives, each signed with the published key.
    let (_, events) = f.call(M::GET, "/events?limit=100", None).await;
    let total = events["meta"]["total_count"].as_u64().expect("count") as usize;
    let got = wait_for(&seen, total).await;
    let vk = public_key(&f.base).await;
    assert_eq!(got.len(), total, "one delivery per event");
    let mut types = Vec::new();
    for hook in &got {
        assert!(hook.verifies(&vk), "a valid signature");
        let event = hook.json();
        assert_eq!(event["api_version"], "1.0.0", "Dakota's envelope");
        types.push(event["type"].as_str().expect("type").to_owned());
    }
    for wanted in [
        "customer.created",
        "customer.updated",
        "recipient.created",
        "destination.created",
        "auto_account.created",
        "transaction.one_off.created",
        "transaction.auto.created",
        "transaction.auto.updated",
    ] {
        assert!(types.iter().any(|t| t == wanted), "{wanted} in {types:?}");
    }
    assert!(
        types
            .iter()
            .all(|t| !t.starts_with("simulation") && !t.starts_with("application")),
        "only Dakota's event types: {types:?}"
    );
}

/// The sandbox controls an SDK cannot reach: held approvals, simulation retries and
/// conflicts, advancing a held simulation, policy versions and once-shown secrets.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_controls_behave_as_documented() {
    use reqwest::Method as M;
    let spec = bundled_dakota();
    let s = Sandbox::start(&["--spec", &spec]);
    let f = Flow {
        base: s.url().to_owned(),
        redactor: Redactor::default(),
    };
    f.admin("/clock/freeze", json!({})).await;
    let new_customer = |skip: bool| {
        let base = f.base.clone();
        async move {
            let mut req = client()
                .post(format!("{base}/customers"))
                .header("x-api-key", "sdk-user")
                .header("x-idempotency-key", crate::contract_uuid())
                .json(&json!({"name": "Held Corp", "customer_type": "business"}));
            if skip {
                req = req.header("X-Sandbox-Skip-Auto-Approval", "true");
            }
            let v: Value = req
                .send()
                .await
                .expect("answers")
                .json()
                .await
                .expect("json");
            id_of(&v)
        }
    };
    let (held, auto) = (new_customer(true).await, new_customer(false).await);
    f.admin("/clock/advance", json!({"seconds": 6})).await;
    let kyb = |id: String| {
        let f = &f;
        async move { f.call(M::GET, &format!("/customers/{id}"), None).await.1["kyb_status"].clone() }
    };
    assert_eq!(kyb(auto).await, "active", "approved after 5 s");
    assert_eq!(
        kyb(held).await,
        "pending",
        "X-Sandbox-Skip-Auto-Approval holds it"
    );

    // Unknown accounts are 404; a repeated simulation id is a retry, or a conflict.
    let inbound = |id: &str, account: &str, amount: &str, scenario: &str| {
        json!({"simulation_id": id, "type": "ach_inbound", "account_id": account,
            "amount": amount, "currency": "USD", "scenario": scenario})
    };
    let (status, _) = f
        .call(
            M::POST,
            "/sandbox/simulate/inbound",
            Some(inbound(
                "sim_a",
                "2vKL8p3q75cUsPNeXD6uwsLAkNX",
                "1.00",
                "success_immediate",
            )),
        )
        .await;
    assert_eq!(status, 404);
    let (_, account) = f
        .call(M::POST, "/accounts", Some(json!({"account_type": "onramp", "source_asset": "USD", "destination_asset": "USDC"})))
        .await;
    let account = id_of(&account);
    let hold = inbound("sim_hold", &account, "5.00", "compliance_hold");
    let (status, first) = f
        .call(M::POST, "/sandbox/simulate/inbound", Some(hold.clone()))
        .await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = f
        .call(M::POST, "/sandbox/simulate/inbound", Some(hold))
        .await;
    assert_eq!(
        (status, &again),
        (200, &first),
        "a retry answers as the first time"
    );
    let (status, _) = f
        .call(
            M::POST,
            "/sandbox/simulate/inbound",
            Some(inbound("sim_hold", &account, "6.00", "compliance_hold")),
        )
        .await;
    assert_eq!(status, 409, "same id, different parameters");
    let (_, sim) = f.call(M::GET, "/sandbox/simulations/sim_hold", None).await;
    assert_eq!(
        (
            sim["awaiting_advance"].clone(),
            sim["state_position"].clone()
        ),
        (json!(true), json!("compliance_hold"))
    );
    let advance = "/sandbox/simulations/sim_hold/advance";
    let (status, _) = f
        .call(M::POST, advance, Some(json!({"action": "fly"})))
        .await;
    assert_eq!(status, 400, "not an action");
    let autos = format!("/auto-transactions?auto_account_id={account}");
    assert_eq!(
        f.call(M::GET, &autos, None).await.1["meta"]["total_count"],
        0,
        "held: nothing yet"
    );
    let (status, result) = f
        .call(M::POST, advance, Some(json!({"action": "release"})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(result["previous_state"], "compliance_hold");
    assert_eq!(
        f.call(M::GET, &autos, None).await.1["meta"]["total_count"],
        1,
        "released: it settles"
    );
    let (status, _) = f
        .call(M::POST, advance, Some(json!({"action": "release"})))
        .await;
    assert_eq!(status, 409, "no longer awaiting an action");

    // Policies count their rule changes; rule operations answer with the policy.
    let (_, policy) = f
        .call(
            M::POST,
            "/policies",
            Some(json!({"name": "Treasury", "rules": []})),
        )
        .await;
    assert_eq!(policy["version"], 1);
    assert!(policy["id"].as_str().is_some_and(|i| i.starts_with("pol_")));
    let rule = json!({"signatures": ["c2lnbmF0dXJl"], "intent": {"type": "add_policy_rule",
        "policy_id": id_of(&policy), "rule_type": "approval_threshold", "action": "deny",
        "definition": {"threshold": 2}, "idempotency_key": "idem_1"}});
    let (status, after) = f
        .call(
            M::POST,
            &format!("/policies/{}/rules", id_of(&policy)),
            Some(rule),
        )
        .await;
    assert_eq!(status, 201, "{after}");
    assert_eq!(after["version"], 2);
    assert_eq!(after["rules"].as_array().map(Vec::len), Some(1));

    // An API key's secret is shown once.
    let (_, key) = f.call(M::POST, "/api-keys", None).await;
    let secret = key["key"].as_str().expect("the secret").to_owned();
    let (_, keys) = f.call(M::GET, "/api-keys", None).await;
    let listed = &keys["data"][0];
    assert!(listed.get("key").is_none(), "{listed}");
    assert!(secret.ends_with(listed["key_suffix"].as_str().expect("suffix")));

    // The scenario catalogue names the stateful scenarios with the actions /advance takes.
    let (_, catalogue) = f.call(M::GET, "/sandbox/scenarios", None).await;
    let stateful: Vec<(String, Value)> = catalogue["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .filter(|s| s["stateful"] == true)
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["advance_actions"].clone(),
            )
        })
        .collect();
    assert_eq!(
        stateful,
        [
            ("compliance_hold".to_owned(), json!(["release", "reject"])),
            ("manual_review".to_owned(), json!(["approve", "reject"])),
            ("unconfirmed".to_owned(), json!(["confirm", "expire"])),
        ]
    );
}
