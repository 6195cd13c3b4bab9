//! Python `HTTPHandler` records (form bodies) and `msg % args`: never panic; every record is a
//! valid event whose canonical bytes decode back to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::{Event, Timestamp};
use vigil_parse::ParseContext;
use vigil_parse::python_logging::{format_message, log_record};

fuzz_target!(|data: &[u8]| {
    let ctx = ParseContext::new(Timestamp::from_secs(1_800_000_000), "fuzz");
    let event = log_record(data, &ctx);
    let bytes = event.to_canonical();
    assert_eq!(Event::from_canonical(&bytes).unwrap(), event);
    if let Ok(text) = std::str::from_utf8(data)
        && let Some((msg, args)) = text.split_once('\n')
    {
        let _ = format_message(msg, args);
    }
});
