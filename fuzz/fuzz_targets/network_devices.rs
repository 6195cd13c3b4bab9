//! Network-device lines (Cisco IOS, SonicWall, Sophos, Check Point, Juniper, Huawei,
//! MikroTik): any line, with or without a syslog header, parses without panicking, and an
//! address field the device readers set is an address.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_event::{Timestamp, Value};
use vigil_parse::{Format, ParseContext, parse_line};

fuzz_target!(|data: &[u8]| {
    let ctx = ParseContext::new(Timestamp::from_secs(0), "fuzz");
    let text = String::from_utf8_lossy(data);
    for line in [
        text.to_string(),
        format!("<134>Dec  7 10:00:00 fw1 {text}"),
        format!("%SEC-6-IPACCESSLOGP: {text}"),
        format!("id=firewall sn=1 m=2 {text}"),
        format!("firewall,info {text}"),
    ] {
        let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
        let device = matches!(
            e.get_str("event.dataset"),
            Some(
                "cisco.ios"
                    | "sonicwall_firewall.log"
                    | "sophos.xg"
                    | "checkpoint.firewall"
                    | "juniper.srx"
                    | "juniper.netscreen"
                    | "huawei.usg"
                    | "mikrotik.routeros"
            )
        );
        if !device || matches!(e.get_str("vigil.parser"), Some("json" | "cef")) {
            continue;
        }
        for key in ["source.ip", "destination.ip"] {
            assert!(matches!(e.get(key), None | Some(Value::Ip(_))), "{key}");
        }
    }
});
