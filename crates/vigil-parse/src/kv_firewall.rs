//! More firewalls → ECS network fields, each with the dataset the Sigma logsource table
//! selects (`category: firewall`, and the product where SigmaHQ has one):
//!
//! | device | recognised by | `event.dataset` |
//! |---|---|---|
//! | SonicWall (SonicOS `key=value`) | a message starting `id=… sn=…` with `m=` | `sonicwall_firewall.log` |
//! | Sophos XG / SFOS (`key=value`) | a message starting `device="SFW"`, or `device_name=` with `log_id=` and `log_type=` | `sophos.xg` |
//! | Check Point (Log Exporter syslog, `[key:"value"; …]`) | the app name `CheckPoint` before `[` | `checkpoint.firewall` |
//! | Juniper SRX (Junos structured syslog) | `RT_…` tag then `[junos@…` | `juniper.srx` |
//! | Juniper NetScreen / ScreenOS | a message starting `NetScreen device_id=` | `juniper.netscreen` |
//! | Huawei USG (`%%01MODULE/severity/MNEMONIC(l):`) | the `%%` tag at the start | `huawei.usg` |
//! | MikroTik RouterOS (`firewall,info … proto TCP, A:p->B:q`, `login failure for user …`) | topics (`firewall,info`, `system,error,critical`) at the start | `mikrotik.routeros` |
//!
//! Each sets `observer.vendor`/`product`/`type`, `event.category` and, where the device says,
//! `source.ip/port`, `destination.ip/port`, `network.transport`, `event.action`,
//! `event.type`/`event.outcome`, interfaces, zones, `rule.name`, `user.name`; the device's own
//! keys are kept under `<vendor>.*` for rules written against them. Pure and bounded: at most
//! [`MAX_PAIRS`] pairs are read from a message, once.

use std::net::IpAddr;

use vigil_event::{Category, Event, EventType, Outcome, Value, field};

/// The most `key=value` pairs read from one message.
pub const MAX_PAIRS: usize = 128;

/// `key=value` / `key="value"` pairs (also `key:"value";` with `sep` `:`), in order. Keys are
/// `[A-Za-z0-9_.:-]`; a quoted value may hold anything but `"`.
fn pairs(text: &str, sep: u8) -> Vec<(&str, &str)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < MAX_PAIRS {
        // A key.
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-')) {
            i += 1;
        }
        if i == start || i >= b.len() || b[i] != sep {
            // Not a pair: skip to the next separator of pairs.
            i = i.max(start + 1);
            while i < b.len() && !matches!(b[i], b' ' | b';' | b',' | b'[' | b'(') {
                i += 1;
            }
            i += 1;
            continue;
        }
        let key = &text[start..i];
        i += 1;
        // Check Point doubles the colon of a few keys (`ike::"…"`).
        while sep == b':' && i < b.len() && b[i] == b':' {
            i += 1;
        }
        let value = if i < b.len() && b[i] == b'"' {
            let from = i + 1;
            let end = memchr::memchr(b'"', &b[from..]).map_or(b.len(), |n| from + n);
            i = (end + 1).min(b.len());
            &text[from..end]
        } else {
            let from = i;
            while i < b.len() && !matches!(b[i], b' ' | b';' | b',' | b']' | b')') {
                i += 1;
            }
            &text[from..i]
        };
        out.push((key, value));
        // Past the pair's end and separators.
        while i < b.len() && matches!(b[i], b' ' | b';' | b',') {
            i += 1;
        }
    }
    out
}

fn get<'a>(pairs: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .filter(|v| !v.is_empty())
}

fn set_ip(event: &mut Event, key: &str, text: &str) {
    if let Ok(ip) = text.trim().trim_matches(['[', ']']).parse::<IpAddr>() {
        event.insert(key, Value::Ip(ip));
    }
}

fn set_port(event: &mut Event, key: &str, text: &str) {
    if let Ok(port) = text.trim().parse::<u16>() {
        event.insert(key, i64::from(port));
    }
}

fn set(event: &mut Event, key: &str, value: Option<&str>) {
    if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
        event.insert(key, v);
    }
}

fn transport(event: &mut Event, proto: &str) {
    let name = match proto.trim().to_ascii_lowercase().as_str() {
        "6" | "tcp" => "tcp".to_owned(),
        "17" | "udp" => "udp".to_owned(),
        "1" | "icmp" => "icmp".to_owned(),
        "58" | "icmpv6" | "ipv6-icmp" => "ipv6-icmp".to_owned(),
        other
            if !other.is_empty()
                && other.len() <= 16
                && other.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            other.to_owned()
        }
        _ => return,
    };
    event.insert("network.transport", name);
}

fn device(event: &mut Event, dataset: &str, vendor: &str, product: &str) {
    event.insert(field::EVENT_DATASET, dataset);
    event.insert("observer.vendor", vendor);
    event.insert("observer.product", product);
    event.insert("observer.type", "firewall");
    event.insert(field::EVENT_KIND, "event");
    event.insert(field::EVENT_CATEGORY, Category::Network);
}

/// An action word → `event.action` (as the device says it, lower case), `event.type`,
/// `event.outcome`.
fn action(event: &mut Event, word: &str) {
    let w = word.trim().to_ascii_lowercase();
    if w.is_empty() || w.len() > 64 {
        return;
    }
    let words: Vec<&str> = w
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .take(16)
        .collect();
    let has = |list: &[&str]| words.iter().any(|x| list.contains(x));
    if has(&[
        "deny", "denied", "drop", "dropped", "block", "blocked", "reject", "rejected", "reset",
    ]) {
        event.insert(field::EVENT_TYPE, EventType::Denied);
        event.insert(field::EVENT_OUTCOME, Outcome::Failure);
    } else if has(&[
        "accept",
        "accepted",
        "allow",
        "allowed",
        "permit",
        "permitted",
        "pass",
        "forward",
        "opened",
    ]) {
        event.insert(field::EVENT_TYPE, EventType::Allowed);
        event.insert(field::EVENT_OUTCOME, Outcome::Success);
    }
    event.insert(field::EVENT_ACTION, w);
}

/// Keeps the device's own keys under `prefix.` (at most [`MAX_PAIRS`], names as the device
/// wrote them; they cannot reach Vigil's names: `prefix` is the vendor's).
fn keep(event: &mut Event, prefix: &str, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        if !v.is_empty() {
            event.insert(format!("{prefix}.{k}"), *v);
        }
    }
}

/// Reads `message` of `program` (empty without a syslog header) as one of these firewalls;
/// whether one recognised it.
pub fn enrich(event: &mut Event, program: &str, message: &str) -> bool {
    let message = message.trim_start();
    // A header-less line the syslog reader split: the device's first word was taken for the
    // program.
    let joined;
    let whole = if program.contains('=') || program.contains(',') {
        joined = format!("{program} {message}");
        joined.as_str()
    } else {
        message
    };
    if whole.starts_with("id=") && sonicwall(event, whole) {
        return true;
    }
    if (whole.starts_with("device=") || whole.starts_with("device_name=")) && sophos(event, whole) {
        return true;
    }
    if let Some(rest) = whole.strip_prefix("NetScreen device_id=") {
        return netscreen(event, rest);
    }
    if let Some(at) = junos_at(whole) {
        return junos(event, whole, at);
    }
    if let Some(rest) = checkpoint_at(program, whole) {
        return checkpoint(event, rest);
    }
    if let Some((name, rest)) = huawei_at(whole) {
        return huawei(event, name, rest);
    }
    mikrotik(event, whole)
}

/// Whether a whole line (no syslog header) is one of these devices' messages.
pub fn looks_like(line: &str) -> bool {
    let t = line.trim_start();
    (t.starts_with("id=") && t.contains(" sn=") && t.contains(" m="))
        || t.starts_with("device=\"SFW\"")
        || t.starts_with("NetScreen device_id=")
        || junos_at(t).is_some()
        || checkpoint_at("", t).is_some()
        || huawei_at(t).is_some()
        || mikrotik_topics(t).is_some()
}

// ---- SonicWall --------------------------------------------------------------------------------

/// `src=10.12.14.9:4507:X0-V500` (address, port, interface; any part may be empty).
fn sonic_endpoint(event: &mut Event, side: &str, text: &str, v6: Option<&str>) {
    // An IPv6 address is given apart (`srcV6=`), the address part then empty.
    let mut parts = text.rsplitn(3, ':').collect::<Vec<_>>();
    parts.reverse();
    let (ip, port, iface) = match parts.as_slice() {
        [ip, port, iface] => (*ip, *port, *iface),
        [ip, port] => (*ip, *port, ""),
        [ip] => (*ip, "", ""),
        _ => return,
    };
    match v6 {
        Some(v6) => set_ip(event, &format!("{side}.ip"), v6),
        None => set_ip(event, &format!("{side}.ip"), ip),
    }
    set_port(event, &format!("{side}.port"), port);
    if !iface.is_empty() {
        let key = if side == "source" {
            "observer.ingress.interface.name"
        } else {
            "observer.egress.interface.name"
        };
        event.insert(key, iface);
    }
}

fn sonicwall(event: &mut Event, text: &str) -> bool {
    let p = pairs(text, b'=');
    if get(&p, "sn").is_none() || get(&p, "m").is_none() {
        return false;
    }
    device(event, "sonicwall_firewall.log", "SonicWall", "SonicOS");
    keep(event, "sonicwall", &p);
    set(event, "event.code", get(&p, "m"));
    set(event, "observer.serial_number", get(&p, "sn"));
    if let Some(fw) = get(&p, "fw") {
        set_ip(event, "observer.ip", fw);
    }
    if let Some(src) = get(&p, "src") {
        sonic_endpoint(event, "source", src, get(&p, "srcV6"));
    }
    if let Some(dst) = get(&p, "dst") {
        sonic_endpoint(event, "destination", dst, get(&p, "dstV6"));
    }
    if let Some(proto) = get(&p, "proto") {
        let (name, port) = proto.split_once('/').unwrap_or((proto, ""));
        transport(event, name);
        if !event.contains("destination.port") {
            set_port(event, "destination.port", port);
        }
    }
    set(event, "rule.name", get(&p, "rule"));
    set(
        event,
        "user.name",
        get(&p, "usr").or_else(|| get(&p, "user")),
    );
    if let Some(msg) = get(&p, "msg") {
        event.insert(field::MESSAGE, msg);
        let lower = msg.to_ascii_lowercase();
        if lower.contains("login") {
            event.insert(field::EVENT_CATEGORY, Category::Authentication);
        }
        // The verdict is in the message (`TCP connection dropped`, `login denied`).
        let verdict = [
            "dropped", "denied", "blocked", "rejected", "allowed", "opened",
        ]
        .iter()
        .find(|w| lower.split_ascii_whitespace().any(|x| x == **w));
        if let Some(v) = verdict {
            action(event, v);
        }
    }
    true
}

// ---- Sophos XG --------------------------------------------------------------------------------

fn sophos(event: &mut Event, text: &str) -> bool {
    let p = pairs(text, b'=');
    let sfw = get(&p, "device") == Some("SFW");
    if !sfw && (get(&p, "log_id").is_none() || get(&p, "log_type").is_none()) {
        return false;
    }
    device(event, "sophos.xg", "Sophos", "XG");
    keep(event, "sophos.xg", &p);
    set(event, "observer.name", get(&p, "device_name"));
    set(event, "observer.serial_number", get(&p, "device_id"));
    set(event, "event.code", get(&p, "log_id"));
    if let Some(ip) = get(&p, "src_ip") {
        set_ip(event, "source.ip", ip);
    }
    if let Some(ip) = get(&p, "dst_ip") {
        set_ip(event, "destination.ip", ip);
    }
    if let Some(port) = get(&p, "src_port") {
        set_port(event, "source.port", port);
    }
    if let Some(port) = get(&p, "dst_port") {
        set_port(event, "destination.port", port);
    }
    if let Some(proto) = get(&p, "protocol") {
        transport(event, proto);
    }
    set(event, "source.mac", get(&p, "src_mac"));
    set(
        event,
        "observer.ingress.interface.name",
        get(&p, "in_interface"),
    );
    set(
        event,
        "observer.egress.interface.name",
        get(&p, "out_interface"),
    );
    set(event, "rule.id", get(&p, "fw_rule_id"));
    set(event, "user.name", get(&p, "user_name"));
    if let Some(status) = get(&p, "status").or_else(|| get(&p, "log_subtype")) {
        action(event, status);
    }
    true
}

// ---- Check Point ------------------------------------------------------------------------------

/// The `[key:"value"; …]` part of a Check Point Log Exporter message.
fn checkpoint_at<'a>(program: &str, text: &'a str) -> Option<&'a str> {
    let body = if program == "CheckPoint" {
        text
    } else {
        // `1 2019-05-15T16:25:50Z HOST CheckPoint 19710 - [` (RFC 5424 without a priority).
        let at = text.find(" CheckPoint ")?;
        if at > 96 || text[..at].contains('=') || text[..at].contains('[') {
            return None;
        }
        &text[at + 12..]
    };
    let open = body.find('[')?;
    // Only the process id and `-` may come before the data.
    if open > 24
        || !body[..open]
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-'))
    {
        return None;
    }
    let data = &body[open + 1..];
    data.contains(":\"").then_some(data)
}

fn checkpoint(event: &mut Event, data: &str) -> bool {
    let p = pairs(data, b':');
    device(event, "checkpoint.firewall", "Check Point", "Firewall");
    keep(event, "checkpoint", &p);
    if let Some(ip) = get(&p, "src") {
        set_ip(event, "source.ip", ip);
    }
    if let Some(ip) = get(&p, "dst") {
        set_ip(event, "destination.ip", ip);
    }
    if let Some(port) = get(&p, "s_port") {
        set_port(event, "source.port", port);
    }
    if let Some(port) = get(&p, "service") {
        set_port(event, "destination.port", port);
    }
    if let Some(proto) = get(&p, "proto") {
        transport(event, proto);
    }
    if let Some(origin) = get(&p, "origin") {
        set_ip(event, "observer.ip", origin);
    }
    set(event, "rule.name", get(&p, "rule_name"));
    set(event, "rule.uuid", get(&p, "rule_uid"));
    set(
        event,
        "user.name",
        get(&p, "src_user_name").or_else(|| get(&p, "user")),
    );
    match get(&p, "ifdir") {
        Some("inbound") => {
            event.insert("network.direction", "inbound");
            set(event, "observer.ingress.interface.name", get(&p, "ifname"));
        }
        Some("outbound") => {
            event.insert("network.direction", "outbound");
            set(event, "observer.egress.interface.name", get(&p, "ifname"));
        }
        _ => {}
    }
    if let Some(a) = get(&p, "action") {
        action(event, a);
    }
    true
}

// ---- Juniper SRX ------------------------------------------------------------------------------

/// Where `[junos@` opens, when an `RT_…` tag comes right before it.
fn junos_at(text: &str) -> Option<usize> {
    let at = text.find("[junos@")?;
    let tag = text[..at].trim_end().rsplit(' ').next()?;
    (tag.starts_with("RT_") && tag.len() <= 48 && at <= 160).then_some(at)
}

fn junos(event: &mut Event, text: &str, at: usize) -> bool {
    let tag = text[..at].trim_end().rsplit(' ').next().unwrap_or("");
    let data = &text[at + 1..];
    // Past the SD-ID (`junos@2636.1.1.1.2.39`).
    let data = data.split_once(' ').map_or("", |(_, d)| d);
    let p = pairs(data, b'=');
    device(event, "juniper.srx", "Juniper", "SRX");
    keep(event, "juniper.srx", &p);
    event.insert("event.code", tag);
    for (key, to) in [
        ("source-address", "source.ip"),
        ("destination-address", "destination.ip"),
        ("nat-source-address", "source.nat.ip"),
        ("nat-destination-address", "destination.nat.ip"),
    ] {
        if let Some(v) = get(&p, key) {
            set_ip(event, to, v);
        }
    }
    for (key, to) in [
        ("source-port", "source.port"),
        ("destination-port", "destination.port"),
    ] {
        if let Some(v) = get(&p, key) {
            set_port(event, to, v);
        }
    }
    if let Some(proto) = get(&p, "protocol-id").or_else(|| get(&p, "protocol")) {
        transport(event, proto);
    }
    set(event, "rule.name", get(&p, "policy-name"));
    set(event, "observer.ingress.zone", get(&p, "source-zone-name"));
    set(
        event,
        "observer.egress.zone",
        get(&p, "destination-zone-name"),
    );
    set(
        event,
        "observer.ingress.interface.name",
        get(&p, "interface-name").or_else(|| get(&p, "packet-incoming-interface")),
    );
    set(
        event,
        "network.application",
        get(&p, "application").filter(|a| *a != "UNKNOWN"),
    );
    set(
        event,
        "user.name",
        get(&p, "username").filter(|u| *u != "N/A"),
    );
    set(event, "event.reason", get(&p, "reason"));
    if tag.starts_with("RT_IDS") || tag.starts_with("RT_SCREEN") || tag.starts_with("RT_IDP") {
        event.insert(field::EVENT_CATEGORY, Category::IntrusionDetection);
        set(event, "rule.name", get(&p, "attack-name"));
    }
    if let Some(a) = get(&p, "action") {
        action(event, a);
    } else if tag.ends_with("_DENY") {
        action(event, "deny");
    } else if tag.ends_with("_CREATE") {
        action(event, "allow");
    } else if tag.ends_with("_CLOSE") {
        event.insert(field::EVENT_TYPE, EventType::End);
        event.insert(field::EVENT_ACTION, "close");
    }
    true
}

// ---- Juniper NetScreen --------------------------------------------------------------------------

/// `0275112227993284  [Root]system-notification-00257(traffic): start_time="…" … src=… dst=…`
/// or `[Root]system-information-00767: System configuration saved by netscreen via web from
/// host 10.10.10.101 to 10.10.10.1:443 …`.
fn netscreen(event: &mut Event, rest: &str) -> bool {
    let (id, body) = rest.split_once(' ').unwrap_or((rest, ""));
    device(event, "juniper.netscreen", "Juniper", "NetScreen");
    event.insert("observer.serial_number", id);
    let body = body.trim_start();
    let body = body
        .strip_prefix('[')
        .and_then(|b| b.split_once(']'))
        .map_or(body, |(vsys, b)| {
            event.insert("juniper.netscreen.vsys", vsys);
            b
        });
    let (head, text) = body.split_once(':').unwrap_or((body, ""));
    // `system-notification-00257(traffic)`: level and message id.
    let mut parts = head.split('-');
    if let (Some(_), Some(level), Some(code)) = (parts.next(), parts.next(), parts.next()) {
        event.insert("log.level", level);
        event.insert("event.code", code.split('(').next().unwrap_or(code));
    }
    let text = text.trim();
    let p = pairs(text, b'=');
    if get(&p, "src").is_some() {
        keep(event, "juniper.netscreen", &p);
        if let Some(ip) = get(&p, "src") {
            set_ip(event, "source.ip", ip);
        }
        if let Some(ip) = get(&p, "dst") {
            set_ip(event, "destination.ip", ip);
        }
        if let Some(port) = get(&p, "src_port") {
            set_port(event, "source.port", port);
        }
        if let Some(port) = get(&p, "dst_port") {
            set_port(event, "destination.port", port);
        }
        if let Some(proto) = get(&p, "proto") {
            transport(event, proto);
        }
        set(event, "rule.id", get(&p, "policy_id"));
        if let Some(a) = get(&p, "action") {
            action(event, a);
        }
    } else {
        event.insert(field::MESSAGE, text);
        // Management: `… from host A to B:port …`, `Management session via SSH from A:0 for
        // admin NAME …`.
        let from = text
            .split_once(" from host ")
            .or_else(|| text.split_once(" from "))
            .and_then(|(_, r)| r.split_ascii_whitespace().next());
        if let Some(addr) = from {
            let addr = addr.rsplit_once(':').map_or(addr, |(a, _)| a);
            set_ip(event, "source.ip", addr);
        }
        if let Some((_, r)) = text.split_once(" for admin ")
            && let Some(user) = r.split_ascii_whitespace().next()
        {
            event.insert("user.name", user);
        }
        if text.contains(" was modified ") || text.contains("configuration saved") {
            event.insert(field::EVENT_CATEGORY, Category::Configuration);
            event.insert(field::EVENT_TYPE, EventType::Change);
        }
    }
    true
}

// ---- Huawei USG -------------------------------------------------------------------------------

/// The text after `%%01MODULE/severity/MNEMONIC(l):` at the start of a message (after at most
/// the device's own date and name).
fn huawei_at(text: &str) -> Option<(&str, &str)> {
    let at = text.find("%%")?;
    if at > 64 || text[..at].contains(['=', '[', '%']) {
        return None;
    }
    let tag_end = text[at..].find(':')? + at;
    let tag = &text[at + 2..tag_end];
    let mut parts = tag.split('/');
    let (module, severity, name) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = module.len() >= 3
        && module.bytes().take(2).all(|b| b.is_ascii_digit())
        && severity.len() == 1
        && severity.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty();
    ok.then(|| (name, &text[tag_end + 1..]))
}

fn huawei(event: &mut Event, name: &str, text: &str) -> bool {
    let text = text.trim();
    // `(SyslogId=…, SrcIp=…, …)` after a sentence, or `vsys=public, protocol=17, …` alone.
    let data = match text.find('(') {
        Some(open) if !text[..open].contains('=') => &text[open + 1..],
        _ => text,
    };
    let p = pairs(data, b'=');
    device(event, "huawei.usg", "Huawei", "USG");
    keep(event, "huawei.usg", &p);
    let g = |a: &str, b: &str| get(&p, a).or_else(|| get(&p, b));
    if let Some(ip) = g("SrcIp", "source-ip") {
        set_ip(event, "source.ip", ip);
    }
    if let Some(ip) = g("DstIp", "destination-ip") {
        set_ip(event, "destination.ip", ip);
    }
    if let Some(port) = g("SrcPort", "source-port") {
        set_port(event, "source.port", port);
    }
    if let Some(port) = g("DstPort", "destination-port") {
        set_port(event, "destination.port", port);
    }
    if let Some(proto) = g("Protocol", "protocol") {
        transport(event, proto);
    }
    set(event, "observer.ingress.zone", g("SrcZone", "source-zone"));
    set(
        event,
        "observer.egress.zone",
        g("DstZone", "destination-zone"),
    );
    set(
        event,
        "rule.name",
        g("Policy", "rule-name").map(|r| r.trim_end_matches('.')),
    );
    set(
        event,
        "user.name",
        get(&p, "User").filter(|u| *u != "unknown"),
    );
    set(event, "url.domain", get(&p, "Host"));
    event.insert("event.code", name);
    if let Some(a) = get(&p, "Action") {
        action(event, a);
    } else if name.contains("PERMIT") {
        action(event, "permit");
    } else if name.contains("DENY") {
        action(event, "deny");
    }
    true
}

// ---- MikroTik ---------------------------------------------------------------------------------

/// The text after RouterOS's topics (`firewall,info `, `system,error,critical `).
fn mikrotik_topics(text: &str) -> Option<(&str, &str)> {
    let (topics, rest) = text.split_once(' ')?;
    let mut names = topics.split(',');
    let first = names.next()?;
    let known = [
        "firewall",
        "system",
        "account",
        "dhcp",
        "interface",
        "wireless",
        "ppp",
        "pppoe",
    ];
    if !topics.contains(',')
        || !known.contains(&first)
        || !names.all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase()))
    {
        return None;
    }
    Some((topics, rest))
}

fn mikrotik(event: &mut Event, text: &str) -> bool {
    let Some((topics, rest)) = mikrotik_topics(text) else {
        return false;
    };
    if topics.starts_with("firewall") {
        // `PREFIX CHAIN: in:IF out:IF, connection-state:new src-mac M, proto TCP (SYN), A:p->B:q, len N`.
        let Some((head, body)) = rest.split_once(": ") else {
            return false;
        };
        let Some(flow) = body
            .split(", ")
            .take(16)
            .find(|part| part.contains("->") && !part.contains(' '))
        else {
            return false;
        };
        device(event, "mikrotik.routeros", "MikroTik", "RouterOS");
        let (prefix, chain) = match head.rsplit_once(' ') {
            Some((p, c)) => (p, c),
            None => ("", head),
        };
        event.insert("mikrotik.chain", chain);
        if !prefix.is_empty() {
            event.insert("rule.name", prefix);
            action(event, prefix);
        } else if chain == "forward" || chain == "input" {
            event.insert(field::EVENT_ACTION, chain);
        }
        for part in body.split(", ").take(16) {
            if let Some(v) = part.strip_prefix("in:") {
                let v = v.split(' ').next().unwrap_or(v);
                event.insert("observer.ingress.interface.name", v);
                if let Some((_, out)) = part.split_once(" out:")
                    && !out.starts_with("(unknown")
                {
                    event.insert("observer.egress.interface.name", out);
                }
            } else if let Some(v) = part.strip_prefix("proto ") {
                transport(event, v.split(' ').next().unwrap_or(v));
            } else if let Some(v) = part.strip_prefix("src-mac ") {
                event.insert("source.mac", v);
            } else if let Some(v) = part.strip_prefix("len ")
                && let Ok(n) = v.trim().parse::<i64>()
            {
                event.insert("network.bytes", n);
            }
        }
        let (src, dst) = flow.split_once("->").unwrap_or((flow, ""));
        for (side, text) in [("source", src), ("destination", dst)] {
            // `[v6]:port` or `v4:port`.
            let (ip, port) = match text.rsplit_once(':') {
                Some((ip, port)) if ip.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() => {
                    (ip, port)
                }
                _ => (text, ""),
            };
            set_ip(event, &format!("{side}.ip"), ip);
            set_port(event, &format!("{side}.port"), port);
        }
        return true;
    }
    // `login failure for user admin from 10.127.0.35 via winbox`,
    // `user admin logged in from 10.0.0.1 via ssh`.
    let (success, after) = if let Some(r) = rest.strip_prefix("login failure for user ") {
        (false, r)
    } else if let Some(r) = rest.strip_prefix("user ") {
        if !r.contains(" logged in from ") {
            return false;
        }
        (true, r)
    } else {
        return false;
    };
    device(event, "mikrotik.routeros", "MikroTik", "RouterOS");
    event.insert(field::EVENT_CATEGORY, Category::Authentication);
    event.insert(field::EVENT_TYPE, EventType::Start);
    event.insert(
        field::EVENT_OUTCOME,
        if success {
            Outcome::Success
        } else {
            Outcome::Failure
        },
    );
    event.insert(
        field::EVENT_ACTION,
        if success { "logged-in" } else { "logon-failed" },
    );
    if let Some(user) = after.split_ascii_whitespace().next() {
        event.insert("user.name", user);
    }
    if let Some((_, r)) = after.split_once(" from ")
        && let Some(addr) = r.split_ascii_whitespace().next()
    {
        set_ip(event, "source.ip", addr);
    }
    if let Some((_, r)) = after.split_once(" via ") {
        event.insert("network.protocol", r.trim());
    }
    true
}

#[cfg(test)]
mod tests;
