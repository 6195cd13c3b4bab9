//! Running one query over many shards: the part each shard runs, and the merge of their partial
//! results into the answer one store holding every event would give.
//!
//! [`plan`] splits a [`Pipeline`] at its first aggregating command (Splunk's "prestats"):
//!
//! - `stats`/`timechart` whose aggregations are all counts run unchanged on each shard (so the
//!   index counts them itself); counts add.
//! - Other `stats`/`timechart` run as [`Command::Partial`]: the same groups, each cell holding
//!   its aggregation's mergeable state — sums and the all-integer flag, avg as sum and count,
//!   min/max, earliest/latest with their time, the distinct values of `dc` and `values`, the
//!   values of percentiles (or their [`crate::quantiles`] sketch past 100,000). The coordinator
//!   merges the states group by group and finishes them as one store would, with the same
//!   bounds ([`crate::exec::MAX_GROUPS`], 100 `values`, the memory limit); a bound reached on a
//!   shard is reported, never silently dropped.
//! - `top`/`rare` run as `stats count by FIELDS` on each shard (every value's count, not each
//!   shard's top: a shard's top N is not the cluster's), merged, then ranked.
//! - Anything else (plain searches, `table`, `sort`, `dedup`, `head` before an aggregation…):
//!   each shard runs the row-by-row commands at the start (`search`, `where`, `eval`, `rename`,
//!   `fields`, and a `head N` right after them), returns its events, and the coordinator runs
//!   the rest of the pipeline over them in ledger order (newest first for event lists). A plain
//!   search asks each shard for only the newest `max_rows` events.
//!
//! Every command after the first aggregation runs on the coordinator over the merged table.

use std::collections::BTreeMap;

use vigil_event::{Timestamp, Value, field};

use crate::ast::{Agg, AggFunc, Command, Pipeline};
use crate::exec::{
    Acc, Budget, Limits, MAX_ROWS, Mode, QueryResult, Row, Table, aggregate_as, alias, finish,
    memory_message, row_bytes, seq_of,
};
use crate::quantiles::Quantiles;
use crate::sketch::Hll;

/// The distinct values per group a shard sends for `dc`; past it, a HyperLogLog sketch
/// ([`crate::sketch`]), and the merged count is an estimate the result's message states.
pub const DC_EXACT: usize = 10_000;

/// The column a shard's per-value counts for `top`/`rare` come back in.
const TOP_COUNT: &str = "vigil.shard.count";

/// How one query runs over many shards: what each shard runs, then how the coordinator merges.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The pipeline each shard runs (over its own events, on its index).
    pub shard: Pipeline,
    /// Rows each shard returns at most; `None`: the caller's `max_rows`.
    shard_rows: Option<usize>,
    merge: Merge,
}

#[derive(Debug, Clone, PartialEq)]
enum Merge {
    /// Shards return events; the coordinator runs `rest` over them.
    Rows { rest: Vec<Command> },
    /// Shards return per-group states (or counts) of `command`; `rest` runs after the merge.
    Aggregate {
        command: Command,
        rest: Vec<Command>,
    },
    /// Shards return every value's count; `command` (`top`/`rare`) ranks the sums.
    Top {
        command: Command,
        rest: Vec<Command>,
    },
}

/// Whether a command works on one row at a time (the same on each shard as on all events).
fn row_by_row(c: &Command) -> bool {
    matches!(
        c,
        Command::Search(_)
            | Command::Where(_)
            | Command::Eval(_)
            | Command::Rename(_)
            | Command::Fields { .. }
    )
}

/// Whether every aggregation is a count (whose state is its value, and which an index counts).
fn only_counts(aggs: &[Agg]) -> bool {
    aggs.iter().all(|a| a.func == AggFunc::Count)
}

/// Splits `pipeline` into the part each shard runs and the merge (see the module docs).
pub fn plan(pipeline: &Pipeline) -> Plan {
    let commands = &pipeline.commands;
    let prefix = commands.iter().take_while(|c| row_by_row(c)).count();
    let shard = |cmds: Vec<Command>| Pipeline {
        search: pipeline.search.clone(),
        earliest: pipeline.earliest.clone(),
        latest: pipeline.latest.clone(),
        commands: cmds,
    };
    let mut shard_commands = commands[..prefix].to_vec();
    let rest = commands.get(prefix + 1..).unwrap_or_default().to_vec();
    match commands.get(prefix) {
        Some(c @ (Command::Stats { aggs, .. } | Command::Timechart { aggs, .. })) => {
            shard_commands.push(if only_counts(aggs) {
                c.clone()
            } else {
                Command::Partial(Box::new(c.clone()))
            });
            Plan {
                shard: shard(shard_commands),
                shard_rows: Some(MAX_ROWS),
                merge: Merge::Aggregate {
                    command: c.clone(),
                    rest,
                },
            }
        }
        Some(c @ Command::Top { fields, .. }) => {
            shard_commands.push(Command::Stats {
                aggs: vec![Agg {
                    func: AggFunc::Count,
                    field: None,
                    name: TOP_COUNT.into(),
                }],
                by: fields.clone(),
            });
            Plan {
                shard: shard(shard_commands),
                shard_rows: Some(MAX_ROWS),
                merge: Merge::Top {
                    command: c.clone(),
                    rest,
                },
            }
        }
        None => Plan {
            // A plain event list: each shard's newest `max_rows` hold the newest of all.
            shard: shard(shard_commands),
            shard_rows: None,
            merge: Merge::Rows { rest: Vec::new() },
        },
        Some(next) => {
            // A `head N` right after the row-by-row commands takes the newest N events: the
            // newest N of all are among each shard's newest N.
            if let Command::Head(_) = next {
                shard_commands.push(next.clone());
            }
            Plan {
                shard: shard(shard_commands),
                shard_rows: Some(MAX_ROWS),
                merge: Merge::Rows {
                    rest: commands[prefix..].to_vec(),
                },
            }
        }
    }
}

impl Plan {
    /// The limits each shard runs its part with, from the caller's.
    pub fn shard_limits(&self, limits: Limits) -> Limits {
        Limits {
            max_rows: self.shard_rows.unwrap_or(limits.max_rows),
            ..limits
        }
    }

    /// Merges the shards' results (each from [`Plan::shard`] run with [`Plan::shard_limits`])
    /// into the answer over all their events. `missing` holds the shards that did not answer,
    /// each with why: the result lists them and its message says so.
    pub fn merge(
        &self,
        parts: Vec<QueryResult>,
        limits: Limits,
        missing: Vec<(String, String)>,
    ) -> QueryResult {
        let scanned = parts.iter().map(|p| p.scanned).sum();
        let mut truncated = parts.iter().find(|p| p.truncated).map(|p| {
            p.message
                .clone()
                .unwrap_or_else(|| "a shard's result was cut".into())
        });
        let mut result = match &self.merge {
            Merge::Rows { rest } => {
                let mut rows = Vec::new();
                for part in parts {
                    rows.extend(event_rows(part));
                }
                // What one store reads: events in ledger (stream) order.
                rows.sort_by_key(|r| (stream_seq_of(r), seq_of(r)));
                let newest_only = rest.is_empty();
                let rows = within_memory(rows, newest_only, &mut truncated);
                let table = Table {
                    rows,
                    ..Table::events()
                };
                finish(table, rest, truncated, scanned, &limits)
            }
            Merge::Aggregate { command, rest } => {
                let rows = parts
                    .into_iter()
                    .flat_map(|part| state_rows(command, part))
                    .collect::<Vec<_>>();
                let table = aggregate_as(command, rows.into_iter(), &mut truncated, Mode::Merge);
                finish(table, rest, truncated, scanned, &limits)
            }
            Merge::Top { command, rest } => {
                let rows = parts.into_iter().flat_map(count_rows).collect::<Vec<_>>();
                let table = aggregate_as(command, rows.into_iter(), &mut truncated, Mode::Plain);
                finish(table, rest, truncated, scanned, &limits)
            }
        };
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(|(name, _)| name.clone()).collect();
            let why: Vec<String> = missing
                .iter()
                .filter(|(_, why)| !why.is_empty())
                .map(|(name, why)| format!("{name}: {why}"))
                .collect();
            let mut note = format!(
                "shards {} did not answer: their events are not in this result",
                names.join(", ")
            );
            if !why.is_empty() {
                note.push_str(&format!(" ({})", why.join("; ")));
            }
            result.message = Some(match result.message.take() {
                Some(m) => format!("{note}; {m}"),
                None => note,
            });
            result.truncated = true;
            result.missing_shards = names;
        }
        result
    }
}

/// Keeps the rows that fit [`crate::exec::MAX_RESULT_BYTES`] (the newest when `newest_only`,
/// else the first in ledger order, as one store buffering them would).
fn within_memory(rows: Vec<Row>, newest_only: bool, truncated: &mut Option<String>) -> Vec<Row> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    if newest_only {
        order.reverse();
        order.sort_by(|&a, &b| {
            let (x, y) = (&rows[a], &rows[b]);
            y.time.cmp(&x.time)
        });
    }
    let mut budget = crate::exec::MAX_RESULT_BYTES;
    let mut keep = vec![false; rows.len()];
    for (kept, i) in order.into_iter().enumerate() {
        let bytes = row_bytes(&rows[i]);
        if bytes > budget {
            *truncated = Some(memory_message(kept));
            break;
        }
        budget -= bytes;
        keep[i] = true;
    }
    rows.into_iter()
        .zip(keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect()
}

fn stream_seq_of(row: &Row) -> i64 {
    row.fields
        .get(field::VIGIL_STREAM_SEQ)
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The time a result cell names (`_time`, `@timestamp`: RFC 3339 text).
fn cell_time(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| Timestamp::parse(s).ok())
        .map(Timestamp::as_nanos)
}

/// A shard's event list back as rows: the time from `@timestamp`, the other non-null cells as
/// fields — except a cell an alias column only borrowed from its ECS field (a result shows
/// `client_ip` as `source.ip` where an event has no `client_ip` of its own).
fn event_rows(part: QueryResult) -> impl Iterator<Item = Row> {
    let columns = part.columns;
    let position: BTreeMap<&str, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let borrowed_from: Vec<Option<usize>> = columns
        .iter()
        .map(|c| {
            let target = alias(c);
            (target != c)
                .then(|| position.get(target).copied())
                .flatten()
        })
        .collect();
    part.rows.into_iter().map(move |cells| {
        let mut time = None;
        let mut fields = BTreeMap::new();
        for (i, (name, v)) in columns.iter().zip(&cells).enumerate() {
            let borrowed = borrowed_from[i].is_some_and(|t| cells.get(t) == Some(v));
            if name == field::TIMESTAMP {
                time = cell_time(v);
            } else if !matches!(v, Value::Null) && !borrowed {
                fields.insert(name.clone(), v.clone());
            }
        }
        Row {
            time,
            fields,
            weight: 1,
        }
    })
}

/// A shard's aggregated table back as rows of states for [`Mode::Merge`].
fn state_rows(command: &Command, part: QueryResult) -> Vec<Row> {
    let columns = part.columns;
    let mut out = Vec::with_capacity(part.rows.len());
    match command {
        Command::Timechart {
            aggs, by: Some(by), ..
        } => {
            // Columns: `_time`, then one per series holding the first aggregation's state (or a
            // 0 filling a bucket the series has no event in).
            let Some(first) = aggs.first() else {
                return out;
            };
            for cells in part.rows {
                let mut cells = cells.into_iter();
                let time = cells.next().as_ref().and_then(cell_time);
                for (series, cell) in columns.iter().skip(1).zip(cells) {
                    let filler = !matches!(cell, Value::List(_)) && first.func != AggFunc::Count;
                    if filler {
                        continue;
                    }
                    let fields = BTreeMap::from([
                        (by.clone(), Value::Str(series.clone())),
                        (first.name.clone(), cell),
                    ]);
                    out.push(Row {
                        time,
                        fields,
                        weight: 1,
                    });
                }
            }
        }
        _ => {
            for cells in part.rows {
                let mut time = None;
                let mut fields = BTreeMap::new();
                for (name, v) in columns.iter().zip(cells) {
                    if matches!(name.as_str(), "_time" | field::TIMESTAMP) {
                        time = cell_time(&v);
                    }
                    fields.insert(name.clone(), v);
                }
                out.push(Row {
                    time,
                    fields,
                    weight: 1,
                });
            }
        }
    }
    out
}

/// A shard's `stats count by FIELDS` back as rows that stand for their count.
fn count_rows(part: QueryResult) -> Vec<Row> {
    let columns = part.columns;
    part.rows
        .into_iter()
        .filter_map(|cells| {
            let mut fields = BTreeMap::new();
            let mut weight = None;
            for (name, v) in columns.iter().zip(cells) {
                if name == TOP_COUNT {
                    weight = v.as_i64().and_then(|n| u64::try_from(n).ok());
                } else {
                    fields.insert(name.clone(), v);
                }
            }
            Some(Row {
                time: None,
                fields,
                weight: weight?,
            })
        })
        .collect()
}

impl Acc {
    /// The mergeable state of an aggregation on one shard ([`Command::Partial`]): a count as
    /// itself, everything else as a list (so it is never taken for the 0 `timechart` fills
    /// empty cells with).
    pub(crate) fn state(self) -> Value {
        match self {
            Acc::Count(n) => Value::Int(n as i64),
            Acc::Distinct(set) if set.len() > DC_EXACT => {
                let mut sketch = Hll::new();
                for v in &set {
                    sketch.insert(v);
                }
                Acc::Sketch(Box::new(sketch)).state()
            }
            Acc::Sketch(h) => Value::Map(BTreeMap::from([(
                "hll".to_string(),
                Value::Str(h.to_hex()),
            )])),
            Acc::Distinct(set) => {
                let mut values: Vec<String> = set.into_iter().collect();
                values.sort_unstable();
                Value::List(values.into_iter().map(Value::Str).collect())
            }
            Acc::Sum(s, all_int) => Value::List(vec![Value::float(s), Value::Bool(all_int)]),
            Acc::Avg(s, n) => Value::List(vec![Value::float(s), Value::Int(n as i64)]),
            Acc::Min(v) | Acc::Max(v) => Value::List(v.into_iter().collect()),
            Acc::Values(set) => Value::List(set.into_iter().map(Value::Str).collect()),
            Acc::Earliest(e) | Acc::Latest(e) => Value::List(match e {
                Some((t, v)) => vec![Value::Int(t), v],
                None => Vec::new(),
            }),
            Acc::Percentile(_, samples) => {
                Value::List(samples.into_iter().map(Value::float).collect())
            }
            Acc::Quantiles(_, sketch) => sketch.to_value(),
        }
    }

    /// Merges a state one shard computed ([`Acc::state`]). A state of the wrong shape (a
    /// hostile or mismatched shard) adds nothing.
    pub(crate) fn absorb(&mut self, state: &Value, budget: &mut Budget) {
        let items = match state {
            Value::List(items) => items.as_slice(),
            _ => &[],
        };
        if let Value::Map(m) = state
            && let Some(sketch) = m.get("hll").and_then(Value::as_str).and_then(Hll::from_hex)
        {
            // A shard with too many distinct values to send: from here on, an estimate.
            let mut merged = match self {
                Acc::Distinct(set) => {
                    let mut h = Hll::new();
                    for v in set.iter() {
                        h.insert(v);
                    }
                    h
                }
                Acc::Sketch(h) => std::mem::replace(h.as_mut(), Hll::new()),
                _ => return,
            };
            merged.merge(&sketch);
            *self = Acc::Sketch(Box::new(merged));
            budget.estimated = true;
            return;
        }
        if let Some(sketch) = Quantiles::from_value(state) {
            // A shard with more values than it keeps exactly: from here on, an estimate.
            let merged = match self {
                Acc::Percentile(p, samples) => {
                    let mut merged = Quantiles::new();
                    samples.iter().for_each(|x| merged.insert(*x));
                    *self = Acc::Quantiles(*p, Box::new(merged));
                    self
                }
                Acc::Quantiles(..) => self,
                _ => return,
            };
            if let Acc::Quantiles(_, merged) = merged
                && budget.take(16 * sketch.buckets())
            {
                merged.merge(&sketch);
                budget.percentile_estimated = true;
            }
            return;
        }
        match self {
            Acc::Count(n) => {
                if let Some(k) = state.as_i64().and_then(|k| u64::try_from(k).ok()) {
                    *n = n.saturating_add(k).min(i64::MAX as u64);
                }
            }
            Acc::Sum(s, all_int) => {
                if let [x, Value::Bool(b)] = items
                    && let Some(x) = x.as_f64()
                {
                    *s += x;
                    *all_int &= *b;
                }
            }
            Acc::Avg(s, n) => {
                if let [x, Value::Int(k)] = items
                    && let (Some(x), Ok(k)) = (x.as_f64(), u64::try_from(*k))
                {
                    *s += x;
                    *n = n.saturating_add(k);
                }
            }
            Acc::Earliest(_) | Acc::Latest(_) => {
                if let [Value::Int(t), v] = items
                    && !matches!(v, Value::List(_))
                {
                    self.add(Some(v.clone()), *t, 1, budget);
                }
            }
            // Samples: each is one value the shard kept, added as an event's (past
            // MAX_SAMPLES the accumulator turns into a sketch of all of them).
            Acc::Percentile(..) | Acc::Quantiles(..) => {
                for x in items.iter().filter_map(Value::as_f64) {
                    self.add(Some(Value::float(x)), 0, 1, budget);
                }
            }
            // Sets and extremes: each item is one value the shard kept, added as an event's.
            Acc::Distinct(_) | Acc::Sketch(_) | Acc::Values(_) | Acc::Min(_) | Acc::Max(_) => {
                for v in items {
                    if !matches!(v, Value::List(_) | Value::Map(_)) {
                        self.add(Some(v.clone()), 0, 1, budget);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn limits(max_rows: usize) -> Limits {
        Limits::rows(max_rows)
    }

    #[test]
    fn counts_run_unchanged_on_shards_so_the_index_counts_them() {
        for q in [
            "a | stats count by host",
            "a | timechart span=1h count by host",
            "a | search b | stats count, count(user) | where count > 2",
        ] {
            let pipeline = parse(q).unwrap();
            let p = plan(&pipeline);
            let upto = p.shard.commands.len();
            assert_eq!(p.shard.commands, pipeline.commands[..upto], "{q}");
            assert_eq!(p.shard_limits(limits(10)).max_rows, MAX_ROWS, "{q}");
        }
        let pipeline = parse("a | stats count by host").unwrap();
        assert!(crate::count_pushdown(&plan(&pipeline).shard).is_some());
    }

    #[test]
    fn other_aggregations_run_as_partials_and_top_as_counts() {
        let p = plan(&parse("a | eval x = 1 | stats avg(bytes) by host | sort -host").unwrap());
        assert!(matches!(
            p.shard.commands[..],
            [Command::Eval(_), Command::Partial(_)]
        ));
        let p = plan(&parse("a | top 3 host").unwrap());
        assert!(matches!(&p.shard.commands[..], [Command::Stats { by, .. }] if by == &["host"]));
        assert!(crate::count_pushdown(&p.shard).is_some());
    }

    #[test]
    fn event_lists_ask_shards_for_what_the_merge_needs() {
        let p = plan(&parse("failed user=root").unwrap());
        assert!(p.shard.commands.is_empty());
        assert_eq!(p.shard_limits(limits(25)).max_rows, 25);
        let p = plan(&parse("failed | where x > 1 | head 7 | table a").unwrap());
        assert!(matches!(
            p.shard.commands[..],
            [Command::Where(_), Command::Head(7)]
        ));
        let p = plan(&parse("failed | dedup host | head 5").unwrap());
        assert!(p.shard.commands.is_empty());
        assert_eq!(p.shard_limits(limits(25)).max_rows, MAX_ROWS);
    }

    #[test]
    fn states_of_the_wrong_shape_add_nothing() {
        let mut budget = Budget::default();
        let mut sum = Acc::Sum(1.0, true);
        sum.absorb(&Value::Str("9".into()), &mut budget);
        sum.absorb(&Value::List(vec![Value::Int(2)]), &mut budget);
        assert_eq!(sum.clone().finish(), Value::Int(1));
        sum.absorb(
            &Value::List(vec![Value::float(2.0), Value::Bool(true)]),
            &mut budget,
        );
        assert_eq!(sum.finish(), Value::Int(3));
        let mut count = Acc::Count(1);
        count.absorb(&Value::Int(-5), &mut budget);
        count.absorb(&Value::Int(i64::MAX), &mut budget);
        assert_eq!(count.finish(), Value::Int(i64::MAX));
    }
}

#[cfg(test)]
mod dc_tests {
    use super::*;
    use crate::parse;
    use vigil_event::Event;

    #[test]
    fn dc_past_the_exact_bound_is_an_estimate_within_the_stated_error() {
        // 3 shards of 30,000 values each, overlapping: 60,000 distinct in all, 5 below the bound.
        let event = |seq: u64, v: String, g: &str| {
            let mut e = Event::new(Timestamp::from_secs(seq as i64));
            e.insert("v", v);
            e.insert("g", g);
            (seq, e)
        };
        let shards: Vec<Vec<(u64, Event)>> = (0..3u64)
            .map(|s| {
                let mut events: Vec<_> = (0..30_000u64)
                    .map(|i| event(s * 100_000 + i, format!("v{}", s * 15_000 + i), "big"))
                    .collect();
                events.extend(
                    (0..5).map(|i| event(s * 100_000 + 50_000 + i, format!("{i}"), "small")),
                );
                events
            })
            .collect();
        let limits = Limits::rows(10);
        let p = plan(&parse("* | stats dc(v) by g").unwrap());
        let parts = shards
            .iter()
            .map(|events| crate::run(&p.shard, events.clone(), p.shard_limits(limits)))
            .collect();
        let r = p.merge(parts, limits, Vec::new());
        let big = r.rows[0][1].as_i64().unwrap() as f64;
        let error = (big - 60_000.0).abs() / 600.0;
        assert!(error < 3.0 * crate::sketch::STANDARD_ERROR_PERCENT, "{big}");
        assert_eq!(r.rows[1][1], Value::Int(5), "an exact group stays exact");
        let message = r.message.unwrap();
        assert!(
            message.contains("estimated") && message.contains("1.625 %"),
            "{message}"
        );
    }
}

#[cfg(test)]
mod percentile_tests {
    use super::*;
    use crate::parse;
    use vigil_event::Event;

    fn shards(per_shard: u64) -> Vec<Vec<(u64, Event)>> {
        (0..3u64)
            .map(|s| {
                (0..per_shard)
                    .map(|i| {
                        let seq = s * 1_000_000 + i;
                        let mut e = Event::new(Timestamp::from_secs(seq as i64));
                        // Latencies spread over four orders of magnitude, shards interleaved.
                        let x = 1.0 + ((i * 3 + s) % 10_007) as f64 * 1.7;
                        e.insert("ms", Value::float(x));
                        (seq, e)
                    })
                    .collect()
            })
            .collect()
    }

    fn run_both(q: &str, shards: &[Vec<(u64, Event)>]) -> (QueryResult, QueryResult) {
        let limits = Limits::rows(10);
        let p = plan(&parse(q).unwrap());
        let parts = shards
            .iter()
            .map(|events| crate::run(&p.shard, events.clone(), p.shard_limits(limits)))
            .collect();
        let merged = p.merge(parts, limits, Vec::new());
        let all: Vec<(u64, Event)> = shards.iter().flatten().cloned().collect();
        let single = crate::run(&parse(q).unwrap(), all, limits);
        (merged, single)
    }

    #[test]
    fn percentiles_are_exact_and_equal_to_one_store_below_the_sample_bound() {
        let (merged, single) = run_both("* | stats perc50(ms), perc99(ms)", &shards(20_000));
        assert_eq!(merged.rows, single.rows);
        assert_eq!(merged.message, None);
        assert_eq!(single.message, None);
    }

    #[test]
    fn percentiles_past_the_sample_bound_are_estimated_within_the_stated_error_everywhere() {
        // 3 × 60,000 values: more than one store keeps exactly, and more than each shard does
        // once merged.
        let shards = shards(60_000);
        let mut all: Vec<f64> = shards
            .iter()
            .flatten()
            .map(|(_, e)| e.get("ms").and_then(Value::as_f64).unwrap())
            .collect();
        all.sort_by(f64::total_cmp);
        let (merged, single) = run_both("* | stats perc50(ms), perc95(ms)", &shards);
        for (column, p) in [(0, 50.0), (1, 95.0)] {
            let rank = ((p / 100.0) * all.len() as f64).ceil() as usize;
            let truth = all[rank - 1];
            for r in [&merged, &single] {
                let got = r.rows[0][column].as_f64().unwrap();
                assert!(
                    (got - truth).abs() <= crate::quantiles::RELATIVE_ERROR * truth,
                    "p{p}: {got} vs {truth}"
                );
            }
        }
        for r in [&merged, &single] {
            let message = r.message.clone().unwrap();
            assert!(message.contains("estimated within 1 %"), "{message}");
        }
    }
}

#[cfg(test)]
mod series_tests {
    use super::*;
    use crate::exec::MAX_SERIES;
    use crate::parse;
    use vigil_event::Event;

    /// 3 shards of events naming 2,500 sessions, each session's events spread over the shards
    /// and the hours, in an order unrelated to the names.
    fn shards() -> Vec<Vec<(u64, Event)>> {
        let mut shards = vec![Vec::new(), Vec::new(), Vec::new()];
        for i in 0..7_500u64 {
            let session = (i * 7_919) % 2_500;
            let seq = i + 1;
            let mut e = Event::new(Timestamp::from_secs(((i * 31) % 5) as i64 * 3_600));
            e.insert("session.id", format!("s{session}"));
            e.insert("ms", Value::Int((i % 97) as i64));
            shards[(i % 3) as usize].push((seq, e));
        }
        shards
    }

    fn limits(max_rows: usize) -> Limits {
        Limits::rows(max_rows)
    }

    #[test]
    fn past_the_series_bound_a_chart_keeps_the_smallest_names_in_any_order_and_on_any_shards() {
        let shards = shards();
        for q in [
            "* | timechart span=1h count by session.id",
            "* | timechart span=1h max(ms) by session.id",
        ] {
            for max_rows in [3, 1000] {
                let p = plan(&parse(q).unwrap());
                let parts = shards
                    .iter()
                    .map(|events| {
                        crate::run(&p.shard, events.clone(), p.shard_limits(limits(max_rows)))
                    })
                    .collect();
                let merged = p.merge(parts, limits(max_rows), Vec::new());
                let mut all: Vec<(u64, Event)> = shards.iter().flatten().cloned().collect();
                let single = crate::run(&parse(q).unwrap(), all.clone(), limits(max_rows));
                all.reverse();
                let reversed = crate::run(&parse(q).unwrap(), all, limits(max_rows));

                let mut names: Vec<String> = (0..2_500).map(|s| format!("s{s}")).collect();
                names.sort();
                names.truncate(MAX_SERIES);
                assert_eq!(single.columns[0], "_time", "{q}");
                assert_eq!(single.columns[1..], names[..], "{q}: the smallest names");
                assert_eq!(merged.columns, single.columns, "{q} (limit {max_rows})");
                assert_eq!(merged.rows, single.rows, "{q} (limit {max_rows})");
                assert_eq!(reversed.columns, single.columns, "{q}: rows reversed");
                assert_eq!(reversed.rows, single.rows, "{q}: rows reversed");
                let message = single.message.clone().unwrap_or_default();
                assert!(message.contains("more than 1000 series"), "{q}: {message}");
                assert_eq!(merged.truncated, single.truncated);
            }
        }
    }
}
