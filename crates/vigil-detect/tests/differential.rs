//! The fast matcher (logsource dispatch, per-field literal automata, candidates chosen by their
//! trigger atoms) against the straightforward path (`RuleSet::matches_exhaustive`: every rule of
//! every logsource alternative the event belongs to evaluated), with every SigmaHQ rule of the
//! three trees loaded, on every event of the corpus's EVTX files and Winlogbeat JSON: the same
//! rules must match every event.

mod common;

use std::path::{Path, PathBuf};

use vigil_detect::{RuleSet, Scratch};
use vigil_event::Event;

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
}

fn corpus_events(corpus: &Path) -> Vec<Event> {
    let mut evtx = Vec::new();
    files(&corpus.join("evtx-attack-samples"), "evtx", &mut evtx);
    files(&corpus.join("sigma/regression_data"), "evtx", &mut evtx);
    evtx.sort();
    let mut out = Vec::new();
    for f in evtx {
        let bytes = std::fs::read(&f).unwrap_or_default();
        if let Ok(records) = vigil_parse::evtx::parse_file(bytes) {
            out.extend(records.into_iter().flatten());
        }
    }
    // Winlogbeat's ECS JSON: other field names, other channels.
    let mut json = Vec::new();
    files(&corpus.join("logprep-winlogbeat"), "jsonl", &mut json);
    json.sort();
    for f in json {
        for line in std::fs::read_to_string(&f).unwrap_or_default().lines() {
            if let Ok(e) = Event::from_json(line, vigil_event::Timestamp::default()) {
                out.push(e);
            }
        }
    }
    out
}

#[test]
fn fast_matcher_agrees_with_exhaustive_evaluation() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut docs = Vec::new();
    for (_, loaded) in common::load_trees(&corpus) {
        docs.extend(loaded.into_iter().flatten());
    }
    let (set, _) = RuleSet::compile(docs);
    let events = corpus_events(&corpus);
    assert!(events.len() > 2000, "only {} corpus events", events.len());
    let mut scratch = Scratch::new(&set);
    let (mut matches, mut differ) = (0usize, Vec::new());
    for (i, e) in events.iter().enumerate() {
        let fast = set.matches_with(e, &mut scratch).to_vec();
        let slow = set.matches_exhaustive(e);
        matches += slow.len();
        if fast != slow {
            differ.push(format!("event {i}: fast {fast:?}, exhaustive {slow:?}"));
        }
        if !slow.is_empty() && !set.may_match_canonical(&e.to_canonical()) {
            differ.push(format!(
                "event {i}: matches {slow:?} but was ruled out undecoded"
            ));
        }
    }
    eprintln!(
        "{} events, {matches} rule matches, {} differ",
        events.len(),
        differ.len()
    );
    // The check is only worth something if rules match: the corpus has hundreds of matches.
    assert!(matches > 300, "only {matches} matches");
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// The undecoded check (`RuleSet::may_match_canonical`, what lets the detector skip decoding
/// events no loaded rule's logsource admits) with only the Security-channel rules loaded, over
/// every corpus event: it rules out the events of other channels, and never an event a rule
/// matches (by the exhaustive path).
#[test]
fn events_ruled_out_undecoded_match_nothing() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let docs: Vec<_> =
        vigil_detect::report::load_dir(&corpus.join("sigma/rules/windows/builtin/security"))
            .into_iter()
            .flat_map(|(_, loaded)| loaded.into_iter().flatten())
            .collect();
    let (set, _) = RuleSet::compile(docs);
    assert!(set.len() > 50, "only {} rules", set.len());
    let events = corpus_events(&corpus);
    let (mut ruled_out, mut matched, mut wrong) = (0usize, 0usize, Vec::new());
    for (i, e) in events.iter().enumerate() {
        let slow = set.matches_exhaustive(e);
        matched += usize::from(!slow.is_empty());
        if !set.may_match_canonical(&e.to_canonical()) {
            ruled_out += 1;
            if !slow.is_empty() {
                wrong.push(format!("event {i}: matches {slow:?} but was ruled out"));
            }
        }
    }
    eprintln!(
        "{} events, {ruled_out} ruled out undecoded, {matched} matched",
        events.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        matched > 10,
        "only {matched} events matched: the check proves little"
    );
    assert!(
        ruled_out > events.len() / 4,
        "only {ruled_out} of {} events ruled out",
        events.len()
    );
}
