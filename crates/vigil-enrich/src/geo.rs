//! GeoIP and ASN from a user-supplied MaxMind DB file (GeoLite2/GeoIP2 City, Country or ASN,
//! or any database of the same record shape), read with the `maxminddb` crate.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use vigil_event::{Event, Value};

/// The address fields looked up, and the prefix their results go under.
pub const GEO_FIELDS: &[(&str, &str)] = &[
    ("source.ip", "source"),
    ("destination.ip", "destination"),
    ("client.ip", "client"),
    ("server.ip", "server"),
];

/// The fields GeoIP writes under each prefix (`source.geo.country_iso_code`, …).
pub const GEO_SUFFIXES: &[&str] = &[
    "geo.country_iso_code",
    "geo.country_name",
    "geo.continent_code",
    "geo.city_name",
    "geo.location.lat",
    "geo.location.lon",
    "as.number",
    "as.organization.name",
];

/// An opened database.
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("type", &self.reader.metadata().database_type)
            .finish()
    }
}

#[derive(Deserialize, Default)]
struct Named<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(default)]
    code: Option<&'a str>,
    #[serde(borrow, default)]
    names: BTreeMap<&'a str, &'a str>,
}

#[derive(Deserialize, Default)]
struct Location {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}

#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Named<'a>>,
    #[serde(borrow, default)]
    continent: Option<Named<'a>>,
    #[serde(borrow, default)]
    city: Option<Named<'a>>,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

fn short(s: &str) -> Value {
    Value::Str(s.chars().take(256).collect())
}

impl GeoDb {
    /// Opens a database from its bytes; an error says what is wrong with the file.
    pub fn open(bytes: Vec<u8>) -> Result<GeoDb, String> {
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| e.to_string())?;
        Ok(GeoDb { reader })
    }

    /// The database's type as its metadata says (`GeoLite2-City`, `GeoLite2-ASN`, …).
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// The fields (suffixes of [`GEO_SUFFIXES`]) for `addr`, empty when the database has
    /// nothing for it or its record cannot be read.
    pub fn lookup(&self, addr: IpAddr) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        let Ok(result) = self.reader.lookup(addr) else {
            return out;
        };
        let Ok(Some(r)) = result.decode::<Record<'_>>() else {
            return out;
        };
        if let Some(c) = &r.country {
            if let Some(iso) = c.iso_code {
                out.push(("geo.country_iso_code", short(iso)));
            }
            if let Some(name) = c.names.get("en") {
                out.push(("geo.country_name", short(name)));
            }
        }
        if let Some(code) = r.continent.as_ref().and_then(|c| c.code) {
            out.push(("geo.continent_code", short(code)));
        }
        if let Some(name) = r.city.as_ref().and_then(|c| c.names.get("en")) {
            out.push(("geo.city_name", short(name)));
        }
        if let Some(Location {
            latitude: Some(lat),
            longitude: Some(lon),
        }) = r.location
        {
            out.push(("geo.location.lat", Value::Float(lat)));
            out.push(("geo.location.lon", Value::Float(lon)));
        }
        if let Some(n) = r.autonomous_system_number {
            out.push(("as.number", Value::Int(i64::from(n))));
        }
        if let Some(org) = r.autonomous_system_organization {
            out.push(("as.organization.name", short(org)));
        }
        out
    }
}

/// Adds what `dbs` know of the event's addresses; returns whether anything was added.
pub fn enrich(dbs: &[&GeoDb], event: &mut Event) -> bool {
    let mut added = false;
    for (field, prefix) in GEO_FIELDS {
        let addr = match event.get(field) {
            Some(Value::Ip(a)) => *a,
            Some(Value::Str(s)) => match s.parse() {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ => continue,
        };
        for db in dbs {
            for (suffix, value) in db.lookup(addr) {
                event.insert(format!("{prefix}.{suffix}"), value);
                added = true;
            }
        }
    }
    added
}

/// Writers of tiny MaxMind DB files, for tests (Vigil's and its users'): the format is
/// documented at <https://maxmind.github.io/MaxMind-DB/>; this writes an IPv6 tree (IPv4 at
/// `::a.b.c.d`) with 24-bit records, one data record per network.
pub mod testing {
    use std::net::IpAddr;

    /// A value of the data section.
    #[derive(Debug, Clone)]
    pub enum Data {
        /// A UTF-8 string.
        Str(String),
        /// An unsigned 16-bit integer.
        U16(u16),
        /// An unsigned 32-bit integer.
        U32(u32),
        /// An unsigned 64-bit integer.
        U64(u64),
        /// A double.
        F64(f64),
        /// A map.
        Map(Vec<(String, Data)>),
        /// An array.
        Array(Vec<Data>),
    }

    fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
        // Types 1–7 go in the control byte; larger ones are "extended" (type 0 + next byte).
        let (first, ext) = if kind <= 7 {
            (kind << 5, None)
        } else {
            (0, Some(kind - 7))
        };
        assert!(size < 29, "the test writer keeps sizes small");
        out.push(first | size as u8);
        if let Some(e) = ext {
            out.push(e);
        }
    }

    fn uint(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        control(out, kind, bytes.len() - skip);
        out.extend_from_slice(&bytes[skip..]);
    }

    fn encode(out: &mut Vec<u8>, d: &Data) {
        match d {
            Data::Str(s) => {
                let b = s.as_bytes();
                if b.len() < 29 {
                    control(out, 2, b.len());
                } else {
                    out.push((2 << 5) | 29);
                    out.push((b.len() - 29) as u8);
                }
                out.extend_from_slice(b);
            }
            Data::F64(f) => {
                control(out, 3, 8);
                out.extend_from_slice(&f.to_be_bytes());
            }
            Data::U16(n) => uint(out, 5, &n.to_be_bytes()),
            Data::U32(n) => uint(out, 6, &n.to_be_bytes()),
            Data::U64(n) => uint(out, 9, &n.to_be_bytes()),
            Data::Array(items) => {
                control(out, 11, items.len());
                for v in items {
                    encode(out, v);
                }
            }
            Data::Map(entries) => {
                control(out, 7, entries.len());
                for (k, v) in entries {
                    encode(out, &Data::Str(k.clone()));
                    encode(out, v);
                }
            }
        }
    }

    /// A database with `networks` (address, prefix length, record), of `database_type`.
    pub fn write(database_type: &str, networks: &[(IpAddr, u8, Data)]) -> Vec<u8> {
        // The tree as nodes of [left, right]; a record is a node index, `node_count` (no
        // data) or `node_count + 16 + offset` (data). Built with placeholders, then fixed.
        #[derive(Clone, Copy)]
        enum Rec {
            Node(usize),
            Empty,
            Data(usize),
        }
        let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
        let mut data = Vec::new();
        for (addr, len, record) in networks {
            let (bits, len) = match addr {
                IpAddr::V4(a) => (u128::from(u32::from(*a)), *len as usize + 96),
                IpAddr::V6(a) => (u128::from(*a), *len as usize),
            };
            let offset = data.len();
            encode(&mut data, record);
            let mut node = 0;
            for depth in 0..len {
                let bit = ((bits >> (127 - depth)) & 1) as usize;
                if depth == len - 1 {
                    nodes[node][bit] = Rec::Data(offset);
                } else {
                    node = match nodes[node][bit] {
                        Rec::Node(n) => n,
                        _ => {
                            nodes.push([Rec::Empty, Rec::Empty]);
                            let n = nodes.len() - 1;
                            nodes[node][bit] = Rec::Node(n);
                            n
                        }
                    };
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for node in &nodes {
            for rec in node {
                let v = match rec {
                    Rec::Node(n) => *n,
                    Rec::Empty => count,
                    Rec::Data(off) => count + 16 + off,
                } as u32;
                out.extend_from_slice(&v.to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let meta = Data::Map(vec![
            ("node_count".into(), Data::U32(count as u32)),
            ("record_size".into(), Data::U16(24)),
            ("ip_version".into(), Data::U16(6)),
            ("database_type".into(), Data::Str(database_type.into())),
            ("binary_format_major_version".into(), Data::U16(2)),
            ("binary_format_minor_version".into(), Data::U16(0)),
            ("build_epoch".into(), Data::U64(1_700_000_000)),
            (
                "description".into(),
                Data::Map(vec![("en".into(), Data::Str("test".into()))]),
            ),
            (
                "languages".into(),
                Data::Array(vec![Data::Str("en".into())]),
            ),
        ]);
        let mut m = Vec::new();
        encode(&mut m, &meta);
        out.extend_from_slice(&m);
        out
    }

    /// A City-and-ASN-shaped record.
    pub fn record(country: &str, country_name: &str, city: &str, asn: u32, org: &str) -> Data {
        let names = |n: &str| Data::Map(vec![("en".into(), Data::Str(n.into()))]);
        Data::Map(vec![
            (
                "country".into(),
                Data::Map(vec![
                    ("iso_code".into(), Data::Str(country.into())),
                    ("names".into(), names(country_name)),
                ]),
            ),
            (
                "city".into(),
                Data::Map(vec![("names".into(), names(city))]),
            ),
            (
                "location".into(),
                Data::Map(vec![
                    ("latitude".into(), Data::F64(48.85)),
                    ("longitude".into(), Data::F64(2.35)),
                ]),
            ),
            ("autonomous_system_number".into(), Data::U32(asn)),
            (
                "autonomous_system_organization".into(),
                Data::Str(org.into()),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_database_enriches_source_and_destination() {
        let bytes = testing::write(
            "Vigil-Test-City",
            &[
                (
                    "203.0.113.0".parse().unwrap(),
                    24,
                    testing::record("FR", "France", "Paris", 64500, "Example Transit"),
                ),
                (
                    "2001:db8::".parse().unwrap(),
                    32,
                    testing::record("DE", "Germany", "Berlin", 64501, "Example Six"),
                ),
            ],
        );
        let db = GeoDb::open(bytes).unwrap();
        assert_eq!(db.database_type(), "Vigil-Test-City");
        let mut e = Event::new(vigil_event::Timestamp::from_secs(0));
        e.insert("source.ip", Value::Ip("203.0.113.9".parse().unwrap()));
        e.insert("destination.ip", "2001:db8::1");
        e.insert("client.ip", Value::Ip("198.51.100.1".parse().unwrap()));
        assert!(enrich(&[&db], &mut e));
        assert_eq!(e.get_str("source.geo.country_iso_code"), Some("FR"));
        assert_eq!(e.get_str("source.geo.city_name"), Some("Paris"));
        assert_eq!(e.get("source.as.number"), Some(&Value::Int(64500)));
        assert_eq!(
            e.get_str("source.as.organization.name"),
            Some("Example Transit")
        );
        assert_eq!(e.get_str("destination.geo.country_name"), Some("Germany"));
        assert!(e.get("client.geo.country_iso_code").is_none());
    }

    #[test]
    fn broken_databases_are_refused() {
        assert!(GeoDb::open(b"not a database".to_vec()).is_err());
        assert!(GeoDb::open(Vec::new()).is_err());
        let mut bytes = testing::write(
            "T",
            &[(
                "10.0.0.0".parse().unwrap(),
                8,
                testing::record("FR", "F", "P", 1, "o"),
            )],
        );
        // Cut the metadata: refused.
        let cut = bytes.len() - 20;
        bytes.truncate(cut);
        assert!(GeoDb::open(bytes).is_err());
    }
}
