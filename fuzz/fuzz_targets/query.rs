//! The query language: parsing never panics, errors point inside the query, and whatever parses
//! runs over a few events without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::{Event, Timestamp};
use vigil_query::{Limits, parse, run};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse(text) {
        Err(e) => assert!(e.column >= 1 && e.column <= text.chars().count() + 1),
        Ok(pipeline) => {
            let events = (0..3u64).map(|i| {
                let mut e = Event::from_json(
                    r#"{"message":"Failed password for root","source.ip":"203.0.113.5","http.response.status_code":404,"user.name":"bob"}"#,
                    Timestamp::from_secs(i as i64 * 60),
                )
                .unwrap();
                e.insert("n", i as i64);
                (i, e)
            });
            let _ = run(&pipeline, events, Limits { from: None, to: None, max_rows: 10, now: Timestamp::from_secs(1000) });
        }
    }
});
