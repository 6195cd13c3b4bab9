//! Drill bans: what a responder decides for a drill's alert (`vigil drill`), kept apart from
//! the ban book so that a drill never bans anyone.
//!
//! The decision is computed exactly as for a real alert (the same responders, the same
//! scope), recorded in the ledger as a `vigil.decision` event of action `drill-ban` marked
//! with the drill run, and **served to bouncers with type `drill` and origin `vigil-drill`**
//! for [`DRILL_BAN`]: bouncers enforce only the types they support (`ban` by default in
//! CrowdSec's firewall bouncer: `supported_decisions_types`) and can filter origins, so they
//! ignore it, while the drill still measures the whole path up to the bouncer's fetch
//! (each first fetch is a `drill-fetched` ledger event). Not serving it at all would leave
//! that last step unmeasured. Three further guards: a drill decision only ever names a
//! documentation address (RFC 5737 / RFC 3849; the door marks no event holding another, see
//! `vigil_ingest::drill`), it never enters the ban book (`GET /api/v1/decisions`,
//! `GET /v1/decisions?ip=`, the bans page and `decisions.json` never hold it), and the ban
//! book's replay of the ledger ignores its events (their action is not `ban`).

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use vigil_event::{Event, Timestamp, field};

use super::Net;

/// How long a drill ban is served to bouncers.
pub const DRILL_BAN: Duration = Duration::from_secs(60);
/// Drill decisions kept (the oldest are forgotten first).
pub const MAX_DRILL_DECISIONS: usize = 1000;
/// Ids of drill decisions start here, far from the ban book's.
pub const DRILL_DECISION_IDS: u64 = 9_000_000_000_000;

/// One drill decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillDecision {
    /// Its id (from [`DRILL_DECISION_IDS`]).
    pub id: u64,
    /// What a real alert would have banned.
    pub net: Net,
    /// The rule (CrowdSec's scenario).
    pub scenario: String,
    /// The drill alert.
    pub alert: u64,
    /// The drill run.
    pub run: String,
    /// When it was decided.
    pub at: Timestamp,
    /// When it stops being served.
    pub until: Timestamp,
    /// Bouncers (token ids) that have fetched it.
    pub fetched_by: Vec<String>,
}

impl DrillDecision {
    /// The LAPI form, marked so that bouncers do not enforce it.
    pub fn to_lapi(&self, now: Timestamp) -> Value {
        let left = (self.until.as_nanos() - now.as_nanos()).max(0) / 1_000_000_000;
        json!({
            "id": self.id,
            "origin": "vigil-drill",
            "type": "drill",
            "scope": if self.net.is_single() { "Ip" } else { "Range" },
            "value": self.net.text(),
            "duration": format!("{}h{}m{}s", left / 3600, (left / 60) % 60, left % 60),
            "scenario": format!("vigil drill {}: {}", self.run, self.scenario),
            "simulated": true,
        })
    }

    fn event(&self, action: &str, message: String, now: Timestamp) -> Event {
        let mut e = Event::new(now);
        e.insert(field::EVENT_KIND, "event");
        e.insert(field::EVENT_CATEGORY, "network");
        e.insert(field::EVENT_DATASET, vigil_event::dataset::VIGIL_DECISION);
        e.insert(field::EVENT_ACTION, action);
        e.insert(field::VIGIL_DRILL_RUN, self.run.as_str());
        e.insert("vigil.decision.id", self.id as i64);
        e.insert("vigil.decision.value", self.net.text());
        e.insert("vigil.decision.until", self.until.to_rfc3339());
        e.insert("vigil.alert.id", self.alert as i64);
        e.insert("rule.name", self.scenario.as_str());
        e.insert(field::MESSAGE, message);
        e
    }
}

/// Why a drill alert got no drill decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrillRefusal {
    /// The address is not a documentation address: a drill never names a real one.
    #[error("{0} is not a documentation address; a drill never bans a real one")]
    RealAddress(IpAddr),
}

/// The drill decisions of the running server.
#[derive(Debug, Default)]
pub struct DrillDecisions {
    list: Mutex<(u64, Vec<DrillDecision>)>,
    /// When each bouncer (by name) last polled its stream: the bouncers a drill expects.
    polls: Mutex<std::collections::HashMap<String, Timestamp>>,
}

impl DrillDecisions {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<DrillDecision>)> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A responder wants drill alert `alert` of run `run` (rule `scenario`) to ban `ip`:
    /// the `drill-ban` event to record, or `None` when this alert has its decision already.
    pub fn decide(
        &self,
        alert: u64,
        run: &str,
        scenario: &str,
        ip: IpAddr,
        now: Timestamp,
    ) -> Result<Option<Event>, DrillRefusal> {
        if !vigil_ingest::drill::is_documentation(ip) {
            return Err(DrillRefusal::RealAddress(ip));
        }
        let mut guard = self.lock();
        let (next, list) = &mut *guard;
        if list.iter().any(|d| d.alert == alert && d.run == run) {
            return Ok(None);
        }
        *next += 1;
        let d = DrillDecision {
            id: DRILL_DECISION_IDS + *next,
            net: super::DecisionBook::scope_of(ip),
            scenario: scenario.to_owned(),
            alert,
            run: run.to_owned(),
            at: now,
            until: Timestamp::from_nanos(now.as_nanos() + DRILL_BAN.as_nanos() as i64),
            fetched_by: Vec::new(),
        };
        let event = d.event(
            "drill-ban",
            format!(
                "drill {run}: would ban {} ({scenario}, alert {alert}); served to bouncers as type drill, not enforced",
                d.net.text()
            ),
            now,
        );
        if list.len() >= MAX_DRILL_DECISIONS {
            list.remove(0);
        }
        list.push(d);
        Ok(Some(event))
    }

    /// What a bouncer's stream holds of drill decisions since `since` (`None`: startup):
    /// `(new, deleted)` in the LAPI form, and the `drill-fetched` events of the decisions this
    /// bouncer fetches for the first time.
    pub fn stream(
        &self,
        bouncer: &str,
        since: Option<Timestamp>,
        now: Timestamp,
    ) -> (Vec<Value>, Vec<Value>, Vec<Event>) {
        {
            let mut polls = self.polls.lock().unwrap_or_else(|p| p.into_inner());
            if polls.len() < 10_000 || polls.contains_key(bouncer) {
                polls.insert(bouncer.to_owned(), now);
            }
        }
        let (mut new, mut deleted, mut fetched) = (Vec::new(), Vec::new(), Vec::new());
        for d in self.lock().1.iter_mut() {
            let live = d.until > now;
            if live && since.is_none_or(|s| d.at > s) {
                new.push(d.to_lapi(now));
                if !d.fetched_by.iter().any(|b| b == bouncer) {
                    d.fetched_by.push(bouncer.to_owned());
                    let mut e = d.event(
                        "drill-fetched",
                        format!(
                            "drill {}: bouncer {bouncer} fetched the drill decision on {}",
                            d.run,
                            d.net.text()
                        ),
                        now,
                    );
                    e.insert("vigil.bouncer", bouncer);
                    fetched.push(e);
                }
            } else if !live && since.is_some_and(|s| d.until > s) {
                deleted.push(d.to_lapi(now));
            }
        }
        (new, deleted, fetched)
    }

    /// Bouncers (by name) that polled their stream at or after `since`, sorted.
    pub fn polled_since(&self, since: Timestamp) -> Vec<String> {
        let mut out: Vec<String> = self
            .polls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, t)| **t >= since)
            .map(|(b, _)| b.clone())
            .collect();
        out.sort();
        out
    }

    /// The drill decisions of `run`.
    pub fn of_run(&self, run: &str) -> Vec<DrillDecision> {
        self.lock()
            .1
            .iter()
            .filter(|d| d.run == run)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_decision_is_served_marked_once_then_deleted_and_never_for_a_real_address() {
        let d = DrillDecisions::default();
        let t0 = Timestamp::from_secs(100);
        assert_eq!(
            d.decide(1, "r", "SSH brute force", "8.8.8.8".parse().unwrap(), t0),
            Err(DrillRefusal::RealAddress("8.8.8.8".parse().unwrap()))
        );
        let e = d
            .decide(1, "r", "SSH brute force", "192.0.2.5".parse().unwrap(), t0)
            .unwrap()
            .unwrap();
        assert_eq!(e.get_str("event.action"), Some("drill-ban"));
        assert_eq!(e.drill_run(), Some("r"));
        // Once per alert.
        assert_eq!(
            d.decide(1, "r", "x", "192.0.2.5".parse().unwrap(), t0),
            Ok(None)
        );
        let (new, deleted, fetched) = d.stream("fw", Some(Timestamp::from_secs(99)), t0);
        assert_eq!(new.len(), 1);
        assert_eq!(new[0]["type"], "drill");
        assert_eq!(new[0]["origin"], "vigil-drill");
        assert_eq!(new[0]["value"], "192.0.2.5");
        assert!(deleted.is_empty());
        assert_eq!(fetched.len(), 1);
        assert_eq!(fetched[0].get_str("vigil.bouncer"), Some("fw"));
        // A second fetch (startup) is not a new first fetch.
        let (_, _, fetched) = d.stream("fw", None, t0);
        assert!(fetched.is_empty());
        // Once over, it is deleted from the streams that had it.
        let later = Timestamp::from_secs(100 + DRILL_BAN.as_secs() as i64 + 1);
        let (new, deleted, _) = d.stream("fw", Some(Timestamp::from_secs(101)), later);
        assert!(new.is_empty());
        assert_eq!(deleted.len(), 1);
        assert_eq!(d.of_run("r").len(), 1);
        assert_eq!(d.polled_since(t0), ["fw"]);
        assert!(d.polled_since(Timestamp::from_secs(10_000)).is_empty());
    }

    #[test]
    fn the_ban_book_ignores_drill_decision_events() {
        let d = DrillDecisions::default();
        let e = d
            .decide(
                1,
                "r",
                "x",
                "192.0.2.5".parse().unwrap(),
                Timestamp::from_secs(1),
            )
            .unwrap()
            .unwrap();
        let mut book = super::super::DecisionBook::default();
        assert!(!book.apply_event(&e));
        assert!(book.active(Timestamp::from_secs(2)).is_empty());
    }
}
