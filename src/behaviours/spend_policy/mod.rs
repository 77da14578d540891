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
mod settings;
mod store;
mod transfers;

use serde_json::{Value, json};

pub use self::settings::{Events, Role, Settings};
pub use self::store::{SpendPolicy, make};
use crate::state::behaviour::{Behaviour, Cx, OwnData};
use crate::state::call::Outcome;

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
            _ => transfers::answer(self, cx, role),
        }
    }

    fn tick(&self, cx: &mut Cx<'_>) {
        answers::expire(self, cx);
    }

    fn reset(&self, tenant: Option<&str>) {
        *self.index.lock() = None;
        self.accounts.lock().clear();
        match tenant {
            Some(t) => {
                self.wallets.lock().remove(t);
                self.addresses.lock().remove(t);
            }
            None => {
                self.wallets.lock().clear();
                self.addresses.lock().clear();
            }
        }
    }
}

impl OwnData for SpendPolicy {
    fn take_changes(&self) -> Vec<Value> {
        std::mem::take(&mut *self.changes.lock())
    }

    fn apply(&self, change: &Value) {
        if let Some(a) = change.get("address")
            && let (Some(t), Some(addr)) = (
                a.get("t").and_then(Value::as_str),
                a.get("a").and_then(Value::as_str),
            )
        {
            self.addresses
                .lock()
                .entry(t.to_owned())
                .or_default()
                .push(addr.to_owned());
        }
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
        json!({"wallets": *self.wallets.lock(), "addresses": *self.addresses.lock()})
    }

    fn restore(&self, saved: &Value) {
        *self.index.lock() = None;
        self.accounts.lock().clear();
        let mut wallets = self.wallets.lock();
        wallets.clear();
        let mut addresses = self.addresses.lock();
        addresses.clear();
        if let Some(Value::Object(all)) = saved.get("addresses") {
            for (t, list) in all {
                let list = list.as_array().into_iter().flatten();
                let list: Vec<String> = list.filter_map(Value::as_str).map(str::to_owned).collect();
                addresses.insert(t.clone(), list);
            }
        }
        if let Some(Value::Object(all)) = saved.get("wallets") {
            for (t, c) in all {
                if let Some(c) = c.as_i64() {
                    wallets.insert(t.clone(), c);
                }
            }
        }
    }
}
