//! Hunting through files on every core: worker threads take the files in turn, parse them and
//! match each event against the single-event rules (the costly part); the calling thread takes
//! the results file by file in the order given, so the alert book and the correlation windows
//! see the events in exactly the order a one-thread hunt does, and the output is the same
//! whatever the number of threads.
//!
//! Only events that matched a rule travel from a worker to the caller, so memory stays near
//! what the files being parsed take, plus the (few) matching events of files finished ahead of
//! their turn.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::Result;
use vigil_detect::{RuleId, RuleSet, Scratch};
use vigil_event::{Event, dataset};

/// An event that matched at least one single-event rule.
pub struct Matched {
    /// Its number in the file (0-based, counting every event the file holds).
    pub index: u64,
    /// The event.
    pub event: Event,
    /// The rules it matched, in rule order.
    pub rules: Vec<RuleId>,
}

/// What one file gave.
pub struct FileResult {
    /// Events the file holds (Vigil's own alert events included: they keep their number but
    /// are never evidence).
    pub events: u64,
    /// Vigil's own alert events among them (skipped).
    pub own_alerts: u64,
    /// The events that matched, in file order.
    pub matched: Vec<Matched>,
}

/// Reads `files` on `threads` workers and calls `each(position, path, result)` for every file,
/// in the order of `files`. Stops at the first file that cannot be read (by that order) and
/// returns its error; `tick(n)` is called from the workers as events are parsed (for progress).
pub fn hunt_files(
    files: &[PathBuf],
    set: &RuleSet,
    threads: usize,
    tick: &(dyn Fn(u64) + Sync),
    mut each: impl FnMut(usize, &PathBuf, FileResult) -> Result<()>,
) -> Result<()> {
    let threads = threads.clamp(1, files.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Result<FileResult>)>();
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || {
                let mut scratch = Scratch::new(set);
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { return };
                    let result = one_file(path, set, &mut scratch, tick);
                    if tx.send((i, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // Results arrive in any order; they are used in the order of `files`.
        let mut waiting: BTreeMap<usize, Result<FileResult>> = BTreeMap::new();
        let mut turn = 0usize;
        let outcome = (|| {
            for (i, result) in rx.iter() {
                waiting.insert(i, result);
                while let Some(result) = waiting.remove(&turn) {
                    each(turn, &files[turn], result?)?;
                    turn += 1;
                }
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        outcome
    })
}

fn one_file(
    path: &Path,
    set: &RuleSet,
    scratch: &mut Scratch,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<FileResult> {
    let mut out = FileResult {
        events: 0,
        own_alerts: 0,
        matched: Vec::new(),
    };
    let mut unticked = 0u64;
    crate::import::for_each_event_in_file(path, |event| {
        let index = out.events;
        out.events += 1;
        unticked += 1;
        if unticked == 1024 {
            tick(unticked);
            unticked = 0;
        }
        if event.is_dataset(dataset::VIGIL_ALERT) {
            out.own_alerts += 1;
            return;
        }
        let rules = set.matches_with(&event, scratch);
        if !rules.is_empty() {
            let rules = rules.to_vec();
            out.matched.push(Matched {
                index,
                event,
                rules,
            });
        }
    })?;
    tick(unticked);
    Ok(out)
}
