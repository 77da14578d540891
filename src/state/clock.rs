//! The sandbox's virtual clock: real time by default, optionally scaled (`--time-scale`),
//! and under test control through the admin API (freeze, resume, advance). Every timestamp
//! the sandbox writes and every timed transition reads this clock, never the wall clock.

use parking_lot::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
struct State {
    /// Virtual unix seconds at `anchor`.
    base: f64,
    anchor: Instant,
    scale: f64,
    frozen: Option<f64>,
}

#[derive(Debug)]
pub struct Clock {
    state: Mutex<State>,
}

impl Clock {
    pub fn new(scale: f64) -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Self {
            state: Mutex::new(State {
                base: wall,
                anchor: Instant::now(),
                scale: scale.max(0.0),
                frozen: None,
            }),
        }
    }

    /// Virtual unix time, in seconds.
    pub fn now(&self) -> f64 {
        let s = self.state.lock();
        s.frozen
            .unwrap_or_else(|| s.base + s.anchor.elapsed().as_secs_f64() * s.scale)
    }

    /// Whole virtual unix seconds.
    pub fn now_secs(&self) -> i64 {
        self.now().floor() as i64
    }

    pub fn freeze(&self) {
        let now = self.now();
        self.state.lock().frozen = Some(now);
    }

    pub fn resume(&self) {
        let now = self.now();
        let mut s = self.state.lock();
        s.frozen = None;
        s.base = now;
        s.anchor = Instant::now();
    }

    /// Moves time forward by `seconds` (frozen or not).
    pub fn advance(&self, seconds: f64) {
        let mut s = self.state.lock();
        match &mut s.frozen {
            Some(t) => *t += seconds.max(0.0),
            None => s.base += seconds.max(0.0),
        }
    }

    pub fn describe(&self) -> serde_json::Value {
        let now = self.now();
        let s = self.state.lock();
        serde_json::json!({
            "now": now,
            "iso": chrono::DateTime::from_timestamp(now.floor() as i64, 0).map(|t| t.to_rfc3339()),
            "frozen": s.frozen.is_some(),
            "scale": s.scale,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_time_moves_only_when_advanced() {
        let c = Clock::new(1.0);
        c.freeze();
        let t = c.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(c.now(), t);
        c.advance(10.0);
        assert_eq!(c.now(), t + 10.0);
        c.resume();
        assert!(c.now() >= t + 10.0);
    }
}
