//! The behaviour scenario (issue 18): a week of benign history and three attacks with known
//! truth, as NDJSON events (ECS field names, `@timestamp`), deterministic.
//!
//! Benign: six people log in over SSH from their usual addresses (each address first used in
//! the first two days), fail a password now and then (up to 6 an hour), and `svc-backup`
//! fails 0–3 times every hour (a stale credential retried); a support team of five reads 5–14
//! customer records a day each, and two finance users read 60–80 a day (normal for finance).
//!
//! Truth, on day 8:
//! 1. `admin` logs in from 198.51.100.77, an address never seen for it (first seen);
//! 2. `svc-backup` fails 50 times in one hour (outlier against its own hours);
//! 3. `dan` (support) reads 150 distinct customers' records (peer deviation from support).
#![allow(dead_code)]

use vigil_event::Timestamp;

/// One hour in nanoseconds.
pub const HOUR: i64 = 3_600_000_000_000;
/// One day in nanoseconds.
pub const DAY: i64 = 24 * HOUR;

/// The attacks, as (rule id, group key) the alerts must carry.
pub const TRUTH: [(&str, &str); 3] = [
    (
        "6b1f3c52-18a0-4a55-9a0e-00000000b001",
        "user.name=admin source.ip=198.51.100.77",
    ),
    (
        "6b1f3c52-18a0-4a55-9a0e-00000000b002",
        "user.name=svc-backup",
    ),
    ("6b1f3c52-18a0-4a55-9a0e-00000000b003", "user.name=dan"),
];

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

fn line(t: i64, fields: &[(&str, serde_json::Value)]) -> String {
    let mut m = serde_json::Map::new();
    m.insert(
        "@timestamp".into(),
        Timestamp::from_nanos(t).to_rfc3339().into(),
    );
    for (k, v) in fields {
        m.insert((*k).to_owned(), v.clone());
    }
    serde_json::Value::Object(m).to_string()
}

fn login(t: i64, user: &str, ip: &str, ok: bool) -> String {
    let mut f = vec![
        ("event.category", "authentication".into()),
        (
            "event.outcome",
            if ok { "success" } else { "failure" }.into(),
        ),
        ("user.name", user.into()),
        ("source.ip", ip.into()),
        ("host.name", "bastion".into()),
        (
            "message",
            format!(
                "login {} for {user} from {ip}",
                if ok { "ok" } else { "failed" }
            )
            .into(),
        ),
    ];
    if user == "admin" {
        f.push(("user.roles", serde_json::json!(["admin"])));
    }
    line(t, &f)
}

fn read(t: i64, user: &str, dept: &str, customer: u64) -> String {
    line(
        t,
        &[
            ("event.action", "record-read".into()),
            ("user.name", user.into()),
            ("user.department", dept.into()),
            ("url.path", format!("/api/v1/customers/{customer}").into()),
            ("message", format!("{user} read customer {customer}").into()),
        ],
    )
}

const PEOPLE: [(&str, &str, &str); 6] = [
    ("alice", "10.1.0.11", "10.1.0.12"),
    ("bob", "10.1.0.21", "10.1.0.22"),
    ("carol", "10.1.0.31", "10.1.0.32"),
    ("erin", "10.1.0.41", "10.1.0.42"),
    ("admin", "10.0.0.5", "10.0.0.6"),
    ("root", "10.0.0.7", "10.0.0.8"),
];
const SUPPORT: [&str; 5] = ["ann", "ben", "cat", "dan", "eve"];
const FINANCE: [&str; 2] = ["fay", "gus"];

/// The benign week from `start` (event time, ns; aligned to a day), in time order.
pub fn benign(start: i64) -> Vec<String> {
    let mut rng = Rng(18);
    let mut out: Vec<(i64, String)> = Vec::new();
    for day in 0..7i64 {
        let d0 = start + day * DAY;
        for (user, a, b) in PEOPLE {
            // Both usual addresses are used on the first two days, one of them later.
            for (k, ip) in [a, b].iter().enumerate() {
                if day < 2 || rng.below(2) == 0 {
                    out.push((
                        d0 + (8 + k as i64) * HOUR + rng.below(3_000) as i64 * 1_000_000_000,
                        login(0, user, ip, true),
                    ));
                }
            }
        }
        for hour in 0..24i64 {
            let h0 = d0 + hour * HOUR;
            for k in 0..rng.below(4) {
                out.push((
                    h0 + k as i64 * 60_000_000_000,
                    login(0, "svc-backup", "10.2.0.9", false),
                ));
            }
            if (8..18).contains(&hour) {
                let (user, ip, _) = PEOPLE[rng.below(4) as usize];
                for k in 0..rng.below(7) {
                    out.push((
                        h0 + 30 * 60_000_000_000 + k as i64 * 1_000_000_000,
                        login(0, user, ip, false),
                    ));
                }
            }
        }
        for user in SUPPORT {
            let n = 5 + rng.below(10);
            for c in 0..n {
                let customer = 1_000 + rng.below(400);
                for r in 0..(1 + rng.below(3)) {
                    out.push((
                        d0 + 9 * HOUR + (c * 600 + r * 10) as i64 * 1_000_000_000,
                        read(0, user, "support", customer),
                    ));
                }
            }
        }
        for user in FINANCE {
            for c in 0..(60 + rng.below(21)) {
                out.push((
                    d0 + 10 * HOUR + c as i64 * 30_000_000_000,
                    read(0, user, "finance", 5_000 + c),
                ));
            }
        }
    }
    out.sort_by_key(|(t, _)| *t);
    // Stamp each line with its time (the builders above were given 0).
    out.into_iter().map(|(t, l)| restamp(&l, t)).collect()
}

/// The three attacks on the day after the benign week from `start`, with a normal day's
/// benign activity around them, in time order.
pub fn attacks(start: i64) -> Vec<String> {
    let d0 = start + 7 * DAY;
    let mut out: Vec<(i64, String)> = Vec::new();
    // Benign on day 8: usual logins, svc-backup's usual failure, support's usual reads.
    for (user, a, _) in PEOPLE {
        out.push((d0 + 8 * HOUR, login(0, user, a, true)));
    }
    out.push((d0 + HOUR, login(0, "svc-backup", "10.2.0.9", false)));
    for user in SUPPORT.iter().filter(|u| **u != "dan") {
        for c in 0..8 {
            out.push((
                d0 + 9 * HOUR + c * 600_000_000_000,
                read(0, user, "support", 1_000 + c as u64),
            ));
        }
    }
    // 1. Admin from a never-seen address.
    out.push((d0 + 3 * HOUR, login(0, "admin", "198.51.100.77", true)));
    // 2. Fifty failures in one hour.
    for k in 0..50 {
        out.push((
            d0 + 4 * HOUR + k * 60_000_000_000,
            login(0, "svc-backup", "10.2.0.9", false),
        ));
    }
    // 3. Dan reads 150 customers.
    for c in 0..150 {
        out.push((
            d0 + 13 * HOUR + c * 20_000_000_000,
            read(0, "dan", "support", 20_000 + c as u64),
        ));
    }
    out.sort_by_key(|(t, _)| *t);
    out.into_iter().map(|(t, l)| restamp(&l, t)).collect()
}

fn restamp(line: &str, t: i64) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).expect("own JSON");
    v["@timestamp"] = Timestamp::from_nanos(t).to_rfc3339().into();
    v.to_string()
}

/// The bundled behaviour rules (`rules/behaviour` at the repository's root).
pub fn rules_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules/behaviour")
}
