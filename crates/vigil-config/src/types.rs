//! The value types of settings: durations, listener addresses, secrets, redaction patterns.
//! Each parses from the text a flag or the TOML file gives and serializes back to text.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Implements `Serialize` and `Deserialize` through `Display` and `FromStr`.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A length of time written with a unit: `500ms`, `5s`, `30m`, `4h`, `365d`, `2w`, `1y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// `n` seconds.
    pub const fn secs(n: u64) -> Duration {
        Duration(std::time::Duration::from_secs(n))
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        vigil_ledger::parse_duration(text).map(Duration)
    }
}

impl fmt::Display for Duration {
    /// The largest unit that states it exactly: `1800s` is `30m`, `1500ms` stays `1500ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() != 0 || d.is_zero() {
            return write!(f, "{}ms", d.as_millis());
        }
        let secs = d.as_secs();
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if secs.is_multiple_of(size) {
                return write!(f, "{}{unit}", secs / size);
            }
        }
        write!(f, "{secs}s")
    }
}

serde_as_text!(Duration);

/// Where a listener listens: `IP:PORT`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// The listener is off.
    Off,
    /// The listener binds this address.
    At(SocketAddr),
}

impl Listen {
    /// The address, unless the listener is off.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Listen::Off => None,
            Listen::At(a) => Some(a),
        }
    }

    /// On loopback at this address.
    pub fn local(text: &'static str) -> Listen {
        Listen::At(text.parse().expect("static address"))
    }
}

impl FromStr for Listen {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, String> {
        if value.eq_ignore_ascii_case("off") || value.is_empty() {
            return Ok(Listen::Off);
        }
        value
            .parse()
            .map(Listen::At)
            .map_err(|_| format!("{value:?}: expected IP:PORT (e.g. 127.0.0.1:5514) or off"))
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Off => f.write_str("off"),
            Listen::At(a) => write!(f, "{a}"),
        }
    }
}

serde_as_text!(Listen);

/// A setting whose value must not be shown: a webhook URL (it carries its token), a redaction
/// pattern (it describes the secret), a query rule's query. It is read as its value; it
/// serializes (into the settings audit) and prints as a fingerprint, the first 8 hex digits
/// of the SHA-256 of its value, so a change shows and the value does not.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(pub T);

impl<T> Secret<T> {
    /// The value.
    pub fn reveal(&self) -> &T {
        &self.0
    }
}

impl<T: Serialize> Secret<T> {
    /// `#` and the first 8 hex digits of the SHA-256 of the value's JSON.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_string(&self.0).unwrap_or_default();
        format!("#{}", fingerprint(&json))
    }
}

/// The first 8 hex digits of the SHA-256 of `text`.
pub fn fingerprint(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl<T: Serialize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

impl<T: Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.fingerprint())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Secret)
    }
}

impl<T: FromStr> FromStr for Secret<T> {
    type Err = T::Err;
    fn from_str(text: &str) -> Result<Self, T::Err> {
        text.parse().map(Secret)
    }
}

/// A URL that may carry a secret (a webhook's token, in its path or query or userinfo): read
/// as its value; serializes and prints as its scheme and host and a fingerprint of the whole
/// (`https://hooks.example.org/… #1a2b3c4d`), so the audit shows where alerts go and that the
/// URL changed, never the token.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(pub String);

impl SecretUrl {
    /// The URL.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// `scheme://host[:port]/… #fingerprint`, with no userinfo, path or query.
    pub fn shown(&self) -> String {
        let fp = fingerprint(&self.0);
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return format!("#{fp}");
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit('@').next().unwrap_or("");
        format!("{scheme}://{host}/… #{fp}")
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", self.shown())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.shown())
    }
}

impl FromStr for SecretUrl {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(SecretUrl(text.to_owned()))
    }
}

/// A password: read as its value, never printed (`Debug` shows `***`) and never serialized
/// (the field holding it is `skip_serializing`), not even as a fingerprint, which a guess
/// could be checked against.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// The password.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Password {
    fn from(text: &str) -> Password {
        Password(text.to_owned())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// An extra secret pattern: matches of `regex` are stored as `[REDACTED:kind]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactPattern {
    /// The name in the mask.
    pub kind: String,
    /// The regular expression.
    pub regex: String,
}

impl FromStr for RedactPattern {
    type Err = String;
    /// `KIND=REGEX`, as `--redact` takes it.
    fn from_str(spec: &str) -> Result<Self, String> {
        let (kind, regex) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?}: expected KIND=REGEX"))?;
        Ok(RedactPattern {
            kind: kind.to_owned(),
            regex: regex.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_their_largest_exact_unit_and_read_back() {
        for (text, shown) in [
            ("1800s", "30m"),
            ("60s", "1m"),
            ("90s", "90s"),
            ("500ms", "500ms"),
            ("1500ms", "1500ms"),
            ("365d", "365d"),
            ("4h", "4h"),
        ] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.to_string(), shown);
            assert_eq!(shown.parse::<Duration>().unwrap(), d);
        }
        assert!("5".parse::<Duration>().is_err());
    }

    #[test]
    fn listen_addresses_and_off() {
        assert_eq!("off".parse::<Listen>().unwrap(), Listen::Off);
        assert_eq!(
            "127.0.0.1:9".parse::<Listen>().unwrap().addr(),
            Some("127.0.0.1:9".parse().unwrap())
        );
        let err = "localhost".parse::<Listen>().unwrap_err();
        assert!(err.contains("expected IP:PORT"), "{err}");
    }

    #[test]
    fn urls_show_scheme_and_host_only() {
        let u = SecretUrl("https://user:SECRET@hooks.example.org:8443/T0/SECRET?k=SECRET".into());
        let shown = u.shown();
        assert!(
            shown.starts_with("https://hooks.example.org:8443/… #"),
            "{shown}"
        );
        assert!(!shown.contains("SECRET") && !format!("{u:?}").contains("SECRET"));
        assert_ne!(
            shown,
            SecretUrl("https://hooks.example.org:8443/T0/OTHER".into()).shown()
        );
        assert!(!SecretUrl("SECRET".into()).shown().contains("SECRET"));
    }

    #[test]
    fn secrets_show_only_a_fingerprint() {
        let s: Secret<String> = Secret("https://hooks.example/T0/SECRET".into());
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.starts_with("\"#") && !json.contains("SECRET"),
            "{json}"
        );
        assert!(!format!("{s:?}").contains("SECRET"));
        let other: Secret<String> = Secret("https://hooks.example/T0/OTHER".into());
        assert_ne!(s.fingerprint(), other.fingerprint());
        let read: Secret<String> = serde_json::from_str("\"plain\"").unwrap();
        assert_eq!(read.reveal(), "plain");
    }
}
