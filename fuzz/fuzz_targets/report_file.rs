//! Report files (`vigil report verify FILE`, JSON or HTML, from anyone): checking a hostile
//! file never panics, and a file that checks states a digest its content hashes to.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(claims) = vigil_report::signature::check(data) {
        assert_eq!(claims.digest.len(), 64);
        let _ = claims.note_text(0);
    }
});
