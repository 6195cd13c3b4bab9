//! Every SigmaHQ rule in `rules/`, `rules-emerging-threats/` and `rules-threat-hunting/` loads
//! and compiles; at least 99% are supported. Unsupported ones are printed with their reasons.

mod common;

use vigil_detect::report::{Support, check_dir};
use vigil_detect::{CompileOptions, IssueKind, RuleSet};

#[test]
fn sigmahq_rules_are_supported() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut files = 0;
    let mut docs = Vec::new();
    let mut unsupported: Vec<String> = Vec::new();
    for (path, loaded) in common::load_trees(&corpus) {
        files += 1;
        for d in loaded {
            match d {
                Ok(doc) => docs.push(doc),
                Err(e) => unsupported.push(format!("{}: {}", path.display(), e.reason)),
            }
        }
    }
    assert_eq!(files, 3754, "the corpus should hold 3,754 rule files");
    let total = docs.len() + unsupported.len();
    let (set, issues) = RuleSet::compile(docs);
    let mut notes = 0;
    for i in &issues {
        match i.kind {
            IssueKind::Unsupported => unsupported.push(format!(
                "{}: {}",
                i.source.as_deref().unwrap_or("?"),
                i.reason
            )),
            IssueKind::Note => notes += 1,
        }
    }
    let supported = set.len();
    let ratio = supported as f64 / total as f64;
    eprintln!(
        "{supported} of {total} documents supported ({:.2}%), {notes} with notes; rule set stats (rules, alternatives, atoms, fields): {:?}",
        ratio * 100.0,
        set.stats()
    );
    for u in &unsupported {
        eprintln!("UNSUPPORTED {u}");
    }
    assert_eq!(supported + unsupported.len(), total);
    assert!(ratio >= 0.99, "only {:.2}% supported", ratio * 100.0);
}

#[test]
fn report_agrees_with_compile() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let dir = corpus.join("sigma").join("rules-threat-hunting");
    let report = check_dir(&dir, &CompileOptions::default());
    assert_eq!(report.files.len(), 140);
    let counted = report
        .files
        .iter()
        .flat_map(|f| &f.documents)
        .filter(|d| d.support == Support::Supported)
        .count();
    assert_eq!(counted, report.supported);
    // Rules whose logsource no source declares are not supported; of the others, ≥ 99 % are.
    let no_source = report
        .files
        .iter()
        .flat_map(|f| &f.documents)
        .filter(|d| {
            d.support == Support::Unsupported
                && d.reasons
                    .first()
                    .is_some_and(|r| r.starts_with("runs on no declared source"))
        })
        .count();
    let declared = report.supported + report.unsupported - no_source;
    assert!(
        report.supported as f64 >= 0.99 * declared as f64,
        "{} of {declared}",
        report.supported
    );
}

/// Damaged rule files (truncated anywhere, bytes replaced) load and compile without a panic.
#[test]
fn damaged_rules_never_panic() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let files = vigil_detect::report::rule_files(&corpus.join("sigma/rules-threat-hunting"));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut docs = Vec::new();
    for path in files.iter().take(60) {
        let text = std::fs::read(path).unwrap_or_default();
        for _ in 0..8 {
            let mut bytes = text.clone();
            if bytes.is_empty() {
                continue;
            }
            let cut = (next() as usize) % bytes.len();
            if next() % 2 == 0 {
                bytes.truncate(cut);
            } else {
                let junk = b":-|*'\"[]{}\n\t&!%@`#";
                for _ in 0..4 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = junk[(next() as usize) % junk.len()];
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            docs.extend(
                vigil_detect::load_str(&text, "damaged")
                    .into_iter()
                    .flatten(),
            );
        }
    }
    let (set, _) = RuleSet::compile(docs);
    let e = vigil_event::Event::new(vigil_event::Timestamp::default());
    let _ = set.matches(&e);
}
