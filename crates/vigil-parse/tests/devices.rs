//! Network devices of the corpus not covered by `network` (issue 20): Cisco IOS, SonicWall,
//! Sophos XG, Check Point, Juniper SRX and NetScreen, Huawei USG (Wazuh's ruleset test lines)
//! and MikroTik RouterOS (CrowdSec's hub test logs). Every line parses without `parse_error`,
//! gets its dataset, and the addresses, ports and verdicts the line holds — found here with
//! regular expressions over the raw line, independently of the parsers.

mod common;

use common::corpus_with;
use regex::Regex;
use vigil_event::{Event, Timestamp, Value, tag};
use vigil_parse::{Format, ParseContext, parse_line};

fn parse(line: &str) -> Event {
    let ctx = ParseContext::new(Timestamp::parse("2026-01-01T00:00:00Z").unwrap(), "t");
    parse_line(line.as_bytes(), Format::Auto, &ctx)
}

fn text(e: &Event, key: &str) -> Option<String> {
    e.get(key).map(|v| match v {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    })
}

/// `(file, dataset, source pattern, destination pattern)`: the patterns capture the address
/// (and port, as a second group, when the line has one).
type Case = (&'static str, &'static str, &'static str, &'static str);

const CASES: &[Case] = &[
    (
        "wazuh-ruleset-testlogs/cisco_ios.log",
        "cisco.ios",
        r"(?:(\d+\.\d+\.\d+\.\d+)\((\d+)\) (?:\(\S+ \) )?->|\[(\d+\.\d+\.\d+\.\d+):(\d+) ->)",
        r"(?:-> (\d+\.\d+\.\d+\.\d+)\((\d+)\)|-> (\d+\.\d+\.\d+\.\d+):(\d+)\])",
    ),
    (
        "wazuh-ruleset-testlogs/SonicWall.log",
        "sonicwall_firewall.log",
        r" src=(\d+\.\d+\.\d+\.\d+)(?::(\d+))?",
        r" dst=(\d+\.\d+\.\d+\.\d+)(?::(\d+))?",
    ),
    (
        "wazuh-ruleset-testlogs/sophos_fw.log",
        "sophos.xg",
        r" src_ip=(\S+) .* src_port=(\d+)",
        r" dst_ip=(\S+) .* dst_port=(\d+)",
    ),
    (
        "wazuh-ruleset-testlogs/checkpoint_smart1.log",
        "checkpoint.firewall",
        r#"[ ;]src:"([^"]+)""#,
        r#"[ ;]dst:"([^"]+)""#,
    ),
    (
        "wazuh-ruleset-testlogs/junos.log",
        "juniper.srx",
        r#" source-address="([^"]+)"(?: source-port="(\d+)")?"#,
        r#" destination-address="([^"]+)"(?: destination-port="(\d+)")?"#,
    ),
    (
        "wazuh-ruleset-testlogs/huawei_usg.log",
        "huawei.usg",
        r"(?:SrcIp|source-ip)=([^,]+), (?:SrcPort|source-port)?=?(\d+)?",
        r"(?:DstIp|destination-ip)=([^,]+), (?:DstPort|destination-port)?=?(\d+)?",
    ),
    (
        "wazuh-ruleset-testlogs/netscreen.log",
        "juniper.netscreen",
        r" from (?:host )?(\d+\.\d+\.\d+\.\d+)",
        r"$^",
    ),
    (
        "crowdsec-hub-testlogs/mikrotik-logs/mikrotik-logs.log",
        "mikrotik.routeros",
        r"(?:, \[?([0-9a-f.:]+?)\]?:(\d+)->|login failure for user \S+ from (\S+))",
        r"->\[?([0-9a-f.:]+?)\]?:(\d+),",
    ),
    (
        "crowdsec-hub-testlogs/mikrotik-scan-multi_ports/mikrotik-scan-multi_ports.log",
        "mikrotik.routeros",
        r", \[?([0-9a-f.:]+?)\]?:(\d+)->",
        r"->\[?([0-9a-f.:]+?)\]?:(\d+),",
    ),
];

/// The first address and port the pattern captured (alternations: the first groups that
/// matched).
fn captured(re: &Regex, line: &str) -> Option<(String, Option<String>)> {
    let c = re.captures(line)?;
    let groups: Vec<_> = c.iter().skip(1).collect();
    let at = groups.iter().position(Option::is_some)?;
    let ip = groups[at].unwrap().as_str().to_owned();
    let port = groups
        .get(at + 1)
        .and_then(|g| g.map(|m| m.as_str().to_owned()));
    Some((ip, port))
}

#[test]
fn every_line_of_every_device_gets_its_dataset_and_addresses() {
    let Some(corpus) = corpus_with("wazuh-ruleset-testlogs") else {
        return;
    };
    let mut report = Vec::new();
    for (file, dataset, src, dst) in CASES {
        let raw = std::fs::read_to_string(corpus.join(file)).unwrap();
        let (src, dst) = (Regex::new(src).unwrap(), Regex::new(dst).unwrap());
        let (mut lines, mut sources, mut destinations) = (0, 0, 0);
        for line in raw.lines().filter(|l| !l.trim().is_empty()) {
            // The IOS sample's last line is a relay's record quoting an IOS message after
            // its own header and a program name: not where IOS puts its tag.
            if line.contains("fortinet Apr 30") {
                continue;
            }
            lines += 1;
            let e = parse(line);
            assert!(!e.has_tag(tag::PARSE_ERROR), "{file}: {line}");
            assert_eq!(
                e.get_str("event.dataset"),
                Some(*dataset),
                "{file}: {line}\n{e:?}"
            );
            for (re, side, count) in [
                (&src, "source", &mut sources),
                (&dst, "destination", &mut destinations),
            ] {
                let Some((ip, port)) = captured(re, line) else {
                    continue;
                };
                // Masked addresses (`x.x.x.x`) are not addresses.
                if ip.parse::<std::net::IpAddr>().is_err() {
                    continue;
                }
                *count += 1;
                assert_eq!(
                    text(&e, &format!("{side}.ip")).as_deref(),
                    Some(ip.as_str()),
                    "{file} {side}: {line}\n{e:?}"
                );
                if let Some(port) = port.filter(|p| !p.is_empty()) {
                    assert_eq!(
                        text(&e, &format!("{side}.port")).as_deref(),
                        Some(port.as_str()),
                        "{file} {side} port: {line}"
                    );
                }
            }
        }
        assert!(
            lines > 0 && sources > 0,
            "{file}: {lines} lines, {sources} sources"
        );
        report.push(format!(
            "{file}: {lines} lines, {sources} sources, {destinations} destinations"
        ));
    }
    eprintln!("{}", report.join("\n"));
}

/// Verdicts, counted from the raw words of each line.
#[test]
fn verdicts_follow_the_devices_words() {
    let Some(corpus) = corpus_with("wazuh-ruleset-testlogs") else {
        return;
    };
    let read = |f: &str| std::fs::read_to_string(corpus.join(f)).unwrap();
    // IOS access lists: `denied`/`permitted`.
    let ios = read("wazuh-ruleset-testlogs/cisco_ios.log");
    let denied = ios.lines().filter(|l| l.contains(" denied ")).count();
    let failures = ios
        .lines()
        .map(parse)
        .filter(|e| {
            e.get_str("event.action") == Some("denied")
                && e.get_str("event.outcome") == Some("failure")
        })
        .count();
    assert!(denied > 0);
    assert_eq!(failures, denied);
    // Sophos: `status="Deny"`/`"Drop"` fail, `"Allow"` succeeds.
    let sophos = read("wazuh-ruleset-testlogs/sophos_fw.log");
    let status_re = Regex::new(r#"status="(\w+)""#).unwrap();
    for line in sophos.lines() {
        let e = parse(line);
        let status = status_re.captures(line).map(|c| c[1].to_ascii_lowercase());
        let expected = match status.as_deref() {
            Some("deny" | "drop") => Some("failure"),
            Some("allow") => Some("success"),
            _ => None,
        };
        assert_eq!(e.get_str("event.outcome"), expected, "{line}");
    }
    // MikroTik: `drop-…` prefixes fail; the winbox login failure is an authentication failure.
    for f in [
        "crowdsec-hub-testlogs/mikrotik-logs/mikrotik-logs.log",
        "crowdsec-hub-testlogs/mikrotik-scan-multi_ports/mikrotik-scan-multi_ports.log",
    ] {
        for line in read(f).lines() {
            let e = parse(line);
            if line.contains(" drop-") {
                assert_eq!(e.get_str("event.outcome"), Some("failure"), "{line}");
            }
            if line.contains("login failure") {
                assert_eq!(e.get_str("event.category"), Some("authentication"));
                assert_eq!(e.get_str("event.outcome"), Some("failure"));
                assert_eq!(e.get_str("user.name"), Some("admin"));
            }
        }
    }
}
