//! The matcher: every loaded indicator in hash tables, so one event costs a fixed number of
//! lookups whatever the list's size.
//!
//! * addresses: one table per prefix length present (an address list is one table, `/32`);
//!   an address is masked to each length in use and looked up, so at most 33 (IPv4) or 129
//!   (IPv6) lookups, in practice the handful of lengths a feed uses;
//! * domains: one table; a name is looked up whole and at each parent (`a.b.evil.example`,
//!   `b.evil.example`, `evil.example`, `example`), at most 127 lookups, in practice 3–5;
//! * URLs and hashes: one table each, one lookup.

use std::collections::HashMap;
use std::net::IpAddr;

use vigil_event::{Event, Value};

use crate::indicator::{Indicator, Kind, mask, parse_network};

/// Fields whose addresses are matched against address indicators.
pub const IP_FIELDS: &[&str] = &["source.ip", "destination.ip", "client.ip", "server.ip"];
/// Fields whose names are matched against domain indicators.
pub const DOMAIN_FIELDS: &[&str] = &[
    "url.domain",
    "destination.domain",
    "source.domain",
    "server.domain",
    "client.domain",
    "dns.question.name",
    "tls.client.server_name",
];
/// Fields matched against URL indicators (their host is matched against domains too).
pub const URL_FIELDS: &[&str] = &["url.full", "url.original"];
/// Fields matched against hash indicators.
pub const HASH_FIELDS: &[&str] = &[
    "file.hash.md5",
    "file.hash.sha1",
    "file.hash.sha256",
    "process.hash.md5",
    "process.hash.sha1",
    "process.hash.sha256",
    "hash.md5",
    "hash.sha1",
    "hash.sha256",
];

/// Most matches recorded on one event (`threat.enrichments` entries).
pub const MAX_MATCHES_PER_EVENT: usize = 16;

const NONE: u32 = u32::MAX;

/// One match: which indicator, on which field, with which value of the event.
#[derive(Debug, Clone, PartialEq)]
pub struct Match<'a> {
    /// The indicator.
    pub indicator: &'a Indicator,
    /// The event's field that matched (`source.ip`).
    pub field: &'static str,
    /// The event's value that matched (the address, the name, …).
    pub atomic: String,
}

/// A set of indicators ready to match.
#[derive(Debug, Default)]
pub struct IntelSet {
    indicators: Vec<Indicator>,
    /// For each indicator, the next one with the same key (several feeds list it), or NONE.
    next: Vec<u32>,
    /// (prefix length, is IPv6) → masked address → first indicator.
    nets: Vec<((u8, bool), HashMap<IpAddr, u32>)>,
    domains: HashMap<String, u32>,
    urls: HashMap<String, u32>,
    hashes: HashMap<String, u32>,
}

impl IntelSet {
    /// Builds the tables from indicators (at most `u32::MAX - 1`; callers cap far below).
    pub fn new(indicators: Vec<Indicator>) -> IntelSet {
        let mut set = IntelSet {
            next: vec![NONE; indicators.len()],
            ..IntelSet::default()
        };
        let mut tails: HashMap<(Kind, String), u32> = HashMap::new();
        for (i, ind) in indicators.iter().enumerate() {
            let i = i as u32;
            // Chains are kept by their tail, so building stays linear with many duplicates.
            let key = (ind.kind, ind.value.clone());
            if let Some(tail) = tails.insert(key, i) {
                set.next[tail as usize] = i;
                continue;
            }
            match ind.kind {
                Kind::Ip => {
                    if let Some((addr, len)) = parse_network(&ind.value) {
                        let slot = (len, addr.is_ipv6());
                        let table = match set.nets.iter().position(|(s, _)| *s == slot) {
                            Some(at) => &mut set.nets[at].1,
                            None => {
                                set.nets.push((slot, HashMap::new()));
                                &mut set.nets.last_mut().expect("pushed").1
                            }
                        };
                        table.insert(addr, i);
                    }
                }
                Kind::Domain => {
                    set.domains.insert(ind.value.clone(), i);
                }
                Kind::Url => {
                    set.urls.insert(ind.value.clone(), i);
                }
                Kind::Md5 | Kind::Sha1 | Kind::Sha256 => {
                    set.hashes.insert(ind.value.clone(), i);
                }
            }
        }
        // Longest prefixes first: the most specific network is reported first.
        set.nets.sort_by_key(|n| std::cmp::Reverse(n.0.0));
        set.indicators = indicators;
        set
    }

    /// How many indicators are loaded.
    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    /// Whether no indicator is loaded.
    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    fn chain<'a>(
        &'a self,
        first: u32,
        field: &'static str,
        atomic: &str,
        out: &mut Vec<Match<'a>>,
    ) {
        let mut at = first;
        while at != NONE && out.len() < MAX_MATCHES_PER_EVENT {
            out.push(Match {
                indicator: &self.indicators[at as usize],
                field,
                atomic: atomic.to_owned(),
            });
            at = self.next[at as usize];
        }
    }

    /// The indicators `event` matches, most specific first per field, at most
    /// [`MAX_MATCHES_PER_EVENT`].
    pub fn matches<'a>(&'a self, event: &Event) -> Vec<Match<'a>> {
        let mut out = Vec::new();
        if self.indicators.is_empty() {
            return out;
        }
        if !self.nets.is_empty() {
            for &field in IP_FIELDS {
                let addr = match event.get(field) {
                    Some(Value::Ip(a)) => *a,
                    Some(Value::Str(s)) => match s.parse() {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                    _ => continue,
                };
                // An IPv4-mapped IPv6 address is matched as IPv4.
                let addr = match addr {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
                    a => a,
                };
                for ((len, v6), table) in &self.nets {
                    if *v6 != addr.is_ipv6() {
                        continue;
                    }
                    if let Some(&first) = table.get(&mask(addr, *len)) {
                        self.chain(first, field, &addr.to_string(), &mut out);
                    }
                }
            }
        }
        if !self.domains.is_empty() {
            for &field in DOMAIN_FIELDS {
                if let Some(name) = event.get_str(field) {
                    self.domain(name, field, &mut out);
                }
            }
        }
        for &field in URL_FIELDS {
            let Some(url) = event.get_str(field) else {
                continue;
            };
            if !self.urls.is_empty()
                && url.len() <= crate::indicator::MAX_VALUE_BYTES
                && let Some(&first) = self.urls.get(url.to_ascii_lowercase().as_str())
            {
                self.chain(first, field, url, &mut out);
            }
            if !self.domains.is_empty()
                && event.get(field_domain_for(field)).is_none()
                && let Some(host) = url_host(url)
            {
                self.domain(host, field, &mut out);
            }
        }
        if !self.hashes.is_empty() {
            for &field in HASH_FIELDS {
                if let Some(h) = event.get_str(field)
                    && h.len() <= 64
                    && let Some(&first) = self.hashes.get(h.to_ascii_lowercase().as_str())
                {
                    self.chain(first, field, h, &mut out);
                }
            }
        }
        out
    }

    fn domain<'a>(&'a self, name: &str, field: &'static str, out: &mut Vec<Match<'a>>) {
        if name.len() > 253 {
            return;
        }
        let lower = name.trim_end_matches('.').to_ascii_lowercase();
        let mut rest = lower.as_str();
        loop {
            if let Some(&first) = self.domains.get(rest) {
                self.chain(first, field, name, out);
                return;
            }
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => return,
            }
        }
    }
}

/// The domain field beside a URL field (`url.full` → `url.domain`), already matched as a
/// domain when present.
fn field_domain_for(_url_field: &str) -> &'static str {
    "url.domain"
}

/// The host of a URL (`https://user@Host.example:8443/x` → `Host.example`), if it has one.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']').next()?.trim_start_matches('[')
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ind(kind: Kind, v: &str, feed: &str) -> Indicator {
        Indicator::new(kind, v, feed).unwrap()
    }

    fn event(fields: &[(&str, &str)]) -> Event {
        let mut e = Event::new(vigil_event::Timestamp::from_secs(0));
        for (k, v) in fields {
            if k.ends_with(".ip") {
                e.insert(*k, Value::Ip(v.parse().unwrap()));
            } else {
                e.insert(*k, *v);
            }
        }
        e
    }

    #[test]
    fn addresses_networks_domains_urls_and_hashes_match() {
        let set = IntelSet::new(vec![
            ind(Kind::Ip, "198.51.100.7", "a"),
            ind(Kind::Ip, "203.0.113.0/24", "b"),
            ind(Kind::Ip, "2001:db8::/32", "b"),
            ind(Kind::Domain, "evil.example", "c"),
            ind(Kind::Url, "http://x.example/Payload.exe", "d"),
            ind(Kind::Sha256, &"ab".repeat(32), "e"),
        ]);
        let m = set.matches(&event(&[("source.ip", "198.51.100.7")]));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].indicator.provider, "a");
        let m = set.matches(&event(&[("destination.ip", "203.0.113.200")]));
        assert_eq!(
            (m[0].field, m[0].indicator.value.as_str()),
            ("destination.ip", "203.0.113.0/24")
        );
        assert_eq!(
            set.matches(&event(&[("source.ip", "2001:db8:1::5")])).len(),
            1
        );
        assert!(
            set.matches(&event(&[("source.ip", "203.0.114.1")]))
                .is_empty()
        );
        // Mapped IPv4 in IPv6 form.
        assert_eq!(
            set.matches(&event(&[("source.ip", "::ffff:198.51.100.7")]))
                .len(),
            1
        );
        // Subdomains, case, trailing dot; a lookalike does not match.
        assert_eq!(
            set.matches(&event(&[("dns.question.name", "A.B.Evil.Example.")]))
                .len(),
            1
        );
        assert!(
            set.matches(&event(&[("dns.question.name", "notevil.example")]))
                .is_empty()
        );
        // URL whole (case-insensitive) and its host as a domain.
        assert_eq!(
            set.matches(&event(&[("url.full", "HTTP://x.example/payload.exe")]))
                .len(),
            1
        );
        let m = set.matches(&event(&[(
            "url.original",
            "https://u@www.evil.example:8443/a",
        )]));
        assert_eq!(m[0].indicator.kind, Kind::Domain);
        assert_eq!(
            set.matches(&event(&[("file.hash.sha256", &"AB".repeat(32))]))
                .len(),
            1
        );
        assert!(
            set.matches(&event(&[("user.name", "evil.example")]))
                .is_empty()
        );
    }

    #[test]
    fn the_same_value_in_two_feeds_reports_both_and_matches_are_capped() {
        let mut list = vec![
            ind(Kind::Ip, "198.51.100.7", "a"),
            ind(Kind::Ip, "198.51.100.7", "b"),
        ];
        for i in 0..40 {
            list.push(ind(Kind::Ip, "198.51.100.7", &format!("f{i}")));
        }
        let set = IntelSet::new(list);
        let m = set.matches(&event(&[("source.ip", "198.51.100.7")]));
        assert_eq!(m.len(), MAX_MATCHES_PER_EVENT);
        assert_eq!(
            (
                m[0].indicator.provider.as_str(),
                m[1].indicator.provider.as_str()
            ),
            ("a", "b")
        );
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://a.example/x"), Some("a.example"));
        assert_eq!(url_host("http://u:p@h.example:80?q"), Some("h.example"));
        assert_eq!(url_host("http://[2001:db8::1]:80/"), Some("2001:db8::1"));
        assert_eq!(url_host("no scheme"), None);
        assert_eq!(url_host("http:///x"), None);
    }
}
