//! The firewalls of `kv_firewall`: pairs, each device, hostile lines.
use vigil_event::Timestamp;

use super::*;
use crate::{Format, ParseContext, parse_line};

fn parse(line: &str) -> Event {
    let ctx = ParseContext::new(Timestamp::parse("2026-01-01T00:00:00Z").unwrap(), "t");
    parse_line(line.as_bytes(), Format::Auto, &ctx)
}

fn ip(e: &Event, k: &str) -> String {
    e.get(k).map(ToString::to_string).unwrap_or_default()
}

#[test]
fn pairs_quoted_bare_and_glued() {
    let p = pairs(r#"a=1 b="x y" c= d="q"e=2 [k:"v"; l:"w";]"#, b'=');
    assert_eq!(
        p,
        vec![("a", "1"), ("b", "x y"), ("c", ""), ("d", "q"), ("e", "2")]
    );
    let p = pairs(r#"action:"Drop"; ike::"x; y"; src:"1.2.3.4"; ]"#, b':');
    assert_eq!(
        p,
        vec![("action", "Drop"), ("ike", "x; y"), ("src", "1.2.3.4")]
    );
}

#[test]
fn each_device() {
    let e = parse(
        r#"id=firewall sn=00301E0526B1 time="2004-04-01 10:39:35" fw=67.32.44.2 pri=5 c=64 m=36 msg="TCP connection dropped" n=2686 src=67.101.200.27:4507:WAN dst=67.32.44.2:445:LAN rule=0"#,
    );
    assert_eq!(e.get_str("event.dataset"), Some("sonicwall_firewall.log"));
    assert_eq!(ip(&e, "source.ip"), "67.101.200.27");
    assert_eq!(e.get("destination.port").and_then(Value::as_i64), Some(445));
    assert_eq!(e.get_str("event.outcome"), Some("failure"));
    assert_eq!(e.get_str("observer.ingress.interface.name"), Some("WAN"));
    let e = parse(
        r#"device="SFW" date=2019-10-09 time=17:19:06 device_name="XG210" log_id=010101010101 log_type="Firewall" status="Deny" src_ip=11.22.33.44 dst_ip=44.33.22.11 protocol="TCP" src_port=52667 dst_port=10051"#,
    );
    assert_eq!(e.get_str("event.dataset"), Some("sophos.xg"));
    assert_eq!(
        e.get("destination.port").and_then(Value::as_i64),
        Some(10051)
    );
    assert_eq!(e.get_str("event.action"), Some("deny"));
    let e = parse(
        r#"1 2019-05-15T16:25:50Z HOSTNAME CheckPoint 19710 - [action:"Drop"; ifdir:"inbound"; ifname:"eth2"; dst:"11.22.33.55"; proto:"17"; s_port:"55036"; service:"1514"; src:"11.22.33.77"; rule_name:"CleanUp Rule"; ]"#,
    );
    assert_eq!(e.get_str("event.dataset"), Some("checkpoint.firewall"));
    assert_eq!(ip(&e, "source.ip"), "11.22.33.77");
    assert_eq!(
        e.get("destination.port").and_then(Value::as_i64),
        Some(1514)
    );
    assert_eq!(e.get_str("network.transport"), Some("udp"));
    assert_eq!(e.get_str("rule.name"), Some("CleanUp Rule"));
    let e = parse(
        r#"Sep 23 13:54:55 192.168.1.1 junos-flow: 2017-09-23T13:54:54.803Z sis-srx-mic-01 RT_FLOW - RT_FLOW_SESSION_DENY [junos@2636.1.1.1.2.39 source-address="192.168.1.1" source-port="1080" destination-address="192.168.1.2" destination-port="8010" protocol-id="17" policy-name="Local-Default-Deny" source-zone-name="trust" destination-zone-name="untrust" reason="policy deny"]"#,
    );
    assert_eq!(e.get_str("event.dataset"), Some("juniper.srx"));
    assert_eq!(
        e.get("destination.port").and_then(Value::as_i64),
        Some(8010)
    );
    assert_eq!(e.get_str("event.outcome"), Some("failure"));
    assert_eq!(e.get_str("event.code"), Some("RT_FLOW_SESSION_DENY"));
    let e = parse(
        "2018/10/05 09:52:14 USG6300 %%01URL/4/FILTER(l): The URL filtering policy was matched. (SyslogId=1906054, SrcIp=1.1.1.1, DstIp=2.2.2.2, SrcPort=5702, DstPort=80, Protocol=TCP, Action=Alert)",
    );
    assert_eq!(e.get_str("event.dataset"), Some("huawei.usg"));
    assert_eq!(ip(&e, "destination.ip"), "2.2.2.2");
    let e = parse(
        "2023-03-18T20:36:59.594792+01:00 10.120.127.1 firewall,info drop-tcp input: in:ether1-WAN out:(unknown 0), connection-state:new src-mac 00:17:10:88:bc:02, proto TCP (SYN), 36.97.161.219:59388->81.82.202.145:23, len 40",
    );
    assert_eq!(e.get_str("event.dataset"), Some("mikrotik.routeros"));
    assert_eq!(ip(&e, "source.ip"), "36.97.161.219");
    assert_eq!(e.get("destination.port").and_then(Value::as_i64), Some(23));
    assert_eq!(e.get_str("event.outcome"), Some("failure"));
    let e = parse(
        "2014-05-23T10:39:20.681154-04:00 10.10.10.1 ssg5-serial: NetScreen device_id=0275112227993284  [Root]system-warning-00515: Management session via SSH from 10.10.10.100:0 for admin netscreen has timed out (2014-05-23 11:11:39)",
    );
    assert_eq!(e.get_str("event.dataset"), Some("juniper.netscreen"));
    assert_eq!(ip(&e, "source.ip"), "10.10.10.100");
    assert_eq!(e.get_str("user.name"), Some("netscreen"));
}

#[test]
fn hostile_lines_never_panic_and_words_elsewhere_change_nothing() {
    for line in [
        "id=",
        "id=x sn=",
        "device=",
        "NetScreen device_id=",
        "NetScreen device_id=1 [",
        "%%",
        "%%01/",
        "%%01A/1/B:",
        "firewall,info",
        "firewall,info x: ",
        "firewall,info a b: c, ->, d",
        "x RT_FLOW [junos@",
        "1 x y CheckPoint 1 - [",
        "a=\"",
    ] {
        let _ = parse(line);
    }
    let e = parse(
        "<38>Dec  6 10:00:01 web1 sshd[812]: Invalid user id=x sn=1 m=2 src=203.0.113.5 from 198.51.100.1 port 1 ssh2",
    );
    assert_ne!(e.get_str("event.dataset"), Some("sonicwall_firewall.log"));
}
