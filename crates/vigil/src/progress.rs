//! Progress on standard error for long CLI work (`vigil hunt`, `vigil search`): drawn only when
//! standard error is a terminal, never on standard output, nothing at all in pipes and scripts.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether progress is shown: standard error is a terminal.
fn shown() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar over `total` items, e.g. `events`, with `what` doing them (`hunting`).
pub fn bar(total: u64, what: &str, items: &str) -> ProgressBar {
    if !shown() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} {items} ({{per_sec}}, {{eta}} left) {{msg}}"
        ))
        .expect("static template")
        .progress_chars("=> "),
    );
    bar
}

/// A counter of items whose total is not known, with `what` doing them.
pub fn counter(what: &str, items: &str) -> ProgressBar {
    if !shown() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{msg}}: {{pos}} {items} ({{per_sec}})"
        ))
        .expect("static template"),
    );
    bar
}

/// A spinner with the elapsed time, ticking by itself while `what` runs.
pub fn spinner(what: &str) -> ProgressBar {
    if !shown() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} {what} ({{elapsed}})"))
            .expect("static template"),
    );
    // Drawn at once: a search that ends before the first tick still showed what it did.
    bar.tick();
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}
