//! Money between teams. A team is found by its receive address (one current, rotatable)
//! or by a single-use payment code it issued; a transfer offered to it waits until it
//! accepts (both wallets move at once, each side's ledger gets its entry), declines, or
//! the sender cancels. Each team keeps its own copy of a transfer, with `direction` seen
//! from its side, so each reads and lists only its own.

use serde_json::{Map, Value, json};

use super::money::Movement;
use super::settings::Role;
use super::store::SpendPolicy;
use crate::state::behaviour::{Cx, Object};
use crate::state::call::Outcome;
use crate::state::expr::digest_hex;

const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn iso(unix: f64) -> String {
    let ms = (unix * 1000.0).floor() as i64;
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// `n` characters of `alphabet` drawn from a digest of `seed`.
fn chars(seed: &str, n: usize, alphabet: &[u8]) -> String {
    let hex = digest_hex(seed, n * 2);
    (0..n)
        .map(|i| {
            let byte =
                u8::from_str_radix(hex.get(i * 2..i * 2 + 2).unwrap_or("00"), 16).unwrap_or(0);
            alphabet[usize::from(byte) % alphabet.len()] as char
        })
        .collect()
}

fn coded(status: u16, code: &str, message: impl Into<String>) -> Outcome {
    Outcome::Coded(status, code.into(), message.into())
}

fn text<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

fn path_value(cx: &Cx<'_>) -> Option<String> {
    cx.call?.path_params.last().map(|(_, v)| v.clone())
}

fn body(cx: &Cx<'_>) -> Map<String, Value> {
    cx.call
        .and_then(|c| c.body)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

pub fn answer(sp: &SpendPolicy, cx: &mut Cx<'_>, role: Role) -> Outcome {
    match role {
        Role::ReceiveAddress => address_answer(sp, cx, false),
        Role::RotateAddress => address_answer(sp, cx, true),
        Role::ResolveAddress | Role::ResolveCode | Role::ResolveRecipient => {
            let Some(value) = path_value(cx) else {
                return Outcome::Stateless;
            };
            resolve(sp, cx, &value).unwrap_or_else(|answer| answer)
        }
        Role::CreateCode => create_code(sp, cx),
        Role::CreateTransfer => create_transfer(sp, cx),
        Role::AcceptTransfer | Role::DeclineTransfer | Role::CancelTransfer => act(sp, cx, role),
        _ => Outcome::Stateless,
    }
}

impl SpendPolicy {
    /// The team's current receive address; a new one when `rotate` or when it has none.
    fn address(&self, tenant: &str, rotate: bool) -> String {
        let mut all = self.addresses.lock();
        let list = all.entry(tenant.to_owned()).or_default();
        if rotate || list.is_empty() {
            let a = format!(
                "mid1{}",
                chars(&format!("{tenant} address {}", list.len()), 32, BECH32)
            );
            list.push(a.clone());
            self.changes
                .lock()
                .push(json!({"address": {"t": tenant, "a": a}}));
        }
        list.last().cloned().unwrap_or_default()
    }

    /// The team whose current address this is.
    fn owner_of_address(&self, address: &str) -> Option<String> {
        self.addresses
            .lock()
            .iter()
            .find(|(_, list)| list.last().map(String::as_str) == Some(address))
            .map(|(t, _)| t.clone())
    }
}

fn address_answer(sp: &SpendPolicy, cx: &mut Cx<'_>, rotate: bool) -> Outcome {
    let address = sp.address(cx.tenant, rotate);
    Outcome::Body(json!({"object": "receive_address", "address": address,
        "workspace_name": cx.tenant, "created_at": iso(cx.now)}))
}

/// A payment code anywhere: (issuing tenant, record id, record).
fn find_code(
    sp: &SpendPolicy,
    cx: &Cx<'_>,
    code: &str,
) -> Option<(String, String, Map<String, Value>)> {
    let resource = sp.s.codes.as_deref()?;
    cx.store.tenants.keys().find_map(|t| {
        cx.store
            .collection(t, resource)?
            .iter()
            .find_map(|(id, r)| {
                let body = r.body.map();
                (text(&body, "code") == code).then(|| (t.clone(), id.to_string(), body))
            })
    })
}

/// Whose a code or an address is, and what a payment to it must be: (tenant, amount,
/// expiry, kind). `Err` is the answer.
fn recipient(
    sp: &SpendPolicy,
    cx: &Cx<'_>,
    value: &str,
) -> Result<(String, Value, Value, &'static str), Outcome> {
    if value.starts_with("CTX-") {
        let Some((tenant, _, code)) = find_code(sp, cx, value) else {
            return Err(coded(404, "not_found", "Payment code not found"));
        };
        let status = text(&code, "status").to_owned();
        let expired = code
            .get("expires_at")
            .and_then(Value::as_str)
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
            .is_some_and(|e| (e.timestamp() as f64) <= cx.now);
        let status = if expired {
            "expired".to_owned()
        } else {
            status
        };
        if status != "active" {
            return Err(Outcome::Coded(
                409,
                "invalid_request".into(),
                format!("Payment code is {status}"),
            ));
        }
        let amount = code.get("amount_cents").cloned().unwrap_or(Value::Null);
        let expires = code.get("expires_at").cloned().unwrap_or(Value::Null);
        return Ok((tenant, amount, expires, "payment_code"));
    }
    match sp.owner_of_address(value) {
        Some(t) => Ok((t, Value::Null, Value::Null, "receive_address")),
        None => Err(coded(404, "not_found", "Receive address not found")),
    }
}

fn resolve(sp: &SpendPolicy, cx: &Cx<'_>, value: &str) -> Result<Outcome, Outcome> {
    let (tenant, amount, expires, kind) = recipient(sp, cx, value)?;
    Ok(Outcome::Body(
        json!({"object": "transfer_recipient", "type": kind, "value": value,
        "workspace_name": tenant, "amount_cents": amount, "expires_at": expires,
        "is_own_workspace": tenant == cx.tenant}),
    ))
}

fn create_code(sp: &SpendPolicy, cx: &mut Cx<'_>) -> Outcome {
    let Some(resource) = sp.s.codes.clone() else {
        return Outcome::Stateless;
    };
    let b = body(cx);
    let days = b
        .get("expires_in_days")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    let seq = cx.store.tenants.get(cx.tenant).map_or(0, |t| t.next_seq);
    let seed = format!("{} code {seq} {}", cx.tenant, cx.now);
    let code = format!(
        "CTX-{}-{}",
        chars(&seed, 4, CROCKFORD),
        chars(&format!("{seed}+"), 4, CROCKFORD)
    );
    let mut r = Map::new();
    r.insert("object".into(), json!("payment_code"));
    r.insert("code".into(), json!(code));
    r.insert("status".into(), json!("active"));
    r.insert(
        "amount_cents".into(),
        b.get("amount_cents").cloned().unwrap_or(Value::Null),
    );
    r.insert("memo".into(), b.get("memo").cloned().unwrap_or(Value::Null));
    r.insert("workspace_name".into(), json!(cx.tenant));
    r.insert("used_by_transfer_id".into(), Value::Null);
    r.insert(
        "expires_at".into(),
        json!(iso(cx.now + days as f64 * 86_400.0)),
    );
    let tenant = cx.tenant.to_owned();
    let id = cx.engine.create(cx.store, cx.spec, &tenant, &resource, r);
    match cx.store.get(&tenant, &resource, &id) {
        Some(r) => Outcome::Body(Value::Object(r.body.map())),
        None => Outcome::Stateless,
    }
}

/// The team's id (from its first account) and name.
fn party(sp: &SpendPolicy, cx: &Cx<'_>, tenant: &str) -> Value {
    let team = cx
        .store
        .collection(tenant, &sp.s.accounts)
        .and_then(|c| c.iter().next().map(|(_, r)| r.body.map()))
        .and_then(|a| a.get("team_id").cloned())
        .unwrap_or(Value::Null);
    json!({"team_id": team, "workspace_name": tenant})
}

fn create_transfer(sp: &SpendPolicy, cx: &mut Cx<'_>) -> Outcome {
    let Some(resource) = sp.s.transfers.clone() else {
        return Outcome::Stateless;
    };
    let b = body(cx);
    let named: Vec<&str> = ["payment_code", "receive_address", "recipient"]
        .iter()
        .filter_map(|k| b.get(*k).and_then(Value::as_str))
        .collect();
    let [value] = named.as_slice() else {
        return coded(
            400,
            "invalid_request",
            "Name exactly one of payment_code, receive_address or recipient",
        );
    };
    let value = (*value).to_owned();
    let (to, fixed, _, kind) = match recipient(sp, cx, &value) {
        Ok(r) => r,
        // Paying nobody is a bad request, not a missing resource.
        Err(Outcome::Coded(404, _, message)) => return coded(400, "invalid_request", message),
        Err(answer) => return answer,
    };
    if to == cx.tenant {
        return coded(
            400,
            "invalid_request",
            "A workspace cannot send a transfer to itself",
        );
    }
    let amount = match (
        b.get("amount_cents").and_then(Value::as_i64),
        fixed.as_i64(),
    ) {
        (Some(a), Some(f)) if a != f => {
            return coded(
                400,
                "invalid_request",
                format!("The payment code asks for {f} cents"),
            );
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => return coded(400, "invalid_request", "amount_cents is required"),
    };
    if sp.wallet(cx.tenant) < amount {
        return coded(
            402,
            "insufficient_wallet_balance",
            "The team wallet does not hold enough for this transfer",
        );
    }
    let from = cx.tenant.to_owned();
    let mut t = Map::new();
    t.insert("object".into(), json!("transfer"));
    t.insert("status".into(), json!("pending_acceptance"));
    t.insert("amount_cents".into(), json!(amount));
    t.insert("currency".into(), json!("usd"));
    t.insert("memo".into(), b.get("memo").cloned().unwrap_or(Value::Null));
    t.insert("direction".into(), json!("outgoing"));
    t.insert("sender".into(), party(sp, cx, &from));
    t.insert("recipient".into(), party(sp, cx, &to));
    t.insert(
        "recipient_identifier".into(),
        json!({"type": kind, "value": value}),
    );
    for k in [
        "completed_at",
        "declined_at",
        "cancelled_at",
        "decline_reason",
        "cancel_reason",
        "ledger_entry_id",
    ] {
        t.insert(k.into(), Value::Null);
    }
    let id = cx
        .engine
        .create(cx.store, cx.spec, &from, &resource, t.clone());
    t.insert("id".into(), json!(id));
    t.insert("direction".into(), json!("incoming"));
    cx.engine.create(cx.store, cx.spec, &to, &resource, t);
    if kind == "payment_code" {
        set_code(sp, cx, &value, "used", json!(id));
    }
    copy(cx, &from, &resource, &id)
}

/// A code's status (and the transfer that used it).
fn set_code(sp: &SpendPolicy, cx: &mut Cx<'_>, code: &str, status: &str, used_by: Value) {
    let (Some(resource), Some((tenant, id, _))) = (sp.s.codes.clone(), find_code(sp, cx, code))
    else {
        return;
    };
    let mut changes = Map::new();
    changes.insert("status".into(), json!(status));
    changes.insert("used_by_transfer_id".into(), used_by);
    cx.engine.update(cx.store, &tenant, &resource, &id, changes);
}

fn copy(cx: &Cx<'_>, tenant: &str, resource: &str, id: &str) -> Outcome {
    match cx.store.get(tenant, resource, id) {
        Some(r) => Outcome::Body(Value::Object(r.body.map())),
        None => coded(404, "not_found", "Transfer not found"),
    }
}

/// The recipient accepts or declines, the sender cancels.
fn act(sp: &SpendPolicy, cx: &mut Cx<'_>, role: Role) -> Outcome {
    let (Some(resource), Some(id)) = (sp.s.transfers.clone(), path_value(cx)) else {
        return Outcome::Stateless;
    };
    let me = cx.tenant.to_owned();
    let Some(mine) = cx.store.get(&me, &resource, &id).map(|r| r.body.map()) else {
        return coded(404, "not_found", "Transfer not found");
    };
    let status = text(&mine, "status").to_owned();
    if status != "pending_acceptance" {
        return Outcome::Coded(
            409,
            "invalid_request".into(),
            format!("Transfer is not pending acceptance (it is {status})"),
        );
    }
    let incoming = text(&mine, "direction") == "incoming";
    let (allowed, who) = match role {
        Role::CancelTransfer => (!incoming, "Only the sender can cancel this transfer"),
        Role::AcceptTransfer => (incoming, "Only the recipient can accept this transfer"),
        _ => (incoming, "Only the recipient can decline this transfer"),
    };
    if !allowed {
        return coded(409, "invalid_request", who);
    }
    let side = |k: &str| {
        mine.get(k)
            .and_then(|p| p.get("workspace_name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (sender, receiver) = (side("sender"), side("recipient"));
    let amount = mine
        .get("amount_cents")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let reason = body(cx).get("reason").cloned().unwrap_or(Value::Null);
    let now = json!(iso(cx.now));
    let (common, event) = match role {
        Role::AcceptTransfer => {
            if sp.wallet(&sender) < amount {
                return coded(
                    402,
                    "insufficient_wallet_balance",
                    "The sender's wallet no longer holds enough",
                );
            }
            (
                json!({"status": "completed", "completed_at": now}),
                "transfer.completed",
            )
        }
        Role::DeclineTransfer => (
            json!({"status": "declined", "declined_at": now, "decline_reason": reason}),
            "transfer.declined",
        ),
        _ => (
            json!({"status": "cancelled", "cancelled_at": now, "cancel_reason": reason}),
            "transfer.cancelled",
        ),
    };
    let entries = if role == Role::AcceptTransfer {
        settle(sp, cx, &id, (&sender, &receiver), amount)
    } else {
        reopen_code(sp, cx, &mine);
        Vec::new()
    };
    let common = common.as_object().cloned().unwrap_or_default();
    for tenant in [&sender, &receiver] {
        let mut changes = common.clone();
        // Each side's copy names its own side's ledger entry.
        if let Some((_, entry)) = entries.iter().find(|(t, _)| t == tenant) {
            changes.insert("ledger_entry_id".into(), json!(entry));
        }
        cx.engine.update(cx.store, tenant, &resource, &id, changes);
        if let Some(r) = cx.store.get(tenant, &resource, &id).map(|r| r.body.map()) {
            cx.engine
                .emit(cx.store, tenant, event, &Object::Members(&r, None));
        }
    }
    copy(cx, &me, &resource, &id)
}

/// Moves an accepted transfer's money: the sender's wallet down, the recipient's up, one
/// ledger entry each; returns (tenant, entry id) for both sides.
fn settle(
    sp: &SpendPolicy,
    cx: &mut Cx<'_>,
    id: &str,
    (sender, receiver): (&String, &String),
    amount: i64,
) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    for (tenant, cents, kind) in [
        (sender, -amount, "transfer_out"),
        (receiver, amount, "transfer_in"),
    ] {
        let team = party(sp, cx, tenant)["team_id"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let movement = Movement {
            kind,
            cents,
            account: None,
            team: &team,
            reference: ("transfer", Some(id)),
            description: format!("Transfer {id}"),
        };
        let (entry, _) = sp.book_for(cx, tenant, &movement);
        entries.push((tenant.clone(), entry));
    }
    entries
}

/// A code whose transfer was declined or cancelled can be paid again.
fn reopen_code(sp: &SpendPolicy, cx: &mut Cx<'_>, transfer: &Map<String, Value>) {
    let identifier = transfer.get("recipient_identifier");
    if identifier
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str)
        == Some("payment_code")
    {
        let code = identifier
            .and_then(|r| r.get("value"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        set_code(sp, cx, &code, "active", Value::Null);
    }
}
