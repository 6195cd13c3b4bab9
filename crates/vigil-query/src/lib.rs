//! # vigil-query: the pipeline query language
//!
//! Analysts write what they already write in Splunk, Kusto or ES|QL:
//!
//! ```text
//! sourcetype=access_combined status=403 | stats count by src_ip | where count > 5 | sort -count
//! ```
//!
//! Text goes through [`parse()`] into a [`Pipeline`] (the search part, `earliest=`/`latest=`, then
//! commands), and [`run()`] executes it over a stream of events: the search part filters while
//! scanning, `stats`/`timechart`/`top` aggregate without buffering events, and the remaining
//! commands work on tables capped at [`exec::MAX_ROWS`]. Splunk's common field names resolve to
//! ECS ([`exec::alias`]). Errors name the column.
//!
//! ```
//! use vigil_event::{Event, Timestamp};
//! use vigil_query::{Limits, parse, run};
//!
//! let mut events = Vec::new();
//! for (i, ip) in ["203.0.113.5", "203.0.113.5", "198.51.100.7"].iter().enumerate() {
//!     let mut e = Event::from_json(&format!(r#"{{"source.ip":"{ip}","http.response.status_code":403}}"#), Timestamp::from_secs(i as i64)).unwrap();
//!     e.insert("vigil.sourcetype", "access_combined");
//!     events.push((i as u64, e));
//! }
//! let pipeline = parse("sourcetype=access_combined status=403 | stats count by src_ip | where count > 1").unwrap();
//! let result = run(&pipeline, events, Limits { from: None, to: None, max_rows: 100, now: Timestamp::from_secs(10) });
//! assert_eq!(result.columns, ["src_ip", "count"]);
//! assert_eq!(result.rows.len(), 1);
//! assert_eq!(result.rows[0][1].as_i64(), Some(2));
//! ```
#![deny(missing_docs)]

pub mod ast;
pub mod distributed;
pub mod exec;
pub mod parse;
pub mod quantiles;
pub mod sketch;

pub use ast::Pipeline;
pub use distributed::{Plan, plan};
pub use exec::{
    CountPushdown, Counted, Grouping, Limits, QueryResult, count_pushdown, run, run_counted, window,
};
pub use parse::{ParseError, parse, resolve_time};
