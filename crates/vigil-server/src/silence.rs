//! The silence watch: every source's cadence is learned from the events it sends (the gaps
//! between them, by receive time), and a source quiet for longer than `factor` × its usual
//! longest gap — and at least `[silence] min` — raises a "Source went silent" alert (PCI DSS
//! 10.7.2: failures of security controls detected and alerted; attackers blind a SIEM by
//! stopping what feeds it). One alert per silence: the source sending again ends it.
//!
//! It follows the ledger (durable events only), starting [`LEARN_EVENTS`] before its end so a
//! restart knows the cadences again at once. Vigil's own events are not a source here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use vigil_event::{Event, Timestamp};
use vigil_ledger::{Ledger, LedgerReader};
use vigil_report::cadence::Cadence;

use crate::detect::{DetectService, QueryRule};

/// Events read back at start to learn the cadences again.
pub const LEARN_EVENTS: u64 = 200_000;
/// Sources tracked at most (more are not watched; the report counts them).
pub const MAX_SOURCES: usize = 10_000;
/// The alert's rule title (and id).
pub const RULE: &str = "Source went silent";
/// Silences alerted at most per second (the rest wait for the next tick): a flood of names
/// that each send a few events cannot turn into a burst of alerts.
pub const MAX_ALERTS_PER_TICK: usize = 20;

/// What the watch knows.
struct Watch {
    reader: Option<LedgerReader>,
    next: Option<u64>,
    sources: HashMap<String, (Cadence, bool)>,
}

/// The time a source sent an event: when Vigil received it, else its own timestamp.
fn received(event: &Event) -> i64 {
    event
        .get_str("vigil.received")
        .and_then(|t| Timestamp::parse(t).ok())
        .unwrap_or_else(|| event.timestamp())
        .as_nanos()
}

impl Watch {
    /// Reads what the ledger gained since the last call.
    fn read(&mut self, ledger: &Ledger) -> Result<(), String> {
        if self.reader.is_none() {
            self.reader = Some(ledger.reader().map_err(|e| e.to_string())?);
        }
        let reader = self.reader.as_mut().expect("set above");
        reader.refresh().map_err(|e| e.to_string())?;
        let end = reader.end_seq();
        let next = *self
            .next
            .get_or_insert(end.saturating_sub(LEARN_EVENTS).max(reader.first_seq()));
        let sources = &mut self.sources;
        reader
            .for_each_raw(next..end, |_, bytes| {
                if let Ok(event) = Event::from_canonical(bytes)
                    && event.get_str("vigil.source") != Some("vigil")
                {
                    let name = vigil_report::tally::source_of(&event);
                    let known = sources.len();
                    if let Some((cadence, alerted)) = match sources.get_mut(&name) {
                        Some(s) => Some(s),
                        None if known < MAX_SOURCES => Some(sources.entry(name).or_default()),
                        None => None,
                    } {
                        cadence.observe(received(&event));
                        *alerted = false;
                    }
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        self.next = Some(end);
        Ok(())
    }

    /// The sources silent at `now` not alerted yet (marked alerted), at most
    /// [`MAX_ALERTS_PER_TICK`]. Silence is counted from `started` at the earliest: while this
    /// server was down, nobody could send to it.
    fn newly_silent(
        &mut self,
        now: i64,
        started: i64,
        factor: u64,
        min_secs: u64,
    ) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (name, (cadence, alerted)) in &mut self.sources {
            if *alerted {
                continue;
            }
            let mut since_start = cadence.clone();
            since_start.last = since_start.last.max(started);
            if let Some(quiet) = since_start.silent_at(now, factor, min_secs) {
                *alerted = true;
                out.push((name.clone(), quiet));
                if out.len() >= MAX_ALERTS_PER_TICK {
                    break;
                }
            }
        }
        out.sort();
        out
    }
}

/// Runs the watch until `stop`.
pub async fn run(
    ledger: Ledger,
    detect: Arc<DetectService>,
    settings: vigil_config::SilenceSection,
    mut stop: watch::Receiver<bool>,
) {
    let watch = Arc::new(Mutex::new(Watch {
        reader: None,
        next: None,
        sources: HashMap::new(),
    }));
    let started = Timestamp::now().as_nanos();
    let min_secs = settings.min.0.as_secs().max(1);
    let factor = settings.factor.max(1);
    let rule = QueryRule {
        name: RULE.into(),
        query: "(built in: [silence])".into(),
        every: Duration::from_secs(1),
        window: settings.min.0,
        level: vigil_detect::alert::Level::High,
        tags: vec!["attack.defense_evasion".into(), "attack.t1562.006".into()],
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let (watch, ledger, detect, rule) = (
            Arc::clone(&watch),
            ledger.clone(),
            Arc::clone(&detect),
            rule.clone(),
        );
        let done = tokio::task::spawn_blocking(move || {
            let mut watch = watch.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = watch.read(&ledger) {
                tracing::warn!("silence watch: {e}");
                return;
            }
            let silent = watch.newly_silent(Timestamp::now().as_nanos(), started, factor, min_secs);
            drop(watch);
            if !silent.is_empty() {
                for (source, quiet) in &silent {
                    tracing::warn!("source {source} went silent: nothing for {quiet} s");
                }
                detect.raise_query_rule(
                    &rule,
                    silent
                        .into_iter()
                        .map(|(source, _)| vec![("source".to_owned(), source)])
                        .collect(),
                );
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!("silence watch: {e}");
        }
    }
}
