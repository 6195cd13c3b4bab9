//! The measurement shared by `parse_speed` and `parse_speed_mimalloc`.

use vigil_event::Timestamp;
use vigil_parse::{Format, ParseContext, parse_line};

/// Nanoseconds this thread has run on a CPU.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Measures the file named on the command line (see `parse_speed.rs`).
pub fn run() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: parse_speed FILE [ROUNDS]");
    let rounds: usize = args.next().map_or(5, |r| r.parse().expect("ROUNDS"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let ctx = ParseContext::new(
        Timestamp::parse("2026-11-22T12:00:00Z").expect("time"),
        "speed",
    );
    // Warm-up (lazy regexes, allocator).
    for line in lines.iter().take(1000) {
        std::hint::black_box(parse_line(line.as_bytes(), Format::Auto, &ctx));
    }
    let (cpu0, wall0) = (cpu_ns(), std::time::Instant::now());
    for _ in 0..rounds {
        for line in &lines {
            std::hint::black_box(parse_line(line.as_bytes(), Format::Auto, &ctx));
        }
    }
    let cpu = (cpu_ns() - cpu0) as f64 / 1e9;
    let wall = wall0.elapsed().as_secs_f64();
    let n = (lines.len() * rounds) as f64;
    println!(
        "{path}: {} lines x {rounds}: {:.0} lines per CPU-second ({:.0} per wall second, CPU {cpu:.2} s of {wall:.2} s)",
        lines.len(),
        n / cpu,
        n / wall
    );
}
