//! Zeek TSV: any sequence of header and record lines gives one event per record line, never
//! panics, and a record that cannot be read is a `parse_error` event.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::Timestamp;
use vigil_parse::ParseContext;
use vigil_parse::zeek_tsv::ZeekTsv;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ctx = ParseContext::new(Timestamp::from_secs(0), "fuzz");
    let mut reader = ZeekTsv::new();
    for line in text.lines() {
        let event = reader.line(line, &ctx);
        // A line's trailing CR is part of its line break (CRLF files): "\r" alone is blank.
        let content = line.trim_end_matches(['\r', '\n']);
        let is_record = !content.is_empty() && !content.starts_with('#');
        assert_eq!(event.is_some(), is_record, "{line:?}");
    }
});
