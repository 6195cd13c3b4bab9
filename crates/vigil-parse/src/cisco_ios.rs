//! Cisco IOS / IOS XE syslog messages (`%FACILITY-SEVERITY-MNEMONIC: text`) → ECS, with
//! `event.dataset: cisco.ios` (the dataset Sigma's `product: cisco` selects; access-list logs
//! are firewall logs too).
//!
//! Every message gets `cisco.ios.facility`, `event.code` (the mnemonic), `event.severity` and
//! `log.level` (the severity's syslog name). These are read further:
//!
//! | message | fields |
//! |---|---|
//! | `%SEC-6-IPACCESSLOGP/DP/NP/RP/S`, `%IPV6_ACL-6-ACCESSLOGP/DP/NP` (`list 102 denied tcp 10.0.6.56(3067) (Gi0/1 ) -> 172.36.4.7(139), 1 packet`) | `cisco.ios.access_list`, `event.action` (`denied`/`permitted`), `event.outcome`, `network.transport`, `source.ip/port`, `destination.ip/port`, `observer.ingress.interface.name`, `source.packets` |
//! | `%IPS-4-SIGNATURE` (`Sig:3051 Subsig:1 Sev:4 NAME [A:p -> B:q]`) | `rule.id`, `rule.name`, addresses and ports |
//! | `%SEC_LOGIN-5-LOGIN_SUCCESS`, `%SEC_LOGIN-4-LOGIN_FAILED` (`[user: u] [Source: a] [localport: 22]`) | `user.name`, `source.ip`, `destination.port`, authentication outcome |
//! | `%SSH-5-SSH2_USERAUTH`, `%SSH-5-SSH2_SESSION` (`User 'u' … from A … Succeeded/Failed`) | `user.name`, `source.ip`, outcome |
//! | `%SYS-5-CONFIG_I` (`Configured from console by u on vty0 (A)`) | `user.name`, `source.ip`, configuration change |
//! | `%DOT1X-5-FAIL`, `%AUTHMGR-…`, `%MAB-…` (`… on Interface Fa0/3 …`) | authentication failure, `observer.ingress.interface.name` |
//! | `%LINK-3-UPDOWN`, `%LINEPROTO-5-UPDOWN` (`Interface X, changed state to down`) | `observer.ingress.interface.name`, `event.action` |
//!
//! A message is recognised only where IOS puts the tag: at the start of the message, after at
//! most the device's sequence number and timestamp (`3924923: *Oct  6 03:32:04.114 gmt: `).
//! Pure and bounded: the message is read once, word by word.

use std::net::IpAddr;

use vigil_event::{Category, Event, EventType, Outcome, Value, field};

/// The parts of a `%FACILITY-SEVERITY-MNEMONIC:` tag and the text after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    /// `SEC`, `SEC_LOGIN`, `SSH`, `IPS`, …
    pub facility: &'a str,
    /// 0 (emergency) to 7 (debugging).
    pub severity: u8,
    /// `IPACCESSLOGP`, `LOGIN_FAILED`, …
    pub mnemonic: &'a str,
    /// The message after the tag.
    pub text: &'a str,
}

/// The IOS tag at the start of `message` (after at most a sequence number and timestamp).
pub fn tag(message: &str) -> Option<Tag<'_>> {
    let at = message.find('%')?;
    let prefix = &message[..at];
    let stamp = prefix.len() <= 48
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b':' | b'.' | b'*' | b'+'))
        && (prefix.trim().is_empty() || prefix.trim_end().ends_with(':'));
    if !stamp {
        return None;
    }
    let rest = &message[at + 1..];
    let (head, text) = rest.split_once(':')?;
    let mut parts = head.splitn(3, '-');
    let facility = parts.next()?;
    let severity = parts.next()?;
    let mnemonic = parts.next()?;
    let name = |s: &str| {
        !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    if !name(facility) || !name(mnemonic) || severity.len() != 1 {
        return None;
    }
    let severity = severity.parse::<u8>().ok().filter(|s| *s <= 7)?;
    // Cisco ASA/FTD/PIX tags are the ASA reader's (numeric ids, `crate::network`).
    if matches!(facility, "ASA" | "FTD" | "PIX") {
        return None;
    }
    Some(Tag {
        facility,
        severity,
        mnemonic,
        text: text.trim(),
    })
}

/// Whether a whole line (no syslog header) is an IOS message.
pub fn looks_like(line: &str) -> bool {
    tag(line.trim_start()).is_some()
}

const LEVELS: [&str; 8] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
];

/// Reads `message` of `program` as an IOS message; whether it was one. The syslog reader may
/// have taken the tag for the program (`Sep  1 10:25:29 10.10.10.1 %IPS-4-SIGNATURE: …`).
pub fn enrich(event: &mut Event, program: &str, message: &str) -> bool {
    let message = message.trim_start();
    let whole;
    let t = if program.starts_with('%') {
        whole = format!("{program}: {message}");
        tag(&whole)
    } else {
        tag(message)
    };
    let Some(t) = t else {
        return false;
    };
    event.insert(field::EVENT_DATASET, "cisco.ios");
    event.insert("observer.vendor", "Cisco");
    event.insert("observer.product", "IOS");
    event.insert(field::EVENT_KIND, "event");
    event.insert("cisco.ios.facility", t.facility);
    event.insert("event.code", t.mnemonic);
    event.insert("event.severity", i64::from(t.severity));
    event.insert("log.level", LEVELS[usize::from(t.severity)]);
    event.insert("cisco.ios.message", t.text);
    match (t.facility, t.mnemonic) {
        ("SEC" | "IPV6_ACL", m) if m.contains("ACCESSLOG") => access_list(event, t.text),
        ("IPS", "SIGNATURE") => ips(event, t.text),
        ("SEC_LOGIN", m) => login(event, m, t.text),
        ("SSH", m) if m.starts_with("SSH2_") => ssh(event, t.text),
        ("SYS", "CONFIG_I") => config(event, t.text),
        ("DOT1X" | "AUTHMGR" | "MAB", m) => port_auth(event, m, t.text),
        ("LINK" | "LINEPROTO", "UPDOWN") => link(event, t.text),
        _ => {}
    }
    true
}

fn set_ip(event: &mut Event, key: &str, text: &str) -> bool {
    match text.trim().parse::<IpAddr>() {
        Ok(ip) => {
            event.insert(key, Value::Ip(ip));
            true
        }
        Err(_) => false,
    }
}

fn set_port(event: &mut Event, key: &str, text: &str) {
    if let Ok(p) = text.trim().parse::<u16>() {
        event.insert(key, i64::from(p));
    }
}

fn outcome(event: &mut Event, category: Category, success: bool) {
    event.insert(field::EVENT_CATEGORY, category);
    event.insert(
        field::EVENT_OUTCOME,
        if success {
            Outcome::Success
        } else {
            Outcome::Failure
        },
    );
}

/// `ADDR(PORT)` or `ADDR`.
fn endpoint(word: &str) -> (&str, Option<&str>) {
    match word.split_once('(') {
        Some((ip, rest)) => (ip, Some(rest.trim_end_matches([')', ',']))),
        None => (word.trim_end_matches(','), None),
    }
}

/// `list 102 denied tcp 10.0.6.56(3067) (Serial4/3 ) -> 172.36.4.7(139), 1 packet`;
/// `list 10 permitted 1.2.3.4 3 packets` (standard lists: a source only).
fn access_list(event: &mut Event, text: &str) {
    event.insert(field::EVENT_CATEGORY, Category::Network);
    let words: Vec<&str> = text.split_ascii_whitespace().take(24).collect();
    let mut i = 0;
    if words.first() == Some(&"list") && words.len() > 2 {
        event.insert("cisco.ios.access_list", words[1]);
        i = 2;
    }
    let Some(action) = words.get(i) else {
        return;
    };
    event.insert(field::EVENT_ACTION, *action);
    match *action {
        "denied" => {
            event.insert(field::EVENT_TYPE, EventType::Denied);
            event.insert(field::EVENT_OUTCOME, Outcome::Failure);
        }
        "permitted" => {
            event.insert(field::EVENT_TYPE, EventType::Allowed);
            event.insert(field::EVENT_OUTCOME, Outcome::Success);
        }
        _ => {}
    }
    i += 1;
    // A protocol unless the next word is already the source address.
    if let Some(w) = words.get(i)
        && endpoint(w).0.parse::<IpAddr>().is_err()
    {
        let proto = w.to_ascii_lowercase();
        if proto.len() <= 12 && proto.bytes().all(|b| b.is_ascii_alphanumeric()) {
            event.insert("network.transport", proto);
        }
        i += 1;
    }
    let Some(src) = words.get(i) else {
        return;
    };
    let (ip, port) = endpoint(src);
    set_ip(event, "source.ip", ip);
    if let Some(p) = port {
        set_port(event, "source.port", p);
    }
    i += 1;
    // `(Serial4/3 )`: the interface the packet came in on.
    if let Some(w) = words.get(i)
        && let Some(name) = w.strip_prefix('(')
    {
        let name = name.trim_end_matches(')');
        if !name.is_empty() {
            event.insert("observer.ingress.interface.name", name);
        }
        i += 1;
        while words.get(i).is_some_and(|w| *w == ")" || w.ends_with(')')) && i < 8 {
            i += 1;
        }
    }
    if words.get(i) == Some(&"->")
        && let Some(dst) = words.get(i + 1)
    {
        let (ip, port) = endpoint(dst);
        set_ip(event, "destination.ip", ip);
        if let Some(p) = port {
            set_port(event, "destination.port", p);
        }
        i += 2;
    }
    // `, 1 packet` / `3 packets`.
    while let Some(w) = words.get(i) {
        if let Ok(n) = w.parse::<i64>()
            && words.get(i + 1).is_some_and(|u| u.starts_with("packet"))
        {
            event.insert("source.packets", n);
            break;
        }
        i += 1;
    }
}

/// `Sig:3051 Subsig:1 Sev:4 TCP Connection Window Size DoS [192.168.100.11:51654 -> 10.10.10.10:4444]`.
fn ips(event: &mut Event, text: &str) {
    event.insert(field::EVENT_CATEGORY, Category::IntrusionDetection);
    event.insert(field::EVENT_KIND, "alert");
    let mut rest = text;
    for key in ["Sig:", "Subsig:", "Sev:"] {
        let Some(r) = rest.trim_start().strip_prefix(key) else {
            break;
        };
        let (value, r) = r.split_once(' ').unwrap_or((r, ""));
        match key {
            "Sig:" => event.insert("rule.id", value),
            "Subsig:" => event.insert("cisco.ios.ips.subsignature", value),
            _ => {
                if let Ok(n) = value.parse::<i64>() {
                    event.insert("cisco.ios.ips.severity", n);
                }
            }
        }
        rest = r;
    }
    let (name, flow) = match rest.rfind('[') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, ""),
    };
    if !name.trim().is_empty() {
        event.insert("rule.name", name.trim());
    }
    let flow = flow.trim_end_matches(']');
    if let Some((src, dst)) = flow.split_once("->") {
        for (side, text) in [("source", src), ("destination", dst)] {
            let text = text.trim();
            let (ip, port) = match text.rsplit_once(':') {
                // An IPv6 address has colons of its own: only a port after the last one
                // when the rest is an address.
                Some((ip, port)) if ip.parse::<IpAddr>().is_ok() => (ip, Some(port)),
                _ => (text, None),
            };
            set_ip(event, &format!("{side}.ip"), ip);
            if let Some(p) = port {
                set_port(event, &format!("{side}.port"), p);
            }
        }
    }
}

/// The value of `[key: value]` in `text`.
fn bracketed<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(&format!("[{key}: "))?;
    let rest = &text[at + key.len() + 3..];
    rest.split_once(']').map(|(v, _)| v.trim())
}

/// `Login Success [user: admin] [Source: 10.1.1.1] [localport: 22] at …`.
fn login(event: &mut Event, mnemonic: &str, text: &str) {
    let success = match mnemonic {
        "LOGIN_SUCCESS" => true,
        "LOGIN_FAILED" | "QUIET_MODE_ON" => false,
        _ => return,
    };
    outcome(event, Category::Authentication, success);
    event.insert(field::EVENT_TYPE, EventType::Start);
    event.insert(
        field::EVENT_ACTION,
        if success { "logged-in" } else { "logon-failed" },
    );
    if let Some(user) = bracketed(text, "user") {
        event.insert("user.name", user);
    }
    if let Some(src) = bracketed(text, "Source") {
        set_ip(event, "source.ip", src);
    }
    if let Some(port) = bracketed(text, "localport") {
        set_port(event, "destination.port", port);
    }
    if let Some(reason) = bracketed(text, "Reason") {
        event.insert("event.reason", reason);
    }
}

/// `User 'user' authentication for SSH2 Session from 10.1.1.1 (tty = 0) … Succeeded`.
fn ssh(event: &mut Event, text: &str) {
    let t = text.trim_end();
    let success = if t.ends_with("Succeeded") {
        true
    } else if t.ends_with("Failed") || t.ends_with("failed") {
        false
    } else {
        return;
    };
    outcome(event, Category::Authentication, success);
    event.insert(field::EVENT_TYPE, EventType::Start);
    if let Some(rest) = t.strip_prefix("User '")
        && let Some((user, _)) = rest.split_once('\'')
    {
        event.insert("user.name", user);
    }
    if let Some((_, rest)) = t.split_once(" from ")
        && let Some(addr) = rest.split_ascii_whitespace().next()
    {
        set_ip(event, "source.ip", addr);
    }
}

/// `Configured from console by admin on vty0 (10.1.1.1)`.
fn config(event: &mut Event, text: &str) {
    event.insert(field::EVENT_CATEGORY, Category::Configuration);
    event.insert(field::EVENT_TYPE, EventType::Change);
    event.insert(field::EVENT_ACTION, "configured");
    if let Some((_, rest)) = text.split_once(" by ") {
        let mut words = rest.split_ascii_whitespace();
        if let Some(user) = words.next() {
            event.insert("user.name", user);
        }
        if let Some(addr) = rest.rsplit_once('(').map(|(_, a)| a.trim_end_matches(')')) {
            set_ip(event, "source.ip", addr);
        }
    }
}

/// `Authentication failed for client (MAC) on Interface Fa0/3 AuditSessionID …`.
fn port_auth(event: &mut Event, mnemonic: &str, text: &str) {
    if mnemonic.contains("FAIL") {
        outcome(event, Category::Authentication, false);
    } else if mnemonic.contains("SUCCESS") {
        outcome(event, Category::Authentication, true);
    }
    if let Some((_, rest)) = text.split_once(" on Interface ")
        && let Some(name) = rest.split_ascii_whitespace().next()
    {
        event.insert("observer.ingress.interface.name", name);
    }
}

/// `Interface GigabitEthernet0/1, changed state to down`.
fn link(event: &mut Event, text: &str) {
    event.insert(field::EVENT_CATEGORY, Category::Network);
    if let Some(rest) = text.strip_prefix("Interface ")
        && let Some((name, state)) = rest.split_once(',')
    {
        event.insert("observer.ingress.interface.name", name.trim());
        if let Some(s) = state.trim().strip_prefix("changed state to ") {
            event.insert(field::EVENT_ACTION, format!("interface-{}", s.trim()));
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::Timestamp;

    use super::*;
    use crate::{Format, ParseContext, parse_line};

    fn parse(line: &str) -> Event {
        let ctx = ParseContext::new(Timestamp::parse("2026-01-01T00:00:00Z").unwrap(), "t");
        parse_line(line.as_bytes(), Format::Auto, &ctx)
    }

    #[test]
    fn access_list_lines_in_every_header_style() {
        for line in [
            "Sep  1 10:25:29 10.10.10.1 %SEC-6-IPACCESSLOGP: list 102 denied tcp 10.0.6.56(3067) -> 172.36.4.7(139), 1 packet",
            "681: Aug 17 17:41:24.776 AEST: %SEC-6-IPACCESSLOGP: list 102 denied tcp 10.0.6.56(3067) -> 172.36.4.7(139), 1 packet",
            "<189>3924923: *Oct  6 03:32:04.114 gmt: %SEC-6-IPACCESSLOGP: list 102 denied tcp 10.0.6.56(3067) (Serial4/3 ) -> 172.36.4.7(139), 1 packet",
        ] {
            let e = parse(line);
            assert_eq!(
                e.get_str("event.dataset"),
                Some("cisco.ios"),
                "{line}\n{e:?}"
            );
            assert_eq!(e.get_str("cisco.ios.access_list"), Some("102"), "{line}");
            assert_eq!(e.get_str("event.outcome"), Some("failure"));
            assert_eq!(e.get_str("network.transport"), Some("tcp"));
            assert_eq!(e.get("source.ip").unwrap().to_string(), "10.0.6.56");
            assert_eq!(e.get("source.port").and_then(Value::as_i64), Some(3067));
            assert_eq!(e.get("destination.ip").unwrap().to_string(), "172.36.4.7");
            assert_eq!(e.get("destination.port").and_then(Value::as_i64), Some(139));
            assert_eq!(e.get("source.packets").and_then(Value::as_i64), Some(1));
            assert_eq!(e.get_str("event.code"), Some("IPACCESSLOGP"));
        }
        let e = parse("%SEC-6-IPACCESSLOGS: list 10 permitted 192.0.2.7 3 packets");
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "192.0.2.7");
        assert_eq!(e.get("source.packets").and_then(Value::as_i64), Some(3));
    }

    #[test]
    fn logins_ssh_ips_and_config() {
        let e = parse(
            "%SEC_LOGIN-4-LOGIN_FAILED: Login failed [user: admin] [Source: 198.51.100.4] [localport: 22] [Reason: Login Authentication Failed] at 10:00:00 UTC Mon Dec 7 2026",
        );
        assert_eq!(e.get_str("user.name"), Some("admin"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "198.51.100.4");
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("event.category"), Some("authentication"));
        let e = parse(
            "4423: Aug 23 00:16:18.200: %SSH-5-SSH2_USERAUTH: User 'bob' authentication for SSH2 Session from 192.0.2.1 (tty = 0) using crypto cipher 'aes', hmac 'hmac-sha1' Succeeded",
        );
        assert_eq!(e.get_str("user.name"), Some("bob"));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        let e = parse(
            "Sep  1 10:25:29 10.10.10.1 %IPS-4-SIGNATURE: Sig:5123 Subsig:2 Sev:5 WWW IIS Internet Printing Overflow [192.168.100.11:60797 -> 10.10.10.10:80]",
        );
        assert_eq!(e.get_str("rule.id"), Some("5123"));
        assert_eq!(
            e.get_str("rule.name"),
            Some("WWW IIS Internet Printing Overflow")
        );
        assert_eq!(e.get("destination.port").and_then(Value::as_i64), Some(80));
        let e = parse("%SYS-5-CONFIG_I: Configured from console by admin on vty0 (192.0.2.9)");
        assert_eq!(e.get_str("user.name"), Some("admin"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "192.0.2.9");
        assert_eq!(e.get_str("event.category"), Some("configuration"));
    }

    /// IOS words inside another program's message, or after free text, are not IOS.
    #[test]
    fn only_the_tag_where_ios_puts_it() {
        assert!(tag("user typed %SEC-6-IPACCESSLOGP: list 1 denied tcp").is_none());
        assert!(tag("%sec-6-x: lower case").is_none());
        assert!(tag("%SEC-9-X: severity 9").is_none());
        assert!(tag("%ASA-6-302013: the ASA reader's").is_none());
        let e = parse(
            "<38>Dec  6 10:00:01 web1 sshd[812]: Invalid user %SEC_LOGIN-5-LOGIN_SUCCESS: from 203.0.113.5 port 1 ssh2",
        );
        assert_ne!(e.get_str("event.dataset"), Some("cisco.ios"));
        for hostile in [
            "%",
            "%A-1-",
            "%A-1-B:",
            "%A-1-B: list",
            "%SEC-6-IPACCESSLOGP: list 1 denied tcp (",
            "%IPS-4-SIGNATURE: Sig:",
            "%IPS-4-SIGNATURE: [->]",
            "%SEC_LOGIN-5-LOGIN_SUCCESS: [user: ",
        ] {
            let _ = parse(hostile);
        }
    }
}
