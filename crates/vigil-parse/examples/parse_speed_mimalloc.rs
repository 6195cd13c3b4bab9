//! `parse_speed` with mimalloc as the global allocator, as the `vigil` binary has it: the same
//! measurement, so that the allocator's share is seen alone (the library itself never picks an
//! allocator). `cargo run --release -p vigil-parse --example parse_speed_mimalloc -- FILE [ROUNDS]`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/speed.rs"]
mod speed;

fn main() {
    speed::run();
}
