//! The policy a spend request is decided by: an account's limits (pause, largest single
//! purchase, merchant allow and deny lists, a budget per calendar period, an approval
//! threshold) applied in a fixed order, and the calendar periods budgets count in.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use serde_json::{Map, Value};

/// What a policy decides for a new request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approved,
    NeedsApproval,
    /// With the reason, in the API's words.
    Declined(&'static str),
}

impl Decision {
    pub fn status(&self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::NeedsApproval => "needs_approval",
            Self::Declined(_) => "declined",
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::Approved => "Spend request approved",
            Self::NeedsApproval => "Amount requires approval",
            Self::Declined(why) => why,
        }
    }
}

pub const PAUSED: &str = "Spend account is paused";
pub const TOO_LARGE: &str = "Amount exceeds the maximum purchase size";
pub const MERCHANT: &str = "Merchant is not allowed by policy";
pub const OVER_BUDGET: &str = "Amount would exceed the budget for this period";

/// An account's policy, read from its record.
#[derive(Debug, Clone)]
pub struct Policy {
    pub paused: bool,
    pub budget: i64,
    pub period: String,
    pub max_transaction: Option<i64>,
    pub threshold: Option<i64>,
    pub allow: Option<Vec<String>>,
    pub deny: Vec<String>,
    pub ttl_seconds: i64,
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

fn names(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_lowercase)
            .collect()
    })
}

impl Policy {
    pub fn of(account: &Map<String, Value>) -> Self {
        Self {
            paused: account.get("status").and_then(Value::as_str) == Some("paused"),
            budget: int(account.get("budget_cents")).unwrap_or(0),
            period: account
                .get("budget_period")
                .and_then(Value::as_str)
                .unwrap_or("monthly")
                .to_owned(),
            max_transaction: int(account.get("max_transaction_cents")),
            threshold: int(account.get("approval_threshold_cents")),
            allow: names(account.get("merchant_allowlist")).filter(|a| !a.is_empty()),
            deny: names(account.get("merchant_denylist")).unwrap_or_default(),
            ttl_seconds: int(account.get("approval_ttl_seconds")).unwrap_or(86_400),
        }
    }

    /// The rules that decline, in order; `None` when none does.
    pub fn violation(&self, amount: i64, merchant: &str, spent: i64) -> Option<&'static str> {
        let merchant = merchant.to_lowercase();
        if self.paused {
            return Some(PAUSED);
        }
        if self.max_transaction.is_some_and(|m| amount > m) {
            return Some(TOO_LARGE);
        }
        let allowed = self.allow.as_ref().is_none_or(|a| a.contains(&merchant));
        if self.deny.contains(&merchant) || !allowed {
            return Some(MERCHANT);
        }
        if spent + amount > self.budget {
            return Some(OVER_BUDGET);
        }
        None
    }

    /// The decision for a new request of `amount` at `merchant`, with `spent` already
    /// approved in the period.
    pub fn decide(&self, amount: i64, merchant: &str, spent: i64) -> Decision {
        if let Some(why) = self.violation(amount, merchant, spent) {
            return Decision::Declined(why);
        }
        if self.threshold.is_some_and(|t| amount > t) {
            return Decision::NeedsApproval;
        }
        Decision::Approved
    }
}

/// The UTC calendar period (`daily`, `weekly` from Monday, `monthly`) holding `at`.
pub fn period_bounds(period: &str, at: i64) -> (i64, i64) {
    let now: DateTime<Utc> = Utc.timestamp_opt(at, 0).single().unwrap_or_default();
    let midnight = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp())
    };
    let day = now.date_naive();
    match period {
        "daily" => {
            let start = midnight(day);
            (start, start + 86_400)
        }
        "weekly" => {
            let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
            let start = midnight(monday);
            (start, start + 7 * 86_400)
        }
        _ => {
            let first = day.with_day(1).unwrap_or(day);
            let next = if first.month() == 12 {
                first
                    .with_year(first.year() + 1)
                    .and_then(|d| d.with_month(1))
            } else {
                first.with_month(first.month() + 1)
            };
            (midnight(first), next.map_or(i64::MAX, midnight))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(extra: Value) -> Policy {
        let mut account = json!({"status": "active", "budget_cents": 50000, "budget_period": "monthly",
            "max_transaction_cents": 25000, "approval_threshold_cents": 10000,
            "merchant_allowlist": null, "merchant_denylist": []});
        if let (Some(a), Some(e)) = (account.as_object_mut(), extra.as_object()) {
            a.extend(e.clone());
        }
        Policy::of(account.as_object().expect("an object"))
    }

    #[test]
    fn rules_apply_in_order() {
        let p = policy(json!({}));
        assert_eq!(p.decide(5000, "AWS", 0), Decision::Approved);
        assert_eq!(p.decide(15000, "AWS", 0), Decision::NeedsApproval);
        assert_eq!(p.decide(30000, "AWS", 0), Decision::Declined(TOO_LARGE));
        // Over budget declines even above the threshold.
        assert_eq!(
            p.decide(20000, "AWS", 40000),
            Decision::Declined(OVER_BUDGET)
        );
        let deny = policy(json!({"merchant_denylist": ["Casino"]}));
        assert_eq!(deny.decide(100, "casino", 0), Decision::Declined(MERCHANT));
        let allow = policy(json!({"merchant_allowlist": ["AWS"]}));
        assert_eq!(allow.decide(100, "GCP", 0), Decision::Declined(MERCHANT));
        let paused = policy(json!({"status": "paused"}));
        assert_eq!(paused.decide(30000, "AWS", 0), Decision::Declined(PAUSED));
    }

    #[test]
    fn periods_follow_the_utc_calendar() {
        // 2026-05-14T10:00:00Z, a Thursday.
        let at = 1_778_752_800;
        assert_eq!(period_bounds("monthly", at), (1_777_593_600, 1_780_272_000));
        assert_eq!(period_bounds("daily", at), (1_778_716_800, 1_778_803_200));
        assert_eq!(period_bounds("weekly", at), (1_778_457_600, 1_779_062_400));
        // December rolls into January.
        let dec = 1_797_033_600; // 2026-12-12
        assert_eq!(period_bounds("monthly", dec).1, 1_798_761_600);
    }
}
