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
        "compiled {} Windows rules in {:.2?}; (rules, alternatives, atoms, fields) = {:?}; automata {} KiB",
        set.len(),
        start.elapsed(),
        set.stats(),
        set.automata_bytes() / 1024
    );
    let events = events(&corpus);
    let mut scratch = Scratch::new(&set);
    // The matches, and a checksum of which event matched which rule, to compare builds.
    let (mut hits, mut sum) = (0usize, 0xcbf2_9ce4_8422_2325u64);
    for (i, e) in events.iter().enumerate() {
        for r in set.matches_with(e, &mut scratch) {
            hits += 1;
            for x in [i as u64, u64::from(r.0)] {
                sum = (sum ^ x).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    eprintln!(
        "{} EVTX events, {hits} rule matches (checksum {sum:016x})",
        events.len()
    );

    // The machine may be shared: besides criterion's wall-clock figures, the events per
    // second of CPU time this process spent (from /proc, Linux only) over a fixed number of
    // passes, which other processes on the machine disturb much less.
    if let Some(before) = cpu_seconds() {
        let passes = 20;
        let wall = std::time::Instant::now();
        for _ in 0..passes {
            for e in &events {
                std::hint::black_box(set.matches_with(e, &mut scratch).len());
            }
        }
        if let Some(after) = cpu_seconds() {
            let n = (passes * events.len()) as f64;
            eprintln!(
                "{passes} passes: {:.0} events per CPU second ({:.0} per wall-clock second)",
                n / (after - before).max(1e-9),
                n / wall.elapsed().as_secs_f64()
            );
        }
    }

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

/// User + system CPU time of this process, from `/proc/self/stat` (clock ticks of 1/100 s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

criterion_group!(benches, bench);
criterion_main!(benches);
