//! The Python client (`clients/python`) ships the OWASP vocabulary as a JSON table; it must be
//! the table this crate uses, so an event is classified the same whichever client sent it.

use vigil_client::owasp::{Level, SPECS};

#[test]
fn the_python_client_has_the_same_vocabulary() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../clients/python/src/vigil_logging/vocabulary.json"
    );
    let text = std::fs::read_to_string(path).expect("the Python client's vocabulary.json");
    let table: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let python: Vec<(String, String, String, String, String)> = table
        .iter()
        .map(|v| {
            let s = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("{k} in {v}"))
                    .to_owned()
            };
            (
                s("name"),
                s("level"),
                s("category"),
                s("type"),
                s("outcome"),
            )
        })
        .collect();
    let rust: Vec<(String, String, String, String, String)> = SPECS
        .iter()
        .map(|s| {
            let level = match s.level {
                Level::Info => "info",
                Level::Warn => "warn",
                Level::Critical => "critical",
            };
            (
                s.name.to_owned(),
                level.to_owned(),
                s.category.to_owned(),
                s.kind.to_owned(),
                s.outcome.to_owned(),
            )
        })
        .collect();
    assert_eq!(
        python, rust,
        "regenerate clients/python/src/vigil_logging/vocabulary.json from SPECS"
    );
}
