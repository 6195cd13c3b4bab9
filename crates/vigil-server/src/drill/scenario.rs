//! Drill scenarios: the bundled ones and the operator's own, `*.toml` files in a `drills/`
//! directory beside each rule directory.
//!
//! # Format (version 1)
//!
//! ```toml
//! version = 1                       # the format's version: 1
//! name = "ssh-brute-force"          # how `vigil drill NAME` and the API name it: [a-z0-9_-], 1–64
//! title = "SSH brute force, then success"
//! description = "…"
//! expect_rules = ["SSH brute force"] # rule ids or titles that must alert; empty: any alert
//!
//! [[event]]                         # sent in order
//! listener = "syslog-tcp"           # syslog-tcp, syslog-udp or http (POST /api/v1/ingest)
//! format = "syslog"                 # http only: the ?format= of the ingest route (json: NDJSON)
//! repeat = 12                       # this many events (default 1)
//! delay_ms = 0                      # wait before this entry is sent (at most 10 s)
//! text = '<38>1 {now} host sshd 42 - [vigil-drill@32473 nonce="{nonce}"] Failed password for root from {ip} port {port} ssh2'
//! ```
//!
//! `text` is one event as its listener receives it, with placeholders: `{nonce}` (required:
//! the one-time mark that makes it a drill event, see `vigil_ingest::drill`), `{now}` (RFC 3339,
//! microseconds, UTC), `{clf_now}` (access-log time), `{ip}` (a documentation address chosen
//! per run, 192.0.2.0/24), `{i}` (0, 1, … over the entry's repeats) and `{port}` (40000 + `{i}`).
//! Addresses outside the documentation ranges make an event real: the door does not mark it.
//! Bounds: a file of at most 1 MiB, [`MAX_EVENTS`] events, texts of at most 64 KiB.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Most events a scenario may send.
pub const MAX_EVENTS: usize = 500;
/// Largest scenario file read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Longest event text.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Longest wait before an entry.
pub const MAX_DELAY_MS: u64 = 10_000;

/// The scenarios shipped with Vigil: `(file name, TOML)`.
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "ssh-brute-force.toml",
        include_str!("scenarios/ssh-brute-force.toml"),
    ),
    ("web-scan.toml", include_str!("scenarios/web-scan.toml")),
    (
        "sudo-escalation.toml",
        include_str!("scenarios/sudo-escalation.toml"),
    ),
    (
        "windows-credential-dumping.toml",
        include_str!("scenarios/windows-credential-dumping.toml"),
    ),
    (
        "insider-probing.toml",
        include_str!("scenarios/insider-probing.toml"),
    ),
];

/// Which listener an event is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillListener {
    /// Syslog over TCP (LF-framed).
    SyslogTcp,
    /// Syslog over UDP (one datagram per event).
    SyslogUdp,
    /// `POST /api/v1/ingest` with a token made for the run.
    Http,
}

impl DrillListener {
    /// Its name in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DrillListener::SyslogTcp => "syslog-tcp",
            DrillListener::SyslogUdp => "syslog-udp",
            DrillListener::Http => "http",
        }
    }
}

/// One `[[event]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Where it is sent.
    pub listener: DrillListener,
    /// HTTP only: `?format=` of the ingest route.
    #[serde(default)]
    pub format: Option<String>,
    /// How many events.
    #[serde(default = "one")]
    pub repeat: usize,
    /// Wait before sending, in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
    /// The event's text, with placeholders.
    pub text: String,
}

fn one() -> usize {
    1
}

/// A scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The format's version (1).
    pub version: u32,
    /// Its name.
    pub name: String,
    /// A one-line title.
    pub title: String,
    /// What it plays.
    #[serde(default)]
    pub description: String,
    /// Rules (ids or titles) that must alert; empty: any alert.
    #[serde(default)]
    pub expect_rules: Vec<String>,
    /// The events, in order.
    #[serde(rename = "event")]
    pub events: Vec<Entry>,
    /// Where it was read from (`bundled` or the file).
    #[serde(skip)]
    pub origin: String,
}

impl Scenario {
    /// Reads and checks a scenario's TOML (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, String> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        s.origin = origin.to_owned();
        let bad = |why: String| Err(format!("{origin}: {why}"));
        if s.version != 1 {
            return bad(format!("version {} is not supported (1 is)", s.version));
        }
        if !valid_name(&s.name) {
            return bad(format!("name {:?}: use 1-64 of a-z, 0-9, - and _", s.name));
        }
        if s.events.is_empty() {
            return bad("no [[event]]".into());
        }
        let total: usize = s.events.iter().map(|e| e.repeat).sum();
        if total == 0 || total > MAX_EVENTS {
            return bad(format!("{total} events; 1 to {MAX_EVENTS} are allowed"));
        }
        for (i, e) in s.events.iter().enumerate() {
            if !e.text.contains("{nonce}") {
                return bad(format!(
                    "event {}: text has no {{nonce}}: it would be a real event",
                    i + 1
                ));
            }
            if e.text.len() > MAX_TEXT_BYTES {
                return bad(format!("event {}: text over {MAX_TEXT_BYTES} bytes", i + 1));
            }
            if e.delay_ms > MAX_DELAY_MS {
                return bad(format!("event {}: delay_ms over {MAX_DELAY_MS}", i + 1));
            }
            if e.listener != DrillListener::Http && e.format.is_some() {
                return bad(format!("event {}: format is for http only", i + 1));
            }
            if e.listener != DrillListener::Http && e.text.contains('\n') {
                return bad(format!("event {}: a syslog text is one line", i + 1));
            }
        }
        Ok(s)
    }

    /// How many events it sends.
    pub fn n_events(&self) -> usize {
        self.events.iter().map(|e| e.repeat).sum()
    }

    /// The scenario in the API's form (without its events' texts).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "expect_rules": self.expect_rules,
            "events": self.n_events(),
            "listeners": self.events.iter().map(|e| e.listener.as_str()).collect::<std::collections::BTreeSet<_>>(),
            "origin": self.origin,
        })
    }
}

/// Whether `name` is a scenario name: 1–64 of `a-z0-9-_`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The `drills/` directories beside `rule_dirs` (the operator's scenarios).
pub fn dirs_beside(rule_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = rule_dirs
        .iter()
        .filter_map(|d| d.parent().map(|p| p.join("drills")))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Every scenario: the bundled ones, then the `*.toml` files of `dirs` (a file's scenario
/// replaces a bundled one of the same name). Files that do not read are reported, not fatal.
pub fn load_all(dirs: &[PathBuf]) -> (Vec<Scenario>, Vec<String>) {
    let mut all: Vec<Scenario> = BUNDLED
        .iter()
        .map(|(file, text)| Scenario::parse(text, &format!("bundled {file}")).expect("bundled"))
        .collect();
    let mut issues = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            match read_file(&path) {
                Ok(s) => {
                    all.retain(|b| b.name != s.name);
                    all.push(s);
                }
                Err(e) => issues.push(e),
            }
        }
    }
    (all, issues)
}

fn read_file(path: &Path) -> Result<Scenario, String> {
    let origin = path.display().to_string();
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{origin}: {e}"))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(format!("{origin}: over {MAX_FILE_BYTES} bytes"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{origin}: {e}"))?;
    Scenario::parse(&text, &origin)
}

/// What a run fills the placeholders with.
#[derive(Debug, Clone)]
pub struct Fill<'a> {
    /// `{nonce}`.
    pub nonce: &'a str,
    /// `{ip}`.
    pub ip: std::net::IpAddr,
    /// `{i}`.
    pub i: usize,
    /// `{now}` and `{clf_now}`.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The text of one event of an entry.
pub fn render(text: &str, fill: &Fill<'_>) -> String {
    text.replace("{nonce}", fill.nonce)
        .replace(
            "{now}",
            &fill
                .now
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        )
        .replace(
            "{clf_now}",
            &fill.now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
        )
        .replace("{ip}", &fill.ip.to_string())
        .replace("{port}", &(40000 + fill.i).to_string())
        .replace("{i}", &fill.i.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_scenario_reads_and_marks_every_event() {
        let (all, issues) = load_all(&[]);
        assert!(issues.is_empty(), "{issues:?}");
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ssh-brute-force",
                "web-scan",
                "sudo-escalation",
                "windows-credential-dumping",
                "insider-probing"
            ]
        );
        for s in &all {
            for e in &s.events {
                let t = render(
                    &e.text,
                    &Fill {
                        nonce: "vdrill-x",
                        ip: "192.0.2.9".parse().unwrap(),
                        i: 3,
                        now: chrono::Utc::now(),
                    },
                );
                assert!(t.contains("vdrill-x"), "{t}");
                for p in ["{nonce}", "{now}", "{clf_now}", "{ip}", "{i}", "{port}"] {
                    assert!(!t.contains(p), "{p} left in {t}");
                }
                if e.format.as_deref() == Some("json") {
                    let v: serde_json::Value = serde_json::from_str(&t).expect(&t);
                    assert!(v.is_object());
                }
            }
        }
    }

    #[test]
    fn scenarios_that_would_send_real_or_unbounded_events_are_refused() {
        let base = "version = 1\nname = \"x\"\ntitle = \"t\"\n";
        let ok = format!("{base}[[event]]\nlistener = \"syslog-udp\"\ntext = \"a {{nonce}}\"\n");
        assert!(Scenario::parse(&ok, "t").is_ok());
        for (bad, why) in [
            (
                format!("{base}[[event]]\nlistener = \"syslog-udp\"\ntext = \"a\"\n"),
                "no {nonce}",
            ),
            (
                format!(
                    "{base}[[event]]\nlistener = \"syslog-udp\"\nrepeat = 100000\ntext = \"{{nonce}}\"\n"
                ),
                "events",
            ),
            (
                format!("{base}[[event]]\nlistener = \"ftp\"\ntext = \"{{nonce}}\"\n"),
                "unknown variant",
            ),
            (ok.replace("name = \"x\"", "name = \"../etc\""), "name"),
            (ok.replace("version = 1", "version = 2"), "version"),
            (format!("{ok}surprise = 1\n"), "unknown field"),
        ] {
            let err = Scenario::parse(&bad, "t").unwrap_err();
            assert!(err.contains(why), "{err} (wanted {why})");
        }
    }

    #[test]
    fn a_file_scenario_replaces_a_bundled_one_and_bad_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "version = 1\nname = \"web-scan\"\ntitle = \"mine\"\n[[event]]\nlistener = \"http\"\ntext = \"{nonce}\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.toml"), "name = ").unwrap();
        let (all, issues) = load_all(&[dir.path().to_path_buf()]);
        assert_eq!(issues.len(), 1, "{issues:?}");
        let web: Vec<_> = all.iter().filter(|s| s.name == "web-scan").collect();
        assert_eq!(web.len(), 1);
        assert_eq!(web[0].title, "mine");
    }
}
