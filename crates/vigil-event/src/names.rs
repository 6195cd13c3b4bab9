//! The names Vigil's crates agree on: reserved field names, tag values, `event.dataset` values
//! and the `vigil.parser` vocabulary, stated once so that a typo is a compile error and a test
//! for "is this a parse error" is an exact comparison, not a substring search.
//!
//! ```
//! use vigil_event::{Event, Timestamp, dataset, field, tag};
//! let mut e = Event::new(Timestamp::from_nanos(0));
//! e.insert(field::EVENT_DATASET, dataset::VIGIL_AUDIT);
//! e.add_tag(tag::PARSE_ERROR);
//! assert!(e.has_tag(tag::PARSE_ERROR));
//! assert!(e.is_dataset(dataset::VIGIL_AUDIT));
//! ```

use std::fmt;
use std::str::FromStr;

/// Field names (dotted ECS keys) that Vigil's code reads or writes by name.
pub mod field {
    /// The event time in JSON.
    pub const TIMESTAMP: &str = "@timestamp";
    /// The list of tags ([`crate::tag`] values among them).
    pub const TAGS: &str = "tags";
    /// The human-readable text of the event.
    pub const MESSAGE: &str = "message";
    /// The raw text the event was parsed from.
    pub const EVENT_ORIGINAL: &str = "event.original";
    /// ECS `event.dataset` ([`crate::dataset`] values for Vigil's own events).
    pub const EVENT_DATASET: &str = "event.dataset";
    /// ECS `event.kind`.
    pub const EVENT_KIND: &str = "event.kind";
    /// ECS `event.category`.
    pub const EVENT_CATEGORY: &str = "event.category";
    /// ECS `event.type`.
    pub const EVENT_TYPE: &str = "event.type";
    /// ECS `event.action`.
    pub const EVENT_ACTION: &str = "event.action";
    /// ECS `event.outcome`.
    pub const EVENT_OUTCOME: &str = "event.outcome";
    /// ECS `error.message`: why a line did not parse.
    pub const ERROR_MESSAGE: &str = "error.message";

    /// The prefix of every field Vigil reserves for itself (`vigil.*`).
    pub const VIGIL_PREFIX: &str = "vigil.";
    /// Which listener, token or file the event came from.
    pub const VIGIL_SOURCE: &str = "vigil.source";
    /// When Vigil received the event (RFC 3339).
    pub const VIGIL_RECEIVED: &str = "vigil.received";
    /// Who sent the event over the network, as Vigil authenticated it: `api:NAME/ID` for an
    /// HTTP sender (its API token), `syslog:ADDRESS` for syslog (the peer's address). Set by the
    /// listeners after parsing, so input cannot claim it (`vigil.*` from input moves under
    /// `external.`); absent on events Vigil did not receive over the network (imports, its own).
    pub const VIGIL_SENDER: &str = "vigil.sender";
    /// Which parser read the event: a [`crate::Parser`] name.
    pub const VIGIL_PARSER: &str = "vigil.parser";
    /// The kinds of secret masked in the event.
    pub const VIGIL_REDACTED: &str = "vigil.redacted";
    /// The event's sequence number in the ledger (added when read back, never stored).
    pub const VIGIL_SEQ: &str = "vigil.seq";
    /// The sender's name for the kind of data (`access_combined`, `apache_error`, HEC's
    /// `sourcetype`).
    pub const VIGIL_SOURCETYPE: &str = "vigil.sourcetype";
    /// Who made a change recorded in the audit trail (`cli`, …).
    pub const VIGIL_ORIGIN: &str = "vigil.origin";
    /// The Sigma `product` the event's source declares by configuration (`[[logsource]]`),
    /// set at ingest; input can never claim it.
    pub const VIGIL_LOGSOURCE_PRODUCT: &str = "vigil.logsource.product";
    /// The Sigma `category` the event's source declares (see [`VIGIL_LOGSOURCE_PRODUCT`]).
    pub const VIGIL_LOGSOURCE_CATEGORY: &str = "vigil.logsource.category";
    /// The Sigma `service` the event's source declares (see [`VIGIL_LOGSOURCE_PRODUCT`]).
    pub const VIGIL_LOGSOURCE_SERVICE: &str = "vigil.logsource.service";
    /// Cluster mode: the JetStream stream sequence of the message that carried the event (on
    /// every event of a shard; the shard resumes after the last one it holds).
    pub const VIGIL_STREAM_SEQ: &str = "vigil.stream.seq";
    /// Cluster mode: the shard whose ledger holds the event (`p3`, `sys`; stamped by the
    /// shard's owner with [`VIGIL_STREAM_SEQ`]): with `vigil.seq`, which numbers the event in
    /// that shard, it names one event of the cluster.
    pub const VIGIL_SHARD: &str = "vigil.shard";
    /// Cluster mode: the node that accepted the event from its sender.
    pub const VIGIL_NODE: &str = "vigil.node";
    /// The drill run an event belongs to (`vigil drill`): set only by the one door, for an
    /// event carrying a one-time nonce an authenticated drill run registered; never from
    /// input (`vigil.*` names an input claims move under `external.`). Alerts raised from
    /// drill events carry it too, in their group, so they never merge with real ones.
    pub const VIGIL_DRILL_RUN: &str = "vigil.drill.run";
    /// ECS: the address of the source (client, attacker).
    pub const SOURCE_IP: &str = "source.ip";
    /// ECS: the host's name.
    pub const HOST_NAME: &str = "host.name";
    /// ECS: the address the event came from over the network (the real peer).
    pub const LOG_SOURCE_ADDRESS: &str = "log.source.address";
}

/// Values of the `tags` list that Vigil sets and acts on.
pub mod tag {
    /// A line that did not parse in the requested format, kept whole.
    pub const PARSE_ERROR: &str = "parse_error";
    /// An event cut down to the size or field-count limit.
    pub const TRUNCATED: &str = "truncated";
    /// Input that claimed a name Vigil reserves; the claimed fields moved under `external.`.
    pub const RESERVED_CLAIM: &str = "reserved_claim";
    /// An authentication attempt for a user the system does not know.
    pub const INVALID_USER: &str = "invalid_user";
    /// An access-log line whose request line is not `METHOD PATH PROTOCOL`.
    pub const MALFORMED_REQUEST: &str = "malformed_request";
}

/// Values of `event.dataset` that mark Vigil's own events. Input never carries them (see
/// `vigil_parse::reserved`), so detection can trust them.
pub mod dataset {
    /// Vigil's audit trail: what people and programs did to Vigil.
    pub const VIGIL_AUDIT: &str = "vigil.audit";
    /// An alert raised, updated or triaged.
    pub const VIGIL_ALERT: &str = "vigil.alert";
    /// A ban decision made or lifted.
    pub const VIGIL_DECISION: &str = "vigil.decision";
    /// A notifier that failed to deliver.
    pub const VIGIL_NOTIFY: &str = "vigil.notify";
    /// A drill's report: its steps, their latencies, what was missed and why.
    pub const VIGIL_DRILL: &str = "vigil.drill";
}

/// The parsers that fill `vigil.parser`: a closed set, one per reader of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Parser {
    /// RFC 5424 / RFC 3164 syslog.
    Syslog,
    /// Apache/nginx combined or common access log.
    Combined,
    /// A JSON object.
    Json,
    /// ArcSight Common Event Format.
    Cef,
    /// `key=value` pairs.
    Logfmt,
    /// Apache error log.
    ApacheError,
    /// Plain text kept as `message`.
    Raw,
    /// A Windows event log record (`.evtx`).
    Evtx,
    /// A Windows event shipped live as JSON (Winlogbeat/Elastic Agent, NXLog, Fluent Bit, an
    /// EVTX record rendered as JSON), with the names an EVTX record gives.
    Winlog,
}

impl Parser {
    /// Every parser.
    pub const ALL: [Parser; 9] = [
        Parser::Syslog,
        Parser::Combined,
        Parser::Json,
        Parser::Cef,
        Parser::Logfmt,
        Parser::ApacheError,
        Parser::Raw,
        Parser::Evtx,
        Parser::Winlog,
    ];

    /// The value stored in `vigil.parser`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Parser::Syslog => "syslog",
            Parser::Combined => "combined",
            Parser::Json => "json",
            Parser::Cef => "cef",
            Parser::Logfmt => "logfmt",
            Parser::ApacheError => "apache_error",
            Parser::Raw => "raw",
            Parser::Evtx => "evtx",
            Parser::Winlog => "winlog",
        }
    }
}

impl fmt::Display for Parser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Parser> for crate::Value {
    fn from(p: Parser) -> crate::Value {
        crate::Value::from(p.as_str())
    }
}

/// A `vigil.parser` value that names no parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown parser {0:?}; expected one of syslog, combined, json, cef, logfmt, apache_error, raw, evtx, winlog"
)]
pub struct UnknownParser(pub String);

impl FromStr for Parser {
    type Err = UnknownParser;

    /// Exact: the stored names only (`--format` aliases are `vigil_parse::Format`'s business).
    fn from_str(s: &str) -> Result<Parser, UnknownParser> {
        Parser::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownParser(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_names_round_trip() {
        for p in Parser::ALL {
            assert_eq!(p.as_str().parse::<Parser>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        assert!("auto".parse::<Parser>().is_err());
        assert!("Syslog".parse::<Parser>().is_err());
    }

    #[test]
    fn vigil_fields_are_under_the_reserved_prefix() {
        for name in [
            field::VIGIL_SOURCE,
            field::VIGIL_RECEIVED,
            field::VIGIL_PARSER,
            field::VIGIL_REDACTED,
            field::VIGIL_SEQ,
            field::VIGIL_SOURCETYPE,
            field::VIGIL_ORIGIN,
            dataset::VIGIL_AUDIT,
            dataset::VIGIL_ALERT,
            dataset::VIGIL_DECISION,
            dataset::VIGIL_NOTIFY,
        ] {
            assert!(name.starts_with(field::VIGIL_PREFIX), "{name}");
        }
    }
}
