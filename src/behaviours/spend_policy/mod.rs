//! `spend_policy`: governed spending. A spend request is decided when it is made, by the
//! policy of the account it spends from ([`policy`]): declined by a rule, held for a human
//! above a threshold, or approved. Approval debits a wallet the team holds and writes an
//! append-only ledger entry with the balance after it ([`money`]); an operator approves
//! (re-checking the policy), declines or cancels a held request, and one left past its
//! window is cancelled when the clock passes it. Balances and accounts are answered with
//! the budget position computed from the requests. The records (accounts, requests, ledger
//! entries) are the engine's; the wallets are this behaviour's own data.
//!
//! ```yaml
//! behaviours:
//!   policy:
//!     use: spend_policy
//!     requests: spend-requests     # the spend requests
//!     accounts: accounts           # the accounts whose policy decides
//!     ledger: ledger               # where wallet movements are written
//!     wallet_cents: 100000         # a new team's wallet
//!     approval_url: "https://app.example.com/approvals?id={id}"
//!     answers:                     # operation -> what this behaviour does for it
//!       createSpendRequest: create
//!       approveSpendRequest: approve
//!       declineSpendRequest: decline
//!       cancelSpendRequest: cancel
//!       getBalance: balance
//!       fundSandboxWallet: faucet
//!       getAccount: account
//!       listAccounts: account
//!       updateAccount: account
//! ```

mod answers;
mod money;
pub mod policy;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::state::behaviour::{Behaviour, Cx, OwnData};
use crate::state::call::Outcome;

/// What the behaviour does for an operation the profile binds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Create,
    Approve,
    Decline,
    Cancel,
    Balance,
    Faucet,
    /// An account read, list or update, with its budget position added.
    Account,
}

fn default_wallet() -> i64 {
    100_000
}
fn default_spender() -> String {
    "agent".into()
}

/// Event types for what happens to a request after it is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Events {
    pub approved: String,
    pub declined: String,
    pub cancelled: String,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            approved: "spend_request.approved".into(),
            declined: "spend_request.declined".into(),
            cancelled: "spend_request.cancelled".into(),
        }
    }
}

/// The profile's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub requests: String,
    pub accounts: String,
    pub ledger: String,
    #[serde(default = "default_wallet")]
    pub wallet_cents: i64,
    /// Where a held request is decided by a human; `{id}` is the request's id.
    #[serde(default)]
    pub approval_url: Option<String>,
    /// The role whose credential spends from its own account (others name `account_id`).
    #[serde(default = "default_spender")]
    pub spender_role: String,
    #[serde(default)]
    pub events: Events,
    #[serde(default)]
    pub answers: BTreeMap<String, Role>,
}

/// The behaviour.
pub struct SpendPolicy {
    s: Settings,
    /// Tenant -> wallet balance in cents (made on first use).
    wallets: Mutex<HashMap<String, i64>>,
    /// Changes not yet written to the state log.
    changes: Mutex<Vec<Value>>,
}

/// Builds the behaviour from its profile settings.
pub fn make(settings: &Map<String, Value>) -> Result<Arc<dyn Behaviour>, String> {
    let s: Settings = serde_json::from_value(Value::Object(settings.clone()))
        .map_err(|e| format!("spend_policy settings: {e}"))?;
    Ok(Arc::new(SpendPolicy {
        s,
        wallets: Mutex::new(HashMap::new()),
        changes: Mutex::new(Vec::new()),
    }))
}

impl Behaviour for SpendPolicy {
    fn answer(&self, cx: &mut Cx<'_>) -> Outcome {
        let Some(role) = cx.op_id().and_then(|op| self.s.answers.get(op)).copied() else {
            return Outcome::Stateless;
        };
        match role {
            Role::Create => answers::create(self, cx),
            Role::Approve | Role::Decline | Role::Cancel => answers::act(self, cx, role),
            Role::Balance => answers::balance(self, cx),
            Role::Faucet => answers::faucet(self, cx),
            Role::Account => answers::account(self, cx),
        }
    }

    fn tick(&self, cx: &mut Cx<'_>) {
        answers::expire(self, cx);
    }

    fn reset(&self, tenant: Option<&str>) {
        match tenant {
            Some(t) => {
                self.wallets.lock().remove(t);
            }
            None => self.wallets.lock().clear(),
        }
    }
}

impl OwnData for SpendPolicy {
    fn take_changes(&self) -> Vec<Value> {
        std::mem::take(&mut *self.changes.lock())
    }

    fn apply(&self, change: &Value) {
        if let Some(w) = change.get("wallet")
            && let (Some(t), Some(c)) = (
                w.get("t").and_then(Value::as_str),
                w.get("c").and_then(Value::as_i64),
            )
        {
            self.wallets.lock().insert(t.to_owned(), c);
        }
    }

    fn export(&self) -> Value {
        json!({"wallets": *self.wallets.lock()})
    }

    fn restore(&self, saved: &Value) {
        let mut wallets = self.wallets.lock();
        wallets.clear();
        if let Some(Value::Object(all)) = saved.get("wallets") {
            for (t, c) in all {
                if let Some(c) = c.as_i64() {
                    wallets.insert(t.clone(), c);
                }
            }
        }
    }
}
