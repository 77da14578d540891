//! Summaries computed from what was stored: per container over a period (`24h`, `7d`,
//! `30d`, `90d`: readings in and out of the window, per-source counts and numeric
//! averages, minimums and maximums, readings per hour zero-filled, alert firings per rule),
//! and per tenant (totals, this month's calls against the allowance, storage, recent
//! activity).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::store::{Firing, TimeSeries};
use super::time::{self, Interval};
use crate::state::behaviour::Cx;
use crate::state::call::Outcome;

/// The period a summary covers, in seconds (default a week).
fn period_seconds(name: &str) -> (String, i64) {
    let (n, unit) = name.split_at(name.len().saturating_sub(1));
    let n: i64 = n.parse().unwrap_or(0);
    match unit {
        "h" if n > 0 => (name.to_owned(), n * 3600),
        "d" if n > 0 => (name.to_owned(), n * 86_400),
        _ => ("7d".to_owned(), 7 * 86_400),
    }
}

/// Per-field numeric statistics over a window.
#[derive(Default)]
struct Stats {
    n: HashMap<String, (f64, f64, f64, u64)>,
}

impl Stats {
    fn add(&mut self, field: &str, x: f64) {
        let e = self.n.entry(field.to_owned()).or_insert((0.0, x, x, 0));
        e.0 += x;
        e.1 = e.1.min(x);
        e.2 = e.2.max(x);
        e.3 += 1;
    }

    fn members(&self, order: &[String]) -> (Value, Value, Value) {
        let (mut avg, mut min, mut max) = (Map::new(), Map::new(), Map::new());
        for f in order {
            if let Some((sum, lo, hi, n)) = self.n.get(f) {
                avg.insert(f.clone(), json!(sum / *n as f64));
                min.insert(f.clone(), json!(lo));
                max.insert(f.clone(), json!(hi));
            }
        }
        (Value::Object(avg), Value::Object(min), Value::Object(max))
    }
}

/// The answer's outer member (`analytics`, `overview`), from the operation's example.
fn outer_member(cx: &Cx<'_>, fallback: &str) -> String {
    super::ingest::example_members(cx, &[])
        .keys()
        .next()
        .cloned()
        .unwrap_or_else(|| fallback.to_owned())
}

/// `GET` a container's summary.
pub fn container(ts: &TimeSeries, cx: &mut Cx<'_>) -> Outcome {
    let Some(id) = super::store::path_id(cx) else {
        return Outcome::Stateless;
    };
    let Some(record) = TimeSeries::record(cx, &ts.s.containers, &id) else {
        return Outcome::Problem(404, format!("{} not found", ts.s.labels.container));
    };
    let period = cx
        .call
        .and_then(|c| c.query.iter().find(|(k, _)| k == "period"))
        .map_or("7d", |(_, v)| v.as_str());
    let (period, seconds) = period_seconds(period);
    let now_ms = (cx.now * 1000.0).floor() as i64;
    let window_from = now_ms - seconds * 1000;
    let retained_from = TimeSeries::visible_from(cx, &record, &ts.s.retention_member);
    let sources = ts.sources_of(cx, &id);
    let names: Vec<Value> = sources
        .iter()
        .map(|s| {
            TimeSeries::record(cx, &ts.s.sources, s)
                .and_then(|r| r.get("name").cloned())
                .unwrap_or(Value::Null)
        })
        .collect();
    let mut hours: HashMap<i64, u64> = HashMap::new();
    let (mut total, mut in_period) = (0usize, 0usize);
    let mut per_source = Vec::new();
    {
        let mut data = ts.data.lock();
        for (s, name) in sources.iter().zip(names) {
            let Some(one) = data.get_mut(cx.tenant).and_then(|t| t.series.get_mut(s)) else {
                per_source.push(json!({"_id": s, "name": name, "dataPointCount": 0,
                    "lastDataPoint": null, "avgValues": {}, "minValues": {}, "maxValues": {}}));
                continue;
            };
            one.prepare();
            total += one.count_between(retained_from, i64::MAX);
            let at = one.between(window_from.max(retained_from), now_ms);
            in_period += at.len();
            let mut stats = Stats::default();
            for i in &at {
                *hours.entry(Interval::Hour.start(one.ts(*i))).or_default() += 1;
                for (f, field) in one.fields().iter().enumerate() {
                    if let Some(x) = one.num(f, *i) {
                        stats.add(field, x);
                    }
                }
            }
            let (avg, min, max) = stats.members(one.fields());
            per_source.push(json!({"_id": s, "name": name, "dataPointCount": at.len(),
                "lastDataPoint": one.last_ts().map(time::format),
                "avgValues": avg, "minValues": min, "maxValues": max}));
        }
    }
    let mut per_hour = Vec::new();
    let mut hour = Interval::Hour.start(window_from);
    while hour <= now_ms {
        per_hour.push(
            json!({"hour": time::format(hour), "count": hours.get(&hour).copied().unwrap_or(0)}),
        );
        hour += 3_600_000;
    }
    let days = (seconds as f64 / 86_400.0).max(1.0);
    let (triggered, by_rule) = firings(ts, cx, Some(&id), window_from / 1000);
    let active = ts.s.rules.as_deref().map_or(0, |r| {
        cx.store.collection(cx.tenant, r).map_or(0, |c| {
            c.iter()
                .filter(|(_, rec)| {
                    rec.body
                        .get(&ts.s.container_member)
                        .and_then(|v| v.as_str().map(str::to_owned))
                        == Some(id.clone())
                        && rec
                            .body
                            .get("status")
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .as_deref()
                            == Some("active")
                })
                .count()
        })
    });
    let container_key = ts.s.labels.container.to_lowercase();
    let answer = json!({
        container_key: {"_id": id, "name": record.get("name")},
        "period": period,
        "summary": {
            "totalDataPoints": total,
            "dataPointsInPeriod": in_period,
            "avgDataPointsPerDay": (in_period as f64 / days).round() as u64,
            "dataSources": sources.len(),
            "activeAlerts": active,
        },
        "dataSourceStats": per_source,
        "ingestionRate": {"dataPointsPerHour": per_hour},
        "alertActivity": {"totalTriggered": triggered, "byRule": by_rule},
    });
    Outcome::Body(json!({ outer_member(cx, "analytics"): answer }))
}

/// Firings since `since` (unix seconds), of one container or all: how many, and per rule.
fn firings(
    ts: &TimeSeries,
    cx: &Cx<'_>,
    container: Option<&str>,
    since: i64,
) -> (usize, Vec<Value>) {
    let data = ts.data.lock();
    let list: Vec<&Firing> = data
        .get(cx.tenant)
        .map(|t| {
            t.firings
                .iter()
                .filter(|f| f.at >= since && container.is_none_or(|c| f.container == c))
                .collect()
        })
        .unwrap_or_default();
    let mut per: Vec<(String, String, usize)> = Vec::new();
    for f in &list {
        match per.iter_mut().find(|(r, ..)| *r == f.rule) {
            Some(e) => e.2 += 1,
            None => per.push((f.rule.clone(), f.name.clone(), 1)),
        }
    }
    per.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
    let by_rule = per
        .into_iter()
        .map(|(rule, name, count)| json!({"alertRuleId": rule, "name": name, "count": count}))
        .collect();
    (list.len(), by_rule)
}

/// Bytes in binary units with up to one decimal (`52428800` -> `50 MB`).
fn human_bytes(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let rounded = (value * 10.0).round() / 10.0;
    let text = if rounded.fract() == 0.0 {
        format!("{}", rounded as u64)
    } else {
        format!("{rounded:.1}")
    };
    format!("{text} {}", units[unit])
}

fn count_of(cx: &Cx<'_>, resource: Option<&str>) -> usize {
    resource
        .and_then(|r| cx.store.collection(cx.tenant, r))
        .map_or(0, |c| c.len())
}

/// `GET` the tenant's overview.
pub fn overview(ts: &TimeSeries, cx: &mut Cx<'_>) -> Outcome {
    let now = cx.now.floor() as i64;
    let containers: Vec<String> = cx
        .store
        .collection(cx.tenant, &ts.s.containers)
        .map(|c| c.iter().map(|(id, _)| id.to_string()).collect())
        .unwrap_or_default();
    let points: usize = containers.iter().map(|c| ts.retained(cx, c)).sum();
    let (bytes, last_ingest, recent) = {
        let data = ts.data.lock();
        let all = data
            .get(cx.tenant)
            .map(|t| t.series.values().collect::<Vec<_>>())
            .unwrap_or_default();
        let bytes: u64 = all.iter().map(|s| s.stored_bytes).sum();
        let last = all.iter().filter_map(|s| s.last_received).max();
        let recent: usize = all
            .iter()
            .map(|s| s.received_all().filter(|r| *r >= now - 86_400).count())
            .sum();
        (bytes, last, recent)
    };
    let last_fired = ts
        .data
        .lock()
        .get(cx.tenant)
        .and_then(|t| t.firings.iter().map(|f| f.at).max());
    let (fired_today, _) = firings(ts, cx, None, now - 86_400);
    let usage = cx.engine.usage(cx.tenant);
    let percentage = usage.limit.filter(|l| *l > 0).map_or(0.0, |l| {
        (usage.used as f64 * 1000.0 / l as f64).round() / 10.0
    });
    let settings = &ts.s.overview;
    let mut plan = settings
        .get("plan")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    plan.insert("maxApiCalls".into(), json!(usage.limit));
    let org_name = settings
        .get("organization")
        .and_then(|o| o.get("name"))
        .cloned()
        .unwrap_or_else(|| json!("Sandbox Organization"));
    let keys_resource = settings.get("keys").and_then(Value::as_str);
    let answer = json!({
        "organization": {"_id": crate::state::expr::digest_hex(cx.tenant, 24), "name": org_name},
        "totals": {
            "buckets": containers.len(),
            "dataSources": count_of(cx, Some(&ts.s.sources)),
            "dataPoints": points,
            "alertRules": count_of(cx, ts.s.rules.as_deref()),
            "apiKeys": count_of(cx, keys_resource) + 1,
        },
        "usage": {
            "apiCallsThisMonth": usage.used,
            "apiCallsLimit": usage.limit,
            "apiCallsPercentage": percentage,
            "storageUsedBytes": bytes,
            "storageUsedFormatted": human_bytes(bytes),
        },
        "plan": plan,
        "recentActivity": {
            "lastDataIngestion": last_ingest.map(|s| time::format(s * 1000)),
            "lastAlertTriggered": last_fired.map(|s| time::format(s * 1000)),
            "dataPointsLast24h": recent,
            "alertsTriggeredLast24h": fired_today,
        },
    });
    Outcome::Body(json!({ outer_member(cx, "overview"): answer }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_reads_in_binary_units() {
        assert_eq!(human_bytes(52_428_800), "50 MB");
        assert_eq!(human_bytes(1536), "1.5 KB");
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(period_seconds("24h"), ("24h".to_owned(), 86_400));
        assert_eq!(period_seconds("nonsense").0, "7d");
    }
}
