//! The path every listener shares: redact, append, wait for durability, count.
//!
//! Memory is bounded by a semaphore counting events that are accepted but not yet durable
//! (`MAX_IN_FLIGHT_EVENTS`). Listeners choose what to do when it is exhausted: TCP and TLS wait
//! (the socket stops being read, so the sender slows down), HTTP waits briefly then answers 429
//! with `Retry-After`, UDP drops the datagram and counts it.
//!
//! One call is one ledger append: the events of a request are stored whole or not at all, with
//! consecutive sequence numbers no other sender's events fall between. Room is taken for the
//! whole request, so a request may carry at most [`MAX_REQUEST_EVENTS`] events (HTTP answers
//! a larger one 413 before anything is stored). An event too large for the ledger
//! (`vigil_ledger::format::MAX_EVENT_BYTES` in canonical form) can never be stored as it is:
//! it is cut to fit and tagged `truncated`, like a syslog message over the size limit, so it
//! never blocks what follows.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use vigil_event::Event;
use vigil_ledger::LedgerError;
use vigil_parse::redact::Redactor;

use crate::log::{EventLog, NodeLog};
use crate::metrics::Metrics;
use crate::origin::Origin;

/// Events accepted but not yet durable, across all listeners. At ~1 KiB per event this bounds
/// in-flight memory to about 64 MiB.
pub const MAX_IN_FLIGHT_EVENTS: usize = 64 * 1024;
/// Largest batch a stream listener gathers into one append.
pub const MAX_BATCH: usize = 4096;
/// Most events one request (one append) may carry: room in flight is taken for all of them.
pub const MAX_REQUEST_EVENTS: usize = MAX_IN_FLIGHT_EVENTS;

/// Why events could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Too many events in flight; try again shortly.
    #[error("the ledger is behind; retry shortly")]
    Overloaded,
    /// More events in one request than one append may carry; nothing was stored.
    #[error(
        "a request may carry at most {max} events, this one has {events}; nothing was stored, send smaller batches"
    )]
    TooManyEvents {
        /// Events in the request.
        events: usize,
        /// [`MAX_REQUEST_EVENTS`].
        max: usize,
    },
    /// The ledger refused or failed.
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
}

impl IngestError {
    /// Whether sending the same events again later can succeed (the pipeline was full, or the
    /// ledger could not write for now); false when the request itself must change.
    pub fn retryable(&self) -> bool {
        match self {
            IngestError::Overloaded => true,
            IngestError::TooManyEvents { .. } => false,
            IngestError::Ledger(LedgerError::EventTooLarge { .. }) => false,
            IngestError::Ledger(_) => true,
        }
    }
}

/// The one door to the ledger, shared by every writer: listeners, Vigil's own events (audit,
/// alerts, triage, rule changes, decisions, notifier failures), the command line and
/// `vigil import`. Each append is redacted with the operator's configuration, bounded in
/// flight, counted by [`Origin`], and answered once durable.
///
/// Generic over the [`EventLog`] it writes into: by default a [`NodeLog`], the local
/// [`vigil_ledger::Ledger`] (standalone) or the cluster's stream.
pub struct Ingest<L: EventLog = NodeLog> {
    ledger: L,
    redactor: Arc<Redactor>,
    permits: Arc<Semaphore>,
    capacity: usize,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Threat intelligence, tables and GeoIP applied to events from outside (none: off).
    enricher: Option<Arc<vigil_enrich::Enricher>>,
    /// Logsources declared by configuration, set on events from outside.
    declared: Arc<crate::logsource::DeclaredSources>,
}

/// A batch on its way to durability. Dropping it does not cancel the append, nor free its
/// room in flight before the batch is durable.
pub struct Pending {
    rx: oneshot::Receiver<Result<Range<u64>, LedgerError>>,
}

impl Pending {
    /// Waits until the batch is durable.
    pub async fn durable(self) -> Result<Range<u64>, IngestError> {
        let result = self.rx.await.unwrap_or(Err(LedgerError::Closed));
        Ok(result?)
    }

    /// Blocks the thread until the batch is durable (threads outside the async runtime: the
    /// command line, `spawn_blocking`; never on a runtime worker).
    pub fn wait(self) -> Result<Range<u64>, IngestError> {
        let result = self.rx.blocking_recv().unwrap_or(Err(LedgerError::Closed));
        Ok(result?)
    }

    /// The answer if the batch is durable (or failed) by now, else the batch back.
    pub fn try_result(mut self) -> Result<Result<Range<u64>, IngestError>, Pending> {
        match self.rx.try_recv() {
            Ok(result) => Ok(result.map_err(IngestError::from)),
            Err(oneshot::error::TryRecvError::Empty) => Err(self),
            Err(oneshot::error::TryRecvError::Closed) => Ok(Err(LedgerError::Closed.into())),
        }
    }
}

impl<L: EventLog> Ingest<L> {
    /// Wraps a ledger writer.
    pub fn new(ledger: L, redactor: Redactor, metrics: Arc<Metrics>) -> Ingest<L> {
        Ingest::with_capacity(ledger, redactor, metrics, MAX_IN_FLIGHT_EVENTS)
    }

    /// Like [`Ingest::new`] with room for `capacity` in-flight events (tests use small ones).
    pub fn with_capacity(
        ledger: L,
        redactor: Redactor,
        metrics: Arc<Metrics>,
        capacity: usize,
    ) -> Ingest<L> {
        Ingest {
            ledger,
            redactor: Arc::new(redactor),
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            metrics,
            enricher: None,
            declared: Arc::default(),
        }
    }

    /// Enriches every event from outside (listeners and `vigil import`) with `enricher`
    /// before it is stored: threat-intelligence matches, table joins, GeoIP/ASN. Vigil's own
    /// events are never enriched.
    pub fn with_enricher(mut self, enricher: Arc<vigil_enrich::Enricher>) -> Ingest<L> {
        self.enricher = Some(enricher);
        self
    }

    /// Sets on every event from outside (listeners and `vigil import`) the logsource its
    /// source declares (`[[logsource]]`); a `vigil.logsource.*` field the input carried is
    /// removed whatever its source.
    pub fn with_declared_sources(
        mut self,
        declared: crate::logsource::DeclaredSources,
    ) -> Ingest<L> {
        self.declared = Arc::new(declared);
        self
    }

    /// The enricher, if one is configured (its status for the API).
    pub fn enricher(&self) -> Option<&Arc<vigil_enrich::Enricher>> {
        self.enricher.as_ref()
    }

    /// The redactor, for parse contexts (`None` when redaction is off).
    pub fn redactor(&self) -> Option<Arc<Redactor>> {
        (!self.redactor.is_disabled()).then(|| Arc::clone(&self.redactor))
    }

    /// The log written into (for reading its state: end, checkpoints, health; writes go
    /// through the `Ingest` methods).
    pub fn ledger(&self) -> &L {
        &self.ledger
    }

    /// Events accepted but not yet durable.
    pub fn in_flight(&self) -> u64 {
        (self.capacity - self.permits.available_permits()) as u64
    }

    fn start(
        &self,
        mut events: Vec<Event>,
        permit: Option<OwnedSemaphorePermit>,
        origin: Origin,
        mark: Option<&crate::idempotency::Mark>,
    ) -> Pending {
        let label = origin.label();
        let mut parse_errors = 0;
        let mut truncated = 0;
        let n_events = events.len();
        // One snapshot for the whole batch: enriched wholly by one version of the lists.
        let enrich = self
            .enricher
            .as_ref()
            .filter(|_| matches!(origin, Origin::Input(_) | Origin::Import))
            .map(|e| (e.snapshot(), &e.stats));
        for (i, event) in events.iter_mut().enumerate() {
            // Parsed lines were masked already; this catches events built any other way.
            self.redactor.redact_event(event);
            // Only Vigil records idempotency keys: one claimed from outside could make a
            // sender's retry look stored after a restart.
            crate::idempotency::Mark::strip(event);
            if matches!(origin, Origin::Input(_) | Origin::Import) {
                self.declared.apply(event);
            }
            if let Some((snapshot, stats)) = &enrich {
                snapshot.enrich(event, stats);
            }
            if i == 0
                && let Some(mark) = mark
            {
                // Vigil's own record, in the same atomic append (after redaction: the key is
                // kept as sent).
                mark.record(event, n_events);
            }
            if fit(event) {
                truncated += 1;
            }
            if let Some(vigil_event::Value::List(kinds)) = event.get("vigil.redacted") {
                for kind in kinds.iter().filter_map(vigil_event::Value::as_str) {
                    self.metrics.redactions.add(kind, 1);
                }
            }
            if event.has_tag(vigil_event::tag::PARSE_ERROR) {
                parse_errors += 1;
            }
        }
        self.metrics.parse_errors.add(label, parse_errors);
        self.metrics.truncated.add(label, truncated);
        // Events per source, counted once the batch is durable (a batch usually has one).
        // Vigil's own events other than audit are not a source.
        let mut per_source: Vec<(String, u64)> = Vec::new();
        if matches!(origin, Origin::Input(_) | Origin::Audit) {
            for event in &events {
                let source = event.get_str("vigil.source").unwrap_or(label);
                if let Some(at) = per_source.iter().position(|(s, _)| s == source) {
                    per_source[at].1 += 1;
                } else if per_source.len() < 64 {
                    per_source.push((source.to_owned(), 1));
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        let metrics = Arc::clone(&self.metrics);
        let n = events.len() as u64;
        self.ledger.append(
            &events,
            Box::new(move |result| {
                // The room in flight is freed once the batch is durable (or failed), whoever
                // waits for the answer.
                drop(permit);
                if result.is_ok() {
                    metrics.stored.add(origin, n);
                    // By listener as before (audit counted as one): the other origins are
                    // in `stored` only.
                    if matches!(origin, Origin::Input(_) | Origin::Audit) {
                        metrics.events.add(label, n);
                    }
                    for (source, n) in &per_source {
                        metrics.sources.add(source, *n);
                    }
                }
                let _ = tx.send(result);
            }),
        );
        Pending { rx }
    }

    /// Appends, waiting for room if the ledger is behind (TCP/TLS backpressure).
    pub async fn append_waiting(
        &self,
        events: Vec<Event>,
        origin: impl Into<Origin>,
    ) -> Result<Pending, IngestError> {
        let n = self.room_for(&events)?;
        let permit = Arc::clone(&self.permits)
            .acquire_many_owned(n)
            .await
            .map_err(|_| IngestError::Ledger(LedgerError::Closed))?;
        Ok(self.start(events, Some(permit), origin.into(), None))
    }

    /// Appends if there is room within `patience`, else `Overloaded` (HTTP).
    pub async fn append_within(
        &self,
        events: Vec<Event>,
        origin: impl Into<Origin>,
        patience: Duration,
    ) -> Result<Pending, IngestError> {
        self.append_marked(events, origin, patience, None).await
    }

    /// [`Ingest::append_within`], recording an `Idempotency-Key` in the first event (the same
    /// atomic append), so the key survives a server crash.
    pub async fn append_marked(
        &self,
        events: Vec<Event>,
        origin: impl Into<Origin>,
        patience: Duration,
        mark: Option<&crate::idempotency::Mark>,
    ) -> Result<Pending, IngestError> {
        let n = self.room_for(&events)?;
        let acquire = Arc::clone(&self.permits).acquire_many_owned(n);
        match tokio::time::timeout(patience, acquire).await {
            Ok(Ok(permit)) => Ok(self.start(events, Some(permit), origin.into(), mark)),
            Ok(Err(_)) => Err(IngestError::Ledger(LedgerError::Closed)),
            Err(_) => Err(IngestError::Overloaded),
        }
    }

    /// Appends if there is room now, else `Overloaded` (UDP drops; audit events of requests
    /// are dropped and counted rather than let a flood hold memory).
    pub fn try_append(
        &self,
        events: Vec<Event>,
        origin: impl Into<Origin>,
    ) -> Result<Pending, IngestError> {
        let n = self.room_for(&events)?;
        match Arc::clone(&self.permits).try_acquire_many_owned(n) {
            Ok(permit) => Ok(self.start(events, Some(permit), origin.into(), None)),
            Err(_) => Err(IngestError::Overloaded),
        }
    }

    /// Submits Vigil's own events (alerts, triage, rule changes, decisions, notifier failures,
    /// command-line changes) and returns at once, without waiting for room or durability: the
    /// caller goes on and learns of durability from the [`Pending`] when it wants to. Never
    /// refused for lack of room (own events follow from input that was bounded, or from a
    /// person's action); they take room in flight when there is some, so the bound still
    /// counts them. Callable from any thread, with or without an async runtime.
    pub fn submit(&self, events: Vec<Event>, origin: Origin) -> Pending {
        let n = events.len().clamp(1, self.capacity) as u32;
        let permit = Arc::clone(&self.permits).try_acquire_many_owned(n).ok();
        self.start(events, permit, origin, None)
    }

    /// Permits for one request: one per event (at least one), or `TooManyEvents`.
    fn room_for(&self, events: &[Event]) -> Result<u32, IngestError> {
        if events.len() > MAX_REQUEST_EVENTS {
            return Err(IngestError::TooManyEvents {
                events: events.len(),
                max: MAX_REQUEST_EVENTS,
            });
        }
        Ok(events.len().clamp(1, self.capacity) as u32)
    }

    /// Waits until every accepted event is durable (shutdown).
    pub async fn drain(&self) {
        let _all = self.permits.acquire_many(self.capacity as u32).await;
    }
}

/// The redactor of the operator's configuration: the default patterns plus `extra`
/// (`(kind, regex)`), or none at all when redaction is off (`None`). What every writer into
/// the ledger masks with (`vigil serve`, `vigil import`, the command line).
pub fn redactor(extra: Option<&[(String, String)]>) -> Result<Redactor, String> {
    match extra {
        Some(extra) => Redactor::new(extra).map_err(|e| e.to_string()),
        None => Ok(Redactor::disabled()),
    }
}

/// Room kept under the ledger's event limit for the `truncated` tag and the cut marks.
const FIT_SLACK: usize = 4096;

/// Cuts an event too large for the ledger until it fits: its longest text fields are shortened
/// (at a character boundary); an event whose size is not in a few long texts is replaced by one
/// that keeps its time, its tags, its sender and short identifying fields ([`KEPT_FIELDS`]) and
/// the start of its JSON. Tags it `truncated` and
/// returns true when it cut anything.
pub fn fit(event: &mut Event) -> bool {
    let max = vigil_ledger::format::MAX_EVENT_BYTES;
    // The usual event is far below the limit: a cheap bound spares encoding it twice.
    let rough: usize = event.fields().map(|(k, v)| k.len() + rough_size(v)).sum();
    if rough + 64 * 1024 < max {
        return false;
    }
    let mut size = event.to_canonical().len();
    if size <= max {
        return false;
    }
    // Each round shortens the longest text by at least the excess, so a few rounds suffice
    // when the size is in long texts; otherwise fall back below.
    for _ in 0..16 {
        let longest = event
            .fields()
            .filter_map(|(k, v)| match v {
                vigil_event::Value::Str(s) => Some((k.to_owned(), s.len())),
                _ => None,
            })
            .max_by_key(|(_, len)| *len);
        let Some((key, len)) = longest else { break };
        let excess = size + FIT_SLACK - max;
        if len < 1024 {
            break;
        }
        if let Some(vigil_event::Value::Str(text)) = event.get_mut(&key) {
            let mut keep = len.saturating_sub(excess).min(len / 2 + len / 4);
            while !text.is_char_boundary(keep) {
                keep -= 1;
            }
            text.truncate(keep);
        }
        size = event.to_canonical().len();
        if size + FIT_SLACK <= max {
            event.add_tag(vigil_event::tag::TRUNCATED);
            return true;
        }
    }
    if size + 256 <= max {
        event.add_tag(vigil_event::tag::TRUNCATED);
        return true;
    }
    // Many small fields: keep what says where the event came from and what Vigil found about
    // it (tags such as `reserved_claim`), and the start of it.
    let mut cut = Event::new(event.timestamp());
    if let Some(tags) = kept_tags(event.get("tags")) {
        cut.insert("tags", tags);
    }
    let mut budget = KEPT_BYTES;
    for field in KEPT_FIELDS {
        for (key, value) in event.fields() {
            let wanted = match field.strip_suffix('.') {
                Some(prefix) => key.starts_with(field) || key == prefix,
                None => key == *field,
            };
            if !wanted || cut.contains(key) {
                continue;
            }
            let len = key.len() + value.to_string().len();
            if len >= 1024 || len > budget {
                continue;
            }
            budget -= len;
            cut.insert(key, value.clone());
        }
    }
    let mut json = event.to_json().to_string();
    let mut keep = (64 * 1024).min(json.len());
    while !json.is_char_boundary(keep) {
        keep -= 1;
    }
    json.truncate(keep);
    cut.insert(
        "message",
        format!("event of {size} bytes over the {max}-byte limit, cut: {json}"),
    );
    cut.add_tag(vigil_event::tag::TRUNCATED);
    *event = cut;
    true
}

/// The fields an event cut to its start keeps, most important first (a name ending in `.` is
/// a prefix): who sent it and how (Vigil's own fields, the peer address, claims moved aside
/// as `external.*`), then what identifies it. Each kept value is under 1 KiB, all together
/// under [`KEPT_BYTES`].
const KEPT_FIELDS: &[&str] = &[
    "vigil.",
    "log.source.",
    "external.",
    "event.dataset",
    "event.module",
    "event.kind",
    "event.category",
    "event.type",
    "event.action",
    "event.outcome",
    "event.code",
    "event.created",
    "event.ingested",
    "log.syslog.",
    "host.",
    "source.",
    "observer.",
    "agent.",
    "service.name",
    "process.name",
    "user.name",
];

/// The room the kept fields of an event cut to its start may take.
const KEPT_BYTES: usize = 64 * 1024;

/// The tags an event cut to its start keeps: every short text tag if there are at most 64,
/// else the first and last 32 (Vigil adds its own, such as `reserved_claim`, last).
fn kept_tags(tags: Option<&vigil_event::Value>) -> Option<vigil_event::Value> {
    use vigil_event::Value;
    let short = |v: &&Value| v.as_str().is_some_and(|t| t.len() < 256);
    let tags: Vec<Value> = match tags? {
        Value::List(items) => items.iter().filter(short).cloned().collect(),
        one => std::iter::once(one).filter(short).cloned().collect(),
    };
    let tags = if tags.len() > 64 {
        let mut ends = tags[..32].to_vec();
        ends.extend_from_slice(&tags[tags.len() - 32..]);
        ends
    } else {
        tags
    };
    (!tags.is_empty()).then_some(Value::List(tags))
}

/// About the bytes a value takes in canonical form, erring high (at most a few bytes low per
/// element, which the 64 KiB margin above covers).
fn rough_size(value: &vigil_event::Value) -> usize {
    use vigil_event::Value;
    match value {
        Value::Str(s) => s.len() + 12,
        Value::List(items) => 12 + items.iter().map(rough_size).sum::<usize>(),
        Value::Map(map) => {
            12 + map
                .iter()
                .map(|(k, v)| k.len() + 12 + rough_size(v))
                .sum::<usize>()
        }
        _ => 24,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;
    use vigil_ledger::{Ledger, LedgerConfig};

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(i as i64));
                e.insert("message", format!("event {i} password=hunter2"));
                e
            })
            .collect()
    }

    #[test]
    fn fit_cuts_long_texts_and_tags_the_event() {
        let max = vigil_ledger::format::MAX_EVENT_BYTES;
        let mut small = Event::new(Timestamp::from_secs(1));
        small.insert("message", "short");
        assert!(!fit(&mut small));
        assert!(small.get("tags").is_none());

        // The same long line twice (message and event.original), together over the limit.
        let line = format!("huge {}", "é".repeat(300_000));
        let mut big = Event::new(Timestamp::from_secs(1));
        big.insert("message", line.as_str());
        big.insert("event.original", line.as_str());
        big.insert("vigil.source", "test");
        assert!(big.to_canonical().len() > max);
        assert!(fit(&mut big));
        assert!(big.to_canonical().len() <= max);
        assert!(big.has_tag(vigil_event::tag::TRUNCATED));
        assert!(big.get_str("message").unwrap().starts_with("huge é"));
        assert_eq!(big.get_str("vigil.source"), Some("test"));

        // Size in many small fields: the start of it is kept, with Vigil's own fields.
        let mut wide = Event::new(Timestamp::from_secs(1));
        wide.insert("vigil.source", "test");
        for i in 0..120_000 {
            wide.insert(format!("f{i}"), "value");
        }
        assert!(wide.to_canonical().len() > max);
        assert!(fit(&mut wide));
        assert!(wide.to_canonical().len() <= max);
        assert!(wide.has_tag(vigil_event::tag::TRUNCATED));
        assert_eq!(wide.get_str("vigil.source"), Some("test"));
        assert!(wide.get_str("message").unwrap().contains("over the"));
    }

    /// A forged event made oversized with many small fields keeps, once cut, the evidence
    /// Vigil attached (its tags, the claims moved to `external.*`) and its real sender.
    #[test]
    fn fit_keeps_tags_sender_and_identifying_fields_of_a_wide_event() {
        let max = vigil_ledger::format::MAX_EVENT_BYTES;
        let mut wide = Event::new(Timestamp::from_secs(7));
        for i in 0..120_000 {
            wide.insert(format!("f{i}"), "value");
        }
        wide.insert("log.source.address", "198.51.100.7:514");
        wide.insert("external.event.dataset", "vigil.audit");
        wide.insert("event.dataset", "syslog");
        wide.insert("host.name", "web1");
        wide.insert("vigil.source", "udp");
        for i in 0..500 {
            wide.add_tag(&format!("forged{i}"));
        }
        wide.add_tag("reserved_claim");
        wide.add_tag(vigil_event::tag::PARSE_ERROR);
        assert!(wide.to_canonical().len() > max);
        assert!(fit(&mut wide));
        assert!(wide.to_canonical().len() <= max);
        let tags = wide.get("tags").unwrap().to_string();
        for tag in ["reserved_claim", "parse_error", "truncated", "forged0"] {
            assert!(tags.contains(tag), "{tag} kept: {tags}");
        }
        assert_eq!(wide.get_str("log.source.address"), Some("198.51.100.7:514"));
        assert_eq!(wide.get_str("external.event.dataset"), Some("vigil.audit"));
        assert_eq!(wide.get_str("event.dataset"), Some("syslog"));
        assert_eq!(wide.get_str("host.name"), Some("web1"));
        assert_eq!(wide.get_str("vigil.source"), Some("udp"));
        assert_eq!(wide.timestamp(), Timestamp::from_secs(7));
        assert!(
            wide.get("f5").is_none(),
            "the small fields are not kept one by one"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_request_is_one_append() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
        let ingest = Ingest::new(
            NodeLog::from(ledger.clone()),
            Redactor::default(),
            Arc::new(Metrics::default()),
        );
        let range = ingest
            .append_within(events(5000), Origin::Import, Duration::from_secs(5))
            .await
            .unwrap()
            .durable()
            .await
            .unwrap();
        assert_eq!(range, 0..5000, "one range for the whole request");
        assert!(matches!(
            ingest.try_append(events(MAX_REQUEST_EVENTS + 1), Origin::Import),
            Err(IngestError::TooManyEvents { .. })
        ));
        assert_eq!(ingest.in_flight(), 0);
        drop(ingest);
        ledger.close().unwrap();
    }

    /// A sender's own tag that merely contains `parse_error` is not a parse error: the
    /// pipeline asks for the tag by name (a text search of `tags` once counted it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_parse_error_tag_counts_as_a_parse_error() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
        let ingest = Ingest::new(
            NodeLog::from(ledger.clone()),
            Redactor::default(),
            Arc::new(Metrics::default()),
        );
        let mut sent = events(3);
        sent[0].add_tag("no_parse_errors");
        sent[1].add_tag(vigil_event::tag::PARSE_ERROR);
        ingest
            .append_within(
                sent,
                Origin::Input(crate::Listener::Http),
                Duration::from_secs(5),
            )
            .await
            .unwrap()
            .durable()
            .await
            .unwrap();
        assert_eq!(ingest.metrics.parse_errors.get("http"), 1);
        drop(ingest);
        ledger.close().unwrap();
    }

    /// Appends held back: the events and their durability callback.
    type Held = Vec<(Vec<Event>, crate::log::OnDurable)>;

    /// A ledger whose appends wait until the test opens the gate: events stay in flight.
    struct Gate {
        ledger: Ledger,
        held: std::sync::Mutex<Option<Held>>,
    }

    impl Gate {
        fn open(&self) {
            let held = self.held.lock().unwrap().take().unwrap_or_default();
            for (events, done) in held {
                self.ledger.append_with(&events, done);
            }
        }
    }

    impl EventLog for Arc<Gate> {
        fn append(&self, events: &[Event], done: crate::log::OnDurable) {
            match self.held.lock().unwrap().as_mut() {
                Some(held) => held.push((events.to_vec(), done)),
                None => self.ledger.append_with(events, done),
            }
        }
        fn durable_end(&self) -> u64 {
            self.ledger.end_seq()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_pipeline_refuses_or_waits_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
        let gate = Arc::new(Gate {
            ledger: ledger.clone(),
            held: std::sync::Mutex::new(Some(Vec::new())),
        });
        let ingest = Arc::new(Ingest::with_capacity(
            Arc::clone(&gate),
            Redactor::default(),
            Arc::new(Metrics::default()),
            5,
        ));
        // Five events in flight (not yet durable) fill the pipeline.
        let held = ingest.try_append(events(5), Origin::Import).unwrap();
        assert_eq!(ingest.in_flight(), 5);
        // UDP's way: refuse at once.
        assert!(matches!(
            ingest.try_append(events(1), crate::Listener::Udp),
            Err(IngestError::Overloaded)
        ));
        // HTTP's way: wait a little, then refuse (the handler answers 429 + Retry-After).
        let refused = ingest
            .append_within(events(1), crate::Listener::Http, Duration::from_millis(50))
            .await;
        assert!(matches!(refused, Err(IngestError::Overloaded)));
        // TCP's way: wait until there is room.
        let waiter = {
            let ingest = Arc::clone(&ingest);
            tokio::spawn(async move {
                ingest
                    .append_waiting(events(2), crate::Listener::Tcp)
                    .await
                    .unwrap()
                    .durable()
                    .await
                    .unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "TCP waits while the pipeline is full"
        );
        gate.open();
        let first = held.durable().await.unwrap();
        let second = waiter.await.unwrap();
        assert_eq!(first, 0..5);
        assert_eq!(second, 5..7);
        ingest.drain().await;
        assert_eq!(ingest.in_flight(), 0);
        assert_eq!(ingest.metrics.events.get("tcp"), 2);
        assert_eq!(ingest.metrics.stored.get(Origin::Import), 5);
        assert_eq!(
            ingest
                .metrics
                .stored
                .get(Origin::Input(crate::Listener::Tcp)),
            2
        );
        // Secrets were masked on the way in.
        drop(ingest);
        drop(gate);
        ledger.close().unwrap();
        let mut reader = vigil_ledger::LedgerReader::open(dir.path()).unwrap();
        let e = reader.read_event(0).unwrap();
        assert_eq!(
            e.get_str("message"),
            Some("event 0 password=[REDACTED:password]")
        );
    }
}
