//! Live Windows JSON (Winlogbeat, NXLog, Fluent Bit, EVTX rendered as JSON): any document
//! parses without panicking, and an event read as a Windows event never carries a field or
//! dataset of Vigil's own that the input claimed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::Timestamp;
use vigil_parse::{Format, ParseContext, parse_line};

fuzz_target!(|data: &[u8]| {
    let ctx = ParseContext::new(Timestamp::from_secs(0), "fuzz");
    // Steer the fuzzer at the shapes: prefix a Winlogbeat or EVTX-JSON opening when the input
    // is not JSON itself.
    let text = String::from_utf8_lossy(data);
    for line in [
        text.to_string(),
        format!("{{\"winlog\":{{\"channel\":\"Security\",\"event_id\":4624,\"event_data\":{text}}}}}"),
        format!("{{\"Event\":{{\"System\":{{\"EventID\":1}},\"EventData\":{text}}}}}"),
    ] {
        let e = parse_line(line.as_bytes(), Format::Json, &ctx);
        if e.get_str("vigil.parser") == Some("winlog") {
            for (name, _) in e.fields() {
                assert!(
                    !name.starts_with("vigil.")
                        || matches!(
                            name,
                            "vigil.source" | "vigil.received" | "vigil.parser" | "vigil.redacted"
                        ),
                    "{name}"
                );
            }
            assert!(
                !e.get_str("event.dataset")
                    .is_some_and(vigil_parse::reserved::is_reserved_dataset)
            );
        }
    }
});
