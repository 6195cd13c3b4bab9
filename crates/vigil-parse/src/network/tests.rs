use super::*;
use crate::{Format, ParseContext, parse_line};
use vigil_event::Timestamp;

fn parse(line: &str) -> Event {
    let ctx = ParseContext::new(Timestamp::parse("2026-12-07T10:00:00Z").unwrap(), "t");
    parse_line(line.as_bytes(), Format::Auto, &ctx)
}

fn ip(s: &str) -> Option<Value> {
    Some(Value::Ip(s.parse().unwrap()))
}

#[test]
fn netfilter_kernel_lines() {
    let e = parse(
        "<4>Feb  4 23:33:37 gw kernel: [4475569.016000] DROP IN=eth0 OUT= MAC=00:08:02:da:c8:51:00:0f:f7:74:31:8a:08:00 SRC=203.0.113.9 DST=192.0.2.10 LEN=52 TOS=0x00 PREC=0x00 TTL=64 ID=5394 DF PROTO=TCP SPT=59534 DPT=22 WINDOW=501 RES=0x00 SYN URGP=0",
    );
    assert_eq!(e.get_str("event.dataset"), Some("iptables.log"));
    assert_eq!(e.get("source.ip"), ip("203.0.113.9").as_ref());
    assert_eq!(e.get("destination.ip"), ip("192.0.2.10").as_ref());
    assert_eq!(e.get("destination.port"), Some(&Value::Int(22)));
    assert_eq!(e.get_str("network.transport"), Some("tcp"));
    assert_eq!(e.get_str("observer.ingress.interface.name"), Some("eth0"));
    assert_eq!(e.get_str("rule.name"), Some("DROP"));
    assert_eq!(e.get_str("event.outcome"), Some("failure"));
    assert!(
        !e.contains("SRC"),
        "read as netfilter, not as generic pairs"
    );
}

#[test]
fn pfsense_filterlog() {
    let e = parse(
        "<134>Nov  8 12:37:34 pfSense filterlog: 5,,,1000102433,em0,match,block,in,4,0x0,,128,24677,0,none,17,udp,186,10.9.0.119,10.9.0.255,17500,17600,166",
    );
    assert_eq!(e.get_str("event.dataset"), Some("pfsense.log"));
    assert_eq!(e.get_str("event.action"), Some("block"));
    assert_eq!(e.get_str("event.outcome"), Some("failure"));
    assert_eq!(e.get_str("network.direction"), Some("inbound"));
    assert_eq!(e.get("source.ip"), ip("10.9.0.119").as_ref());
    assert_eq!(e.get("destination.port"), Some(&Value::Int(17600)));
    assert_eq!(e.get_str("network.transport"), Some("udp"));
    assert_eq!(e.get_str("rule.id"), Some("1000102433"));
}

#[test]
fn cisco_asa_with_and_without_a_header() {
    for line in [
        "%ASA-2-106001: Inbound TCP connection denied from 198.51.100.59/54322 to 192.0.2.122/1433 flags SYN on interface outside",
        "<164>Dec  7 10:00:00 fw1 : %ASA-2-106001: Inbound TCP connection denied from 198.51.100.59/54322 to 192.0.2.122/1433 flags SYN on interface outside",
    ] {
        let e = parse(line);
        assert_eq!(
            e.get_str("event.dataset"),
            Some("cisco.asa"),
            "{line}: {e:?}"
        );
        assert_eq!(e.get_str("event.code"), Some("106001"));
        assert_eq!(e.get("source.ip"), ip("198.51.100.59").as_ref());
        assert_eq!(e.get("source.port"), Some(&Value::Int(54322)));
        assert_eq!(e.get("destination.ip"), ip("192.0.2.122").as_ref());
        assert_eq!(e.get("destination.port"), Some(&Value::Int(1433)));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("log.level"), Some("critical"));
    }
    let e = parse(
        "%ASA-3-710003: TCP access denied by ACL from 192.168.0.1/11 to outside:192.168.0.2/22",
    );
    assert_eq!(e.get_str("observer.egress.interface.name"), Some("outside"));
    assert_eq!(e.get("destination.port"), Some(&Value::Int(22)));
    let e = parse(
        "%ASA-6-113015: AAA user authentication Rejected : reason = Invalid password : local database : user = admin : user IP = 203.0.113.77",
    );
    assert_eq!(e.get_str("user.name"), Some("admin"));
    assert_eq!(e.get("source.ip"), ip("203.0.113.77").as_ref());
    assert_eq!(e.get_str("event.outcome"), Some("failure"));
    let e = parse("%FTD-1-101001: (Primary) Failover cable OK.");
    assert_eq!(e.get_str("event.dataset"), Some("cisco.ftd"));
    // A percent sign in ordinary text is no Cisco message.
    let e = parse("<13>Dec  7 10:00:00 h app: 100%ASA-done: fine");
    assert_ne!(e.get_str("event.dataset"), Some("cisco.asa"));
}

#[test]
fn fortigate_key_values() {
    let e = parse(
        r#"date=2016-06-17 time=02:37:41 devname=FW1 devid=FGT1 logid=0100032002 type=event subtype=system level=alert vd="root" logdesc="Admin login failed" sn=0 user="root" ui=ssh(198.51.100.227) action=login status=failed reason="name_invalid" msg="Administrator root login failed from ssh(198.51.100.227) because of invalid user name""#,
    );
    assert_eq!(e.get_str("event.dataset"), Some("fortinet.fortigate"));
    assert_eq!(e.get_str("user.name"), Some("root"));
    assert_eq!(e.get("source.ip"), ip("198.51.100.227").as_ref());
    assert_eq!(e.get_str("event.outcome"), Some("failure"));
    assert_eq!(e.get_str("observer.name"), Some("FW1"));
    assert_eq!(
        e.get_str("logdesc"),
        Some("Admin login failed"),
        "device names kept"
    );
    let e = parse(
        r#"date=2016-06-15 time=09:41:35 devname=D devid=F logid=1 type=utm subtype=ips level=alert srcip=192.168.10.8 dstip=157.55.235.162 action=reset proto=6 srcport=62216 dstport=80 attack="HTTP.Unknown.Tunnelling""#,
    );
    assert_eq!(e.get_str("event.kind"), Some("alert"));
    assert_eq!(e.get_str("rule.name"), Some("HTTP.Unknown.Tunnelling"));
    assert_eq!(e.get_str("network.transport"), Some("tcp"));
    assert_eq!(e.get_str("event.outcome"), Some("failure"));
}

#[test]
fn panos_csv() {
    let e = parse(
        r#"0,2021/07/12 09:46:23,321321321,THREAT,vulnerability,0,2021/07/12 09:46:00,199.195.252.165,172.30.250.61,199.195.252.165,10.20.0.19,Web-443-OUT,,,web-browsing,vsys1,untrust,trust,ethernet1/1,tunnel.2,LogFwd,2021/07/12 09:46:00,51557,1,55094,443,55094,443,0x502000,tcp,reset-both,"getuser",DCS-2530L Unauthenticated Information Disclosure Vulnerability(90255),any,"#,
    );
    assert_eq!(e.get_str("event.dataset"), Some("panw.panos"));
    assert_eq!(e.get("source.ip"), ip("199.195.252.165").as_ref());
    assert_eq!(e.get("destination.port"), Some(&Value::Int(443)));
    assert_eq!(e.get_str("event.action"), Some("reset-both"));
    assert_eq!(e.get_str("event.kind"), Some("alert"));
    assert!(
        e.get_str("threat.name")
            .is_some_and(|t| t.contains("DCS-2530L"))
    );
}

/// Text a user chose, quoted by sshd or sudo, never turns their line into a device's: the
/// auth event stays, and no address the user wrote becomes `source.ip`.
#[test]
fn device_words_in_other_programs_messages_change_nothing() {
    for line in [
        "<38>Dec  7 10:00:00 h sshd[1]: Failed password for invalid user IN= SRC=6.6.6.6 from 203.0.113.4 port 22 ssh2",
        "<38>Dec  7 10:00:00 h sshd[1]: Invalid user %ASA-1-1: from 6.6.6.6 from 203.0.113.4 port 22",
        "<38>Dec  7 10:00:00 h sshd[1]: Invalid user devname=a logid=1 srcip=6.6.6.6 from 203.0.113.4 port 22",
        // A user name holding ` from ADDR port N` of its own cannot frame ADDR for a ban: the
        // client's address is the last one sshd wrote (fast path and regex path alike).
        "<38>Dec  7 10:00:00 h sshd[1]: Failed password for invalid user x from 6.6.6.6 port 1 from 203.0.113.4 port 22 ssh2",
        "<38>Dec  7 10:00:00 h sshd[1]: Failed password for invalid user \u{e9}x from 6.6.6.6 port 1 from 203.0.113.4 port 22 ssh2",
        "<38>Dec  7 10:00:00 h sshd[1]: Invalid user x from 6.6.6.6 port 1 from 203.0.113.4 port 22",
    ] {
        let e = parse(line);
        assert_eq!(
            e.get("source.ip"),
            ip("203.0.113.4").as_ref(),
            "{line}: {e:?}"
        );
        assert!(e.get_str("event.dataset").is_none(), "{line}: {e:?}");
    }
    let e = parse(
        "<85>Dec  7 10:00:00 h sudo: alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/echo IN= SRC=6.6.6.6",
    );
    assert_eq!(e.get_str("user.name"), Some("alice"));
    assert!(!e.contains("source.ip"), "{e:?}");
    let e = parse("<13>Dec  7 10:00:00 h app: GET /x%ASA-1-106001: from 6.6.6.6/1 to 1.1.1.1/2");
    assert!(e.get_str("event.dataset").is_none(), "{e:?}");
}

#[test]
fn cisco_with_a_syslog_header_and_connection_sides() {
    for line in [
        "<166>Dec  7 10:00:00 fw1 %ASA-6-302013: Built inbound TCP connection 7 for outside:198.51.100.7/51000 (198.51.100.7/51000) to inside:10.0.0.5/443 (10.0.0.5/443)",
        "<166>%ASA-6-302013: Built inbound TCP connection 7 for outside:198.51.100.7/51000 (198.51.100.7/51000) to inside:10.0.0.5/443 (10.0.0.5/443)",
    ] {
        let e = parse(line);
        assert_eq!(
            e.get_str("event.dataset"),
            Some("cisco.asa"),
            "{line}: {e:?}"
        );
        assert_eq!(e.get("source.ip"), ip("198.51.100.7").as_ref(), "{line}");
        assert_eq!(e.get("destination.port"), Some(&Value::Int(443)));
        assert_eq!(
            e.get_str("observer.ingress.interface.name"),
            Some("outside")
        );
    }
    // Outbound: the inside client is the source.
    let e = parse(
        "%ASA-6-302013: Built outbound TCP connection 8 for outside:8.8.8.8/53 (8.8.8.8/53) to inside:10.0.0.5/40000 (10.0.0.5/40000)",
    );
    assert_eq!(e.get("source.ip"), ip("10.0.0.5").as_ref());
    assert_eq!(e.get("destination.ip"), ip("8.8.8.8").as_ref());
    assert_eq!(e.get("destination.port"), Some(&Value::Int(53)));
    let e = parse(
        r#"%ASA-6-605005: Login permitted from 203.0.113.8/5000 to inside:10.0.0.1/ssh for user "netadmin""#,
    );
    assert_eq!(e.get_str("user.name"), Some("netadmin"));
    assert_eq!(e.get_str("event.outcome"), Some("success"));
}

#[test]
fn panos_system_and_forged_fortigate_keys() {
    let e = parse(
        r#"1,2020/02/09 00:00:00,0001,SYSTEM,general,0,2020/02/09 00:00:00,,general,,0,0,general,high,"User admin logged in",123,0x0,0,0,0,0,,fw"#,
    );
    assert_eq!(e.get_str("log.level"), Some("high"));
    assert_eq!(e.get_str("message"), Some("User admin logged in"));
    let e = parse(
        r#"date=2026-12-07 time=10:00:00 devname=fw logid=1 vd=root tags=parse_error message=forged event.original=forged srcip=203.0.113.1"#,
    );
    assert!(!e.has_tag("parse_error"), "{e:?}");
    // The device reader owns the line: the sender's keys do not land on Vigil's or ECS's
    // names (the line itself is kept whole).
    assert!(
        e.get_str("event.original")
            .is_some_and(|o| o.starts_with("date=") && o.ends_with("srcip=203.0.113.1")),
        "{e:?}"
    );
    assert_eq!(e.get("source.ip"), ip("203.0.113.1").as_ref());
    // Raw stays raw when the source says so.
    let ctx = ParseContext::new(Timestamp::parse("2026-12-07T10:00:00Z").unwrap(), "t");
    let e = parse_line(
        b"%ASA-2-106001: Inbound TCP connection denied from 198.51.100.59/1 to 192.0.2.1/2",
        Format::Raw,
        &ctx,
    );
    assert!(e.get_str("event.dataset").is_none());
}

#[test]
fn hostile_lines_never_panic() {
    for line in [
        "%ASA-",
        "%ASA-9-1: x",
        "%ASA-1-12345678: x",
        "kernel: IN= SRC=",
        "<1>Dec  7 10:00:00 h filterlog: ,,,,,,,,4,,,,,,,,,,,,",
        "<1>Dec  7 10:00:00 h filterlog: 1,2,3,4,5,6,7,8,6,a,b,c,d,e,f,::1,::2,1,2",
        "date= devname=",
        "1,2,3,TRAFFIC,x",
        "0,a,b,THREAT,\"unterminated",
    ] {
        let _ = parse(line);
    }
    let long = format!("%ASA-1-106001: {}", "from 1.1.1.1/1 ".repeat(10_000));
    let e = parse(&long);
    assert_eq!(e.get("source.ip"), ip("1.1.1.1").as_ref());
}

/// The network-device lines of the Wazuh ruleset tests in the corpus: every line of the
/// formats read here gets its dataset, and the address fields where the line has them.
#[test]
fn corpus_device_lines() {
    let dir = std::env::var_os("VIGIL_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        })
        .join("wazuh-ruleset-testlogs");
    if !dir.is_dir() {
        assert!(
            std::env::var_os("VIGIL_REQUIRE_CORPUS").is_none(),
            "VIGIL_REQUIRE_CORPUS is set but {} is missing",
            dir.display()
        );
        eprintln!("SKIPPED: no corpus");
        return;
    }
    for (file, dataset) in [
        ("iptables.log", "iptables.log"),
        ("pfsense.log", "pfsense.log"),
        ("cisco_asa.log", "cisco.asa"),
        ("cisco_ftd.log", "cisco.ftd"),
        ("pix.log", "cisco.asa"),
        ("fortigate.log", "fortinet.fortigate"),
        ("paloalto.log", "panw.panos"),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let mut lines = 0;
        // PAN-OS lines of a log type PAN-OS does not have (Wazuh's `OTHERS` case) are not
        // PAN-OS logs.
        let known = |l: &str| {
            file != "paloalto.log"
                || [",TRAFFIC,", ",THREAT,", ",SYSTEM,", ",CONFIG,"]
                    .iter()
                    .any(|t| l.contains(t))
        };
        for line in text.lines().filter(|l| !l.trim().is_empty() && known(l)) {
            lines += 1;
            let e = parse(line);
            assert_eq!(
                e.get_str("event.dataset"),
                Some(dataset),
                "{file}: {line}\n{e:?}"
            );
            // Every `SRC=`/`srcip=`/`from A/p to` address in the line is read.
            let has_src = line.contains(" SRC=") || line.contains(" srcip=");
            if has_src {
                assert!(
                    matches!(e.get("source.ip"), Some(Value::Ip(_))),
                    "{file}: {line}"
                );
            }
        }
        assert!(lines > 0, "{file} is empty");
    }
}

#[test]
fn a_device_lines_bare_or_forged_ecs_keys_never_make_address_fields() {
    // Found by the `network_devices` fuzz target: a SonicWall line with a bare `source.ip`
    // key made `source.ip` the boolean `true`.
    for line in [
        "id=firewall sn=1 m=2 \u{c}source.ip",
        "id=firewall sn=1 m=2 source.ip=not-an-address destination.ip=x",
        "date=2026-12-07 time=10:00:00 devname=fw logid=1 vd=root source.ip=nope",
    ] {
        let e = parse(line);
        assert!(e.get_str("event.dataset").is_some(), "a device line: {e:?}");
        for key in ["source.ip", "destination.ip"] {
            assert!(
                matches!(e.get(key), None | Some(Value::Ip(_))),
                "{line:?}: {key} = {:?}",
                e.get(key)
            );
        }
    }
}
