//! Shared helpers for the corpus tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

use vigil_detect::report::load_dir;
use vigil_detect::{Document, LoadError};

/// The corpus directory (`VIGIL_CORPUS`, default `../../../shared/corpus` from the crate), or
/// `None` with a SKIP message; with `VIGIL_REQUIRE_CORPUS=1` a missing corpus fails.
pub fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        });
    if dir.join("sigma").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("VIGIL_REQUIRE_CORPUS").as_deref() != Ok("1"),
        "corpus not found at {} (VIGIL_REQUIRE_CORPUS=1)",
        dir.display()
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIP: corpus not found at {}; set VIGIL_CORPUS",
        dir.display()
    );
    None
}

/// The three SigmaHQ rule trees the project targets.
pub const RULE_TREES: [&str; 3] = ["rules", "rules-emerging-threats", "rules-threat-hunting"];

/// Every document of every rule file in the three trees, with load errors kept.
pub fn load_trees(corpus: &std::path::Path) -> Vec<(PathBuf, Vec<Result<Document, LoadError>>)> {
    let mut out = Vec::new();
    for t in RULE_TREES {
        out.extend(load_dir(&corpus.join("sigma").join(t)));
    }
    out
}
