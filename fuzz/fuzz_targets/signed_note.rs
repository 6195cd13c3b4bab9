//! Signed notes, checkpoints, pruning records and keys: parsing never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_ledger::note::{Checkpoint, NoteVerifier, parse_note};
use vigil_ledger::PruneRecord;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_note(text);
    let _ = Checkpoint::parse(text);
    let _ = PruneRecord::parse_note(text);
    let _ = NoteVerifier::from_vkey(text);
});
