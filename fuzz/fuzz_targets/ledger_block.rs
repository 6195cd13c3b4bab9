//! Ledger block and record framing: parsing damaged or hostile files never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_ledger::format;

fuzz_target!(|data: &[u8]| {
    let _ = format::decode_segment_header(data);
    if let Ok(header) = format::decode_block_header(data) {
        let stored = header.stored_len() as usize;
        if data.len() >= stored {
            let (head, payload) = data[..stored].split_at(format::BLOCK_HEADER_LEN);
            let _ = format::check_block_crc(head, payload);
            if let Ok(raw) = format::block_raw_payload(&header, payload) {
                let _ = format::split_events(&raw, header.n_events);
            }
        }
    }
    let _ = format::decode_records(data);
    let _ = format::decode_tiles(data);
});
