//! Lifecycles: a resource's status field moves through the states its profile declares.
//! Timed transitions fire a number of sandbox seconds after the state was entered (a branch
//! is chosen by the resource's scenario, else deterministically from the seed); triggered
//! transitions fire when an operation is called on the resource, and calling it from a
//! state with no such transition is refused without changing anything. What entering a
//! state does (members set, other records changed) is the engine's, which sees the store.

use serde_json::{Map, Value};

use super::store::Meta;
use crate::generate::stable_hash;
use crate::profile::{Lifecycle, Transition, matches};

/// How many transitions one call may apply (a guard against cycles of zero-delay steps).
const MAX_STEPS: usize = 64;

/// One applied transition: (from, to, virtual time it happened).
pub type Step = (String, String, f64);

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
    if meta.held {
        return None;
    }
    let timed: Vec<&Transition> = lc
        .transitions
        .iter()
        .filter(|t| t.after.is_some() && t.from.contains(state))
        .collect();
    if let Some(t) = timed.iter().find(|t| {
        t.scenario
            .as_ref()
            .zip(meta.scenario.as_deref())
            .is_some_and(|(s, m)| s.contains(m))
    }) {
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

fn enter(lc: &Lifecycle, body: &mut Map<String, Value>, meta: &mut Meta, to: &str, at: f64) {
    body.insert(lc.field.clone(), Value::String(to.to_owned()));
    meta.entered_at = Some(at);
}

/// Puts a new resource in its initial state.
pub fn start(lc: &Lifecycle, body: &mut Map<String, Value>, meta: &mut Meta, now: f64) {
    if let Some(from) = &lc.scenario_from {
        meta.scenario = body.get(from).and_then(Value::as_str).map(str::to_owned);
    }
    match &lc.initial {
        Some(initial) => enter(lc, body, meta, initial, now),
        None => meta.entered_at = Some(now),
    }
}

/// Moves a resource to `to` at once (an effect of something else happening).
pub fn force(
    lc: &Lifecycle,
    body: &mut Map<String, Value>,
    meta: &mut Meta,
    to: &str,
    now: f64,
) -> Option<Step> {
    let from = state_of(lc, body).unwrap_or_default();
    (from != to).then(|| {
        enter(lc, body, meta, to, now);
        (from, to.to_owned(), now)
    })
}

/// Applies every timed transition that is due at `now` (all of them when `instant`).
pub fn advance(
    lc: &Lifecycle,
    body: &mut Map<String, Value>,
    meta: &mut Meta,
    now: f64,
    instant: bool,
    seed_key: &str,
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
        let at = entered + t.after.as_ref().map_or(0.0, |a| a.seconds(body));
        if !instant && at > now {
            break;
        }
        let at = if instant { now } else { at };
        let to = t.to.clone();
        enter(lc, body, meta, &to, at);
        steps.push((state, to, at));
    }
    steps
}

/// When the resource's next timed transition is due (virtual seconds), if it has one.
pub fn due_at(
    lc: &Lifecycle,
    body: &Map<String, Value>,
    meta: &Meta,
    seed_key: &str,
) -> Option<f64> {
    let state = state_of(lc, body)?;
    let t = next_timed(lc, &state, meta, seed_key)?;
    let entered = meta.entered_at?;
    Some(entered + t.after.as_ref().map_or(0.0, |a| a.seconds(body)))
}

/// The outcome of calling operation `op` on a resource with this lifecycle.
pub enum Triggered {
    /// The operation drives no transition.
    NotALifecycleOperation,
    Applied(Step),
    /// Not allowed from the current state; nothing changed.
    Illegal(String),
    /// The request asks for a transition the lifecycle does not have (a bad `action`).
    Unknown(String),
}

pub fn trigger(
    lc: &Lifecycle,
    op: &str,
    request: Option<&Value>,
    body: &mut Map<String, Value>,
    meta: &mut Meta,
    now: f64,
) -> Triggered {
    let for_op: Vec<&Transition> = lc
        .transitions
        .iter()
        .filter(|t| t.on.as_deref() == Some(op))
        .collect();
    if for_op.is_empty() {
        return Triggered::NotALifecycleOperation;
    }
    let candidates: Vec<&&Transition> = for_op
        .iter()
        .filter(|t| matches(&t.when, request.and_then(Value::as_object)))
        .collect();
    if candidates.is_empty() {
        let wanted: Vec<String> = for_op
            .iter()
            .flat_map(|t| t.when.iter().map(|(k, v)| format!("{k} {}", v.describe())))
            .collect();
        return Triggered::Unknown(format!(
            "the request must name one of: {}",
            wanted.join("; ")
        ));
    }
    let state = state_of(lc, body).unwrap_or_default();
    match candidates.iter().find(|t| t.from.contains(&state)) {
        Some(t) => {
            let to = t.to.clone();
            enter(lc, body, meta, &to, now);
            Triggered::Applied((state, to, now))
        }
        None => Triggered::Illegal(format!("not allowed while its {} is '{state}'", lc.field)),
    }
}
