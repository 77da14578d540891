//! The answers: a spend request made and decided, an operator's decision, a held request
//! expiring, the balance, a sandbox top-up, and accounts shown with their budget position.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::money::Movement;
use super::policy::{Decision, OVER_BUDGET, PAUSED, Policy, period_bounds};
use super::settings::Role;
use super::store::{AccountTerms, Index, SpendPolicy};
use crate::state::behaviour::{Cx, Object};
use crate::state::call::Outcome;
use crate::state::store::Record;

fn iso(unix: f64) -> String {
    let ms = (unix * 1000.0).floor() as i64;
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn unix_of(v: Option<&Value>) -> Option<i64> {
    let text = v?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

fn text<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

fn not_found(what: &str) -> Outcome {
    Outcome::Coded(404, "not_found".into(), format!("{what} not found"))
}

/// A record of the tenant's, as stored.
fn record(cx: &Cx<'_>, resource: &str, id: &str) -> Option<Map<String, Value>> {
    cx.store.get(cx.tenant, resource, id).map(|r| r.body.map())
}

/// Whether the caller spends from its own account (a spending key) rather than naming one.
fn is_spender(sp: &SpendPolicy, cx: &Cx<'_>) -> bool {
    cx.call
        .and_then(|c| c.identity)
        .and_then(|i| i.role.as_deref())
        .is_some_and(|r| r == sp.s.spender_role)
}

/// An account's id and record.
type Account = (String, Map<String, Value>);

/// The account a call acts on, as stored: a spending key's own (the team's first), or the
/// one a team key names. `Err` is the answer.
fn stored_account<'s>(
    sp: &SpendPolicy,
    cx: &'s Cx<'_>,
    named: Option<&str>,
) -> Result<Option<(String, &'s Record)>, Outcome> {
    let records = cx.store.collection(cx.tenant, &sp.s.accounts);
    match (is_spender(sp, cx), named) {
        (true, named) => match (records.and_then(|c| c.iter().next()), named) {
            (Some((own, _)), Some(id)) if &**own != id => Err(not_found("Account")),
            (None, Some(_)) => Err(not_found("Account")),
            (found, _) => Ok(found.map(|(id, r)| (id.to_string(), r))),
        },
        (false, Some(id)) => match records.and_then(|c| c.get(id)) {
            Some(r) => Ok(Some((id.to_owned(), r))),
            None => Err(not_found("Account")),
        },
        (false, None) => Ok(None),
    }
}

/// [`stored_account`], parsed.
fn account_for(
    sp: &SpendPolicy,
    cx: &Cx<'_>,
    named: Option<&str>,
) -> Result<Option<Account>, Outcome> {
    let found = stored_account(sp, cx, named)?;
    Ok(found.map(|(id, r)| (id, r.body.map())))
}

/// The terms of the account a spend is made from ([`stored_account`]), parsed only when
/// its body changed since the last decision read it.
fn terms_for(
    sp: &SpendPolicy,
    cx: &Cx<'_>,
    named: Option<&str>,
) -> Result<Option<(String, Arc<AccountTerms>)>, Outcome> {
    let Some((id, stored)) = stored_account(sp, cx, named)? else {
        return Ok(None);
    };
    let key = (cx.tenant.to_owned(), id);
    let mut cache = sp.accounts.lock();
    if let Some((body, terms)) = cache.get(&key)
        && body.same_text(&stored.body)
    {
        return Ok(Some((key.1, terms.clone())));
    }
    let account = stored.body.map();
    let terms = Arc::new(AccountTerms {
        policy: Policy::of(&account),
        team_id: account.get("team_id").cloned().unwrap_or(Value::Null),
    });
    cache.insert(key.clone(), (stored.body.clone(), terms.clone()));
    Ok(Some((key.1, terms)))
}

/// The index of approvals and held requests, read from the store the first time.
fn with_index<T>(sp: &SpendPolicy, cx: &Cx<'_>, f: impl FnOnce(&mut Index) -> T) -> T {
    let mut guard = sp.index.lock();
    let index = guard.get_or_insert_with(|| {
        let mut index = Index::default();
        for tenant in cx.store.tenants.keys() {
            let records = cx.store.collection(tenant, &sp.s.requests);
            for (id, r) in records.into_iter().flat_map(|c| c.iter()) {
                let r = r.body.map();
                let cents = r.get("amount_cents").and_then(Value::as_i64).unwrap_or(0);
                match text(&r, "status") {
                    "approved" => {
                        let at = unix_of(r.get("decided_at")).unwrap_or(0);
                        let key = (tenant.clone(), text(&r, "agent_account_id").to_owned());
                        index.approvals.entry(key).or_default().add(at, cents);
                    }
                    "needs_approval" => {
                        let at = unix_of(r.get("expires_at")).unwrap_or(i64::MAX);
                        index.held.insert((at, tenant.clone(), id.to_string()));
                    }
                    _ => {}
                }
            }
        }
        index
    });
    f(index)
}

/// Cents approved from `account` with a decision in [start, end).
fn spent_in(sp: &SpendPolicy, cx: &Cx<'_>, account: &str, (start, end): (i64, i64)) -> i64 {
    let key = (cx.tenant.to_owned(), account.to_owned());
    with_index(sp, cx, |index| {
        index
            .approvals
            .get(&key)
            .map_or(0, |list| list.sum(start, end))
    })
}

/// The budget position of an account now: (spent, remaining, remaining this month, period).
fn position(
    sp: &SpendPolicy,
    cx: &Cx<'_>,
    id: &str,
    policy: &Policy,
) -> (i64, i64, i64, (i64, i64)) {
    let now = cx.now.floor() as i64;
    let period = period_bounds(&policy.period, now);
    let spent = spent_in(sp, cx, id, period);
    let month = if policy.period == "monthly" {
        spent
    } else {
        spent_in(sp, cx, id, period_bounds("monthly", now))
    };
    (spent, policy.budget - spent, policy.budget - month, period)
}

/// `POST` a spend request: decided by the account's policy, stored with its decision.
pub fn create(sp: &SpendPolicy, cx: &mut Cx<'_>) -> Outcome {
    // Read in place: the request outlives this answer.
    let Some(Value::Object(body)) = cx.call.and_then(|c| c.body) else {
        return Outcome::Stateless;
    };
    let (account_id, account) =
        match terms_for(sp, cx, body.get("account_id").and_then(Value::as_str)) {
            Ok(Some(found)) => found,
            Ok(None) => {
                return Outcome::Coded(
                    400,
                    "invalid_request".into(),
                    "account_id is required with a team key".into(),
                );
            }
            Err(answer) => return answer,
        };
    let amount = body
        .get("amount_cents")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let merchant = text(body, "merchant_name").to_owned();
    let policy = &account.policy;
    let (spent, remaining, monthly, _) = position(sp, cx, &account_id, policy);
    let decision = policy.decide(amount, &merchant, spent);
    if decision == Decision::Approved && sp.wallet(cx.tenant) < amount {
        return short_wallet();
    }
    let now = cx.now;
    // Room for every member, those the engine adds included: no growing on the way.
    let mut r = Map::with_capacity(32);
    r.insert("object".into(), json!("spend_request"));
    r.insert("team_id".into(), account.team_id.clone());
    r.insert("agent_account_id".into(), json!(account_id));
    r.insert("status".into(), json!(decision.status()));
    r.insert("decision_reason".into(), json!(decision.reason()));
    r.insert("budget_period".into(), json!(policy.period));
    for k in ["amount_cents", "merchant_name", "reason"] {
        r.insert(k.into(), body.get(k).cloned().unwrap_or(Value::Null));
    }
    r.insert(
        "currency".into(),
        json!(text(body, "currency").to_lowercase()),
    );
    r.insert(
        "metadata".into(),
        body.get("metadata").cloned().unwrap_or(json!({})),
    );
    r.insert("idempotency_key".into(), idempotency_key(cx, body));
    let held = decision == Decision::NeedsApproval;
    let expires = held.then(|| iso(now + policy.ttl_seconds as f64));
    r.insert("expires_at".into(), json!(expires));
    let decided = !held;
    r.insert("decided_at".into(), json!(decided.then(|| iso(now))));
    r.insert("decided_by".into(), json!(decided.then_some("policy")));
    r.insert("approval_url".into(), Value::Null);
    r.insert("livemode".into(), json!(false));
    // The position after this decision: only an approval counts against the budget.
    let counted = if decision == Decision::Approved {
        amount
    } else {
        0
    };
    r.insert("remaining_budget_cents".into(), json!(remaining - counted));
    r.insert(
        "remaining_monthly_budget_cents".into(),
        json!(monthly - counted),
    );
    let (id, stored) = cx
        .engine
        .create_settled(cx.store, cx.spec, cx.tenant, &sp.s.requests, r);
    let mut changes = Map::new();
    if let (true, Some(url)) = (held, &sp.s.approval_url) {
        changes.insert("approval_url".into(), json!(url.replace("{id}", &id)));
    }
    if held {
        let until = (now + policy.ttl_seconds as f64).floor() as i64;
        let entry = (until, cx.tenant.to_owned(), id.clone());
        with_index(sp, cx, |index| index.held.insert(entry));
    }
    if decision == Decision::Approved {
        let team = account.team_id.as_str().unwrap_or("").to_owned();
        spend(sp, cx, &id, &account_id, &team, amount, &merchant);
    }
    match stored {
        // Nothing changed the request since it was stored: no need to read it back, and
        // the text it was stored as is the answer and the event's object.
        Some(request) if changes.is_empty() => {
            if let Some(kind) = event_for(sp, &decision) {
                let object = Object::Text(&request.text);
                cx.engine.emit(cx.store, cx.tenant, kind, &object);
            }
            Outcome::Text(request.text)
        }
        _ => conclude(sp, cx, &id, changes, event_for(sp, &decision)),
    }
}

fn event_for<'a>(sp: &'a SpendPolicy, d: &Decision) -> Option<&'a str> {
    match d {
        Decision::Approved => Some(&sp.s.events.approved),
        Decision::Declined(_) => Some(&sp.s.events.declined),
        Decision::NeedsApproval => None,
    }
}

fn short_wallet() -> Outcome {
    Outcome::Coded(
        402,
        "insufficient_wallet_balance".into(),
        "The team wallet does not hold enough to cover this spend".into(),
    )
}

/// The key the request was made with: the header, else the body's member.
fn idempotency_key(cx: &Cx<'_>, body: &Map<String, Value>) -> Value {
    cx.call
        .and_then(|c| c.headers)
        .and_then(|h| h.get("idempotency-key"))
        .and_then(|v| v.to_str().ok())
        .map(|k| json!(k))
        .or_else(|| body.get("idempotency_key").cloned())
        .unwrap_or(Value::Null)
}

/// Debits an approved spend and writes it to the ledger.
fn spend(
    sp: &SpendPolicy,
    cx: &mut Cx<'_>,
    id: &str,
    account: &str,
    team: &str,
    amount: i64,
    merchant: &str,
) {
    let at = cx.now.floor() as i64;
    let key = (cx.tenant.to_owned(), account.to_owned());
    with_index(sp, cx, |index| {
        index.approvals.entry(key).or_default().add(at, amount);
    });
    sp.book(
        cx,
        &Movement {
            kind: "spend",
            cents: -amount,
            account: Some(account),
            team,
            reference: ("spend_request", Some(id)),
            description: format!("Spend at {merchant}"),
        },
    );
}

/// Applies `changes` (with the budget position now) to request `id`, raises `event`, and
/// answers with the request.
fn finish(
    sp: &SpendPolicy,
    cx: &mut Cx<'_>,
    id: &str,
    mut changes: Map<String, Value>,
    event: Option<&str>,
) -> Outcome {
    let tenant = cx.tenant.to_owned();
    // The decision first, so the budget position counts it.
    if !changes.is_empty() {
        cx.engine.update(
            cx.store,
            &tenant,
            &sp.s.requests,
            id,
            std::mem::take(&mut changes),
        );
    }
    let Some(current) = record(cx, &sp.s.requests, id) else {
        return not_found("Spend request");
    };
    let account = text(&current, "agent_account_id").to_owned();
    if let Some(a) = record(cx, &sp.s.accounts, &account) {
        let (_, remaining, monthly, _) = position(sp, cx, &account, &Policy::of(&a));
        changes.insert("remaining_budget_cents".into(), json!(remaining));
        changes.insert("remaining_monthly_budget_cents".into(), json!(monthly));
        cx.engine
            .update(cx.store, &tenant, &sp.s.requests, id, changes);
    }
    conclude(sp, cx, id, Map::new(), event)
}

/// Applies `changes` (if any) to request `id`, raises `event`, and answers with the request.
fn conclude(
    sp: &SpendPolicy,
    cx: &mut Cx<'_>,
    id: &str,
    changes: Map<String, Value>,
    event: Option<&str>,
) -> Outcome {
    let tenant = cx.tenant.to_owned();
    if !changes.is_empty() {
        cx.engine
            .update(cx.store, &tenant, &sp.s.requests, id, changes);
    }
    let Some(now) = record(cx, &sp.s.requests, id) else {
        return not_found("Spend request");
    };
    answer(cx, now, event)
}

/// Raises `event` (if any) about `request` as it is now, and answers with it.
fn answer(cx: &mut Cx<'_>, request: Map<String, Value>, event: Option<&str>) -> Outcome {
    if let Some(kind) = event {
        let object = Object::Members(&request, None);
        cx.engine.emit(cx.store, cx.tenant, kind, &object);
    }
    Outcome::Body(Value::Object(request))
}

/// An operator approves, declines or cancels a held request.
pub fn act(sp: &SpendPolicy, cx: &mut Cx<'_>, role: Role) -> Outcome {
    let Some(id) = cx
        .call
        .and_then(|c| c.path_params.last())
        .map(|(_, v)| v.clone())
    else {
        return Outcome::Stateless;
    };
    let Some(current) = record(cx, &sp.s.requests, &id) else {
        return not_found("Spend request");
    };
    let status = text(&current, "status").to_owned();
    if status != "needs_approval" {
        return Outcome::Coded(
            409,
            "invalid_request".into(),
            format!("Spend request is not awaiting approval (it is {status})"),
        );
    }
    let now = iso(cx.now);
    let mut changes = Map::new();
    changes.insert("decided_at".into(), json!(now));
    changes.insert("decided_by".into(), json!("operator"));
    changes.insert("approval_url".into(), Value::Null);
    let (status, reason, event) = match role {
        Role::Approve => {
            if let Err(answer) = approve(sp, cx, &id, &current) {
                return answer;
            }
            (
                "approved",
                "Spend request approved",
                sp.s.events.approved.clone(),
            )
        }
        Role::Decline => (
            "declined",
            "Declined by operator",
            sp.s.events.declined.clone(),
        ),
        _ => (
            "cancelled",
            "Cancelled by operator",
            sp.s.events.cancelled.clone(),
        ),
    };
    changes.insert("status".into(), json!(status));
    changes.insert("decision_reason".into(), json!(reason));
    finish(sp, cx, &id, changes, Some(&event))
}

/// Re-checks the policy for an operator's approval and moves the money.
fn approve(
    sp: &SpendPolicy,
    cx: &mut Cx<'_>,
    id: &str,
    request: &Map<String, Value>,
) -> Result<(), Outcome> {
    let account_id = text(request, "agent_account_id").to_owned();
    let Some(account) = record(cx, &sp.s.accounts, &account_id) else {
        return Err(not_found("Account"));
    };
    let policy = Policy::of(&account);
    let amount = request
        .get("amount_cents")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let (spent, ..) = position(sp, cx, &account_id, &policy);
    let refused = if policy.paused {
        Some(PAUSED)
    } else if spent + amount > policy.budget {
        Some(OVER_BUDGET)
    } else {
        None
    };
    if let Some(why) = refused {
        return Err(Outcome::Coded(409, "policy_declined".into(), why.into()));
    }
    if sp.wallet(cx.tenant) < amount {
        return Err(short_wallet());
    }
    let team = text(&account, "team_id").to_owned();
    let merchant = text(request, "merchant_name").to_owned();
    spend(sp, cx, id, &account_id, &team, amount, &merchant);
    Ok(())
}

/// Held requests whose window passed are cancelled (every tenant).
pub fn expire(sp: &SpendPolicy, cx: &mut Cx<'_>) {
    let now = cx.now.floor() as i64;
    let due: Vec<(String, String)> = with_index(sp, cx, |index| {
        let mut due = Vec::new();
        while let Some(first) = index.held.first().filter(|(at, _, _)| *at <= now).cloned() {
            index.held.remove(&first);
            due.push((first.1, first.2));
        }
        due
    });
    // A request decided by an operator since it was held is no longer waiting.
    let due: Vec<(String, String)> = due
        .into_iter()
        .filter(|(t, id)| {
            cx.store.get(t, &sp.s.requests, id).is_some_and(|r| {
                r.body.get("status").as_ref().and_then(Value::as_str) == Some("needs_approval")
            })
        })
        .collect();
    for (tenant, id) in due {
        let mut changes = Map::new();
        changes.insert("status".into(), json!("cancelled"));
        changes.insert("decision_reason".into(), json!("Approval request expired"));
        changes.insert("decided_at".into(), json!(iso(cx.now)));
        changes.insert("decided_by".into(), json!("expiry"));
        changes.insert("approval_url".into(), Value::Null);
        cx.engine
            .update(cx.store, &tenant, &sp.s.requests, &id, changes);
        if let Some(r) = cx
            .store
            .get(&tenant, &sp.s.requests, &id)
            .map(|r| r.body.map())
        {
            let kind = sp.s.events.cancelled.clone();
            cx.engine
                .emit(cx.store, &tenant, &kind, &Object::Members(&r, None));
        }
    }
}

/// `GET` the balance: the wallet, and the budget position of the caller's account.
pub fn balance(sp: &SpendPolicy, cx: &mut Cx<'_>) -> Outcome {
    let named = cx
        .call
        .and_then(|c| c.query.iter().find(|(k, _)| k == "account_id"))
        .map(|(_, v)| v.clone());
    let account = match account_for(sp, cx, named.as_deref()) {
        Ok(a) => a,
        Err(answer) => return answer,
    };
    let mut out = Map::new();
    out.insert("object".into(), json!("balance"));
    out.insert("livemode".into(), json!(false));
    out.insert("currency".into(), json!("usd"));
    out.insert("wallet".into(), wallet_block(sp, cx.tenant));
    let team = account
        .as_ref()
        .and_then(|(_, a)| a.get("team_id").cloned());
    out.insert(
        "team_id".into(),
        team.unwrap_or_else(|| json!(team_of(sp, cx))),
    );
    out.insert(
        "account_id".into(),
        json!(account.as_ref().map(|(id, _)| id.clone())),
    );
    if let Some((id, a)) = &account {
        let policy = Policy::of(a);
        out.extend(budget_members(sp, cx, id, &policy));
        let held: Vec<i64> = cx
            .store
            .collection(cx.tenant, &sp.s.requests)
            .into_iter()
            .flat_map(|c| c.iter())
            .map(|(_, r)| r.body.map())
            .filter(|r| text(r, "agent_account_id") == id && text(r, "status") == "needs_approval")
            .filter_map(|r| r.get("amount_cents").and_then(Value::as_i64))
            .collect();
        out.insert(
            "pending_approval_cents".into(),
            json!(held.iter().sum::<i64>()),
        );
        out.insert("pending_approval_count".into(), json!(held.len()));
    }
    Outcome::Body(Value::Object(out))
}

fn wallet_block(sp: &SpendPolicy, tenant: &str) -> Value {
    json!({"available_cents": sp.wallet(tenant), "pending_incoming_transfers_cents": 0,
           "pending_outgoing_transfers_cents": 0})
}

/// The team's id, from any of its accounts.
fn team_of(sp: &SpendPolicy, cx: &Cx<'_>) -> Value {
    cx.store
        .collection(cx.tenant, &sp.s.accounts)
        .and_then(|c| c.iter().next().map(|(_, r)| r.body.map()))
        .and_then(|a| a.get("team_id").cloned())
        .unwrap_or(Value::Null)
}

/// An account's budget members as of now.
fn budget_members(sp: &SpendPolicy, cx: &Cx<'_>, id: &str, policy: &Policy) -> Map<String, Value> {
    let (spent, remaining, monthly, (start, end)) = position(sp, cx, id, policy);
    let mut out = Map::new();
    out.insert("budget_period".into(), json!(policy.period));
    out.insert("budget_cents".into(), json!(policy.budget));
    out.insert("spent_cents".into(), json!(spent));
    out.insert("remaining_budget_cents".into(), json!(remaining));
    out.insert("remaining_monthly_budget_cents".into(), json!(monthly));
    out.insert("period_start".into(), json!(iso(start as f64)));
    out.insert("period_end".into(), json!(iso(end as f64)));
    out
}

/// `POST` a sandbox top-up of the team wallet.
pub fn faucet(sp: &SpendPolicy, cx: &mut Cx<'_>) -> Outcome {
    let amount = cx
        .call
        .and_then(|c| c.body)
        .and_then(|b| b.get("amount_cents"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let team = team_of(sp, cx);
    let team_text = team.as_str().unwrap_or("").to_owned();
    let (entry, _) = sp.book(
        cx,
        &Movement {
            kind: "faucet_credit",
            cents: amount,
            account: None,
            team: &team_text,
            reference: ("faucet", None),
            description: "Sandbox faucet top-up".into(),
        },
    );
    Outcome::Body(json!({
        "object": "faucet_credit", "team_id": team, "amount_cents": amount, "currency": "usd",
        "ledger_entry_id": entry, "wallet": wallet_block(sp, cx.tenant), "created_at": iso(cx.now),
    }))
}

/// An account read, list or update, as the engine answers it, with each account's budget
/// position as of now.
pub fn account(sp: &SpendPolicy, cx: &mut Cx<'_>) -> Outcome {
    let outcome = cx.perform();
    let add = |a: &mut Map<String, Value>, cx: &Cx<'_>| {
        let id = text(a, "id").to_owned();
        let policy = Policy::of(a);
        let mut extra = budget_members(sp, cx, &id, &policy);
        // An account shows its period's position; the month's is the balance's.
        extra.remove("remaining_monthly_budget_cents");
        a.extend(extra);
    };
    match outcome {
        Outcome::Body(mut body) | Outcome::Shown(mut body, _) => {
            match body.get_mut("data") {
                Some(Value::Array(items)) => {
                    for item in items.iter_mut() {
                        if let Value::Object(a) = item {
                            add(a, cx);
                        }
                    }
                }
                _ => {
                    if let Value::Object(a) = &mut body {
                        add(a, cx);
                    }
                }
            }
            Outcome::Body(body)
        }
        other => other,
    }
}
