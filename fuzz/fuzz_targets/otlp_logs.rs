//! OTLP logs requests, protobuf and OTLP/JSON (the first byte picks): decoding never panics,
//! and every event it gives is valid (its canonical bytes decode back to it).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::{Event, Timestamp};
use vigil_parse::ParseContext;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let ctx = ParseContext::new(Timestamp::from_secs(1_800_000_000), "fuzz");
    let decoded = if selector % 2 == 0 {
        vigil_otlp::decode_protobuf(body, &ctx)
    } else {
        vigil_otlp::decode_json(body, &ctx)
    };
    if let Ok(decoded) = decoded {
        for event in decoded.events {
            let bytes = event.to_canonical();
            assert_eq!(Event::from_canonical(&bytes).unwrap(), event);
        }
    }
});
