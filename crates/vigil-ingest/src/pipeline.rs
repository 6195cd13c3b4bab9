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

use crate::batch::Batch;
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
    /// Drill runs going on: marks their events from outside, journals their durable events.
    drills: Option<Arc<crate::drill::DrillRegistry>>,
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
            drills: None,
        }
    }

    /// Marks drill events ([`crate::drill`]) with the runs of `drills`, and journals every
    /// durable event of a run going on. Without it no event from outside is ever a drill
    /// event (a claimed mark is always dropped).
    pub fn with_drills(mut self, drills: Arc<crate::drill::DrillRegistry>) -> Ingest<L> {
        self.drills = Some(drills);
        self
    }

    /// The drill registry, if drills are on.
    pub fn drills(&self) -> Option<&Arc<crate::drill::DrillRegistry>> {
        self.drills.as_ref()
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

    /// Vouches that `events` were parsed by `vigil_parse::parse_line` with `parsed_with` as the
    /// parse context's redactor (which masks the raw text and every field): when that is this
    /// door's own redactor ([`Ingest::redactor`], the same `Arc`), or both mask nothing, the
    /// door does not mask them a second time. Fields the caller adds after parsing must be
    /// Vigil's own (the sender's address), never input. Any other redactor leaves the batch
    /// to be masked by the door as usual.
    pub fn parsed(&self, events: Vec<Event>, parsed_with: Option<&Arc<Redactor>>) -> Batch {
        let masked = match (parsed_with, self.redactor()) {
            (Some(used), Some(own)) => Arc::ptr_eq(used, &own),
            (None, None) => true,
            _ => false,
        };
        Batch { events, masked }
    }

    fn start(
        &self,
        batch: Batch,
        permit: Option<OwnedSemaphorePermit>,
        origin: Origin,
        mark: Option<&crate::idempotency::Mark>,
    ) -> Pending {
        let Batch { mut events, masked } = batch;
        let label = origin.label();
        let mut parse_errors = 0;
        let mut truncated = 0;
        // Drill events are counted apart: a drill must not inflate a listener's figures.
        let mut n_drill: u64 = 0;
        let n_events = events.len();
        // One snapshot for the whole batch: enriched wholly by one version of the lists.
        let enrich = self
            .enricher
            .as_ref()
            .filter(|_| matches!(origin, Origin::Input(_) | Origin::Import))
            .map(|e| (e.snapshot(), &e.stats));
        let from_outside = matches!(origin, Origin::Input(_) | Origin::Import);
        let drills = self.drills.as_ref().filter(|d| d.is_active());
        // Drill events of runs going on, by index in the batch: journaled once durable.
        let mut drill_events: Vec<(usize, Event)> = Vec::new();
        for (i, event) in events.iter_mut().enumerate() {
            // Lines parsed with this redactor were masked already (`Ingest::parsed`); this
            // catches events built any other way.
            if !masked {
                self.redactor.redact_event(event);
            }
            // Only the door marks drill events, and only from a live nonce (crate::drill).
            if from_outside {
                match drills {
                    Some(d) => {
                        d.mark_input(event);
                    }
                    None => {
                        event.remove(vigil_event::field::VIGIL_DRILL_RUN);
                    }
                }
            }
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
            let cut = fit(event);
            if event.drill_run().is_some() {
                n_drill += 1;
            } else {
                truncated += u64::from(cut);
                if let Some(vigil_event::Value::List(kinds)) = event.get("vigil.redacted") {
                    for kind in kinds.iter().filter_map(vigil_event::Value::as_str) {
                        self.metrics.redactions.add(kind, 1);
                    }
                }
                if event.has_tag(vigil_event::tag::PARSE_ERROR) {
                    parse_errors += 1;
                }
            }
            if let (Some(d), Some(run)) = (drills, event.drill_run())
                && d.tracks(run)
            {
                drill_events.push((i, event.clone()));
            }
        }
        let drill_journal = (!drill_events.is_empty())
            .then(|| self.drills.clone())
            .flatten()
            .map(|d| (d, drill_events));
        self.metrics.parse_errors.add(label, parse_errors);
        self.metrics.truncated.add(label, truncated);
        // Events per source, counted once the batch is durable (a batch usually has one).
        // Vigil's own events other than audit are not a source.
        let mut per_source: Vec<(String, u64)> = Vec::new();
        if matches!(origin, Origin::Input(_) | Origin::Audit) {
            // A drill's events count for no source (the Sources page's figures).
            for event in events.iter().filter(|e| e.drill_run().is_none()) {
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
                if let (Ok(range), Some((drills, events))) = (&result, drill_journal) {
                    drills.record(
                        events
                            .into_iter()
                            .map(|(i, e)| (range.start + i as u64, e))
                            .collect(),
                    );
                }
                if result.is_ok() {
                    metrics.stored.add(origin, n);
                    // By listener as before (audit counted as one): the other origins are
                    // in `stored` only. A drill's events are counted apart.
                    if matches!(origin, Origin::Input(_) | Origin::Audit) {
                        metrics.events.add(label, n - n_drill);
                        metrics.drill_events.add(label, n_drill);
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
        events: impl Into<Batch>,
        origin: impl Into<Origin>,
    ) -> Result<Pending, IngestError> {
        let events = events.into();
        let n = self.room_for(&events.events)?;
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
            Ok(Ok(permit)) => Ok(self.start(events.into(), Some(permit), origin.into(), mark)),
            Ok(Err(_)) => Err(IngestError::Ledger(LedgerError::Closed)),
            Err(_) => Err(IngestError::Overloaded),
        }
    }

    /// Appends if there is room now, else `Overloaded` (UDP drops; audit events of requests
    /// are dropped and counted rather than let a flood hold memory).
    pub fn try_append(
        &self,
        events: impl Into<Batch>,
        origin: impl Into<Origin>,
    ) -> Result<Pending, IngestError> {
        let events = events.into();
        let n = self.room_for(&events.events)?;
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
    ///
    /// Takes a [`Batch`]: `vigil import` hands [`Ingest::parsed`] batches so the door does not
    /// mask lines parsed with its own redactor again; a `Vec<Event>` is masked as usual.
    pub fn submit(&self, events: impl Into<Batch>, origin: Origin) -> Pending {
        let events = events.into();
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
mod tests;
