//! Frozen ledgers written by earlier versions (`testdata/v*`, made by `examples/make_fixture.rs`)
//! must keep reading and verifying. Never regenerate a fixture to make this pass.

use std::path::Path;

use vigil_ledger::{LedgerReader, VerifyOptions, merkle, verify};

fn fixture(version: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(version)
}

#[test]
fn v1_ledger_reads_and_verifies() {
    let dir = fixture("v1");
    let report = verify(&dir, &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.pruned_end, 512);
    assert_eq!(report.end_seq, 1001);
    assert_eq!(report.prunes.len(), 1);
    assert_eq!(report.checkpoints_verified, 2);

    let mut reader = LedgerReader::open(&dir).unwrap();
    // Seq 600 is the audit event of the pruning, so event n=700 sits at seq 701.
    let event = reader.read_event(701).unwrap();
    assert_eq!(event.get("n").and_then(|v| v.as_i64()), Some(700));
    assert_eq!(
        event.get("source.ip").and_then(|v| v.as_ip()),
        Some("198.51.100.100".parse().unwrap())
    );
    assert_eq!(event.timestamp().as_secs(), 1_790_000_700);
    // The audit event recording the pruning.
    let audit = reader.read_event(600).unwrap();
    assert_eq!(audit.get_str("event.action"), Some("retention_prune"));

    let proof = reader.inclusion_proof(999).unwrap();
    merkle::verify_inclusion(
        &proof.leaf_hash,
        999,
        proof.tree_size,
        &proof.proof,
        &proof.checkpoint.checkpoint.root,
    )
    .unwrap();
    let verifier = reader.verifier().unwrap();
    assert!(verifier.open(&proof.checkpoint.note).is_ok());
}

/// A writer appends to a version-1 ledger: the last segment's header becomes version 2 (the
/// version whose blocks may carry the `continues` flag) and a multi-block append reads and
/// verifies with the old events around it.
#[test]
fn v1_ledger_takes_multi_block_appends() {
    let copy = tempfile::tempdir().unwrap();
    let from = fixture("v1").join("ledger");
    let to = copy.path().join("ledger");
    std::fs::create_dir_all(to.join("segments")).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    for entry in std::fs::read_dir(from.join("segments")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join("segments").join(entry.file_name())).unwrap();
    }
    let (ledger, _) =
        vigil_ledger::Ledger::open(copy.path(), vigil_ledger::LedgerConfig::default()).unwrap();
    let events: Vec<vigil_event::Event> = (0..700)
        .map(|i| {
            let mut e = vigil_event::Event::new(vigil_event::Timestamp::from_secs(i));
            e.insert("n", i);
            e
        })
        .collect();
    assert_eq!(ledger.append(&events).unwrap(), 1001..1701);
    ledger.close().unwrap();
    let report = verify(copy.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    let mut reader = LedgerReader::open(copy.path()).unwrap();
    assert_eq!(
        reader
            .read_event(1700)
            .unwrap()
            .get("n")
            .and_then(|v| v.as_i64()),
        Some(699)
    );
    assert_eq!(
        reader
            .read_event(701)
            .unwrap()
            .get("n")
            .and_then(|v| v.as_i64()),
        Some(700)
    );
    let flagged = reader
        .segments()
        .iter()
        .flat_map(|s| s.blocks.iter())
        .filter(|b| b.header.continues)
        .count();
    assert!(flagged >= 2, "the append spans blocks flagged `continues`");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A ledger written before the witness existed opens (it is not mistaken for one whose witness
/// was deleted), gets a witness, and keeps verifying.
#[test]
fn v1_ledger_without_a_witness_upgrades_at_open() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("v1"), dir.path());
    let paths = vigil_ledger::LedgerPaths::new(dir.path());
    assert!(!paths.witness().exists());
    let (ledger, recovery) =
        vigil_ledger::Ledger::open(dir.path(), vigil_ledger::LedgerConfig::default()).unwrap();
    assert!(recovery.recovered.is_none());
    assert!(recovery.unsigned_tail.is_none());
    ledger.close().unwrap();
    assert!(paths.witness().exists());
    let report = verify(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
}
