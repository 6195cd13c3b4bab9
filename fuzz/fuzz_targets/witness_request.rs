//! The C2SP tlog-witness `add-checkpoint` request parser, the answers a client reads, and a
//! witness that knows one log: nothing panics, whatever the bytes.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vigil_ledger::cosignature::CosignatureVerifier;
use vigil_ledger::note::NoteSigner;
use vigil_respond::witness::Witness;
use vigil_respond::witness::client::Answer;
use vigil_respond::witness::protocol::{parse_cosignatures, parse_request, parse_size};

fn witness() -> &'static Witness {
    static W: OnceLock<Witness> = OnceLock::new();
    W.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vigil-fuzz-witness-{}", std::process::id()));
        let log = NoteSigner::generate("vigil/fuzz/0001").unwrap();
        Witness::open(&dir, &[log.verifier()]).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_request(data);
    let _ = witness().add_checkpoint(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_size(text);
    let _ = parse_cosignatures(text);
    let _ = Answer::from_parts(200, None, text);
    let _ = Answer::from_parts(409, Some("text/x.tlog.size"), text);
    let _ = CosignatureVerifier::from_vkey(text);
    let _ = witness().register(text);
});
