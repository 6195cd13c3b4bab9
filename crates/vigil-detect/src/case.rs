//! Cases: an incident, grouping alerts and events, with a title, a status (open, in progress,
//! closed), a severity, an assignee, comments and a timeline of everything done to it.
//!
//! Pure data, like the alert book. Every change is one `vigil.audit` ledger event
//! (`event.action` `case_created`, `case_updated`, `case_commented`, `case_alert_added` or
//! `case_event_added`, built by [`Change::to_event`] with the typed audit builder), and the book
//! is the result of applying those events in ledger order ([`CaseBook::apply`]). The server
//! applies the very event the ledger stored (read back after it is durable), so the live book and
//! one rebuilt from the ledger cannot differ. Outside input can never carry the `vigil.audit`
//! dataset (`vigil-parse::reserved`), so no sender can forge a case change.
//!
//! The fields of a case event (all under `vigil.case.`): `id` (integer, always), and per
//! action `title`, `status`, `severity`, `assignee` (created, updated: the new values; an
//! updated event carries only what changed), `comment` (commented), `alert_id` (alert added),
//! `event_seq` (event added; with `event_shard` in cluster mode, where each shard numbers its own
//! events: [`EventRef`]). `user.name` is who did it, `@timestamp` when.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Value as Json, json};
use vigil_event::{Category, Event, EventType, Outcome, Timestamp, Value, dataset, field};

use crate::alert::Level;

/// Longest shard name an event reference may carry.
pub const MAX_SHARD_CHARS: usize = 16;

/// A stored event a case names: its sequence number in a ledger and, in cluster mode, the shard
/// whose ledger that is (each shard numbers its own events, so a number alone names none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventRef {
    /// The shard (`p3`, `sys`) in cluster mode; `None`: the standalone ledger.
    pub shard: Option<String>,
    /// The event's sequence number in that ledger.
    pub seq: u64,
}

impl EventRef {
    /// An event of the standalone ledger.
    pub fn local(seq: u64) -> EventRef {
        EventRef { shard: None, seq }
    }

    /// An event of a cluster's shard.
    pub fn in_shard(shard: impl Into<String>, seq: u64) -> EventRef {
        EventRef {
            shard: Some(shard.into()),
            seq,
        }
    }

    /// Whether `shard` is a well-formed shard name (1–[`MAX_SHARD_CHARS`] lowercase letters and
    /// digits); which shards a cluster has is the server's to check.
    pub fn valid_shard(shard: &str) -> bool {
        (1..=MAX_SHARD_CHARS).contains(&shard.len())
            && shard
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }

    /// The API's form: a bare number standalone (as it always was), `{"shard", "seq"}` in a
    /// cluster.
    pub fn to_json(&self) -> Json {
        match &self.shard {
            None => json!(self.seq),
            Some(shard) => json!({"shard": shard, "seq": self.seq}),
        }
    }
}

impl std::fmt::Display for EventRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.shard {
            None => write!(f, "{}", self.seq),
            Some(shard) => write!(f, "{shard}:{}", self.seq),
        }
    }
}

/// Cases kept in one book.
pub const MAX_CASES: usize = 100_000;
/// Alerts, events and comments each case holds at most.
pub const MAX_ITEMS: usize = 1_000;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest comment, in bytes.
pub const MAX_COMMENT_BYTES: usize = 4_096;
/// Longest assignee name, in characters (Vigil's account names are at most 64).
pub const MAX_ASSIGNEE_CHARS: usize = 64;

/// The prefix of every case event's `event.action`.
pub const ACTION_PREFIX: &str = "case_";

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseStatus {
    /// New: nobody is working on it yet.
    Open,
    /// Someone is working on it.
    InProgress,
    /// Done.
    Closed,
}

impl CaseStatus {
    /// Reads `open`, `in_progress` (or `in progress`, `in-progress`), `closed`.
    pub fn parse(text: &str) -> Option<CaseStatus> {
        match text.to_ascii_lowercase().replace([' ', '-'], "_").as_str() {
            "open" => Some(CaseStatus::Open),
            "in_progress" => Some(CaseStatus::InProgress),
            "closed" => Some(CaseStatus::Closed),
            _ => None,
        }
    }

    /// `open`, `in_progress` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::InProgress => "in_progress",
            CaseStatus::Closed => "closed",
        }
    }
}

/// Reads a severity: one of Sigma's levels, exactly (unlike [`Level::parse`], which reads
/// anything unknown as medium; a case's severity is what a person chose).
pub fn parse_severity(text: &str) -> Option<Level> {
    let level = Level::parse(text);
    (level.as_str() == text.to_ascii_lowercase() || text.eq_ignore_ascii_case("info"))
        .then_some(level)
}

/// A comment on a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Who wrote it.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// What.
    pub text: String,
}

/// One line of a case's timeline: a change, who made it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub by: String,
    /// The event's action without its prefix: `created`, `updated`, `commented`,
    /// `alert_added`, `event_added`.
    pub action: String,
    /// What changed, in words.
    pub detail: String,
    /// The ledger sequence number of the change's event, when known.
    pub seq: Option<u64>,
}

/// A case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Unique, increasing from 1.
    pub id: u64,
    /// What the incident is.
    pub title: String,
    /// Where it stands.
    pub status: CaseStatus,
    /// How bad it is.
    pub severity: Level,
    /// Who works on it (empty: nobody yet).
    pub assignee: String,
    /// Who opened it.
    pub created_by: String,
    /// When.
    pub created: Timestamp,
    /// When it last changed.
    pub updated: Timestamp,
    /// Alert ids, in the order they were added.
    pub alerts: Vec<u64>,
    /// Events added by hand, in the order they were added.
    pub events: Vec<EventRef>,
    /// Comments, oldest first.
    pub comments: Vec<Comment>,
    /// Every change, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

impl Case {
    /// The case as the API lists it: everything but the comments' and timeline's contents.
    pub fn summary_json(&self) -> Json {
        json!({
            "id": self.id,
            "title": self.title,
            "status": self.status.as_str(),
            "severity": self.severity.as_str(),
            "assignee": self.assignee,
            "created_by": self.created_by,
            "created": self.created.to_rfc3339(),
            "updated": self.updated.to_rfc3339(),
            "alerts": self.alerts,
            "events": self.events.iter().map(EventRef::to_json).collect::<Vec<_>>(),
            "comments": self.comments.len(),
        })
    }

    /// The whole case as `GET /api/v1/cases/{id}` shows it (the server adds the alerts' and
    /// events' contents).
    pub fn to_json(&self) -> Json {
        let mut j = self.summary_json();
        j["comments"] = self
            .comments
            .iter()
            .map(|c| json!({"by": c.by, "at": c.at.to_rfc3339(), "text": c.text}))
            .collect();
        j["timeline"] = self
            .timeline
            .iter()
            .map(|t| {
                json!({"at": t.at.to_rfc3339(), "by": t.by, "action": t.action,
                       "detail": t.detail, "seq": t.seq})
            })
            .collect();
        j
    }
}

/// A change to a case, as a person asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Open a new case.
    Create {
        /// Its title.
        title: String,
        /// Its severity.
        severity: Level,
        /// Who works on it (may be empty).
        assignee: String,
    },
    /// Change what is given; `None` leaves a field as it is.
    Update {
        /// A new title.
        title: Option<String>,
        /// A new status.
        status: Option<CaseStatus>,
        /// A new severity.
        severity: Option<Level>,
        /// A new assignee (empty: nobody).
        assignee: Option<String>,
    },
    /// Add a comment.
    Comment {
        /// The comment.
        text: String,
    },
    /// Add an alert.
    AddAlert {
        /// The alert's id.
        alert: u64,
    },
    /// Add a stored event.
    AddEvent {
        /// The event.
        event: EventRef,
    },
}

/// Why a change was refused. None is worth a retry as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// There is no case with this id (HTTP 404).
    #[error("no case {id}")]
    NoCase {
        /// The id asked for.
        id: u64,
    },
    /// The change itself is malformed (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The change would exceed a bound, or repeats what the case already holds (HTTP 409).
    #[error("{0}")]
    Conflict(String),
}

fn valid_text(what: &str, text: &str, max_chars: usize) -> Result<(), CaseError> {
    if text.chars().count() > max_chars {
        return Err(CaseError::Invalid(format!(
            "{what} longer than {max_chars} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(CaseError::Invalid(format!(
            "{what} holds control characters"
        )));
    }
    Ok(())
}

impl Change {
    /// The event's action (`case_created`, …).
    pub fn action(&self) -> &'static str {
        match self {
            Change::Create { .. } => "case_created",
            Change::Update { .. } => "case_updated",
            Change::Comment { .. } => "case_commented",
            Change::AddAlert { .. } => "case_alert_added",
            Change::AddEvent { .. } => "case_event_added",
        }
    }

    /// Checks the change on its own: lengths, no control characters, a title present.
    pub fn validate(&self) -> Result<(), CaseError> {
        match self {
            Change::Create {
                title, assignee, ..
            } => {
                if title.trim().is_empty() {
                    return Err(CaseError::Invalid("a case needs a title".into()));
                }
                valid_text("title", title, MAX_TITLE_CHARS)?;
                valid_text("assignee", assignee, MAX_ASSIGNEE_CHARS)
            }
            Change::Update {
                title,
                status,
                severity,
                assignee,
            } => {
                if title.is_none() && status.is_none() && severity.is_none() && assignee.is_none() {
                    return Err(CaseError::Invalid(
                        "nothing to change: give title, status, severity or assignee".into(),
                    ));
                }
                if let Some(t) = title {
                    if t.trim().is_empty() {
                        return Err(CaseError::Invalid("a case needs a title".into()));
                    }
                    valid_text("title", t, MAX_TITLE_CHARS)?;
                }
                if let Some(a) = assignee {
                    valid_text("assignee", a, MAX_ASSIGNEE_CHARS)?;
                }
                Ok(())
            }
            Change::Comment { text } => {
                if text.trim().is_empty() {
                    return Err(CaseError::Invalid("the comment is empty".into()));
                }
                if text.len() > MAX_COMMENT_BYTES {
                    return Err(CaseError::Invalid(format!(
                        "comment longer than {MAX_COMMENT_BYTES} bytes"
                    )));
                }
                Ok(())
            }
            Change::AddAlert { .. } | Change::AddEvent { .. } => Ok(()),
        }
    }

    /// The change as its ledger event: a `vigil.audit` event of `by` (from `source`, when
    /// known) at `at`, on case `case`.
    pub fn to_event(&self, case: u64, by: &str, source: Option<IpAddr>, at: Timestamp) -> Event {
        let event_type = match self {
            Change::Create { .. } => EventType::Creation,
            _ => EventType::Change,
        };
        let mut b = Event::audit_builder(self.action())
            .category(Category::Configuration)
            .event_type(event_type)
            .outcome(Outcome::Success)
            .user(by)
            .at(at)
            .field("vigil.case.id", case as i64);
        if let Some(ip) = source {
            b = b.source(ip);
        }
        let (b, what) = match self {
            Change::Create {
                title,
                severity,
                assignee,
            } => (
                b.field("vigil.case.title", title.as_str())
                    .field("vigil.case.status", CaseStatus::Open.as_str())
                    .field("vigil.case.severity", severity.as_str())
                    .field("vigil.case.assignee", assignee.as_str()),
                format!("opened case {case} ({}): {title}", severity.as_str()),
            ),
            Change::Update {
                title,
                status,
                severity,
                assignee,
            } => {
                let mut b = b;
                if let Some(t) = title {
                    b = b.field("vigil.case.title", t.as_str());
                }
                if let Some(s) = status {
                    b = b.field("vigil.case.status", s.as_str());
                }
                if let Some(s) = severity {
                    b = b.field("vigil.case.severity", s.as_str());
                }
                if let Some(a) = assignee {
                    b = b.field("vigil.case.assignee", a.as_str());
                }
                (b, format!("changed case {case}: {}", self.detail()))
            }
            Change::Comment { text } => (
                b.field("vigil.case.comment", text.as_str()),
                format!("commented on case {case}"),
            ),
            Change::AddAlert { alert } => (
                b.field("vigil.case.alert_id", *alert as i64),
                format!("added alert {alert} to case {case}"),
            ),
            Change::AddEvent { event } => {
                let b = b.field("vigil.case.event_seq", event.seq as i64);
                let b = match &event.shard {
                    Some(shard) => b.field("vigil.case.event_shard", shard.as_str()),
                    None => b,
                };
                (b, format!("added event {event} to case {case}"))
            }
        };
        let who = if by.is_empty() { "someone" } else { by };
        b.message(format!("{who} {what}")).build()
    }

    /// Reads a case event back: `(case id, change, who, when)`; `None` for any other event
    /// (not Vigil's audit dataset, not a case action, or fields missing or malformed).
    pub fn from_event(e: &Event) -> Option<(u64, Change, String, Timestamp)> {
        if !e.is_dataset(dataset::VIGIL_AUDIT) {
            return None;
        }
        let action = e
            .get_str(field::EVENT_ACTION)?
            .strip_prefix(ACTION_PREFIX)?;
        let id = u64::try_from(e.get("vigil.case.id")?.as_i64()?).ok()?;
        let text = |k: &str| e.get_str(k).map(str::to_owned);
        let int = |k: &str| {
            e.get(k)
                .and_then(Value::as_i64)
                .and_then(|v| u64::try_from(v).ok())
        };
        let change = match action {
            "created" => Change::Create {
                title: text("vigil.case.title")?,
                severity: parse_severity(e.get_str("vigil.case.severity")?)?,
                assignee: text("vigil.case.assignee").unwrap_or_default(),
            },
            "updated" => Change::Update {
                title: text("vigil.case.title"),
                status: match e.get_str("vigil.case.status") {
                    Some(s) => Some(CaseStatus::parse(s)?),
                    None => None,
                },
                severity: match e.get_str("vigil.case.severity") {
                    Some(s) => Some(parse_severity(s)?),
                    None => None,
                },
                assignee: text("vigil.case.assignee"),
            },
            "commented" => Change::Comment {
                text: text("vigil.case.comment")?,
            },
            "alert_added" => Change::AddAlert {
                alert: int("vigil.case.alert_id")?,
            },
            "event_added" => Change::AddEvent {
                event: EventRef {
                    shard: match e.get("vigil.case.event_shard") {
                        None => None,
                        Some(v) => {
                            Some(v.as_str().filter(|s| EventRef::valid_shard(s))?.to_owned())
                        }
                    },
                    seq: int("vigil.case.event_seq")?,
                },
            },
            _ => return None,
        };
        let by = e.get_str("user.name").unwrap_or("").to_owned();
        Some((id, change, by, e.timestamp()))
    }

    /// What the change does, in words (the timeline's `detail`).
    pub fn detail(&self) -> String {
        match self {
            Change::Create {
                title,
                severity,
                assignee,
            } => {
                let who = if assignee.is_empty() {
                    String::new()
                } else {
                    format!(", assigned to {assignee}")
                };
                format!("opened \"{title}\" ({}{who})", severity.as_str())
            }
            Change::Update {
                title,
                status,
                severity,
                assignee,
            } => {
                let mut parts = Vec::new();
                if let Some(t) = title {
                    parts.push(format!("title \"{t}\""));
                }
                if let Some(s) = status {
                    parts.push(format!("status {}", s.as_str()));
                }
                if let Some(s) = severity {
                    parts.push(format!("severity {}", s.as_str()));
                }
                if let Some(a) = assignee {
                    parts.push(if a.is_empty() {
                        "unassigned".to_owned()
                    } else {
                        format!("assignee {a}")
                    });
                }
                parts.join(", ")
            }
            Change::Comment { text } => text.clone(),
            Change::AddAlert { alert } => format!("alert #{alert} added"),
            Change::AddEvent { event } => format!("event {event} added"),
        }
    }
}

/// Filters of `GET /api/v1/cases`.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only this status.
    pub status: Option<CaseStatus>,
    /// Only cases holding this alert.
    pub alert: Option<u64>,
    /// Only cases assigned to this account.
    pub assignee: Option<String>,
}

/// Every case.
#[derive(Debug, Default)]
pub struct CaseBook {
    cases: BTreeMap<u64, Case>,
    /// Case events that could not be applied (a malformed or out-of-order event).
    pub skipped: u64,
}

impl CaseBook {
    /// An empty book.
    pub fn new() -> CaseBook {
        CaseBook::default()
    }

    /// The id the next new case takes.
    pub fn next_id(&self) -> u64 {
        self.cases.keys().next_back().map_or(1, |id| id + 1)
    }

    /// One case.
    pub fn get(&self, id: u64) -> Option<&Case> {
        self.cases.get(&id)
    }

    /// How many cases the book holds.
    pub fn len(&self) -> usize {
        self.cases.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
    }

    /// Cases matching `filter`, newest first.
    pub fn list(&self, filter: &CaseFilter) -> Vec<&Case> {
        self.cases
            .values()
            .rev()
            .filter(|c| filter.status.is_none_or(|s| c.status == s))
            .filter(|c| filter.alert.is_none_or(|a| c.alerts.contains(&a)))
            .filter(|c| filter.assignee.as_deref().is_none_or(|a| c.assignee == a))
            .collect()
    }

    /// Whether `change` can be made to case `id` now (a new case must take [`next_id`]).
    ///
    /// [`next_id`]: CaseBook::next_id
    pub fn check(&self, id: u64, change: &Change) -> Result<(), CaseError> {
        change.validate()?;
        if let Change::Create { .. } = change {
            if self.cases.len() >= MAX_CASES {
                return Err(CaseError::Conflict(format!(
                    "the most cases Vigil keeps ({MAX_CASES}) are open"
                )));
            }
            if id != self.next_id() {
                return Err(CaseError::Conflict(format!(
                    "case {id} is not the next case ({})",
                    self.next_id()
                )));
            }
            return Ok(());
        }
        let case = self.cases.get(&id).ok_or(CaseError::NoCase { id })?;
        let full = |n: usize, what: &str| {
            if n >= MAX_ITEMS {
                Err(CaseError::Conflict(format!(
                    "case {id} holds the most {what} a case may ({MAX_ITEMS})"
                )))
            } else {
                Ok(())
            }
        };
        match change {
            Change::AddAlert { alert } => {
                full(case.alerts.len(), "alerts")?;
                if case.alerts.contains(alert) {
                    return Err(CaseError::Conflict(format!(
                        "alert {alert} is already in case {id}"
                    )));
                }
            }
            Change::AddEvent { event } => {
                full(case.events.len(), "events")?;
                if case.events.contains(event) {
                    return Err(CaseError::Conflict(format!(
                        "event {event} is already in case {id}"
                    )));
                }
            }
            Change::Comment { .. } => full(case.comments.len(), "comments")?,
            Change::Update { .. } | Change::Create { .. } => {}
        }
        Ok(())
    }

    /// Applies one ledger event (any event: those that are not case changes are ignored and
    /// `Ok(None)` returned); `seq` is its sequence number when known. A case event that
    /// cannot apply (its case missing, a bound reached) is skipped and counted, never applied
    /// halfway.
    pub fn apply(&mut self, event: &Event, seq: Option<u64>) -> Result<Option<u64>, CaseError> {
        let Some((id, change, by, at)) = Change::from_event(event) else {
            return Ok(None);
        };
        if let Err(e) = self.check(id, &change) {
            self.skipped += 1;
            return Err(e);
        }
        let entry = TimelineEntry {
            at,
            by: by.clone(),
            action: change.action()[ACTION_PREFIX.len()..].to_owned(),
            detail: change.detail(),
            seq,
        };
        match change {
            Change::Create {
                title,
                severity,
                assignee,
            } => {
                self.cases.insert(
                    id,
                    Case {
                        id,
                        title,
                        status: CaseStatus::Open,
                        severity,
                        assignee,
                        created_by: by,
                        created: at,
                        updated: at,
                        alerts: Vec::new(),
                        events: Vec::new(),
                        comments: Vec::new(),
                        timeline: Vec::new(),
                    },
                );
            }
            Change::Update {
                title,
                status,
                severity,
                assignee,
            } => {
                let case = self.cases.get_mut(&id).ok_or(CaseError::NoCase { id })?;
                if let Some(t) = title {
                    case.title = t;
                }
                if let Some(s) = status {
                    case.status = s;
                }
                if let Some(s) = severity {
                    case.severity = s;
                }
                if let Some(a) = assignee {
                    case.assignee = a;
                }
            }
            Change::Comment { text } => {
                let case = self.cases.get_mut(&id).ok_or(CaseError::NoCase { id })?;
                case.comments.push(Comment { by, at, text });
            }
            Change::AddAlert { alert } => {
                let case = self.cases.get_mut(&id).ok_or(CaseError::NoCase { id })?;
                case.alerts.push(alert);
            }
            Change::AddEvent { event } => {
                let case = self.cases.get_mut(&id).ok_or(CaseError::NoCase { id })?;
                case.events.push(event);
            }
        }
        let case = self.cases.get_mut(&id).ok_or(CaseError::NoCase { id })?;
        case.updated = case.updated.max(at);
        case.timeline.push(entry);
        Ok(Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + s)
    }

    fn create(title: &str) -> Change {
        Change::Create {
            title: title.into(),
            severity: Level::High,
            assignee: "ana".into(),
        }
    }

    #[test]
    fn a_book_rebuilt_from_its_events_is_the_book() {
        let changes = [
            (1, create("SSH brute force on web1")),
            (1, Change::AddAlert { alert: 7 }),
            (
                1,
                Change::AddEvent {
                    event: EventRef::local(42),
                },
            ),
            (
                1,
                Change::AddEvent {
                    event: EventRef::in_shard("p3", 42),
                },
            ),
            (
                1,
                Change::Comment {
                    text: "blocked at the edge".into(),
                },
            ),
            (2, create("Second")),
            (
                1,
                Change::Update {
                    title: None,
                    status: Some(CaseStatus::InProgress),
                    severity: Some(Level::Critical),
                    assignee: Some(String::new()),
                },
            ),
        ];
        let mut live = CaseBook::new();
        let mut events = Vec::new();
        for (n, (id, change)) in changes.iter().enumerate() {
            live.check(*id, change).unwrap();
            let e = change.to_event(*id, "bob", None, t(n as i64));
            // What the ledger stores goes through the canonical bytes.
            let stored = Event::from_canonical(&e.to_canonical()).unwrap();
            assert_eq!(live.apply(&stored, Some(n as u64)).unwrap(), Some(*id));
            events.push(stored);
        }
        let mut rebuilt = CaseBook::new();
        for (n, e) in events.iter().enumerate() {
            rebuilt.apply(e, Some(n as u64)).unwrap();
        }
        assert_eq!(rebuilt.get(1), live.get(1));
        let c = live.get(1).unwrap();
        assert_eq!(c.title, "SSH brute force on web1");
        assert_eq!(c.status, CaseStatus::InProgress);
        assert_eq!(c.severity, Level::Critical);
        assert_eq!(c.assignee, "");
        assert_eq!(c.alerts, [7]);
        assert_eq!(
            c.events,
            [EventRef::local(42), EventRef::in_shard("p3", 42)]
        );
        assert_eq!(
            c.summary_json()["events"],
            json!([42, {"shard": "p3", "seq": 42}])
        );
        assert_eq!(c.comments[0].text, "blocked at the edge");
        assert_eq!(c.comments[0].by, "bob");
        assert_eq!(c.timeline.len(), 6);
        assert_eq!(c.timeline[3].detail, "event p3:42 added");
        assert_eq!(c.timeline[5].action, "updated");
        assert_eq!(
            c.timeline[5].detail,
            "status in_progress, severity critical, unassigned"
        );
        assert_eq!(live.next_id(), 3);
        assert_eq!(
            live.list(&CaseFilter {
                alert: Some(7),
                ..Default::default()
            })
            .len(),
            1
        );
    }

    #[test]
    fn refusals_name_the_reason_and_change_nothing() {
        let mut book = CaseBook::new();
        assert!(matches!(
            book.check(1, &create("  ")),
            Err(CaseError::Invalid(_))
        ));
        assert!(matches!(
            book.check(5, &create("x")),
            Err(CaseError::Conflict(_))
        ));
        assert_eq!(
            book.check(1, &Change::AddAlert { alert: 1 }),
            Err(CaseError::NoCase { id: 1 })
        );
        book.apply(&create("x").to_event(1, "a", None, t(0)), None)
            .unwrap();
        book.apply(
            &Change::AddAlert { alert: 3 }.to_event(1, "a", None, t(1)),
            None,
        )
        .unwrap();
        assert!(matches!(
            book.apply(
                &Change::AddAlert { alert: 3 }.to_event(1, "a", None, t(2)),
                None
            ),
            Err(CaseError::Conflict(_))
        ));
        assert_eq!(book.skipped, 1);
        assert_eq!(book.get(1).unwrap().alerts, [3]);
        let long = Change::Comment {
            text: "x".repeat(MAX_COMMENT_BYTES + 1),
        };
        assert!(matches!(book.check(1, &long), Err(CaseError::Invalid(_))));
        let ctl = Change::Update {
            title: Some("a\u{1b}[2J".into()),
            status: None,
            severity: None,
            assignee: None,
        };
        assert!(matches!(book.check(1, &ctl), Err(CaseError::Invalid(_))));
        let empty = Change::Update {
            title: None,
            status: None,
            severity: None,
            assignee: None,
        };
        assert!(matches!(book.check(1, &empty), Err(CaseError::Invalid(_))));
    }

    #[test]
    fn only_vigils_audit_events_are_case_changes() {
        let mut e = create("x").to_event(1, "a", None, t(0));
        assert!(Change::from_event(&e).is_some());
        e.insert(field::EVENT_DATASET, "app");
        assert!(Change::from_event(&e).is_none(), "another dataset");
        let mut book = CaseBook::new();
        assert_eq!(book.apply(&e, None), Ok(None));
        assert!(book.is_empty());
        let mut odd = create("x").to_event(1, "a", None, t(0));
        odd.insert("vigil.case.severity", "extreme");
        assert!(Change::from_event(&odd).is_none(), "unknown severity");
        let mut neg = Change::AddAlert { alert: 1 }.to_event(1, "a", None, t(0));
        neg.insert("vigil.case.alert_id", -4i64);
        assert!(Change::from_event(&neg).is_none());
    }

    #[test]
    fn statuses_and_severities_read_strictly() {
        assert_eq!(
            CaseStatus::parse("In progress"),
            Some(CaseStatus::InProgress)
        );
        assert_eq!(CaseStatus::parse("done"), None);
        assert_eq!(parse_severity("HIGH"), Some(Level::High));
        assert_eq!(parse_severity("bad"), None);
    }
}
