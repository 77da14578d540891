//! Dakota wallets and credits over HTTP: signer groups, signers and policies attached and
//! detached (many-to-many links that never overwrite the records they join), balances that
//! move with simulated deposits and wallet sends, the events they raise, and self-serve
//! credits bought and written to the ledger.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::dakota::dakota;
use crate::common::{Sandbox, bundled_dakota};

/// An endorsed request body; the sandbox does not check signatures.
fn endorsed(intent: Value) -> Value {
    json!({"signatures": ["c2lnbmF0dXJl"], "intent": intent})
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a bare array")
        .iter()
        .map(|v| v["id"].as_str().expect("an id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn signer_groups_and_policies_attach_to_wallets_without_touching_them() {
    let s = Sandbox::start(&["--spec", &bundled_dakota()]);
    let api = dakota(&s, "key-wallet-links");

    let ada = api
        .created(
            "/signers",
            json!({"name": "Ada", "public_key": "A1b2+key/one=", "key_type": "ES256"}),
        )
        .await;
    api.created(
        "/signers",
        json!({"name": "Bob", "public_key": "B2key", "key_type": "WEBAUTHN"}),
    )
    .await;

    // A group's members are the signers its keys name; an unknown key is refused.
    let unknown = api
        .send(
            Method::POST,
            "/signer-groups",
            Some(json!({"name": "Ops", "member_keys": ["nobody"]})),
            &[],
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let group = api
        .created(
            "/signer-groups",
            json!({"name": "Ops", "member_keys": ["A1b2+key/one="]}),
        )
        .await;
    let g = group["id"].as_str().expect("group id").to_owned();
    assert_eq!(group["members"][0]["name"], "Ada");
    let joined = api
        .send(
            Method::POST,
            &format!("/signer-groups/{g}/signers"),
            Some(json!({"member_key": "B2key"})),
            &[],
        )
        .await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    assert_eq!(joined.body["members"].as_array().map(Vec::len), Some(2));

    let policy = api
        .created(
            "/policies",
            json!({"name": "Limits", "rules": [], "signer_group_id": g}),
        )
        .await;
    let p = policy["id"].as_str().expect("policy id").to_owned();

    let missing_group = api
        .send(
            Method::POST,
            "/wallets",
            Some(json!({"family": "evm", "name": "Treasury", "signer_groups": ["2hCjxJzUAW6JVRkZqaF9E0KpM3a"], "policies": []})),
            &[],
        )
        .await;
    assert_eq!(missing_group.status, 404, "{}", missing_group.body);
    let wallet = api
        .created(
            "/wallets",
            json!({"family": "evm", "name": "Treasury", "signer_groups": [g], "policies": []}),
        )
        .await;
    let w = wallet["id"].as_str().expect("wallet id").to_owned();
    let address = wallet["address"].as_str().expect("an address").to_owned();
    assert!(
        address.starts_with("0x") && address.len() == 42,
        "{address}"
    );

    // Groups given on create are attached, seen from both sides.
    let of_wallet = api.get(&format!("/wallets/{w}/signer-groups")).await;
    assert_eq!(ids(&of_wallet.body), vec![g.clone()]);
    let of_group = api.get(&format!("/signer-groups/{g}/wallets")).await;
    assert_eq!(ids(&of_group.body), vec![w.clone()]);
    assert_eq!(of_group.body[0]["name"], "Treasury");

    // Attaching a policy links the two and leaves the wallet as it was.
    let attach = endorsed(json!({
        "type": "attach_policy_to_wallet", "wallet_id": w, "policy_id": p, "idempotency_key": "idem_1"
    }));
    let path = format!("/policies/{p}/wallets/{w}");
    let put = api
        .send(Method::PUT, &path, Some(attach.clone()), &[])
        .await;
    assert_eq!(put.status, 204, "{}", put.body);
    assert_eq!(put.body, Value::Null);
    let after = api.get(&format!("/wallets/{w}")).await;
    assert_eq!(after.body["name"], "Treasury");
    assert_eq!(after.body["address"], address.as_str());
    assert_eq!(
        ids(&api.get(&format!("/wallets/{w}/policies")).await.body),
        vec![p.clone()]
    );
    assert_eq!(
        ids(&api.get(&format!("/policies/{p}/wallets")).await.body),
        vec![w.clone()]
    );
    assert_eq!(
        api.get(&format!("/policies/{p}")).await.body["name"],
        "Limits"
    );

    let detach = api
        .send(Method::DELETE, &path, Some(attach.clone()), &[])
        .await;
    assert_eq!(detach.status, 204, "{}", detach.body);
    let again = api.send(Method::DELETE, &path, Some(attach), &[]).await;
    assert_eq!(again.status, 404, "detaching twice: {}", again.body);
    assert!(ids(&api.get(&format!("/policies/{p}/wallets")).await.body).is_empty());
    assert!(api.get(&format!("/wallets/{w}")).await.status == 200);

    // A signer in a group cannot be deleted (by key, as the path names it); out of the
    // group, it can.
    let key_path = "/signers/A1b2+key%2Fone=";
    let blocked = api.send(Method::DELETE, key_path, None, &[]).await;
    assert_eq!(blocked.status, 409, "{}", blocked.body);
    let left = api
        .send(
            Method::DELETE,
            &format!(
                "/signer-groups/{g}/signers/{}",
                ada["id"].as_str().expect("id")
            ),
            None,
            &[],
        )
        .await;
    assert_eq!(left.status, 200, "{}", left.body);
    assert_eq!(left.body["members"].as_array().map(Vec::len), Some(1));
    assert_eq!(left.body["members"][0]["name"], "Bob");
    let gone = api.send(Method::DELETE, key_path, None, &[]).await;
    assert_eq!(gone.status, 204, "{}", gone.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn wallet_balances_move_with_deposits_and_sends() {
    let s = Sandbox::start(&["--spec", &bundled_dakota()]);
    let api = dakota(&s, "key-wallet-balances");
    api.admin(Method::POST, "/clock/freeze", Some(json!({})))
        .await;
    let wallet = api
        .created(
            "/wallets",
            json!({"family": "evm", "name": "Hot", "signer_groups": [], "policies": []}),
        )
        .await;
    let w = wallet["id"].as_str().expect("wallet id").to_owned();
    let address = wallet["address"].as_str().expect("address").to_owned();
    let balances = |body: &Value| {
        (
            body["balances"]
                .as_array()
                .expect("balances")
                .iter()
                .map(|b| {
                    (
                        b["asset"]["id"].as_str().unwrap_or_default().to_owned(),
                        b["amount_usd"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect::<Vec<_>>(),
            body["total_amount_usd"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let start = api.get(&format!("/wallets/{w}/balances")).await;
    assert_eq!(start.status, 200, "{}", start.body);
    assert_eq!(start.body["wallet_id"], w.as_str());
    assert_eq!(start.body["address"], address.as_str());
    assert_eq!(balances(&start.body), (vec![], "0.00".to_owned()));

    let simulate = |id: &str, extra: Value| {
        let mut body = json!({"simulation_id": id, "type": "crypto_inbound", "currency": "USDC", "wallet_address": address});
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        body
    };
    for (id, extra) in [
        ("sim_full", json!({"amount": "250.00"})),
        (
            "sim_partial",
            json!({"amount": "100.00", "scenario": "partial_crypto", "partial_amount": "40.5"}),
        ),
        (
            "sim_wrong_chain",
            json!({"amount": "10.00", "scenario": "wrong_chain"}),
        ),
    ] {
        let r = api
            .send(
                Method::POST,
                "/sandbox/simulate/inbound",
                Some(simulate(id, extra)),
                &[],
            )
            .await;
        assert_eq!(r.status, 200, "{id}: {}", r.body);
    }
    let unknown = api
        .send(
            Method::POST,
            "/sandbox/simulate/inbound",
            Some(json!({"simulation_id": "sim_nowhere", "type": "crypto_inbound", "amount": "1.00", "currency": "USDC", "wallet_address": "0x0000000000000000000000000000000000000000"})),
            &[],
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let inspected = api.get("/sandbox/simulations/sim_full").await;
    assert_eq!(inspected.body["wallet_id"], w.as_str());
    assert_eq!(inspected.body["state"], "settled");

    // The full deposit and the partial one land; the wrong-chain one does not.
    let funded = api.get(&format!("/wallets/{w}/balances")).await;
    assert_eq!(
        balances(&funded.body),
        (
            vec![("USDC".to_owned(), "290.50".to_owned())],
            "290.50".to_owned()
        )
    );

    let send = api
        .send(
            Method::POST,
            &format!("/wallets/{w}/transactions"),
            Some(endorsed(json!({
                "wallet_id": w, "caip2": "eip155:11155111", "idempotency_key": "idem_send",
                "operation": {"kind": "transfer", "from": address, "to": "0x1111111111111111111111111111111111111111", "amount": "90.50", "asset_id": "USDC"}
            }))),
            &[],
        )
        .await;
    assert_eq!(send.status, 200, "{}", send.body);
    assert_eq!(send.body["resource_type"], "wallet");
    assert_eq!(send.body["wallet_id"], w.as_str());
    assert_eq!(send.body["amount"], "90.50");
    assert_eq!(send.body["status"], "pending");
    let spent = api.get(&format!("/wallets/{w}/balances")).await;
    assert_eq!(
        balances(&spent.body),
        (
            vec![("USDC".to_owned(), "200.00".to_owned())],
            "200.00".to_owned()
        )
    );
    // The send was not filed as a one-off transaction.
    let one_offs = api.get("/transactions").await;
    assert_eq!(one_offs.body["data"].as_array().map(Vec::len), Some(0));

    // On the clock the send is broadcast, then confirmed.
    api.admin(Method::POST, "/clock/advance", Some(json!({"seconds": 15})))
        .await;
    let events = api.get("/events?limit=100").await;
    let of_type = |t: &str| -> Vec<Value> {
        events.body["data"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["type"] == t)
            .map(|e| e["data"]["object"].clone())
            .collect()
    };
    let deposits = of_type("wallet.deposit");
    assert_eq!(deposits.len(), 2, "{deposits:?}");
    assert!(
        deposits
            .iter()
            .all(|d| d["wallet_id"] == w.as_str() && d["asset_id"] == "USDC")
    );
    let statuses: Vec<String> = of_type("wallet.transaction.updated")
        .iter()
        .map(|t| t["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(statuses, ["broadcasted", "completed"]);

    // Reference data is Dakota's own.
    let networks = api.get("/capabilities/networks").await;
    assert_eq!(networks.body.as_array().map(Vec::len), Some(15));
    assert!(
        networks
            .body
            .as_array()
            .is_some_and(|n| n.contains(&json!("solana-devnet")))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn self_serve_credits_move_with_purchases() {
    let s = Sandbox::start(&["--spec", &bundled_dakota()]);
    let api = dakota(&s, "key-credits");
    let balance = api.get("/self-serve/credits/balance").await;
    assert_eq!(balance.status, 200, "{}", balance.body);
    assert_eq!(
        balance.body,
        json!({"balance_cents": 0, "transfer_capacity_cents": 0})
    );
    assert_eq!(
        api.get("/self-serve/credits/ledger").await.body,
        json!({"entries": [], "has_more": false})
    );
    for price in [5000, 10000] {
        let bought = api
            .send(
                Method::POST,
                "/self-serve/credits/purchase",
                Some(json!({"tier_price_cents": price})),
                &[],
            )
            .await;
        assert_eq!(bought.status, 200, "{}", bought.body);
        assert!(
            bought.body["checkout_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://checkout.stripe.com/")),
            "{}",
            bought.body
        );
    }
    let balance = api.get("/self-serve/credits/balance").await;
    assert_eq!(
        balance.body,
        json!({"balance_cents": 15000, "transfer_capacity_cents": 3_000_000})
    );
    let ledger = api.get("/self-serve/credits/ledger").await;
    let entries: Vec<(i64, i64, String)> = ledger.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["amount_cents"].as_i64().unwrap_or_default(),
                e["balance_after_cents"].as_i64().unwrap_or_default(),
                e["entry_type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (5000, 5000, "purchase".to_owned()),
            (10000, 15000, "purchase".to_owned())
        ]
    );
    // Another tenant has its own balance.
    let other = dakota(&s, "key-credits-other");
    assert_eq!(
        other.get("/self-serve/credits/balance").await.body["balance_cents"],
        0
    );
}
