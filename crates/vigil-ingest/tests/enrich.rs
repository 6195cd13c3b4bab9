//! The pipeline enriches events from outside before they are stored (so the enrichment is
//! proven with the event), never Vigil's own, and never keeps a sender's claim to a name
//! enrichment owns.

use std::sync::Arc;
use std::time::Duration;

use vigil_enrich::{Enricher, Settings};
use vigil_event::{Event, Timestamp, Value};
use vigil_ingest::metrics::Metrics;
use vigil_ingest::{Ingest, Listener, NodeLog, Origin};
use vigil_ledger::{Ledger, LedgerConfig};
use vigil_parse::redact::Redactor;

fn event(ip: &str, user: &str) -> Event {
    let mut e = Event::new(Timestamp::from_secs(1));
    e.insert("source.ip", Value::Ip(ip.parse().unwrap()));
    e.insert("user.name", user);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_is_enriched_before_the_ledger_and_own_events_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = dir.path().join("bad.txt");
    std::fs::write(&feeds, "198.51.100.7\n").unwrap();
    let users = dir.path().join("users.csv");
    std::fs::write(&users, "user.name,user.department\nalice,finance\n").unwrap();
    let enricher = Arc::new(Enricher::new(Settings {
        feeds: vec![feeds],
        max_indicators: 10,
        tables: vec![users],
        max_rows: 10,
        geoip: Vec::new(),
    }));
    let data = dir.path().join("data");
    let (ledger, _) = Ledger::open(&data, LedgerConfig::default()).unwrap();
    let ingest = Ingest::new(
        NodeLog::from(ledger.clone()),
        Redactor::default(),
        Arc::new(Metrics::default()),
    )
    .with_enricher(Arc::clone(&enricher));

    let mut forged = event("192.0.2.1", "bob");
    forged.insert("threat.feed.name", "sender says so");
    forged.insert("user.department", "claimed");
    let input = vec![event("198.51.100.7", "alice"), forged];
    ingest
        .append_within(input, Listener::Tcp, Duration::from_secs(5))
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();
    // An alert quoting the listed address is Vigil's own: stored as it was built.
    ingest
        .submit(vec![event("198.51.100.7", "alice")], Origin::Alert)
        .durable()
        .await
        .unwrap();
    drop(ingest);
    ledger.close().unwrap();

    let mut reader = vigil_ledger::LedgerReader::open(&data).unwrap();
    let stored = reader.read_event(0).unwrap();
    assert_eq!(stored.get("vigil.intel.matches"), Some(&Value::Int(1)));
    assert_eq!(stored.get_str("threat.indicator.ip"), Some("198.51.100.7"));
    assert_eq!(stored.get_str("user.department"), Some("finance"));
    let forged = reader.read_event(1).unwrap();
    assert!(forged.get("threat.feed.name").is_none());
    assert!(forged.get("user.department").is_none());
    assert_eq!(
        forged.get_str("external.threat.feed.name"),
        Some("sender says so")
    );
    assert_eq!(forged.get_str("external.user.department"), Some("claimed"));
    assert!(forged.has_tag(vigil_event::tag::RESERVED_CLAIM));
    let own = reader.read_event(2).unwrap();
    assert!(own.get("vigil.intel.matches").is_none());
    assert!(own.get("user.department").is_none());
    assert_eq!(
        enricher
            .stats
            .intel_matches
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
