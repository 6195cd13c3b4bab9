//! EVTX import: a damaged or hostile .evtx file never panics the importer.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"ElfFile\0".to_vec();
    bytes.extend_from_slice(data);
    if let Ok(records) = vigil_parse::evtx::parse_file(bytes) {
        for record in records.into_iter().flatten() {
            let _ = record.to_canonical();
        }
    }
});
