//! The cloud and identity audit log parsers (Azure, Entra ID, GCP, Okta, Microsoft 365,
//! Kubernetes, GitHub, CloudTrail) on any JSON object: never panic, say which log they took the
//! record for consistently, and only add fields (every field of the record stays as it was,
//! so Sigma rules on the providers' own names still see them).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::{Event, Timestamp};
use vigil_parse::cloud;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(original) = Event::from_json(text, Timestamp::from_secs(0)) else { return };
    let mut event = original.clone();
    let recognised = cloud::recognise(&event);
    let log = cloud::enrich(&mut event);
    assert_eq!(log, recognised);
    match log {
        None => assert_eq!(event, original),
        Some(log) => {
            assert_eq!(event.get_str("event.dataset"), Some(log.dataset()));
            for (k, v) in original.fields() {
                if k != "event.dataset" {
                    assert_eq!(event.get(k), Some(v), "{k} changed");
                }
            }
        }
    }
    let bytes = event.to_canonical();
    assert_eq!(Event::from_canonical(&bytes).unwrap(), event);
});
