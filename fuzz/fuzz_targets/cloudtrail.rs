//! CloudTrail: cutting a delivery into records and parsing each never panics, and every record
//! cut from a delivery is itself one JSON object that parses without `parse_error`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::Timestamp;
use vigil_parse::{Format, ParseContext, parse_line};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ctx = ParseContext::new(Timestamp::from_secs(0), "fuzz");
    let _ = parse_line(data, Format::Auto, &ctx);
    if let Some(records) = vigil_parse::cloud::split_records(&text) {
        for r in records {
            let e = parse_line(r.as_bytes(), Format::Json, &ctx);
            if r.starts_with('{') {
                assert!(!e.has_tag(vigil_event::tag::PARSE_ERROR), "{r}");
            }
        }
    }
});
