//! Events per second with every Windows rule of SigmaHQ's three main trees loaded, on events
//! parsed from the corpus's EVTX attack samples and regression cases.
//!
//! `cargo bench -p vigil-detect` (needs the corpus; `VIGIL_CORPUS` as for the tests).

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_detect::report::load_dir;
use vigil_detect::{Document, RuleSet, Scratch};
use vigil_event::Event;

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        });
    dir.join("sigma").is_dir().then_some(dir)
}

fn evtx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            evtx_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "evtx") {
            out.push(p);
        }
    }
}

fn windows_rules(corpus: &Path) -> Vec<Document> {
    let mut docs = Vec::new();
    for tree in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        for (_, loaded) in load_dir(&corpus.join("sigma").join(tree)) {
            for d in loaded.into_iter().flatten() {
                if d.meta().logsource.product.as_deref() == Some("windows") {
                    docs.push(d);
                }
            }
        }
    }
    docs
}

fn events(corpus: &Path) -> Vec<Event> {
    let mut files = Vec::new();
    evtx_files(&corpus.join("evtx-attack-samples"), &mut files);
    evtx_files(&corpus.join("sigma/regression_data"), &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        if let Ok(records) = vigil_parse::evtx::parse_file(bytes) {
            out.extend(records.into_iter().flatten());
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let Some(corpus) = corpus() else {
        eprintln!("SKIP: corpus not found; set VIGIL_CORPUS");
        return;
    };
    let docs = windows_rules(&corpus);
    let start = std::time::Instant::now();
    let (set, _) = RuleSet::compile(docs);
    eprintln!(
        "compiled {} Windows rules in {:.2?}; (rules, alternatives, atoms, fields) = {:?}",
        set.len(),
        start.elapsed(),
        set.stats()
    );
    let events = events(&corpus);
    let mut scratch = Scratch::new(&set);
    let hits: usize = events
        .iter()
        .map(|e| set.matches_with(e, &mut scratch).len())
        .sum();
    eprintln!("{} EVTX events, {hits} rule matches", events.len());

    let mut g = c.benchmark_group("sigma");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10);
    g.bench_function("windows_rules_on_evtx_events", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &events {
                n += set.matches_with(e, &mut scratch).len();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
