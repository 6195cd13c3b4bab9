//! Parse + mask throughput per CPU-second, for a shared machine where wall-clock benchmarks
//! swing with other people's load: reads the lines of FILE into memory, parses each one ROUNDS
//! times with `Format::Auto` (masking on, as `vigil serve` and `vigil import` do) and divides
//! by the CPU time this thread got (`/proc/thread-self/schedstat`), not the wall time.
//! `cargo run --release -p vigil-parse --example parse_speed -- FILE [ROUNDS]`.

#[path = "common/speed.rs"]
mod speed;

fn main() {
    speed::run();
}
