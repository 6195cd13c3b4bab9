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

/// The door marks an input event carrying a live nonce, drops a mark any input claims (from
/// a listener or an import), keeps the marks of Vigil's own drill events, and journals every
/// durable drill event of the run with its sequence number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_door_marks_drill_events_and_it_journals_them() {
    use crate::drill::{DrillRegistry, nonce_from};
    use vigil_event::field::VIGIL_DRILL_RUN;
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let drills = Arc::new(DrillRegistry::default());
    let ingest = Ingest::new(
        NodeLog::from(ledger.clone()),
        Redactor::default(),
        Arc::new(Metrics::default()),
    )
    .with_drills(Arc::clone(&drills));
    let nonce = nonce_from([7; 16]);
    drills
        .begin(
            "run1",
            std::slice::from_ref(&nonce),
            Duration::from_secs(60),
        )
        .unwrap();
    let mut marked = Event::new(Timestamp::from_secs(1));
    marked.insert("message", format!("Failed password for root {nonce}"));
    // A drill's unparsed line must not count as the listener's parse error either.
    marked.add_tag(vigil_event::tag::PARSE_ERROR);
    let mut forged = Event::new(Timestamp::from_secs(1));
    forged.insert("message", "a real attack claiming to be a drill");
    forged.insert(VIGIL_DRILL_RUN, "run1");
    let range = ingest
        .append_waiting(vec![forged.clone(), marked], crate::Listener::Tcp)
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();
    assert_eq!(range, 0..2);
    // `/metrics`: the drill's event is counted apart from the listener's.
    let metrics = &ingest.metrics;
    assert_eq!(metrics.events.get("tcp"), 1, "the forged, real event");
    assert_eq!(metrics.drill_events.get("tcp"), 1);
    assert_eq!(metrics.parse_errors.get("tcp"), 0);
    assert_eq!(
        metrics
            .sources
            .snapshot()
            .iter()
            .map(|s| s.events)
            .sum::<u64>(),
        1
    );
    let imported = ingest
        .append_waiting(vec![forged], Origin::Import)
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();
    // Vigil's own event of the run (an alert, a decision) keeps its mark.
    let mut own = Event::new(Timestamp::from_secs(2));
    own.insert(VIGIL_DRILL_RUN, "run1");
    let own_seq = ingest
        .submit(vec![own], Origin::Alert)
        .durable()
        .await
        .unwrap();
    let mut reader = ledger.reader().unwrap();
    assert_eq!(reader.read_event(0).unwrap().drill_run(), None, "forged");
    assert_eq!(reader.read_event(1).unwrap().drill_run(), Some("run1"));
    assert_eq!(reader.read_event(imported.start).unwrap().drill_run(), None);
    assert_eq!(
        reader.read_event(own_seq.start).unwrap().drill_run(),
        Some("run1")
    );
    let journal = drills.finish("run1");
    let seqs: Vec<u64> = journal.stored.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [1, own_seq.start]);
    drop(ingest);
    ledger.close().unwrap();
}

/// A batch is vouched masked only when it was parsed with the door's own redactor (the same
/// `Arc`): parsed lines are then stored masked without a second pass, and events parsed with
/// another redactor, or with none while the door masks, are masked by the door as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_lines_parsed_with_the_doors_redactor_skip_its_mask() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let ingest = Ingest::new(
        NodeLog::from(ledger.clone()),
        Redactor::default(),
        Arc::new(Metrics::default()),
    );
    let line = b"<38>Dec  6 10:00:01 web1 app[1]: login password=hunter2 ok";
    let mut ctx = vigil_parse::ParseContext::new(Timestamp::from_secs(1), "test");
    ctx.redactor = ingest.redactor();
    let parsed = vec![vigil_parse::parse_line(
        line,
        vigil_parse::Format::Auto,
        &ctx,
    )];
    let own = ingest.parsed(parsed, ctx.redactor.as_ref());
    assert!(own.masked(), "parsed with the door's redactor");
    // Not the door's redactor (another instance of the same patterns), or none at all: the
    // events are not vouched for, whatever they hold.
    let other = Arc::new(Redactor::default());
    assert!(!ingest.parsed(events(1), Some(&other)).masked());
    assert!(!ingest.parsed(events(1), None).masked());
    assert!(!Batch::from(events(1)).masked());
    // A door that masks nothing vouches only for lines parsed without a redactor.
    let plain = Ingest::new(
        NodeLog::from(ledger.clone()),
        Redactor::disabled(),
        Arc::new(Metrics::default()),
    );
    assert!(plain.parsed(events(1), None).masked());
    assert!(!plain.parsed(events(1), ingest.redactor().as_ref()).masked());
    // Appending keeps the state only when both parts are masked.
    let mut joined = Batch::default();
    let one = vec![Event::new(Timestamp::from_secs(1))];
    joined.append(ingest.parsed(one, ctx.redactor.as_ref()));
    assert!(
        joined.masked(),
        "an empty batch takes the state of what it gets"
    );
    joined.append(ingest.parsed(Vec::new(), None));
    assert!(joined.masked(), "nothing added, nothing unmasked");
    joined.append(Batch::from(events(1)));
    assert!(
        !joined.masked(),
        "one unmasked part unmasks the whole batch"
    );

    // Stored: the vouched line masked by its parse, the others by the door.
    let range = ingest
        .append_waiting(own, crate::Listener::Tcp)
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();
    let not_vouched = ingest.parsed(events(2), Some(&other));
    let rest = ingest
        .append_waiting(not_vouched, crate::Listener::Tcp)
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();
    assert_eq!((range.start, rest.end), (0, 3));
    let mut reader = ledger.reader().unwrap();
    for seq in 0..3 {
        let stored = reader.read_event(seq).unwrap().to_json().to_string();
        assert!(!stored.contains("hunter2"), "event {seq} masked: {stored}");
    }
    drop((ingest, plain));
    ledger.close().unwrap();
}
