//! The wallet a team spends from, and its ledger: every movement changes the balance and
//! writes one append-only entry carrying the balance after it, so the entries always add
//! up to the wallet.

use serde_json::{Map, Value, json};

use super::store::SpendPolicy;
use crate::state::behaviour::Cx;

/// One movement of a wallet.
pub struct Movement<'a> {
    /// `spend`, `faucet_credit`, ...
    pub kind: &'a str,
    /// Signed: negative takes money out.
    pub cents: i64,
    pub account: Option<&'a str>,
    pub team: &'a str,
    /// What caused it: (type, id).
    pub reference: (&'a str, Option<&'a str>),
    pub description: String,
}

impl SpendPolicy {
    /// The tenant's wallet balance (a new team's starts full).
    pub fn wallet(&self, tenant: &str) -> i64 {
        let mut wallets = self.wallets.lock();
        match wallets.get(tenant) {
            Some(balance) => *balance,
            None => *wallets
                .entry(tenant.to_owned())
                .or_insert(self.s.wallet_cents),
        }
    }

    /// Moves money and writes the ledger entry; returns the entry's id and the balance
    /// after. The caller has checked that a debit is covered.
    pub fn book(&self, cx: &mut Cx<'_>, m: &Movement<'_>) -> (String, i64) {
        let tenant = cx.tenant.to_owned();
        self.book_for(cx, &tenant, m)
    }

    /// The same, in `tenant`'s wallet and ledger (the other side of a transfer).
    pub fn book_for(&self, cx: &mut Cx<'_>, tenant: &str, m: &Movement<'_>) -> (String, i64) {
        let after = {
            let mut wallets = self.wallets.lock();
            match wallets.get_mut(tenant) {
                Some(balance) => {
                    *balance += m.cents;
                    *balance
                }
                // A new team's wallet starts full.
                None => {
                    let after = self.s.wallet_cents + m.cents;
                    wallets.insert(tenant.to_owned(), after);
                    after
                }
            }
        };
        if cx.engine.keeps_changes() {
            self.changes
                .lock()
                .push(json!({"wallet": {"t": tenant, "c": after}}));
        }
        let mut entry = Map::new();
        entry.insert("object".into(), json!("ledger_entry"));
        entry.insert("team_id".into(), json!(m.team));
        entry.insert("account_id".into(), json!(m.account));
        entry.insert("type".into(), json!(m.kind));
        entry.insert("amount_cents".into(), json!(m.cents));
        entry.insert("currency".into(), json!("usd"));
        entry.insert("wallet_balance_after_cents".into(), json!(after));
        entry.insert(
            "reference".into(),
            json!({"type": m.reference.0, "id": m.reference.1}),
        );
        entry.insert("description".into(), Value::String(m.description.clone()));
        let id = cx
            .engine
            .create(cx.store, cx.spec, tenant, &self.s.ledger, entry);
        (id, after)
    }
}
