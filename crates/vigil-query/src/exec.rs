//! Running a [`Pipeline`] over a stream of events: the search part filters while scanning,
//! aggregating commands consume the stream, the rest work on bounded tables.
//!
//! This is the scan engine, and the reference the indexed engine is checked against: it reads
//! every event it is given and is written for clarity, not speed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use vigil_event::{Event, Timestamp, Value};

use crate::ast::*;

/// Rows any intermediate table may hold; beyond it the result is cut and says so.
pub const MAX_ROWS: usize = 1_000_000;
/// Groups `stats` may hold.
pub const MAX_GROUPS: usize = 1_000_000;

/// What a query returns.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, one value per column (`Value::Null` where a row has none).
    pub rows: Vec<Vec<Value>>,
    /// Events read.
    pub scanned: u64,
    /// Whether a limit cut the result.
    pub truncated: bool,
    /// Why it was cut, if it was.
    pub message: Option<String>,
}

/// Bounds of a run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Only events at or after this time.
    pub from: Option<Timestamp>,
    /// Only events before this time.
    pub to: Option<Timestamp>,
    /// Rows returned at most.
    pub max_rows: usize,
    /// "Now", for relative times in the query.
    pub now: Timestamp,
}

/// Splunk's common field names → ECS.
pub fn alias(name: &str) -> &str {
    match name {
        "src_ip" | "src" | "clientip" | "client_ip" | "c-ip" => "source.ip",
        "src_port" => "source.port",
        "dest" | "dest_ip" | "dst" | "dst_ip" => "destination.ip",
        "dest_port" | "dst_port" => "destination.port",
        "status" | "status_code" => "http.response.status_code",
        "user" | "username" => "user.name",
        "host" | "hostname" => "host.name",
        "sourcetype" => "vigil.sourcetype",
        "source" => "vigil.source",
        "method" | "http_method" => "http.request.method",
        "uri" | "url" => "url.original",
        "uri_path" => "url.path",
        "uri_query" => "url.query",
        "useragent" | "http_user_agent" => "user_agent.original",
        "referer" | "referrer" | "http_referrer" => "http.request.referrer",
        "bytes" => "http.response.body.bytes",
        "action" => "event.action",
        "outcome" => "event.outcome",
        "_raw" => "event.original",
        other => other,
    }
}

/// A row: the event time (when there is one) and named values.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    time: Option<i64>,
    fields: BTreeMap<String, Value>,
}

impl Row {
    fn from_event(seq: u64, event: Event) -> Row {
        let time = event.timestamp().as_nanos();
        let mut fields: BTreeMap<String, Value> = event
            .fields()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect();
        fields.insert("vigil.seq".into(), Value::Int(seq as i64));
        Row {
            time: Some(time),
            fields,
        }
    }

    fn get(&self, name: &str) -> Option<Value> {
        if name == "@timestamp" || name == "_time" {
            return self
                .time
                .map(|t| Value::Str(Timestamp::from_nanos(t).to_rfc3339()));
        }
        if let Some(v) = self.fields.get(name) {
            return Some(v.clone());
        }
        let aliased = alias(name);
        if aliased != name {
            return self.fields.get(aliased).cloned();
        }
        None
    }
}

/// Whether one event matches a search expression.
pub fn matches(expr: &Expr, event: &Event) -> bool {
    match expr {
        Expr::And(a, b) => matches(a, event) && matches(b, event),
        Expr::Or(a, b) => matches(a, event) || matches(b, event),
        Expr::Not(a) => !matches(a, event),
        Expr::Text(p) => {
            let hay = event
                .get_str("event.original")
                .or_else(|| event.get_str("message"))
                .unwrap_or("");
            if p.text == "*" {
                return true;
            }
            contains_pattern(hay, p)
        }
        Expr::Compare { field, op, value } => {
            let v = field_value(event, field);
            match v {
                None => false,
                Some(v) => any_value(v, |x| compare(x, *op, value)),
            }
        }
        Expr::In { field, values } => match field_value(event, field) {
            None => false,
            Some(v) => values
                .iter()
                .any(|lit| any_value(v, |x| compare(x, CmpOp::Eq, lit))),
        },
    }
}

fn field_value<'a>(event: &'a Event, field: &str) -> Option<&'a Value> {
    event.get(field).or_else(|| event.get(alias(field)))
}

fn any_value(v: &Value, f: impl Fn(&Value) -> bool) -> bool {
    match v {
        Value::List(items) => items.iter().any(&f),
        other => f(other),
    }
}

/// Case-insensitive substring search; `*` matches any run of characters.
fn contains_pattern(hay: &str, p: &Pattern) -> bool {
    let hay = hay.to_lowercase();
    let needle = p.text.to_lowercase();
    if !p.wildcard {
        return hay.contains(&needle);
    }
    let mut pos = 0;
    for part in needle.split('*').filter(|s| !s.is_empty()) {
        match hay[pos..].find(part) {
            Some(i) => pos += i + part.len(),
            None => return false,
        }
    }
    true
}

/// Whole-value match with `*` wildcards, case-insensitive.
fn glob_eq(value: &str, p: &Pattern) -> bool {
    let v = value.to_lowercase();
    let pat = p.text.to_lowercase();
    if !p.wildcard {
        return v == pat;
    }
    let parts: Vec<&str> = pat.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !v.starts_with(first)
        || !v[first.len()..].ends_with(last)
        || v.len() < first.len() + last.len()
    {
        return false;
    }
    let mut pos = first.len();
    let end = v.len() - last.len();
    for mid in &parts[1..parts.len() - 1] {
        match v[pos..end].find(mid) {
            Some(i) => pos += i + mid.len(),
            None => return false,
        }
    }
    true
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            (u32::from(a) & mask) == (u32::from(b) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            (u128::from(a) & mask) == (u128::from(b) & mask)
        }
        _ => false,
    }
}

fn compare(v: &Value, op: CmpOp, lit: &Literal) -> bool {
    match lit {
        Literal::Cidr(net, bits) => {
            let ip = match v {
                Value::Ip(ip) => Some(*ip),
                Value::Str(s) => s.parse().ok(),
                _ => None,
            };
            let inside = ip.is_some_and(|ip| in_cidr(ip, *net, *bits));
            match op {
                CmpOp::Eq => inside,
                CmpOp::Ne => ip.is_some() && !inside,
                _ => false,
            }
        }
        Literal::Number(n) => match v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        {
            Some(x) => cmp_ord(x.partial_cmp(n), op),
            None => match op {
                CmpOp::Ne => true,
                CmpOp::Eq => false,
                _ => cmp_ord(Some(v.to_string().as_str().cmp(&*n.to_string())), op),
            },
        },
        Literal::Text(p) => {
            let s = v.to_string();
            match op {
                CmpOp::Eq => glob_eq(&s, p),
                CmpOp::Ne => !glob_eq(&s, p),
                _ => cmp_ord(Some(s.to_lowercase().cmp(&p.text.to_lowercase())), op),
            }
        }
    }
}

fn cmp_ord(o: Option<Ordering>, op: CmpOp) -> bool {
    let Some(o) = o else { return false };
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

/// Orders values: numbers numerically, then everything else as text.
fn value_cmp(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => match (a, b) {
            (Value::Ip(x), Value::Ip(y)) => x.cmp(y),
            _ => a.to_string().cmp(&b.to_string()),
        },
    }
}

fn resolve(spec: &Option<TimeSpec>, now: Timestamp) -> Option<i64> {
    spec.as_ref().map(|t| match t {
        TimeSpec::Relative(secs) => now
            .as_nanos()
            .saturating_add(secs.saturating_mul(1_000_000_000)),
        TimeSpec::Absolute(n) => *n,
    })
}

/// Runs `pipeline` over `events` (sequence number and event, in ledger order).
pub fn run(
    pipeline: &Pipeline,
    events: impl IntoIterator<Item = (u64, Event)>,
    limits: Limits,
) -> QueryResult {
    let from = resolve(&pipeline.earliest, limits.now).or(limits.from.map(Timestamp::as_nanos));
    let to = resolve(&pipeline.latest, limits.now).or(limits.to.map(Timestamp::as_nanos));
    let mut scanned = 0u64;
    let mut truncated = None;
    let selected = events.into_iter().filter_map(|(seq, event)| {
        scanned += 1;
        let t = event.timestamp().as_nanos();
        if from.is_some_and(|f| t < f) || to.is_some_and(|e| t >= e) {
            return None;
        }
        if let Some(expr) = &pipeline.search
            && !matches(expr, &event)
        {
            return None;
        }
        Some(Row::from_event(seq, event))
    });

    // The first aggregating command consumes the stream directly; nothing is buffered before it.
    let mut commands = pipeline.commands.as_slice();
    let mut table = Table::events();
    let first_aggregate = commands.iter().position(|c| {
        matches!(
            c,
            Command::Stats { .. } | Command::Timechart { .. } | Command::Top { .. }
        )
    });
    let streaming: Vec<&Command> = match first_aggregate {
        Some(i) => commands[..i].iter().collect(),
        None => Vec::new(),
    };
    if first_aggregate
        .is_some_and(|i| streaming.iter().all(|c| is_streaming(c)) && i == streaming.len())
    {
        let i = first_aggregate.expect("checked");
        let rows = selected.filter_map(|mut row| {
            for c in &streaming {
                if !apply_streaming(c, &mut row) {
                    return None;
                }
            }
            Some(row)
        });
        table = aggregate(&commands[i], rows, &mut truncated);
        commands = &commands[i + 1..];
    } else {
        for row in selected {
            if table.rows.len() >= MAX_ROWS {
                truncated = Some(format!(
                    "more than {MAX_ROWS} events matched; add a narrower search or a stats command"
                ));
                break;
            }
            table.rows.push(row);
        }
    }
    for command in commands {
        table = apply(command, table, &mut truncated);
    }
    // Event results: newest first, like every log search.
    if table.kind == TableKind::Events {
        table
            .rows
            .sort_by(|a, b| b.time.cmp(&a.time).then_with(|| seq_of(b).cmp(&seq_of(a))));
    }
    if table.rows.len() > limits.max_rows {
        table.rows.truncate(limits.max_rows);
        truncated
            .get_or_insert_with(|| format!("only the first {} rows are returned", limits.max_rows));
    }
    let columns = table.columns();
    let rows = table
        .rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| r.get(c).unwrap_or(Value::Null))
                .collect()
        })
        .collect();
    QueryResult {
        columns,
        rows,
        scanned,
        truncated: truncated.is_some(),
        message: truncated,
    }
}

fn seq_of(row: &Row) -> i64 {
    row.fields
        .get("vigil.seq")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableKind {
    Events,
    Fixed,
}

struct Table {
    kind: TableKind,
    /// Column order for fixed tables.
    columns: Vec<String>,
    rows: Vec<Row>,
}

impl Table {
    fn events() -> Table {
        Table {
            kind: TableKind::Events,
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    fn fixed(columns: Vec<String>, rows: Vec<Row>) -> Table {
        Table {
            kind: TableKind::Fixed,
            columns,
            rows,
        }
    }

    fn columns(&self) -> Vec<String> {
        if self.kind == TableKind::Fixed {
            return self.columns.clone();
        }
        let mut others = BTreeSet::new();
        for r in &self.rows {
            for k in r.fields.keys() {
                others.insert(k.clone());
            }
        }
        let mut cols = vec![
            "@timestamp".to_string(),
            "vigil.seq".to_string(),
            "message".to_string(),
        ];
        others.remove("vigil.seq");
        others.remove("message");
        cols.extend(others);
        cols
    }
}

fn is_streaming(c: &Command) -> bool {
    matches!(
        c,
        Command::Search(_)
            | Command::Where(_)
            | Command::Eval(_)
            | Command::Rename(_)
            | Command::Fields { .. }
    )
}

/// Applies a row-by-row command; false drops the row.
fn apply_streaming(c: &Command, row: &mut Row) -> bool {
    match c {
        Command::Search(expr) => row_matches(expr, row),
        Command::Where(calc) => truthy(&eval(calc, row)),
        Command::Eval(assignments) => {
            for (field, calc) in assignments {
                let v = eval(calc, row);
                row.fields.insert(field.clone(), v);
            }
            true
        }
        Command::Rename(pairs) => {
            for (a, b) in pairs {
                if let Some(v) = row.get(a) {
                    row.fields.remove(a);
                    row.fields.remove(alias(a));
                    row.fields.insert(b.clone(), v);
                }
            }
            true
        }
        Command::Fields { remove, fields } => {
            if *remove {
                for f in fields {
                    row.fields.remove(f);
                }
            } else {
                let keep: HashSet<&str> = fields
                    .iter()
                    .map(|f| alias(f))
                    .chain(fields.iter().map(String::as_str))
                    .collect();
                row.fields
                    .retain(|k, _| keep.contains(k.as_str()) || k == "vigil.seq");
            }
            true
        }
        _ => true,
    }
}

fn row_matches(expr: &Expr, row: &Row) -> bool {
    let mut e = Event::new(Timestamp::from_nanos(row.time.unwrap_or(0)));
    for (k, v) in &row.fields {
        e.insert(k.clone(), v.clone());
    }
    matches(expr, &e)
}

fn apply(c: &Command, mut table: Table, truncated: &mut Option<String>) -> Table {
    match c {
        Command::Search(_)
        | Command::Where(_)
        | Command::Eval(_)
        | Command::Rename(_)
        | Command::Fields { .. } => {
            table.rows.retain_mut(|row| apply_streaming(c, row));
            match c {
                Command::Eval(assignments) if table.kind == TableKind::Fixed => {
                    for (f, _) in assignments {
                        if !table.columns.contains(f) {
                            table.columns.push(f.clone());
                        }
                    }
                }
                Command::Rename(pairs) if table.kind == TableKind::Fixed => {
                    for (a, b) in pairs {
                        for col in table.columns.iter_mut() {
                            if col == a {
                                *col = b.clone();
                            }
                        }
                    }
                }
                Command::Fields { remove, fields } if table.kind == TableKind::Fixed => {
                    if *remove {
                        table.columns.retain(|c| !fields.contains(c));
                    } else {
                        table.columns.retain(|c| fields.contains(c));
                    }
                }
                _ => {}
            }
            table
        }
        Command::Stats { .. } | Command::Timechart { .. } | Command::Top { .. } => {
            aggregate(c, table.rows.into_iter(), truncated)
        }
        Command::Sort { keys, limit } => {
            table.rows.sort_by(|a, b| {
                for (k, desc) in keys {
                    let o = match (a.get(k), b.get(k)) {
                        (Some(x), Some(y)) => value_cmp(&x, &y),
                        (Some(_), None) => Ordering::Less,
                        (None, Some(_)) => Ordering::Greater,
                        (None, None) => Ordering::Equal,
                    };
                    let o = if *desc { o.reverse() } else { o };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            });
            if let Some(n) = limit {
                table.rows.truncate(*n);
            }
            // A sorted event list keeps its order: it is no longer "newest first".
            if table.kind == TableKind::Events {
                table.columns = table.columns();
                table.kind = TableKind::Fixed;
            }
            table
        }
        Command::Head(n) => {
            if table.kind == TableKind::Events {
                table
                    .rows
                    .sort_by(|a, b| b.time.cmp(&a.time).then_with(|| seq_of(b).cmp(&seq_of(a))));
            }
            table.rows.truncate(*n);
            table
        }
        Command::Tail(n) => {
            if table.kind == TableKind::Events {
                table
                    .rows
                    .sort_by(|a, b| b.time.cmp(&a.time).then_with(|| seq_of(b).cmp(&seq_of(a))));
            }
            let skip = table.rows.len().saturating_sub(*n);
            table.rows.drain(..skip);
            table
        }
        Command::Table(fields) => {
            let kind_events = table.kind == TableKind::Events;
            let mut t = Table::fixed(fields.clone(), table.rows);
            if kind_events {
                t.rows
                    .sort_by(|a, b| b.time.cmp(&a.time).then_with(|| seq_of(b).cmp(&seq_of(a))));
            }
            t
        }
        Command::Dedup(fields) => {
            if table.kind == TableKind::Events {
                table
                    .rows
                    .sort_by(|a, b| b.time.cmp(&a.time).then_with(|| seq_of(b).cmp(&seq_of(a))));
            }
            let mut seen = HashSet::new();
            table.rows.retain(|r| {
                let key: Vec<String> = fields
                    .iter()
                    .map(|f| r.get(f).map(|v| v.to_string()).unwrap_or_default())
                    .collect();
                fields.iter().all(|f| r.get(f).is_some()) && seen.insert(key)
            });
            table
        }
    }
}

// ---- aggregation ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Acc {
    Count(u64),
    Distinct(HashSet<String>),
    Sum(f64, bool),
    Avg(f64, u64),
    Min(Option<Value>),
    Max(Option<Value>),
    Values(BTreeSet<String>),
    Earliest(Option<(i64, Value)>),
    Latest(Option<(i64, Value)>),
    Percentile(f64, Vec<f64>),
}

/// Values kept per group for `values()`.
const MAX_VALUES: usize = 100;
/// Samples kept per group for percentiles.
const MAX_SAMPLES: usize = 100_000;

impl Acc {
    fn new(func: AggFunc) -> Acc {
        match func {
            AggFunc::Count => Acc::Count(0),
            AggFunc::DistinctCount => Acc::Distinct(HashSet::new()),
            AggFunc::Sum => Acc::Sum(0.0, true),
            AggFunc::Avg => Acc::Avg(0.0, 0),
            AggFunc::Min => Acc::Min(None),
            AggFunc::Max => Acc::Max(None),
            AggFunc::Values => Acc::Values(BTreeSet::new()),
            AggFunc::Earliest => Acc::Earliest(None),
            AggFunc::Latest => Acc::Latest(None),
            AggFunc::Percentile(p) => Acc::Percentile(p, Vec::new()),
        }
    }

    fn add(&mut self, value: Option<Value>, time: i64) {
        let values: Vec<Value> = match value {
            None => {
                if let Acc::Count(n) = self {
                    *n += 1;
                }
                return;
            }
            Some(Value::List(items)) => items,
            Some(v) => vec![v],
        };
        for v in values {
            match self {
                Acc::Count(n) => *n += 1,
                Acc::Distinct(set) => {
                    if set.len() < MAX_GROUPS {
                        set.insert(v.to_string());
                    }
                }
                Acc::Sum(s, all_int) => {
                    if let Some(x) = v
                        .as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    {
                        *s += x;
                        *all_int &= matches!(v, Value::Int(_));
                    }
                }
                Acc::Avg(s, n) => {
                    if let Some(x) = v
                        .as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    {
                        *s += x;
                        *n += 1;
                    }
                }
                Acc::Min(m) => {
                    if m.as_ref()
                        .is_none_or(|cur| value_cmp(&v, cur) == Ordering::Less)
                    {
                        *m = Some(v);
                    }
                }
                Acc::Max(m) => {
                    if m.as_ref()
                        .is_none_or(|cur| value_cmp(&v, cur) == Ordering::Greater)
                    {
                        *m = Some(v);
                    }
                }
                Acc::Values(set) => {
                    if set.len() < MAX_VALUES {
                        set.insert(v.to_string());
                    }
                }
                Acc::Earliest(e) => {
                    if e.as_ref().is_none_or(|(t, _)| time < *t) {
                        *e = Some((time, v));
                    }
                }
                Acc::Latest(l) => {
                    if l.as_ref().is_none_or(|(t, _)| time >= *t) {
                        *l = Some((time, v));
                    }
                }
                Acc::Percentile(_, samples) => {
                    if samples.len() < MAX_SAMPLES
                        && let Some(x) = v
                            .as_f64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    {
                        samples.push(x);
                    }
                }
            }
        }
    }

    fn finish(self) -> Value {
        match self {
            Acc::Count(n) => Value::Int(n as i64),
            Acc::Distinct(s) => Value::Int(s.len() as i64),
            Acc::Sum(s, true) if s.abs() < 9e15 => Value::Int(s as i64),
            Acc::Sum(s, _) => Value::float(s),
            Acc::Avg(_, 0) => Value::Null,
            Acc::Avg(s, n) => Value::float(s / n as f64),
            Acc::Min(v) | Acc::Max(v) => v.unwrap_or(Value::Null),
            Acc::Values(s) => Value::List(s.into_iter().map(Value::Str).collect()),
            Acc::Earliest(e) | Acc::Latest(e) => e.map_or(Value::Null, |(_, v)| v),
            Acc::Percentile(p, mut samples) => {
                if samples.is_empty() {
                    return Value::Null;
                }
                samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
                // Nearest rank.
                let rank = ((p / 100.0) * samples.len() as f64).ceil().max(1.0) as usize;
                let x = samples[rank.min(samples.len()) - 1];
                if x.fract() == 0.0 && x.abs() < 9e15 {
                    Value::Int(x as i64)
                } else {
                    Value::float(x)
                }
            }
        }
    }
}

fn aggregate(
    c: &Command,
    rows: impl Iterator<Item = Row>,
    truncated: &mut Option<String>,
) -> Table {
    match c {
        Command::Stats { aggs, by } => {
            let mut groups: HashMap<Vec<String>, (Vec<Value>, Vec<Acc>)> = HashMap::new();
            for row in rows {
                let mut key = Vec::with_capacity(by.len());
                let mut key_values = Vec::with_capacity(by.len());
                let mut complete = true;
                for f in by {
                    match row.get(f) {
                        Some(v) => {
                            key.push(v.to_string());
                            key_values.push(v);
                        }
                        None => complete = false,
                    }
                }
                if !complete {
                    continue;
                }
                if !groups.contains_key(&key) && groups.len() >= MAX_GROUPS {
                    truncated.get_or_insert_with(|| {
                        format!("more than {MAX_GROUPS} groups; the rest were not counted")
                    });
                    continue;
                }
                let entry = groups.entry(key).or_insert_with(|| {
                    (key_values, aggs.iter().map(|a| Acc::new(a.func)).collect())
                });
                for (acc, agg) in entry.1.iter_mut().zip(aggs) {
                    let value = match &agg.field {
                        Some(f) => match row.get(f) {
                            Some(v) => Some(v),
                            None => continue,
                        },
                        None => None,
                    };
                    acc.add(value, row.time.unwrap_or(0));
                }
            }
            if groups.is_empty() && by.is_empty() {
                groups.insert(
                    Vec::new(),
                    (Vec::new(), aggs.iter().map(|a| Acc::new(a.func)).collect()),
                );
            }
            let mut out: Vec<(Vec<Value>, Vec<Acc>)> = groups.into_values().collect();
            out.sort_by(|a, b| {
                for (x, y) in a.0.iter().zip(&b.0) {
                    let o = value_cmp(x, y);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            });
            let mut columns = by.clone();
            columns.extend(aggs.iter().map(|a| a.name.clone()));
            let rows = out
                .into_iter()
                .map(|(key, accs)| {
                    let mut fields = BTreeMap::new();
                    for (f, v) in by.iter().zip(key) {
                        fields.insert(f.clone(), v);
                    }
                    for (agg, acc) in aggs.iter().zip(accs) {
                        fields.insert(agg.name.clone(), acc.finish());
                    }
                    Row { time: None, fields }
                })
                .collect();
            Table::fixed(columns, rows)
        }
        Command::Timechart { span, aggs, by } => {
            let span_ns = span.saturating_mul(1_000_000_000).max(1);
            let mut buckets: BTreeMap<i64, BTreeMap<String, Vec<Acc>>> = BTreeMap::new();
            let mut series = BTreeSet::new();
            for row in rows {
                let Some(t) = row.time else { continue };
                let bucket = t.div_euclid(span_ns) * span_ns;
                let split = match by {
                    Some(f) => match row.get(f) {
                        Some(v) => v.to_string(),
                        None => continue,
                    },
                    None => String::new(),
                };
                if series.len() < 1000 {
                    series.insert(split.clone());
                } else if !series.contains(&split) {
                    truncated.get_or_insert_with(|| {
                        "more than 1000 series; the rest were not charted".into()
                    });
                    continue;
                }
                let accs = buckets
                    .entry(bucket)
                    .or_default()
                    .entry(split)
                    .or_insert_with(|| aggs.iter().map(|a| Acc::new(a.func)).collect());
                for (acc, agg) in accs.iter_mut().zip(aggs) {
                    let value = match &agg.field {
                        Some(f) => match row.get(f) {
                            Some(v) => Some(v),
                            None => continue,
                        },
                        None => None,
                    };
                    acc.add(value, t);
                }
            }
            let mut columns = vec!["_time".to_string()];
            match by {
                Some(_) => columns.extend(series.iter().cloned()),
                None => columns.extend(aggs.iter().map(|a| a.name.clone())),
            }
            let rows = buckets
                .into_iter()
                .map(|(bucket, per_series)| {
                    let mut fields = BTreeMap::new();
                    for (split, accs) in per_series {
                        match by {
                            Some(_) => {
                                let first =
                                    accs.into_iter().next().map_or(Value::Null, Acc::finish);
                                fields.insert(split, first);
                            }
                            None => {
                                for (agg, acc) in aggs.iter().zip(accs) {
                                    fields.insert(agg.name.clone(), acc.finish());
                                }
                            }
                        }
                    }
                    if by.is_some() {
                        for s in &series {
                            fields.entry(s.clone()).or_insert(Value::Int(0));
                        }
                    }
                    Row {
                        time: Some(bucket),
                        fields,
                    }
                })
                .collect();
            Table::fixed(columns, rows)
        }
        Command::Top {
            limit,
            fields,
            rare,
        } => {
            let mut counts: HashMap<Vec<String>, (Vec<Value>, u64)> = HashMap::new();
            let mut total = 0u64;
            for row in rows {
                let values: Option<Vec<Value>> = fields.iter().map(|f| row.get(f)).collect();
                let Some(values) = values else { continue };
                let key = values.iter().map(Value::to_string).collect();
                total += 1;
                if !counts.contains_key(&key) && counts.len() >= MAX_GROUPS {
                    truncated
                        .get_or_insert_with(|| format!("more than {MAX_GROUPS} distinct values"));
                    continue;
                }
                counts.entry(key).or_insert((values, 0)).1 += 1;
            }
            let mut out: Vec<(Vec<Value>, u64)> = counts.into_values().collect();
            out.sort_by(|a, b| {
                let o = if *rare { a.1.cmp(&b.1) } else { b.1.cmp(&a.1) };
                o.then_with(|| {
                    a.0.iter()
                        .zip(&b.0)
                        .map(|(x, y)| value_cmp(x, y))
                        .find(|o| *o != Ordering::Equal)
                        .unwrap_or(Ordering::Equal)
                })
            });
            out.truncate(*limit);
            let mut columns = fields.clone();
            columns.push("count".into());
            columns.push("percent".into());
            let rows = out
                .into_iter()
                .map(|(values, n)| {
                    let mut f = BTreeMap::new();
                    for (name, v) in fields.iter().zip(values) {
                        f.insert(name.clone(), v);
                    }
                    f.insert("count".into(), Value::Int(n as i64));
                    f.insert(
                        "percent".into(),
                        Value::float(if total == 0 {
                            0.0
                        } else {
                            (n as f64 * 10_000.0 / total as f64).round() / 100.0
                        }),
                    );
                    Row {
                        time: None,
                        fields: f,
                    }
                })
                .collect();
            Table::fixed(columns, rows)
        }
        _ => Table::fixed(Vec::new(), Vec::new()),
    }
}

// ---- where / eval ---------------------------------------------------------------------------------

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        _ => true,
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        Value::Int(x as i64)
    } else {
        Value::float(x)
    }
}

fn eval(c: &Calc, row: &Row) -> Value {
    match c {
        Calc::Field(f) => row.get(f).unwrap_or(Value::Null),
        Calc::Str(s) => Value::Str(s.clone()),
        Calc::Num(n) => number(*n),
        Calc::Bool(b) => Value::Bool(*b),
        Calc::Unary(UnaryOp::Not, a) => Value::Bool(!truthy(&eval(a, row))),
        Calc::Unary(UnaryOp::Neg, a) => num(&eval(a, row)).map_or(Value::Null, |x| number(-x)),
        Calc::Binary(a, op, b) => {
            let (x, y) = (eval(a, row), eval(b, row));
            match op {
                BinOp::And => Value::Bool(truthy(&x) && truthy(&y)),
                BinOp::Or => Value::Bool(truthy(&x) || truthy(&y)),
                BinOp::Concat => Value::Str(format!("{}{}", text(&x), text(&y))),
                BinOp::Cmp(op) => {
                    if matches!(x, Value::Null) || matches!(y, Value::Null) {
                        return Value::Bool(false);
                    }
                    let o = match (num(&x), num(&y)) {
                        (Some(p), Some(q)) => p.partial_cmp(&q),
                        _ => Some(text(&x).cmp(&text(&y))),
                    };
                    Value::Bool(cmp_ord(o, *op))
                }
                arith => match (num(&x), num(&y)) {
                    (Some(p), Some(q)) => match arith {
                        BinOp::Add => number(p + q),
                        BinOp::Sub => number(p - q),
                        BinOp::Mul => number(p * q),
                        BinOp::Div if q != 0.0 => number(p / q),
                        BinOp::Rem if q != 0.0 => number(p % q),
                        _ => Value::Null,
                    },
                    _ if *arith == BinOp::Add => Value::Str(format!("{}{}", text(&x), text(&y))),
                    _ => Value::Null,
                },
            }
        }
        Calc::Call(name, args) => {
            let a: Vec<Value> = args.iter().map(|x| eval(x, row)).collect();
            match (name.as_str(), a.as_slice()) {
                ("if", [c, t, f]) => {
                    if truthy(c) {
                        t.clone()
                    } else {
                        f.clone()
                    }
                }
                ("lower", [v]) => Value::Str(text(v).to_lowercase()),
                ("upper", [v]) => Value::Str(text(v).to_uppercase()),
                ("len", [v]) => Value::Int(text(v).chars().count() as i64),
                ("tostring", [v]) => Value::Str(text(v)),
                ("tonumber", [v]) => num(v).map_or(Value::Null, number),
                ("round", [v]) => num(v).map_or(Value::Null, |x| number(x.round())),
                ("round", [v, d]) => match (num(v), num(d)) {
                    (Some(x), Some(d)) => {
                        let m = 10f64.powi(d as i32);
                        number((x * m).round() / m)
                    }
                    _ => Value::Null,
                },
                ("abs", [v]) => num(v).map_or(Value::Null, |x| number(x.abs())),
                ("coalesce", vs) => vs
                    .iter()
                    .find(|v| !matches!(v, Value::Null))
                    .cloned()
                    .unwrap_or(Value::Null),
                ("isnull", [v]) => Value::Bool(matches!(v, Value::Null)),
                ("isnotnull", [v]) => Value::Bool(!matches!(v, Value::Null)),
                ("cidrmatch", [cidr, ip]) => {
                    let ok = text(cidr)
                        .split_once('/')
                        .and_then(|(n, b)| Some((n.parse::<IpAddr>().ok()?, b.parse::<u8>().ok()?)))
                        .zip(text(ip).parse::<IpAddr>().ok())
                        .is_some_and(|((net, bits), ip)| in_cidr(ip, net, bits));
                    Value::Bool(ok)
                }
                ("like", [v, pat]) => {
                    let p = text(pat).replace('%', "*");
                    Value::Bool(glob_eq(
                        &text(v),
                        &Pattern {
                            wildcard: p.contains('*'),
                            text: p,
                        },
                    ))
                }
                _ => Value::Null,
            }
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
