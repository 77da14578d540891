//! Rate limits per tenant in fixed windows: a minute by default, or a calendar month (UTC)
//! for APIs that sell a monthly allowance. When the spec (or the profile) declares
//! rate-limit headers (`X-RateLimit-Limit`, `-Remaining`, `-Reset`, in any case), every
//! response carries them with real values. A limit comes from `--rate-limit N` or the
//! profile's `rate_limit.limit`; a tester can give one tenant its own allowance, or use some
//! of it up, through the admin API, and request N+1 in a window gets 429 with `Retry-After`.

use chrono::{Datelike, TimeZone, Utc};
use parking_lot::Mutex;

use super::behaviour::Usage;
use crate::hashing::HashMap;
use crate::profile::{Profile, Window};
use crate::spec::Spec;

/// The limit advertised when none is enforced.
const NOMINAL_LIMIT: u64 = 1000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Requests per window per tenant; `None` advertises a nominal limit without enforcing it.
    pub limit: Option<u64>,
    window: Window,
    /// The spec's spelling of (limit, remaining, reset), when it declares them.
    headers: Option<(String, String, String)>,
    /// Tenants given an allowance of their own.
    own: Mutex<HashMap<String, u64>>,
    /// Per tenant: the window's start and the requests counted in it.
    windows: Mutex<HashMap<String, (i64, u64)>>,
}

/// The verdict for one request.
pub struct Verdict {
    pub allowed: bool,
    pub headers: Vec<(String, String)>,
    /// Seconds until the window resets (for `Retry-After`).
    pub retry_after: i64,
    /// When it resets (unix seconds).
    pub reset: i64,
    /// The allowance that was used up.
    pub limit: u64,
}

impl RateLimiter {
    pub fn new(spec: &Spec, profile: &Profile) -> Self {
        let headers = match &profile.rate_limit.headers {
            Some(h) => Some((h.limit.clone(), h.remaining.clone(), h.reset.clone())),
            None => declared_headers(spec),
        };
        Self {
            limit: profile.rate_limit.limit,
            window: profile.rate_limit.window,
            headers,
            own: Mutex::new(HashMap::default()),
            windows: Mutex::new(HashMap::default()),
        }
    }

    /// The window's length in words, for messages.
    pub fn window_name(&self) -> &'static str {
        match self.window {
            Window::Minute => "minute",
            Window::Month => "month",
        }
    }

    /// `[start, end)` of the window holding `now`.
    fn bounds(&self, now: i64) -> (i64, i64) {
        match self.window {
            Window::Minute => {
                let start = now - now.rem_euclid(60);
                (start, start + 60)
            }
            Window::Month => month_bounds(now),
        }
    }

    fn limit_of(&self, tenant: &str) -> Option<u64> {
        self.own.lock().get(tenant).copied().or(self.limit)
    }

    /// Gives `tenant` an allowance of its own (`None`: the default again) and, if `used`
    /// is given, sets how much of the current window it has used.
    pub fn set(&self, tenant: &str, limit: Option<u64>, used: Option<u64>, now: i64) {
        match limit {
            Some(l) => self.own.lock().insert(tenant.to_owned(), l),
            None => self.own.lock().remove(tenant),
        };
        if let Some(used) = used {
            let (start, _) = self.bounds(now);
            self.windows.lock().insert(tenant.to_owned(), (start, used));
        }
    }

    /// Forgets every tenant's counts and allowances.
    pub fn clear(&self) {
        self.own.lock().clear();
        self.windows.lock().clear();
    }

    /// `tenant`'s use of the current window, without counting anything.
    pub fn usage(&self, tenant: &str, now: i64) -> Usage {
        let (start, end) = self.bounds(now);
        let used = self
            .windows
            .lock()
            .get(tenant)
            .filter(|(s, _)| *s == start)
            .map_or(0, |(_, n)| *n);
        Usage {
            used,
            limit: self.limit_of(tenant),
            reset: end,
        }
    }

    /// Counts a request of `tenant` at `now` (unix seconds).
    pub fn check(&self, tenant: &str, now: i64) -> Verdict {
        let enforced = self.limit_of(tenant);
        let (start, reset) = self.bounds(now);
        if enforced.is_none() && self.headers.is_none() {
            return Verdict {
                allowed: true,
                headers: Vec::new(),
                retry_after: 0,
                reset,
                limit: 0,
            };
        }
        let limit = enforced.unwrap_or(NOMINAL_LIMIT);
        let mut windows = self.windows.lock();
        let entry = windows.entry(tenant.to_owned()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        let allowed = enforced.is_none_or(|l| entry.1 < l);
        if allowed {
            entry.1 += 1;
        }
        let headers = self
            .headers
            .as_ref()
            .map(|(l, r, s)| {
                vec![
                    (l.clone(), limit.to_string()),
                    (r.clone(), limit.saturating_sub(entry.1).to_string()),
                    (s.clone(), reset.to_string()),
                ]
            })
            .unwrap_or_default();
        Verdict {
            allowed,
            headers,
            retry_after: (reset - now).max(1),
            reset,
            limit,
        }
    }
}

/// The rate-limit headers the spec's responses declare, if all three are there.
fn declared_headers(spec: &Spec) -> Option<(String, String, String)> {
    let mut names: [Option<String>; 3] = [None, None, None];
    for h in spec
        .operations
        .iter()
        .flat_map(|o| &o.responses)
        .flat_map(|r| &r.headers)
    {
        let lower = h.name.to_ascii_lowercase();
        if !lower.contains("ratelimit") && !lower.contains("rate-limit") {
            continue;
        }
        let slot = if lower.ends_with("limit") {
            0
        } else if lower.ends_with("remaining") {
            1
        } else if lower.ends_with("reset") {
            2
        } else {
            continue;
        };
        names[slot].get_or_insert_with(|| h.name.clone());
    }
    let [l, r, s] = names;
    Some((l?, r?, s?))
}

/// The calendar month (UTC) holding `now`, as unix seconds.
fn month_bounds(now: i64) -> (i64, i64) {
    let Some(t) = Utc.timestamp_opt(now, 0).single() else {
        return (now, now + 1);
    };
    let first = |y: i32, m: u32| {
        Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
            .single()
            .map_or(now, |d| d.timestamp())
    };
    let (y, m) = (t.year(), t.month());
    let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (first(y, m), first(next.0, next.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monthly_windows_start_on_the_first_in_utc() {
        // 2024-01-15T10:30:00Z
        let (start, end) = month_bounds(1_705_314_600);
        assert_eq!(start, 1_704_067_200); // 2024-01-01
        assert_eq!(end, 1_706_745_600); // 2024-02-01
        let (start, end) = month_bounds(1_734_000_000); // December 2024
        assert_eq!((start, end), (1_733_011_200, 1_735_689_600));
    }

    #[test]
    fn a_tenant_of_its_own_runs_out_of_its_own_allowance() {
        let limiter = RateLimiter {
            limit: Some(100),
            window: Window::Month,
            ..RateLimiter::default()
        };
        let now = 1_705_314_600;
        limiter.set("small", Some(2), None, now);
        assert!(limiter.check("small", now).allowed);
        assert!(limiter.check("small", now).allowed);
        let refused = limiter.check("small", now);
        assert!(!refused.allowed);
        assert_eq!(refused.reset, 1_706_745_600);
        assert!(limiter.check("other", now).allowed);
        assert_eq!(limiter.usage("other", now).used, 1);
        limiter.set("small", None, Some(0), now);
        assert!(limiter.check("small", now).allowed);
    }
}
