//! Network devices → ECS network fields: netfilter (iptables/nftables `LOG` lines from the
//! kernel), pfSense/OPNsense `filterlog` CSV, Cisco ASA/FTD/PIX `%ASA-<sev>-<id>:` messages,
//! FortiGate `key=value` logs and Palo Alto PAN-OS CSV (TRAFFIC, THREAT, SYSTEM).
//!
//! Every reader is given a message (a syslog line's message, or a whole line that arrived
//! without a header) and either recognises it and fills the event, or leaves the event alone.
//! Each sets `event.dataset` (`iptables.log`, `pfsense.log`, `cisco.asa`, `cisco.ftd`,
//! `fortinet.fortigate`, `panw.panos`: the datasets the Sigma logsource table selects for
//! `product: cisco|fortigate|paloalto` and `category: firewall`), `observer.vendor`/`product`,
//! `event.category: network` and, where the device says, `source.*`, `destination.*`,
//! `network.transport`, `event.action`, `event.outcome` and the interfaces. The device's own
//! names are kept as fields too (FortiGate's `srcip`, netfilter's `SRC`), for rules written
//! against them. Pure and bounded: each reader looks at a message once, field by field.

use std::net::IpAddr;

use vigil_event::{Event, Value, field};

/// Reads `message` of `program` (empty for a line without a syslog header) as the network-device
/// format it is in; whether one recognised it. Each format is recognised by its position, not
/// by text anywhere in the message: a device's words inside another program's message (a user
/// name an SSH client chose, a sudo command line) never make it a device line.
pub fn enrich(event: &mut Event, program: &str, message: &str) -> bool {
    let message = message.trim_start();
    // The syslog reader may take the `%ASA-6-302013` tag for the program.
    if program.starts_with("%ASA-") || program.starts_with("%FTD-") || program.starts_with("%PIX-")
    {
        let whole = format!("{program}: {message}");
        return cisco_tag(&whole).is_some_and(|tag| cisco(event, tag));
    }
    if let Some(tag) = cisco_tag(message) {
        return cisco(event, tag);
    }
    match program {
        "filterlog" => return filterlog(event, message),
        "kernel" | "ulogd" | "" if netfilter(event, message) => return true,
        _ => {}
    }
    // Key=value and CSV devices: the message (or a header the syslog reader misread, for a line
    // that had none) starts with the device's own first field.
    let first = message.split_ascii_whitespace().next().unwrap_or("");
    if (first.contains('=') || program.contains('=')) && is_fortigate(message) {
        return fortigate(event, message);
    }
    // A header-less line: a relay's stamp may come before the device's first key.
    if program.is_empty()
        && let Some(at) = ["date=", "devname=", "logver="]
            .iter()
            .filter_map(|k| message.find(k))
            .min()
        && !message[..at].contains('=')
        && is_fortigate(&message[at..])
    {
        return fortigate(event, &message[at..]);
    }
    if let Some(csv) = panos_csv(message) {
        return panos(event, &csv);
    }
    crate::cisco_ios::enrich(event, program, message)
        || crate::kv_firewall::enrich(event, program, message)
}

/// A whole line (no syslog header) that is one of these formats: a bare `%ASA-…` message, a
/// FortiGate `date=… devname=…` line, a PAN-OS CSV line.
pub fn looks_like_device_line(line: &str) -> bool {
    cisco_tag(line).is_some()
        || is_fortigate(line)
        || panos_csv(line).is_some()
        || crate::cisco_ios::looks_like(line)
        || crate::kv_firewall::looks_like(line)
}

/// FortiGate's (and FortiOS 3's) `key=value` logs: a device name or virtual domain, and a log
/// id.
fn is_fortigate(message: &str) -> bool {
    (message.contains("devname=") || message.contains(" vd="))
        && ["logid=", "log_id=", "devid=", "device_id="]
            .iter()
            .any(|k| message.contains(k))
}

fn set_ip(event: &mut Event, key: &str, text: &str) {
    if let Ok(ip) = text.trim().parse::<IpAddr>() {
        event.insert(key, Value::Ip(ip));
    }
}

fn set_port(event: &mut Event, key: &str, text: &str) {
    if let Ok(port) = text.trim().parse::<u16>() {
        event.insert(key, i64::from(port));
    }
}

fn transport(event: &mut Event, proto: &str) {
    let name = match proto.trim().to_ascii_lowercase().as_str() {
        "6" | "tcp" => "tcp",
        "17" | "udp" => "udp",
        "1" | "icmp" => "icmp",
        "58" | "ipv6-icmp" | "icmpv6" => "ipv6-icmp",
        "47" | "gre" => "gre",
        "50" | "esp" => "esp",
        "" => return,
        other if other.len() <= 16 && other.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            event.insert("network.transport", other);
            return;
        }
        _ => return,
    };
    event.insert("network.transport", name);
}

fn common(event: &mut Event, dataset: &str, vendor: &str, product: &str) {
    event.insert(field::EVENT_DATASET, dataset);
    event.insert("observer.vendor", vendor);
    event.insert("observer.product", product);
    event.insert("observer.type", "firewall");
    event.insert(field::EVENT_KIND, "event");
    event.insert(field::EVENT_CATEGORY, "network");
}

/// `allow`/`deny`-like words → ECS `event.type` and `event.outcome`.
fn verdict(event: &mut Event, action: &str) {
    let a = action.to_ascii_lowercase();
    // Whole words (`reset-both`, `SFW2-INext-DROP-DEFLT`): `disallowed` is no `allow`.
    let words: Vec<&str> = a
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    let denied = has(&[
        "deny", "denied", "drop", "block", "reject", "reset", "blocked", "dropped", "rejected",
    ]);
    let allowed = has(&[
        "accept",
        "accepted",
        "allow",
        "allowed",
        "pass",
        "permit",
        "permitted",
        "built",
        "close",
        "start",
    ]);
    if denied {
        event.insert(field::EVENT_TYPE, "denied");
        event.insert(field::EVENT_OUTCOME, "failure");
    } else if allowed {
        event.insert(field::EVENT_TYPE, "allowed");
        event.insert(field::EVENT_OUTCOME, "success");
    }
}

// ---- netfilter -----------------------------------------------------------------------------

/// `[uptime] PREFIX IN=eth0 OUT= MAC=… SRC=… DST=… LEN=… PROTO=TCP SPT=… DPT=… SYN …`.
fn netfilter(event: &mut Event, message: &str) -> bool {
    // The kernel's uptime stamp, then the rule's prefix (free text up to `IN=`).
    let body = match message.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .map_or(message, |(_, r)| r.trim_start()),
        None => message,
    };
    let Some(at) = body.find("IN=") else {
        return false;
    };
    // `IN=` is the first key after the rule's prefix, and the packet has a source.
    let prefix = body[..at].trim();
    if prefix.contains('=') || !body[at..].contains(" SRC=") {
        return false;
    }
    let mut seen_src = false;
    let mut flags = Vec::new();
    for word in body[at..].split_ascii_whitespace().take(64) {
        let Some((key, value)) = word.split_once('=') else {
            if word.len() <= 8 && word.bytes().all(|b| b.is_ascii_uppercase()) {
                flags.push(word.to_owned());
            }
            continue;
        };
        match key {
            "IN" if !value.is_empty() => event.insert("observer.ingress.interface.name", value),
            "OUT" if !value.is_empty() => event.insert("observer.egress.interface.name", value),
            "SRC" => {
                seen_src = true;
                set_ip(event, "source.ip", value);
            }
            "DST" => set_ip(event, "destination.ip", value),
            "SPT" => set_port(event, "source.port", value),
            "DPT" => set_port(event, "destination.port", value),
            "PROTO" => transport(event, value),
            "MAC" if !value.is_empty() => event.insert("netfilter.mac", value),
            "LEN" if !event.contains("network.bytes") => {
                if let Ok(n) = value.parse::<i64>() {
                    event.insert("network.bytes", n);
                }
            }
            _ => {}
        }
    }
    if !seen_src {
        return false;
    }
    common(event, "iptables.log", "Linux", "netfilter");
    if !prefix.is_empty() {
        event.insert("rule.name", prefix);
        event.insert(field::EVENT_ACTION, prefix);
        verdict(event, prefix);
    }
    if !flags.is_empty() {
        event.insert(
            "netfilter.flags",
            Value::List(flags.into_iter().map(Value::from).collect()),
        );
    }
    true
}

// ---- pfSense / OPNsense filterlog -----------------------------------------------------------

/// `rule,subrule,anchor,tracker,interface,reason,action,direction,ipversion,…` (the pfSense
/// filter log format: IPv4 `tos,ecn,ttl,id,offset,flags,protoid,proto,length,src,dst`, IPv6
/// `class,flowlabel,hoplimit,proto,protoid,length,src,dst`, then ports for TCP/UDP).
fn filterlog(event: &mut Event, message: &str) -> bool {
    let f: Vec<&str> = message.trim().splitn(40, ',').collect();
    if f.len() < 9 {
        return false;
    }
    let (proto, src, dst, rest) = match f[8] {
        "4" if f.len() >= 20 => (f[16], f[18], f[19], 20),
        "6" if f.len() >= 17 => (f[12], f[15], f[16], 17),
        _ => return false,
    };
    if src.parse::<IpAddr>().is_err() || dst.parse::<IpAddr>().is_err() {
        return false;
    }
    common(event, "pfsense.log", "Netgate", "pfSense");
    if !f[3].is_empty() {
        event.insert("rule.id", f[3]);
    }
    if !f[0].is_empty() {
        event.insert("rule.name", f[0]);
    }
    let interface = if f[7] == "out" {
        "observer.egress.interface.name"
    } else {
        "observer.ingress.interface.name"
    };
    event.insert(interface, f[4]);
    event.insert("event.reason", f[5]);
    event.insert(field::EVENT_ACTION, f[6]);
    verdict(event, f[6]);
    match f[7] {
        "in" => event.insert("network.direction", "inbound"),
        "out" => event.insert("network.direction", "outbound"),
        _ => {}
    }
    event.insert("network.type", if f[8] == "4" { "ipv4" } else { "ipv6" });
    transport(event, proto);
    set_ip(event, "source.ip", src);
    set_ip(event, "destination.ip", dst);
    if matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp") && f.len() > rest + 1 {
        set_port(event, "source.port", f[rest]);
        set_port(event, "destination.port", f[rest + 1]);
    }
    true
}

// ---- Cisco ASA / FTD / PIX ----------------------------------------------------------------

/// The rest of a `%ASA-3-710003: …` message after its tag, with the product and numbers.
fn cisco_tag(message: &str) -> Option<(&'static str, u8, &str, &str)> {
    // The tag starts the message, after at most a `host : ` remnant or the device's own
    // timestamp (`Oct 03 2018 17:34:08: %ASA-…`): text that only contains one (a user name, a
    // URL) is not a Cisco message.
    let at = message.find('%')?;
    let prefix = &message[..at];
    let stamp = prefix.len() <= 40
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b':' | b'.' | b'*'))
        && (prefix.trim().is_empty() || prefix.trim_end().ends_with(':'));
    if !stamp {
        return None;
    }
    let tag = &message[at + 1..];
    let (product, rest) = [
        ("ASA-", "cisco.asa"),
        ("FTD-", "cisco.ftd"),
        ("PIX-", "cisco.asa"),
    ]
    .iter()
    .find_map(|(p, d)| tag.strip_prefix(p).map(|r| (*d, r)))?;
    let (severity, rest) = rest.split_once('-')?;
    let severity: u8 = severity.parse().ok().filter(|s| *s <= 7)?;
    let (id, text) = rest.split_once(':')?;
    if id.is_empty() || id.len() > 7 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((product, severity, id, text.trim()))
}

fn cisco(event: &mut Event, (dataset, severity, id, text): (&'static str, u8, &str, &str)) -> bool {
    let product = if dataset == "cisco.ftd" {
        "Firepower Threat Defense"
    } else {
        "ASA"
    };
    common(event, dataset, "Cisco", product);
    event.insert("event.code", id);
    event.insert("cisco.severity", i64::from(severity));
    event.insert(
        "log.level",
        [
            "emergency",
            "alert",
            "critical",
            "error",
            "warning",
            "notice",
            "informational",
            "debug",
        ][usize::from(severity)],
    );
    event.insert("message", text);
    // `from [iface:]IP/port to [iface:]IP/port` (106001, 106023, 302013, 710003, …) and
    // `src iface:IP[/port] dst iface:IP[/port]` (106014, 106100, 106023).
    let words: Vec<&str> = text.split_ascii_whitespace().take(64).collect();
    let endpoint = |w: &str| -> Option<(Option<String>, String, Option<String>)> {
        let w = w.trim_end_matches([',', ';', ')', '(']);
        let (iface, addr) = match w.rsplit_once(':') {
            Some((i, a)) if a.contains('.') || a.contains('/') => (Some(i.to_owned()), a),
            _ => (None, w),
        };
        let (ip, port) = match addr.split_once('/') {
            Some((ip, port)) => (ip, Some(port.split('(').next().unwrap_or(port).to_owned())),
            None => (addr, None),
        };
        ip.parse::<IpAddr>().ok()?;
        Some((iface, ip.to_owned(), port))
    };
    let put = |event: &mut Event, side: &str, ep: (Option<String>, String, Option<String>)| {
        set_ip(event, &format!("{side}.ip"), &ep.1);
        if let Some(p) = ep.2 {
            set_port(event, &format!("{side}.port"), &p);
        }
        if let Some(i) = ep.0 {
            // ASA's `inside:`/`outside:` are interface names (nameif), not zones.
            let key = if side == "source" {
                "observer.ingress.interface.name"
            } else {
                "observer.egress.interface.name"
            };
            event.insert(key, i);
        }
    };
    for (i, pair) in words.windows(2).enumerate() {
        match pair[0] {
            // `Built inbound TCP connection 1 for outside:A/p (A/p) to inside:B/q (B/q)`.
            "from" | "src" | "for" if !event.contains("source.ip") => {
                if let Some(ep) = endpoint(pair[1]) {
                    put(event, "source", ep);
                }
            }
            "to" | "dst" if !event.contains("destination.ip") && i > 0 => {
                if let Some(ep) = endpoint(pair[1]) {
                    put(event, "destination", ep);
                }
            }
            _ => {}
        }
    }
    // `Built outbound …`: the `for` side is the server, the `to` side the inside client that
    // opened the connection.
    if words
        .first()
        .is_some_and(|w| w.eq_ignore_ascii_case("built"))
        && words
            .get(1)
            .is_some_and(|w| w.eq_ignore_ascii_case("outbound"))
    {
        swap_sides(event);
    }
    if let Some(proto) = words.iter().find_map(|w| {
        let l = w.to_ascii_lowercase();
        matches!(l.as_str(), "tcp" | "udp" | "icmp").then_some(l)
    }) {
        transport(event, &proto);
    }
    // AAA: `… : user = alice : user IP = 10.0.0.1` (113005, 113015, 611102, 605004/5).
    for part in text.split(" : ") {
        if let Some(user) = part.trim().strip_prefix("user = ") {
            let user = user.trim();
            if !user.is_empty() && !user.chars().all(|c| c == '*') {
                event.insert("user.name", user);
            }
        }
        if let Some(ip) = part.trim().strip_prefix("user IP = ") {
            set_ip(event, "source.ip", ip);
        }
    }
    for quote in ['\'', '"'] {
        if let Some(user) = text
            .split(&format!("user {quote}"))
            .nth(1)
            .and_then(|r| r.split(quote).next())
            && !event.contains("user.name")
            && !user.is_empty()
        {
            event.insert("user.name", user);
        }
    }
    let first = words.first().copied().unwrap_or("");
    let lower = text.to_ascii_lowercase();
    if lower.contains("denied") || first.eq_ignore_ascii_case("deny") || lower.contains("rejected")
    {
        event.insert(field::EVENT_TYPE, "denied");
        event.insert(field::EVENT_OUTCOME, "failure");
        event.insert(field::EVENT_ACTION, "denied");
    } else if first.eq_ignore_ascii_case("built") {
        event.insert(field::EVENT_TYPE, "start");
        event.insert(field::EVENT_ACTION, "connection-built");
    } else if first.eq_ignore_ascii_case("teardown") {
        event.insert(field::EVENT_TYPE, "end");
        event.insert(field::EVENT_ACTION, "connection-teardown");
    }
    if id == "605004" || id == "113015" || id == "611102" {
        event.insert(
            field::EVENT_CATEGORY,
            Value::List(vec!["network".into(), "authentication".into()]),
        );
        event.insert(field::EVENT_OUTCOME, "failure");
    } else if id == "605005" || id == "113004" || id == "611101" {
        event.insert(
            field::EVENT_CATEGORY,
            Value::List(vec!["network".into(), "authentication".into()]),
        );
        event.insert(field::EVENT_OUTCOME, "success");
    }
    true
}

/// Exchanges the `source.*` and `destination.*` addresses, ports and interfaces.
fn swap_sides(event: &mut Event) {
    for (a, b) in [
        ("source.ip", "destination.ip"),
        ("source.port", "destination.port"),
        (
            "observer.ingress.interface.name",
            "observer.egress.interface.name",
        ),
    ] {
        let (x, y) = (event.remove(a), event.remove(b));
        if let Some(x) = x {
            event.insert(b, x);
        }
        if let Some(y) = y {
            event.insert(a, y);
        }
    }
}

// ---- FortiGate --------------------------------------------------------------------------

/// `date=… time=… devname=… type=… subtype=… srcip=… dstip=… action=… …`.
fn fortigate(event: &mut Event, message: &str) -> bool {
    let mut end = message.len().min(16 * 1024);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let Ok(pairs) = crate::logfmt::pairs(&message[..end]) else {
        return false;
    };
    common(event, "fortinet.fortigate", "Fortinet", "FortiGate");
    let mut kind = String::new();
    for (key, value) in pairs.into_iter().take(128) {
        let Some(value) = value else { continue };
        match key.as_str() {
            "srcip" | "src" => set_ip(event, "source.ip", &value),
            "dstip" | "dst" => set_ip(event, "destination.ip", &value),
            "srcport" => set_port(event, "source.port", &value),
            "dstport" => set_port(event, "destination.port", &value),
            "proto" => transport(event, &value),
            "action" => {
                verdict(event, &value);
                event.insert(field::EVENT_ACTION, value.as_str());
            }
            "devname" => event.insert("observer.name", value.as_str()),
            "srcintf" => event.insert("observer.ingress.interface.name", value.as_str()),
            "dstintf" => event.insert("observer.egress.interface.name", value.as_str()),
            "policyid" => event.insert("rule.id", value.as_str()),
            "user" if value != "N/A" && !value.is_empty() => {
                event.insert("user.name", value.as_str())
            }
            "msg" => event.insert("message", value.as_str()),
            "logdesc" => event.insert("event.reason", value.as_str()),
            "attack" => event.insert("rule.name", value.as_str()),
            "type" => kind = value.clone(),
            // `ui=ssh(203.0.113.5)`: where an administrator logged in from.
            "ui" => {
                if let Some(ip) = value.split_once('(').and_then(|(_, r)| r.strip_suffix(')')) {
                    set_ip(event, "source.ip", ip);
                }
            }
            "status" if value == "failed" || value == "failure" => {
                event.insert(field::EVENT_OUTCOME, "failure");
            }
            "status" if value == "success" => event.insert(field::EVENT_OUTCOME, "success"),
            "status" if !event.contains(field::EVENT_ACTION) => verdict(event, &value),
            _ => {}
        }
        // The device's own names stay, for rules written against them: FortiGate's keys are
        // plain words (`srcip`, `logdesc`), never dotted, so none of them is an ECS field, and
        // the few plain ECS names (`tags`, `message`, `labels`) are not taken from the device.
        let plain = !key.is_empty()
            && key.len() <= 64
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !matches!(key.as_str(), "tags" | "message" | "labels" | "ecs");
        if plain && !event.contains(&key) {
            event.insert(key, value);
        }
    }
    if kind == "utm" || kind == "anomaly" {
        event.insert(field::EVENT_KIND, "alert");
        event.insert(
            field::EVENT_CATEGORY,
            Value::List(vec!["network".into(), "intrusion_detection".into()]),
        );
    }
    true
}

// ---- PAN-OS -----------------------------------------------------------------------------

/// The fields of a PAN-OS CSV log (`FUTURE_USE,receive time,serial,TYPE,subtype,…`), when the
/// message is one.
fn panos_csv(message: &str) -> Option<Vec<String>> {
    let head: Vec<&str> = message.splitn(5, ',').collect();
    if head.len() < 5
        || !matches!(
            head[3],
            "TRAFFIC"
                | "THREAT"
                | "SYSTEM"
                | "CONFIG"
                | "GLOBALPROTECT"
                | "USERID"
                | "HIPMATCH"
                | "AUTHENTICATION"
                | "DECRYPTION"
        )
        || head[0].len() > 8
    {
        return None;
    }
    Some(csv_fields(message, 128))
}

/// CSV with double-quoted fields ("" inside quotes is a quote), at most `max` fields.
fn csv_fields(line: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(std::mem::take(&mut cur));
                if out.len() == max {
                    return out;
                }
            }
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn panos(event: &mut Event, f: &[String]) -> bool {
    let get = |i: usize| f.get(i).map(String::as_str).unwrap_or("");
    common(event, "panw.panos", "Palo Alto Networks", "PAN-OS");
    let kind = get(3);
    event.insert("panw.panos.type", kind);
    if !get(4).is_empty() {
        event.insert("panw.panos.sub_type", get(4));
    }
    if !get(2).is_empty() {
        event.insert("observer.serial_number", get(2));
    }
    if matches!(kind, "TRAFFIC" | "THREAT") {
        set_ip(event, "source.ip", get(7));
        set_ip(event, "destination.ip", get(8));
        if !get(11).is_empty() {
            event.insert("rule.name", get(11));
        }
        if !get(12).is_empty() {
            event.insert("source.user.name", get(12));
        }
        if !get(14).is_empty() {
            event.insert("network.application", get(14));
        }
        if !get(16).is_empty() {
            event.insert("observer.ingress.zone", get(16));
        }
        if !get(17).is_empty() {
            event.insert("observer.egress.zone", get(17));
        }
        set_port(event, "source.port", get(24));
        set_port(event, "destination.port", get(25));
        transport(event, get(29));
        let action = get(30);
        if !action.is_empty() {
            event.insert(field::EVENT_ACTION, action);
            verdict(event, action);
        }
        if kind == "THREAT" {
            event.insert(field::EVENT_KIND, "alert");
            event.insert(
                field::EVENT_CATEGORY,
                Value::List(vec!["network".into(), "intrusion_detection".into()]),
            );
            if !get(32).is_empty() {
                event.insert("threat.name", get(32));
            }
            if !get(31).is_empty() {
                event.insert("url.original", get(31));
            }
        }
    } else if kind == "SYSTEM" {
        // `…,module,eventid,object,FUTURE_USE,FUTURE_USE,subtype,severity,description,seq,…`.
        if let Some(severity) = f.get(13).filter(|s| !s.is_empty()) {
            event.insert("log.level", severity.as_str());
        }
        if let Some(description) = f.get(14).filter(|s| !s.is_empty()) {
            event.insert("message", description.as_str());
        }
    }
    true
}

#[cfg(test)]
mod tests;
