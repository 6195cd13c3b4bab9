//! JSON events: parsing never panics; what parses encodes canonically and decodes back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::{Event, Timestamp};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(event) = Event::from_json(text, Timestamp::default()) {
        let bytes = event.to_canonical();
        assert_eq!(Event::from_canonical(&bytes).unwrap(), event);
        let _ = event.to_json().to_string();
        let _ = event.to_nested_json().to_string();
    }
});
