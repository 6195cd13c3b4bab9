//! Running a [`Pipeline`] over a stream of events: the search part filters while scanning,
//! aggregating commands consume the stream, the rest work on bounded tables.
//!
//! This is the scan engine, and the reference the indexed engine is checked against: it reads
//! every event it is given and is written for clarity, not speed.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::net::IpAddr;

use vigil_event::{Event, Timestamp, Value, field};

use crate::ast::*;

/// Rows any intermediate table may hold; beyond it the result is cut and says so.
pub const MAX_ROWS: usize = 1_000_000;
/// Groups `stats` may hold.
pub const MAX_GROUPS: usize = 1_000_000;
/// The memory one query's rows may take, as estimated by [`row_bytes`]-style accounting: the
/// event rows it buffers, and the cells of the result it returns. Past it the result is cut and
/// says so. 32 MiB is about 30,000 typical 1 KB events; a server runs a few queries at once,
/// so this bounds what searches can take together (the server's in-flight limit times this,
/// times the copies an answer needs on its way out).
pub const MAX_RESULT_BYTES: usize = 32 * 1024 * 1024;
/// The longest string `eval`/`where` may build (`a . b`, `a + b` on text); longer results are
/// null, so one row cannot grow without bound.
pub const MAX_CALC_STRING: usize = 1024 * 1024;
/// The memory one row may grow to through `eval`: an assignment that would take the row past
/// it gives null instead, so a row of many copies of one long string stays bounded.
pub const MAX_ROW_BYTES: usize = 4 * MAX_CALC_STRING;

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
    /// In a cluster, the shards that did not answer (their events are not in the result, and
    /// `message` says so); always empty on a single node.
    pub missing_shards: Vec<String>,
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

#[cfg(test)]
impl Limits {
    /// Tests' limits: all time, `max_rows` rows, "now" at the epoch.
    pub(crate) fn rows(max_rows: usize) -> Limits {
        Limits {
            from: None,
            to: None,
            max_rows,
            now: Timestamp::from_secs(0),
        }
    }
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
        "sourcetype" => field::VIGIL_SOURCETYPE,
        "source" => field::VIGIL_SOURCE,
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
pub(crate) struct Row {
    pub(crate) time: Option<i64>,
    pub(crate) fields: BTreeMap<String, Value>,
    /// How many events this row stands for: 1, or a count the index computed ([`run_counted`]).
    pub(crate) weight: u64,
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
            weight: 1,
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

/// The field that names an event's ledger sequence number (a column of every event result; not
/// stored in the event itself).
pub const SEQ_FIELD: &str = "vigil.seq";

/// Whether one event matches a search expression. `vigil.seq` is not known here: see
/// [`matches_at`].
pub fn matches(expr: &Expr, event: &Event) -> bool {
    matches_with(expr, event, None)
}

/// Whether event `seq` of the ledger matches a search expression; `vigil.seq` is `seq`, as in
/// the rows the query returns.
pub fn matches_at(expr: &Expr, seq: u64, event: &Event) -> bool {
    matches_with(expr, event, Some(&Value::Int(seq as i64)))
}

fn matches_with(expr: &Expr, event: &Event, seq: Option<&Value>) -> bool {
    match expr {
        Expr::And(items) => items.iter().all(|e| matches_with(e, event, seq)),
        Expr::Or(items) => items.iter().any(|e| matches_with(e, event, seq)),
        Expr::Not(a) => !matches_with(a, event, seq),
        Expr::Text(p) => {
            if p.text == "*" {
                return true;
            }
            text_matches(search_text(event), p)
        }
        Expr::Compare { field, op, value } => {
            let v = field_value(event, field, seq);
            match v {
                None => false,
                Some(v) => any_value(v, |x| compare(x, *op, value)),
            }
        }
        Expr::In { field, values } => match field_value(event, field, seq) {
            None => false,
            Some(v) => values
                .iter()
                .any(|lit| any_value(v, |x| compare(x, CmpOp::Eq, lit))),
        },
    }
}

fn field_value<'a>(event: &'a Event, field: &str, seq: Option<&'a Value>) -> Option<&'a Value> {
    if field == SEQ_FIELD
        && let Some(seq) = seq
    {
        return Some(seq);
    }
    event.get(field).or_else(|| event.get(alias(field)))
}

fn any_value(v: &Value, f: impl Fn(&Value) -> bool) -> bool {
    match v {
        Value::List(items) => items.iter().any(&f),
        other => f(other),
    }
}

/// The text bare terms search: `event.original` when the event kept it, else `message`.
pub fn search_text(event: &Event) -> &str {
    event
        .get_str("event.original")
        .or_else(|| event.get_str("message"))
        .unwrap_or("")
}

/// Words longer than this (in bytes) are not searchable as terms (the index's limit).
pub const MAX_WORD_LEN: usize = 65_530;

/// The words of a text as bare terms see them: maximal runs of alphanumeric characters,
/// lower-cased character by character (the index's tokenizer does exactly this).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(lower_chars)
}

/// Lower-cases character by character (not `str::to_lowercase`, which treats a final sigma
/// specially), as the index's lower-caser does.
pub fn lower_chars(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars().flat_map(char::to_lowercase).collect()
}

/// The words of a search term: like [`words`], but `*` belongs to a word (a wildcard within it).
pub fn term_words(term: &str) -> Vec<String> {
    term.split(|c: char| !(c.is_alphanumeric() || c == '*'))
        .filter(|w| !w.is_empty())
        .map(lower_chars)
        .collect()
}

/// Whether a bare term or phrase matches a text: its words appear as a consecutive run of the
/// text's words (a `*` inside a word matches any characters within that word). A term with no
/// letters or digits at all matches as a case-insensitive substring instead.
pub fn text_matches(text: &str, p: &Pattern) -> bool {
    let pattern = term_words(&p.text);
    if pattern.is_empty() {
        return text.to_lowercase().contains(&p.text.to_lowercase());
    }
    let hay: Vec<String> = words(text).collect();
    if hay.len() < pattern.len() {
        return false;
    }
    (0..=hay.len() - pattern.len()).any(|start| {
        pattern.iter().zip(&hay[start..]).all(|(pw, w)| {
            w.len() <= MAX_WORD_LEN
                && if pw.contains('*') {
                    glob_match(w, pw)
                } else {
                    pw == w
                }
        })
    })
}

/// Whole-string match of `pattern` with `*` wildcards, both already lower-cased.
fn glob_match(v: &str, pat: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return v == pat;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if v.len() < first.len() + last.len() || !v.starts_with(first) || !v.ends_with(last) {
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

/// Whole-value match with `*` wildcards, case-insensitive.
fn glob_eq(value: &str, p: &Pattern) -> bool {
    let v = value.to_lowercase();
    let pat = p.text.to_lowercase();
    if !p.wildcard {
        return v == pat;
    }
    glob_match(&v, &pat)
}

/// A value as a number for numeric comparisons and sums: numbers as they are, strings that
/// parse as one.
pub fn numeric(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Whether `ip` lies in `net/bits` (never across address families, never for a prefix longer
/// than the family's address: `10.0.0.0/40` is no network).
pub fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(_), IpAddr::V4(_)) if bits > 32 => false,
        (IpAddr::V6(_), IpAddr::V6(_)) if bits > 128 => false,
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

/// Whether one value compares with a literal as a search's `field op literal` finds it (one
/// value: a list's items are each compared by the caller). The index answers comparisons it
/// reads from columns with this very function, so both engines agree by construction.
pub fn compare_value(v: &Value, op: CmpOp, lit: &Literal) -> bool {
    compare(v, op, lit)
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
        Literal::Number(n) => match numeric(v) {
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

/// [`value_cmp`] made a total order for `min`/`max`: values it finds equal (`5` and `5.0`, an
/// address and the same text) are ordered by kind, then by text, so that the extreme of a set
/// does not depend on the order its values come in.
fn extreme_cmp(a: &Value, b: &Value) -> Ordering {
    let kind = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) => 2,
        Value::Float(_) => 3,
        Value::Ip(_) => 4,
        Value::Str(_) => 5,
        Value::List(_) => 6,
        Value::Map(_) => 7,
    };
    value_cmp(a, b)
        .then_with(|| kind(a).cmp(&kind(b)))
        .then_with(|| a.to_string().cmp(&b.to_string()))
}

fn resolve(spec: &Option<TimeSpec>, now: Timestamp) -> Option<i64> {
    spec.as_ref().map(|t| match t {
        TimeSpec::Relative(secs) => now
            .as_nanos()
            .saturating_add(secs.saturating_mul(1_000_000_000)),
        TimeSpec::Absolute(n) => *n,
    })
}

/// The time window of a run: `earliest=`/`latest=` in the query win over the caller's bounds.
/// Nanoseconds; `from` inclusive, `to` exclusive.
pub fn window(pipeline: &Pipeline, limits: &Limits) -> (Option<i64>, Option<i64>) {
    let from = resolve(&pipeline.earliest, limits.now).or(limits.from.map(Timestamp::as_nanos));
    let to = resolve(&pipeline.latest, limits.now).or(limits.to.map(Timestamp::as_nanos));
    (from, to)
}

/// Runs `pipeline` over `events` (sequence number and event, in ledger order).
pub fn run(
    pipeline: &Pipeline,
    events: impl IntoIterator<Item = (u64, Event)>,
    limits: Limits,
) -> QueryResult {
    let (from, to) = window(pipeline, &limits);
    let mut scanned = 0u64;
    let mut truncated = None;
    let selected = events.into_iter().filter_map(|(seq, event)| {
        scanned += 1;
        select(pipeline.search.as_ref(), from, to, seq, event)
    });

    // The first aggregating command consumes the stream directly; nothing is buffered before it.
    let mut commands = pipeline.commands.as_slice();
    let mut table = Table::events();
    let first_aggregate = commands.iter().position(|c| {
        matches!(
            c,
            Command::Stats { .. }
                | Command::Timechart { .. }
                | Command::Top { .. }
                | Command::Partial(_)
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
    } else if commands.is_empty() {
        // A plain event list shows the newest rows: keep only those while scanning.
        let mut newest = Newest::new(limits.max_rows);
        for row in selected {
            newest.push(row);
        }
        table.rows = newest.into_rows(&mut truncated);
    } else {
        let mut bytes = 0;
        for row in selected {
            if table.rows.len() >= MAX_ROWS {
                truncated = Some(format!(
                    "more than {MAX_ROWS} events matched; add a narrower search or a stats command"
                ));
                break;
            }
            bytes += row_bytes(&row);
            if bytes > MAX_RESULT_BYTES {
                truncated = Some(memory_message(table.rows.len()));
                break;
            }
            table.rows.push(row);
        }
    }
    finish(table, commands, truncated, scanned, &limits)
}

/// Why a result was cut at the memory limit (rows read from events: a stats command helps).
pub(crate) fn memory_message(rows: usize) -> String {
    format!(
        "the result was cut to {rows} rows by the query memory limit ({} MiB); add a narrower search, fewer fields (table, fields) or a stats command",
        MAX_RESULT_BYTES / (1024 * 1024)
    )
}

/// Why a table was cut at the memory limit after a command grew or built its rows.
fn table_memory_message(rows: usize) -> String {
    format!(
        "the result was cut to {rows} rows by the query memory limit ({} MiB); add a narrower search or keep fewer and shorter fields (table, fields, eval)",
        MAX_RESULT_BYTES / (1024 * 1024)
    )
}

/// Why an aggregation stopped growing at the memory limit.
fn groups_memory_message() -> String {
    format!(
        "the groups and their values reached the query memory limit ({} MiB); the rest were not counted; add a narrower search or group by fewer and shorter fields",
        MAX_RESULT_BYTES / (1024 * 1024)
    )
}

/// Why a merged `dc` is not exact.
fn estimate_message() -> String {
    format!(
        "dc counted more than {} distinct values in a group on one shard: it is estimated (HyperLogLog, standard error {} %)",
        crate::distributed::DC_EXACT,
        crate::sketch::STANDARD_ERROR_PERCENT
    )
}

/// Why a percentile is not exact.
fn percentile_estimate_message() -> String {
    format!(
        "a percentile had more than {MAX_SAMPLES} values in a group: it is estimated within {} % of the value (DDSketch)",
        crate::quantiles::RELATIVE_ERROR * 100.0
    )
}

/// Memory charged against [`MAX_RESULT_BYTES`] while an aggregation grows.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    used: usize,
    /// Whether something was refused for lack of room.
    over: bool,
    /// Whether a merged `dc` had to be estimated (a shard sent a sketch, [`Acc::Sketch`]).
    pub(crate) estimated: bool,
    /// Whether a percentile had to be estimated (more values than [`MAX_SAMPLES`],
    /// [`Acc::Quantiles`]).
    pub(crate) percentile_estimated: bool,
}

impl Budget {
    /// What the result must say about estimated cells, if any.
    fn estimate_message(&self) -> Option<String> {
        match (self.estimated, self.percentile_estimated) {
            (false, false) => None,
            (true, false) => Some(estimate_message()),
            (false, true) => Some(percentile_estimate_message()),
            (true, true) => Some(format!(
                "{}; {}",
                estimate_message(),
                percentile_estimate_message()
            )),
        }
    }

    /// Charges `n` bytes if they fit; false (and remembered) if not.
    pub(crate) fn take(&mut self, n: usize) -> bool {
        if self.used.saturating_add(n) > MAX_RESULT_BYTES {
            self.over = true;
            return false;
        }
        self.used += n;
        true
    }

    /// Gives back a charge of `n` bytes (what was charged for something since dropped).
    fn give(&mut self, n: usize) {
        self.used = self.used.saturating_sub(n);
    }

    /// Replaces a charge of `old` bytes by one of `new` bytes if the difference fits.
    fn replace(&mut self, old: usize, new: usize) -> bool {
        if new <= old {
            self.used = self.used.saturating_sub(old - new);
            return true;
        }
        self.take(new - old)
    }
}

/// The memory one `timechart` cell takes (its series name, map entry and accumulators).
fn cell_bytes(series: &str, aggs: usize) -> usize {
    64 + series.len() + aggs * std::mem::size_of::<Acc>()
}

/// The series a `timechart … by` charts at most; past it, the smallest names.
pub const MAX_SERIES: usize = 1000;

/// The memory a group key takes (its strings, values and map entry).
fn key_bytes(key: &[String], values: &[Value]) -> usize {
    64 + key.iter().map(|k| 24 + k.len()).sum::<usize>()
        + values.iter().map(value_bytes).sum::<usize>()
}

/// An estimate of the memory a value takes in a row.
pub(crate) fn value_bytes(v: &Value) -> usize {
    let own = std::mem::size_of::<Value>();
    match v {
        Value::Str(s) => own + s.len(),
        Value::List(items) => own + items.iter().map(value_bytes).sum::<usize>(),
        Value::Map(m) => {
            own + m
                .iter()
                .map(|(k, v)| 48 + k.len() + value_bytes(v))
                .sum::<usize>()
        }
        _ => own,
    }
}

/// An estimate of the memory a row takes (its map's keys, values and node overhead).
pub(crate) fn row_bytes(row: &Row) -> usize {
    std::mem::size_of::<Row>()
        + row
            .fields
            .iter()
            .map(|(k, v)| 48 + k.len() + value_bytes(v))
            .sum::<usize>()
}

/// A row ordered newest first by (time, sequence number), like event results.
struct ByAge(Row);

impl ByAge {
    fn key(&self) -> (Option<i64>, i64) {
        (self.0.time, seq_of(&self.0))
    }
}
impl PartialEq for ByAge {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for ByAge {}
impl PartialOrd for ByAge {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByAge {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The newest `max_rows` rows of a stream that fit in [`MAX_RESULT_BYTES`], kept while it is
/// read (a min-heap: the oldest kept row leaves first).
struct Newest {
    heap: BinaryHeap<Reverse<ByAge>>,
    max_rows: usize,
    bytes: usize,
    /// Rows left out for the row limit.
    over_rows: bool,
    /// Rows left out for the memory limit.
    over_bytes: bool,
}

impl Newest {
    fn new(max_rows: usize) -> Newest {
        Newest {
            heap: BinaryHeap::new(),
            max_rows,
            bytes: 0,
            over_rows: false,
            over_bytes: false,
        }
    }

    fn push(&mut self, row: Row) {
        self.bytes += row_bytes(&row);
        self.heap.push(Reverse(ByAge(row)));
        while self.heap.len() > self.max_rows || self.bytes > MAX_RESULT_BYTES {
            let by_rows = self.heap.len() > self.max_rows;
            let Some(Reverse(ByAge(oldest))) = self.heap.pop() else {
                break;
            };
            self.bytes -= row_bytes(&oldest);
            if by_rows {
                self.over_rows = true;
            } else {
                self.over_bytes = true;
            }
        }
    }

    fn into_rows(self, truncated: &mut Option<String>) -> Vec<Row> {
        let rows: Vec<Row> = self.heap.into_iter().map(|Reverse(r)| r.0).collect();
        if self.over_bytes {
            *truncated = Some(memory_message(rows.len()));
        } else if self.over_rows {
            *truncated = Some(format!(
                "only the first {} rows are returned",
                self.max_rows
            ));
        }
        rows
    }
}

/// An event as a row if it lies in the window and matches the search.
fn select(
    search: Option<&Expr>,
    from: Option<i64>,
    to: Option<i64>,
    seq: u64,
    event: Event,
) -> Option<Row> {
    let t = event.timestamp().as_nanos();
    if from.is_some_and(|f| t < f) || to.is_some_and(|e| t >= e) {
        return None;
    }
    if let Some(expr) = search
        && !matches_at(expr, seq, &event)
    {
        return None;
    }
    Some(Row::from_event(seq, event))
}

/// Applies the commands after the first table, orders event lists newest first, and cuts to
/// the caller's row limit.
pub(crate) fn finish(
    mut table: Table,
    commands: &[Command],
    mut truncated: Option<String>,
    scanned: u64,
    limits: &Limits,
) -> QueryResult {
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
    // The result has a cell per row and column (sparse events make many columns): keep the rows
    // whose cells fit the memory limit, and free each table row as its cells are made.
    let mut budget = MAX_RESULT_BYTES;
    let mut rows = Vec::new();
    for r in std::mem::take(&mut table.rows) {
        let cells: Vec<Value> = columns
            .iter()
            .map(|c| r.get(c).unwrap_or(Value::Null))
            .collect();
        let bytes = cells.iter().map(value_bytes).sum::<usize>();
        if bytes > budget {
            truncated = Some(if table.kind == TableKind::Events {
                memory_message(rows.len())
            } else {
                table_memory_message(rows.len())
            });
            break;
        }
        budget -= bytes;
        rows.push(cells);
    }
    QueryResult {
        columns,
        rows,
        scanned,
        truncated: truncated.is_some(),
        message: truncated,
        missing_shards: Vec::new(),
    }
}

// ---- counting inside an index ---------------------------------------------------------------------

/// A counting aggregation an index can compute itself from its columns: `stats` of `count`,
/// `count(field)`, `dc(field)`, `values(field)`, `min(field)` and `max(field)` [by …] (also as a cluster shard's `Command::Partial`),
/// `timechart span=… count [by …]`, `top`/`rare`, preceded only by `search` commands.
#[derive(Debug, Clone, PartialEq)]
pub struct CountPushdown {
    /// What to count: the search part and every `search` command before the aggregation.
    pub search: Option<Expr>,
    /// How to group.
    pub grouping: Grouping,
    /// Fields the aggregations read (`dc(source.ip)`, `count(user)`) that are not grouped by:
    /// counted as groups too, after the grouping's fields, but an event without one of them is
    /// still counted (its value is [`Value::Null`] in [`Counted::values`]).
    pub values: Vec<String>,
    /// Position of the aggregating command in [`Pipeline::commands`].
    pub command: usize,
}

/// How a [`CountPushdown`] groups events.
#[derive(Debug, Clone, PartialEq)]
pub enum Grouping {
    /// By the values of these fields (names as written; each resolves like a row's field: the
    /// name itself, else its [`alias`]). An event without one of them is not counted.
    Fields(Vec<String>),
    /// By time bucket, optionally split by a field's value.
    Time {
        /// Bucket width in nanoseconds; buckets start at multiples of it.
        span_ns: i64,
        /// Split field, if any.
        split: Option<String>,
    },
}

/// One group an index counted for a [`CountPushdown`].
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    /// Bucket start (nanoseconds) for [`Grouping::Time`].
    pub time: Option<i64>,
    /// The group's values, one per field of the grouping (the split field's value for time),
    /// then one per field of [`CountPushdown::values`] ([`Value::Null`]: the events had none).
    pub values: Vec<Value>,
    /// Events in the group.
    pub count: u64,
}

/// Whether an index may count this pipeline's first aggregation itself, and what to count.
pub fn count_pushdown(pipeline: &Pipeline) -> Option<CountPushdown> {
    let position = pipeline.commands.iter().position(|c| {
        matches!(
            c,
            Command::Stats { .. }
                | Command::Timechart { .. }
                | Command::Top { .. }
                | Command::Partial(_)
        )
    })?;
    let mut search = pipeline.search.clone();
    for c in &pipeline.commands[..position] {
        match c {
            Command::Search(e) => {
                search = Some(match search {
                    Some(s) => Expr::And(vec![s, e.clone()]),
                    None => e.clone(),
                })
            }
            _ => return None,
        }
    }
    let plain_counts = |aggs: &[Agg]| {
        aggs.iter()
            .all(|a| a.func == AggFunc::Count && a.field.is_none())
    };
    let groupable =
        |f: &String| !matches!(f.as_str(), field::TIMESTAMP | "_time" | field::VIGIL_SEQ);
    // Aggregations whose answer over events equals their answer over (value, count) groups:
    // counts add the groups' counts; distinct counts, values and extremes only see the values
    // (and do not depend on their order).
    let countable = |a: &Agg| {
        matches!(
            a.func,
            AggFunc::Count | AggFunc::DistinctCount | AggFunc::Values | AggFunc::Min | AggFunc::Max
        ) && a.field.as_ref().is_none_or(groupable)
    };
    let mut values = Vec::new();
    // A shard's part of a cluster query (`distributed`) groups the same way; only its output
    // (mergeable states) differs, and `run_counted` aggregates with the command as it is.
    let command = match &pipeline.commands[position] {
        Command::Partial(inner) => inner.as_ref(),
        c => c,
    };
    let grouping = match command {
        Command::Stats { aggs, by } if aggs.iter().all(countable) && by.iter().all(groupable) => {
            for f in aggs.iter().filter_map(|a| a.field.as_ref()) {
                if !by.contains(f) && !values.contains(f) {
                    values.push(f.clone());
                }
            }
            Grouping::Fields(by.clone())
        }
        Command::Top { fields, .. } if fields.iter().all(groupable) => {
            Grouping::Fields(fields.clone())
        }
        Command::Timechart { span, aggs, by } if plain_counts(aggs) && by.iter().all(groupable) => {
            Grouping::Time {
                span_ns: span.saturating_mul(1_000_000_000).max(1),
                split: by.clone(),
            }
        }
        _ => return None,
    };
    Some(CountPushdown {
        search,
        grouping,
        values,
        command: position,
    })
}

/// Finishes a pipeline whose first aggregation an index counted ([`count_pushdown`]): `counted`
/// holds its groups, `tail` the events it has not indexed yet (filtered here like [`run`] does),
/// `scanned` how many events the index looked at. Gives what [`run`] gives over all events.
pub fn run_counted(
    pipeline: &Pipeline,
    pushdown: &CountPushdown,
    counted: Vec<Counted>,
    tail: impl IntoIterator<Item = (u64, Event)>,
    scanned: u64,
    limits: Limits,
) -> QueryResult {
    let (from, to) = window(pipeline, &limits);
    let names: Vec<String> = match &pushdown.grouping {
        Grouping::Fields(f) => f.clone(),
        Grouping::Time { split, .. } => split.iter().cloned().collect(),
    };
    let counted_rows = counted.into_iter().map(|c| Row {
        time: c.time,
        fields: names
            .iter()
            .chain(&pushdown.values)
            .cloned()
            .zip(c.values)
            // An event without a value field stands for itself without it.
            .filter(|(_, v)| *v != Value::Null)
            .collect(),
        weight: c.count,
    });
    let mut tail_scanned = 0u64;
    let search = pushdown.search.as_ref();
    let tail_rows = tail.into_iter().filter_map(|(seq, event)| {
        tail_scanned += 1;
        select(search, from, to, seq, event)
    });
    let mut truncated = None;
    let table = aggregate(
        &pipeline.commands[pushdown.command],
        counted_rows.chain(tail_rows),
        &mut truncated,
    );
    finish(
        table,
        &pipeline.commands[pushdown.command + 1..],
        truncated,
        scanned + tail_scanned,
        &limits,
    )
}

pub(crate) fn seq_of(row: &Row) -> i64 {
    row.fields
        .get(field::VIGIL_SEQ)
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableKind {
    Events,
    Fixed,
}

pub(crate) struct Table {
    pub(crate) kind: TableKind,
    /// Column order for fixed tables.
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Row>,
}

impl Table {
    pub(crate) fn events() -> Table {
        Table {
            kind: TableKind::Events,
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn fixed(columns: Vec<String>, rows: Vec<Row>) -> Table {
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
            field::TIMESTAMP.to_string(),
            field::VIGIL_SEQ.to_string(),
            field::MESSAGE.to_string(),
        ];
        others.remove(field::VIGIL_SEQ);
        others.remove(field::MESSAGE);
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
            let mut bytes = row_bytes(row);
            for (field, calc) in assignments {
                let mut v = eval(calc, row);
                let old = row
                    .fields
                    .get(field)
                    .map_or(0, |o| 48 + field.len() + value_bytes(o));
                let mut new = 48 + field.len() + value_bytes(&v);
                if new > old && bytes - old + new > MAX_ROW_BYTES {
                    v = Value::Null;
                    new = 48 + field.len() + value_bytes(&v);
                }
                bytes = bytes - old + new;
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
                    .retain(|k, _| keep.contains(k.as_str()) || k == field::VIGIL_SEQ);
            }
            true
        }
        _ => true,
    }
}

/// Applies a row-by-row command to a table's rows, charging what it makes the rows grow: once
/// the rows take more than [`MAX_RESULT_BYTES`], the rest are cut and `truncated` says so.
fn apply_rows(c: &Command, rows: Vec<Row>, truncated: &mut Option<String>) -> Vec<Row> {
    let mut total: usize = rows.iter().map(row_bytes).sum();
    let mut kept = Vec::with_capacity(rows.len());
    for mut row in rows {
        let before = row_bytes(&row);
        if !apply_streaming(c, &mut row) {
            total -= before;
            continue;
        }
        let after = row_bytes(&row);
        total = total - before + after;
        if after > before && total > MAX_RESULT_BYTES {
            // This row and the ones not yet reached are dropped with the iterator.
            *truncated = Some(table_memory_message(kept.len()));
            break;
        }
        kept.push(row);
    }
    kept
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
            table.rows = apply_rows(c, std::mem::take(&mut table.rows), truncated);
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
        Command::Stats { .. }
        | Command::Timechart { .. }
        | Command::Top { .. }
        | Command::Partial(_) => aggregate(c, table.rows.into_iter(), truncated),
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

/// Group keys compare as text, so `403` and `"403"` are one group; which value names the group
/// must not depend on the order events arrive in (the index counts in its own order). A typed
/// value (number, boolean) wins over a string.
fn prefer_typed(current: &mut [Value], candidate: Vec<Value>) {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Str(_) => 2,
            Value::Float(_) | Value::Ip(_) => 1,
            _ => 0,
        }
    }
    for (cur, new) in current.iter_mut().zip(candidate) {
        if rank(&new) < rank(cur) {
            *cur = new;
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Acc {
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
    /// `dc` as a HyperLogLog sketch: only when merging shards' states, one of which had too many
    /// distinct values to send them all ([`crate::distributed`]).
    Sketch(Box<crate::sketch::Hll>),
    /// A percentile over more than [`MAX_SAMPLES`] values, as a mergeable sketch
    /// ([`crate::quantiles`]).
    Quantiles(f64, Box<crate::quantiles::Quantiles>),
}

/// Values kept per group for `values()`.
pub(crate) const MAX_VALUES: usize = 100;
/// Samples kept per group for percentiles.
pub(crate) const MAX_SAMPLES: usize = 100_000;

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

    /// Adds a row's value; `weight` (rows it stands for) counts for `count`.
    /// What the accumulator keeps is charged to `budget`; a value it has no room for is left out.
    pub(crate) fn add(
        &mut self,
        value: Option<Value>,
        time: i64,
        weight: u64,
        budget: &mut Budget,
    ) {
        let values: Vec<Value> = match value {
            None => {
                if let Acc::Count(n) = self {
                    *n += weight;
                }
                return;
            }
            Some(Value::List(items)) => items,
            Some(v) => vec![v],
        };
        for v in values {
            match self {
                Acc::Count(n) => *n += weight,
                Acc::Distinct(set) => {
                    let v = v.to_string();
                    if set.len() < MAX_GROUPS && !set.contains(&v) && budget.take(32 + v.len()) {
                        set.insert(v);
                    }
                }
                Acc::Sum(s, all_int) => {
                    if let Some(x) = numeric(&v) {
                        *s += x;
                        *all_int &= matches!(v, Value::Int(_));
                    }
                }
                Acc::Avg(s, n) => {
                    if let Some(x) = numeric(&v) {
                        *s += x;
                        *n += 1;
                    }
                }
                Acc::Min(m) => {
                    if m.as_ref()
                        .is_none_or(|cur| extreme_cmp(&v, cur) == Ordering::Less)
                        && budget.replace(m.as_ref().map_or(0, value_bytes), value_bytes(&v))
                    {
                        *m = Some(v);
                    }
                }
                Acc::Max(m) => {
                    if m.as_ref()
                        .is_none_or(|cur| extreme_cmp(&v, cur) == Ordering::Greater)
                        && budget.replace(m.as_ref().map_or(0, value_bytes), value_bytes(&v))
                    {
                        *m = Some(v);
                    }
                }
                Acc::Values(set) => {
                    // The smallest MAX_VALUES values, whatever order they come in (an index
                    // counts groups in no particular order).
                    let v = v.to_string();
                    if set.contains(&v) {
                        continue;
                    }
                    if set.len() < MAX_VALUES {
                        if budget.take(32 + v.len()) {
                            set.insert(v);
                        }
                    } else if let Some(last) = set.last()
                        && v < *last
                        && budget.replace(last.len(), v.len())
                    {
                        set.pop_last();
                        set.insert(v);
                    }
                }
                Acc::Earliest(e) => {
                    if e.as_ref().is_none_or(|(t, _)| time < *t)
                        && budget.replace(
                            e.as_ref().map_or(0, |(_, o)| value_bytes(o)),
                            value_bytes(&v),
                        )
                    {
                        *e = Some((time, v));
                    }
                }
                Acc::Latest(l) => {
                    if l.as_ref().is_none_or(|(t, _)| time >= *t)
                        && budget.replace(
                            l.as_ref().map_or(0, |(_, o)| value_bytes(o)),
                            value_bytes(&v),
                        )
                    {
                        *l = Some((time, v));
                    }
                }
                Acc::Sketch(h) => h.insert(&v.to_string()),
                Acc::Percentile(p, samples) => {
                    if let Some(x) = numeric(&v) {
                        if samples.len() < MAX_SAMPLES {
                            if budget.take(8) {
                                samples.push(x);
                            }
                        } else {
                            // More values than kept exactly: from here on, a sketch of all.
                            let mut sketch = crate::quantiles::Quantiles::new();
                            samples.iter().for_each(|s| sketch.insert(*s));
                            sketch.insert(x);
                            budget.percentile_estimated = true;
                            *self = Acc::Quantiles(*p, Box::new(sketch));
                        }
                    }
                }
                Acc::Quantiles(_, sketch) => {
                    if let Some(x) = numeric(&v) {
                        // A new bucket is charged; without room, the value is left out.
                        if sketch.has_bucket_for(x) || budget.take(16) {
                            sketch.insert(x);
                        }
                    }
                }
            }
        }
    }

    pub(crate) fn finish(self) -> Value {
        match self {
            Acc::Count(n) => Value::Int(n as i64),
            Acc::Distinct(s) => Value::Int(s.len() as i64),
            Acc::Sketch(h) => Value::Int(h.estimate().min(i64::MAX as u64) as i64),
            Acc::Sum(s, true) if s.abs() < 9e15 => Value::Int(s as i64),
            Acc::Sum(s, _) => Value::float(s),
            Acc::Avg(_, 0) => Value::Null,
            Acc::Avg(s, n) => Value::float(s / n as f64),
            Acc::Min(v) | Acc::Max(v) => v.unwrap_or(Value::Null),
            Acc::Values(s) => Value::List(s.into_iter().map(Value::Str).collect()),
            Acc::Earliest(e) | Acc::Latest(e) => e.map_or(Value::Null, |(_, v)| v),
            Acc::Quantiles(p, sketch) => sketch.percentile(p).map_or(Value::Null, Value::float),
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
        Command::Partial(inner) => aggregate_as(inner, rows, truncated, Mode::State),
        c => aggregate_as(c, rows, truncated, Mode::Plain),
    }
}

/// What an aggregation reads and writes: events and final values ([`Mode::Plain`]), events and
/// mergeable states (a shard's part, [`Mode::State`]), or states and final values (a cluster's
/// coordinator merging the shards' parts, [`Mode::Merge`]: each row holds, under each
/// aggregation's output name, a state one shard computed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Plain,
    State,
    Merge,
}

impl Acc {
    /// The final value, or the mergeable state in [`Mode::State`].
    fn output(self, mode: Mode) -> Value {
        match mode {
            Mode::State => self.state(),
            _ => self.finish(),
        }
    }
}

pub(crate) fn aggregate_as(
    c: &Command,
    rows: impl Iterator<Item = Row>,
    truncated: &mut Option<String>,
    mode: Mode,
) -> Table {
    match c {
        Command::Stats { aggs, by } => {
            let mut budget = Budget::default();
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
                if !groups.contains_key(&key)
                    && !budget.take(
                        key_bytes(&key, &key_values) + aggs.len() * std::mem::size_of::<Acc>(),
                    )
                {
                    continue;
                }
                let entry = groups.entry(key).or_insert_with(|| {
                    (
                        key_values.clone(),
                        aggs.iter().map(|a| Acc::new(a.func)).collect(),
                    )
                });
                prefer_typed(&mut entry.0, key_values);
                for (acc, agg) in entry.1.iter_mut().zip(aggs) {
                    if mode == Mode::Merge {
                        if let Some(state) = row.fields.get(&agg.name) {
                            acc.absorb(state, &mut budget);
                        }
                        continue;
                    }
                    let value = match &agg.field {
                        Some(f) => match row.get(f) {
                            Some(v) => Some(v),
                            None => continue,
                        },
                        None => None,
                    };
                    acc.add(value, row.time.unwrap_or(0), row.weight, &mut budget);
                }
            }
            if budget.over {
                truncated.get_or_insert_with(groups_memory_message);
            }
            if let Some(message) = budget.estimate_message() {
                truncated.get_or_insert(message);
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
                        fields.insert(agg.name.clone(), acc.output(mode));
                    }
                    Row {
                        time: None,
                        fields,
                        weight: 1,
                    }
                })
                .collect();
            Table::fixed(columns, rows)
        }
        Command::Timechart { span, aggs, by } => {
            let span_ns = span.saturating_mul(1_000_000_000).max(1);
            let mut budget = Budget::default();
            let mut buckets: BTreeMap<i64, BTreeMap<String, Vec<Acc>>> = BTreeMap::new();
            let mut series: BTreeSet<String> = BTreeSet::new();
            let mut evicted = 0usize;
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
                if !series.contains(&split) {
                    // Past MAX_SERIES the chart keeps the smallest names, whatever order the rows
                    // come in: the same chart from an index, a scan or merged shards (each
                    // shard's smallest hold the smallest of all).
                    if series.len() >= MAX_SERIES {
                        truncated.get_or_insert_with(|| {
                            format!(
                                "more than {MAX_SERIES} series; only the first {MAX_SERIES} by name were charted"
                            )
                        });
                        match series.last() {
                            Some(largest) if split < *largest => {
                                let largest = largest.clone();
                                series.remove(&largest);
                                evicted += 1;
                            }
                            _ => continue,
                        }
                    }
                    if !budget.take(32 + split.len()) {
                        continue;
                    }
                    series.insert(split.clone());
                    if evicted >= MAX_SERIES {
                        // Drop the cells of series no longer charted (their room comes back).
                        for cells in buckets.values_mut() {
                            cells.retain(|s, _| {
                                let keep = series.contains(s);
                                if !keep {
                                    budget.give(cell_bytes(s, aggs.len()));
                                }
                                keep
                            });
                        }
                        evicted = 0;
                    }
                }
                let cells = buckets.entry(bucket).or_default();
                if !cells.contains_key(&split) && !budget.take(cell_bytes(&split, aggs.len())) {
                    continue;
                }
                let accs = cells
                    .entry(split)
                    .or_insert_with(|| aggs.iter().map(|a| Acc::new(a.func)).collect());
                for (acc, agg) in accs.iter_mut().zip(aggs) {
                    if mode == Mode::Merge {
                        if let Some(state) = row.fields.get(&agg.name) {
                            acc.absorb(state, &mut budget);
                        }
                        continue;
                    }
                    let value = match &agg.field {
                        Some(f) => match row.get(f) {
                            Some(v) => Some(v),
                            None => continue,
                        },
                        None => None,
                    };
                    acc.add(value, t, row.weight, &mut budget);
                }
            }
            for cells in buckets.values_mut() {
                cells.retain(|s, _| by.is_none() || series.contains(s));
            }
            buckets.retain(|_, cells| !cells.is_empty());
            if budget.over {
                truncated.get_or_insert_with(groups_memory_message);
            }
            if let Some(message) = budget.estimate_message() {
                truncated.get_or_insert(message);
            }
            let mut columns = vec!["_time".to_string()];
            match by {
                Some(_) => columns.extend(series.iter().cloned()),
                None => columns.extend(aggs.iter().map(|a| a.name.clone())),
            }
            // Every row gets a cell per series: keep the buckets whose full rows fit.
            if by.is_some() {
                let per_row = 64 + series.iter().map(|s| 48 + s.len() + 16).sum::<usize>();
                let fit = MAX_RESULT_BYTES / per_row;
                if buckets.len() > fit {
                    while buckets.len() > fit {
                        buckets.pop_first();
                    }
                    truncated.get_or_insert_with(|| {
                        format!(
                            "the chart was cut to its last {fit} buckets by the query memory limit ({} MiB); add a wider span or fewer series",
                            MAX_RESULT_BYTES / (1024 * 1024)
                        )
                    });
                }
            }
            let rows = buckets
                .into_iter()
                .map(|(bucket, per_series)| {
                    let mut fields = BTreeMap::new();
                    for (split, accs) in per_series {
                        match by {
                            Some(_) => {
                                let first = accs
                                    .into_iter()
                                    .next()
                                    .map_or(Value::Null, |a| a.output(mode));
                                fields.insert(split, first);
                            }
                            None => {
                                for (agg, acc) in aggs.iter().zip(accs) {
                                    fields.insert(agg.name.clone(), acc.output(mode));
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
                        weight: 1,
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
            let mut budget = Budget::default();
            let mut counts: HashMap<Vec<String>, (Vec<Value>, u64)> = HashMap::new();
            let mut total = 0u64;
            for row in rows {
                let values: Option<Vec<Value>> = fields.iter().map(|f| row.get(f)).collect();
                let Some(values) = values else { continue };
                let key: Vec<String> = values.iter().map(Value::to_string).collect();
                total += row.weight;
                if !counts.contains_key(&key) && counts.len() >= MAX_GROUPS {
                    truncated
                        .get_or_insert_with(|| format!("more than {MAX_GROUPS} distinct values"));
                    continue;
                }
                if !counts.contains_key(&key) && !budget.take(key_bytes(&key, &values)) {
                    continue;
                }
                let entry = counts.entry(key).or_insert((values.clone(), 0));
                prefer_typed(&mut entry.0, values);
                entry.1 += row.weight;
            }
            if budget.over {
                truncated.get_or_insert_with(groups_memory_message);
            }
            if let Some(message) = budget.estimate_message() {
                truncated.get_or_insert(message);
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
                        weight: 1,
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

/// Two values as one string, or null past [`MAX_CALC_STRING`].
fn concat(x: &Value, y: &Value) -> Value {
    let (x, y) = (text(x), text(y));
    if x.len() + y.len() > MAX_CALC_STRING {
        return Value::Null;
    }
    Value::Str(x + &y)
}

/// One binary operation on evaluated operands.
fn binary(x: Value, op: BinOp, y: Value) -> Value {
    match op {
        BinOp::And => Value::Bool(truthy(&x) && truthy(&y)),
        BinOp::Or => Value::Bool(truthy(&x) || truthy(&y)),
        BinOp::Concat => concat(&x, &y),
        BinOp::Cmp(op) => {
            if matches!(x, Value::Null) || matches!(y, Value::Null) {
                return Value::Bool(false);
            }
            let o = match (num(&x), num(&y)) {
                (Some(p), Some(q)) => p.partial_cmp(&q),
                _ => Some(text(&x).cmp(&text(&y))),
            };
            Value::Bool(cmp_ord(o, op))
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
            _ if arith == BinOp::Add => concat(&x, &y),
            _ => Value::Null,
        },
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
        Calc::Binary(..) => {
            // A chain like `a + b + c …` or `x OR y OR z …` is a left-deep spine of `Binary`
            // nodes: walk it by iteration so its length costs no stack.
            let mut rights = Vec::new();
            let mut node = c;
            while let Calc::Binary(a, op, b) = node {
                rights.push((*op, b.as_ref()));
                node = a;
            }
            let mut acc = eval(node, row);
            for (op, b) in rights.into_iter().rev() {
                acc = binary(acc, op, eval(b, row));
            }
            acc
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` events of about `size` bytes of message each, times 1..=n seconds.
    fn big_events(n: usize, size: usize) -> Vec<(u64, Event)> {
        (0..n)
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(i as i64 + 1));
                e.insert("message", format!("{i:08} {}", "x".repeat(size)));
                (i as u64, e)
            })
            .collect()
    }

    fn limits(max_rows: usize) -> Limits {
        Limits::rows(max_rows)
    }

    fn result_bytes(r: &QueryResult) -> usize {
        r.rows.iter().flatten().map(value_bytes).sum()
    }

    #[test]
    fn a_plain_search_keeps_the_newest_rows_within_the_memory_limit() {
        // 64 MiB of events, twice the limit, and a row limit that would take them all.
        let events = big_events(1024, 64 * 1024);
        let r = run(&crate::parse("*").unwrap(), events, limits(100_000));
        assert!(r.truncated);
        let message = r.message.clone().unwrap();
        assert!(message.contains("query memory limit (32 MiB)"), "{message}");
        assert!(result_bytes(&r) <= MAX_RESULT_BYTES);
        assert!(r.rows.len() > 400 && r.rows.len() < 512, "{}", r.rows.len());
        // Newest first, and the newest of all is there.
        let seqs: Vec<i64> = r.rows.iter().map(|row| row[1].as_i64().unwrap()).collect();
        assert_eq!(seqs[0], 1023);
        assert!(seqs.windows(2).all(|w| w[0] > w[1]));
        assert!(message.contains(&format!("cut to {} rows", r.rows.len())));

        // Within the limit, only the row limit speaks.
        let r = run(
            &crate::parse("*").unwrap(),
            big_events(100, 1024),
            limits(10),
        );
        assert_eq!(r.rows.len(), 10);
        assert_eq!(r.rows[0][1].as_i64(), Some(99));
        assert_eq!(
            r.message.as_deref(),
            Some("only the first 10 rows are returned")
        );
    }

    #[test]
    fn tables_and_eval_strings_are_bounded_too() {
        let events = big_events(1024, 64 * 1024);
        let r = run(
            &crate::parse("* | table message | sort -message").unwrap(),
            events,
            limits(100_000),
        );
        assert!(r.truncated);
        assert!(r.message.as_deref().unwrap().contains("query memory limit"));
        assert!(result_bytes(&r) <= MAX_RESULT_BYTES);

        // Doubling a string each step would need 2^20 times the message.
        let doubling = (0..20)
            .map(|i| format!("s{} = s{i} . s{i}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let q = format!("* | eval s0 = message, {doubling} | table s13 s14 s20");
        let r = run(&crate::parse(&q).unwrap(), big_events(2, 64), limits(10));
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0][0].as_str().map(str::len), Some(73 << 13));
        assert_eq!(r.rows[0][1], Value::Null, "past MAX_CALC_STRING");
        assert!(
            r.rows[0][2]
                .as_str()
                .is_some_and(|s| s.len() <= MAX_CALC_STRING)
        );
    }

    #[test]
    fn eval_cannot_grow_a_row_past_the_row_limit() {
        let (seq, event) = big_events(1, 500 * 1024).pop().unwrap();
        let mut row = Row::from_event(seq, event);
        // Sixty copies of a 1 MiB string would be 60 MiB in one row.
        let copies = (0..60)
            .map(|i| format!("c{i} = a"))
            .collect::<Vec<_>>()
            .join(", ");
        let q = format!("* | eval a = message . message, {copies}");
        let pipeline = crate::parse(&q).unwrap();
        assert!(apply_streaming(&pipeline.commands[0], &mut row));
        assert!(row_bytes(&row) <= MAX_ROW_BYTES, "{}", row_bytes(&row));
        assert!(row.get("c0").is_some_and(|v| v.as_str().is_some()));
        assert_eq!(row.get("c59"), Some(Value::Null));
    }

    #[test]
    fn commands_that_grow_buffered_rows_are_charged() {
        // 400 rows of 64 KiB (25 MiB) fit; eval then makes each 448 KiB (175 MiB).
        let rows: Vec<Row> = big_events(400, 64 * 1024)
            .into_iter()
            .map(|(seq, e)| Row::from_event(seq, e))
            .collect();
        let q = "* | eval b = message . message, c = b, d = b";
        let pipeline = crate::parse(q).unwrap();
        let mut truncated = None;
        let table = apply(
            &pipeline.commands[0],
            Table {
                kind: TableKind::Events,
                columns: Vec::new(),
                rows,
            },
            &mut truncated,
        );
        let bytes: usize = table.rows.iter().map(row_bytes).sum();
        assert!(bytes <= MAX_RESULT_BYTES, "{bytes}");
        assert!(table.rows.len() < 400 && !table.rows.is_empty());
        let message = truncated.unwrap();
        assert!(message.contains("query memory limit (32 MiB)"), "{message}");
        assert!(!message.contains("stats"), "{message}");

        // The whole query says so too.
        let q = "* | sort message | eval b = message . message, c = b, d = b";
        let r = run(
            &crate::parse(q).unwrap(),
            big_events(400, 64 * 1024),
            limits(1000),
        );
        assert!(r.truncated);
        assert!(r.message.unwrap().contains("query memory limit"));
    }

    #[test]
    fn aggregations_are_charged_against_the_memory_limit() {
        // 1024 distinct 64 KiB messages: 64 MiB of group keys, twice the limit.
        for q in [
            "* | stats count by message",
            "* | stats dc(message)",
            "* | stats values(message) by k",
            "* | top limit=5 message",
            "* | timechart span=1s count by message",
            "* | eval k = 1 | stats max(message) min(message) latest(message) by seq",
        ] {
            let mut events = big_events(1024, 64 * 1024);
            for (seq, e) in &mut events {
                e.insert("host", "h");
                e.insert("seq", *seq as i64);
                e.insert("k", (*seq % 20) as i64);
            }
            let rows = events.into_iter().map(|(seq, e)| Row::from_event(seq, e));
            let pipeline = crate::parse(q).unwrap();
            let command = pipeline.commands.last().unwrap();
            let mut truncated = None;
            let table = aggregate(command, rows, &mut truncated);
            let message = truncated.unwrap_or_else(|| panic!("{q}: not cut"));
            assert!(
                message.contains("query memory limit (32 MiB)"),
                "{q}: {message}"
            );
            assert!(!message.contains("a stats command"), "{q}: {message}");
            let bytes: usize = table.rows.iter().map(row_bytes).sum();
            assert!(bytes <= MAX_RESULT_BYTES + (1 << 20), "{q}: {bytes}");
        }

        // Within the limit, nothing is cut.
        let r = run(
            &crate::parse("* | stats count by message").unwrap(),
            big_events(100, 1024),
            limits(1000),
        );
        assert_eq!((r.rows.len(), r.truncated), (100, false));
    }

    #[test]
    fn cidrmatch_with_a_prefix_past_the_address_is_false_not_a_panic() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(!in_cidr(v4("10.0.0.1"), v4("10.0.0.0"), 40));
        assert!(!in_cidr(v4("10.0.0.0"), v4("10.0.0.0"), 255));
        assert!(!in_cidr(v4("::1"), v4("::"), 129));
        assert!(in_cidr(v4("10.0.0.0"), v4("10.0.0.0"), 32));
        assert!(in_cidr(v4("::1"), v4("::1"), 128));
        let mut e = Event::new(Timestamp::from_secs(1));
        e.insert("message", "m");
        for (q, rows) in [
            (r#"* | where cidrmatch("10.0.0.0/40", "10.0.0.1")"#, 0),
            (r#"* | where cidrmatch("::/200", "::1")"#, 0),
            (r#"* | where cidrmatch("10.0.0.0/8", "10.0.0.1")"#, 1),
        ] {
            let r = run(&crate::parse(q).unwrap(), vec![(1, e.clone())], limits(10));
            assert_eq!(r.rows.len(), rows, "{q}");
        }
    }
}
