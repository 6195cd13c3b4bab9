//! What the detector's undecoded check saves per event: syslog sshd lines parsed the way the
//! listener parses them, encoded as the ledger stores them, then per event either decoded and
//! run through the rule set (what the detector did for every event) or first checked with
//! `RuleSet::may_match_canonical` and decoded only when it says so. The rules are the shape
//! of Vigil's bundled self-rules (`product: vigil, service: audit`), which no sshd line can
//! match. Thread CPU time (`/proc/thread-self/schedstat`).
//!
//! ```text
//! cargo run --release -p vigil-detect --example undecoded -- [EVENTS]
//! ```

use std::time::Duration;

use vigil_detect::{Evaluator, RuleSet};
use vigil_event::{Event, Timestamp};

const RULES: &str = "title: Vigil login failed\nid: 4f1d2c3b-7a6e-4b0a-9c1d-76696769c001\nname: vigil_login_failure\nlogsource: {product: vigil, service: audit}\ndetection:\n    selection:\n        event.dataset: vigil.audit\n        event.action: login_failure\n    condition: selection\nlevel: informational\n---\ntitle: Brute force against Vigil's login\nid: 4f1d2c3b-7a6e-4b0a-9c1d-76696769c002\ncorrelation:\n    type: event_count\n    rules: [vigil_login_failure]\n    group-by: [source.ip]\n    timespan: 10m\n    condition: {gte: 5}\nlevel: high\n";

fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    )
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let docs = vigil_detect::rule::load_str(RULES, "self.yml")
        .into_iter()
        .flatten()
        .collect();
    let (set, issues) = RuleSet::compile(docs);
    assert!(issues.is_empty(), "{issues:?}");
    let ctx = vigil_parse::ParseContext::new(Timestamp::from_secs(1_800_000_000), "tcp");
    let stored: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let line = format!(
                "<38>Dec  7 18:00:{:02} bastion sshd[{i}]: Failed password for invalid user u{i} from 203.0.113.{} port {i} ssh2",
                i % 60,
                i % 250
            );
            vigil_parse::parse_line(line.as_bytes(), vigil_parse::Format::Auto, &ctx).to_canonical()
        })
        .collect();
    for round in 0..3 {
        let mut evaluator = Evaluator::new(&set, vigil_detect::Limits::default());
        let t0 = thread_cpu();
        let mut raised = 0;
        for raw in &stored {
            if let Ok(event) = Event::from_canonical(raw) {
                raised += evaluator.evaluate(&set, &event).len();
            }
        }
        let t1 = thread_cpu();
        let mut evaluator = Evaluator::new(&set, vigil_detect::Limits::default());
        let mut decoded = 0;
        for raw in &stored {
            if set.may_match_canonical(raw)
                && let Ok(event) = Event::from_canonical(raw)
            {
                decoded += 1;
                raised += evaluator.evaluate(&set, &event).len();
            }
        }
        let t2 = thread_cpu();
        assert_eq!(raised, 0);
        let per_m = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        println!(
            "round {round}: {n} events; decode + evaluate every one {:.3} CPU-s per million; check undecoded first {:.3} CPU-s per million ({decoded} decoded)",
            per_m(t1 - t0),
            per_m(t2 - t1)
        );
    }
}
