//! Lists in the API's own style. The query decides which records (filters on fields they
//! name, `*_from`/`*_to` and `start_date`/`end_date` ranges, `*_min`/`*_max`, plural
//! multi-value filters such as `statuses`, `search`), in which order (`sort_by`/`sort_dir`),
//! and which page (cursor `starting_after`/`ending_before`/`limit`, or `offset`/`limit`, or
//! `page`/`page_size`). Cursors are positions of ids in the filtered, sorted list, so they
//! stay correct under any sort order.

use std::cmp::Ordering;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::shape::Members;

/// Query parameters that choose the page (its position, size and order) rather than filter
/// records.
pub const PAGING: [&str; 11] = [
    "limit",
    "starting_after",
    "ending_before",
    "offset",
    "page",
    "page_size",
    "per_page",
    "cursor",
    "sort_by",
    "sort_dir",
    "sort",
];

/// A page of a list, and what the page metadata needs.
#[derive(Debug)]
pub struct Page<'a> {
    pub items: Vec<&'a Map<String, Value>>,
    pub total: usize,
    pub has_more_after: bool,
    pub has_more_before: bool,
    pub limit: usize,
    pub offset: usize,
}

/// Why a list request cannot be answered.
#[derive(Debug)]
pub struct ListError {
    pub field: String,
    pub message: String,
}

pub struct ListQuery<'q> {
    pub params: &'q [(String, String)],
    pub default_limit: usize,
    pub max_limit: usize,
    pub id_field: &'q str,
}

impl ListQuery<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Filters, sorts and pages `records` (given in creation order).
pub fn page<'a>(
    records: Vec<&'a Map<String, Value>>,
    q: &ListQuery,
) -> Result<Page<'a>, ListError> {
    // A filter that names a field some record has applies to all records; one that names
    // nothing any record has is not a filter (an unknown parameter).
    let known: std::collections::HashSet<&str> = records
        .iter()
        .flat_map(|r| r.keys().map(String::as_str))
        .collect();
    let mut rows: Vec<&Map<String, Value>> = records
        .iter()
        .copied()
        .filter(|r| matches(r, q.params, &known))
        .collect();
    if let Some(field) = q.get("sort_by").or_else(|| q.get("sort")) {
        let (field, desc_prefix) = match field.strip_prefix('-') {
            Some(f) => (f, true),
            None => (field, false),
        };
        let desc = desc_prefix
            || q.get("sort_dir")
                .is_some_and(|d| d.eq_ignore_ascii_case("desc"));
        // A stable sort keeps creation order among equal keys, so pages never shuffle.
        rows.sort_by(|a, b| {
            let o = compare(a.get(field), b.get(field));
            if desc { o.reverse() } else { o }
        });
    } else if q
        .get("sort_dir")
        .is_some_and(|d| d.eq_ignore_ascii_case("desc"))
    {
        rows.reverse();
    }
    let total = rows.len();
    let limit = match q
        .get("limit")
        .or_else(|| q.get("page_size"))
        .or_else(|| q.get("per_page"))
    {
        Some(l) => l.parse::<usize>().map_err(|_| ListError {
            field: "limit".into(),
            message: format!("limit must be a number, not '{l}'"),
        })?,
        None => q.default_limit,
    }
    .clamp(1, q.max_limit.max(1));
    let position = |id: &str, name: &str| {
        rows.iter()
            .position(|r| id_of(r, q.id_field).as_deref() == Some(id))
            .ok_or_else(|| ListError {
                field: name.into(),
                message: format!("{name}: no item with id '{id}' in this list"),
            })
    };
    let (start, end) = if let Some(id) = q.get("starting_after").filter(|s| !s.is_empty()) {
        let p = position(id, "starting_after")? + 1;
        (p, (p + limit).min(total))
    } else if let Some(id) = q.get("ending_before").filter(|s| !s.is_empty()) {
        let p = position(id, "ending_before")?;
        (p.saturating_sub(limit), p)
    } else if let Some(o) = q.get("offset") {
        let o = o.parse::<usize>().map_err(|_| ListError {
            field: "offset".into(),
            message: format!("offset must be a number, not '{o}'"),
        })?;
        (o.min(total), (o + limit).min(total))
    } else if let Some(p) = q.get("page") {
        let p = p.parse::<usize>().map_err(|_| ListError {
            field: "page".into(),
            message: format!("page must be a number, not '{p}'"),
        })?;
        let o = p.saturating_sub(1) * limit;
        (o.min(total), (o + limit).min(total))
    } else {
        (0, limit.min(total))
    };
    Ok(Page {
        items: rows[start..end].to_vec(),
        total,
        has_more_after: end < total,
        has_more_before: start > 0,
        limit,
        offset: start,
    })
}

pub fn id_of(record: &Map<String, Value>, id_field: &str) -> Option<String> {
    record.get(id_field).map(text)
}

/// A value as text: strings as they are, anything else as JSON (ids that are numbers).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether a record passes every filter in the query.
fn matches(
    record: &Map<String, Value>,
    params: &[(String, String)],
    known: &std::collections::HashSet<&str>,
) -> bool {
    params.iter().all(|(name, value)| {
        // Paging does not filter; `search` matches any member rather than one.
        if PAGING.contains(&name.as_str()) || name == "search" {
            return name != "search" || search(record, value);
        }
        filter(record, name, value, known)
    })
}

fn filter(
    record: &Map<String, Value>,
    name: &str,
    value: &str,
    known: &std::collections::HashSet<&str>,
) -> bool {
    if known.contains(name) && !record.contains_key(name) {
        return false;
    }
    let range = |field: &str, lower: bool| match record.get(field) {
        Some(v) => {
            let o = compare_text(v, value);
            if lower {
                o != Ordering::Less
            } else {
                o != Ordering::Greater
            }
        }
        None => true,
    };
    if let Some(field) = record.get(name) {
        let wanted: Vec<&str> = value.split(',').map(str::trim).collect();
        return match field {
            Value::Array(items) => items.iter().any(|i| wanted.contains(&text(i).as_str())),
            v => wanted.contains(&text(v).as_str()) || text(v) == value,
        };
    }
    if let Some(base) = name
        .strip_suffix("_from")
        .or_else(|| name.strip_suffix("_min"))
    {
        return range(base, true);
    }
    if let Some(base) = name
        .strip_suffix("_to")
        .or_else(|| name.strip_suffix("_max"))
    {
        return range(base, false);
    }
    match name {
        "start_date" | "from" | "created_after" => return range("created_at", true),
        "end_date" | "to" | "created_before" => return range("created_at", false),
        _ => {}
    }
    // `statuses` filters `status`, `kyb_statuses` filters `kyb_status`, `types` filters `type`.
    let singular = name
        .strip_suffix("es")
        .filter(|s| record.contains_key(*s))
        .or_else(|| name.strip_suffix('s'));
    if let Some(field) = singular.and_then(|s| record.get(s)) {
        let wanted: Vec<&str> = value.split(',').map(str::trim).collect();
        return wanted.contains(&text(field).as_str());
    }
    // A parameter that names nothing in the record does not filter.
    true
}

fn search(record: &Map<String, Value>, needle: &str) -> bool {
    let needle = needle.to_lowercase();
    fn walk(v: &Value, needle: &str, depth: usize) -> bool {
        match v {
            Value::String(s) => s.to_lowercase().contains(needle),
            Value::Object(m) if depth < 3 => m.values().any(|x| walk(x, needle, depth + 1)),
            Value::Array(a) if depth < 3 => a.iter().any(|x| walk(x, needle, depth + 1)),
            _ => false,
        }
    }
    needle.is_empty() || record.values().any(|v| walk(v, &needle, 0))
}

/// Orders two field values: numbers numerically, timestamps by time, strings by text;
/// missing values last.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => compare_text(a, &text(b)),
    }
}

/// Compares a record value with a query value (or another value's text).
fn compare_text(v: &Value, other: &str) -> Ordering {
    let as_number = |s: &str| {
        s.parse::<f64>().ok().or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.timestamp() as f64)
        })
    };
    let mine = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => as_number(s),
        _ => None,
    };
    match (mine, as_number(other)) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        _ => text(v).to_lowercase().cmp(&other.to_lowercase()),
    }
}

/// What a list response needs, worked out once per operation.
pub struct ListPlan {
    /// The response is a bare array.
    pub bare: bool,
    /// The wrapper generated from the schema, without its items.
    pub wrapper: Map<String, Value>,
    pub array_member: String,
    pub item_schema: Option<String>,
    pub item_members: Option<Arc<Members>>,
    pub default_limit: usize,
    pub max_limit: usize,
}

/// Writes a page's metadata into a list wrapper's members, by their usual names.
pub fn fill_meta(
    map: &mut Map<String, Value>,
    page: &Page,
    last_id: Option<&str>,
    array_member: &str,
) {
    for (k, v) in map.iter_mut() {
        if k == array_member {
            continue;
        }
        match (k.as_str(), &*v) {
            (
                "total_count" | "total" | "count" | "total_items" | "totalCount",
                Value::Number(_),
            ) => *v = json!(page.total),
            (
                "has_more" | "has_more_after" | "has_next" | "has_next_page" | "hasMore",
                Value::Bool(_),
            ) => *v = json!(page.has_more_after),
            (
                "has_more_before" | "has_previous" | "has_prev" | "has_previous_page",
                Value::Bool(_),
            ) => *v = json!(page.has_more_before),
            ("limit" | "page_size" | "per_page", Value::Number(_)) => *v = json!(page.limit),
            ("offset", Value::Number(_)) => *v = json!(page.offset),
            ("page", Value::Number(_)) => *v = json!(page.offset / page.limit.max(1) + 1),
            ("next_cursor" | "cursor" | "next" | "next_page_token", _) => {
                *v = match (page.has_more_after, last_id) {
                    (true, Some(id)) => json!(id),
                    _ => Value::Null,
                }
            }
            (_, Value::Object(inner)) => {
                let mut inner = inner.clone();
                fill_meta(&mut inner, page, last_id, array_member);
                *v = Value::Object(inner);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows() -> Vec<Map<String, Value>> {
        (0..7)
            .map(|i| {
                json!({"id": format!("id{i}"), "name": format!("n{}", 6 - i), "status": if i % 2 == 0 {"active"} else {"frozen"}, "created_at": 100 + i})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    fn ids(p: &Page) -> Vec<String> {
        p.items.iter().filter_map(|r| id_of(r, "id")).collect()
    }

    #[test]
    fn cursors_walk_both_ways_under_any_sort() {
        let data = rows();
        for sort in [
            vec![],
            vec![("sort_by".to_owned(), "name".to_owned())],
            vec![
                ("sort_by".to_owned(), "name".to_owned()),
                ("sort_dir".to_owned(), "desc".to_owned()),
            ],
        ] {
            let mut seen = Vec::new();
            let mut params = sort.clone();
            params.push(("limit".into(), "3".into()));
            loop {
                let q = ListQuery {
                    params: &params,
                    default_limit: 20,
                    max_limit: 100,
                    id_field: "id",
                };
                let p = page(data.iter().collect(), &q).unwrap();
                seen.extend(ids(&p));
                if !p.has_more_after {
                    break;
                }
                params = sort.clone();
                params.push(("limit".into(), "3".into()));
                params.push((
                    "starting_after".into(),
                    seen.last().cloned().unwrap_or_default(),
                ));
            }
            let mut sorted = seen.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 7, "{seen:?}");
            // And backwards from the end.
            let mut back = Vec::new();
            let mut before = seen.last().cloned().unwrap_or_default();
            back.push(before.clone());
            loop {
                let mut params = sort.clone();
                params.push(("limit".into(), "2".into()));
                params.push(("ending_before".into(), before.clone()));
                let q = ListQuery {
                    params: &params,
                    default_limit: 20,
                    max_limit: 100,
                    id_field: "id",
                };
                let p = page(data.iter().collect(), &q).unwrap();
                let mut got = ids(&p);
                got.reverse();
                back.extend(got.clone());
                if !p.has_more_before {
                    break;
                }
                before = got.last().cloned().unwrap_or_default();
            }
            back.reverse();
            assert_eq!(back, seen);
        }
    }

    #[test]
    fn filters_ranges_and_search() {
        let data = rows();
        let run = |params: Vec<(&str, &str)>| {
            let params: Vec<(String, String)> = params
                .into_iter()
                .map(|(a, b)| (a.into(), b.into()))
                .collect();
            let q = ListQuery {
                params: &params,
                default_limit: 20,
                max_limit: 100,
                id_field: "id",
            };
            ids(&page(data.iter().collect(), &q).unwrap())
        };
        assert_eq!(run(vec![("status", "frozen")]), ["id1", "id3", "id5"]);
        assert_eq!(
            run(vec![
                ("statuses", "frozen,active"),
                ("created_at_from", "104")
            ]),
            ["id4", "id5", "id6"]
        );
        assert_eq!(run(vec![("created_at_to", "101")]), ["id0", "id1"]);
        assert_eq!(run(vec![("search", "N6")]), ["id0"]);
        assert_eq!(run(vec![("unknown", "x")]).len(), 7);
    }
}
