//! The detector passes over events no loaded rule's logsource admits without decoding them
//! (`RuleSet::may_match_canonical`): an event a rule matches is still evaluated, and a rule
//! added by a reload sees the events after it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_event::{Event, Timestamp};
use vigil_ingest::{EventLog, Ingest, NodeLog, Origin};
use vigil_ledger::{Ledger, LedgerConfig};

use super::DetectService;

const SSHD_RULE: &str = "title: sshd failure\nid: 5b0c1e2a-0000-4000-8000-000000000001\nlogsource: {product: linux, service: sshd}\ndetection:\n    sel:\n        message|contains: 'Failed password'\n    condition: sel\nlevel: high\n";
const CRON_RULE: &str = "title: cron session\nid: 5b0c1e2a-0000-4000-8000-000000000002\nlogsource: {product: linux, service: cron}\ndetection:\n    sel:\n        message|contains: 'session opened'\n    condition: sel\nlevel: low\n";

fn event(program: &str, message: &str, i: i64) -> Event {
    let mut e = Event::new(Timestamp::from_secs(1_700_000_000 + i));
    e.insert("process.name", program);
    e.insert("message", message);
    e.insert("host.name", "bastion");
    e
}

/// Alerts of the book as `(rule title, count)`, sorted.
fn alerts(detect: &DetectService) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = detect.with_book(|book| {
        (0..book.next_id())
            .filter_map(|id| book.get(id))
            .map(|a| (a.rule.title.clone(), a.count))
            .collect()
    });
    out.sort();
    out
}

/// Waits (a liveness bound, not a timing check) until `done` holds.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn matching_events_are_evaluated_and_a_reloaded_rule_sees_later_events() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("sshd.yml"), SSHD_RULE).unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let ingest = Arc::new(Ingest::new(
        NodeLog::from(ledger.clone()),
        vigil_parse::redact::Redactor::disabled(),
        Arc::default(),
    ));
    let (tx, _rx) = tokio::sync::mpsc::channel(1024);
    let notify =
        vigil_respond::notify::NotifyQueue::new(tx, Vec::new(), Arc::new(Default::default()));
    let detect = DetectService::start(
        dir.path(),
        vec![rules.clone()],
        0,
        Arc::clone(&ingest) as Arc<dyn vigil_ingest::Door>,
        notify,
        None,
    )
    .unwrap();
    let append = |events: Vec<Event>| {
        ingest.submit(events, Origin::Import).wait().unwrap();
    };
    // Many events no rule admits (another program; cron's line, with no cron rule yet),
    // around the three one rule matches.
    let mut batch = Vec::new();
    for i in 0..3000 {
        batch.push(match i % 1000 {
            500 => event(
                "sshd",
                "Failed password for root from 203.0.113.9 port 22 ssh2",
                i,
            ),
            7 => event(
                "cron",
                "pam_unix(cron:session): session opened for user root",
                i,
            ),
            _ => event("nginx", "Failed password in a URL is not sshd's", i),
        });
    }
    append(batch);
    let end = ingest.ledger().durable_end();
    wait_for("the first 3000 events evaluated", || {
        detect
            .progress
            .next_seq
            .load(std::sync::atomic::Ordering::Relaxed)
            >= end
    });
    assert_eq!(alerts(&detect), vec![("sshd failure".to_string(), 3)]);

    // A rule added while running: the reload brings it, and the events after it are
    // checked against it (the cron lines above came before it).
    std::fs::write(rules.join("cron.yml"), CRON_RULE).unwrap();
    wait_for("the reload", || detect.rules().set.len() == 2);
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.push(match i {
            100 | 1500 => event(
                "cron",
                "pam_unix(cron:session): session opened for user root",
                i,
            ),
            900 => event(
                "sshd",
                "Failed password for admin from 203.0.113.10 port 22 ssh2",
                i,
            ),
            _ => event("nginx", "session opened in an nginx line", i),
        });
    }
    append(batch);
    let end = ingest.ledger().durable_end();
    wait_for("the next 2000 events evaluated", || {
        detect
            .progress
            .next_seq
            .load(std::sync::atomic::Ordering::Relaxed)
            >= end
    });
    assert_eq!(
        alerts(&detect),
        vec![
            ("cron session".to_string(), 2),
            ("sshd failure".to_string(), 4)
        ]
    );
    detect.stop();
    drop(detect);
    drop(ingest);
    ledger.close().unwrap();
}
