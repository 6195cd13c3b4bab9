//! Canonical event bytes: decoding never panics, and what decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::Event;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = Event::from_canonical(data) {
        assert_eq!(event.to_canonical(), data);
    }
});
