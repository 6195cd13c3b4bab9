//! Ban decisions: what automated response hands to enforcement that already exists. Responders
//! turn alerts into bans of the alert's address (an IPv6 address is banned as its /64), with
//! escalating durations for repeat offenders and an allowlist that is never banned; decisions
//! expire; every decision and its end are written to the ledger. The CrowdSec bouncers read them
//! through the LAPI-compatible stream (`/v1/decisions/stream`), so firewalls and proxies enforce
//! Vigil's bans unmodified.
//!
//! Decisions persist in `DATA_DIR/decisions.json` (rewritten atomically on change).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use vigil_event::{Event, Timestamp};

/// A network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Net {
    /// First address.
    pub addr: IpAddr,
    /// Prefix length.
    pub bits: u8,
}

impl Net {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a single address.
    pub fn parse(text: &str) -> Result<Net, String> {
        let (a, b) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match b {
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("{text:?}: prefix must be 0..={max}"))?,
            None => max,
        };
        Ok(Net::new(addr, bits))
    }

    /// The network of `addr` with `bits` leading bits kept.
    pub fn new(addr: IpAddr, bits: u8) -> Net {
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits.min(32))
                };
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits.min(128))
                };
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Net { addr, bits }
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (ip, self.addr) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                Net::new(ip, self.bits).addr == self.addr
            }
            _ => false,
        }
    }

    /// Whether this is one address.
    pub fn is_single(&self) -> bool {
        self.bits == if self.addr.is_ipv4() { 32 } else { 128 }
    }

    /// `1.2.3.4` for one address, `2001:db8::/64` for a range.
    pub fn text(&self) -> String {
        if self.is_single() {
            self.addr.to_string()
        } else {
            format!("{}/{}", self.addr, self.bits)
        }
    }
}

/// One ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Unique, increasing.
    pub id: u64,
    /// What is banned.
    pub net: Net,
    /// Why: the rule (CrowdSec's "scenario").
    pub scenario: String,
    /// The alert that caused it, if any.
    pub alert: Option<u64>,
    /// Who decided (`vigil` for responders, the user for manual bans).
    pub by: String,
    /// When it started.
    #[serde(with = "nanos")]
    pub at: Timestamp,
    /// When it ends.
    #[serde(with = "nanos")]
    pub until: Timestamp,
    /// When it was lifted or expired (it then only lives on for the bouncers' stream).
    #[serde(with = "opt_nanos")]
    pub ended: Option<Timestamp>,
}

/// Timestamps in `decisions.json`: nanoseconds since the epoch.
mod nanos {
    use serde::{Deserialize, Deserializer, Serializer};
    use vigil_event::Timestamp;

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.as_nanos())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        i64::deserialize(d).map(Timestamp::from_nanos)
    }
}

mod opt_nanos {
    use serde::{Deserialize, Deserializer, Serializer};
    use vigil_event::Timestamp;

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.as_nanos()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<i64>::deserialize(d).map(|o| o.map(Timestamp::from_nanos))
    }
}

impl Decision {
    /// CrowdSec's scope name.
    pub fn scope(&self) -> &'static str {
        if self.net.is_single() { "Ip" } else { "Range" }
    }

    /// The CrowdSec LAPI form (`GET /v1/decisions/stream`, `GET /v1/decisions`).
    pub fn to_lapi(&self, now: Timestamp) -> serde_json::Value {
        let left = (self.until.as_nanos() - now.as_nanos()).max(0) / 1_000_000_000;
        json!({
            "id": self.id,
            "origin": "vigil",
            "type": "ban",
            "scope": self.scope(),
            "value": self.net.text(),
            "duration": format!("{}h{}m{}s", left / 3600, (left / 60) % 60, left % 60),
            "scenario": self.scenario,
            "simulated": false,
        })
    }

    /// Vigil's API form.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "value": self.net.text(),
            "scope": self.scope(),
            "type": "ban",
            "reason": self.scenario,
            "alert": self.alert,
            "by": self.by,
            "at": self.at.to_rfc3339(),
            "until": self.until.to_rfc3339(),
        })
    }

    /// The decision as a ledger event (`event.dataset=vigil.decision`), `action` `ban` or `unban`.
    pub fn to_event(&self, action: &str, why: &str, now: Timestamp) -> Event {
        let mut e = Event::new(now);
        e.insert("event.kind", "event");
        e.insert("event.category", "network");
        e.insert("event.dataset", "vigil.decision");
        e.insert("event.action", action);
        e.insert("vigil.decision.id", self.id as i64);
        e.insert("vigil.decision.value", self.net.text());
        e.insert("vigil.decision.scope", self.scope());
        e.insert("vigil.decision.until", self.until.to_rfc3339());
        e.insert("rule.name", self.scenario.as_str());
        e.insert("user.name", self.by.as_str());
        if let Some(a) = self.alert {
            e.insert("vigil.alert.id", a as i64);
        }
        if self.net.is_single() {
            e.insert("source.ip", self.net.addr);
        }
        e.insert(
            "message",
            format!(
                "{action} {} ({}) until {}: {why}",
                self.net.text(),
                self.scenario,
                self.until.to_rfc3339()
            ),
        );
        e
    }
}

/// A responder: ban the address of alerts from these rules (or at this level).
#[derive(Debug, Clone, PartialEq)]
pub struct Responder {
    /// Rule ids or titles; empty means any rule at `min_level`.
    pub rules: Vec<String>,
    /// With no rules: alerts of this level or above.
    pub min_level: Option<vigil_detect::alert::Level>,
    /// First ban's length.
    pub duration: Duration,
    /// Longest ban after escalation.
    pub max_duration: Duration,
}

impl Responder {
    /// Whether this responder acts on the alert.
    pub fn wants(&self, alert: &vigil_detect::alert::Alert) -> bool {
        if self.rules.is_empty() {
            return self.min_level.is_some_and(|l| alert.rule.level >= l);
        }
        self.rules.iter().any(|r| {
            r.eq_ignore_ascii_case(&alert.rule.id) || r.eq_ignore_ascii_case(&alert.rule.title)
        })
    }
}

/// Every decision, the allowlist, and the history that makes repeat offenders' bans longer.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DecisionBook {
    decisions: BTreeMap<u64, Decision>,
    next_id: u64,
    /// Bans so far per banned network (for escalation).
    offences: HashMap<String, u32>,
    /// Never banned.
    #[serde(skip)]
    pub allowlist: Vec<Net>,
}

/// Ended decisions kept for bouncers that poll late.
const KEEP_ENDED: Duration = Duration::from_secs(24 * 3600);

impl DecisionBook {
    /// Loads the book from `path` (empty if there is none).
    pub fn load(path: &Path) -> Result<DecisionBook, String> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DecisionBook {
                next_id: 1,
                ..DecisionBook::default()
            }),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Writes the book to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The network to ban for an address: the address itself, or an IPv6 address's /64.
    pub fn scope_of(ip: IpAddr) -> Net {
        match ip {
            IpAddr::V4(_) => Net::new(ip, 32),
            IpAddr::V6(_) => Net::new(ip, 64),
        }
    }

    /// Whether the address is on the allowlist.
    pub fn allowed(&self, ip: IpAddr) -> bool {
        self.allowlist.iter().any(|n| n.contains(ip))
    }

    /// Bans `net` (unless allowlisted or already banned); repeat offenders get `duration`
    /// doubled per earlier ban, up to `max`. Returns the new decision.
    #[allow(clippy::too_many_arguments)]
    pub fn ban(
        &mut self,
        net: Net,
        duration: Duration,
        max: Duration,
        scenario: &str,
        alert: Option<u64>,
        by: &str,
        now: Timestamp,
    ) -> Result<Decision, String> {
        if self.allowlist.iter().any(|a| a.contains(net.addr)) {
            return Err(format!("{} is on the allowlist; not banned", net.text()));
        }
        if let Some(d) = self.active(now).into_iter().find(|d| d.net == net) {
            return Err(format!(
                "{} is already banned (decision {})",
                net.text(),
                d.id
            ));
        }
        let key = net.text();
        let earlier = self.offences.get(&key).copied().unwrap_or(0);
        let length = duration
            .saturating_mul(1u32.checked_shl(earlier.min(16)).unwrap_or(u32::MAX))
            .min(max.max(duration));
        *self.offences.entry(key).or_default() += 1;
        let id = self.next_id.max(1);
        self.next_id = id + 1;
        let d = Decision {
            id,
            net,
            scenario: scenario.to_owned(),
            alert,
            by: by.to_owned(),
            at: now,
            until: Timestamp::from_nanos(
                now.as_nanos()
                    .saturating_add(length.as_nanos().min(i64::MAX as u128) as i64),
            ),
            ended: None,
        };
        self.decisions.insert(id, d.clone());
        Ok(d)
    }

    /// Lifts a decision now.
    pub fn unban(&mut self, id: u64, now: Timestamp) -> Result<Decision, String> {
        let d = self
            .decisions
            .get_mut(&id)
            .filter(|d| d.ended.is_none())
            .ok_or_else(|| format!("no active decision {id}"))?;
        d.ended = Some(now);
        d.until = d.until.min(now);
        Ok(d.clone())
    }

    /// Ends expired decisions; returns them. Forgets decisions ended long ago.
    pub fn expire(&mut self, now: Timestamp) -> Vec<Decision> {
        let mut out = Vec::new();
        for d in self.decisions.values_mut() {
            if d.ended.is_none() && d.until <= now {
                d.ended = Some(d.until);
                out.push(d.clone());
            }
        }
        let horizon = now.as_nanos() - KEEP_ENDED.as_nanos() as i64;
        self.decisions
            .retain(|_, d| d.ended.is_none_or(|e| e.as_nanos() > horizon));
        out
    }

    /// Active decisions.
    pub fn active(&self, now: Timestamp) -> Vec<&Decision> {
        self.decisions
            .values()
            .filter(|d| d.ended.is_none() && d.until > now)
            .collect()
    }

    /// For a bouncer's stream: decisions started after `since` and still active (new), and
    /// decisions that ended after `since` (deleted). `since = None` (startup): every active one.
    pub fn stream(
        &self,
        since: Option<Timestamp>,
        now: Timestamp,
    ) -> (Vec<&Decision>, Vec<&Decision>) {
        let new = self
            .active(now)
            .into_iter()
            .filter(|d| since.is_none_or(|s| d.at > s))
            .collect();
        let deleted = match since {
            None => Vec::new(),
            Some(s) => self
                .decisions
                .values()
                .filter(|d| d.ended.is_some_and(|e| e > s && e <= now) && d.at <= s)
                .collect(),
        };
        (new, deleted)
    }

    /// Active decisions covering `ip`.
    pub fn covering(&self, ip: IpAddr, now: Timestamp) -> Vec<&Decision> {
        self.active(now)
            .into_iter()
            .filter(|d| d.net.contains(ip))
            .collect()
    }
}

/// The default allowlist: loopback, link-local and the unspecified address.
pub fn default_allowlist() -> Vec<Net> {
    [
        "127.0.0.0/8",
        "::1/128",
        "169.254.0.0/16",
        "fe80::/10",
        "0.0.0.0/32",
        "::/128",
    ]
    .iter()
    .filter_map(|t| Net::parse(t).ok())
    .collect()
}

/// Where the book lives.
pub fn book_path(data_dir: &Path) -> PathBuf {
    data_dir.join("decisions.json")
}

/// The decision book as the server runs it: responders, expiry, ledger records, persistence.
pub struct DecisionService {
    book: std::sync::Mutex<DecisionBook>,
    path: PathBuf,
    responders: Vec<Responder>,
    ledger: vigil_ledger::Ledger,
}

impl DecisionService {
    /// Loads the book of `data_dir`.
    pub fn open(
        data_dir: &Path,
        responders: Vec<Responder>,
        allowlist: Vec<Net>,
        ledger: vigil_ledger::Ledger,
    ) -> Result<DecisionService, String> {
        let path = book_path(data_dir);
        let mut book = DecisionBook::load(&path)?;
        book.allowlist = allowlist;
        Ok(DecisionService {
            book: std::sync::Mutex::new(book),
            path,
            responders,
            ledger,
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut DecisionBook) -> R) -> R {
        f(&mut self.book.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `f` on the book (reads).
    pub fn read<R>(&self, f: impl FnOnce(&DecisionBook) -> R) -> R {
        f(&self.book.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn record(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        if let Err(e) = self.ledger.append(&events) {
            tracing::error!("recording decisions in the ledger: {e}");
        }
        let saved = self.read(|b| b.save(&self.path));
        if let Err(e) = saved {
            tracing::error!("saving decisions: {e}");
        }
    }

    /// An alert was raised or updated: responders that want it ban its `source.ip` (blocking).
    pub fn on_alert(&self, alert: &vigil_detect::alert::Alert) {
        let Some(ip) = alert
            .group
            .iter()
            .find(|(k, _)| k == "source.ip")
            .and_then(|(_, v)| v.parse::<IpAddr>().ok())
        else {
            return;
        };
        let now = Timestamp::now();
        let mut events = Vec::new();
        for r in self.responders.iter().filter(|r| r.wants(alert)) {
            let net = DecisionBook::scope_of(ip);
            let why = format!(
                "alert {} ({}, {} matches)",
                alert.id, alert.rule.title, alert.count
            );
            match self.with(|b| {
                b.ban(
                    net,
                    r.duration,
                    r.max_duration,
                    &alert.rule.title,
                    Some(alert.id),
                    "vigil",
                    now,
                )
            }) {
                Ok(d) => {
                    tracing::info!(
                        "banned {} until {}: {why}",
                        d.net.text(),
                        d.until.to_rfc3339()
                    );
                    events.push(d.to_event("ban", &why, now));
                }
                Err(e) => tracing::debug!("no ban: {e}"),
            }
        }
        self.record(events);
    }

    /// A ban by hand.
    pub fn ban_by_hand(
        &self,
        value: &str,
        duration: Duration,
        reason: &str,
        by: &str,
    ) -> Result<Decision, String> {
        let net = Net::parse(value)?;
        let now = Timestamp::now();
        let d = self.with(|b| b.ban(net, duration, duration, reason, None, by, now))?;
        self.record(vec![d.to_event("ban", &format!("by hand: {reason}"), now)]);
        Ok(d)
    }

    /// Lifts a decision by hand.
    pub fn unban(&self, id: u64, by: &str) -> Result<Decision, String> {
        let now = Timestamp::now();
        let d = self.with(|b| b.unban(id, now))?;
        self.record(vec![d.to_event("unban", &format!("lifted by {by}"), now)]);
        Ok(d)
    }

    /// Ends expired decisions and records it (call every second).
    pub fn tick(&self) {
        let now = Timestamp::now();
        let ended = self.with(|b| b.expire(now));
        self.record(
            ended
                .iter()
                .map(|d| d.to_event("unban", "expired", now))
                .collect(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    fn book() -> DecisionBook {
        DecisionBook {
            next_id: 1,
            allowlist: default_allowlist(),
            ..DecisionBook::default()
        }
    }

    #[test]
    fn repeat_offenders_get_longer_bans_up_to_the_cap() {
        let mut b = book();
        let ip = Net::parse("203.0.113.5").unwrap();
        let (h, max) = (Duration::from_secs(3600), Duration::from_secs(4 * 3600));
        let d1 = b.ban(ip, h, max, "r", None, "vigil", t(0)).unwrap();
        assert_eq!(d1.until, t(3600));
        assert!(
            b.ban(ip, h, max, "r", None, "vigil", t(10)).is_err(),
            "already banned"
        );
        assert_eq!(b.expire(t(3600)).len(), 1);
        let d2 = b.ban(ip, h, max, "r", None, "vigil", t(4000)).unwrap();
        assert_eq!(d2.until, t(4000 + 7200));
        b.expire(t(20_000));
        let d3 = b.ban(ip, h, max, "r", None, "vigil", t(20_000)).unwrap();
        assert_eq!(d3.until, t(20_000 + 4 * 3600));
        b.expire(t(40_000));
        let d4 = b.ban(ip, h, max, "r", None, "vigil", t(40_000)).unwrap();
        assert_eq!(d4.until, t(40_000 + 4 * 3600), "capped");
    }

    #[test]
    fn ipv6_is_banned_as_its_slash_64_and_the_allowlist_is_never_banned() {
        let mut b = book();
        let net = DecisionBook::scope_of("2001:db8:1:2:aaaa::5".parse().unwrap());
        assert_eq!(net.text(), "2001:db8:1:2::/64");
        let d = b
            .ban(
                net,
                Duration::from_secs(60),
                Duration::from_secs(60),
                "r",
                Some(7),
                "vigil",
                t(0),
            )
            .unwrap();
        assert_eq!(d.scope(), "Range");
        assert_eq!(
            b.covering("2001:db8:1:2:ffff::1".parse().unwrap(), t(1))
                .len(),
            1
        );
        assert!(
            b.covering("2001:db8:1:3::1".parse().unwrap(), t(1))
                .is_empty()
        );
        let lo = DecisionBook::scope_of("127.0.0.1".parse().unwrap());
        assert!(
            b.ban(
                lo,
                Duration::from_secs(60),
                Duration::from_secs(60),
                "r",
                None,
                "x",
                t(0)
            )
            .is_err()
        );
        b.allowlist.push(Net::parse("10.0.0.0/8").unwrap());
        assert!(b.allowed("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn the_stream_gives_new_and_deleted_since_the_last_poll() {
        let mut b = book();
        let a = Net::parse("198.51.100.1").unwrap();
        let c = Net::parse("198.51.100.2").unwrap();
        let one = Duration::from_secs(10);
        b.ban(a, one, one, "r", None, "vigil", t(0)).unwrap();
        let (new, deleted) = b.stream(None, t(1));
        assert_eq!((new.len(), deleted.len()), (1, 0));
        b.ban(c, one, one, "r", None, "vigil", t(2)).unwrap();
        let (new, deleted) = b.stream(Some(t(1)), t(3));
        assert_eq!((new.len(), deleted.len()), (1, 0));
        assert_eq!(new[0].net, c);
        b.expire(t(10));
        let (new, deleted) = b.stream(Some(t(3)), t(11));
        assert_eq!((new.len(), deleted.len()), (0, 1));
        assert_eq!(deleted[0].net, a);
        let lapi = b.active(t(11))[0].to_lapi(t(11));
        assert_eq!(lapi["scope"], "Ip");
        assert_eq!(lapi["value"], "198.51.100.2");
        assert_eq!(lapi["duration"], "0h0m1s");
    }
}
