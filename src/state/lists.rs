//! Lists in the API's own style. The query decides which records (filters on fields they
//! name, `*_from`/`*_to` and `start_date`/`end_date` ranges, `*_min`/`*_max`, plural
//! multi-value filters such as `statuses`, `search`), in which order (`sort_by`/`sort_dir`),
//! and which page (cursor `starting_after`/`ending_before`/`limit`, or `offset`/`limit`, or
//! `page`/`page_size`). Cursors are positions of ids in the filtered, sorted list, so they
//! stay correct under any sort order.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::shape::Members;
use super::store::{Collection, Id, IdSet, MemberIndex, ParentRef, SortKey, index_texts};

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

/// Where a page sits in its list, and what the page metadata needs.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub total: usize,
    pub has_more_after: bool,
    pub has_more_before: bool,
    pub limit: usize,
    pub offset: usize,
}

/// A page of a list of bodies.
#[derive(Debug)]
pub struct Page<'a> {
    pub items: Vec<&'a Map<String, Value>>,
    pub window: Window,
}

/// A page of a collection's records: their ids, in order.
#[derive(Debug)]
pub struct Listed {
    pub ids: Vec<Id>,
    pub window: Window,
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

    /// The page size asked for, within the list's bounds.
    fn limit(&self) -> Result<usize, ListError> {
        Ok(match self
            .get("limit")
            .or_else(|| self.get("page_size"))
            .or_else(|| self.get("per_page"))
        {
            Some(l) => l.parse::<usize>().map_err(|_| ListError {
                field: "limit".into(),
                message: format!("limit must be a number, not '{l}'"),
            })?,
            None => self.default_limit,
        }
        .clamp(1, self.max_limit.max(1)))
    }

    /// The sort field and direction (`sort_by`/`sort` with `-field` or `sort_dir=desc`).
    fn sort(&self) -> (Option<&str>, bool) {
        let dir_desc = self
            .get("sort_dir")
            .is_some_and(|d| d.eq_ignore_ascii_case("desc"));
        match self.get("sort_by").or_else(|| self.get("sort")) {
            Some(f) => match f.strip_prefix('-') {
                Some(f) => (Some(f), true),
                None => (Some(f), dir_desc),
            },
            None => (None, dir_desc),
        }
    }

    /// `[start, end)` of the page in a list of `total` items; `position` finds an id's
    /// place for the cursors.
    fn bounds(
        &self,
        total: usize,
        limit: usize,
        position: impl Fn(&str) -> Option<usize>,
    ) -> Result<(usize, usize), ListError> {
        let at = |id: &str, name: &str| {
            position(id).ok_or_else(|| ListError {
                field: name.into(),
                message: format!("{name}: no item with id '{id}' in this list"),
            })
        };
        Ok(
            if let Some(id) = self.get("starting_after").filter(|s| !s.is_empty()) {
                let p = at(id, "starting_after")? + 1;
                (p, (p + limit).min(total))
            } else if let Some(id) = self.get("ending_before").filter(|s| !s.is_empty()) {
                let p = at(id, "ending_before")?;
                (p.saturating_sub(limit), p)
            } else if let Some(o) = self.get("offset") {
                let o = o.parse::<usize>().map_err(|_| ListError {
                    field: "offset".into(),
                    message: format!("offset must be a number, not '{o}'"),
                })?;
                (o.min(total), (o + limit).min(total))
            } else if let Some(p) = self.get("page") {
                let p = p.parse::<usize>().map_err(|_| ListError {
                    field: "page".into(),
                    message: format!("page must be a number, not '{p}'"),
                })?;
                let o = p.saturating_sub(1) * limit;
                (o.min(total), (o + limit).min(total))
            } else {
                (0, limit.min(total))
            },
        )
    }

    /// Parameters that may filter: everything but paging and `search`.
    fn filters(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .iter()
            .filter(|(k, _)| !PAGING.contains(&k.as_str()) && k != "search")
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn search(&self) -> Option<&str> {
        self.get("search").filter(|s| !s.is_empty())
    }
}

fn window(total: usize, limit: usize, (start, end): (usize, usize)) -> Window {
    Window {
        total,
        has_more_after: end < total,
        has_more_before: start > 0,
        limit,
        offset: start,
    }
}

/// Filters, sorts and pages `records` (given in creation order).
pub fn page<'a>(
    records: Vec<&'a Map<String, Value>>,
    q: &ListQuery,
) -> Result<Page<'a>, ListError> {
    // A filter that names a field some record has applies to all records; one that names
    // nothing any record has is not a filter (an unknown parameter).
    let known: HashSet<&str> = records
        .iter()
        .flat_map(|r| r.keys().map(String::as_str))
        .collect();
    let mut rows: Vec<&Map<String, Value>> = records
        .iter()
        .copied()
        .filter(|r| matches(r, q.params, &known))
        .collect();
    match q.sort() {
        (Some(field), desc) => {
            // A stable sort keeps creation order among equal keys, so pages never shuffle.
            rows.sort_by(|a, b| {
                let o = compare(a.get(field), b.get(field));
                if desc { o.reverse() } else { o }
            });
        }
        (None, true) => rows.reverse(),
        (None, false) => {}
    }
    let total = rows.len();
    let limit = q.limit()?;
    let range = q.bounds(total, limit, |id| {
        rows.iter()
            .position(|r| id_of(r, q.id_field).as_deref() == Some(id))
    })?;
    Ok(Page {
        items: rows[range.0..range.1].to_vec(),
        window: window(total, limit, range),
    })
}

/// Which records of a collection a list starts from.
pub enum Scope<'a> {
    /// Every record.
    All,
    /// The children of a record.
    Children(&'a ParentRef),
    /// The records whose member holds a value (a link kept on the child's side).
    Member(&'a str, String),
    /// These records, in creation order (a link kept in an array on the parent's side).
    Ids(Vec<Id>),
}

/// Filters, sorts and pages a collection's records. Unfiltered lists and lists filtered on
/// indexed members seek through the indexes (O(log n + page)); anything else (a search, a
/// filter or sort on a member without an index) reads the records in scope.
pub fn page_collection(
    coll: &Collection,
    scope: Scope<'_>,
    q: &ListQuery,
) -> Result<Listed, ListError> {
    let limit = q.limit()?;
    let filters: Vec<(&str, &str)> = q
        .filters()
        .filter(|(name, _)| filters_anything(coll, name))
        .collect();
    let (sort, desc) = q.sort();
    if q.search().is_none() && sort.is_none() {
        if filters.is_empty() {
            return unfiltered(coll, scope, q, limit, desc);
        }
        if let Some(ids) = by_index(coll, &scope, &filters) {
            return positional(ids, q, limit, desc);
        }
    }
    if filters.is_empty()
        && q.search().is_none()
        && matches!(scope, Scope::All)
        && let Some(ids) = sort.and_then(|f| sorted(coll, f, desc))
    {
        return positional(ids, q, limit, false);
    }
    scan(coll, scope, q)
}

/// Whether filter `name` names something the records hold (else it is not a filter).
fn filters_anything(coll: &Collection, name: &str) -> bool {
    let held = |f: &str| coll.holding(f) > 0;
    if held(name) {
        return true;
    }
    let base = name
        .strip_suffix("_from")
        .or_else(|| name.strip_suffix("_min"))
        .or_else(|| name.strip_suffix("_to"))
        .or_else(|| name.strip_suffix("_max"));
    if base.is_some_and(held) {
        return true;
    }
    if matches!(
        name,
        "start_date" | "from" | "created_after" | "end_date" | "to" | "created_before"
    ) {
        return held("created_at");
    }
    name.strip_suffix("es").is_some_and(held) || name.strip_suffix('s').is_some_and(held)
}

/// Every record in scope, in creation order (or reversed): pages seek by position.
fn unfiltered(
    coll: &Collection,
    scope: Scope<'_>,
    q: &ListQuery,
    limit: usize,
    desc: bool,
) -> Result<Listed, ListError> {
    let ids: Vec<Id> = match scope {
        Scope::All => {
            let total = coll.len();
            let logical = |p: usize| if desc { total - 1 - p } else { p };
            let range = q.bounds(total, limit, |id| coll.position(id).map(logical))?;
            let ids = (range.0..range.1)
                .filter_map(|i| coll.at(logical(i)).map(|(id, _)| id.clone()))
                .collect();
            return Ok(Listed {
                ids,
                window: window(total, limit, range),
            });
        }
        Scope::Children(p) => coll
            .children(p)
            .map(|set| coll.ids(set).cloned().collect())
            .unwrap_or_default(),
        Scope::Member(member, value) => member_set(coll, member, &value),
        Scope::Ids(ids) => ids,
    };
    positional(ids, q, limit, desc)
}

/// The records whose `member` holds `value`, in creation order.
fn member_set(coll: &Collection, member: &str, value: &str) -> Vec<Id> {
    match coll.index(member).filter(|i| i.equal.is_some()) {
        Some(index) => index
            .equal_to(value)
            .map(|set| coll.ids(set).cloned().collect())
            .unwrap_or_default(),
        _ => coll
            .iter()
            .filter(|(_, r)| {
                r.body
                    .get(member)
                    .is_some_and(|v| index_texts(&v).iter().any(|t| t == value))
            })
            .map(|(id, _)| id.clone())
            .collect(),
    }
}

/// The first record (in creation order) whose `member` reads `wanted` as text.
pub fn find_text<'c>(coll: &'c Collection, member: &str, wanted: &str) -> Option<&'c Id> {
    match coll.index(member).filter(|i| i.equal.is_some()) {
        Some(index) if index.equal.is_some() => coll.ids(index.equal_to(wanted)?).next(),
        _ => coll
            .iter()
            .find(|(_, r)| r.body.get(member).is_some_and(|v| text(&v) == wanted))
            .map(|(id, _)| id),
    }
}

/// Pages a list of ids already in order.
fn positional(
    mut ids: Vec<Id>,
    q: &ListQuery,
    limit: usize,
    desc: bool,
) -> Result<Listed, ListError> {
    if desc {
        ids.reverse();
    }
    let total = ids.len();
    let range = q.bounds(total, limit, |id| ids.iter().position(|i| &**i == id))?;
    Ok(Listed {
        ids: ids[range.0..range.1].to_vec(),
        window: window(total, limit, range),
    })
}

/// The records in scope that pass every filter, through the indexes: `None` when a filter
/// is neither a match on a member indexed by value nor a range on a member indexed in
/// order that every record holds.
fn by_index(coll: &Collection, scope: &Scope<'_>, filters: &[(&str, &str)]) -> Option<Vec<Id>> {
    let mut sets: Vec<BTreeSet<u64>> = Vec::with_capacity(filters.len());
    for (name, value) in filters {
        let set = match coll.index(name).filter(|i| i.equal.is_some()) {
            Some(index) => equal_set(index, value),
            None => range_set(coll, name, value)?,
        };
        sets.push(set);
    }
    sets.sort_by_key(BTreeSet::len);
    let (driver, rest) = sets.split_first()?;
    let in_scope = |id: &Id| match scope {
        Scope::All => true,
        Scope::Children(p) => coll.get(id).is_some_and(|r| r.parent() == Some(*p)),
        Scope::Member(member, value) => coll.get(id).is_some_and(|r| {
            r.body
                .get(member)
                .is_some_and(|v| index_texts(&v).iter().any(|t| t == value))
        }),
        Scope::Ids(ids) => ids.contains(id),
    };
    Some(
        driver
            .iter()
            .filter(|seq| rest.iter().all(|s| s.contains(seq)))
            .filter_map(|seq| coll.by_seq(*seq).map(|(id, _)| id.clone()))
            .filter(in_scope)
            .collect(),
    )
}

/// The records whose member reads `value`: `a,b` matches either, and the whole text
/// matches too (a value with a comma).
fn equal_set(index: &MemberIndex, value: &str) -> BTreeSet<u64> {
    let mut wanted: Vec<&str> = value.split(',').map(str::trim).collect();
    wanted.push(value);
    wanted
        .into_iter()
        .flat_map(|w| index.equal_to(w).into_iter().flat_map(IdSet::iter))
        .collect()
}

/// The records a range filter (`amount_min`, `created_at_to`, `start_date`...) keeps, from
/// the member's order index: only when every record holds the member (one without it
/// passes a range) and its values and the bound are of one kind (numbers, or text).
fn range_set(coll: &Collection, name: &str, value: &str) -> Option<BTreeSet<u64>> {
    // A member that is literally called `amount_min` is matched, not a bound.
    if coll.holding(name) > 0 {
        return None;
    }
    let (base, lower) = range_of(name)?;
    let index = coll.index(base)?;
    let sorted = index.sorted.as_ref()?;
    if coll.holding(base) != coll.len() || index.sorted_len() != coll.len() {
        return None;
    }
    let bound = SortKey::of_text(value);
    let uniform = match bound {
        SortKey::Number(_) => index.texts == 0,
        SortKey::Text(_) => index.numbers == 0,
    };
    if !uniform {
        return None;
    }
    let groups: Box<dyn Iterator<Item = (&SortKey, &IdSet)>> = if lower {
        Box::new(sorted.range(bound..))
    } else {
        Box::new(sorted.range(..=bound))
    };
    Some(groups.flat_map(|(_, set)| set.iter()).collect())
}

/// The member a range parameter bounds, and whether it is the lower bound.
fn range_of(name: &str) -> Option<(&str, bool)> {
    if let Some(base) = name
        .strip_suffix("_from")
        .or_else(|| name.strip_suffix("_min"))
    {
        return Some((base, true));
    }
    if let Some(base) = name
        .strip_suffix("_to")
        .or_else(|| name.strip_suffix("_max"))
    {
        return Some((base, false));
    }
    match name {
        "start_date" | "from" | "created_after" => Some(("created_at", true)),
        "end_date" | "to" | "created_before" => Some(("created_at", false)),
        _ => None,
    }
}

/// Every record, ordered by an indexed member that all of them hold with one kind of value
/// (numbers, or text): ties keep creation order in both directions, as a stable sort does.
fn sorted(coll: &Collection, field: &str, desc: bool) -> Option<Vec<Id>> {
    let index = coll.index(field)?;
    let sorted = index.sorted.as_ref()?;
    let uniform = index.numbers == 0 || index.texts == 0;
    if !uniform || index.sorted_len() != coll.len() || coll.holding(field) != coll.len() {
        return None;
    }
    let groups: Box<dyn Iterator<Item = &IdSet>> = if desc {
        Box::new(sorted.values().rev())
    } else {
        Box::new(sorted.values())
    };
    Some(groups.flat_map(|g| coll.ids(g).cloned()).collect())
}

/// The general case: the records in scope, read and filtered one by one.
fn scan(coll: &Collection, scope: Scope<'_>, q: &ListQuery) -> Result<Listed, ListError> {
    let ids: Vec<Id> = match scope {
        Scope::All => coll.iter().map(|(id, _)| id.clone()).collect(),
        Scope::Children(p) => coll
            .children(p)
            .map(|set| coll.ids(set).cloned().collect())
            .unwrap_or_default(),
        Scope::Member(member, value) => member_set(coll, member, &value),
        Scope::Ids(ids) => ids,
    };
    let bodies: Vec<Map<String, Value>> = ids
        .iter()
        .map(|id| coll.get(id).map(|r| r.body.map()).unwrap_or_default())
        .collect();
    let page = page(bodies.iter().collect(), q)?;
    // Back from bodies to ids, by position in `bodies`.
    let ids = page
        .items
        .iter()
        .filter_map(|b| {
            let at = bodies.iter().position(|x| std::ptr::eq(x, *b))?;
            ids.get(at).cloned()
        })
        .collect();
    Ok(Listed {
        ids,
        window: page.window,
    })
}

pub fn id_of(record: &Map<String, Value>, id_field: &str) -> Option<String> {
    record.get(id_field).map(text)
}

pub use super::store::text;

/// Whether a record passes every filter in the query.
fn matches(
    record: &Map<String, Value>,
    params: &[(String, String)],
    known: &HashSet<&str>,
) -> bool {
    params.iter().all(|(name, value)| {
        // Paging does not filter; `search` matches any member rather than one.
        if PAGING.contains(&name.as_str()) || name == "search" {
            return name != "search" || search(record, value);
        }
        filter(record, name, value, known)
    })
}

fn filter(record: &Map<String, Value>, name: &str, value: &str, known: &HashSet<&str>) -> bool {
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
    /// Other members carrying the same page (`{"buckets": [...], "data": [...]}`).
    pub also: Vec<String>,
    pub item_schema: Option<String>,
    pub item_members: Option<Arc<Members>>,
    pub default_limit: usize,
    pub max_limit: usize,
}

/// Writes a page's metadata into a list wrapper's members, by their usual names.
pub fn fill_meta(
    map: &mut Map<String, Value>,
    page: &Window,
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
                "has_more" | "has_more_after" | "has_next" | "has_next_page" | "hasMore" | "more",
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
            // A link to the next page (`next_page_uri`, `nextLink`, `next_page`): none on the
            // last page.
            (name, _) if name.to_ascii_lowercase().contains("next") && !page.has_more_after => {
                *v = Value::Null;
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
                if !p.window.has_more_after {
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
                if !p.window.has_more_before {
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
