//! Retention: pruning removes whole sealed segments, leaves a signed record, and the rest still
//! verifies; a legal hold stops it; a forged or missing record is caught.

use std::fs;
use std::time::Duration;

use vigil_event::{Event, Timestamp};
use vigil_ledger::files::{self, LedgerPaths};
use vigil_ledger::format;
use vigil_ledger::{
    Ledger, LedgerConfig, LedgerReader, PruneOutcome, RetentionPolicy, VerifyOptions,
    set_legal_hold, verify,
};

fn filled(dir: &std::path::Path) -> Ledger {
    let config = LedgerConfig {
        // Small enough that most groups of these (well-compressed) events end a segment.
        segment_max_bytes: 2048,
        ..LedgerConfig::default()
    };
    let (ledger, _) = Ledger::open(dir, config).unwrap();
    for batch in 0..8i64 {
        let events: Vec<Event> = (0..300i64)
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + batch * 1000 + i));
                e.insert(
                    "message",
                    format!("batch {batch} line {i} from 192.0.2.{}", i % 200),
                );
                e
            })
            .collect();
        ledger.append(&events).unwrap();
        ledger.checkpoint().unwrap();
    }
    ledger
}

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn pruning_keeps_the_rest_verifiable_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = filled(dir.path());
    let before = LedgerReader::open(dir.path()).unwrap();
    let n_segments = before.segments().len();
    assert!(n_segments >= 4);
    let end_before = ledger.end_seq();

    // Nothing is old enough today.
    let policy = RetentionPolicy { max_age: 30 * DAY };
    assert_eq!(
        ledger.prune(policy, Timestamp::now()).unwrap(),
        PruneOutcome::NothingToDo
    );

    // Thirty-one days later every sealed segment may go; the open one stays.
    let later = Timestamp::from_secs(Timestamp::now().as_secs() + 31 * 86_400);
    let PruneOutcome::Pruned(record) = ledger.prune(policy, later).unwrap() else {
        panic!("expected a pruning");
    };
    assert_eq!(record.start, 0);
    assert_eq!(record.end % 256, 0);
    assert_eq!(record.segments.len(), n_segments - 1);
    // The pruning itself was appended as an audit event.
    assert_eq!(ledger.end_seq(), end_before + 1);
    ledger.close().unwrap();

    let mut reader = LedgerReader::open(dir.path()).unwrap();
    assert_eq!(reader.first_seq(), record.end);
    assert_eq!(reader.segments().len(), 1);
    let audit = reader.read_event(end_before).unwrap();
    assert_eq!(audit.get_str("event.dataset"), Some("vigil.audit"));
    assert_eq!(audit.get_str("event.action"), Some("retention_prune"));
    assert!(reader.read_raw(0).is_err(), "pruned events are gone");
    // Proofs still work for what remains.
    let p = reader.inclusion_proof(end_before).unwrap();
    vigil_ledger::merkle::verify_inclusion(
        &p.leaf_hash,
        p.seq,
        p.tree_size,
        &p.proof,
        &p.checkpoint.checkpoint.root,
    )
    .unwrap();

    let report = verify(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.pruned_end, record.end);
    assert_eq!(report.prunes.len(), 1);
    assert_eq!(report.prunes[0].segments.len(), n_segments - 1);
    assert!(report.checkpoints_verified >= 1);
}

#[test]
fn legal_hold_suspends_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = filled(dir.path());
    set_legal_hold(dir.path(), Some("case 2026-117, counsel")).unwrap();
    let later = Timestamp::from_secs(Timestamp::now().as_secs() + 400 * 86_400);
    let outcome = ledger
        .prune(RetentionPolicy { max_age: DAY }, later)
        .unwrap();
    assert!(
        matches!(outcome, PruneOutcome::Held { ref reason } if reason.contains("case 2026-117"))
    );
    assert_eq!(LedgerReader::open(dir.path()).unwrap().first_seq(), 0);
    set_legal_hold(dir.path(), None).unwrap();
    assert!(matches!(
        ledger
            .prune(RetentionPolicy { max_age: DAY }, later)
            .unwrap(),
        PruneOutcome::Pruned(_)
    ));
    ledger.close().unwrap();
}

#[test]
fn forged_pruning_record_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = filled(dir.path());
    let later = Timestamp::from_secs(Timestamp::now().as_secs() + 40 * 86_400);
    ledger
        .prune(RetentionPolicy { max_age: DAY }, later)
        .unwrap();
    ledger.close().unwrap();
    // Stretch the record over more events without the key: the signature breaks.
    let paths = LedgerPaths::new(dir.path());
    let log = files::read_record_log(&paths.prunes(), format::PRUNES_MAGIC).unwrap();
    let text = String::from_utf8(log.records[0].clone()).unwrap();
    let end_line = text
        .lines()
        .find(|l| l.starts_with("end "))
        .unwrap()
        .to_owned();
    let forged = text.replace(&end_line, "end 2048");
    let mut bytes = format::encode_file_header(format::PRUNES_MAGIC).to_vec();
    format::encode_record(&mut bytes, forged.as_bytes());
    fs::write(paths.prunes(), bytes).unwrap();
    let report = verify(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(!report.is_intact());
    assert!(
        report.problems[0].message.contains("pruning record #1"),
        "{}",
        report.problems[0]
    );
}

#[test]
fn interrupted_pruning_is_finished_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = filled(dir.path());
    let paths = LedgerPaths::new(dir.path());
    let segments_before: Vec<_> = files::list_segments(&paths).unwrap();
    let later = Timestamp::from_secs(Timestamp::now().as_secs() + 40 * 86_400);
    let PruneOutcome::Pruned(record) = ledger
        .prune(RetentionPolicy { max_age: DAY }, later)
        .unwrap()
    else {
        panic!()
    };
    ledger.close().unwrap();
    // Simulate a crash between writing the record and deleting the files: put one back.
    let (first, path) = &segments_before[0];
    assert_eq!(*first, 0);
    // Re-create a stand-in file (contents do not matter: the record already covers it).
    fs::write(path, format::encode_segment_header(0, 0)).unwrap();
    let (ledger, recovery) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    assert_eq!(recovery.finished_prunes, vec![path.clone()]);
    assert!(!path.exists());
    ledger.close().unwrap();
    let report = verify(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.pruned_end, record.end);
}
