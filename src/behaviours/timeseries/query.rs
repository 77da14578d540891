//! Queries over readings: raw rows (newest first by default, paged, with `total`), or
//! aggregated per source and per UTC-aligned interval (`avg sum min max count first last`
//! by `minute hour day week month`), filtered by time range, source, metadata and fields.
//! Without an explicit aggregation, more than 500 matching readings of sources that allow
//! it are averaged over the smallest interval that gives at most 500 rows
//! (`downsamplingApplied`). Values keep full float precision.

use serde_json::{Map, Value, json};

use super::ingest::point_id;
use super::series::{Series, number};
use super::store::TimeSeries;
use super::time::{self, Interval};
use crate::state::behaviour::Cx;
use crate::state::call::Outcome;

/// Rows above which readings are averaged automatically.
const DOWNSAMPLE_ABOVE: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agg {
    Avg,
    Sum,
    Min,
    Max,
    Count,
    First,
    Last,
}

impl Agg {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "avg" => Self::Avg,
            "sum" => Self::Sum,
            "min" => Self::Min,
            "max" => Self::Max,
            "count" => Self::Count,
            "first" => Self::First,
            "last" => Self::Last,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Avg => "avg",
            Self::Sum => "sum",
            Self::Min => "min",
            Self::Max => "max",
            Self::Count => "count",
            Self::First => "first",
            Self::Last => "last",
        }
    }
}

/// A query, read from the request body.
struct Query {
    container: String,
    sources: Vec<String>,
    start: Option<i64>,
    end: Option<i64>,
    fields: Option<Vec<String>>,
    metadata: Map<String, Value>,
    limit: usize,
    offset: usize,
    desc: bool,
    agg: Option<Agg>,
    group: Option<Interval>,
}

fn read(body: &Value, ts: &TimeSeries) -> Result<Query, String> {
    let filters = body.get("filters").cloned().unwrap_or_else(|| json!({}));
    let pick = |k: &str| {
        body.get(k)
            .filter(|v| !v.is_null())
            .or_else(|| filters.get(k))
            .cloned()
    };
    let when = |k: &str| match filters.get(k).and_then(Value::as_str) {
        None => Ok(None),
        Some(t) => time::parse(t)
            .map(Some)
            .ok_or(format!("filters.{k}: '{t}' is not an ISO 8601 time")),
    };
    let mut sources: Vec<String> = Vec::new();
    if let Some(s) = filters.get(&ts.s.source_member).and_then(Value::as_str) {
        sources.push(s.to_owned());
    }
    for s in filters
        .get("dataSourceIds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(s) = s.as_str().filter(|s| !sources.iter().any(|x| x == s)) {
            sources.push(s.to_owned());
        }
    }
    let count = |k: &str, default: usize| {
        filters
            .get(k)
            .and_then(Value::as_u64)
            .map_or(default, |n| n as usize)
    };
    let q = Query {
        container: body
            .get(&ts.s.container_member)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        sources,
        start: when("startTime")?,
        end: when("endTime")?,
        fields: filters.get("fields").and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        }),
        metadata: filters
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        limit: count("limit", 100).clamp(1, 1000),
        offset: count("offset", 0),
        desc: filters.get("order").and_then(Value::as_str) != Some("asc"),
        agg: pick("aggregation").and_then(|v| v.as_str().and_then(Agg::parse)),
        group: pick("groupBy").and_then(|v| v.as_str().and_then(Interval::parse)),
    };
    if let (Some(s), Some(e)) = (q.start, q.end)
        && e < s
    {
        return Err("filters.endTime may not precede filters.startTime".into());
    }
    Ok(q)
}

/// One row of the answer, with what it sorts by.
struct Row {
    ts: i64,
    source: usize,
    position: usize,
    body: Option<Value>,
}

/// Per field of one interval: what the aggregations need.
#[derive(Clone, Default)]
struct Acc {
    present: u64,
    numbers: u64,
    sum: f64,
    min: f64,
    max: f64,
    first: Option<Value>,
    last: Option<Value>,
}

impl Acc {
    fn add(&mut self, value: Option<Value>, num: Option<f64>) {
        let Some(v) = value else { return };
        self.present += 1;
        if let Some(x) = num {
            if self.numbers == 0 {
                (self.min, self.max) = (x, x);
            } else {
                self.min = self.min.min(x);
                self.max = self.max.max(x);
            }
            self.numbers += 1;
            self.sum += x;
        }
        if self.first.is_none() {
            self.first = Some(v.clone());
        }
        self.last = Some(v);
    }

    fn result(&self, agg: Agg) -> Option<Value> {
        let whole = |x: f64| number(x, x.fract() == 0.0);
        match agg {
            Agg::Count => Some(json!(self.present)),
            Agg::First => self.first.clone(),
            Agg::Last => self.last.clone(),
            _ if self.numbers == 0 => None,
            Agg::Avg => Some(number(self.sum / self.numbers as f64, false)),
            Agg::Sum => Some(whole(self.sum)),
            Agg::Min => Some(whole(self.min)),
            Agg::Max => Some(whole(self.max)),
        }
    }
}

/// The readings of one source a query matches, in time order.
fn matching(series: &mut Series, from: i64, to: i64, metadata: &Map<String, Value>) -> Vec<usize> {
    series.prepare();
    let mut at = series.between(from, to);
    if !metadata.is_empty() {
        at.retain(|i| {
            let m = series.metadata(*i);
            metadata.iter().all(|(k, v)| m.get(k) == Some(v))
        });
    }
    at
}

/// The field positions a query shows (all, or those `fields` names).
fn shown_fields(series: &Series, wanted: Option<&Vec<String>>) -> Vec<usize> {
    series
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, n)| wanted.is_none_or(|w| w.contains(n)))
        .map(|(i, _)| i)
        .collect()
}

/// Aggregates one source's matching readings per interval (`None`: one row for all).
fn aggregate(
    series: &Series,
    at: &[usize],
    (agg, group): (Agg, Option<Interval>),
    fields: &[usize],
    single_start: Option<i64>,
    (source_member, source_id): (&str, &str),
) -> Vec<(i64, Value)> {
    let mut rows = Vec::new();
    let mut current: Option<(i64, u64, Vec<Acc>)> = None;
    let flush = |rows: &mut Vec<(i64, Value)>, (start, count, accs): (i64, u64, Vec<Acc>)| {
        let values: Map<String, Value> = fields
            .iter()
            .zip(&accs)
            .filter_map(|(f, a)| Some((series.fields()[*f].clone(), a.result(agg)?)))
            .collect();
        let row = json!({
            "timestamp": time::format(start),
            source_member: source_id,
            "count": count,
            "values": values,
        });
        rows.push((start, row));
    };
    for i in at {
        let ts = series.ts(*i);
        let key = match group {
            Some(g) => g.start(ts),
            None => single_start.unwrap_or(i64::MIN),
        };
        if current.as_ref().is_some_and(|(k, ..)| *k != key)
            && let Some(done) = current.take()
        {
            flush(&mut rows, done);
        }
        let entry = current.get_or_insert_with(|| {
            let start = if group.is_none() && key == i64::MIN {
                ts
            } else {
                key
            };
            (start, 0, vec![Acc::default(); fields.len()])
        });
        if group.is_none() && entry.0 == i64::MIN {
            entry.0 = ts;
        }
        entry.1 += 1;
        for (acc, f) in entry.2.iter_mut().zip(fields) {
            acc.add(series.value(*f, *i), series.num(*f, *i));
        }
    }
    if let Some(done) = current {
        flush(&mut rows, done);
    }
    rows
}

/// The interval auto-downsampling picks for a range of `span` ms.
fn downsample_interval(span: i64) -> Interval {
    Interval::ALL
        .into_iter()
        .find(|i| (span.max(1) + i.nominal_ms() - 1) / i.nominal_ms() <= DOWNSAMPLE_ABOVE as i64)
        .unwrap_or(Interval::Month)
}

/// How the rows are made: aggregated as asked, downsampled automatically, or raw.
struct Plan {
    /// An aggregation or interval was asked for.
    explicit: bool,
    /// Too many raw points from downsampling sources: they are averaged per `auto`.
    downsample: bool,
    auto: Option<Interval>,
}

impl Plan {
    fn decide(
        q: &Query,
        records: &[Map<String, Value>],
        matched: &[Vec<usize>],
        earliest: Option<i64>,
        to: i64,
    ) -> Self {
        let explicit = q.agg.is_some() || q.group.is_some();
        let auto_points: usize = records
            .iter()
            .zip(matched)
            .filter(|(r, _)| downsampling(r))
            .map(|(_, m)| m.len())
            .sum();
        let downsample = !explicit && auto_points > DOWNSAMPLE_ABOVE;
        let auto = downsample.then(|| downsample_interval(to - q.start.or(earliest).unwrap_or(to)));
        Self {
            explicit,
            downsample,
            auto,
        }
    }

    /// The aggregation and interval for one source.
    fn for_source(
        &self,
        q: &Query,
        record: &Map<String, Value>,
    ) -> (Option<Agg>, Option<Interval>) {
        if self.explicit {
            (Some(q.agg.unwrap_or(Agg::Avg)), q.group)
        } else if self.downsample && downsampling(record) {
            (Some(Agg::Avg), self.auto)
        } else {
            (None, None)
        }
    }

    /// The names the metadata reports.
    fn names(&self, q: &Query) -> (Option<&'static str>, Option<&'static str>) {
        if self.explicit {
            (
                Some(q.agg.unwrap_or(Agg::Avg).name()),
                q.group.map(Interval::name),
            )
        } else if self.downsample {
            (Some("avg"), self.auto.map(Interval::name))
        } else {
            (None, None)
        }
    }
}

fn downsampling(record: &Map<String, Value>) -> bool {
    record.get("downsampling").and_then(Value::as_bool) != Some(false)
}

/// A query's container record, its sources' ids and their records.
type Scope = (Map<String, Value>, Vec<String>, Vec<Map<String, Value>>);

/// The query's container and sources, as records (404 when one is missing).
fn scope(ts: &TimeSeries, cx: &Cx<'_>, q: &Query) -> Result<Scope, Outcome> {
    let Some(container) = TimeSeries::record(cx, &ts.s.containers, &q.container) else {
        return Err(Outcome::Problem(
            404,
            format!("{} not found", ts.s.labels.container),
        ));
    };
    let sources = if q.sources.is_empty() {
        ts.sources_of(cx, &q.container)
    } else {
        q.sources.clone()
    };
    let mut records = Vec::new();
    for s in &sources {
        match ts.source_in(cx, &q.container, s) {
            Some(r) => records.push(r),
            None => {
                return Err(Outcome::Problem(
                    404,
                    format!("{} not found", ts.s.labels.source),
                ));
            }
        }
    }
    Ok((container, sources, records))
}

/// `POST` a query.
pub fn run(ts: &TimeSeries, cx: &mut Cx<'_>) -> Outcome {
    let Some(body) = cx.call.and_then(|c| c.body).cloned() else {
        return Outcome::Stateless;
    };
    let q = match read(&body, ts) {
        Ok(q) => q,
        Err(why) => return Outcome::Problem(400, why),
    };
    let (container, sources, records) = match scope(ts, cx, &q) {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let now_ms = (cx.now * 1000.0).floor() as i64;
    let from = q.start.unwrap_or(i64::MIN).max(TimeSeries::visible_from(
        cx,
        &container,
        &ts.s.retention_member,
    ));
    let to = q.end.unwrap_or(now_ms);
    let tenant = cx.tenant.to_owned();
    let mut data = ts.data.lock();
    let mut empty = std::collections::HashMap::new();
    let all = data.get_mut(&tenant).map_or(&mut empty, |t| &mut t.series);
    let matched: Vec<Vec<usize>> = sources
        .iter()
        .map(|s| {
            all.get_mut(s)
                .map(|series| matching(series, from, to, &q.metadata))
                .unwrap_or_default()
        })
        .collect();
    let earliest = sources
        .iter()
        .zip(&matched)
        .filter_map(|(s, m)| Some(all.get(s)?.ts(*m.first()?)))
        .min();
    let plan = Plan::decide(&q, &records, &matched, earliest, to);
    let mut rows = Vec::new();
    for (n, (s, m)) in sources.iter().zip(&matched).enumerate() {
        if let Some(series) = all.get(s) {
            let how = plan.for_source(&q, &records[n]);
            rows.extend(source_rows(ts, &q, how, (n, s), series, m));
        }
    }
    let order = |a: &Row, b: &Row| {
        (a.ts, &sources[a.source], a.position).cmp(&(b.ts, &sources[b.source], b.position))
    };
    rows.sort_by(|a, b| if q.desc { order(b, a) } else { order(a, b) });
    let total = rows.len();
    let page: Vec<Value> = rows
        .into_iter()
        .skip(q.offset)
        .take(q.limit)
        .map(|row| match row.body {
            Some(b) => b,
            None => {
                let source = &sources[row.source];
                raw_row(ts, &tenant, &q, source, all.get(source), row.position)
            }
        })
        .collect();
    drop(data);
    answer(&q, &plan, page, total, to)
}

/// One source's rows: its aggregates per interval, or its raw readings (made into bodies
/// only for the page).
fn source_rows(
    ts: &TimeSeries,
    q: &Query,
    (agg, group): (Option<Agg>, Option<Interval>),
    (n, id): (usize, &String),
    series: &Series,
    matched: &[usize],
) -> Vec<Row> {
    let Some(agg) = agg else {
        return matched
            .iter()
            .map(|i| Row {
                ts: series.ts(*i),
                source: n,
                position: *i,
                body: None,
            })
            .collect();
    };
    let fields = shown_fields(series, q.fields.as_ref());
    let source = (ts.s.source_member.as_str(), id.as_str());
    aggregate(series, matched, (agg, group), &fields, q.start, source)
        .into_iter()
        .map(|(start, body)| Row {
            ts: start,
            source: n,
            position: 0,
            body: Some(body),
        })
        .collect()
}

/// The answer: the page, its metadata and its pagination.
fn answer(q: &Query, plan: &Plan, page: Vec<Value>, total: usize, to: i64) -> Outcome {
    let count = page.len();
    let has_more = q.offset + count < total;
    let (agg_name, group_name) = plan.names(q);
    Outcome::Body(json!({
        "data": page,
        "metadata": {
            "count": count, "total": total, "limit": q.limit, "offset": q.offset, "hasMore": has_more,
            "aggregation": agg_name, "groupBy": group_name, "downsamplingApplied": plan.downsample,
            "startTime": q.start.map(time::format), "endTime": time::format(to),
        },
        "pagination": {"limit": q.limit, "offset": q.offset, "total": total, "hasMore": has_more},
    }))
}

/// A stored reading as a raw row.
fn raw_row(
    ts: &TimeSeries,
    tenant: &str,
    q: &Query,
    source: &str,
    series: Option<&Series>,
    i: usize,
) -> Value {
    let Some(series) = series else {
        return Value::Null;
    };
    let mut values = series.values(i);
    if let Some(wanted) = &q.fields {
        values.retain(|k, _| wanted.contains(k));
    }
    json!({
        "_id": point_id(tenant, source, i, series.received(i)),
        ts.s.container_member.clone(): q.container,
        ts.s.source_member.clone(): source,
        "timestamp": time::format(series.ts(i)),
        "values": values,
        "metadata": series.metadata(i),
        "createdAt": time::format(series.received(i) * 1000),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_picks_the_smallest_interval_under_500_rows() {
        // A week at 1 Hz: 10,080 minutes is too many, 168 hours is not.
        assert_eq!(downsample_interval(7 * 86_400_000), Interval::Hour);
        assert_eq!(downsample_interval(3_600_000), Interval::Minute);
        assert_eq!(downsample_interval(400 * 86_400_000), Interval::Day);
        assert_eq!(downsample_interval(20 * 365 * 86_400_000), Interval::Month);
    }
}
