//! Alert rules over readings: a rule's condition is parsed when the rule is made (a 400
//! naming `condition` when it cannot be understood), evaluated on every reading its source
//! ingests, in time order, and on every clock tick for silence ("no data received for 30
//! minutes"). A rule fires when its condition holds (for as long as its `for` clause asks),
//! at most once per cooldown on the virtual clock: the rule's record is updated (`state`,
//! `lastTriggeredAt`, `triggerCount`) and an `alert.triggered` webhook is delivered to its
//! `webhookUrl`, signed and retried like every delivery. A reading that no longer matches
//! puts the rule back to `ok`.

use serde_json::{Map, Value, json};

use super::conditions::{self, Condition, Op};
use super::series::NewPoint;
use super::store::{Firing, TimeSeries};
use super::time;
use crate::generate::stable_hash;
use crate::state::behaviour::{Cx, Refusal};

/// The event type of a firing.
const FIRED: &str = "alert.triggered";

/// A new rule: its condition parsed (or refused), its source checked, its state fresh.
pub fn admit_rule(
    ts: &TimeSeries,
    cx: &Cx<'_>,
    record: &mut Map<String, Value>,
) -> Result<(), Refusal> {
    // `naturalLanguageQuery` is the older name of `condition`.
    if !record.contains_key("condition")
        && let Some(text) = record.remove("naturalLanguageQuery")
    {
        record.insert("condition".into(), text);
    }
    record.remove("naturalLanguageQuery");
    let Some(text) = record
        .get("condition")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(Refusal::new(400, "condition is required").at("condition"));
    };
    let container = record
        .get(&ts.s.container_member)
        .and_then(Value::as_str)
        .unwrap_or("");
    let source = record
        .get(&ts.s.source_member)
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(source) = ts.source_in(cx, container, source) else {
        let message = format!("{} not found", ts.s.labels.source);
        return Err(Refusal::new(404, message).at(&ts.s.source_member));
    };
    let fields: Vec<String> = source
        .get("schema")
        .and_then(Value::as_object)
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default();
    let parsed = conditions::parse(&text, &fields)
        .map_err(|why| Refusal::new(400, format!("condition: {why}")).at("condition"))?;
    record.insert("parsedCondition".into(), parsed.to_json());
    for (member, fresh) in [
        ("status", json!("active")),
        ("cooldownMinutes", json!(5)),
        ("state", json!("ok")),
        ("triggerCount", json!(0)),
        ("lastTriggeredAt", Value::Null),
    ] {
        record.entry(member).or_insert(fresh);
    }
    Ok(())
}

/// A rule as evaluation sees it.
struct Rule {
    id: String,
    record: Map<String, Value>,
    condition: Condition,
}

impl Rule {
    fn text(&self, member: &str) -> &str {
        self.record
            .get(member)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn triggered(&self) -> bool {
        self.text("state") == "triggered"
    }

    /// Whether the cooldown since the last firing has passed at `now` (unix seconds).
    fn cooled(&self, now: f64) -> bool {
        let cooldown = self
            .record
            .get("cooldownMinutes")
            .and_then(Value::as_f64)
            .unwrap_or(5.0);
        let last = self
            .record
            .get("lastTriggeredAt")
            .and_then(Value::as_str)
            .and_then(time::parse);
        last.is_none_or(|ms| now - ms as f64 / 1000.0 >= cooldown * 60.0)
    }
}

/// The active rules watching `source`.
fn rules_of(ts: &TimeSeries, cx: &Cx<'_>, tenant: &str, source: Option<&str>) -> Vec<Rule> {
    let Some(coll) =
        ts.s.rules
            .as_deref()
            .and_then(|r| cx.store.collection(tenant, r))
    else {
        return Vec::new();
    };
    coll.iter()
        .filter_map(|(id, r)| {
            let record = r.body.map();
            let watches = record.get(&ts.s.source_member).and_then(Value::as_str);
            if source.is_some_and(|s| watches != Some(s)) {
                return None;
            }
            if record
                .get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| s != "active")
            {
                return None;
            }
            let condition = Condition::from_json(record.get("parsedCondition")?)?;
            Some(Rule {
                id: id.to_string(),
                record,
                condition,
            })
        })
        .collect()
}

/// Evaluates the rules watching `source` on newly stored readings (`at`: their positions).
pub fn evaluate(
    ts: &TimeSeries,
    cx: &mut Cx<'_>,
    source: &str,
    container: &str,
    points: &[NewPoint],
    at: &[usize],
) {
    let tenant = cx.tenant.to_owned();
    let mut rules = rules_of(ts, cx, &tenant, Some(source));
    if rules.is_empty() {
        return;
    }
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|i| (points[*i].ts, at[*i]));
    for rule in &mut rules {
        for i in &order {
            step(ts, cx, rule, container, &points[*i]);
        }
    }
}

/// One reading against one rule.
fn step(ts: &TimeSeries, cx: &mut Cx<'_>, rule: &mut Rule, container: &str, point: &NewPoint) {
    let key = (cx.tenant.to_owned(), rule.id.clone());
    let (field, op, threshold, minutes) = match &rule.condition {
        Condition::Threshold {
            field,
            op,
            value,
            minutes,
        } => (field.clone(), *op, *value, *minutes),
        // A reading ends a silence.
        Condition::NoData { .. } => {
            if rule.triggered() {
                set(ts, cx, rule, json!({"state": "ok"}));
            }
            return;
        }
    };
    let reading = point.values.get(&field);
    let holds = match (reading.and_then(Value::as_f64), reading) {
        (Some(v), _) => op.holds(v, threshold),
        (None, Some(other)) if matches!(op, Op::Eq | Op::Ne) => {
            let equal = other.as_f64() == Some(threshold);
            (op == Op::Eq) == equal
        }
        _ => return,
    };
    if !holds {
        ts.holding.lock().remove(&key);
        if rule.triggered() {
            set(ts, cx, rule, json!({"state": "ok"}));
        }
        return;
    }
    let since = *ts.holding.lock().entry(key).or_insert(point.ts);
    if minutes.is_some_and(|m| ((point.ts - since) as f64) < m * 60_000.0) {
        return;
    }
    if !rule.cooled(cx.now) {
        if !rule.triggered() {
            set(ts, cx, rule, json!({"state": "triggered"}));
        }
        return;
    }
    let current = reading.cloned().unwrap_or(Value::Null);
    let data_point = json!({
        "timestamp": time::format(point.ts),
        "values": point.values,
        "metadata": point.metadata,
    });
    fire(
        ts,
        cx,
        rule,
        container,
        (
            current,
            super::series::number(threshold, threshold.fract() == 0.0),
            op.symbol(),
        ),
        data_point,
    );
}

/// Changes members of the rule's record (and the evaluation's copy of it).
fn set(ts: &TimeSeries, cx: &mut Cx<'_>, rule: &mut Rule, changes: Value) {
    let Some(changes) = changes.as_object().cloned() else {
        return;
    };
    rule.record.extend(changes.clone());
    if let Some(resource) = ts.s.rules.as_deref() {
        let tenant = cx.tenant.to_owned();
        cx.engine
            .update(cx.store, &tenant, resource, &rule.id, changes);
    }
}

/// The rule fires: its record says so, the firing is remembered for the summaries, and the
/// `alert.triggered` payload goes to its `webhookUrl`.
fn fire(
    ts: &TimeSeries,
    cx: &mut Cx<'_>,
    rule: &mut Rule,
    container: &str,
    reading: (Value, Value, &str),
    data_point: Value,
) {
    let now = cx.now.floor() as i64;
    let now_text = time::format(now * 1000);
    let count = rule
        .record
        .get("triggerCount")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        + 1;
    set(
        ts,
        cx,
        rule,
        json!({"state": "triggered", "lastTriggeredAt": now_text, "triggerCount": count}),
    );
    let tenant = cx.tenant.to_owned();
    let name = rule.text("name").to_owned();
    ts.data
        .lock()
        .entry(tenant.clone())
        .or_default()
        .firings
        .push(Firing {
            rule: rule.id.clone(),
            name: name.clone(),
            container: container.to_owned(),
            at: now,
        });
    ts.changes.lock().push(
        json!({"firing": {"t": tenant, "rule": rule.id, "name": name, "c": container, "at": now}}),
    );
    let source = rule.text(&ts.s.source_member).to_owned();
    let source_name = TimeSeries::record(cx, &ts.s.sources, &source)
        .and_then(|s| s.get("name").cloned())
        .unwrap_or(Value::Null);
    let (current, threshold, operator) = reading;
    let payload = json!({
        "event": FIRED,
        "timestamp": now_text,
        "webhookId": format!("{now:08x}{:016x}", stable_hash(&format!("{tenant}/{}/{count}", rule.id))),
        ts.s.container_member.clone(): container,
        "data": {
            "alertId": rule.id,
            "alertName": name,
            ts.s.source_member.clone(): source,
            "dataSourceName": source_name,
            "condition": rule.text("condition"),
            "currentValue": current,
            "threshold": threshold,
            "operator": operator,
            "triggeredAt": now_text,
            "dataPoint": data_point,
        }
    });
    let url = rule.text("webhookUrl").to_owned();
    if !url.is_empty() {
        cx.engine.deliver(&tenant, &url, FIRED, &payload);
    }
}

/// On a clock tick: rules watching for silence fire once their source has been quiet for
/// their duration (subject to the cooldown).
pub fn silence(ts: &TimeSeries, cx: &mut Cx<'_>) {
    if ts.s.rules.is_none() {
        return;
    }
    let tenants: Vec<String> = cx.store.tenants.keys().cloned().collect();
    for tenant in tenants {
        for mut rule in rules_of(ts, cx, &tenant, None) {
            let Condition::NoData { minutes } = rule.condition else {
                continue;
            };
            let source = rule.text(&ts.s.source_member).to_owned();
            let last = ts
                .data
                .lock()
                .get(&tenant)
                .and_then(|t| t.series.get(&source))
                .and_then(|s| s.last_received)
                .map(|s| s as f64)
                .or_else(|| {
                    rule.record
                        .get("createdAt")
                        .and_then(Value::as_str)
                        .and_then(time::parse)
                        .map(|ms| ms as f64 / 1000.0)
                });
            let quiet = last.is_some_and(|l| cx.now - l >= minutes * 60.0);
            if !quiet || !rule.cooled(cx.now) {
                continue;
            }
            let container = rule.text(&ts.s.container_member).to_owned();
            let mut at = Cx {
                spec: cx.spec,
                api: cx.api,
                engine: cx.engine,
                store: cx.store,
                tenant: &tenant,
                call: None,
                op: None,
                resource: cx.resource,
                now: cx.now,
            };
            let threshold = super::series::number(minutes, minutes.fract() == 0.0);
            fire(
                ts,
                &mut at,
                &mut rule,
                &container,
                (Value::Null, threshold, "no_data"),
                Value::Null,
            );
        }
    }
}
