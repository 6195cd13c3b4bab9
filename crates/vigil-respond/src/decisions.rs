//! Ban decisions: what automated response hands to enforcement that already exists. Responders
//! turn alerts into bans of the alert's address (an IPv6 address is banned as its /64), with
//! escalating durations for repeat offenders and an allowlist that is never banned; decisions
//! expire; every decision and its end are written to the ledger. The CrowdSec bouncers read them
//! through the LAPI-compatible stream (`/v1/decisions/stream`), so firewalls and proxies enforce
//! Vigil's bans unmodified.
//!
//! Decisions persist in `DATA_DIR/decisions.json`, rewritten atomically at most every
//! [`SAVE_EVERY`] and at a clean stop (every decision is in the ledger the moment it is made).
//! The file is a cache of the ledger (DESIGN invariant 3): it names the ledger position it
//! reflects, the decision events from there on are replayed at start, and without the file
//! the whole book is rebuilt from the ledger's decision events.
//! The book indexes active bans by network and by end time, so a ban, a lookup and an expiry
//! cost the same with 50,000 bans as with one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use vigil_event::{Event, Timestamp};

pub mod drill;
mod net;
mod shared;
pub use net::Net;
pub use shared::DECISION_IDS_PER_EPOCH;

/// A ban or an unban that was not made, and why. None of them changes by retrying as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The value is not an address or a CIDR network (the request is wrong).
    #[error("{text:?}: {reason}")]
    NotANetwork {
        /// What was given.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The network is on the allowlist, which is never banned.
    #[error("{0} is on the allowlist; not banned")]
    Allowlisted(String),
    /// The network is banned already.
    #[error("{net} is already banned (decision {id})")]
    AlreadyBanned {
        /// The network.
        net: String,
        /// The decision in force.
        id: u64,
    },
    /// No decision of this id is in force.
    #[error("no active decision {0}")]
    NoActiveDecision(u64),
}

/// One ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Unique, increasing.
    pub id: u64,
    /// What is banned.
    pub net: Net,
    /// Why: the rule (CrowdSec's "scenario").
    pub scenario: String,
    /// The alert that caused it, if any.
    pub alert: Option<u64>,
    /// Who decided (`vigil` for responders, the user for manual bans).
    pub by: String,
    /// When it started.
    #[serde(with = "nanos")]
    pub at: Timestamp,
    /// When it ends.
    #[serde(with = "nanos")]
    pub until: Timestamp,
    /// When it was lifted or expired (it then only lives on for the bouncers' stream).
    #[serde(with = "opt_nanos")]
    pub ended: Option<Timestamp>,
}

mod time_serde;
use time_serde::{nanos, opt_nanos};

impl Decision {
    /// CrowdSec's scope name.
    pub fn scope(&self) -> &'static str {
        if self.net.is_single() { "Ip" } else { "Range" }
    }

    /// The CrowdSec LAPI form (`GET /v1/decisions/stream`, `GET /v1/decisions`).
    pub fn to_lapi(&self, now: Timestamp) -> serde_json::Value {
        let left = (self.until.as_nanos() - now.as_nanos()).max(0) / 1_000_000_000;
        json!({
            "id": self.id,
            "origin": "vigil",
            "type": "ban",
            "scope": self.scope(),
            "value": self.net.text(),
            "duration": format!("{}h{}m{}s", left / 3600, (left / 60) % 60, left % 60),
            "scenario": self.scenario,
            "simulated": false,
        })
    }

    /// Vigil's API form.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "value": self.net.text(),
            "scope": self.scope(),
            "type": "ban",
            "reason": self.scenario,
            "alert": self.alert,
            "by": self.by,
            "at": self.at.to_rfc3339(),
            "until": self.until.to_rfc3339(),
        })
    }

    /// The decision as a ledger event (`event.dataset=vigil.decision`), `action` `ban` or `unban`.
    pub fn to_event(&self, action: &str, why: &str, now: Timestamp) -> Event {
        let mut e = Event::new(now);
        e.insert("event.kind", "event");
        e.insert("event.category", "network");
        e.insert("event.dataset", "vigil.decision");
        e.insert("event.action", action);
        e.insert("vigil.decision.id", self.id as i64);
        e.insert("vigil.decision.value", self.net.text());
        e.insert("vigil.decision.scope", self.scope());
        e.insert("vigil.decision.until", self.until.to_rfc3339());
        e.insert("rule.name", self.scenario.as_str());
        e.insert("user.name", self.by.as_str());
        if let Some(a) = self.alert {
            e.insert("vigil.alert.id", a as i64);
        }
        if self.net.is_single() {
            e.insert("source.ip", self.net.addr);
        }
        e.insert(
            "message",
            format!(
                "{action} {} ({}) until {}: {why}",
                self.net.text(),
                self.scenario,
                self.until.to_rfc3339()
            ),
        );
        e
    }
}

/// A responder: ban the address of alerts from these rules (or at this level).
#[derive(Debug, Clone, PartialEq)]
pub struct Responder {
    /// Rule ids or titles; empty means any rule at `min_level`.
    pub rules: Vec<String>,
    /// With no rules: alerts of this level or above.
    pub min_level: Option<vigil_detect::alert::Level>,
    /// First ban's length.
    pub duration: Duration,
    /// Longest ban after escalation.
    pub max_duration: Duration,
}

impl Responder {
    /// Whether this responder acts on the alert.
    pub fn wants(&self, alert: &vigil_detect::alert::Alert) -> bool {
        if self.rules.is_empty() {
            return self.min_level.is_some_and(|l| alert.rule.level >= l);
        }
        self.rules.iter().any(|r| {
            r.eq_ignore_ascii_case(&alert.rule.id) || r.eq_ignore_ascii_case(&alert.rule.title)
        })
    }
}

/// Every decision, the allowlist, and the history that makes repeat offenders' bans longer.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DecisionBook {
    decisions: BTreeMap<u64, Decision>,
    next_id: u64,
    /// Bans so far per banned network (for escalation).
    offences: HashMap<String, u32>,
    /// Never banned.
    #[serde(skip)]
    pub allowlist: Vec<Net>,
    /// Indexes of the decisions not ended yet (rebuilt on load, not stored).
    #[serde(skip)]
    index: BookIndex,
    /// One past the last ledger event this book reflects: decision events from here on are
    /// replayed when it is loaded ([`DecisionBook::replay`] is idempotent).
    #[serde(default)]
    ledger_seq: u64,
    /// Cluster mode: the next id of this node's detector lease epoch (see
    /// [`DecisionBook::stamp_epoch`]); never stored.
    #[serde(skip)]
    epoch_next: Option<u64>,
}

/// Where to find decisions without a scan: the decision not ended yet per network, those by
/// end time (for expiry) and the ended ones by end time (for forgetting).
#[derive(Debug, Default)]
struct BookIndex {
    by_net: HashMap<Net, u64>,
    /// `(until, id)` of decisions not ended yet.
    by_until: BTreeSet<(i64, u64)>,
    /// `(ended, id)` of ended decisions still kept.
    by_ended: BTreeSet<(i64, u64)>,
    /// Prefix lengths of the networks in `by_net`, with how many each (for [`DecisionBook::covering`]).
    prefixes: BTreeMap<(bool, u8), usize>,
    /// Decisions looked at, for tests that the work per operation does not grow with the book.
    #[cfg(test)]
    visited: std::cell::Cell<u64>,
}

impl BookIndex {
    fn visit(&self, _n: usize) {
        #[cfg(test)]
        self.visited.set(self.visited.get() + _n as u64);
    }

    fn insert_active(&mut self, d: &Decision) {
        if self.by_net.insert(d.net, d.id).is_none() {
            *self
                .prefixes
                .entry((d.net.addr.is_ipv4(), d.net.bits))
                .or_default() += 1;
        }
        self.by_until.insert((d.until.as_nanos(), d.id));
    }

    fn remove_active(&mut self, d: &Decision) {
        self.by_until.remove(&(d.until.as_nanos(), d.id));
        if self.by_net.get(&d.net) == Some(&d.id) {
            self.by_net.remove(&d.net);
            let key = (d.net.addr.is_ipv4(), d.net.bits);
            if let Some(n) = self.prefixes.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    self.prefixes.remove(&key);
                }
            }
        }
    }
}

/// Ended decisions kept for bouncers that poll late.
const KEEP_ENDED: Duration = Duration::from_secs(24 * 3600);

impl DecisionBook {
    /// Loads the book from `path` (empty if there is none). A file from before `ledger_seq`
    /// existed replays the whole ledger at [`DecisionService::open`] (idempotently).
    pub fn load(path: &Path) -> Result<DecisionBook, String> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let mut book: DecisionBook = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                book.reindex();
                Ok(book)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DecisionBook {
                next_id: 1,
                ..DecisionBook::default()
            }),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Rebuilds the indexes from the decisions.
    fn reindex(&mut self) {
        let mut index = BookIndex::default();
        for d in self.decisions.values() {
            match d.ended {
                None => index.insert_active(d),
                Some(e) => {
                    index.by_ended.insert((e.as_nanos(), d.id));
                }
            }
        }
        self.index = index;
    }

    /// Applies the decision events (`event.dataset=vigil.decision`) of the ledger (its durable
    /// events, read by `reader`) from `self.ledger_seq` on: a ban adds its decision, an unban ends it. Idempotent: a decision
    /// the book holds is not added again, an ended one is not ended again. Other events are
    /// skipped (they cannot claim the dataset: input that does is quarantined at ingest).
    pub fn replay(&mut self, reader: &mut vigil_ledger::LedgerReader) -> Result<usize, String> {
        reader.refresh().map_err(|e| e.to_string())?;
        let end = reader.end_seq();
        let needle = b"vigil.decision";
        let mut applied = 0;
        reader
            .for_each_raw(self.ledger_seq.max(reader.first_seq())..end, |_, raw| {
                if raw.windows(needle.len()).any(|w| w == needle)
                    && let Ok(event) = Event::from_canonical(raw)
                    && self.apply_event(&event)
                {
                    applied += 1;
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        self.ledger_seq = end;
        Ok(applied)
    }

    /// Applies one decision event; whether it changed the book.
    pub fn apply_event(&mut self, e: &Event) -> bool {
        if e.get_str("event.dataset") != Some("vigil.decision") {
            return false;
        }
        let Some(id) = e
            .get("vigil.decision.id")
            .and_then(vigil_event::Value::as_i64)
            .and_then(|i| u64::try_from(i).ok())
        else {
            return false;
        };
        let Some(until) = e
            .get_str("vigil.decision.until")
            .and_then(|t| Timestamp::parse(t).ok())
        else {
            return false;
        };
        match e.get_str("event.action") {
            Some("ban") => {
                if self.decisions.contains_key(&id) {
                    return false;
                }
                let Some(net) = e
                    .get_str("vigil.decision.value")
                    .and_then(|v| Net::parse(v).ok())
                else {
                    return false;
                };
                let d = Decision {
                    id,
                    net,
                    scenario: e.get_str("rule.name").unwrap_or("").to_owned(),
                    alert: e
                        .get("vigil.alert.id")
                        .and_then(vigil_event::Value::as_i64)
                        .and_then(|i| u64::try_from(i).ok()),
                    by: e.get_str("user.name").unwrap_or("").to_owned(),
                    at: e.timestamp(),
                    until,
                    ended: None,
                };
                *self.offences.entry(net.text()).or_default() += 1;
                self.next_id = self.next_id.max(id + 1);
                self.index.insert_active(&d);
                self.decisions.insert(id, d);
                true
            }
            // An unban records the decision's end as its `until` (expiry ends a decision at
            // its end time, a lift by hand at the moment it is lifted).
            Some("unban") => self.end(id, until).is_some(),
            _ => false,
        }
    }

    /// The decision not ended yet on exactly `net`, if it is still in force at `now`.
    fn active_on(&self, net: &Net, now: Timestamp) -> Option<&Decision> {
        let id = self.index.by_net.get(net)?;
        self.index.visit(1);
        self.decisions
            .get(id)
            .filter(|d| d.ended.is_none() && d.until > now)
    }

    /// Writes the book to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The network to ban for an address: the address itself, or an IPv6 address's /64.
    pub fn scope_of(ip: IpAddr) -> Net {
        match ip {
            IpAddr::V4(_) => Net::new(ip, 32),
            IpAddr::V6(_) => Net::new(ip, 64),
        }
    }

    /// Whether the address is on the allowlist.
    pub fn allowed(&self, ip: IpAddr) -> bool {
        self.allowlist.iter().any(|n| n.contains(ip))
    }

    /// Bans `net` (unless allowlisted or already banned); repeat offenders get `duration`
    /// doubled per earlier ban, up to `max`. Returns the new decision. A ban answering an
    /// `alert` in a book stamped with a detector epoch takes its id in that epoch's range.
    #[allow(clippy::too_many_arguments)]
    pub fn ban(
        &mut self,
        net: Net,
        duration: Duration,
        max: Duration,
        scenario: &str,
        alert: Option<u64>,
        by: &str,
        now: Timestamp,
    ) -> Result<Decision, DecisionError> {
        if self.allowlist.iter().any(|a| a.contains(net.addr)) {
            return Err(DecisionError::Allowlisted(net.text()));
        }
        if let Some(d) = self.active_on(&net, now) {
            return Err(DecisionError::AlreadyBanned {
                net: net.text(),
                id: d.id,
            });
        }
        let key = net.text();
        let earlier = self.offences.get(&key).copied().unwrap_or(0);
        let length = duration
            .saturating_mul(1u32.checked_shl(earlier.min(16)).unwrap_or(u32::MAX))
            .min(max.max(duration));
        *self.offences.entry(key).or_default() += 1;
        let id = match alert {
            Some(_) if self.epoch_next.is_some() => self.take_epoch_id(),
            _ => self.next_id.max(1),
        };
        self.next_id = self.next_id.max(id + 1);
        let d = Decision {
            id,
            net,
            scenario: scenario.to_owned(),
            alert,
            by: by.to_owned(),
            at: now,
            until: Timestamp::from_nanos(
                now.as_nanos()
                    .saturating_add(length.as_nanos().min(i64::MAX as u128) as i64),
            ),
            ended: None,
        };
        // An earlier ban on this network that ran out but is not ended yet stays in `by_until`
        // until `expire` ends (and records) it; `by_net` now names this one.
        self.index.insert_active(&d);
        self.decisions.insert(id, d.clone());
        Ok(d)
    }

    /// Ends decision `id` at `at` (keeps the indexes in step).
    fn end(&mut self, id: u64, at: Timestamp) -> Option<Decision> {
        let d = self
            .decisions
            .get(&id)
            .filter(|d| d.ended.is_none())?
            .clone();
        self.index.remove_active(&d);
        let d = self.decisions.get_mut(&id)?;
        d.ended = Some(at);
        d.until = d.until.min(at);
        self.index.by_ended.insert((at.as_nanos(), id));
        Some(d.clone())
    }

    /// Lifts a decision now.
    pub fn unban(&mut self, id: u64, now: Timestamp) -> Result<Decision, DecisionError> {
        self.end(id, now).ok_or(DecisionError::NoActiveDecision(id))
    }

    /// Ends expired decisions; returns them. Forgets decisions ended long ago. Looks only at
    /// the decisions it ends or forgets.
    pub fn expire(&mut self, now: Timestamp) -> Vec<Decision> {
        let mut out = Vec::new();
        while let Some(&(until, id)) = self.index.by_until.first() {
            if until > now.as_nanos() {
                break;
            }
            self.index.visit(1);
            match self.end(id, Timestamp::from_nanos(until)) {
                Some(d) => out.push(d),
                None => {
                    self.index.by_until.remove(&(until, id));
                }
            }
        }
        let horizon = now.as_nanos() - KEEP_ENDED.as_nanos() as i64;
        while let Some(&(ended, id)) = self.index.by_ended.first() {
            if ended > horizon {
                break;
            }
            self.index.visit(1);
            self.index.by_ended.remove(&(ended, id));
            self.decisions.remove(&id);
        }
        out
    }

    /// Active decisions.
    pub fn active(&self, now: Timestamp) -> Vec<&Decision> {
        self.decisions
            .values()
            .filter(|d| d.ended.is_none() && d.until > now)
            .collect()
    }

    /// For a bouncer's stream: decisions started after `since` and still active (new), and
    /// decisions that ended after `since` (deleted). `since = None` (startup): every active one.
    /// A decision ends at `until` (a lift lowers it), marked by `expire` or not yet: a poll
    /// between `until` and a late tick would otherwise never see the deletion.
    pub fn stream(
        &self,
        since: Option<Timestamp>,
        now: Timestamp,
    ) -> (Vec<&Decision>, Vec<&Decision>) {
        let new = self
            .active(now)
            .into_iter()
            .filter(|d| since.is_none_or(|s| d.at > s))
            .collect();
        let deleted = match since {
            None => Vec::new(),
            Some(s) => self
                .decisions
                .values()
                .filter(|d| d.until > s && d.until <= now && d.at <= s)
                .collect(),
        };
        (new, deleted)
    }

    /// Active decisions covering `ip`: one lookup per prefix length in use.
    pub fn covering(&self, ip: IpAddr, now: Timestamp) -> Vec<&Decision> {
        self.index
            .prefixes
            .keys()
            .filter(|(v4, _)| *v4 == ip.is_ipv4())
            .filter_map(|&(_, bits)| self.active_on(&Net::new(ip, bits), now))
            .collect()
    }
}

/// The default allowlist: loopback, link-local and the unspecified address.
pub fn default_allowlist() -> Vec<Net> {
    [
        "127.0.0.0/8",
        "::1/128",
        "169.254.0.0/16",
        "fe80::/10",
        "0.0.0.0/32",
        "::/128",
    ]
    .iter()
    .filter_map(|t| Net::parse(t).ok())
    .collect()
}

/// Where the book lives.
pub fn book_path(data_dir: &Path) -> PathBuf {
    vigil_config::DataDir::new(data_dir).decisions()
}

/// How often responders' bans are saved to `decisions.json` at most (they are in the ledger at
/// once; a clean stop saves what is left).
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The decision book as the server runs it: responders, expiry, ledger records, persistence.
pub struct DecisionService {
    book: std::sync::Mutex<DecisionBook>,
    path: Option<PathBuf>,
    responders: Vec<Responder>,
    ledger: std::sync::Arc<dyn vigil_ingest::Door>,
    /// Decisions handed to the ledger and not known durable yet (waited for before a save).
    submitted: std::sync::Mutex<Vec<(vigil_ingest::Pending, Vec<Event>)>>,
    /// Changes not saved yet, and when the book was last saved.
    unsaved: std::sync::Mutex<(bool, std::time::Instant)>,
    /// What responders decided for drill alerts: never in the book (see [`drill`]).
    pub drills: drill::DrillDecisions,
}

impl DecisionService {
    /// Loads the book of `data_dir`.
    pub fn open(
        data_dir: &Path,
        responders: Vec<Responder>,
        allowlist: Vec<Net>,
        ledger: std::sync::Arc<dyn vigil_ingest::Door>,
    ) -> Result<DecisionService, String> {
        let path = book_path(data_dir);
        let mut book = DecisionBook::load(&path).unwrap_or_else(|e| {
            // A cache: an unreadable one is rebuilt from the ledger.
            tracing::warn!("decisions not usable ({e}); rebuilding them from the ledger");
            DecisionBook::default()
        });
        book.next_id = book.next_id.max(1);
        let applied = book.replay(&mut ledger.follower().map_err(|e| e.to_string())?)?;
        if applied > 0 {
            tracing::info!("decisions: {applied} changes replayed from the ledger");
        }
        book.allowlist = allowlist;
        Ok(DecisionService {
            book: std::sync::Mutex::new(book),
            path: Some(path),
            responders,
            ledger,
            submitted: std::sync::Mutex::new(Vec::new()),
            // Saved once soon in any case: the file then names the ledger's end, and the next
            // start replays from there instead of from wherever the last save was.
            unsaved: std::sync::Mutex::new((true, std::time::Instant::now())),
            drills: drill::DrillDecisions::default(),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut DecisionBook) -> R) -> R {
        f(&mut self.book.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `f` on the book (reads).
    pub fn read<R>(&self, f: impl FnOnce(&DecisionBook) -> R) -> R {
        f(&self.book.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Writes `events` to the ledger and saves the book (now, or with the next [`Self::tick`]
    /// when `soon`).
    fn record(&self, events: Vec<Event>, soon: bool) {
        if events.is_empty() {
            return;
        }
        // Through the ingest pipeline, without waiting (responders run on the detector's
        // thread); the next save waits for it, so decisions.json is never ahead of the ledger.
        let pending = self
            .ledger
            .submit_own(events.clone(), vigil_ingest::Origin::Decision);
        self.submitted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((pending, events));
        self.unsaved.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
        if !soon {
            self.save();
        }
    }

    /// Saves the book if it changed since the last save.
    pub fn save(&self) {
        let mut unsaved = self.unsaved.lock().unwrap_or_else(|p| p.into_inner());
        if !unsaved.0 {
            return;
        }
        let submitted =
            std::mem::take(&mut *self.submitted.lock().unwrap_or_else(|p| p.into_inner()));
        let mut failed = Vec::new();
        for (pending, events) in submitted {
            if let Err(e) = pending.wait() {
                tracing::error!("recording decisions in the ledger: {e}; trying again");
                failed.push(events);
            }
        }
        if !failed.is_empty() {
            // Not saved past a decision the ledger lacks: it is submitted again, and the book
            // is saved once it is durable (the next save waits for it).
            let mut queue = self.submitted.lock().unwrap_or_else(|p| p.into_inner());
            for events in failed {
                let pending = self
                    .ledger
                    .submit_own(events.clone(), vigil_ingest::Origin::Decision);
                queue.insert(0, (pending, events));
            }
            return;
        }
        // Read before the book: a decision recorded meanwhile is replayed at the next start
        // (idempotently) even if the saved book has it already.
        let seq = self.ledger.durable_end();
        match self.with(|b| {
            b.ledger_seq = seq;
            self.path.as_ref().map_or(Ok(()), |p| b.save(p))
        }) {
            Ok(()) => *unsaved = (false, std::time::Instant::now()),
            Err(e) => tracing::error!("saving decisions: {e}"),
        }
    }

    /// An alert was raised or updated: responders that want it ban its `source.ip` (blocking).
    pub fn on_alert(&self, alert: &vigil_detect::alert::Alert) {
        self.on_alerts(std::slice::from_ref(alert));
    }

    /// [`Self::on_alert`] for several alerts, with one ledger append for all their bans.
    pub fn on_alerts(&self, alerts: &[vigil_detect::alert::Alert]) {
        let now = Timestamp::now();
        let mut events = Vec::new();
        for alert in alerts {
            self.respond(alert, now, &mut events);
        }
        self.record(events, true);
    }

    fn respond(&self, alert: &vigil_detect::alert::Alert, now: Timestamp, events: &mut Vec<Event>) {
        let Some(ip) = alert
            .group
            .iter()
            .find(|(k, _)| k == "source.ip")
            .and_then(|(_, v)| v.parse::<IpAddr>().ok())
        else {
            return;
        };
        for r in self.responders.iter().filter(|r| r.wants(alert)) {
            if let Some(run) = alert.drill_run() {
                match self
                    .drills
                    .decide(alert.id, run, &alert.rule.title, ip, now)
                {
                    Ok(event) => events.extend(event),
                    Err(e) => tracing::warn!("drill {run}: no drill decision: {e}"),
                }
                continue;
            }
            let net = DecisionBook::scope_of(ip);
            let why = format!(
                "alert {} ({}, {} matches)",
                alert.id, alert.rule.title, alert.count
            );
            match self.with(|b| {
                b.ban(
                    net,
                    r.duration,
                    r.max_duration,
                    &alert.rule.title,
                    Some(alert.id),
                    "vigil",
                    now,
                )
            }) {
                Ok(d) => {
                    tracing::info!(
                        "banned {} until {}: {why}",
                        d.net.text(),
                        d.until.to_rfc3339()
                    );
                    events.push(d.to_event("ban", &why, now));
                }
                Err(e) => tracing::debug!("no ban: {e}"),
            }
        }
    }

    /// A ban by hand.
    pub fn ban_by_hand(
        &self,
        value: &str,
        duration: Duration,
        reason: &str,
        by: &str,
    ) -> Result<Decision, DecisionError> {
        let net = Net::parse(value)?;
        let now = Timestamp::now();
        let d = self.with(|b| b.ban(net, duration, duration, reason, None, by, now))?;
        self.record(
            vec![d.to_event("ban", &format!("by hand: {reason}"), now)],
            false,
        );
        Ok(d)
    }

    /// Lifts a decision by hand.
    pub fn unban(&self, id: u64, by: &str) -> Result<Decision, DecisionError> {
        let now = Timestamp::now();
        let d = self.with(|b| b.unban(id, now))?;
        self.record(
            vec![d.to_event("unban", &format!("lifted by {by}"), now)],
            false,
        );
        Ok(d)
    }

    /// Ends expired decisions and records it, and saves the book at most every
    /// [`SAVE_EVERY`] (call every half second).
    pub fn tick(&self) {
        let now = Timestamp::now();
        let ended = self.with(|b| b.expire(now));
        self.record(
            ended
                .iter()
                .filter(|_| self.path.is_some()) // cluster mode: every node ends them alike
                .map(|d| d.to_event("unban", "expired", now))
                .collect(),
            true,
        );
        let due = self
            .unsaved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .elapsed()
            >= SAVE_EVERY;
        if due {
            self.save();
        }
    }
}

#[cfg(test)]
mod tests;
