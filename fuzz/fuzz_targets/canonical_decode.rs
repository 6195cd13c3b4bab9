//! Canonical event bytes: decoding never panics, and what decodes re-encodes to the same bytes.
//! Peeking at one field (`vigil_event::peek`, the detector's undecoded check) never panics
//! either, and on bytes that decode it agrees with the decoded event.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::peek::{Peeked, peek};
use vigil_event::{Event, Value};

fuzz_target!(|data: &[u8]| {
    let _ = peek(data, "event.dataset");
    if let Ok(event) = Event::from_canonical(data) {
        assert_eq!(event.to_canonical(), data);
        for (key, value) in event.fields() {
            let want = match value {
                Value::Str(s) => Peeked::Str(s.as_str()),
                _ => Peeked::Other,
            };
            assert_eq!(peek(data, key), want);
        }
        if !event.contains("zzzz") {
            assert_eq!(peek(data, "zzzz"), Peeked::Absent);
        }
    }
});
