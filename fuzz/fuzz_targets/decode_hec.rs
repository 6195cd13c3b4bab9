//! The HEC decoders (`vigil_ingest::decode::{hec_events, hec_raw}`): never panic, whatever the
//! body; every event they return is valid (its canonical bytes decode back to it), and an
//! error names an event of the body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::{Event, Timestamp};
use vigil_ingest::decode::{DecodeError, HecRawMeta, hec_events, hec_raw};
use vigil_parse::ParseContext;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let ctx = ParseContext::new(Timestamp::from_secs(1_800_000_000), "fuzz");
    let events = if selector & 1 == 0 {
        match hec_events(body, &ctx) {
            Ok(events) => events,
            Err(DecodeError::HecEvent { index, .. }) => {
                assert!(index <= body.len());
                return;
            }
            Err(e) => panic!("a HEC body failed as something else: {e}"),
        }
    } else {
        let sourcetypes = [
            None,
            Some("syslog"),
            Some("access_combined"),
            Some("_json"),
            Some("cef"),
        ];
        let meta = HecRawMeta {
            sourcetype: sourcetypes[(selector as usize >> 1) % sourcetypes.len()]
                .map(str::to_owned),
            host: Some("h".into()),
            ..HecRawMeta::default()
        };
        hec_raw(body, &meta, &ctx)
    };
    for event in events {
        let bytes = event.to_canonical();
        assert_eq!(Event::from_canonical(&bytes).unwrap(), event);
    }
});
