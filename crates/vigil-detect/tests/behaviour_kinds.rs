//! The refusal of what Vigil does not understand (issue 18) against the public corpus: no
//! SigmaHQ, specification or Hayabusa rule is refused for a top-level key or a `kind`.

mod common;

use vigil_detect::report::load_dir;

#[test]
fn no_corpus_rule_is_refused_for_its_top_level_keys() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut docs = 0;
    let mut refused = Vec::new();
    let mut dirs: Vec<_> = common::RULE_TREES
        .iter()
        .map(|t| corpus.join("sigma").join(t))
        .collect();
    dirs.push(corpus.join("sigma-correlation"));
    for dir in dirs {
        for (path, results) in load_dir(&dir) {
            // The specification's examples 03–05 are fragments of a document (a `group-by` or
            // a `condition` alone), not rules; tests/correlation.rs expects them to fail.
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if ["03", "04", "05"]
                .iter()
                .any(|n| name == format!("correlation_spec_example_{n}.yml"))
            {
                continue;
            }
            for r in results {
                docs += 1;
                if let Err(e) = r
                    && (e.reason.contains("top-level key") || e.reason.contains("rule kind"))
                {
                    refused.push(format!("{}: {}", path.display(), e.reason));
                }
            }
        }
    }
    assert!(docs > 3_000, "only {docs} documents found");
    assert!(refused.is_empty(), "{refused:#?}");
}
