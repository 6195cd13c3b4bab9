//! Compliance mapping files (`vigil report --mapping FILE`): parsing a hostile mapping never
//! panics, and what parses can be used to match an event.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::{Event, Timestamp};
use vigil_report::Mapping;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(mapping) = Mapping::parse(text) {
        let mut event = Event::new(Timestamp::from_secs(1_800_000_000));
        event.insert("event.category", "authentication");
        for alternatives in mapping.classes.values() {
            for alternative in alternatives {
                let _ = vigil_report::mapping::matches(alternative, &event);
            }
        }
    }
});
