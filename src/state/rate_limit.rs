//! Rate limits per tenant in a fixed one-minute window. When the spec declares rate-limit
//! headers (`X-RateLimit-Limit`, `-Remaining`, `-Reset`, in any case), every response
//! carries them with real values; with `--rate-limit N`, request N+1 in a window gets 429
//! with `Retry-After`.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::spec::Spec;

/// The window length, in seconds.
const WINDOW: i64 = 60;
/// The limit advertised when none is enforced.
const NOMINAL_LIMIT: u32 = 1000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Requests per window per tenant; `None` advertises a nominal limit without enforcing it.
    pub limit: Option<u32>,
    /// The spec's spelling of (limit, remaining, reset), when it declares them.
    headers: Option<(String, String, String)>,
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

/// The verdict for one request.
pub struct Verdict {
    pub allowed: bool,
    pub headers: Vec<(String, String)>,
    /// Seconds until the window resets (for `Retry-After`).
    pub retry_after: i64,
}

impl RateLimiter {
    pub fn new(spec: &Spec, profile: &crate::profile::Profile) -> Self {
        if let Some(h) = &profile.rate_limit.headers {
            let headers = Some((h.limit.clone(), h.remaining.clone(), h.reset.clone()));
            return Self {
                limit: None,
                headers,
                windows: Mutex::new(HashMap::new()),
            };
        }
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
        let headers = match (l, r, s) {
            (Some(l), Some(r), Some(s)) => Some((l, r, s)),
            _ => None,
        };
        Self {
            limit: None,
            headers,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request of `tenant` at `now` (unix seconds).
    pub fn check(&self, tenant: &str, now: i64) -> Verdict {
        if self.limit.is_none() && self.headers.is_none() {
            return Verdict {
                allowed: true,
                headers: Vec::new(),
                retry_after: 0,
            };
        }
        let limit = self.limit.unwrap_or(NOMINAL_LIMIT);
        let start = now - now.rem_euclid(WINDOW);
        let mut windows = self.windows.lock();
        let entry = windows.entry(tenant.to_owned()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        let allowed = self.limit.is_none_or(|l| entry.1 < l);
        if allowed {
            entry.1 += 1;
        }
        let reset = start + WINDOW;
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
        }
    }
}
