//! The random events and queries of the differential tests (shared by `differential.rs`, which
//! checks the indexed engine against the reference, and `distributed.rs`, which checks the
//! cluster's split-and-merge against one store).
#![allow(dead_code)]

use std::net::IpAddr;

use vigil_event::{Event, Timestamp, Value};
use vigil_query::QueryResult;

/// A tiny deterministic generator (the seed comes from proptest).
pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

pub const WORDS: &[&str] = &[
    "Failed",
    "password",
    "for",
    "root",
    "admin",
    "invalid",
    "user",
    "from",
    "port",
    "ssh2",
    "Accepted",
    "publickey",
    "GET",
    "POST",
    "login.php",
    "wp-admin",
    "Σίσυφος",
    "ÄRGER",
    "404",
    "x",
];
pub const USERS: &[&str] = &[
    "root",
    "Root",
    "admin",
    "alice",
    "bob",
    "",
    "ALICE",
    "svc-backup",
];
pub const IPS: &[&str] = &[
    "10.0.0.1",
    "10.0.0.7",
    "10.1.2.3",
    "192.168.1.20",
    "203.0.113.5",
    "2001:db8::1",
    "2001:db8::ff",
    "fe80::1",
];
pub const HOSTS: &[&str] = &["web-1", "web-2", "db", "WEB-1"];
pub const OUTCOMES: &[&str] = &["success", "failure", "unknown"];

pub fn random_event(g: &mut Gen) -> Event {
    let t = 1_700_000_000 + g.below(4 * 3600) as i64;
    let mut e = Event::new(Timestamp::from_nanos(
        t * 1_000_000_000 + g.below(1000) as i64,
    ));
    if g.chance(80) {
        let n = 1 + g.below(8);
        let text: Vec<&str> = (0..n).map(|_| *g.pick(WORDS)).collect();
        let sep = *g.pick(&[" ", " ", "-", "/", ": "]);
        e.insert("message", text.join(sep));
    }
    if g.chance(20) {
        let text: Vec<&str> = (0..3).map(|_| *g.pick(WORDS)).collect();
        e.insert("event.original", text.join(" "));
    }
    if g.chance(85) {
        let ip = *g.pick(IPS);
        if g.chance(90) {
            e.insert("source.ip", ip.parse::<IpAddr>().unwrap());
        } else {
            e.insert("source.ip", "not-an-ip");
        }
    }
    if g.chance(10) {
        e.insert("client_ip", *g.pick(IPS));
    }
    if g.chance(70) {
        match g.below(10) {
            0 => e.insert("user.name", 1000i64),
            _ => e.insert("user.name", *g.pick(USERS)),
        }
    }
    if g.chance(60) {
        let code = *g.pick(&[200i64, 301, 403, 404, 500]);
        match g.below(10) {
            0 => e.insert("http.response.status_code", code.to_string()),
            1 => e.insert("http.response.status_code", code as f64 + 0.5),
            2 => e.insert("http.response.status_code", "n/a"),
            _ => e.insert("http.response.status_code", code),
        }
    }
    if g.chance(60) {
        e.insert("host.name", *g.pick(HOSTS));
    }
    if g.chance(70) {
        e.insert("event.outcome", *g.pick(OUTCOMES));
    }
    if g.chance(50) {
        e.insert(
            "vigil.sourcetype",
            *g.pick(&["access_combined", "syslog", "linux_secure"]),
        );
    }
    if g.chance(15) {
        let n = g.below(3);
        let items = (0..n).map(|_| Value::from(*g.pick(USERS))).collect();
        e.insert("tags", Value::List(items));
    }
    if g.chance(5) {
        e.insert("odd.null", Value::Null);
    }
    if g.chance(10) {
        e.insert("bytes", g.below(5000) as i64);
    }
    if g.chance(5) {
        e.insert("flag", g.chance(50));
    }
    if g.chance(10) {
        // Floats at a plain path: in their column only when finite (format 4), else with terms.
        let x = *g.pick(&[0.0, -0.0, 1.5, -2.25, 403.0, f64::NAN, f64::INFINITY]);
        e.insert("ratio", Value::float(x));
    }
    if g.chance(3) {
        // Longer than a keyword term: not in a column, marked `long`.
        e.insert("host.name", format!("web-{}", "x".repeat(1100)));
    }
    e
}

pub const FIELDS: &[&str] = &[
    "source.ip",
    "src_ip",
    "src",
    "user.name",
    "user",
    "http.response.status_code",
    "status",
    "host.name",
    "host",
    "event.outcome",
    "sourcetype",
    "tags",
    "odd.null",
    "bytes",
    "flag",
    "ratio",
    "message",
    "missing.field",
];
pub const GROUP_FIELDS: &[&str] = &[
    "source.ip",
    "src_ip",
    "user.name",
    "user",
    "status",
    "host.name",
    "event.outcome",
    "sourcetype",
    "bytes",
    "flag",
    "tags",
    "odd.null",
];

pub fn value_text(g: &mut Gen) -> String {
    let v = match g.below(9) {
        0 => g.pick(IPS).to_string(),
        1 => g.pick(USERS).to_string(),
        2 => g.pick(HOSTS).to_string(),
        3 => g.pick(OUTCOMES).to_string(),
        4 => g
            .pick(&["403", "404", "200", "500.5", "n/a", "1000"])
            .to_string(),
        5 => g
            .pick(&["ro*", "*1", "*", "web-*", "*dmi*", "10.0.*"])
            .to_string(),
        6 => g.pick(&["access_combined", "syslog"]).to_string(),
        7 => g
            .pick(&["true", "false", "null", "-0", "0", "1.5", "NaN", "inf"])
            .to_string(),
        _ => g.pick(WORDS).to_string(),
    };
    if v.is_empty() || v.contains(|c: char| !c.is_alphanumeric() && !"-.*_".contains(c)) {
        format!("\"{v}\"")
    } else {
        v
    }
}

pub fn search_atom(g: &mut Gen) -> String {
    match g.below(11) {
        10 => {
            // The ledger sequence number, as an analyst copies it from an alert.
            let op = *g.pick(&["<", "<=", ">", ">=", "!=", "=", "="]);
            let n = *g.pick(&["0", "3", "10", "59", "17.5", "-1", "\"5\"", "1*", "99999"]);
            if g.chance(20) {
                format!("vigil.seq IN ({n}, {})", g.below(40))
            } else {
                format!("vigil.seq{op}{n}")
            }
        }
        0 | 1 => {
            let w = *g.pick(WORDS);
            match g.below(4) {
                0 => format!("{}*", &w[..w.chars().next().map_or(0, char::len_utf8)]),
                1 => format!("\"{} {}\"", w, g.pick(WORDS)),
                2 => format!("\"*{}\"", g.pick(&["ail", "ssw", "dmin", "in"])),
                _ => format!("\"{w}\""),
            }
        }
        2 => {
            let net = *g.pick(&[
                "10.0.0.0/8",
                "10.0.0.0/24",
                "2001:db8::/32",
                "0.0.0.0/0",
                "203.0.113.5/32",
            ]);
            let op = *g.pick(&["=", "!="]);
            format!("{}{op}{net}", g.pick(&["source.ip", "src_ip", "client_ip"]))
        }
        3 => {
            let op = *g.pick(&["<", "<=", ">", ">=", "!=", "="]);
            let n = *g.pick(&["403", "400", "200", "1000", "500.5", "0", "-1"]);
            format!(
                "{}{op}{n}",
                g.pick(&[
                    "status",
                    "http.response.status_code",
                    "bytes",
                    "user.name",
                    "ratio"
                ])
            )
        }
        4 => {
            let op = *g.pick(&["<", ">", ">=", "<="]);
            format!("{}{op}{}", g.pick(FIELDS), value_text(g))
        }
        5 => {
            let n = 1 + g.below(3);
            let vals: Vec<String> = (0..n).map(|_| value_text(g)).collect();
            format!("{} IN ({})", g.pick(FIELDS), vals.join(", "))
        }
        _ => {
            let op = *g.pick(&["=", "=", "!="]);
            format!("{}{op}{}", g.pick(FIELDS), value_text(g))
        }
    }
}

pub fn search_expr(g: &mut Gen, depth: u32) -> String {
    if depth == 0 || g.chance(40) {
        return search_atom(g);
    }
    match g.below(4) {
        0 => format!(
            "{} {}",
            search_expr(g, depth - 1),
            search_expr(g, depth - 1)
        ),
        1 => format!(
            "({} OR {})",
            search_expr(g, depth - 1),
            search_expr(g, depth - 1)
        ),
        2 => format!("NOT {}", search_expr(g, depth - 1)),
        _ => format!(
            "{} AND {}",
            search_expr(g, depth - 1),
            search_expr(g, depth - 1)
        ),
    }
}

pub fn random_query(g: &mut Gen) -> String {
    let mut q = if g.chance(80) {
        search_expr(g, 3)
    } else {
        String::new()
    };
    if g.chance(15) {
        q.push_str(&format!(" | search {}", search_expr(g, 1)));
    }
    let by = |g: &mut Gen| -> String {
        let n = g.below(3);
        let f: Vec<&str> = (0..n).map(|_| *g.pick(GROUP_FIELDS)).collect();
        if f.is_empty() {
            String::new()
        } else {
            format!(" by {}", f.join(", "))
        }
    };
    match g.below(15) {
        0 => {}
        1 | 2 => q.push_str(&format!(" | stats count{}", by(g))),
        3 => q.push_str(&format!(
            " | stats count, dc(user.name), values(host.name), sum(bytes), max(status) as m{}",
            by(g)
        )),
        4 => q.push_str(&format!(
            " | timechart span={} count",
            g.pick(&["1h", "15m", "1d"])
        )),
        5 => q.push_str(&format!(
            " | timechart span=1h count by {}",
            g.pick(GROUP_FIELDS)
        )),
        6 => q.push_str(&format!(
            " | top {} {}",
            1 + g.below(5),
            g.pick(GROUP_FIELDS)
        )),
        7 => q.push_str(&format!(" | rare {}", g.pick(GROUP_FIELDS))),
        8 => q.push_str(&format!(
            " | stats count by {} | where count > 1 | sort -count",
            g.pick(GROUP_FIELDS)
        )),
        9 => q.push_str(&format!(" | head {}", g.below(20))),
        // Distinct counts and field counts: counted in the index from (group, value) pairs.
        12 => q.push_str(&format!(
            " | stats dc({}), count({}){}",
            g.pick(GROUP_FIELDS),
            g.pick(FIELDS),
            by(g)
        )),
        13 => q.push_str(&format!(
            " | stats dc({}) as n by {} | sort -n",
            g.pick(FIELDS),
            g.pick(GROUP_FIELDS)
        )),
        14 => q.push_str(&format!(
            " | stats values({}), min({}), max({}), count{}",
            g.pick(FIELDS),
            g.pick(FIELDS),
            g.pick(FIELDS),
            by(g)
        )),
        10 => q.push_str(&format!(" | table {}, {}", g.pick(FIELDS), g.pick(FIELDS))),
        _ => q.push_str(&format!(" | dedup {} | head 5", g.pick(GROUP_FIELDS))),
    }
    if g.chance(10) {
        q = format!("earliest=\"2023-11-14T23:30:00Z\" {q}");
    }
    q
}

/// Results as comparable text: columns, rows rendered as JSON values, the truncation flag.
pub fn render(r: &QueryResult) -> String {
    let rows: Vec<String> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| v.to_json().to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    format!(
        "columns {:?} truncated {}\n{}",
        r.columns,
        r.truncated,
        rows.join("\n")
    )
}
