//! A detector partition's behaviour checkpoint as a new holder reads it from the cluster's
//! object store (`vigil_cluster::behaviour::format::decode`, then the behaviour state inside,
//! `vigil_detect::behaviour::persist::decode`): untrusted (anyone with rights on the bucket
//! can write one). Neither may panic or allocate beyond the input; a checkpoint that decodes
//! re-encodes to its own bytes.
//!
//! The checkpoint format is compiled in by path: it needs nothing, and linking all of
//! `vigil-cluster` would build the NATS client under the fuzzer's instrumentation for nothing.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/vigil-cluster/src/behaviour/format.rs"]
#[allow(dead_code, missing_docs)]
mod format;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = format::decode(data) {
        assert_eq!(format::encode(&c), data, "a checkpoint re-encodes to its own bytes");
        let _ = vigil_detect::behaviour::persist::decode(&c.state);
    }
    // The state format on its own too (most inputs fail the checkpoint's header).
    let _ = vigil_detect::behaviour::persist::decode(data);
});
