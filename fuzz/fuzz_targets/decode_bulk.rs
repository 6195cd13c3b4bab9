//! The Elasticsearch `_bulk` decoder (`vigil_ingest::decode::bulk`): never panics, whatever the
//! body; every document it returns is a valid event tagged with its index, and an error names
//! a line of the body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::{Event, Timestamp};
use vigil_ingest::decode::{BulkItem, DecodeError, bulk};
use vigil_parse::ParseContext;

fuzz_target!(|body: &[u8]| {
    let ctx = ParseContext::new(Timestamp::from_secs(1_800_000_000), "fuzz");
    match bulk(body, Some("dflt"), &ctx) {
        Ok(items) => {
            for item in items {
                if let BulkItem::Doc(_, index, event) = item {
                    assert_eq!(event.get_str("vigil.index"), Some(index.as_str()));
                    let bytes = event.to_canonical();
                    assert_eq!(Event::from_canonical(&bytes).unwrap(), *event);
                }
            }
        }
        Err(DecodeError::Bulk { line, .. }) => {
            assert!(line >= 1 && line <= body.split(|&b| b == b'\n').count());
        }
        Err(e) => panic!("a _bulk body failed as something else: {e}"),
    }
});
