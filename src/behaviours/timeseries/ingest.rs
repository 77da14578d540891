//! Ingest: one reading (`POST /api/data`) or a batch of up to 1,000, all or nothing. The
//! spec's schema has already checked the shapes (ids, ISO times, value types in general);
//! here each reading is checked against its data source: the source must exist in the
//! named container, the container must take readings, and each value must have the type
//! the source declares for its field. Every bad item is named in the error's details.

use serde_json::{Map, Value, json};

use super::series::NewPoint;
use super::store::TimeSeries;
use super::{alerts, time};
use crate::compiled::problem::FieldError;
use crate::generate::stable_hash;
use crate::state::behaviour::Cx;
use crate::state::call::Outcome;

/// A reading's id: an ObjectId-shaped 24 hex digits, the receipt time then a digest of
/// where it is stored, so the same point always shows the same id.
pub fn point_id(tenant: &str, source: &str, index: usize, received: i64) -> String {
    let digest = stable_hash(&format!("{tenant}/{source}/{index}"));
    format!(
        "{:08x}{digest:016x}",
        received.clamp(0, i64::from(u32::MAX))
    )
}

/// The success example's members other than `skip` (the `message` an API sends along).
pub fn example_members(cx: &Cx<'_>, skip: &[&str]) -> Map<String, Value> {
    let Some(oi) = cx.op else {
        return Map::new();
    };
    let op = &cx.spec.operations[oi];
    let media = op.success().and_then(|(_, r)| {
        r.content
            .iter()
            .find(|m| crate::spec::catalog::is_json(&m.media_type))
    });
    let example = media.and_then(|m| {
        crate::compiled::error_style::examples_of(cx.spec, m)
            .first()
            .and_then(|e| e.as_object())
            .cloned()
    });
    let mut out = example.unwrap_or_default();
    out.retain(|k, _| !skip.contains(&k.as_str()));
    out
}

fn error(location: &'static str, field: String, message: String, code: &str) -> FieldError {
    FieldError {
        location,
        field,
        message,
        code: code.to_owned(),
    }
}

/// A reading checked and ready to store, with the source it goes to.
struct Checked {
    source: String,
    point: NewPoint,
}

impl TimeSeries {
    /// The container named in the body, which must exist and take readings.
    fn open_container(&self, cx: &Cx<'_>, id: &str) -> Result<Map<String, Value>, Outcome> {
        let label = &self.s.labels.container;
        let Some(container) = Self::record(cx, &self.s.containers, id) else {
            return Err(Outcome::Problem(404, format!("{label} not found")));
        };
        let closed = self.s.closed_status.as_deref();
        if closed.is_some() && container.get("status").and_then(Value::as_str) == closed {
            return Err(Outcome::Problem(
                409,
                format!("{label} is {}", closed.unwrap_or_default()),
            ));
        }
        Ok(container)
    }

    /// The source `id`, if it exists in container `container`.
    pub(super) fn source_in(
        &self,
        cx: &Cx<'_>,
        container: &str,
        id: &str,
    ) -> Option<Map<String, Value>> {
        Self::record(cx, &self.s.sources, id)
            .filter(|s| s.get(&self.s.container_member).and_then(Value::as_str) == Some(container))
    }

    /// Checks one reading (`item`, at `at` in the body) against its source.
    fn check_item(
        &self,
        cx: &Cx<'_>,
        container: &str,
        item: &Value,
        at: &str,
        sources: &mut std::collections::HashMap<String, Option<Map<String, Value>>>,
        errors: &mut Vec<FieldError>,
    ) -> Option<Checked> {
        let source = item.get(&self.s.source_member)?.as_str()?.to_owned();
        let record = sources
            .entry(source.clone())
            .or_insert_with(|| self.source_in(cx, container, &source));
        let Some(record) = record else {
            let field = format!("{at}{}", self.s.source_member);
            errors.push(error(
                "body",
                field,
                format!("{} not found", self.s.labels.source),
                "not_found",
            ));
            return None;
        };
        let values = item.get("values")?.as_object()?.clone();
        let declared = record.get("schema").and_then(Value::as_object);
        for (field, v) in &values {
            let want = declared
                .and_then(|d| d.get(field))
                .and_then(|f| f.get("type").or(Some(f)))
                .and_then(Value::as_str);
            let fits = match want {
                Some("number") => v.is_number(),
                Some("string") => v.is_string(),
                Some("boolean") => v.is_boolean(),
                _ => true,
            };
            if !fits {
                let got = match v {
                    Value::Number(_) => "number",
                    Value::String(_) => "string",
                    Value::Bool(_) => "boolean",
                    _ => "other",
                };
                let message = format!("Expected {}, received {got}", want.unwrap_or("?"));
                errors.push(error(
                    "body",
                    format!("{at}values.{field}"),
                    message,
                    "type",
                ));
            }
        }
        let now_ms = (cx.now * 1000.0).floor() as i64;
        let ts = match item.get("timestamp").and_then(Value::as_str) {
            None => now_ms,
            Some(t) => match time::parse(t) {
                Some(ms) => ms,
                None => {
                    errors.push(error(
                        "body",
                        format!("{at}timestamp"),
                        format!("'{t}' is not an ISO 8601 time"),
                        "format",
                    ));
                    return None;
                }
            },
        };
        let metadata = item.get("metadata").cloned().unwrap_or_else(|| json!({}));
        Some(Checked {
            source,
            point: NewPoint {
                ts,
                values,
                metadata,
            },
        })
    }

    /// Stores checked readings (grouped by source, in the order sent), evaluates alert
    /// rules on them, and returns each reading's (source, position) in the order sent.
    fn store_checked(
        &self,
        cx: &mut Cx<'_>,
        container: &str,
        checked: Vec<Checked>,
    ) -> Vec<(String, usize, i64)> {
        let received = cx.now.floor() as i64;
        let mut order: Vec<String> = Vec::new();
        let mut groups: std::collections::HashMap<String, Vec<(usize, NewPoint)>> =
            Default::default();
        for (n, c) in checked.into_iter().enumerate() {
            if !groups.contains_key(&c.source) {
                order.push(c.source.clone());
            }
            groups.entry(c.source).or_default().push((n, c.point));
        }
        let mut placed = Vec::new();
        for source in order {
            let Some(items) = groups.remove(&source) else {
                continue;
            };
            let (sent, points): (Vec<usize>, Vec<NewPoint>) = items.into_iter().unzip();
            let at = self.store_points(
                cx.tenant,
                &source,
                container,
                &points,
                (received, cx.engine.keeps_changes()),
            );
            alerts::evaluate(self, cx, &source, container, &points, &at);
            for ((n, p), i) in sent.into_iter().zip(&points).zip(at) {
                placed.push((n, source.clone(), i, p.ts));
            }
        }
        placed.sort_by_key(|(n, ..)| *n);
        placed.into_iter().map(|(_, s, i, ts)| (s, i, ts)).collect()
    }
}

/// The request body and the container it names, once the container takes readings; the
/// answer to give instead when there is no body, no container named, or it is closed.
fn opened(ts: &TimeSeries, cx: &mut Cx<'_>) -> Result<(Value, String), Outcome> {
    let Some(body) = cx.call.and_then(|c| c.body).cloned() else {
        return Err(Outcome::Stateless);
    };
    let Some(container_id) = body
        .get(&ts.s.container_member)
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(Outcome::Stateless);
    };
    ts.open_container(cx, &container_id)?;
    Ok((body, container_id))
}

/// `POST` one reading.
pub fn single(ts: &TimeSeries, cx: &mut Cx<'_>) -> Outcome {
    let (body, container_id) = match opened(ts, cx) {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let mut errors = Vec::new();
    let mut sources = Default::default();
    let checked = ts.check_item(cx, &container_id, &body, "", &mut sources, &mut errors);
    let Some(checked) = checked.filter(|_| errors.is_empty()) else {
        return refuse(ts, errors);
    };
    let point = json!({
        "metadata": checked.point.metadata,
        "values": checked.point.values,
    });
    let placed = ts.store_checked(cx, &container_id, vec![checked]);
    let Some((source, index, at)) = placed.into_iter().next() else {
        return Outcome::Problem(500, "the reading was not stored".into());
    };
    let received = cx.now.floor() as i64;
    let shown = json!({
        "_id": point_id(cx.tenant, &source, index, received),
        ts.s.container_member.clone(): container_id,
        ts.s.source_member.clone(): source,
        "timestamp": time::format(at),
        "values": point["values"],
        "metadata": point["metadata"],
        "createdAt": time::format(received * 1000),
    });
    let mut answer = example_members(cx, &["dataPoint"]);
    answer.insert("dataPoint".into(), shown);
    Outcome::Body(Value::Object(answer))
}

/// `POST` a batch: every reading stored, or none.
pub fn batch(ts: &TimeSeries, cx: &mut Cx<'_>) -> Outcome {
    let (body, container_id) = match opened(ts, cx) {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let items = body
        .get("dataPoints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut errors = Vec::new();
    let mut sources = Default::default();
    let checked: Vec<Checked> = items
        .iter()
        .enumerate()
        .filter_map(|(n, item)| {
            ts.check_item(
                cx,
                &container_id,
                item,
                &format!("dataPoints.{n}."),
                &mut sources,
                &mut errors,
            )
        })
        .collect();
    if !errors.is_empty() || checked.len() != items.len() {
        return refuse(ts, errors);
    }
    let placed = ts.store_checked(cx, &container_id, checked);
    let received = cx.now.floor() as i64;
    let shown: Vec<Value> = placed
        .iter()
        .map(|(source, index, at)| {
            json!({
                "_id": point_id(cx.tenant, source, *index, received),
                ts.s.source_member.clone(): source,
                "timestamp": time::format(*at),
            })
        })
        .collect();
    let mut answer = example_members(cx, &["dataPoints", "count"]);
    answer.insert("count".into(), json!(shown.len()));
    answer.insert("dataPoints".into(), Value::Array(shown));
    Outcome::Body(Value::Object(answer))
}

/// The refusal for bad readings: 404 when a source is unknown, else 400; each named.
fn refuse(ts: &TimeSeries, errors: Vec<FieldError>) -> Outcome {
    if errors.iter().any(|e| e.code == "not_found") {
        let message = format!("{} not found", ts.s.labels.source);
        return Outcome::Invalid(404, message, errors);
    }
    let message = match errors.as_slice() {
        [one] => format!("{}: {}", one.field, one.message),
        _ => format!("{} readings are invalid", errors.len()),
    };
    Outcome::Invalid(400, message, errors)
}
