//! Threat-intelligence feeds, enrichment tables and GeoIP databases from arbitrary bytes: every
//! reader either refuses with a reason or gives bounded output; nothing panics. What a reader
//! accepts is matched against an event, as ingest would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_enrich::feed::{self, Format};
use vigil_enrich::{IntelSet, Table};

fuzz_target!(|data: &[u8]| {
    for format in [Format::Plain, Format::Csv, Format::Stix, Format::Misp] {
        if let Ok(parsed) = feed::parse(format, data, "fuzz", 1000) {
            assert!(parsed.indicators.len() <= 1000);
            let set = IntelSet::new(parsed.indicators);
            let mut e = vigil_event::Event::new(vigil_event::Timestamp::from_secs(0));
            e.insert("source.ip", "10.1.2.3");
            e.insert("dns.question.name", "a.b.example");
            e.insert("url.full", "http://a.b.example/x");
            let _ = set.matches(&e);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = feed::stix_pattern(text);
    }
    if let Ok(t) = Table::parse(data, 1000) {
        assert!(t.len() <= 1000);
    }
    let _ = vigil_enrich::geo::GeoDb::open(data.to_vec()).map(|db| db.lookup("10.1.2.3".parse().unwrap()));
});
