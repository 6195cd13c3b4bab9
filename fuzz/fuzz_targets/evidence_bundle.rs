//! Evidence bundles from someone else (`vigil evidence verify DIR`): reading and verifying a
//! hostile bundle never panics. The input is split at 0xFF bytes into the bundle's files.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_ledger::evidence::Bundle;

const FILES: [&str; 7] = [
    "manifest.json",
    "events.ndjson",
    "proofs.json",
    "checkpoint.txt",
    "latest-checkpoint.txt",
    "consistency.json",
    "vkey.txt",
];

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("vigil-fuzz-bundle-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut parts = data.split(|&b| b == 0xFF);
    for name in FILES {
        let _ = std::fs::write(dir.join(name), parts.next().unwrap_or_default());
    }
    if let Ok(bundle) = Bundle::read_from(&dir) {
        let _ = bundle.verify();
    }
});
