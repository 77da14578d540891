//! What the `spend_policy` behaviour holds: its settings, every team's wallet and its
//! receive addresses.

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::policy::Policy;
use super::settings::Settings;
use crate::hashing::HashMap;
use crate::state::behaviour::Behaviour;
use crate::state::store::Body;

/// The behaviour.
pub struct SpendPolicy {
    pub(super) s: Settings,
    /// Tenant -> wallet balance in cents (made on first use).
    pub(super) wallets: Mutex<HashMap<String, i64>>,
    /// Tenant -> its receive addresses, the current one last.
    pub(super) addresses: Mutex<HashMap<String, Vec<String>>>,
    /// Changes not yet written to the state log.
    pub(super) changes: Mutex<Vec<Value>>,
    /// What decisions need without reading every request again: built from the store on
    /// first use, kept up to date after, dropped when state is reset or replaced.
    pub(super) index: Mutex<Option<Index>>,
    /// (tenant, account id) -> the account's body as last read and what decisions need of
    /// it, so a decision parses the account only when it changed.
    pub(super) accounts: Mutex<HashMap<(String, String), KnownAccount>>,
}

/// An account's body as a decision last read it, and what the decision took from it.
pub type KnownAccount = (Body, Arc<AccountTerms>);

/// What a decision needs of an account.
#[derive(Debug)]
pub struct AccountTerms {
    pub policy: Policy,
    pub team_id: Value,
}

/// Approvals per account and the requests waiting for a decision.
#[derive(Debug, Default)]
pub struct Index {
    /// (tenant, account) -> the cents of its approvals, by decision time.
    pub approvals: HashMap<(String, String), Approvals>,
    /// (expires at, tenant, request id) of each held request.
    pub held: std::collections::BTreeSet<(i64, String, String)>,
}

/// One account's approvals in decision-time order, with running totals, so what was spent
/// in a period is two binary searches, not a walk over every approval.
#[derive(Debug, Default)]
pub struct Approvals {
    /// (decided at, cents approved up to and including this one).
    running: Vec<(i64, i64)>,
}

impl Approvals {
    /// Adds an approval of `cents` decided at `at` (in order, unless the clock went back).
    pub fn add(&mut self, at: i64, cents: i64) {
        // Usually the newest: appended without a search.
        let i = match self.running.last() {
            Some(&(last, _)) if last > at => self.running.partition_point(|(t, _)| *t <= at),
            _ => self.running.len(),
        };
        let before = i.checked_sub(1).map_or(0, |j| self.running[j].1);
        self.running.insert(i, (at, before + cents));
        for entry in &mut self.running[i + 1..] {
            entry.1 += cents;
        }
    }

    /// Cents approved with a decision in [start, end).
    pub fn sum(&self, start: i64, end: i64) -> i64 {
        let upto = |t: i64| match (self.running.first(), self.running.last()) {
            // Usually the period began before the first approval and ends after the last:
            // nothing to search (a long list's search reads memory no decision has in cache).
            (Some(&(first, _)), _) if first >= t => 0,
            (_, Some(&(last, total))) if last < t => total,
            _ => {
                let i = self.running.partition_point(|(at, _)| *at < t);
                i.checked_sub(1).map_or(0, |j| self.running[j].1)
            }
        };
        upto(end) - upto(start)
    }
}

/// Builds the behaviour from its profile settings.
pub fn make(settings: &Map<String, Value>) -> Result<Arc<dyn Behaviour>, String> {
    let s: Settings = serde_json::from_value(Value::Object(settings.clone()))
        .map_err(|e| format!("spend_policy settings: {e}"))?;
    Ok(Arc::new(SpendPolicy {
        s,
        wallets: Mutex::new(HashMap::default()),
        addresses: Mutex::new(HashMap::default()),
        index: Mutex::new(None),
        changes: Mutex::new(Vec::new()),
        accounts: Mutex::new(HashMap::default()),
    }))
}

#[cfg(test)]
mod tests {
    use super::Approvals;

    #[test]
    fn period_sums_count_each_approval_once_whatever_the_order_added() {
        let mut a = Approvals::default();
        for (at, cents) in [(10, 100), (20, 200), (30, 300), (15, 50)] {
            a.add(at, cents);
        }
        assert_eq!(a.sum(0, 100), 650);
        assert_eq!(a.sum(10, 20), 150, "[10, 20) holds 10 and 15");
        assert_eq!(a.sum(20, 31), 500);
        assert_eq!(a.sum(31, 40), 0);
        assert_eq!(
            a.sum(30, 31),
            300,
            "the last approval, its instant included"
        );
        assert_eq!(a.sum(0, 10), 0, "the first approval, its instant excluded");
        assert_eq!(Approvals::default().sum(0, 100), 0);
        a.add(20, 1);
        assert_eq!(a.sum(20, 21), 201, "two approvals at one instant");
    }
}
