//! What the corpus tests share: finding the public test corpus (`../shared/corpus`, or
//! `$VIGIL_CORPUS`), and skipping loudly — or failing under `VIGIL_REQUIRE_CORPUS=1` (CI) —
//! when it is not there.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

/// The corpus directory, if it holds `README.md`.
pub fn corpus() -> Option<PathBuf> {
    corpus_with("README.md")
}

/// The corpus directory, if it holds `marker` (a file or a dataset's directory); otherwise
/// `None` after a `SKIP` line on standard error (past libtest's capture), or a failure
/// under `VIGIL_REQUIRE_CORPUS=1`.
pub fn corpus_with(marker: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        });
    if dir.join(marker).exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("VIGIL_REQUIRE_CORPUS").as_deref() != Ok("1"),
        "corpus not found at {} (no {marker}; VIGIL_REQUIRE_CORPUS=1)",
        dir.display()
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIP: corpus not found at {} (no {marker}); set VIGIL_CORPUS",
        dir.display()
    );
    None
}
