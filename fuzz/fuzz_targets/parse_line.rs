//! Every line parser (the first byte picks the format): never panics; every result is a valid
//! event whose canonical bytes decode back to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::{Event, Timestamp};
use vigil_parse::{Format, ParseContext, parse_line};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, line)) = data.split_first() else { return };
    let format = Format::ALL[selector as usize % Format::ALL.len()];
    let mut ctx = ParseContext::new(Timestamp::from_secs(1_800_000_000), "fuzz");
    ctx.peer = Some("127.0.0.1".parse().unwrap());
    let event = parse_line(line, format, &ctx);
    let bytes = event.to_canonical();
    assert_eq!(Event::from_canonical(&bytes).unwrap(), event);
});
