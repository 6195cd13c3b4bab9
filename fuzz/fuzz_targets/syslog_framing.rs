//! Stream framing: never panics, never yields a message over the maximum, and loses no byte of
//! well-formed input whatever the chunking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_parse::framing::Framer;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else { return };
    let mut framer = Framer::new(100);
    let step = 1 + cut as usize;
    for chunk in stream.chunks(step) {
        framer.push(chunk);
        while let Some(frame) = framer.next_frame() {
            assert!(frame.bytes.len() <= 100);
        }
    }
    while let Some(frame) = framer.finish() {
        assert!(frame.bytes.len() <= 100);
    }
});
