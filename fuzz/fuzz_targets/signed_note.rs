//! Signed notes, checkpoints, pruning records, recovery records, key rotations and keys: parsing
//! never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_ledger::PruneRecord;
use vigil_ledger::integrity::RecoveryRecord;
use vigil_ledger::note::{Checkpoint, NoteVerifier, parse_note};
use vigil_ledger::rotation::KeyRotation;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_note(text);
    if let Ok(checkpoint) = Checkpoint::parse(text) {
        let _ = vigil_ledger::integrity::stated_recoveries(&checkpoint);
    }
    let _ = PruneRecord::parse_note(text);
    let _ = RecoveryRecord::parse(text, text);
    let _ = KeyRotation::parse(text);
    let _ = NoteVerifier::from_vkey(text);
});
