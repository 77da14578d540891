//! One data source's readings, stored by column: a timestamp, a receipt time and an
//! interned metadata object per point, and one column per value field (numbers as `f64`
//! with a bit saying whether the reading was an integer, anything else as JSON). About 30
//! bytes per point for two numeric fields, so a million points fit in a few tens of MB.
//!
//! Points are kept in the order they arrived; while timestamps arrive in order (the usual
//! case) that is also time order, otherwise a time-ordered permutation is rebuilt before
//! the next read.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

/// One value field's readings.
#[derive(Debug, Clone)]
enum Column {
    /// `NaN` where a point has no reading; `int` has a bit set for readings sent as integers.
    Num { v: Vec<f64>, int: Vec<u64> },
    /// Strings, booleans, or a mix (`Null` where a point has no reading).
    Any(Vec<Value>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Self::Num { v, .. } => v.len(),
            Self::Any(v) => v.len(),
        }
    }

    fn push(&mut self, value: Option<&Value>) {
        if let Self::Num { v, int } = self {
            match value {
                None => return v.push(f64::NAN),
                Some(Value::Number(n)) => {
                    let i = v.len();
                    if i / 64 >= int.len() {
                        int.push(0);
                    }
                    if n.is_i64() || n.is_u64() {
                        int[i / 64] |= 1 << (i % 64);
                    }
                    return v.push(n.as_f64().unwrap_or(f64::NAN));
                }
                Some(_) => self.widen(),
            }
        }
        if let Self::Any(v) = self {
            v.push(value.cloned().unwrap_or(Value::Null));
        }
    }

    /// A numeric column that received something else keeps everything as JSON from now on.
    fn widen(&mut self) {
        if let Self::Num { .. } = self {
            let values: Vec<Value> = (0..self.len())
                .map(|i| self.get(i).unwrap_or(Value::Null))
                .collect();
            *self = Self::Any(values);
        }
    }

    fn get(&self, i: usize) -> Option<Value> {
        match self {
            Self::Num { v, int } => {
                let x = *v.get(i)?;
                if x.is_nan() {
                    return None;
                }
                let is_int = int.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0);
                Some(number(x, is_int))
            }
            Self::Any(v) => v.get(i).filter(|v| !v.is_null()).cloned(),
        }
    }

    /// The reading as a number, if it is one.
    fn num(&self, i: usize) -> Option<f64> {
        match self {
            Self::Num { v, .. } => v.get(i).copied().filter(|x| !x.is_nan()),
            Self::Any(v) => v.get(i).and_then(Value::as_f64),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Num { v, int } => v.capacity() * 8 + int.capacity() * 8,
            Self::Any(v) => v.capacity() * std::mem::size_of::<Value>(),
        }
    }
}

/// `x` as JSON: an integer when it was sent as one.
pub fn number(x: f64, is_int: bool) -> Value {
    if is_int && x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::Number(Number::from(x as i64))
    } else {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// A reading about to be stored.
pub struct NewPoint {
    /// Milliseconds since the epoch.
    pub ts: i64,
    pub values: Map<String, Value>,
    pub metadata: Value,
}

#[derive(Debug, Clone, Default)]
pub struct Series {
    /// The record holding the data source (its bucket).
    pub container: String,
    ts: Vec<i64>,
    /// Receipt time, unix seconds.
    created: Vec<u32>,
    meta: Vec<u32>,
    metas: Vec<Value>,
    meta_ids: HashMap<String, u32>,
    names: Vec<String>,
    columns: Vec<Column>,
    /// Time order, when arrival order is not.
    order: Option<Vec<u32>>,
    in_order: bool,
    /// Bytes of the points as `{timestamp, values, metadata}` JSON.
    pub stored_bytes: u64,
    /// The latest receipt time (unix seconds).
    pub last_received: Option<i64>,
}

impl Series {
    pub fn new(container: &str) -> Self {
        Self {
            container: container.to_owned(),
            in_order: true,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Stores a point; returns its position (which never changes).
    pub fn push(&mut self, p: &NewPoint, received: i64) -> usize {
        let i = self.ts.len();
        if self.ts.last().is_some_and(|last| p.ts < *last) {
            self.in_order = false;
        }
        self.order = None;
        self.ts.push(p.ts);
        self.created
            .push(u32::try_from(received.max(0)).unwrap_or(u32::MAX));
        self.last_received = Some(self.last_received.map_or(received, |l| l.max(received)));
        let meta = self.intern(&p.metadata);
        self.meta.push(meta);
        for name in p.values.keys() {
            if !self.names.contains(name) {
                self.add_column(name, p.values.get(name), i);
            }
        }
        for (name, column) in self.names.iter().zip(self.columns.iter_mut()) {
            column.push(p.values.get(name));
        }
        self.stored_bytes += json_len(p);
        i
    }

    fn intern(&mut self, metadata: &Value) -> u32 {
        let key = metadata.to_string();
        if let Some(i) = self.meta_ids.get(&key) {
            return *i;
        }
        let i = u32::try_from(self.metas.len()).unwrap_or(u32::MAX);
        self.metas.push(metadata.clone());
        self.meta_ids.insert(key, i);
        i
    }

    /// A column for a field first seen at point `n`, empty before it.
    fn add_column(&mut self, name: &str, first: Option<&Value>, n: usize) {
        let column = if first.is_some_and(Value::is_number) {
            Column::Num {
                v: vec![f64::NAN; n],
                int: vec![0; n.div_ceil(64)],
            }
        } else {
            Column::Any(vec![Value::Null; n])
        };
        self.names.push(name.to_owned());
        self.columns.push(column);
    }

    /// Rebuilds the time order if points arrived out of it.
    pub fn prepare(&mut self) {
        if self.in_order || self.order.is_some() {
            return;
        }
        let mut order: Vec<u32> = (0..u32::try_from(self.ts.len()).unwrap_or(u32::MAX)).collect();
        order.sort_by_key(|i| (self.ts[*i as usize], *i));
        self.order = Some(order);
    }

    /// Positions of the points with `from <= ts <= to`, in time order. Call
    /// [`Series::prepare`] first.
    pub fn between(&self, from: i64, to: i64) -> Vec<usize> {
        match &self.order {
            None => {
                let start = self.ts.partition_point(|t| *t < from);
                let end = self.ts.partition_point(|t| *t <= to);
                (start..end.max(start)).collect()
            }
            Some(order) => {
                let key = |i: &u32| self.ts[*i as usize];
                let start = order.partition_point(|i| key(i) < from);
                let end = order.partition_point(|i| key(i) <= to);
                order[start..end.max(start)]
                    .iter()
                    .map(|i| *i as usize)
                    .collect()
            }
        }
    }

    /// How many points have `from <= ts <= to` (without listing them).
    pub fn count_between(&self, from: i64, to: i64) -> usize {
        match &self.order {
            None => {
                let start = self.ts.partition_point(|t| *t < from);
                self.ts.partition_point(|t| *t <= to).saturating_sub(start)
            }
            Some(_) => self.between(from, to).len(),
        }
    }

    pub fn ts(&self, i: usize) -> i64 {
        self.ts[i]
    }

    pub fn received(&self, i: usize) -> i64 {
        i64::from(self.created[i])
    }

    /// Receipt times of every point (for counts over a recent window).
    pub fn received_all(&self) -> impl Iterator<Item = i64> + '_ {
        self.created.iter().map(|c| i64::from(*c))
    }

    pub fn metadata(&self, i: usize) -> &Value {
        &self.metas[self.meta[i] as usize]
    }

    /// The field names, in the order they first arrived.
    pub fn fields(&self) -> &[String] {
        &self.names
    }

    /// Field `f`'s reading at point `i`.
    pub fn value(&self, f: usize, i: usize) -> Option<Value> {
        self.columns[f].get(i)
    }

    /// Field `f`'s reading at point `i` as a number.
    pub fn num(&self, f: usize, i: usize) -> Option<f64> {
        self.columns[f].num(i)
    }

    /// Whether field `f` holds numbers only.
    pub fn is_numeric(&self, f: usize) -> bool {
        matches!(self.columns[f], Column::Num { .. })
    }

    /// Point `i`'s readings, in field order.
    pub fn values(&self, i: usize) -> Map<String, Value> {
        self.names
            .iter()
            .zip(&self.columns)
            .filter_map(|(n, c)| Some((n.clone(), c.get(i)?)))
            .collect()
    }

    /// The latest timestamp, if any point exists.
    pub fn last_ts(&self) -> Option<i64> {
        if self.in_order {
            self.ts.last().copied()
        } else {
            self.ts.iter().max().copied()
        }
    }

    /// Heap bytes held (for the memory figures).
    pub fn heap_bytes(&self) -> usize {
        self.ts.capacity() * 8
            + self.created.capacity() * 4
            + self.meta.capacity() * 4
            + self.columns.iter().map(Column::bytes).sum::<usize>()
            + self.order.as_ref().map_or(0, |o| o.capacity() * 4)
    }
}

/// The length of a point's `{timestamp, values, metadata}` JSON, counted without building it.
fn json_len(p: &NewPoint) -> u64 {
    // `{"timestamp":"2024-01-15T10:30:00.000Z","values":,"metadata":}`
    let fixed = 62;
    let values = serde_json::to_vec(&p.values).map_or(0, |v| v.len());
    let meta = serde_json::to_vec(&p.metadata).map_or(0, |v| v.len());
    (fixed + values + meta) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn point(ts: i64, values: Value) -> NewPoint {
        NewPoint {
            ts,
            values: values.as_object().cloned().unwrap_or_default(),
            metadata: json!({"device": "a"}),
        }
    }

    #[test]
    fn readings_come_back_as_they_were_sent() {
        let mut s = Series::new("b1");
        s.push(&point(1_000, json!({"t": 21.5, "n": 3})), 10);
        s.push(&point(2_000, json!({"t": 22, "on": true})), 11);
        assert_eq!(Value::Object(s.values(0)), json!({"t": 21.5, "n": 3}));
        assert_eq!(Value::Object(s.values(1)), json!({"t": 22, "on": true}));
        s.push(&point(3_000, json!({"n": "many"})), 12);
        assert_eq!(Value::Object(s.values(0)), json!({"t": 21.5, "n": 3}));
        assert_eq!(Value::Object(s.values(2)), json!({"n": "many"}));
        assert_eq!(s.metadata(2), &json!({"device": "a"}));
    }

    #[test]
    fn out_of_order_points_are_read_in_time_order() {
        let mut s = Series::new("b1");
        for ts in [5, 1, 3, 2, 4] {
            s.push(&point(ts, json!({"v": ts})), 0);
        }
        s.prepare();
        let order: Vec<i64> = s.between(2, 4).into_iter().map(|i| s.ts(i)).collect();
        assert_eq!(order, vec![2, 3, 4]);
        assert_eq!(s.count_between(0, 10), 5);
        assert_eq!(s.last_ts(), Some(5));
    }
}
