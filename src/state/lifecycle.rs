//! Lifecycles: a resource's status field moves through the states its profile declares.
//! Timed transitions fire a number of sandbox seconds after the state was entered (a branch
//! is chosen by the resource's scenario, else deterministically from the seed); triggered
//! transitions fire when an operation is called on the resource, and calling it from a
//! state with no such transition is refused without changing anything. Effects on entering
//! a state set members (`$now` is the entry time in the member's own format).

use serde_json::{Map, Value};

use super::profile::{Lifecycle, Transition};
use super::store::Meta;
use crate::generate::stable_hash;

/// How many transitions one call may apply (a guard against cycles of zero-delay steps).
const MAX_STEPS: usize = 64;

/// One applied transition: (from, to, virtual time it happened).
pub type Step = (String, String, f64);

/// Formats `$now` for a member; the caller knows the schema.
pub trait TimeFormat {
    fn time_value(&self, member: &str, at: f64) -> Value;
}

fn state_of(lc: &Lifecycle, body: &Map<String, Value>) -> Option<String> {
    body.get(&lc.field)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The timed transition a resource in `state` will take, if any.
fn next_timed<'a>(
    lc: &'a Lifecycle,
    state: &str,
    meta: &Meta,
    seed_key: &str,
) -> Option<&'a Transition> {
    let timed: Vec<&Transition> = lc
        .transitions
        .iter()
        .filter(|t| t.after.is_some() && t.from.contains(state))
        .collect();
    if let Some(t) = timed
        .iter()
        .find(|t| t.scenario.is_some() && t.scenario == meta.scenario)
    {
        return Some(t);
    }
    let plain: Vec<&&Transition> = timed.iter().filter(|t| t.scenario.is_none()).collect();
    match plain.len() {
        0 => None,
        1 => Some(plain[0]),
        n => {
            let i = (stable_hash(&format!("{seed_key} {state}")) % n as u64) as usize;
            Some(plain[i])
        }
    }
}

fn enter(
    lc: &Lifecycle,
    body: &mut Map<String, Value>,
    meta: &mut Meta,
    to: &str,
    at: f64,
    fmt: &dyn TimeFormat,
) {
    body.insert(lc.field.clone(), Value::String(to.to_owned()));
    meta.entered_at = Some(at);
    if let Some(effects) = lc.on_enter.get(to) {
        for (member, value) in &effects.set {
            let v = if value.as_str() == Some("$now") {
                fmt.time_value(member, at)
            } else {
                value.clone()
            };
            body.insert(member.clone(), v);
        }
    }
}

/// Puts a new resource in its initial state.
pub fn start(
    lc: &Lifecycle,
    body: &mut Map<String, Value>,
    meta: &mut Meta,
    now: f64,
    fmt: &dyn TimeFormat,
) {
    match &lc.initial {
        Some(initial) => enter(lc, body, meta, initial, now, fmt),
        None => meta.entered_at = Some(now),
    }
}

/// Applies every timed transition that is due at `now` (all of them when `instant`).
pub fn advance(
    lc: &Lifecycle,
    body: &mut Map<String, Value>,
    meta: &mut Meta,
    now: f64,
    instant: bool,
    seed_key: &str,
    fmt: &dyn TimeFormat,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for _ in 0..MAX_STEPS {
        let Some(state) = state_of(lc, body) else {
            break;
        };
        let Some(t) = next_timed(lc, &state, meta, seed_key) else {
            break;
        };
        let entered = meta.entered_at.unwrap_or(now);
        let at = entered + t.after.unwrap_or(0.0);
        if !instant && at > now {
            break;
        }
        let at = if instant { now } else { at };
        let to = t.to.clone();
        enter(lc, body, meta, &to, at, fmt);
        steps.push((state, to, at));
    }
    steps
}

/// The outcome of calling operation `op` on a resource with this lifecycle.
pub enum Triggered {
    /// The operation drives no transition.
    NotALifecycleOperation,
    Applied(Step),
    /// Not allowed from the current state; nothing changed.
    Illegal(String),
}

pub fn trigger(
    lc: &Lifecycle,
    op: &str,
    body: &mut Map<String, Value>,
    meta: &mut Meta,
    now: f64,
    fmt: &dyn TimeFormat,
) -> Triggered {
    let candidates: Vec<&Transition> = lc
        .transitions
        .iter()
        .filter(|t| t.on.as_deref() == Some(op))
        .collect();
    if candidates.is_empty() {
        return Triggered::NotALifecycleOperation;
    }
    let state = state_of(lc, body).unwrap_or_default();
    match candidates.iter().find(|t| t.from.contains(&state)) {
        Some(t) => {
            let to = t.to.clone();
            enter(lc, body, meta, &to, now, fmt);
            Triggered::Applied((state, to, now))
        }
        None => Triggered::Illegal(format!("not allowed while its {} is '{state}'", lc.field)),
    }
}
