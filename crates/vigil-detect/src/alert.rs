//! Alerts: what a rule match becomes. One open alert per rule and group (an attacker is one
//! alert, not a thousand); later matches update its count and last-seen time; triage moves it
//! through open → acknowledged → closed with who, when and why. Pure data: the server writes
//! every new alert, update and state change to the ledger ([`Alert::to_event`]) and can rebuild
//! the book from those events ([`AlertBook::replay`]).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value as Json, json};
use vigil_event::{Event, EventKind, Timestamp, Value, dataset, field};

/// Sample sequence numbers kept per alert.
pub const MAX_SAMPLES: usize = 20;
/// Alerts kept in memory; the oldest closed ones are forgotten first (they stay in the ledger).
pub const MAX_ALERTS: usize = 100_000;

/// Severity, as Sigma names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `informational`
    Informational,
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `critical`
    Critical,
}

impl Level {
    /// Reads a Sigma level (unknown → medium).
    pub fn parse(text: &str) -> Level {
        match text.to_ascii_lowercase().as_str() {
            "informational" | "info" => Level::Informational,
            "low" => Level::Low,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => Level::Medium,
        }
    }

    /// The Sigma name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// OCSF `severity_id`.
    pub fn ocsf_severity_id(self) -> u8 {
        match self {
            Level::Informational => 1,
            Level::Low => 2,
            Level::Medium => 3,
            Level::High => 4,
            Level::Critical => 5,
        }
    }
}

/// Triage state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// New, nobody looked yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Done; a new match opens a new alert.
    Closed,
}

impl Status {
    /// Reads `open`, `acknowledged` (or `ack`), `closed`.
    pub fn parse(text: &str) -> Option<Status> {
        match text.to_ascii_lowercase().as_str() {
            "open" => Some(Status::Open),
            "acknowledged" | "ack" => Some(Status::Acknowledged),
            "closed" => Some(Status::Closed),
            _ => None,
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Closed => "closed",
        }
    }
}

/// What an alert knows of the rule that raised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// Rule id (Sigma `id`, or the query rule's name).
    pub id: String,
    /// Title.
    pub title: String,
    /// Severity.
    pub level: Level,
    /// Tags (`attack.t1110`, `attack.credential_access`, …).
    pub tags: Vec<String>,
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triage {
    /// New state.
    pub status: Status,
    /// Who.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Why (may be empty).
    pub comment: String,
}

/// An alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Unique, increasing.
    pub id: u64,
    /// The rule.
    pub rule: RuleInfo,
    /// The group: `(field, value)` pairs, e.g. `[("source.ip", "203.0.113.5")]`.
    pub group: Vec<(String, String)>,
    /// Matches so far.
    pub count: u64,
    /// Event time of the first match.
    pub first_seen: Timestamp,
    /// Event time of the latest match.
    pub last_seen: Timestamp,
    /// Sequence numbers of the first matching events (at most [`MAX_SAMPLES`]).
    pub samples: Vec<u64>,
    /// Current state.
    pub status: Status,
    /// State changes, oldest first.
    pub history: Vec<Triage>,
    /// When the alert was raised (wall clock).
    pub created: Timestamp,
    /// Sequence number of the last ledger event counted in it (none for query rules). Written
    /// with every alert event, so a book rebuilt from the ledger knows which later matches it
    /// has not counted yet ([`AlertBook::observe_uncounted`]).
    pub last_seq: Option<u64>,
    /// A behaviour rule's reason (the baseline and the value that broke it), if any.
    pub explain: Option<crate::behaviour::Explanation>,
    /// Cluster mode with several detector partitions: the partition whose detector raised
    /// it and keeps its group (`vigil.alert.partition`; none standalone and with one).
    pub partition: Option<u32>,
}

impl Alert {
    /// `field=value` pairs joined with spaces, e.g. `source.ip=203.0.113.5`.
    pub fn group_key(&self) -> String {
        group_text(&self.group)
    }

    /// The drill run this alert was raised by (its group holds it), or `None` for a real
    /// alert. Drill alerts ban nobody and are left out of lists and dashboards by default.
    pub fn drill_run(&self) -> Option<&str> {
        self.group
            .iter()
            .find(|(k, _)| k == field::VIGIL_DRILL_RUN)
            .map(|(_, v)| v.as_str())
    }

    /// The alert as a ledger event (`event.dataset=vigil.alert`), for `action` one of
    /// `created`, `updated`, `triaged`.
    pub fn to_event(&self, action: &str, now: Timestamp) -> Event {
        let mut e = Event::new(now);
        e.insert(field::EVENT_KIND, EventKind::Alert);
        e.insert(field::EVENT_DATASET, dataset::VIGIL_ALERT);
        e.insert("event.action", format!("alert-{action}"));
        e.insert(
            "event.severity",
            i64::from(self.rule.level.ocsf_severity_id()),
        );
        e.insert("vigil.alert.id", self.id as i64);
        e.insert("vigil.alert.status", self.status.as_str());
        e.insert("vigil.alert.count", self.count as i64);
        e.insert("vigil.alert.group", self.group_key());
        e.insert("vigil.alert.first_seen", self.first_seen.as_nanos());
        e.insert("vigil.alert.last_seen", self.last_seen.as_nanos());
        e.insert("vigil.alert.created", self.created.as_nanos());
        if let Some(seq) = self.last_seq {
            e.insert("vigil.alert.last_seq", seq as i64);
        }
        if let Some(p) = self.partition {
            e.insert("vigil.alert.partition", i64::from(p));
        }
        e.insert(
            "vigil.alert.samples",
            Value::List(self.samples.iter().map(|&s| Value::Int(s as i64)).collect()),
        );
        e.insert("rule.id", self.rule.id.as_str());
        e.insert("rule.name", self.rule.title.as_str());
        e.insert("vigil.rule.level", self.rule.level.as_str());
        e.insert(
            "tags",
            Value::List(
                self.rule
                    .tags
                    .iter()
                    .map(|t| Value::from(t.as_str()))
                    .collect(),
            ),
        );
        for (field, value) in &self.group {
            e.insert(format!("vigil.alert.group_fields.{field}"), value.as_str());
        }
        if let Some(run) = self.drill_run() {
            e.insert(field::VIGIL_DRILL_RUN, run);
        }
        if let Some(x) = &self.explain {
            for (k, v) in x.to_fields() {
                e.insert(k, v);
            }
        }
        if let Some(t) = self.history.last()
            && action == "triaged"
        {
            e.insert("user.name", t.by.as_str());
            e.insert("vigil.alert.comment", t.comment.as_str());
            e.insert("vigil.alert.triaged_at", t.at.as_nanos());
        }
        e.insert(
            "message",
            format!(
                "alert {} {}: {} [{}] {} ({} matches)",
                self.id,
                action,
                self.rule.title,
                self.rule.level.as_str(),
                self.group_key(),
                self.count
            ),
        );
        e
    }

    /// The alert as `GET /api/v1/alerts` lists it and `vigil hunt --format json` prints it (the
    /// `alert` shape of DESIGN §5): `group` an object of field → value, `group_key` its text
    /// form, `attack` the ATT&CK tags without their `attack.` prefix, times in RFC 3339;
    /// `partition` the detector partition that raised it (cluster mode with several only).
    pub fn to_api_json(&self) -> Json {
        let iso = |t: Timestamp| t.to_rfc3339();
        let mut j = json!({
            "id": self.id,
            "rule": {"id": self.rule.id, "title": self.rule.title, "level": self.rule.level.as_str(), "tags": self.rule.tags},
            "attack": self.rule.tags.iter().filter_map(|t| t.strip_prefix("attack.")).collect::<Vec<_>>(),
            "group": self.group.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "group_key": self.group_key(),
            "count": self.count,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "samples": self.samples,
            "status": self.status.as_str(),
            "history": self.history.iter().map(|t| json!({"status": t.status.as_str(), "by": t.by, "at": iso(t.at), "comment": t.comment})).collect::<Vec<_>>(),
            "created": iso(self.created),
            "baseline": self.explain.as_ref().map(crate::behaviour::Explanation::to_json),
            "drill": self.drill_run(),
        });
        // Cluster mode with several detector partitions only (the shape is unchanged else).
        if let Some(p) = self.partition {
            j["partition"] = json!(p);
        }
        j
    }

    /// The alert as an OCSF 1.x Detection Finding (class 2004).
    pub fn to_ocsf(&self) -> Json {
        let activity_id = match self.status {
            Status::Open if self.history.is_empty() && self.count <= 1 => 1,
            Status::Closed => 3,
            _ => 2,
        };
        let status_id = match self.status {
            Status::Open => 1,
            Status::Acknowledged => 2,
            Status::Closed => 4,
        };
        let ms = |t: Timestamp| t.as_nanos() / 1_000_000;
        let attacks: Vec<Json> = self
            .rule
            .tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .filter(|t| {
                t.len() > 1 && t.starts_with('t') && t[1..2].chars().all(|c| c.is_ascii_digit())
            })
            .map(|t| json!({"technique": {"uid": t.to_ascii_uppercase()}}))
            .collect();
        json!({
            "category_uid": 2,
            "category_name": "Findings",
            "class_uid": 2004,
            "class_name": "Detection Finding",
            "activity_id": activity_id,
            "type_uid": 200400 + activity_id,
            "severity_id": self.rule.level.ocsf_severity_id(),
            "severity": self.rule.level.as_str(),
            "status_id": status_id,
            "status": self.status.as_str(),
            "is_alert": true,
            "time": ms(self.last_seen),
            "start_time": ms(self.first_seen),
            "end_time": ms(self.last_seen),
            "count": self.count,
            "message": format!("{} {}", self.rule.title, self.group_key()),
            "metadata": {
                "version": "1.3.0",
                "product": {"name": "Vigil", "vendor_name": "Vigil"},
                "uid": self.id.to_string(),
            },
            "finding_info": {
                "uid": self.id.to_string(),
                "title": self.rule.title,
                "analytic": {"uid": self.rule.id, "name": self.rule.title, "type_id": 1, "type": "Rule"},
                "attacks": attacks,
                "first_seen_time": ms(self.first_seen),
                "last_seen_time": ms(self.last_seen),
                "created_time": ms(self.created),
                "related_events_count": self.count,
                "tags": self.rule.tags,
            },
            "unmapped": {
                "group": self.group.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "sample_seqs": self.samples,
            },
        })
    }
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyReason {
    /// A new alert.
    New,
    /// An open alert is still matching (at most once per throttle period).
    Update,
}

impl NotifyReason {
    /// `new` or `update` (the webhook body's `reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyReason::New => "new",
            NotifyReason::Update => "update",
        }
    }

    /// The alert event's action for it: `created` or `updated` ([`Alert::to_event`]).
    pub fn action(self) -> &'static str {
        match self {
            NotifyReason::New => "created",
            NotifyReason::Update => "updated",
        }
    }
}

/// A notification for the notifiers: the alert as it is now, and why it is sent.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Why.
    pub reason: NotifyReason,
    /// The alert.
    pub alert: Alert,
}

fn group_text(group: &[(String, String)]) -> String {
    group
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What [`AlertBook::observe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// A new alert (notify).
    New(u64),
    /// An open alert counted another match; `notify` when the throttle period passed.
    Updated {
        /// The alert.
        id: u64,
        /// Whether to tell people again.
        notify: bool,
    },
}

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only this state.
    pub status: Option<Status>,
    /// Only this rule id or title.
    pub rule: Option<String>,
    /// Only this level or above.
    pub min_level: Option<Level>,
    /// Only alerts last seen at or after.
    pub since: Option<Timestamp>,
    /// Only alerts first seen before.
    pub until: Option<Timestamp>,
    /// Drill alerts: left out unless asked for.
    pub drills: DrillFilter,
}

/// Which alerts a list holds as to drills (`vigil drill`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DrillFilter {
    /// Real alerts only (the default: drills never count in lists and dashboards).
    #[default]
    Exclude,
    /// Real and drill alerts.
    Include,
    /// Drill alerts only.
    Only,
}

impl DrillFilter {
    /// `exclude`, `include` or `only` (`?drills=` of `GET /api/v1/alerts`).
    pub fn parse(text: &str) -> Option<DrillFilter> {
        match text {
            "exclude" => Some(DrillFilter::Exclude),
            "include" => Some(DrillFilter::Include),
            "only" => Some(DrillFilter::Only),
            _ => None,
        }
    }

    /// Whether an alert of drill run `run` (none: a real alert) is kept.
    pub fn keeps(self, run: Option<&str>) -> bool {
        match self {
            DrillFilter::Exclude => run.is_none(),
            DrillFilter::Include => true,
            DrillFilter::Only => run.is_some(),
        }
    }
}

/// Why a triage change was refused. Neither is worth a retry: the first is the caller's id,
/// the second a closed alert, which stays closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriageError {
    /// There is no alert with this id (HTTP 404).
    #[error("no alert {id}")]
    NoAlert {
        /// The id asked for.
        id: u64,
    },
    /// The alert is closed and can only stay closed (HTTP 409).
    #[error("alert {id} is closed; a new match opens a new alert")]
    Closed {
        /// The alert.
        id: u64,
    },
}

/// For callers that pass errors on as text (`Result<_, String>` and `?`).
impl From<TriageError> for String {
    fn from(e: TriageError) -> String {
        e.to_string()
    }
}

/// Alert ids one detector lease epoch may hand out in cluster mode: the detector of epoch `E`
/// numbers its new alerts from `E × ALERT_IDS_PER_EPOCH + 1` (see [`AlertBook::stamp_epoch`]),
/// so alert `3000000017` is the 17th of epoch 3 (and stays below 2^53, exact in JSON numbers
/// read by JavaScript, up to epoch 9 million).
pub const ALERT_IDS_PER_EPOCH: u64 = 1_000_000_000;

/// Every alert, and the open one for each (rule, group).
#[derive(Debug, Default)]
pub struct AlertBook {
    alerts: BTreeMap<u64, Alert>,
    open: HashMap<(String, String), u64>,
    /// When each alert last notified (wall clock, nanoseconds).
    notified: HashMap<u64, i64>,
    next_id: u64,
    /// Cluster mode: per detector partition this node holds or held (`None`: the one
    /// detector), the next id of its lease epoch (see [`AlertBook::stamp_epoch_in`]);
    /// replayed alerts of other nodes never move it.
    epoch_next: BTreeMap<Option<u32>, u64>,
    /// Minimum time between two notifications of one alert's updates.
    pub throttle_nanos: i64,
    /// The latest event counted by a replayed `alert-created`/`alert-updated` event, per
    /// detector partition (`None`: standalone, or one detector).
    written_through: BTreeMap<Option<u32>, u64>,
}

impl AlertBook {
    /// An empty book; updates notify at most once per `throttle_secs`.
    pub fn new(throttle_secs: i64) -> AlertBook {
        AlertBook {
            next_id: 1,
            throttle_nanos: throttle_secs.saturating_mul(1_000_000_000),
            ..AlertBook::default()
        }
    }

    /// Counts a match of `rule` in `group` by the event `seq` at event time `time`.
    pub fn observe(
        &mut self,
        rule: &RuleInfo,
        group: Vec<(String, String)>,
        time: Timestamp,
        seq: Option<u64>,
        now: Timestamp,
    ) -> Observed {
        self.observe_in(None, rule, group, time, seq, now)
    }

    /// [`AlertBook::observe`] by the detector of `partition` (cluster mode with several
    /// detector partitions): a new alert records it ([`Alert::partition`]).
    pub fn observe_in(
        &mut self,
        partition: Option<u32>,
        rule: &RuleInfo,
        group: Vec<(String, String)>,
        time: Timestamp,
        seq: Option<u64>,
        now: Timestamp,
    ) -> Observed {
        let key = (rule.id.clone(), group_text(&group));
        if let Some(&id) = self.open.get(&key)
            && let Some(alert) = self.alerts.get_mut(&id)
        {
            alert.count += 1;
            if time < alert.first_seen {
                alert.first_seen = time;
            }
            if time > alert.last_seen {
                alert.last_seen = time;
            }
            if let Some(s) = seq
                && alert.samples.len() < MAX_SAMPLES
            {
                alert.samples.push(s);
            }
            if seq.is_some() {
                alert.last_seq = alert.last_seq.max(seq);
            }
            let last = self.notified.get(&id).copied().unwrap_or(i64::MIN);
            let notify = now.as_nanos().saturating_sub(last) >= self.throttle_nanos;
            if notify {
                self.notified.insert(id, now.as_nanos());
            }
            return Observed::Updated { id, notify };
        }
        let id = self.take_id(partition);
        self.alerts.insert(
            id,
            Alert {
                id,
                rule: rule.clone(),
                group,
                count: 1,
                first_seen: time,
                last_seen: time,
                samples: seq.into_iter().collect(),
                status: Status::Open,
                history: Vec::new(),
                created: now,
                last_seq: seq,
                explain: None,
                partition,
            },
        );
        self.open.insert(key, id);
        self.notified.insert(id, now.as_nanos());
        self.forget_old();
        Observed::New(id)
    }

    /// Records a behaviour rule's reason on alert `id` (the newest reason wins).
    pub fn explain(&mut self, id: u64, explain: crate::behaviour::Explanation) {
        if let Some(a) = self.alerts.get_mut(&id) {
            a.explain = Some(explain);
        }
    }

    /// Moves an alert to `status`; closing it lets the next match open a new alert.
    pub fn triage(&mut self, id: u64, change: Triage) -> Result<&Alert, TriageError> {
        let alert = self
            .alerts
            .get_mut(&id)
            .ok_or(TriageError::NoAlert { id })?;
        if alert.status == Status::Closed && change.status != Status::Closed {
            return Err(TriageError::Closed { id });
        }
        alert.status = change.status;
        alert.history.push(change);
        if alert.status == Status::Closed {
            let key = (alert.rule.id.clone(), group_text(&alert.group));
            if self.open.get(&key) == Some(&id) {
                self.open.remove(&key);
            }
        }
        Ok(&self.alerts[&id])
    }

    /// Cluster mode: this book's detector holds a detector lease at `epoch`; its new alerts
    /// take ids in that epoch's own range (from `epoch × ALERT_IDS_PER_EPOCH + 1`, after any
    /// id of the range the book already holds). A deposed detector's alert published after
    /// its successor took over is numbered in the older epoch's range, so the two can never
    /// hand out the same id. Epochs are reserved cluster-wide across every detector partition
    /// (`vigil_cluster::detector`), so each epoch's range belongs to one node: the counter is
    /// this book's own, and alerts of other nodes or partitions replayed into the book (whose
    /// ids are in their own epochs' ranges, possibly higher) never move it. Stamping never goes
    /// back to a lower epoch's range. Standalone books are never stamped (ids from 1).
    pub fn stamp_epoch(&mut self, epoch: u64) {
        self.stamp_epoch_in(None, epoch);
    }

    /// [`AlertBook::stamp_epoch`] for the alerts of detector `partition` (cluster mode with
    /// several detector partitions: a node holding several numbers each one's alerts in the
    /// range of that partition's own lease epoch).
    pub fn stamp_epoch_in(&mut self, partition: Option<u32>, epoch: u64) {
        let floor = epoch.saturating_mul(ALERT_IDS_PER_EPOCH).saturating_add(1);
        let ceiling = floor.saturating_add(ALERT_IDS_PER_EPOCH - 1);
        let after = self
            .alerts
            .range(floor..ceiling)
            .next_back()
            .map_or(floor, |(id, _)| id + 1);
        let next = self.epoch_next.entry(partition).or_insert(after);
        *next = (*next).max(after);
    }

    /// The id the next new alert takes.
    pub fn next_id(&self) -> u64 {
        self.next_id_in(None)
    }

    /// The id the next new alert of detector `partition` takes.
    pub fn next_id_in(&self, partition: Option<u32>) -> u64 {
        self.epoch_next
            .get(&partition)
            .copied()
            .unwrap_or(self.next_id)
            .max(1)
    }

    /// Hands out the next new alert's id: in the range of the epoch stamped for `partition`
    /// (cluster mode), else after every id the book knows; never one the book holds.
    fn take_id(&mut self, partition: Option<u32>) -> u64 {
        match self.epoch_next.get(&partition).copied() {
            Some(next) => {
                let mut id = next.max(1);
                while self.alerts.contains_key(&id) {
                    id += 1;
                }
                self.epoch_next.insert(partition, id + 1);
                self.next_id = self.next_id.max(id + 1);
                id
            }
            None => {
                let id = self.next_id.max(1);
                self.next_id = id + 1;
                id
            }
        }
    }

    /// One alert.
    pub fn get(&self, id: u64) -> Option<&Alert> {
        self.alerts.get(&id)
    }

    /// Alerts matching `filter`, newest first.
    pub fn list(&self, filter: &AlertFilter) -> Vec<&Alert> {
        let rule = filter.rule.as_deref().map(str::to_lowercase);
        self.alerts
            .values()
            .rev()
            .filter(|a| filter.status.is_none_or(|s| a.status == s))
            .filter(|a| filter.min_level.is_none_or(|l| a.rule.level >= l))
            .filter(|a| {
                rule.as_deref().is_none_or(|r| {
                    a.rule.id.to_lowercase() == r || a.rule.title.to_lowercase() == r
                })
            })
            .filter(|a| filter.since.is_none_or(|t| a.last_seen >= t))
            .filter(|a| filter.until.is_none_or(|t| a.first_seen < t))
            .filter(|a| filter.drills.keeps(a.drill_run()))
            .collect()
    }

    /// How many alerts the book holds.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Rebuilds the book from `vigil.alert` ledger events (in ledger order): each carries the
    /// alert's whole state after the change, so the last event of an alert wins; each
    /// `alert-triaged` event adds its change to the alert's history.
    pub fn replay<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for e in events {
            let Some((mut alert, triage)) = alert_from_event(e) else {
                continue;
            };
            if matches!(
                e.get_str("event.action"),
                Some("alert-created" | "alert-updated")
            ) && let Some(seq) = alert.last_seq
            {
                let w = self.written_through.entry(alert.partition).or_insert(seq);
                *w = (*w).max(seq);
            }
            self.next_id = self.next_id.max(alert.id + 1);
            let key = (alert.rule.id.clone(), alert.group_key());
            if alert.status == Status::Closed {
                if self.open.get(&key) == Some(&alert.id) {
                    self.open.remove(&key);
                }
            } else {
                self.open.insert(key, alert.id);
            }
            alert.history = self
                .alerts
                .get(&alert.id)
                .map(|a| a.history.clone())
                .unwrap_or_default();
            // A change already in the history (a saved book replayed with the ledger events
            // written while it was saved) is not added twice.
            if let Some(t) = triage
                && alert.history.last() != Some(&t)
            {
                alert.history.push(t);
            }
            self.alerts.insert(alert.id, alert);
        }
        self.forget_old();
    }

    /// Sets an alert's triage history (restoring a saved book, whose events carry none).
    pub fn restore_history(&mut self, id: u64, history: Vec<Triage>) {
        if let Some(a) = self.alerts.get_mut(&id) {
            a.history = history;
        }
    }

    /// Counts a match into the open alert of its rule and group only if that alert has not
    /// counted the event `seq` yet (its [`Alert::last_seq`] is before it); never opens an
    /// alert. A book rebuilt from the ledger re-evaluates the events the detector had evaluated
    /// before it stopped this way: matches of those events that opened alerts are in the ledger
    /// already, and the throttled updates (not written one by one) are counted again.
    pub fn observe_uncounted(
        &mut self,
        rule: &RuleInfo,
        group: Vec<(String, String)>,
        time: Timestamp,
        seq: u64,
        now: Timestamp,
    ) -> Option<u64> {
        let key = (rule.id.clone(), group_text(&group));
        let id = *self.open.get(&key)?;
        if self.alerts.get(&id)?.last_seq.is_some_and(|s| s >= seq) {
            return None;
        }
        self.observe(rule, group, time, Some(seq), now);
        Some(id)
    }

    /// Whether an alert of `rule_id` in `group` — open or closed — counted the event `seq`
    /// already (its [`Alert::last_seq`] is at or past it). A book rebuilt from the ledger
    /// re-evaluates events past the last written `alert-created`/`alert-updated`; a match
    /// that an alert closed since (its triage event carries its `last_seq`) already counted
    /// must not raise that alert again.
    pub fn has_counted(&self, rule_id: &str, group: &[(String, String)], seq: u64) -> bool {
        let text = group_text(group);
        self.alerts.values().any(|a| {
            a.last_seq.is_some_and(|s| s >= seq) && a.rule.id == rule_id && a.group_key() == text
        })
    }

    /// One past the latest event counted by any alert in the book, triage snapshots included
    /// (none when no alert counted a ledger event): past it, no match can have been counted.
    pub fn seen_through(&self) -> Option<u64> {
        self.alerts
            .values()
            .filter_map(|a| a.last_seq)
            .max()
            .and_then(|s| s.checked_add(1))
    }

    /// The first sequence number a rebuilt book must re-evaluate: one past the earliest
    /// [`Alert::last_seq`] of an alert still open (none: nothing to re-count).
    pub fn recount_from(&self) -> Option<u64> {
        self.open
            .values()
            .filter_map(|id| self.alerts.get(id)?.last_seq)
            .min()
            .and_then(|s| s.checked_add(1))
    }

    /// One past the latest event counted by an `alert-created` or `alert-updated` event
    /// replayed into the book (none when there was none: an empty ledger, or alerts of query
    /// rules only). The detector writes those in one append per batch of events, after the
    /// events: every alert opened by an event before this point is in the ledger. (A triage
    /// event does not count: it may snapshot an alert in the middle of a batch not written yet.)
    pub fn counted_through(&self) -> Option<u64> {
        self.written_through
            .values()
            .max()
            .and_then(|s| s.checked_add(1))
    }

    /// [`AlertBook::counted_through`] for the alerts of one detector `partition` only
    /// (cluster mode: each partition's detector resumes from its own cursor, and another
    /// partition's progress says nothing of what this one evaluated).
    pub fn counted_through_in(&self, partition: Option<u32>) -> Option<u64> {
        self.written_through
            .get(&partition)
            .and_then(|s| s.checked_add(1))
    }

    fn forget_old(&mut self) {
        while self.alerts.len() > MAX_ALERTS {
            let oldest_closed = self
                .alerts
                .iter()
                .find(|(_, a)| a.status == Status::Closed)
                .map(|(id, _)| *id);
            let Some(id) = oldest_closed.or_else(|| self.alerts.keys().next().copied()) else {
                return;
            };
            if let Some(a) = self.alerts.remove(&id) {
                let key = (a.rule.id.clone(), a.group_key());
                if self.open.get(&key) == Some(&id) {
                    self.open.remove(&key);
                }
            }
            self.notified.remove(&id);
        }
    }
}

/// Reads an alert back from its ledger event, with the triage change it records, if any.
fn alert_from_event(e: &Event) -> Option<(Alert, Option<Triage>)> {
    if !e.is_dataset(dataset::VIGIL_ALERT) {
        return None;
    }
    let int = |k: &str| e.get(k).and_then(Value::as_i64);
    let text = |k: &str| e.get_str(k).unwrap_or("").to_owned();
    let group = e
        .fields()
        .filter_map(|(k, v)| {
            k.strip_prefix("vigil.alert.group_fields.")
                .map(|f| (f.to_owned(), v.to_string()))
        })
        .collect();
    let list = |k: &str| match e.get(k) {
        Some(Value::List(items)) => items.clone(),
        _ => Vec::new(),
    };
    let status = Status::parse(e.get_str("vigil.alert.status")?)?;
    let triage = (e.get_str("event.action") == Some("alert-triaged")).then(|| Triage {
        status,
        by: text("user.name"),
        at: int("vigil.alert.triaged_at").map_or(e.timestamp(), Timestamp::from_nanos),
        comment: text("vigil.alert.comment"),
    });
    let samples: Vec<u64> = list("vigil.alert.samples")
        .iter()
        .filter_map(Value::as_i64)
        .filter_map(|s| u64::try_from(s).ok())
        .collect();
    // A negative position (a forged event) is none, never a huge one.
    let last_seq = int("vigil.alert.last_seq")
        .and_then(|s| u64::try_from(s).ok())
        .or_else(|| samples.iter().max().copied());
    let alert = Alert {
        id: u64::try_from(int("vigil.alert.id")?).ok()?,
        rule: RuleInfo {
            id: text("rule.id"),
            title: text("rule.name"),
            level: Level::parse(e.get_str("vigil.rule.level").unwrap_or("medium")),
            tags: list("tags").iter().map(Value::to_string).collect(),
        },
        group,
        count: int("vigil.alert.count").unwrap_or(1).max(1) as u64,
        first_seen: Timestamp::from_nanos(int("vigil.alert.first_seen").unwrap_or(0)),
        last_seen: Timestamp::from_nanos(int("vigil.alert.last_seen").unwrap_or(0)),
        samples,
        status,
        history: Vec::new(),
        created: Timestamp::from_nanos(int("vigil.alert.created").unwrap_or(0)),
        last_seq,
        explain: crate::behaviour::Explanation::from_event(e),
        partition: int("vigil.alert.partition").and_then(|p| u32::try_from(p).ok()),
    };
    Some((alert, triage))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> RuleInfo {
        RuleInfo {
            id: "r1".into(),
            title: "SSH brute force".into(),
            level: Level::High,
            tags: vec!["attack.credential_access".into(), "attack.t1110".into()],
        }
    }

    fn group(ip: &str) -> Vec<(String, String)> {
        vec![("source.ip".into(), ip.into())]
    }

    #[test]
    fn detectors_of_different_epochs_never_hand_out_the_same_alert_id() {
        let t = |s| Timestamp::from_secs(s);
        // The deposed detector (epoch 1) and its successor (epoch 2) share the book up to the
        // takeover; then each opens alerts (the deposed one's are in flight).
        let mut deposed = AlertBook::new(60);
        deposed.stamp_epoch(1);
        let shared = deposed.observe(&rule(), group("10.0.0.1"), t(1), Some(1), t(1));
        assert_eq!(shared, Observed::New(ALERT_IDS_PER_EPOCH + 1));
        let mut successor = AlertBook::new(60);
        successor.replay([&deposed
            .get(ALERT_IDS_PER_EPOCH + 1)
            .unwrap()
            .to_event("created", t(1))]);
        successor.stamp_epoch(2);
        let mut ids = std::collections::BTreeSet::new();
        for (book, from) in [(&mut deposed, 0), (&mut successor, 0)] {
            for i in 0..50 {
                let ip = format!("192.0.2.{}", from + i);
                match book.observe(&rule(), group(&ip), t(2), Some(2 + i), t(2)) {
                    Observed::New(id) => assert!(ids.insert(id), "alert id {id} handed out twice"),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(ids.len(), 100);
        assert_eq!(successor.next_id(), 2 * ALERT_IDS_PER_EPOCH + 51);
        // The same epoch again (a book past its floor) keeps counting; stamping never goes back.
        successor.stamp_epoch(2);
        successor.stamp_epoch(1);
        assert_eq!(successor.next_id(), 2 * ALERT_IDS_PER_EPOCH + 51);
        // An unstamped (standalone) book numbers from 1.
        assert_eq!(AlertBook::new(60).next_id(), 1);
    }

    #[test]
    fn a_forged_last_seq_never_wraps_the_partitions_progress() {
        // Anyone who can publish to `sys` can forge an alert event: a negative last_seq is
        // none (not u64::MAX, whose + 1 would wrap), the largest one gives no progress at all.
        let t = |s| Timestamp::from_secs(s);
        let mut real = AlertBook::new(60);
        real.stamp_epoch_in(Some(1), 3);
        let id = match real.observe_in(Some(1), &rule(), group("x"), t(1), Some(5), t(1)) {
            Observed::New(id) => id,
            other => panic!("{other:?}"),
        };
        let event = real.get(id).unwrap().to_event("created", t(1));
        let mut book = AlertBook::new(60);
        let mut forged = event.clone();
        forged.insert("vigil.alert.last_seq", -1i64);
        forged.insert("vigil.alert.samples", Value::List(vec![Value::Int(-1)]));
        book.replay([&forged]);
        assert_eq!(book.counted_through_in(Some(1)), None);
        assert_eq!(book.get(id).unwrap().last_seq, None);
        assert!(book.get(id).unwrap().samples.is_empty());
        let mut book = AlertBook::new(60);
        book.replay([&event]);
        assert_eq!(book.counted_through_in(Some(1)), Some(6));
        let mut wrap = AlertBook::new(60);
        wrap.replay([&event]);
        wrap.written_through.insert(Some(1), u64::MAX);
        assert_eq!(wrap.counted_through_in(Some(1)), None);
        assert_eq!(wrap.counted_through(), None);
    }

    #[test]
    fn detector_partitions_on_two_nodes_never_hand_out_the_same_alert_id() {
        // Node A holds partition 0 at epoch 4; node B holds partition 1 at epoch 7 (epochs are
        // reserved cluster-wide, across partitions). Each book replays the other's alerts from
        // `sys`; B's higher ids must not move A's counter into B's range.
        let t = |s| Timestamp::from_secs(s);
        let (mut a, mut b) = (AlertBook::new(60), AlertBook::new(60));
        a.stamp_epoch_in(Some(0), 4);
        b.stamp_epoch_in(Some(1), 7);
        let mut ids = std::collections::BTreeSet::new();
        for i in 0..20u64 {
            for partition in [0u32, 1] {
                let (book, other) = if partition == 0 {
                    (&mut a, &mut b)
                } else {
                    (&mut b, &mut a)
                };
                let ip = format!("198.51.100.{i}");
                let id = match book.observe_in(
                    Some(partition),
                    &rule(),
                    group(&format!("{partition}/{ip}")),
                    t(1),
                    Some(10 + i),
                    t(1),
                ) {
                    Observed::New(id) => id,
                    other => panic!("{other:?}"),
                };
                assert!(ids.insert(id), "alert id {id} handed out twice");
                let event = book.get(id).unwrap().to_event("created", t(1));
                assert_eq!(
                    event.get("vigil.alert.partition"),
                    Some(&Value::Int(partition.into()))
                );
                other.replay([&event]);
            }
        }
        assert_eq!(ids.len(), 40);
        assert_eq!(a.next_id_in(Some(0)), 4 * ALERT_IDS_PER_EPOCH + 21);
        assert_eq!(b.next_id_in(Some(1)), 7 * ALERT_IDS_PER_EPOCH + 21);
        // A node holding two partitions numbers each in its own lease's epoch.
        a.stamp_epoch_in(Some(2), 9);
        let id = |o| match o {
            Observed::New(id) => id,
            other => panic!("{other:?}"),
        };
        let in_2 = id(a.observe_in(Some(2), &rule(), group("x"), t(2), Some(99), t(2)));
        let in_0 = id(a.observe_in(Some(0), &rule(), group("y"), t(2), Some(99), t(2)));
        assert_eq!(in_2, 9 * ALERT_IDS_PER_EPOCH + 1);
        assert_eq!(in_0, 4 * ALERT_IDS_PER_EPOCH + 21);
        // The replayed alerts keep their partition, and each partition's progress is its own.
        assert_eq!(
            a.get(7 * ALERT_IDS_PER_EPOCH + 1).unwrap().partition,
            Some(1)
        );
        assert_eq!(a.counted_through_in(Some(1)), Some(30));
        assert_eq!(
            a.counted_through_in(Some(0)),
            None,
            "A's own were not replayed"
        );
        assert_eq!(a.counted_through(), Some(30));
        assert_eq!(AlertBook::new(60).counted_through_in(None), None);
    }

    #[test]
    fn one_open_alert_per_rule_and_group_with_throttled_updates() {
        let mut book = AlertBook::new(60);
        let t = |s| Timestamp::from_secs(s);
        assert_eq!(
            book.observe(&rule(), group("203.0.113.5"), t(10), Some(1), t(100)),
            Observed::New(1)
        );
        assert_eq!(
            book.observe(&rule(), group("203.0.113.5"), t(5), Some(2), t(110)),
            Observed::Updated {
                id: 1,
                notify: false
            }
        );
        assert_eq!(
            book.observe(&rule(), group("198.51.100.7"), t(11), Some(3), t(111)),
            Observed::New(2)
        );
        assert_eq!(
            book.observe(&rule(), group("203.0.113.5"), t(20), Some(4), t(161)),
            Observed::Updated {
                id: 1,
                notify: true
            }
        );
        let a = book.get(1).unwrap();
        assert_eq!((a.count, a.first_seen, a.last_seen), (3, t(5), t(20)));
        assert_eq!(a.samples, vec![1, 2, 4]);
        assert_eq!(a.group_key(), "source.ip=203.0.113.5");

        // Acknowledge keeps it open for matches; close makes the next match a new alert.
        let by = |status| Triage {
            status,
            by: "ana".into(),
            at: t(200),
            comment: "looking".into(),
        };
        book.triage(1, by(Status::Acknowledged)).unwrap();
        assert!(matches!(
            book.observe(&rule(), group("203.0.113.5"), t(30), None, t(300)),
            Observed::Updated { id: 1, .. }
        ));
        book.triage(1, by(Status::Closed)).unwrap();
        assert_eq!(
            book.triage(1, by(Status::Open)).unwrap_err(),
            TriageError::Closed { id: 1 }
        );
        assert_eq!(
            book.observe(&rule(), group("203.0.113.5"), t(40), None, t(400)),
            Observed::New(3)
        );
        let missing = book.triage(99, by(Status::Closed)).unwrap_err();
        assert_eq!(missing, TriageError::NoAlert { id: 99 });
        // The text callers have matched on so far is unchanged.
        assert_eq!(String::from(missing), "no alert 99");

        let open = book.list(&AlertFilter {
            status: Some(Status::Open),
            ..AlertFilter::default()
        });
        assert_eq!(open.iter().map(|a| a.id).collect::<Vec<_>>(), vec![3, 2]);
        let high = book.list(&AlertFilter {
            min_level: Some(Level::Critical),
            ..AlertFilter::default()
        });
        assert!(high.is_empty());
    }

    #[test]
    fn the_book_is_rebuilt_from_its_ledger_events() {
        let mut book = AlertBook::new(0);
        let t = |s| Timestamp::from_secs(s);
        let mut events = Vec::new();
        book.observe(&rule(), group("203.0.113.5"), t(10), Some(7), t(100));
        events.push(book.get(1).unwrap().to_event("created", t(100)));
        book.observe(&rule(), group("203.0.113.5"), t(12), Some(8), t(101));
        events.push(book.get(1).unwrap().to_event("updated", t(101)));
        book.triage(
            1,
            Triage {
                status: Status::Closed,
                by: "ana".into(),
                at: t(102),
                comment: "fp".into(),
            },
        )
        .unwrap();
        events.push(book.get(1).unwrap().to_event("triaged", t(102)));
        book.observe(&rule(), group("203.0.113.5"), t(13), Some(9), t(103));
        events.push(book.get(2).unwrap().to_event("created", t(103)));
        // Through the canonical encoding, as the ledger stores them.
        let stored: Vec<Event> = events
            .iter()
            .map(|e| Event::from_canonical(&e.to_canonical()).unwrap())
            .collect();

        let mut rebuilt = AlertBook::new(0);
        rebuilt.replay(&stored);
        let a = rebuilt.get(1).unwrap();
        assert_eq!(
            (a.status, a.count, a.samples.clone()),
            (Status::Closed, 2, vec![7, 8])
        );
        assert_eq!(a.history.last().unwrap().comment, "fp");
        assert_eq!(a.rule, rule());
        assert_eq!(rebuilt.get(2).unwrap().status, Status::Open);
        // The open alert for the group is 2; a new match updates it, and ids continue at 3.
        assert!(matches!(
            rebuilt.observe(&rule(), group("203.0.113.5"), t(14), None, t(104)),
            Observed::Updated { id: 2, .. }
        ));
        assert_eq!(
            rebuilt.observe(&rule(), group("10.0.0.1"), t(14), None, t(104)),
            Observed::New(3)
        );
    }

    /// What a detector that lost its state file does: replay the alert events, then evaluate
    /// again the events it had evaluated. Throttled updates (never written) are counted again,
    /// matches already in an alert event are not, and no alert is opened twice; the triage
    /// history keeps every change with its time.
    #[test]
    fn a_rebuilt_book_recounts_only_what_its_events_did_not_count() {
        let t = |s| Timestamp::from_secs(s);
        let mut live = AlertBook::new(3600);
        let mut written = Vec::new();
        // seq 10 opens alert 1 (written), 11 and 12 are throttled updates (not written).
        live.observe(&rule(), group("203.0.113.5"), t(10), Some(10), t(100));
        written.push(live.get(1).unwrap().to_event("created", t(100)));
        live.observe(&rule(), group("203.0.113.5"), t(11), Some(11), t(101));
        live.observe(&rule(), group("198.51.100.7"), t(12), Some(12), t(101));
        written.push(live.get(2).unwrap().to_event("created", t(101)));
        live.observe(&rule(), group("203.0.113.5"), t(13), Some(13), t(102));
        for (status, comment) in [(Status::Acknowledged, "mine"), (Status::Closed, "fp")] {
            let change = Triage {
                status,
                by: "ana".into(),
                at: t(103),
                comment: comment.into(),
            };
            written.push(live.triage(2, change).unwrap().to_event("triaged", t(104)));
        }
        let stored: Vec<Event> = written
            .iter()
            .map(|e| Event::from_canonical(&e.to_canonical()).unwrap())
            .collect();

        let mut rebuilt = AlertBook::new(3600);
        rebuilt.replay(&stored);
        assert_eq!(
            rebuilt.get(1).unwrap().count,
            1,
            "the updates were not written"
        );
        assert_eq!(rebuilt.recount_from(), Some(11));
        assert_eq!(rebuilt.counted_through(), Some(13));
        let again = [
            ("203.0.113.5", 10),
            ("203.0.113.5", 11),
            ("198.51.100.7", 12),
            ("203.0.113.5", 13),
        ];
        for (ip, seq) in again {
            rebuilt.observe_uncounted(&rule(), group(ip), t(seq as i64), seq, t(200));
        }
        assert_eq!(live.get(1).unwrap().count, 3);
        assert_eq!(
            rebuilt.get(1),
            live.get(1),
            "count, samples and last seen recounted"
        );
        assert_eq!(
            rebuilt.get(2),
            live.get(2),
            "closed: history of both changes"
        );
        assert_eq!(rebuilt.get(2).unwrap().history.len(), 2);
        assert_eq!(rebuilt.len(), 2, "no alert opened twice");
    }

    #[test]
    fn ocsf_detection_finding_has_the_required_attributes() {
        let mut book = AlertBook::new(0);
        book.observe(
            &rule(),
            group("203.0.113.5"),
            Timestamp::from_secs(10),
            Some(1),
            Timestamp::from_secs(11),
        );
        let f = book.get(1).unwrap().to_ocsf();
        assert_eq!(f["class_uid"], 2004);
        assert_eq!(f["category_uid"], 2);
        assert_eq!(f["type_uid"], 200401);
        assert_eq!(f["severity_id"], 4);
        assert_eq!(f["finding_info"]["uid"], "1");
        assert_eq!(f["finding_info"]["attacks"][0]["technique"]["uid"], "T1110");
        assert_eq!(f["metadata"]["product"]["name"], "Vigil");
        assert_eq!(f["time"], 10_000);
    }
}
