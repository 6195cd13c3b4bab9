//! Zeek and Suricata EVE records (already read as JSON) → ECS.
//!
//! **Zeek**: a record's log type comes from `_path` when the writer put it there (Zeek TSV's
//! `#path` header, `LogAscii::use_json` with `_path` enabled); Zeek's default JSON output has
//! no `_path`, so the type is then recognised by the record's field signature ([`zeek_type`]).
//! The dataset is `zeek.<type>` and each type gets its ECS fields ([`zeek_ecs`]); Zeek's own
//! names stay, for SigmaHQ's Zeek rules. Zeek TSV is converted to the JSON writer's record by
//! `zeek_tsv` and ends here too, so both formats share this one mapping.
//!
//! **Suricata EVE**: `event_type` gives `suricata.<event_type>`; each event type gets its ECS
//! fields ([`suricata_ecs`]).
//!
//! Pure functions over one event; nothing here allocates more than the event already holds.

use vigil_event::{Category, Event, EventKind, Outcome, Value, field};

/// Copies `from` to the ECS name `to` unless `to` is set; `*.ip` names get typed addresses
/// (a value that is not an address is not copied).
fn copy_typed(event: &mut Event, from: &str, to: &str) {
    if event.contains(to) {
        return;
    }
    match event.get(from).cloned() {
        Some(Value::Str(s)) if to.ends_with(".ip") => {
            if let Ok(ip) = s.parse() {
                event.insert(to, Value::Ip(ip));
            }
        }
        Some(Value::Null) | None => {}
        Some(v) => event.insert(to, v),
    }
}

fn copy_all(event: &mut Event, pairs: &[(&str, &str)]) {
    for (from, to) in pairs {
        copy_typed(event, from, to);
    }
}

/// Zeek log types recognised by their fields when `_path` is absent: the type and fields that
/// all must be present. Checked in order (more specific signatures first); every record also
/// needs Zeek's `ts`.
const ZEEK_SIGNATURES: &[(&str, &[&str])] = &[
    ("conn", &["conn_state", "id.orig_h"]),
    ("dns", &["trans_id", "id.orig_h"]),
    ("dns", &["query", "qtype_name", "id.orig_h"]),
    ("http", &["trans_depth", "request_body_len"]),
    ("http", &["trans_depth", "method", "uri"]),
    ("smtp", &["trans_depth", "helo"]),
    ("smtp", &["trans_depth", "mailfrom"]),
    ("smtp", &["trans_depth", "last_reply"]),
    ("ftp", &["command", "reply_code", "id.orig_h"]),
    ("ftp", &["command", "user", "id.orig_h"]),
    ("ssh", &["auth_attempts", "id.orig_h"]),
    ("ssh", &["auth_success", "id.orig_h"]),
    ("ssh", &["host_key", "id.orig_h"]),
    ("ssl", &["established", "id.orig_h"]),
    ("ssl", &["server_name", "cipher", "id.orig_h"]),
    ("x509", &["certificate.subject"]),
    ("x509", &["fingerprint", "certificate.version"]),
    ("files", &["fuid", "seen_bytes"]),
    ("files", &["fuid", "analyzers", "mime_type"]),
    ("pe", &["machine", "compile_ts"]),
    ("pe", &["id", "is_exe"]),
    ("notice", &["note", "msg"]),
    ("weird", &["name", "notice", "peer"]),
    ("dpd", &["analyzer", "failure_reason"]),
    ("dhcp", &["msg_types"]),
    ("dhcp", &["uids", "mac", "assigned_addr"]),
    ("syslog", &["facility", "severity", "message", "id.orig_h"]),
    ("rdp", &["cookie", "security_protocol"]),
    ("sip", &["call_id", "request_from"]),
    ("snmp", &["community", "get_requests"]),
    ("tunnel", &["tunnel_type", "action"]),
    ("ntp", &["stratum", "ref_id"]),
    ("kerberos", &["request_type", "client", "service"]),
    ("ntlm", &["server_nb_computer_name"]),
    ("ntlm", &["domainname", "hostname", "success", "id.orig_h"]),
    ("smb_mapping", &["share_type", "path"]),
    ("smb_files", &["action", "path", "name", "fuid"]),
    ("dce_rpc", &["endpoint", "operation", "named_pipe"]),
    ("mysql", &["cmd", "arg", "id.orig_h"]),
    ("radius", &["mac", "result", "id.orig_h"]),
    ("modbus", &["func", "id.orig_h"]),
    ("irc", &["nick", "command", "id.orig_h"]),
    ("socks", &["request.host", "status"]),
    ("intel", &["seen.indicator", "matched"]),
    ("signatures", &["sig_id", "event_msg"]),
    ("ocsp", &["hashAlgorithm", "issuerNameHash"]),
    ("software", &["software_type", "name"]),
    ("known_services", &["host", "port_num", "service"]),
    (
        "known_certs",
        &["host", "port_num", "subject", "issuer_subject"],
    ),
    ("capture_loss", &["percent_lost", "gaps"]),
    ("stats", &["pkts_proc", "events_proc"]),
    ("packet_filter", &["filter", "node", "init", "success"]),
    ("reporter", &["level", "message", "location"]),
];

/// The Zeek log type of a record without `_path`, from its field signature.
pub fn zeek_type(event: &Event) -> Option<&'static str> {
    if !event.contains("ts") {
        return None;
    }
    for (kind, fields) in ZEEK_SIGNATURES {
        if fields.iter().all(|f| event.contains(f)) {
            return Some(kind);
        }
    }
    // `known_hosts` is only `ts` and `host` (plus the JSON writer's `_write_ts`).
    let only_known_hosts = event
        .fields()
        .all(|(k, _)| matches!(k, "ts" | "host" | "_write_ts" | "@timestamp"));
    if only_known_hosts && event.contains("host") {
        return Some("known_hosts");
    }
    None
}

/// Whether the record carries Zeek's connection id (`id.orig_h`/`id.resp_h`).
fn has_conn_id(event: &Event) -> bool {
    event.contains("id.orig_h") || event.contains("id.resp_h")
}

/// The ECS fields of one Zeek log type (Zeek's names are kept beside them).
pub fn zeek_ecs(event: &mut Event, kind: &str) {
    copy_all(
        event,
        &[
            ("id.orig_h", "source.ip"),
            ("id.orig_p", "source.port"),
            ("id.resp_h", "destination.ip"),
            ("id.resp_p", "destination.port"),
            ("proto", "network.transport"),
        ],
    );
    match kind {
        "conn" => copy_all(
            event,
            &[
                ("service", "network.protocol"),
                ("orig_bytes", "source.bytes"),
                ("resp_bytes", "destination.bytes"),
                ("orig_pkts", "source.packets"),
                ("resp_pkts", "destination.packets"),
            ],
        ),
        "dns" => copy_all(
            event,
            &[
                ("query", "dns.question.name"),
                ("qtype_name", "dns.question.type"),
                ("qclass_name", "dns.question.class"),
                ("rcode_name", "dns.response_code"),
                ("trans_id", "dns.id"),
            ],
        ),
        "http" => copy_all(
            event,
            &[
                ("method", "http.request.method"),
                ("host", "url.domain"),
                ("uri", "url.original"),
                ("referrer", "http.request.referrer"),
                ("user_agent", "user_agent.original"),
                ("status_code", "http.response.status_code"),
                ("request_body_len", "http.request.body.bytes"),
                ("response_body_len", "http.response.body.bytes"),
                ("username", "user.name"),
            ],
        ),
        "ssl" => copy_all(
            event,
            &[
                ("server_name", "tls.client.server_name"),
                ("cipher", "tls.cipher"),
                ("subject", "tls.server.subject"),
                ("issuer", "tls.server.issuer"),
                ("ja3", "tls.client.ja3"),
                ("ja3s", "tls.server.ja3s"),
            ],
        ),
        "x509" => copy_all(
            event,
            &[
                ("certificate.subject", "x509.subject.distinguished_name"),
                ("certificate.issuer", "x509.issuer.distinguished_name"),
                ("certificate.serial", "x509.serial_number"),
                ("certificate.version", "x509.version_number"),
                ("certificate.not_valid_before", "x509.not_before"),
                ("certificate.not_valid_after", "x509.not_after"),
                ("certificate.key_alg", "x509.public_key_algorithm"),
                ("certificate.sig_alg", "x509.signature_algorithm"),
                ("san.dns", "x509.alternative_names"),
                ("fingerprint", "tls.server.hash.sha256"),
            ],
        ),
        "files" | "pe" => copy_all(
            event,
            &[
                ("md5", "file.hash.md5"),
                ("sha1", "file.hash.sha1"),
                ("sha256", "file.hash.sha256"),
                ("mime_type", "file.mime_type"),
                ("filename", "file.name"),
                ("total_bytes", "file.size"),
            ],
        ),
        "notice" => {
            copy_all(
                event,
                &[
                    ("note", "rule.name"),
                    ("msg", "message"),
                    ("src", "source.ip"),
                    ("dst", "destination.ip"),
                    ("p", "destination.port"),
                ],
            );
            event.insert(field::EVENT_KIND, EventKind::Alert);
            event.insert(field::EVENT_CATEGORY, Category::IntrusionDetection);
        }
        "weird" => copy_all(event, &[("name", "event.action"), ("addl", "message")]),
        "dpd" => copy_all(event, &[("analyzer", "network.protocol")]),
        "ssh" => {
            copy_all(
                event,
                &[
                    ("client", "user_agent.original"),
                    ("server", "destination.service.version"),
                ],
            );
            if !event.contains(field::EVENT_OUTCOME)
                && let Some(Value::Bool(ok)) = event.get("auth_success")
            {
                let o = if *ok {
                    Outcome::Success
                } else {
                    Outcome::Failure
                };
                event.insert(field::EVENT_OUTCOME, o);
            }
        }
        "smtp" => copy_all(
            event,
            &[
                ("mailfrom", "email.from.address"),
                ("rcptto", "email.to.address"),
                ("subject", "email.subject"),
                ("msg_id", "email.message_id"),
                ("user_agent", "user_agent.original"),
            ],
        ),
        "ftp" => copy_all(
            event,
            &[
                ("user", "user.name"),
                ("command", "event.action"),
                ("reply_code", "ftp.reply_code"),
            ],
        ),
        "syslog" => copy_all(
            event,
            &[
                ("message", "message"),
                ("facility", "log.syslog.facility.name"),
                ("severity", "log.syslog.severity.name"),
            ],
        ),
        "dhcp" => copy_all(
            event,
            &[
                ("client_addr", "client.ip"),
                ("assigned_addr", "client.nat.ip"),
                ("mac", "client.mac"),
                ("host_name", "host.hostname"),
                ("server_addr", "server.ip"),
            ],
        ),
        "software" => copy_all(
            event,
            &[
                ("host", "host.ip"),
                ("name", "package.name"),
                ("unparsed_version", "package.version"),
            ],
        ),
        "known_hosts" | "known_services" | "known_certs" => {
            copy_all(event, &[("host", "host.ip"), ("port_num", "server.port")]);
        }
        "kerberos" | "ntlm" | "rdp" => copy_all(
            event,
            &[
                ("client", "user.name"),
                ("username", "user.name"),
                ("cookie", "user.name"),
            ],
        ),
        _ => {}
    }
}

/// The ECS fields of one Suricata EVE event type.
pub fn suricata_ecs(event: &mut Event, kind: &str) {
    copy_all(
        event,
        &[
            ("src_ip", "source.ip"),
            ("src_port", "source.port"),
            ("dest_ip", "destination.ip"),
            ("dest_port", "destination.port"),
            ("proto", "network.transport"),
            ("app_proto", "network.protocol"),
            ("community_id", "network.community_id"),
            ("in_iface", "observer.ingress.interface.name"),
        ],
    );
    match kind {
        "alert" => {
            event.insert(field::EVENT_KIND, EventKind::Alert);
            event.insert(field::EVENT_CATEGORY, Category::IntrusionDetection);
            copy_all(
                event,
                &[
                    ("alert.signature", "rule.name"),
                    ("alert.signature_id", "rule.id"),
                    ("alert.category", "rule.category"),
                    ("alert.severity", "event.severity"),
                    ("alert.action", "event.action"),
                ],
            );
        }
        "anomaly" => copy_all(
            event,
            &[
                ("anomaly.event", "event.action"),
                ("anomaly.type", "rule.category"),
            ],
        ),
        "flow" | "netflow" => copy_all(
            event,
            &[
                ("flow.bytes_toserver", "source.bytes"),
                ("flow.bytes_toclient", "destination.bytes"),
                ("flow.pkts_toserver", "source.packets"),
                ("flow.pkts_toclient", "destination.packets"),
                ("netflow.bytes", "network.bytes"),
                ("netflow.pkts", "network.packets"),
                ("flow.state", "event.action"),
            ],
        ),
        _ => {}
    }
    // Protocol objects appear in their own event type and in alerts about that protocol.
    copy_all(
        event,
        &[
            ("dns.rrname", "dns.question.name"),
            ("dns.rrtype", "dns.question.type"),
            ("dns.rcode", "dns.response_code"),
            ("http.hostname", "url.domain"),
            ("http.url", "url.original"),
            ("http.http_method", "http.request.method"),
            ("http.status", "http.response.status_code"),
            ("http.http_user_agent", "user_agent.original"),
            ("http.http_refer", "http.request.referrer"),
            ("http.length", "http.response.body.bytes"),
            ("tls.sni", "tls.client.server_name"),
            ("tls.subject", "tls.server.subject"),
            ("tls.issuerdn", "tls.server.issuer"),
            ("tls.ja3.hash", "tls.client.ja3"),
            ("tls.ja3s.hash", "tls.server.ja3s"),
            ("fileinfo.filename", "file.name"),
            ("fileinfo.md5", "file.hash.md5"),
            ("fileinfo.sha1", "file.hash.sha1"),
            ("fileinfo.sha256", "file.hash.sha256"),
            ("fileinfo.size", "file.size"),
            ("fileinfo.magic", "file.type"),
            ("ssh.client.software_version", "user_agent.original"),
            ("smtp.helo", "source.domain"),
            ("smtp.mail_from", "email.from.address"),
            ("smtp.rcpt_to", "email.to.address"),
            ("dhcp.client_mac", "client.mac"),
            ("dhcp.assigned_ip", "client.nat.ip"),
            ("dhcp.hostname", "host.hostname"),
        ],
    );
}

/// Zeek (`_path` or a known field signature) and Suricata EVE (`event_type`) → dataset and ECS.
pub fn enrich(event: &mut Event) {
    if event.contains("event_type")
        && event.contains("timestamp")
        && (event.contains("src_ip")
            || event.contains("flow_id")
            || event.get_str("event_type") == Some("stats"))
    {
        if let Some(kind) = event.get_str("event_type").map(str::to_owned) {
            event.insert(field::EVENT_DATASET, format!("suricata.{kind}"));
            suricata_ecs(event, &kind);
        }
        event.insert("observer.product", "suricata");
        return;
    }
    let kind = match event.get_str("_path") {
        Some(path) => Some(path.to_owned()),
        None => zeek_type(event).map(str::to_owned),
    };
    match kind {
        Some(kind) if event.contains("ts") || has_conn_id(event) => {
            event.insert(field::EVENT_DATASET, format!("zeek.{kind}"));
            zeek_ecs(event, &kind);
            event.insert("observer.product", "zeek");
        }
        // A connection record of an unknown type still has its addresses.
        _ if has_conn_id(event) && event.contains("uid") => {
            zeek_ecs(event, "");
            event.insert("observer.product", "zeek");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParseContext;
    use vigil_event::Timestamp;

    fn parse(line: &str) -> Event {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        crate::json::parse(line, &ctx).unwrap()
    }

    #[test]
    fn zeek_types_without_path_by_signature() {
        for (line, kind) in [
            (
                r#"{"ts":1.0,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":80,"proto":"tcp","conn_state":"SF","orig_bytes":5}"#,
                "conn",
            ),
            (
                r#"{"ts":1.0,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":80,"trans_depth":1,"method":"GET","host":"a.example","uri":"/x","request_body_len":0,"status_code":200}"#,
                "http",
            ),
            (
                r#"{"ts":1.0,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":443,"version":"TLSv12","cipher":"X","server_name":"a.example","established":true}"#,
                "ssl",
            ),
            (
                r#"{"ts":1.0,"fuid":"F1","tx_hosts":["10.0.0.2"],"rx_hosts":["10.0.0.1"],"source":"HTTP","analyzers":["MD5"],"mime_type":"text/plain","seen_bytes":3,"md5":"abc"}"#,
                "files",
            ),
            (
                r#"{"ts":1.0,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":80,"name":"bad_HTTP_request","notice":false,"peer":"zeek"}"#,
                "weird",
            ),
            (
                r#"{"ts":1.0,"uids":["C1"],"client_addr":"10.0.0.5","mac":"00:11:22:33:44:55","assigned_addr":"10.0.0.5","msg_types":["REQUEST","ACK"]}"#,
                "dhcp",
            ),
            (
                r#"{"ts":1.0,"host":"10.0.0.1","software_type":"HTTP::BROWSER","name":"Firefox","unparsed_version":"Firefox/1"}"#,
                "software",
            ),
            (r#"{"ts":1.0,"host":"10.0.0.1"}"#, "known_hosts"),
            (
                r#"{"ts":1.0,"id":"F1","machine":"AMD64","compile_ts":1.0,"os":"Windows","is_exe":true}"#,
                "pe",
            ),
        ] {
            let e = parse(line);
            assert_eq!(
                e.get_str("event.dataset"),
                Some(format!("zeek.{kind}").as_str()),
                "{line}"
            );
        }
        let e = parse(
            r#"{"ts":1.0,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":80,"trans_depth":1,"method":"GET","host":"a.example","uri":"/x","request_body_len":0}"#,
        );
        assert_eq!(e.get_str("url.original"), Some("/x"));
        assert_eq!(e.get_str("url.domain"), Some("a.example"));
        assert_eq!(e.get_str("http.request.method"), Some("GET"));
        // An ordinary application log with a `host` field is not a Zeek record.
        let e = parse(r#"{"host":"web1","msg":"hi","level":"info"}"#);
        assert_eq!(e.get_str("event.dataset"), None);
        assert_eq!(e.get_str("observer.product"), None);
    }

    #[test]
    fn suricata_event_types() {
        let base = r#""timestamp":"2019-01-02T03:50:11.315110","flow_id":1,"src_ip":"10.0.0.1","src_port":1,"dest_ip":"10.0.0.2","dest_port":53,"proto":"UDP""#;
        let e = parse(&format!(
            r#"{{{base},"event_type":"dns","dns":{{"type":"query","id":1,"rrname":"a.example","rrtype":"A"}}}}"#
        ));
        assert_eq!(e.get_str("event.dataset"), Some("suricata.dns"));
        assert_eq!(e.get_str("dns.question.name"), Some("a.example"));
        let e = parse(&format!(
            r#"{{{base},"event_type":"http","http":{{"hostname":"a.example","url":"/x","http_method":"GET","status":200,"http_user_agent":"curl"}}}}"#
        ));
        assert_eq!(e.get_str("url.original"), Some("/x"));
        assert_eq!(e.get_str("user_agent.original"), Some("curl"));
        let e = parse(&format!(
            r#"{{{base},"event_type":"fileinfo","fileinfo":{{"filename":"/a.exe","md5":"00","size":3}}}}"#
        ));
        assert_eq!(e.get_str("file.hash.md5"), Some("00"));
        assert_eq!(e.get_str("file.name"), Some("/a.exe"));
        let e = parse(&format!(
            r#"{{{base},"event_type":"tls","tls":{{"sni":"a.example","subject":"CN=a"}}}}"#
        ));
        assert_eq!(e.get_str("tls.client.server_name"), Some("a.example"));
        let e = parse(
            r#"{"timestamp":"2019-01-02T03:50:11.315110","event_type":"stats","stats":{"uptime":5}}"#,
        );
        assert_eq!(e.get_str("event.dataset"), Some("suricata.stats"));
    }
}
