//! Drill marks: which events entering the door belong to a drill (`vigil drill`), decided by
//! the door and nobody else.
//!
//! A drill run registers one **one-time nonce per event** it is about to send
//! ([`DrillRegistry::begin`]) and writes each into its event's text (a syslog message, a
//! JSON field, a user agent: anywhere). When an event from a listener reaches the door
//! ([`crate::Ingest`]) while a drill is running, the door looks for a nonce
//! (`vdrill-` + 32 letters `a`–`p`, 128 random bits) in its text fields; a registered one is
//! consumed and the event gets [`vigil_event::field::VIGIL_DRILL_RUN`]. That is the only way
//! the field is set on input, so:
//!
//! - **Senders cannot forge the mark** to hide a real attack: an input's own
//!   `vigil.drill.run` is moved under `external.` by the parser (`vigil_parse::reserved`)
//!   and dropped here again whatever the path; a nonce is unguessable, usable once, and
//!   dies with its run (at most [`MAX_TTL`]). A nonce seen on the wire and replayed marks at
//!   most one event, and only while the run lasts — the run's own event then arrives
//!   unmarked, counts as real, and the drill reports it.
//! - **Only documentation addresses can be drill events**: an event holding any address
//!   outside RFC 5737 / RFC 3849 ranges (loopback aside: the drill sends from the server
//!   itself) is never marked, whatever nonce it carries. A drill mark can therefore never
//!   hide an event about a real, routable address, and a drill's ban can only ever name a
//!   documentation address.
//! - **Senders cannot un-mark drill events** into real ones either: the mark is decided
//!   here, after parsing; a drill event that arrives without its nonce is real, and the
//!   report says which of its events were not marked.
//!
//! The registry also keeps, per run, every drill event that became durable (its sequence
//! number, the time it became durable, the event): Vigil's own drill events (alerts,
//! decisions, notifications of the run) pass the same door, so a run's whole story — and its
//! latencies — is read from here. Memory is bounded: [`MAX_RUNS`] runs, [`MAX_EVENTS_PER_RUN`]
//! events each, nonces only while runs last.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vigil_event::{Event, Timestamp, Value, field};

/// What starts a nonce in an event's text.
pub const NONCE_PREFIX: &str = "vdrill-";
/// Letters after [`NONCE_PREFIX`] (each `a`–`p`, four bits: 128 bits).
pub const NONCE_LETTERS: usize = 32;
/// Runs tracked at once (a run beyond this is refused).
pub const MAX_RUNS: usize = 16;
/// Nonces one run may register.
pub const MAX_NONCES_PER_RUN: usize = 1000;
/// Durable events kept per run (its input and Vigil's own events about it).
pub const MAX_EVENTS_PER_RUN: usize = 10_000;
/// Longest a run's nonces stay valid.
pub const MAX_TTL: Duration = Duration::from_secs(600);

/// A drill event that became durable.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its ledger sequence number.
    pub seq: u64,
    /// When the door learnt it was durable.
    pub durable: Timestamp,
    /// The event as stored.
    pub event: Event,
}

/// What the door saw of one run.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// Its durable events, in the order they became durable.
    pub stored: Vec<Stored>,
    /// Nonces of the run that arrived on an event that could not be marked (an address
    /// outside the documentation ranges), with the reason.
    pub refused: Vec<String>,
    /// Events not kept because the run had [`MAX_EVENTS_PER_RUN`] already.
    pub dropped: u64,
}

/// Why a run could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrillError {
    /// [`MAX_RUNS`] runs are going on.
    #[error("{0} drills are running already; try again when one has finished")]
    Busy(usize),
    /// A run of this id is going on.
    #[error("drill run {0:?} is running already")]
    Duplicate(String),
    /// More nonces than [`MAX_NONCES_PER_RUN`], or a malformed one.
    #[error("drill run {run:?}: {reason}")]
    Nonces {
        /// The run.
        run: String,
        /// What is wrong.
        reason: String,
    },
}

struct Nonce {
    run: String,
    until: Instant,
}

#[derive(Default)]
struct Inner {
    nonces: HashMap<String, Nonce>,
    runs: HashMap<String, Journal>,
}

/// The runs going on and their nonces; shared by the door and the drill runner.
#[derive(Default)]
pub struct DrillRegistry {
    /// Runs going on (the door's fast path: nothing to look for when zero).
    active: AtomicUsize,
    inner: Mutex<Inner>,
}

impl DrillRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts tracking run `run` with `nonces` (each [`NONCE_PREFIX`] + [`NONCE_LETTERS`]
    /// letters `a`–`p`), valid for `ttl` (at most [`MAX_TTL`]).
    pub fn begin(&self, run: &str, nonces: &[String], ttl: Duration) -> Result<(), DrillError> {
        let bad = |reason: String| DrillError::Nonces {
            run: run.to_owned(),
            reason,
        };
        if nonces.len() > MAX_NONCES_PER_RUN {
            return Err(bad(format!(
                "{} nonces, at most {MAX_NONCES_PER_RUN}",
                nonces.len()
            )));
        }
        if let Some(n) = nonces.iter().find(|n| parse_nonce(n) != Some(n.as_str())) {
            return Err(bad(format!("{n:?} is not a nonce")));
        }
        let mut inner = self.lock();
        if inner.runs.contains_key(run) {
            return Err(DrillError::Duplicate(run.to_owned()));
        }
        if inner.runs.len() >= MAX_RUNS {
            return Err(DrillError::Busy(inner.runs.len()));
        }
        let until = Instant::now() + ttl.min(MAX_TTL);
        for n in nonces {
            inner.nonces.insert(
                n.clone(),
                Nonce {
                    run: run.to_owned(),
                    until,
                },
            );
        }
        inner.runs.insert(run.to_owned(), Journal::default());
        self.active.store(inner.runs.len(), Ordering::Release);
        Ok(())
    }

    /// Stops tracking `run`: its unused nonces die, and what the door saw of it is returned.
    pub fn finish(&self, run: &str) -> Journal {
        let mut inner = self.lock();
        inner.nonces.retain(|_, n| n.run != run);
        let journal = inner.runs.remove(run).unwrap_or_default();
        self.active.store(inner.runs.len(), Ordering::Release);
        journal
    }

    /// A copy of what the door has seen of `run` so far.
    pub fn journal(&self, run: &str) -> Option<Journal> {
        self.lock().runs.get(run).cloned()
    }

    /// Whether any run is going on.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire) > 0
    }

    /// The door's step for an event from outside: drops any drill mark it claims, then marks
    /// it with its run if it carries a live nonce of one and names only documentation
    /// addresses. Returns whether it is now a drill event.
    pub fn mark_input(&self, event: &mut Event) -> bool {
        // Never from outside, whatever path the event took to get here.
        event.remove(field::VIGIL_DRILL_RUN);
        if !self.is_active() {
            return false;
        }
        let Some(nonce) = find_nonce(event) else {
            return false;
        };
        let mut inner = self.lock();
        let now = Instant::now();
        inner.nonces.retain(|_, n| n.until > now);
        let Some(found) = inner.nonces.remove(&nonce) else {
            return false;
        };
        if let Some(addr) = real_address(event) {
            if let Some(j) = inner.runs.get_mut(&found.run)
                && j.refused.len() < MAX_NONCES_PER_RUN
            {
                j.refused.push(format!(
                    "an event with nonce {nonce} names {addr}, outside the documentation ranges: not marked (it counts as real)"
                ));
            }
            return false;
        }
        event.insert(field::VIGIL_DRILL_RUN, found.run.as_str());
        true
    }

    /// Whether the door should remember durable events of `run` (it is going on).
    pub fn tracks(&self, run: &str) -> bool {
        self.is_active() && self.lock().runs.contains_key(run)
    }

    /// Records durable drill events: `(seq, event)` pairs of runs going on.
    pub fn record(&self, events: Vec<(u64, Event)>) {
        let now = Timestamp::now();
        let mut inner = self.lock();
        for (seq, event) in events {
            let Some(run) = event.drill_run() else {
                continue;
            };
            let Some(j) = inner.runs.get_mut(run) else {
                continue;
            };
            if j.stored.len() >= MAX_EVENTS_PER_RUN {
                j.dropped += 1;
                continue;
            }
            j.stored.push(Stored {
                seq,
                durable: now,
                event,
            });
        }
    }
}

/// A new nonce from 16 random bytes (the caller's randomness: this crate has none).
pub fn nonce_from(random: [u8; 16]) -> String {
    let mut s = String::with_capacity(NONCE_PREFIX.len() + NONCE_LETTERS);
    s.push_str(NONCE_PREFIX);
    for b in random {
        s.push(char::from(b'a' + (b >> 4)));
        s.push(char::from(b'a' + (b & 15)));
    }
    s
}

/// The nonce at the start of `text` when there is a well-formed one.
fn parse_nonce(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(NONCE_PREFIX)?;
    let letters = rest.as_bytes().get(..NONCE_LETTERS)?;
    letters
        .iter()
        .all(|b| (b'a'..=b'p').contains(b))
        .then(|| &text[..NONCE_PREFIX.len() + NONCE_LETTERS])
}

/// The first well-formed nonce in the event's text fields.
fn find_nonce(event: &Event) -> Option<String> {
    fn in_value(v: &Value) -> Option<String> {
        match v {
            Value::Str(s) => s
                .match_indices(NONCE_PREFIX)
                .find_map(|(at, _)| parse_nonce(&s[at..]))
                .map(str::to_owned),
            Value::List(items) => items.iter().find_map(in_value),
            _ => None,
        }
    }
    event.fields().find_map(|(_, v)| in_value(v))
}

/// The first address of the event outside the documentation ranges and loopback.
fn real_address(event: &Event) -> Option<IpAddr> {
    fn in_value(v: &Value) -> Option<IpAddr> {
        match v {
            Value::Ip(ip) => (!is_documentation(*ip) && !ip.is_loopback()).then_some(*ip),
            Value::List(items) => items.iter().find_map(in_value),
            Value::Map(map) => map.values().find_map(in_value),
            _ => None,
        }
    }
    event.fields().find_map(|(_, v)| in_value(v))
}

/// Whether `ip` is in a range reserved for documentation (RFC 5737: 192.0.2.0/24,
/// 198.51.100.0/24, 203.0.113.0/24; RFC 3849: 2001:db8::/32): never a real host's address,
/// so a drill may name it and a drill ban of it bans nobody.
pub fn is_documentation(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            matches!((a, b, c), (192, 0, 2) | (198, 51, 100) | (203, 0, 113))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            s[0] == 0x2001 && s[1] == 0x0db8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonce(seed: u8) -> String {
        nonce_from([seed; 16])
    }

    fn event(message: &str, ip: &str) -> Event {
        let mut e = Event::new(Timestamp::from_secs(1));
        e.insert("message", message);
        e.insert("source.ip", ip.parse::<IpAddr>().unwrap());
        e
    }

    #[test]
    fn a_live_nonce_marks_one_event_once_and_its_run_ends_it() {
        let r = DrillRegistry::default();
        let (a, b) = (nonce(1), nonce(2));
        r.begin("run1", &[a.clone(), b.clone()], Duration::from_secs(60))
            .unwrap();
        let mut e = event(&format!("Failed password for root {a} x"), "192.0.2.5");
        assert!(r.mark_input(&mut e));
        assert_eq!(e.drill_run(), Some("run1"));
        // Replayed: used up.
        let mut again = event(&format!("Failed password {a}"), "192.0.2.5");
        assert!(!r.mark_input(&mut again));
        assert_eq!(again.drill_run(), None);
        r.finish("run1");
        // After the run, its unused nonce marks nothing.
        let mut late = event(&b, "192.0.2.5");
        assert!(!r.mark_input(&mut late));
        assert!(!r.is_active());
    }

    #[test]
    fn senders_cannot_forge_or_keep_a_mark() {
        let r = DrillRegistry::default();
        // Claimed by the input, with and without a run going on.
        let mut claimed = event("Failed password", "192.0.2.5");
        claimed.insert(field::VIGIL_DRILL_RUN, "run1");
        assert!(!r.mark_input(&mut claimed));
        assert_eq!(claimed.drill_run(), None);
        r.begin("run1", &[nonce(3)], Duration::from_secs(60))
            .unwrap();
        let mut claimed = event("Failed password", "192.0.2.5");
        claimed.insert(field::VIGIL_DRILL_RUN, "run1");
        assert!(!r.mark_input(&mut claimed));
        assert_eq!(claimed.drill_run(), None);
        // A guessed nonce of the right shape.
        let mut guessed = event(&nonce(4), "192.0.2.5");
        assert!(!r.mark_input(&mut guessed));
        // A truncated or malformed one.
        let short = &nonce(3)[..20];
        assert!(!r.mark_input(&mut event(short, "192.0.2.5")));
        assert!(!r.mark_input(&mut event(
            "vdrill-ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "192.0.2.5"
        )));
    }

    #[test]
    fn an_event_about_a_real_address_is_never_a_drill_event() {
        let r = DrillRegistry::default();
        let n = nonce(5);
        r.begin("run1", std::slice::from_ref(&n), Duration::from_secs(60))
            .unwrap();
        let mut e = event(&n, "8.8.8.8");
        assert!(!r.mark_input(&mut e));
        assert_eq!(e.drill_run(), None);
        let j = r.finish("run1");
        assert_eq!(j.refused.len(), 1, "{:?}", j.refused);
        assert!(j.refused[0].contains("8.8.8.8"));
        for ok in ["192.0.2.1", "198.51.100.7", "203.0.113.255", "2001:db8::1"] {
            assert!(is_documentation(ok.parse().unwrap()), "{ok}");
        }
        for real in ["192.0.3.1", "10.0.0.1", "2001:db9::1", "203.0.114.1"] {
            assert!(!is_documentation(real.parse().unwrap()), "{real}");
        }
    }

    #[test]
    fn expired_nonces_mark_nothing_and_runs_are_bounded() {
        let r = DrillRegistry::default();
        let n = nonce(6);
        r.begin("old", std::slice::from_ref(&n), Duration::ZERO)
            .unwrap();
        assert!(!r.mark_input(&mut event(&n, "192.0.2.5")));
        assert!(matches!(
            r.begin("old", &[], Duration::from_secs(1)),
            Err(DrillError::Duplicate(_))
        ));
        for i in 1..MAX_RUNS {
            r.begin(&format!("r{i}"), &[], Duration::from_secs(1))
                .unwrap();
        }
        assert!(matches!(
            r.begin("more", &[], Duration::from_secs(1)),
            Err(DrillError::Busy(_))
        ));
        assert!(matches!(
            r.begin("bad", &["vdrill-x".into()], Duration::from_secs(1)),
            Err(DrillError::Nonces { .. })
        ));
    }

    #[test]
    fn durable_events_of_a_run_are_journaled_with_their_sequence_numbers() {
        let r = DrillRegistry::default();
        r.begin("run1", &[], Duration::from_secs(60)).unwrap();
        let mut mine = event("x", "192.0.2.5");
        mine.insert(field::VIGIL_DRILL_RUN, "run1");
        let mut other = event("y", "192.0.2.5");
        other.insert(field::VIGIL_DRILL_RUN, "elsewhere");
        r.record(vec![(7, mine), (8, other), (9, event("z", "192.0.2.5"))]);
        let j = r.journal("run1").unwrap();
        assert_eq!(j.stored.iter().map(|s| s.seq).collect::<Vec<_>>(), [7]);
        assert!(r.tracks("run1") && !r.tracks("elsewhere"));
    }
}
