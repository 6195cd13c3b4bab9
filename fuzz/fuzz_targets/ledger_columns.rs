//! The columns forms of an events block (compressions 2 and 3): decoding damaged or hostile
//! payloads never panics and never gives more than the bound; whatever the encoders accept
//! comes back byte for byte.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_ledger::columns;

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the bound (the header's raw_len), the rest is the payload.
    let (bound, payload) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])) * 32, rest),
        _ => return,
    };
    for decoded in [
        columns::decode(payload, bound),
        columns::decode_references(payload, bound),
    ]
    .into_iter()
    .flatten()
    {
        assert!(decoded.len() <= bound);
    }
    // As a framing of canonical events: what encodes decodes to the same bytes.
    if let Some(enc) = columns::encode_references(payload) {
        assert_eq!(
            columns::decode_references(&enc, payload.len()).as_deref(),
            Some(payload)
        );
    }
    if let Some(enc) = columns::encode(payload) {
        assert_eq!(columns::decode(&enc, payload.len()).as_deref(), Some(payload));
    }
});
