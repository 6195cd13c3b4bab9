//! `vigil serve --demo`: a generated, realistic stream — web traffic, SSH and sudo, application
//! events — with attacks on a timeline (a brute force that ends in a successful login, a password
//! spray, a web scanner, an insider probing accounts that are not theirs), and bundled Sigma
//! rules and ban responders, so a newcomer sees alerts and bans within a minute.
//!
//! The lines are real log formats (RFC 3164 sshd/sudo, combined access log, OWASP JSON) parsed by
//! the same parsers as everything else; events are tagged `vigil.source: demo`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use vigil_event::Timestamp;
use vigil_parse::{Format, ParseContext, parse_line};

use crate::pipeline::Ingest;

/// The bundled rules: `(file name, Sigma YAML)`.
pub const RULES: &[(&str, &str)] = &[
    (
        "ssh.yml",
        r#"title: SSH failed login
id: 7c1e0d3a-5f0b-4a53-9d5e-6d656d6f0001
name: demo_ssh_failed_login
status: stable
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: low
tests:
    - name: a failed password is a failed login
      log: "<38>Dec  6 10:00:01 bastion sshd[812]: Failed password for root from 203.0.113.5 port 52110 ssh2"
      match: true
    - name: an accepted key is not
      log: "<38>Dec  6 10:00:02 bastion sshd[812]: Accepted publickey for ops from 10.20.0.5 port 40000 ssh2"
      match: false
---
title: SSH accepted login
id: 7c1e0d3a-5f0b-4a53-9d5e-6d656d6f0002
name: demo_ssh_accepted_login
status: stable
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.action: ssh_login
        event.outcome: success
    condition: selection
level: informational
---
title: SSH brute force
id: 7c1e0d3a-5f0b-4a53-9d5e-6d656d6f0003
name: demo_ssh_bruteforce
status: stable
correlation:
    type: event_count
    rules: [demo_ssh_failed_login]
    group-by: [source.ip]
    timespan: 5m
    condition: {gte: 10}
level: high
tags: [attack.credential_access, attack.t1110.001]
tests:
    - name: ten failures from one address in a minute
      log:
            - "<38>Dec  6 10:00:00 bastion sshd[812]: Failed password for root from 203.0.113.5 port 52100 ssh2"
            - "<38>Dec  6 10:00:01 bastion sshd[812]: Failed password for root from 203.0.113.5 port 52101 ssh2"
            - "<38>Dec  6 10:00:02 bastion sshd[812]: Failed password for root from 203.0.113.5 port 52102 ssh2"
            - "<38>Dec  6 10:00:03 bastion sshd[812]: Failed password for root from 203.0.113.5 port 52103 ssh2"
            - "<38>Dec  6 10:00:04 bastion sshd[812]: Failed password for root from 203.0.113.5 port 52104 ssh2"
            - "<38>Dec  6 10:00:05 bastion sshd[812]: Failed password for root from 203.0.113.5 port 52105 ssh2"
            - "<38>Dec  6 10:00:06 bastion sshd[812]: Failed password for root from 203.0.113.5 port 52106 ssh2"
            - "<38>Dec  6 10:00:07 bastion sshd[812]: Failed password for root from 203.0.113.5 port 52107 ssh2"
            - "<38>Dec  6 10:00:08 bastion sshd[812]: Failed password for root from 203.0.113.5 port 52108 ssh2"
            - "<38>Dec  6 10:00:09 bastion sshd[812]: Failed password for root from 203.0.113.5 port 52109 ssh2"
      match_count: 1
---
title: SSH password spraying
id: 7c1e0d3a-5f0b-4a53-9d5e-6d656d6f0004
name: demo_ssh_spraying
status: stable
correlation:
    type: value_count
    rules: [demo_ssh_failed_login]
    group-by: [source.ip]
    timespan: 5m
    condition: {field: user.name, gte: 5}
level: high
tags: [attack.credential_access, attack.t1110.003]
---
title: SSH login after brute force
id: 7c1e0d3a-5f0b-4a53-9d5e-6d656d6f0005
status: stable
correlation:
    type: temporal_ordered
    rules: [demo_ssh_bruteforce, demo_ssh_accepted_login]
    group-by: [source.ip]
    timespan: 10m
level: critical
tags: [attack.initial_access, attack.t1078]
"#,
    ),
    (
        "web.yml",
        r#"title: Web vulnerability scanner
id: 7c1e0d3a-5f0b-4a53-9d5e-6d656d6f0006
status: stable
logsource: {category: webserver}
detection:
    selection:
        c-useragent|contains: [sqlmap, Nikto, nuclei, masscan]
    condition: selection
level: medium
tags: [attack.reconnaissance, attack.t1595.002]
tests:
    - name: sqlmap's user agent
      log: '203.0.113.9 - - [06/Dec/2026:10:00:01 +0000] "GET /item?id=1%27 HTTP/1.1" 500 12 "-" "sqlmap/1.8#stable (https://sqlmap.org)"'
      match: true
    - name: a browser
      log: '198.51.100.20 - - [06/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 512 "-" "Mozilla/5.0"'
      match: false
"#,
    ),
    (
        "insider.yml",
        r#"title: Access denied to a resource
id: 7c1e0d3a-5f0b-4a53-9d5e-6d656d6f0007
name: demo_authz_fail
status: stable
logsource: {category: application, product: owasp}
detection:
    selection:
        event.action: authz_fail
    condition: selection
level: low
---
title: User probing resources they do not own
id: 7c1e0d3a-5f0b-4a53-9d5e-6d656d6f0008
status: stable
correlation:
    type: value_count
    rules: [demo_authz_fail]
    group-by: [user.name]
    timespan: 10m
    condition: {field: vigil.owasp.args, gte: 5}
level: high
tags: [attack.discovery, attack.t1083]
"#,
    ),
];

/// Rules whose alerts ban their source address in the demo.
pub const BAN_RULES: &[&str] = &[
    "SSH brute force",
    "SSH password spraying",
    "Web vulnerability scanner",
];

/// Writes the bundled rules to `DATA_DIR/demo-rules` and returns the directory.
pub fn write_rules(data_dir: &Path) -> Result<PathBuf, String> {
    let dir = vigil_config::DataDir::new(data_dir).demo_rules();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, text) in RULES {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(dir)
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const USERS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank"];
const PAGES: &[&str] = &[
    "/",
    "/login",
    "/cart",
    "/api/v1/orders",
    "/static/app.js",
    "/search?q=boots",
];

/// The lines for second `tick` of the demo (normal traffic every second, attacks on a timeline).
fn lines_for(tick: u64, rng: &mut Rng, now: Timestamp) -> Vec<String> {
    let syslog_time = now.to_datetime().format("%b %e %H:%M:%S").to_string();
    let access_time = now
        .to_datetime()
        .format("%d/%b/%Y:%H:%M:%S +0000")
        .to_string();
    let iso = now.to_rfc3339();
    let mut out = Vec::new();
    let sshd = |msg: String| format!("<38>{syslog_time} bastion sshd[{}]: {msg}", 2000 + tick);
    // Everyday traffic.
    for i in 0..4u64 {
        let ip = format!("198.51.100.{}", 10 + (rng.next() % 40));
        out.push(format!(
            "{ip} - - [{access_time}] \"GET {} HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0\"",
            rng.pick(PAGES),
            500 + rng.next() % 9000
        ));
        if i == 0 {
            let user = rng.pick(USERS);
            out.push(format!(
                r#"{{"datetime":"{iso}","appid":"shop","event":"authn_login_success:{user}","level":"INFO","description":"User {user} login successfully","source_ip":"{ip}","hostname":"web-1"}}"#
            ));
        }
    }
    if tick.is_multiple_of(7) {
        out.push(sshd(format!(
            "Accepted publickey for {} from 10.20.0.{} port {} ssh2",
            rng.pick(USERS),
            5 + tick % 20,
            40000 + tick
        )));
    }
    if tick.is_multiple_of(11) {
        out.push(format!(
            "<86>{syslog_time} bastion sudo: {} : TTY=pts/0 ; PWD=/home/ops ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
            rng.pick(USERS)
        ));
    }
    // Attacks.
    match tick {
        // A brute force against root, three failures a second, then it gets in.
        5..=9 => {
            for k in 0..3 {
                out.push(sshd(format!(
                    "Failed password for root from 203.0.113.50 port {} ssh2",
                    50000 + tick * 3 + k
                )));
            }
        }
        10 => out.push(sshd(
            "Accepted password for root from 203.0.113.50 port 50100 ssh2".into(),
        )),
        // A password spray: one attempt per user.
        12..=14 => {
            for k in 0..3u64 {
                let user = [
                    "admin", "oracle", "test", "ubuntu", "deploy", "git", "pi", "guest", "ftp",
                ][((tick - 12) * 3 + k) as usize];
                out.push(sshd(format!(
                    "Failed password for invalid user {user} from 198.18.7.23 port {} ssh2",
                    51000 + tick * 3 + k
                )));
            }
        }
        // A web scanner.
        16..=18 => {
            for p in ["/.env", "/wp-login.php", "/.git/config", "/phpmyadmin/"] {
                out.push(format!(
                    "192.0.2.99 - - [{access_time}] \"GET {p} HTTP/1.1\" 404 162 \"-\" \"sqlmap/1.8#stable (https://sqlmap.org)\""
                ));
            }
        }
        // An insider probing other customers' accounts.
        20..=25 => {
            let account = 4100 + tick;
            out.push(format!(
                r#"{{"datetime":"{iso}","appid":"shop","event":"authz_fail:mallory,/api/v1/accounts/{account}","level":"CRITICAL","description":"User mallory attempted to access a resource without entitlement","source_ip":"10.20.0.66","hostname":"web-1"}}"#
            ));
        }
        _ => {}
    }
    out
}

/// Feeds the demo stream into the pipeline until stopped: about 10 events a second, attacks in
/// the first half minute, then again every 10 minutes.
pub async fn run(ingest: Arc<Ingest>, mut stop: watch::Receiver<bool>) {
    let mut rng = Rng(0x5eed);
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let mut tick = 0u64;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        let now = Timestamp::now();
        let ctx = ParseContext {
            received: now,
            reference: now,
            source: "demo".into(),
            keep_original: true,
            peer: None,
            redactor: ingest.redactor(),
        };
        let events = lines_for(tick % 600, &mut rng, now)
            .iter()
            .map(|l| parse_line(l.as_bytes(), Format::Auto, &ctx))
            .collect();
        // Parsed with the door's redactor: masked already.
        let events = ingest.parsed(events, ctx.redactor.as_ref());
        match ingest
            .append_waiting(events, vigil_ingest::Listener::Demo)
            .await
        {
            Ok(pending) => {
                let _ = pending.durable().await;
            }
            Err(e) => tracing::warn!("demo stream: {e}"),
        }
        tick += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_the_first_minute_parses() {
        let mut rng = Rng(1);
        let now = Timestamp::from_secs(1_790_000_000);
        let ctx = ParseContext {
            received: now,
            reference: now,
            source: "demo".into(),
            keep_original: true,
            peer: None,
            redactor: None,
        };
        let mut n = 0;
        for tick in 0..60 {
            for line in lines_for(tick, &mut rng, now) {
                let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
                assert!(!e.has_tag(vigil_event::tag::PARSE_ERROR), "{line}");
                n += 1;
            }
        }
        assert!(n > 300);
    }

    #[test]
    fn the_bundled_rules_all_compile() {
        let dir = tempfile::tempdir().unwrap();
        let rules = write_rules(dir.path()).unwrap();
        let loaded = crate::detect::load_rules(&[rules]);
        let unsupported: Vec<_> = loaded
            .issues
            .iter()
            .filter(|i| i.kind == vigil_detect::compile::IssueKind::Unsupported)
            .collect();
        assert!(unsupported.is_empty(), "{unsupported:?}");
        assert_eq!(loaded.set.len(), 4);
        assert_eq!(loaded.set.correlations().len(), 4);
    }

    /// The bundled rules' own `tests:` cases (what `vigil rules test DIR` runs), through the
    /// real parser and the rule set as `serve` loads it.
    #[test]
    fn the_bundled_rules_pass_their_own_tests() {
        let dir = tempfile::tempdir().unwrap();
        let rules = write_rules(dir.path()).unwrap();
        let loaded = crate::detect::load_rules(std::slice::from_ref(&rules));
        let ctx = ParseContext::new(Timestamp::from_secs(1_796_000_000), "demo-test");
        let mut cases = 0;
        for (name, text) in RULES {
            for t in vigil_detect::ruletest::read_tests(text, name) {
                assert!(t.errors.is_empty(), "{}: {:?}", t.title, t.errors);
                for c in &t.cases {
                    let vigil_detect::ruletest::CaseInput::Log(lines) = &c.input else {
                        panic!("the bundled cases are log lines");
                    };
                    let events: Vec<_> = lines
                        .iter()
                        .map(|l| parse_line(l.as_bytes(), Format::Auto, &ctx))
                        .collect();
                    let o = vigil_detect::ruletest::check(&loaded.set, &t.rule, &events, c.expect);
                    assert!(o.passed, "{} / {}: {:?}", t.title, c.name, o.reason);
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 5);
    }
}
