//! The silence watch: every source's cadence is learned from the events it sends (the gaps
//! between them, by receive time), and a source quiet for longer than `factor` × its usual
//! longest gap — and at least `[silence] min` — raises a "Source went silent" alert (PCI DSS
//! 10.7.2: failures of security controls detected and alerted; attackers blind a SIEM by
//! stopping what feeds it). One alert per silence: the source sending again ends it.
//!
//! It follows the ledger (durable events only), starting [`LEARN_EVENTS`] before its end so a
//! restart knows the cadences again at once. Vigil's own events are not a source here.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use vigil_event::{Event, Timestamp, field};
use vigil_ledger::{Ledger, LedgerReader};
use vigil_report::cadence::Cadence;

use crate::detect::{DetectService, QueryRule};

/// Events read back at start to learn the cadences again.
pub const LEARN_EVENTS: u64 = 200_000;
/// Sources tracked at most; a new one past it makes room by [`Watch::evict`].
pub const MAX_SOURCES: usize = 10_000;
/// The alert's rule title (and id).
pub const RULE: &str = "Source went silent";
/// Silences alerted at most per second (the rest wait for the next tick): a flood of names
/// that each send a few events cannot turn into a burst of alerts.
pub const MAX_ALERTS_PER_TICK: usize = 20;
/// Sources (host names) tracked per sender: a relay forwarding for many hosts is one sender,
/// so this is generous; past it a sender's new names are not tracked (counted as evicted), so
/// one sender's made-up host names cannot crowd out other senders' sources.
pub const MAX_SOURCES_PER_SENDER: usize = 1_000;

/// What the watch knows.
struct Watch {
    reader: Option<LedgerReader>,
    next: Option<u64>,
    sources: HashMap<String, (Cadence, bool)>,
    /// When each tracked source was first seen (ns): how long a source has been sending
    /// decides, before its event count, what is evicted last.
    first_seen: HashMap<String, i64>,
    /// Tracked sources per sender (the part of a source name after its last `@`).
    per_sender: HashMap<String, usize>,
    /// Sources evicted since start.
    evicted: u64,
}

impl crate::detect::DetectProgress {
    /// The silence watch's samples for `/metrics`: `(name, type, help, value)`.
    pub fn silence_samples(&self) -> [(&'static str, &'static str, &'static str, u64); 2] {
        [
            (
                "vigil_silence_sources",
                "gauge",
                "Sources whose cadence the silence watch tracks (sender and host name).",
                self.silence_sources.load(Ordering::Relaxed),
            ),
            (
                "vigil_silence_sources_evicted_total",
                "counter",
                "Sources the silence watch stopped tracking to stay under its cap (least useful first: not yet learned, fewest events, longest quiet).",
                self.silence_evicted.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// The sender part of a source name (`HOST@SENDER`): after its last `@`, or the whole name.
fn sender_of(source: &str) -> &str {
    source.rsplit_once('@').map_or(source, |(_, sender)| sender)
}

/// The time a source sent an event: when Vigil received it, else its own timestamp.
fn received(event: &Event) -> i64 {
    event
        .get_str("vigil.received")
        .and_then(|t| Timestamp::parse(t).ok())
        .unwrap_or_else(|| event.timestamp())
        .as_nanos()
}

/// The source an event stored as `bytes` (canonical) counts for and when it was received, or
/// `None` for Vigil's own events and bytes that do not decode.
fn seen(bytes: &[u8]) -> Option<(String, i64)> {
    if let Some(fast) = peek_seen(bytes) {
        return fast;
    }
    let event = Event::from_canonical(bytes).ok()?;
    (event.get_str(field::VIGIL_SOURCE) != Some(vigil_report::tally::OWN_SOURCE))
        .then(|| (vigil_report::tally::source_of(&event), received(&event)))
}

/// [`seen`] read from the four fields it needs in the canonical bytes, without decoding the
/// event (which the watch did for every event stored, about a fifth of the CPU of a syslog
/// stream: `bench/syslog-cpu`). `None` when the peek cannot tell for sure — a field that is
/// not text, a receive time that does not parse, bytes the walk cannot read — and the caller
/// decodes. The peek does not validate the rest of the event: the ledger's events are canonical
/// bytes written by Vigil and checked by their block's checksum when read.
fn peek_seen(bytes: &[u8]) -> Option<Option<(String, i64)>> {
    use vigil_event::peek::{Peeked, peek};
    let text = |key: &str| match peek(bytes, key) {
        Peeked::Absent => Some(None),
        Peeked::Str(s) => Some(Some(s)),
        Peeked::Other => None,
    };
    let source = text(field::VIGIL_SOURCE)?;
    if source == Some(vigil_report::tally::OWN_SOURCE) {
        return Some(None);
    }
    let sender = text(field::VIGIL_SENDER)?;
    let host = text(field::HOST_NAME)?;
    let t = match text(field::VIGIL_RECEIVED)? {
        Some(t) => Timestamp::parse(t).ok()?.as_nanos(),
        // The event's own time: the 8 bytes after the version byte (big-endian nanoseconds).
        None => i64::from_be_bytes(bytes.get(1..9)?.try_into().ok()?),
    };
    let name = vigil_report::tally::source_from(sender, source, host);
    Some(Some((name, t)))
}

impl Watch {
    /// Reads what the ledger gained since the last call.
    fn read(&mut self, ledger: &Ledger) -> Result<(), String> {
        let mut reader = match self.reader.take() {
            Some(r) => r,
            None => ledger.reader().map_err(|e| e.to_string())?,
        };
        let read = self.read_from(&mut reader);
        self.reader = Some(reader);
        read
    }

    fn read_from(&mut self, reader: &mut LedgerReader) -> Result<(), String> {
        reader.refresh().map_err(|e| e.to_string())?;
        let end = reader.end_seq();
        let next = *self
            .next
            .get_or_insert(end.saturating_sub(LEARN_EVENTS).max(reader.first_seq()));
        reader
            .for_each_raw(next..end, |_, bytes| {
                if let Some((name, t)) = seen(bytes) {
                    self.observe(name, t, MAX_SOURCES);
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        self.next = Some(end);
        Ok(())
    }

    /// Counts an event of `name` received at `t` (ns), tracking at most `cap` sources.
    fn observe(&mut self, name: String, t: i64, cap: usize) {
        if let Some((cadence, alerted)) = self.sources.get_mut(&name) {
            cadence.observe(t);
            *alerted = false;
            return;
        }
        let sender = sender_of(&name).to_owned();
        if self.per_sender.get(&sender).copied().unwrap_or(0) >= MAX_SOURCES_PER_SENDER.min(cap) {
            self.evicted += 1;
            return;
        }
        if self.sources.len() >= cap {
            self.evict(cap);
        }
        *self.per_sender.entry(sender).or_default() += 1;
        self.first_seen.insert(name.clone(), t);
        self.sources.entry(name).or_default().0.observe(t);
    }

    /// Makes room for new sources: drops a tenth of `cap`, those that matter least first —
    /// sources whose cadence is not learned yet (they cannot alert, and a flood of made-up
    /// names is all of this kind), then those with the fewest events (by order of magnitude),
    /// then the longest quiet. A source that sends steadily is never crowded out by names that
    /// each send a few events. Counted in `vigil_silence_sources_evicted_total`; amortized
    /// O(log n) per new source.
    fn evict(&mut self, cap: usize) {
        let n = (cap / 10).max(1);
        let mut order: Vec<((bool, u32, u32, i64), String)> = self
            .sources
            .iter()
            .map(|(name, (c, _))| {
                let learned = c.gap_quantile(0.99).is_some();
                // Seconds between first and last event, by order of magnitude: names made up
                // for a flood are young; a real source has been sending for days.
                let first = self.first_seen.get(name).copied().unwrap_or(c.last);
                let span = ((c.last - first).max(0) / 1_000_000_000) as u64;
                let key = (learned, (span + 1).ilog2(), c.events.max(1).ilog2(), c.last);
                (key, name.clone())
            })
            .collect();
        let n = n.min(order.len());
        if n == 0 {
            return;
        }
        order.select_nth_unstable(n - 1);
        for (_, name) in order.into_iter().take(n) {
            self.sources.remove(&name);
            self.first_seen.remove(&name);
            let sender = sender_of(&name);
            if let Some(count) = self.per_sender.get_mut(sender) {
                *count -= 1;
                if *count == 0 {
                    self.per_sender.remove(sender);
                }
            }
        }
        self.evicted += n as u64;
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

/// Spawns the watch when detection runs and `[silence]` is on.
pub(crate) fn spawn(
    config: &crate::ServerConfig,
    core: &crate::topology::Core,
    ledger: &Ledger,
    t: &mut crate::topology::Tasks,
) {
    if let Some(detect) = &core.detect
        && config.settings.silence.enabled
    {
        t.tasks.spawn(run(
            ledger.clone(),
            Arc::clone(detect),
            config.settings.silence.clone(),
            t.stop_rx.clone(),
        ));
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
        first_seen: HashMap::new(),
        per_sender: HashMap::new(),
        evicted: 0,
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
            let progress = &detect.progress;
            progress
                .silence_sources
                .store(watch.sources.len() as u64, Ordering::Relaxed);
            progress
                .silence_evicted
                .store(watch.evicted, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// What the watch read from every event before it peeked: decode, then `source_of`.
    fn decoded(bytes: &[u8]) -> Option<(String, i64)> {
        let event = Event::from_canonical(bytes).ok()?;
        (event.get_str("vigil.source") != Some(vigil_report::tally::OWN_SOURCE))
            .then(|| (vigil_report::tally::source_of(&event), received(&event)))
    }

    /// The peek gives what decoding gave, for every kind of event the watch meets: syslog
    /// lines as the listener parses them (peeked, not decoded), Vigil's own events (skipped),
    /// and the odd ones it must decode to get right (a host name that is a number, a sender that
    /// is not text, a receive time that does not parse), and it skips bytes that do not decode.
    #[test]
    fn peeking_the_source_gives_what_decoding_gave() {
        let t = Timestamp::from_nanos(1_700_000_000 * S);
        let ctx = vigil_parse::ParseContext {
            received: t,
            reference: t,
            source: "syslog-tcp".into(),
            keep_original: true,
            peer: Some("192.0.2.7".parse().unwrap()),
            redactor: None,
        };
        let mut events = Vec::new();
        for line in [
            "<34>Oct 11 22:14:15 web-1 sshd[42]: Failed password for root from 198.51.100.4 port 22 ssh2",
            "<13>1 2026-12-07T10:00:00Z db@x%y app - - - hello",
            "no header at all",
            "<13>Oct 11 22:14:15 : empty host",
        ] {
            let mut e = vigil_parse::parse_line(line.as_bytes(), vigil_parse::Format::Auto, &ctx);
            e.insert(field::VIGIL_SENDER, "syslog:192.0.2.7");
            events.push((e, true));
        }
        let mut own = Event::new(t);
        own.insert(field::VIGIL_SOURCE, "vigil");
        own.insert(field::HOST_NAME, "vigil-host");
        events.push((own, true));
        let mut bare = Event::new(t);
        bare.insert("message", "nothing else");
        events.push((bare, true));
        let mut empty_sender = Event::new(t);
        empty_sender.insert(field::VIGIL_SENDER, "");
        empty_sender.insert(field::VIGIL_SOURCE, "import:x");
        empty_sender.insert(field::HOST_NAME, "h");
        empty_sender.insert(field::VIGIL_RECEIVED, "2026-12-07T10:00:01.5Z");
        events.push((empty_sender, true));
        let mut numeric_host = Event::new(t);
        numeric_host.insert(field::HOST_NAME, 42i64);
        numeric_host.insert(field::VIGIL_SENDER, "token:a");
        events.push((numeric_host, false));
        let mut odd_sender = Event::new(t);
        odd_sender.insert(field::VIGIL_SENDER, 7i64);
        odd_sender.insert(field::VIGIL_SOURCE, "import:y");
        events.push((odd_sender, false));
        let mut bad_time = Event::new(t);
        bad_time.insert(field::VIGIL_RECEIVED, "yesterday");
        bad_time.insert(field::VIGIL_SOURCE, "import:z");
        events.push((bad_time, false));
        for (event, peeked) in &events {
            let bytes = event.to_canonical();
            assert_eq!(seen(&bytes), decoded(&bytes), "{event:?}");
            assert_eq!(peek_seen(&bytes).is_some(), *peeked, "{event:?}");
        }
        // The syslog lines are counted under their host and peer, at their receive time.
        let first = seen(&events[0].0.to_canonical()).unwrap();
        assert_eq!(first.0, "web-1@syslog:192.0.2.7");
        assert_eq!(first.1, t.as_nanos());
        assert_eq!(seen(&events[4].0.to_canonical()), None);
        // Bytes that are not an event: skipped either way.
        let mut broken = events[0].0.to_canonical();
        broken[0] = 0x7f;
        assert_eq!(seen(&broken), None);
        broken.truncate(3);
        assert_eq!(seen(&broken), None);
    }

    fn watch() -> Watch {
        Watch {
            reader: None,
            next: None,
            sources: HashMap::new(),
            first_seen: HashMap::new(),
            per_sender: HashMap::new(),
            evicted: 0,
        }
    }

    /// A flood of made-up names (from one sender, a few events each) past the cap never evicts
    /// a source that sends steadily, and that source still alerts when it stops; the evictions
    /// are counted and the watch stays under its cap.
    #[test]
    fn junk_names_past_the_cap_do_not_crowd_out_a_real_source() {
        let cap = 100;
        let mut w = watch();
        for i in 0..50 {
            w.observe("fw1@syslog:10.0.0.1".into(), i * 60 * S, cap);
        }
        let mut t = 50 * 60 * S;
        for i in 0..5_000 {
            t += S / 10;
            // Each junk name sends one to three events: never as many as the real source.
            for _ in 0..1 + i % 3 {
                w.observe(format!("junk{i}@api:spammer/1234abcd"), t, cap);
            }
            assert!(w.sources.len() <= cap);
        }
        assert!(w.sources.contains_key("fw1@syslog:10.0.0.1"));
        assert!(w.evicted >= 5_000 - cap as u64, "{}", w.evicted);
        let silent = w.newly_silent(t + 3_600 * S, 0, 4, 900);
        assert!(
            silent.iter().any(|(name, _)| name == "fw1@syslog:10.0.0.1"),
            "{silent:?}"
        );
    }

    /// Learned junk names (four events each) are evicted before a real source with many
    /// events, however recent they are.
    #[test]
    fn names_with_few_events_go_before_a_source_with_many_even_when_newer() {
        let cap = 20;
        let mut w = watch();
        for i in 0..200 {
            w.observe("db1@api:feeder/0000aaaa".into(), i * 10 * S, cap);
        }
        let mut t = 2_000 * S;
        for i in 0..500 {
            for _ in 0..4 {
                t += S;
                w.observe(format!("junk{i}"), t, cap);
            }
        }
        assert!(w.sources.contains_key("db1@api:feeder/0000aaaa"));
        assert!(w.sources.len() <= cap);
    }

    /// Found in review: made-up hosts that each send more events than a real low-volume
    /// source, from many (spoofable) senders, still do not evict a source that has been
    /// sending for a long time; and one sender cannot hold more than its share of names.
    #[test]
    fn young_busy_names_do_not_evict_an_old_quiet_source_and_senders_are_capped() {
        let cap = 50;
        let mut w = watch();
        // One event an hour for two days.
        for i in 0..48 {
            w.observe("pos1@syslog:10.0.0.9".into(), i * 3_600 * S, cap);
        }
        let mut t = 48 * 3_600 * S;
        for i in 0..2_000 {
            for _ in 0..64 {
                t += S / 100;
                w.observe(format!("fake{i}@syslog:192.0.2.{}", i % 250), t, cap);
            }
        }
        assert!(w.sources.contains_key("pos1@syslog:10.0.0.9"));
        assert!(w.sources.len() <= cap);
        let mut one = watch();
        for i in 0..(MAX_SOURCES_PER_SENDER + 10) {
            one.observe(format!("h{i}@api:spam/1"), i as i64 * S, 100_000);
        }
        assert_eq!(one.sources.len(), MAX_SOURCES_PER_SENDER);
        assert_eq!(one.evicted, 10);
    }
}
