//! One pass over the period's events: what each source sent, the alerts and their triage, and
//! Vigil's own audit trail. Pure and bounded: per source a fixed set of counters and a
//! histogram of gaps; lists (reads of the audit trail, starts) keep at most [`MAX_LISTED`].

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_event::{Event, Timestamp, Value, dataset, field, tag};

use crate::cadence::Cadence;
use crate::mapping::Mapping;

/// Entries kept in each listed finding (the counts stay exact).
pub const MAX_LISTED: usize = 1_000;

/// Sources tracked at most (the rest are counted under `other sources`).
pub const MAX_SOURCES: usize = 10_000;

/// The six things PCI DSS 10.2.2 asks every audit record to carry, in report order.
pub const RECORD_FIELDS: [&str; 6] = ["user", "type", "time", "outcome", "origin", "resource"];

/// Which ECS fields answer each of [`RECORD_FIELDS`] (any one present counts).
pub fn record_field_names(part: &str) -> &'static [&'static str] {
    match part {
        "user" => &["user.name", "user.id", "user.email"],
        "type" => &["event.type", "event.category", "event.action"],
        "time" => &["@timestamp"],
        "outcome" => &["event.outcome"],
        "origin" => &[
            "source.ip",
            "source.address",
            "client.ip",
            "host.name",
            "host.ip",
        ],
        "resource" => &[
            "url.path",
            "url.original",
            "file.path",
            "destination.ip",
            "destination.address",
            "user.target.name",
            "registry.path",
            "process.name",
            "service.name",
            "group.name",
        ],
        _ => &[],
    }
}

/// The source an event is counted under: the host it speaks for (`host.name`) **and** who sent
/// it — `HOST@SENDER`, or `SENDER` alone without a host name. The sender is the authenticated
/// one (`vigil.sender`: the API token, or the syslog peer's address) for events received over
/// the network, else `vigil.source` (an import's name, `vigil` for Vigil's own events). A host
/// name is the sender's to choose, so keying on it alone would let any authenticated sender
/// make another's host look alive; with the sender in the key it can only speak for its own.
/// `@` and `%` in a host name are written `%40` and `%25`, so the key names one pair only.
pub fn source_of(event: &Event) -> String {
    let host = event.get(field::HOST_NAME).map(|v| v.to_string());
    source_from(
        event.get_str(field::VIGIL_SENDER),
        event.get_str(field::VIGIL_SOURCE),
        host.as_deref(),
    )
}

/// [`source_of`] from the fields it reads, for a caller that has them without the event (the
/// silence watch peeks them in the ledger's bytes): `vigil.sender` and `vigil.source` when
/// they are text, and `host.name` as text (`Value`'s `Display` for any other kind).
pub fn source_from(sender: Option<&str>, source: Option<&str>, host: Option<&str>) -> String {
    let sender = sender
        .or(source)
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown");
    let sender = cut(sender, MAX_SOURCE_NAME);
    if sender == OWN_SOURCE {
        return sender;
    }
    match host {
        Some(host) if !host.is_empty() => {
            let host = cut(host, MAX_SOURCE_NAME);
            format!("{}@{sender}", host.replace('%', "%25").replace('@', "%40"))
        }
        _ => sender,
    }
}

/// The `vigil.source` of Vigil's own events, and the source they are counted under.
pub const OWN_SOURCE: &str = "vigil";

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// When an event counts as sent (ns): for events received over the network (they carry
/// `vigil.sender`), the time Vigil received them — the sender's own `@timestamp` is its to
/// choose, and a backdated or future one must not fill a period or a cadence; for events the
/// operator brought in (imports) and Vigil's own, their `@timestamp`.
pub fn time_of(event: &Event) -> i64 {
    if event.contains(field::VIGIL_SENDER)
        && let Some(t) = event
            .get_str(field::VIGIL_RECEIVED)
            .and_then(|t| Timestamp::parse(t).ok())
    {
        return t.as_nanos();
    }
    event.timestamp().as_nanos()
}

/// The longest host name and the longest sender kept in a source name, in bytes each.
pub const MAX_SOURCE_NAME: usize = 256;

/// The `event.action` of Vigil's audit event for a full verification of the ledger.
pub const VERIFY_ACTION: &str = "ledger_verify";

/// What one source sent in the period.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SourceTally {
    /// Events.
    pub events: u64,
    /// Events per class of the mapping.
    pub classes: BTreeMap<String, u64>,
    /// Events carrying each of [`RECORD_FIELDS`].
    pub fields: [u64; 6],
    /// First event time (ns).
    pub first: i64,
    /// Last event time and the gaps between events: the source's learned cadence.
    pub cadence: Cadence,
}

/// One alert as the period's ledger events tell it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AlertTally {
    /// The rule's id.
    pub rule_id: String,
    /// The rule's title.
    pub rule: String,
    /// The rule's tags.
    pub tags: Vec<String>,
    /// When it was created (ns).
    pub created: i64,
    /// Its first triage (ns), if any.
    pub first_triage: Option<i64>,
    /// Its latest status.
    pub status: String,
    /// Its group (`source.ip=…`).
    pub group: String,
}

/// A listed audit finding.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    /// When (RFC 3339).
    pub at: String,
    /// What (`event.action`).
    pub action: String,
    /// Who (`user.name`), if recorded.
    pub user: Option<String>,
    /// The ledger sequence number.
    pub seq: u64,
    /// How it ended (`event.outcome`), if recorded.
    pub outcome: Option<String>,
}

/// Everything the report needs from the period's events.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Events observed.
    pub events: u64,
    /// Per source.
    pub sources: BTreeMap<String, SourceTally>,
    /// Events of sources past [`MAX_SOURCES`].
    pub other_sources: u64,
    /// Alerts by id.
    pub alerts: BTreeMap<i64, AlertTally>,
    /// Triage changes per UTC day (`YYYY-MM-DD`).
    pub triaged_per_day: BTreeMap<String, u64>,
    /// Vigil's starts, with how the previous run ended.
    pub starts: Vec<AuditEntry>,
    /// Starts after an unclean stop (crash, kill -9, power loss).
    pub unclean_stops: Vec<AuditEntry>,
    /// Clean stops.
    pub stops: Vec<AuditEntry>,
    /// Reads of the audit trail (the mapping's `audit_log_access` class).
    pub audit_reads: Vec<AuditEntry>,
    /// Verifications of the whole ledger on record (`ledger_verify`: the UI's *Verify now*,
    /// `vigil verify`), with their outcome.
    pub verifications: Vec<AuditEntry>,
    /// Counts of the lists above (exact even when a list is cut).
    pub counts: BTreeMap<&'static str, u64>,
    /// Events stored because they did not parse (`parse_error` tag).
    pub parse_errors: u64,
    /// Per logsource the mapping asks for (by [`crate::mapping::Logsource::key`]): what came of
    /// it, as the caller matched events to logsources ([`Tally::observe_logsource`]).
    pub logsources: BTreeMap<String, LogsourceTally>,
    /// Sources seen before the period (at most [`MAX_SOURCES`]) and their last event time: one
    /// that sends nothing in the period went silent before it began.
    pub before: BTreeMap<String, i64>,
}

/// Events of one logsource in the period.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LogsourceTally {
    /// Events.
    pub events: u64,
    /// The sources that sent them (at most [`MAX_LISTED`]).
    pub sources: std::collections::BTreeSet<String>,
    /// Whether more sources sent them than are listed.
    pub more_sources: bool,
}

fn push(list: &mut Vec<AuditEntry>, entry: AuditEntry) {
    if list.len() < MAX_LISTED {
        list.push(entry);
    }
}

fn int(e: &Event, f: &str) -> Option<i64> {
    e.get(f).and_then(Value::as_i64)
}

impl Tally {
    /// Notes an event from before the period (its source is known).
    pub fn saw_before(&mut self, event: &Event, t: i64) {
        let source = source_of(event);
        let known = self.before.len();
        match self.before.get_mut(&source) {
            Some(last) => *last = (*last).max(t),
            None if known < MAX_SOURCES => {
                self.before.insert(source, t);
            }
            None => {}
        }
    }

    /// Counts an event of the period that belongs to the logsource `key` (the caller matches
    /// events with the Sigma logsource table).
    pub fn observe_logsource(&mut self, key: &str, event: &Event) {
        let entry = self.logsources.entry(key.to_owned()).or_default();
        entry.events += 1;
        let source = source_of(event);
        if entry.sources.len() < MAX_LISTED {
            entry.sources.insert(source);
        } else if !entry.sources.contains(&source) {
            entry.more_sources = true;
        }
    }

    /// Counts one event of the period (`seq` is its ledger sequence number).
    pub fn observe(&mut self, mapping: &Mapping, seq: u64, event: &Event) {
        self.events += 1;
        // A drill's events (and its alerts, decisions, notifications) are in the ledger, but
        // count in none of the report's figures (docs/drills.md).
        if event.drill_run().is_some() {
            return;
        }
        let classes = mapping.classes_of(event);
        if event.has_tag(tag::PARSE_ERROR) {
            self.parse_errors += 1;
        }
        let entry = |e: &Event| AuditEntry {
            at: e.timestamp().to_rfc3339(),
            action: e
                .get_str(field::EVENT_ACTION)
                .unwrap_or_default()
                .to_owned(),
            user: e.get_str("user.name").map(str::to_owned),
            seq,
            outcome: e.get_str(field::EVENT_OUTCOME).map(str::to_owned),
        };
        if event.is_dataset(dataset::VIGIL_AUDIT) {
            match event.get_str(field::EVENT_ACTION) {
                Some("vigil_start") => {
                    *self.counts.entry("starts").or_default() += 1;
                    push(&mut self.starts, entry(event));
                    if event.get_str("vigil.previous_stop") == Some("unclean") {
                        *self.counts.entry("unclean_stops").or_default() += 1;
                        push(&mut self.unclean_stops, entry(event));
                    }
                }
                Some("vigil_stop") => {
                    *self.counts.entry("stops").or_default() += 1;
                    push(&mut self.stops, entry(event));
                }
                Some(VERIFY_ACTION) => {
                    *self.counts.entry("verifications").or_default() += 1;
                    push(&mut self.verifications, entry(event));
                }
                _ => {}
            }
            if classes.contains(&"audit_log_access") {
                *self.counts.entry("audit_reads").or_default() += 1;
                push(&mut self.audit_reads, entry(event));
            }
        }
        if event.is_dataset(dataset::VIGIL_ALERT) {
            self.observe_alert(event);
        }
        let source = source_of(event);
        let known = self.sources.len();
        let tally = match self.sources.get_mut(&source) {
            Some(t) => t,
            None if known < MAX_SOURCES => self.sources.entry(source).or_default(),
            None => {
                self.other_sources += 1;
                return;
            }
        };
        let t = time_of(event);
        tally.first = if tally.events == 0 {
            t
        } else {
            tally.first.min(t)
        };
        tally.cadence.observe(t);
        tally.events += 1;
        for class in classes {
            *tally.classes.entry(class.to_owned()).or_default() += 1;
        }
        for (i, part) in RECORD_FIELDS.iter().enumerate() {
            if *part == "time"
                || record_field_names(part)
                    .iter()
                    .any(|f| event.get(f).is_some())
            {
                tally.fields[i] += 1;
            }
        }
    }

    fn observe_alert(&mut self, e: &Event) {
        let Some(id) = int(e, "vigil.alert.id") else {
            return;
        };
        let alert = self.alerts.entry(id).or_default();
        if let Some(created) = int(e, "vigil.alert.created") {
            alert.created = created;
        }
        alert.rule_id = e.get_str("rule.id").unwrap_or_default().to_owned();
        alert.rule = e.get_str("rule.name").unwrap_or_default().to_owned();
        alert.group = e
            .get_str("vigil.alert.group")
            .unwrap_or_default()
            .to_owned();
        alert.tags = e.tags().map(str::to_owned).collect();
        if let Some(status) = e.get_str("vigil.alert.status") {
            alert.status = status.to_owned();
        }
        if e.get_str(field::EVENT_ACTION) == Some("alert-triaged") {
            let at = int(e, "vigil.alert.triaged_at").unwrap_or(e.timestamp().as_nanos());
            alert.first_triage = Some(alert.first_triage.map_or(at, |t| t.min(at)));
            let day = Timestamp::from_nanos(at).to_rfc3339();
            *self
                .triaged_per_day
                .entry(day[..10].to_owned())
                .or_default() += 1;
        }
    }
}
