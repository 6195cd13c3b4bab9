//! A drill's report, read from what the door saw of its run (`vigil_ingest::drill::Journal`):
//! pure functions, no I/O.
//!
//! Steps, each passed, failed or skipped, with its latency:
//!
//! | step | from → to |
//! |---|---|
//! | `ingest → stored` | the event sent → durable in the ledger (every event of the run) |
//! | `stored → alert` | the event that raised it durable → the alert created (per expected rule) |
//! | `alert → notify NAME` | the alert created → the notifier's delivery (each notifier routing it) |
//! | `alert → ban decision` | the alert created → the responder's (drill) decision |
//! | `decision → fetched by BOUNCER` | the decision → its first fetch by each bouncer polling |

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use vigil_event::{Event, Timestamp, dataset, field};
use vigil_ingest::drill::Journal;

/// A step's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It happened.
    Passed,
    /// It did not, or went wrong.
    Failed,
    /// Nothing is configured for it (no notifier, no responder, no bouncer).
    Skipped,
}

impl Status {
    /// `passed`, `failed`, `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// One step of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What was measured (`stored → alert: SSH brute force`).
    pub name: String,
    /// How it went.
    pub status: Status,
    /// How long it took (the slowest, for several events), in milliseconds.
    pub latency_ms: Option<f64>,
    /// What happened, or what was missed and why.
    pub detail: String,
}

/// What the run expects and knows besides the journal.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// The nonces sent, with when each was sent (none: never sent, with why).
    pub sent: Vec<(String, Result<Timestamp, String>)>,
    /// Rule ids or titles that must alert (empty: any alert).
    pub rules: Vec<String>,
    /// Rule ids and titles loaded in the detector (`None`: detection is off).
    pub loaded: Option<Vec<(String, String)>>,
    /// For each alert id: the notifiers that route it (name, kind) and whether a responder
    /// bans for it.
    pub routes: BTreeMap<u64, (Vec<(String, String)>, bool)>,
    /// Bouncers polling the decision stream when the run started.
    pub bouncers: Vec<String>,
}

/// An alert as its `vigil.alert` events tell it.
#[derive(Debug, Clone)]
struct AlertSeen {
    id: u64,
    rule_id: String,
    title: String,
    created: Timestamp,
    trigger_seq: Option<u64>,
}

fn int(e: &Event, f: &str) -> Option<i64> {
    e.get(f).and_then(vigil_event::Value::as_i64)
}

fn ms(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_nanos() - from.as_nanos()) as f64 / 1e6
}

fn alerts(journal: &Journal) -> Vec<AlertSeen> {
    let mut out: Vec<AlertSeen> = Vec::new();
    for s in &journal.stored {
        let e = &s.event;
        if !e.is_dataset(dataset::VIGIL_ALERT) {
            continue;
        }
        let Some(id) = int(e, "vigil.alert.id").map(|i| i as u64) else {
            continue;
        };
        if out.iter().any(|a| a.id == id) {
            continue;
        }
        out.push(AlertSeen {
            id,
            rule_id: e.get_str("rule.id").unwrap_or("").to_owned(),
            title: e.get_str("rule.name").unwrap_or("").to_owned(),
            created: int(e, "vigil.alert.created").map_or(e.timestamp(), Timestamp::from_nanos),
            trigger_seq: int(e, "vigil.alert.last_seq").map(|i| i as u64),
        });
    }
    out
}

/// Vigil's own drill events (alerts, decisions, notifications) are not the run's input.
fn is_input(e: &Event) -> bool {
    !e.dataset()
        .is_some_and(|d| d.starts_with(field::VIGIL_PREFIX))
}

/// The alerts of the run: `(id, rule id, title)`, for routing.
pub fn alert_ids(journal: &Journal) -> Vec<(u64, String, String)> {
    alerts(journal)
        .into_iter()
        .map(|a| (a.id, a.rule_id, a.title))
        .collect()
}

/// The steps of the run so far, and whether nothing is left to wait for.
pub fn assess(journal: &Journal, expect: &Expect) -> (Vec<Step>, bool) {
    let mut steps = Vec::new();
    let mut complete = true;
    // Ingest → stored.
    let inputs: Vec<&vigil_ingest::drill::Stored> = journal
        .stored
        .iter()
        .filter(|s| is_input(&s.event))
        .collect();
    let mut lat = Vec::new();
    let mut missing = Vec::new();
    for (nonce, sent) in &expect.sent {
        let found = inputs.iter().find(|s| {
            s.event
                .fields()
                .any(|(_, v)| v.as_str().is_some_and(|t| t.contains(nonce.as_str())))
        });
        match (sent, found) {
            (Ok(at), Some(s)) => lat.push(ms(*at, s.durable)),
            (Err(why), _) => missing.push(format!("not sent: {why}")),
            (Ok(_), None) => missing.push(format!("{nonce} not stored as a drill event")),
        }
    }
    lat.sort_by(f64::total_cmp);
    let n = expect.sent.len();
    let mut detail = format!("{} of {n} events stored as drill events", lat.len());
    if let (Some(p50), Some(max)) = (lat.get(lat.len() / 2), lat.last()) {
        detail.push_str(&format!("; p50 {p50:.1} ms, max {max:.1} ms"));
    }
    if !missing.is_empty() {
        complete = false;
        detail.push_str(&format!(
            "; missing {}: lost, or arrived without their mark (then they count as real events). First: {}",
            missing.len(),
            missing[0]
        ));
    }
    for r in &journal.refused {
        detail.push_str(&format!("; {r}"));
    }
    steps.push(Step {
        name: "ingest → stored".into(),
        status: if missing.is_empty() && journal.refused.is_empty() {
            Status::Passed
        } else {
            Status::Failed
        },
        latency_ms: lat.last().copied(),
        detail,
    });
    // Stored → alert.
    let seen = alerts(journal);
    let durable_of = |seq: Option<u64>| {
        seq.and_then(|q| journal.stored.iter().find(|s| s.seq == q))
            .map(|s| s.durable)
    };
    let sent_of = |seq: Option<u64>| {
        let event = &journal.stored.iter().find(|s| Some(s.seq) == seq)?.event;
        expect.sent.iter().find_map(|(nonce, sent)| {
            let has = event
                .fields()
                .any(|(_, v)| v.as_str().is_some_and(|t| t.contains(nonce.as_str())));
            has.then(|| sent.as_ref().ok().copied()).flatten()
        })
    };
    let wanted: Vec<Option<&str>> = if expect.rules.is_empty() {
        vec![None]
    } else {
        expect.rules.iter().map(|r| Some(r.as_str())).collect()
    };
    for want in wanted {
        let hit = seen.iter().find(|a| {
            want.is_none_or(|w| {
                a.rule_id.eq_ignore_ascii_case(w) || a.title.eq_ignore_ascii_case(w)
            })
        });
        let label = want.unwrap_or("any rule");
        steps.push(match hit {
            Some(a) => {
                // The detector, woken by the group commit that stored the event, can raise
                // the alert before the door has recorded the commit: then it took no time.
                let stored = durable_of(a.trigger_seq).map(|d| ms(d, a.created));
                let mut detail = format!("alert {} ({}) raised", a.id, a.title);
                if let Some(sent) = sent_of(a.trigger_seq) {
                    detail.push_str(&format!("; sent → alert {:.1} ms", ms(sent, a.created)));
                }
                if stored.is_some_and(|l| l < 0.0) {
                    detail.push_str(" (raised within the commit that stored its event)");
                }
                Step {
                    name: format!("stored → alert: {label}"),
                    status: Status::Passed,
                    latency_ms: stored.map(|l| l.max(0.0)),
                    detail,
                }
            }
            None => {
                complete = false;
                Step {
                    name: format!("stored → alert: {label}"),
                    status: Status::Failed,
                    latency_ms: None,
                    detail: why_no_alert(want, expect, inputs.is_empty()),
                }
            }
        });
    }
    // Alert → notifiers, ban decision, bouncers.
    let decisions = |action: &str| -> Vec<&vigil_ingest::drill::Stored> {
        journal
            .stored
            .iter()
            .filter(|s| {
                s.event.is_dataset(dataset::VIGIL_DECISION)
                    && s.event.get_str(field::EVENT_ACTION) == Some(action)
            })
            .collect()
    };
    let (bans, fetches) = (decisions("drill-ban"), decisions("drill-fetched"));
    let mut any_notifier = false;
    let mut any_responder = false;
    for a in &seen {
        let (notifiers, banned) = expect.routes.get(&a.id).cloned().unwrap_or_default();
        for (name, kind) in notifiers {
            any_notifier = true;
            let outcome = journal.stored.iter().find(|s| {
                s.event.is_dataset(dataset::VIGIL_NOTIFY)
                    && int(&s.event, "vigil.alert.id") == Some(a.id as i64)
                    && s.event.get_str("vigil.notifier") == Some(name.as_str())
            });
            let name = format!("alert {} → notify {name} ({kind})", a.id);
            steps.push(match outcome {
                Some(s)
                    if s.event.get_str(field::EVENT_ACTION) == Some("notification-delivered") =>
                {
                    Step {
                        name,
                        status: Status::Passed,
                        latency_ms: Some(ms(a.created, s.event.timestamp())),
                        detail: "delivered".into(),
                    }
                }
                Some(s) => Step {
                    name,
                    status: Status::Failed,
                    latency_ms: None,
                    detail: format!(
                        "not delivered: {}",
                        s.event.get_str(field::ERROR_MESSAGE).unwrap_or("gave up")
                    ),
                },
                None => {
                    complete = false;
                    Step {
                        name,
                        status: Status::Failed,
                        latency_ms: None,
                        detail: "no delivery and no failure recorded before the drill's timeout"
                            .into(),
                    }
                }
            });
        }
        if !banned {
            continue;
        }
        any_responder = true;
        let ban = bans
            .iter()
            .find(|s| int(&s.event, "vigil.alert.id") == Some(a.id as i64));
        let Some(ban) = ban else {
            complete = false;
            steps.push(Step {
                name: format!("alert {} → ban decision", a.id),
                status: Status::Failed,
                latency_ms: None,
                detail: "a responder bans for this rule, but no decision was recorded (is the alert's source.ip a documentation address?)".into(),
            });
            continue;
        };
        let value = ban.event.get_str("vigil.decision.value").unwrap_or("");
        steps.push(Step {
            name: format!("alert {} → ban decision", a.id),
            status: Status::Passed,
            latency_ms: Some(ms(a.created, ban.event.timestamp())),
            detail: format!("would ban {value}; served to bouncers as type drill, not enforced"),
        });
        let id = int(&ban.event, "vigil.decision.id");
        if expect.bouncers.is_empty() {
            steps.push(Step {
                name: format!("decision {} → fetched by a bouncer", id.unwrap_or(0)),
                status: Status::Skipped,
                latency_ms: None,
                detail: "no bouncer polled the decision stream in the minute before the drill"
                    .into(),
            });
        }
        for b in &expect.bouncers {
            let fetched = fetches.iter().find(|s| {
                int(&s.event, "vigil.decision.id") == id
                    && s.event.get_str("vigil.bouncer") == Some(b.as_str())
            });
            let name = format!("decision {} → fetched by {b}", id.unwrap_or(0));
            steps.push(match fetched {
                Some(f) => Step {
                    name,
                    status: Status::Passed,
                    latency_ms: Some(ms(ban.event.timestamp(), f.event.timestamp())),
                    detail: "fetched from the decision stream".into(),
                },
                None => {
                    complete = false;
                    Step {
                        name,
                        status: Status::Failed,
                        latency_ms: None,
                        detail: "the bouncer did not fetch it before the drill's timeout".into(),
                    }
                }
            });
        }
    }
    if !seen.is_empty() && !any_notifier {
        steps.push(Step {
            name: "alert → notify".into(),
            status: Status::Skipped,
            latency_ms: None,
            detail: "no notifier routes these alerts".into(),
        });
    }
    if !seen.is_empty() && !any_responder {
        steps.push(Step {
            name: "alert → ban decision".into(),
            status: Status::Skipped,
            latency_ms: None,
            detail: "no responder bans for these rules".into(),
        });
    }
    (steps, complete)
}

fn why_no_alert(want: Option<&str>, expect: &Expect, nothing_stored: bool) -> String {
    let Some(loaded) = &expect.loaded else {
        return "missed: detection is off (start serve with --rules DIR)".into();
    };
    if nothing_stored {
        return "missed: none of the drill's events was stored, so nothing could match".into();
    }
    match want {
        Some(w)
            if !loaded
                .iter()
                .any(|(id, t)| id.eq_ignore_ascii_case(w) || t.eq_ignore_ascii_case(w)) =>
        {
            format!("missed: rule {w:?} is not loaded (vigil rules check; GET /api/v1/rules)")
        }
        Some(w) => format!(
            "missed: rule {w:?} is loaded but raised no alert from the drill's events before the timeout (why: POST /api/v1/rules/trace with one of them; an exception may silence it)"
        ),
        None => "missed: no loaded rule raised an alert from the drill's events before the timeout"
            .into(),
    }
}

/// The whole report.
#[derive(Debug, Clone)]
pub struct DrillReport {
    /// The run's id.
    pub run: String,
    /// The scenario's name.
    pub scenario: String,
    /// Its title.
    pub title: String,
    /// Who ran it (`schedule` for the schedule).
    pub by: String,
    /// When it started.
    pub started: Timestamp,
    /// When it ended.
    pub finished: Timestamp,
    /// Its steps.
    pub steps: Vec<Step>,
    /// The alerts it raised: `(id, rule id, title)`.
    pub alerts: Vec<(u64, String, String)>,
    /// Where the report is in the ledger (once recorded).
    pub seq: Option<u64>,
}

impl DrillReport {
    /// Whether no step failed.
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.status != Status::Failed)
    }

    /// The steps that failed, as `name: detail` lines (what was missed and why).
    pub fn missed(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.status == Status::Failed)
            .map(|s| format!("{}: {}", s.name, s.detail))
            .collect()
    }

    /// The API's form.
    pub fn to_json(&self) -> Json {
        json!({
            "run": self.run,
            "scenario": self.scenario,
            "title": self.title,
            "by": self.by,
            "started": self.started.to_rfc3339(),
            "finished": self.finished.to_rfc3339(),
            "passed": self.passed(),
            "steps": self.steps.iter().map(|s| json!({
                "name": s.name,
                "status": s.status.as_str(),
                "latency_ms": s.latency_ms.map(|l| (l * 10.0).round() / 10.0),
                "detail": s.detail,
            })).collect::<Vec<_>>(),
            "missed": self.missed(),
            "alerts": self.alerts.iter().map(|(id, rule, title)| json!({"id": id, "rule": rule, "title": title})).collect::<Vec<_>>(),
            "seq": self.seq,
        })
    }

    /// The report as a ledger event (`event.dataset: vigil.drill`, action `drill-run`,
    /// outcome success or failure). It is not a drill event itself: a failed drill's report
    /// raises a real alert ("A drill failed").
    pub fn to_event(&self) -> Event {
        let mut e = Event::new(self.finished);
        e.insert(field::EVENT_KIND, "event");
        e.insert(field::EVENT_CATEGORY, "process");
        e.insert(field::EVENT_DATASET, dataset::VIGIL_DRILL);
        e.insert(field::EVENT_ACTION, "drill-run");
        e.insert(
            field::EVENT_OUTCOME,
            if self.passed() { "success" } else { "failure" },
        );
        e.insert("user.name", self.by.as_str());
        e.insert("vigil.drill_report.run", self.run.as_str());
        e.insert("vigil.drill_report.scenario", self.scenario.as_str());
        e.insert("vigil.drill_report.passed", self.passed());
        e.insert("vigil.drill_report.report", self.to_json().to_string());
        let missed = self.missed();
        e.insert(
            field::MESSAGE,
            if missed.is_empty() {
                format!("drill {} ({}) passed", self.run, self.scenario)
            } else {
                format!(
                    "drill {} ({}) failed: {}",
                    self.run,
                    self.scenario,
                    missed.join("; ")
                )
            },
        );
        e
    }

    /// A report back from its ledger event (the UI's list after a restart).
    pub fn json_from_event(e: &Event) -> Option<Json> {
        let mut v: Json = serde_json::from_str(e.get_str("vigil.drill_report.report")?).ok()?;
        if let Some(seq) = e.get(field::VIGIL_SEQ).and_then(vigil_event::Value::as_i64) {
            v["seq"] = json!(seq);
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_ingest::drill::Stored;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_nanos(1_000_000_000_000 + ms * 1_000_000)
    }

    fn stored(seq: u64, durable_ms: i64, e: Event) -> Stored {
        Stored {
            seq,
            durable: at(durable_ms),
            event: e,
        }
    }

    fn input(nonce: &str) -> Event {
        let mut e = Event::new(at(0));
        e.insert("message", format!("Failed password {nonce}"));
        e.insert(field::VIGIL_DRILL_RUN, "r");
        e
    }

    fn own(ds: &str, action: &str, ts: i64, f: &[(&str, i64)]) -> Event {
        let mut e = Event::new(at(ts));
        e.insert(field::EVENT_DATASET, ds);
        e.insert(field::EVENT_ACTION, action);
        for (k, v) in f {
            e.insert(*k, *v);
        }
        e
    }

    fn journal() -> Journal {
        let mut alert = own(
            dataset::VIGIL_ALERT,
            "alert-created",
            30,
            &[
                ("vigil.alert.id", 7),
                ("vigil.alert.last_seq", 2),
                ("vigil.alert.created", at(30).as_nanos()),
            ],
        );
        alert.insert("rule.name", "SSH brute force");
        alert.insert("rule.id", "r-1");
        let mut delivered = own(
            dataset::VIGIL_NOTIFY,
            "notification-delivered",
            80,
            &[("vigil.alert.id", 7)],
        );
        delivered.insert("vigil.notifier", "hook");
        let ban = own(
            dataset::VIGIL_DECISION,
            "drill-ban",
            35,
            &[("vigil.alert.id", 7), ("vigil.decision.id", 9)],
        );
        let mut fetched = own(
            dataset::VIGIL_DECISION,
            "drill-fetched",
            1035,
            &[("vigil.alert.id", 7), ("vigil.decision.id", 9)],
        );
        fetched.insert("vigil.bouncer", "fw");
        Journal {
            stored: vec![
                stored(1, 10, input("vdrill-a")),
                stored(2, 20, input("vdrill-b")),
                stored(3, 31, alert),
                stored(4, 36, ban),
                stored(5, 81, delivered),
                stored(6, 1036, fetched),
            ],
            ..Journal::default()
        }
    }

    fn expect() -> Expect {
        let mut routes = BTreeMap::new();
        routes.insert(7, (vec![("hook".to_owned(), "webhook".to_owned())], true));
        Expect {
            sent: vec![
                ("vdrill-a".into(), Ok(at(0))),
                ("vdrill-b".into(), Ok(at(5))),
            ],
            rules: vec!["SSH brute force".into()],
            loaded: Some(vec![("r-1".into(), "SSH brute force".into())]),
            routes,
            bouncers: vec!["fw".into()],
        }
    }

    #[test]
    fn every_step_passes_with_its_latency_when_everything_happened() {
        let (steps, complete) = assess(&journal(), &expect());
        assert!(complete);
        let got: Vec<(&str, Status, Option<f64>)> = steps
            .iter()
            .map(|s| (s.name.as_str(), s.status, s.latency_ms))
            .collect();
        assert_eq!(
            got,
            [
                ("ingest → stored", Status::Passed, Some(15.0)),
                (
                    "stored → alert: SSH brute force",
                    Status::Passed,
                    Some(10.0)
                ),
                (
                    "alert 7 → notify hook (webhook)",
                    Status::Passed,
                    Some(50.0)
                ),
                ("alert 7 → ban decision", Status::Passed, Some(5.0)),
                ("decision 9 → fetched by fw", Status::Passed, Some(1000.0)),
            ]
        );
    }

    #[test]
    fn a_failed_delivery_a_missing_event_and_a_rule_not_loaded_are_failures_with_reasons() {
        let mut j = journal();
        j.stored
            .retain(|s| s.event.get_str(field::EVENT_ACTION) != Some("notification-delivered"));
        let mut failed = own(
            dataset::VIGIL_NOTIFY,
            "notification-failed",
            90,
            &[("vigil.alert.id", 7)],
        );
        failed.insert("vigil.notifier", "hook");
        failed.insert(field::ERROR_MESSAGE, "connection refused");
        j.stored.push(stored(7, 91, failed));
        let mut x = expect();
        x.sent.push(("vdrill-c".into(), Ok(at(6))));
        x.rules.push("Windows thing".into());
        let (steps, complete) = assess(&j, &x);
        assert!(!complete, "an event is still missing");
        let failed: Vec<(&str, &str)> = steps
            .iter()
            .filter(|s| s.status == Status::Failed)
            .map(|s| (s.name.as_str(), s.detail.as_str()))
            .collect();
        assert_eq!(failed.len(), 3, "{failed:#?}");
        assert!(failed[0].1.contains("missing 1"), "{failed:?}");
        assert!(failed[1].1.contains("not loaded"), "{failed:?}");
        assert!(failed[2].1.contains("connection refused"), "{failed:?}");
        let report = DrillReport {
            run: "r".into(),
            scenario: "s".into(),
            title: "t".into(),
            by: "ana".into(),
            started: at(0),
            finished: at(2000),
            steps,
            alerts: alert_ids(&j),
            seq: None,
        };
        assert!(!report.passed());
        let e = report.to_event();
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.drill_run(), None, "a report is not itself a drill event");
        assert!(e.get_str("message").unwrap().contains("connection refused"));
        let back = DrillReport::json_from_event(&e).unwrap();
        assert_eq!(back["missed"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn nothing_configured_is_skipped_not_failed() {
        let mut x = expect();
        x.routes.clear();
        x.bouncers.clear();
        let (steps, _) = assess(&journal(), &x);
        assert!(
            steps.iter().all(|s| s.status != Status::Failed),
            "{steps:#?}"
        );
        assert_eq!(
            steps.iter().filter(|s| s.status == Status::Skipped).count(),
            2
        );
    }
}
