//! The C2SP tlog-witness `add-checkpoint` request parser and the answers a client reads
//! (`vigil_respond::witness::protocol`, compiled in by path), and cosignature keys: nothing
//! panics, whatever the bytes, and what parses formats back to the same request.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_ledger::cosignature::CosignatureVerifier;

#[allow(dead_code)]
#[path = "../../crates/vigil-respond/src/witness/protocol.rs"]
mod protocol;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = protocol::parse_request(data) {
        let again = protocol::format_request(req.old, &req.proof, &req.note);
        assert_eq!(protocol::parse_request(again.as_bytes()).as_ref(), Ok(&req));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = protocol::parse_size(text);
    let _ = protocol::parse_cosignatures(text);
    let _ = CosignatureVerifier::from_vkey(text);
});
