//! An indicator of compromise: one atomic value (an address or network, a domain, a URL, a file
//! hash) with where it came from.

use std::net::IpAddr;

/// What an indicator's value is. The names are STIX 2.1's cyber-observable types, which ECS
/// uses for `threat.indicator.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One IPv4 or IPv6 address, or a network in CIDR notation.
    Ip,
    /// A domain name; it also matches every name below it (`evil.example` matches
    /// `a.evil.example`).
    Domain,
    /// A URL, matched whole (case-insensitively).
    Url,
    /// An MD5 file hash.
    Md5,
    /// A SHA-1 file hash.
    Sha1,
    /// A SHA-256 file hash.
    Sha256,
}

impl Kind {
    /// The ECS `threat.indicator.type` value.
    pub fn ecs_type(self, value: &str) -> &'static str {
        match self {
            Kind::Ip if value.contains(':') => "ipv6-addr",
            Kind::Ip => "ipv4-addr",
            Kind::Domain => "domain-name",
            Kind::Url => "url",
            Kind::Md5 | Kind::Sha1 | Kind::Sha256 => "file",
        }
    }

    /// A short name (`ip`, `domain`, `url`, `md5`, `sha1`, `sha256`), as in CSV `type` columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ip => "ip",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha256 => "sha256",
        }
    }

    /// Reads a type name: the short names, STIX's (`ipv4-addr`, `domain-name`, …) and MISP's
    /// attribute types (`ip-src`, `ip-dst`, `hostname`, …). `None` for anything else.
    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "ip" | "ipv4" | "ipv6" | "ipv4-addr" | "ipv6-addr" | "ip-src" | "ip-dst" | "cidr" => {
                Kind::Ip
            }
            "domain" | "domain-name" | "hostname" | "fqdn" => Kind::Domain,
            "url" | "uri" | "link" => Kind::Url,
            "md5" => Kind::Md5,
            "sha1" | "sha-1" => Kind::Sha1,
            "sha256" | "sha-256" => Kind::Sha256,
            _ => return None,
        })
    }

    /// Guesses the kind of a bare value (plain lists): an address or network, a hash by its
    /// length in hex, a URL by its scheme, else a domain if it looks like one.
    pub fn infer(value: &str) -> Option<Kind> {
        if parse_network(value).is_some() {
            return Some(Kind::Ip);
        }
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return match value.len() {
                32 => Some(Kind::Md5),
                40 => Some(Kind::Sha1),
                64 => Some(Kind::Sha256),
                _ => None,
            };
        }
        if value.contains("://") {
            return Some(Kind::Url);
        }
        is_domain(value).then_some(Kind::Domain)
    }
}

/// Whether `value` looks like a DNS name: labels of letters, digits, `-` and `_`, at least
/// two of them.
pub(crate) fn is_domain(value: &str) -> bool {
    let value = value.trim_end_matches('.');
    value.len() <= 253
        && value.contains('.')
        && value.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// An address (`/32` or `/128`) or a network: `(address, prefix length)`, the address masked.
pub fn parse_network(value: &str) -> Option<(IpAddr, u8)> {
    let value = value.trim();
    let (addr, len) = match value.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (value, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    if len > max {
        return None;
    }
    Some((mask(addr, len), len))
}

/// `addr` with all but its first `len` bits cleared.
pub(crate) fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// One indicator as loaded from a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    /// The value as the matcher compares it: lowercased for domains, URLs and hashes; an
    /// address or `address/len` for networks.
    pub value: String,
    /// What it is.
    pub kind: Kind,
    /// The feed (source) it came from: the provider STIX names, else the file's name.
    pub provider: String,
    /// When it was first seen or became valid, as the feed says (RFC 3339 text).
    pub first_seen: Option<String>,
    /// When it was last seen or changed, as the feed says.
    pub last_seen: Option<String>,
    /// The feed's confidence, 0–100, where it gives one.
    pub confidence: Option<u8>,
    /// A description or name the feed gives (the STIX indicator's name, the MISP event's info).
    pub description: Option<String>,
}

/// Longest indicator value kept (longer ones are skipped: no real URL or name is this long).
pub const MAX_VALUE_BYTES: usize = 4096;

impl Indicator {
    /// An indicator of `kind` with its value normalised, or `None` if the value is not one
    /// (an address that does not parse, a hash of the wrong length, an empty value).
    pub fn new(kind: Kind, value: &str, provider: &str) -> Option<Indicator> {
        let value = value.trim();
        if value.is_empty() || value.len() > MAX_VALUE_BYTES {
            return None;
        }
        let value = match kind {
            Kind::Ip => {
                let (addr, len) = parse_network(value)?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                if len == max {
                    addr.to_string()
                } else {
                    format!("{addr}/{len}")
                }
            }
            Kind::Domain => {
                let v = value.trim_end_matches('.').to_ascii_lowercase();
                if !is_domain(&v) {
                    return None;
                }
                v
            }
            Kind::Url => value.to_ascii_lowercase(),
            Kind::Md5 | Kind::Sha1 | Kind::Sha256 => {
                let want = match kind {
                    Kind::Md5 => 32,
                    Kind::Sha1 => 40,
                    _ => 64,
                };
                if value.len() != want || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                value.to_ascii_lowercase()
            }
        };
        Some(Indicator {
            value,
            kind,
            provider: provider.to_owned(),
            first_seen: None,
            last_seen: None,
            confidence: None,
            description: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_inferred_from_bare_values() {
        assert_eq!(Kind::infer("198.51.100.7"), Some(Kind::Ip));
        assert_eq!(Kind::infer("2001:db8::/32"), Some(Kind::Ip));
        assert_eq!(
            Kind::infer("d41d8cd98f00b204e9800998ecf8427e"),
            Some(Kind::Md5)
        );
        assert_eq!(Kind::infer(&"a".repeat(40)), Some(Kind::Sha1));
        assert_eq!(Kind::infer(&"B".repeat(64)), Some(Kind::Sha256));
        assert_eq!(Kind::infer("http://x.example/a"), Some(Kind::Url));
        assert_eq!(Kind::infer("evil.example"), Some(Kind::Domain));
        assert_eq!(Kind::infer("not a value"), None);
        assert_eq!(Kind::infer("abc"), None);
    }

    #[test]
    fn values_are_normalised_and_bad_ones_refused() {
        let i = Indicator::new(Kind::Ip, "10.1.2.3/8", "f").unwrap();
        assert_eq!(i.value, "10.0.0.0/8");
        assert_eq!(
            Indicator::new(Kind::Ip, "10.1.2.3/32", "f").unwrap().value,
            "10.1.2.3"
        );
        assert!(Indicator::new(Kind::Ip, "10.1.2.3/33", "f").is_none());
        assert!(Indicator::new(Kind::Ip, "nope", "f").is_none());
        assert_eq!(
            Indicator::new(Kind::Domain, "EVIL.Example.", "f")
                .unwrap()
                .value,
            "evil.example"
        );
        assert!(Indicator::new(Kind::Md5, "abc", "f").is_none());
        assert!(Indicator::new(Kind::Url, &"a".repeat(MAX_VALUE_BYTES + 1), "f").is_none());
    }
}
