//! The cluster's stream message decoder (`vigil_cluster::codec::decode`): a message read from
//! JetStream is untrusted (anyone with publish rights on the subject can write one). It must
//! never panic or allocate beyond the message, and what decodes re-encodes to the same bytes.
//! `split` (the detector's undecoded pass) accepts every message `decode` accepts, with one
//! part per event.
//!
//! The codec module is compiled in by path: it needs only `vigil-event`, and linking all of
//! `vigil-cluster` would build the NATS client under the fuzzer's instrumentation for nothing.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/vigil-cluster/src/codec.rs"]
#[allow(dead_code, missing_docs)]
mod codec;

fuzz_target!(|data: &[u8]| {
    let parts = codec::split(data);
    if let Ok(events) = codec::decode(data) {
        assert_eq!(parts.map(|p| p.len()), Ok(events.len()));
        let again = codec::encode(&events, usize::MAX);
        if events.is_empty() {
            assert!(again.is_empty());
        } else {
            assert_eq!(again.len(), 1);
            assert_eq!(again[0], data, "a decoded message re-encodes to its own bytes");
        }
    }
});
