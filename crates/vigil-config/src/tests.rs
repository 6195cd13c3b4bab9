//! The one list of settings stays one: every field of [`Config`] is a TOML key documented in
//! `docs/config.md` and a setting of the start's audit (or marked secret or internal), and
//! flags override the file.

use std::collections::BTreeSet;

use clap::{Args, Command};
use serde::Deserialize;
use serde::de::{self, Visitor};

use super::*;

/// A deserializer that records the field names a struct asks for (serde's derive hands them
/// to `deserialize_struct`), then stops.
struct FieldNames<'a>(&'a mut Vec<&'static str>);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.extend_from_slice(fields);
        Err(de::Error::custom("names taken"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn fields<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
    let mut names = Vec::new();
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

/// `(section, its fields, whether it is a list of tables)`, for every section of [`Config`].
fn sections() -> Vec<(&'static str, Vec<&'static str>, bool)> {
    vec![
        ("listen", fields::<ListenSection>(), false),
        ("tls", fields::<TlsSection>(), false),
        ("limits", fields::<LimitsSection>(), false),
        ("ingest", fields::<IngestSection>(), false),
        ("redaction", fields::<RedactionSection>(), false),
        ("retention", fields::<RetentionSection>(), false),
        ("ledger", fields::<LedgerSection>(), false),
        ("index", fields::<IndexSection>(), false),
        ("detect", fields::<DetectSection>(), false),
        ("silence", fields::<SilenceSection>(), false),
        ("notify", fields::<NotifySection>(), true),
        ("query_rule", fields::<QueryRuleSection>(), true),
        ("responder", fields::<ResponderSection>(), true),
        ("report", fields::<ReportSection>(), true),
        ("bans", fields::<BansSection>(), false),
        ("ui", fields::<UiSection>(), false),
        ("witness", fields::<WitnessSection>(), false),
        ("cluster", fields::<ClusterSection>(), false),
        ("intel", fields::<IntelSection>(), false),
        ("enrich", fields::<EnrichSection>(), false),
        ("logsource", fields::<LogSourceSection>(), true),
        ("drills", fields::<DrillsSection>(), false),
    ]
}

#[test]
fn every_setting_is_in_the_audit_and_in_the_docs() {
    let top: BTreeSet<&str> = fields::<Config>().into_iter().collect();
    let listed: BTreeSet<&str> = sections().iter().map(|(s, _, _)| *s).collect();
    assert_eq!(top, listed, "a section of Config is missing from this test");

    let mut config = Config::new("/data");
    config.notify.push(NotifySection {
        kind: "email".into(),
        password: Some("SECRET-PASSWORD".into()),
        ..NotifySection::default()
    });
    config.demo = true;
    assert!(
        !format!("{config:?}").contains("SECRET"),
        "Debug shows no password"
    );
    let audit = config.settings();
    let docs = include_str!("../../../docs/config.md");
    for (section, names, list) in sections() {
        if list {
            assert!(audit.contains_key(section), "{section} is not audited");
            assert!(
                docs.contains(&format!("[[{section}]]")),
                "[[{section}]] is not in docs/config.md"
            );
        } else {
            assert!(
                docs.contains(&format!("[{section}]")),
                "[{section}] is not in docs/config.md"
            );
        }
        for name in names {
            if !list {
                assert!(
                    audit.contains_key(&format!("{section}.{name}")),
                    "{section}.{name} is not in the settings audit: mark it, or serialize it"
                );
            }
            assert!(
                docs.contains(&format!("{name} = ")),
                "{section}.{name} is not in docs/config.md"
            );
        }
    }
    // Flag-only settings: in the audit (demo) or recorded elsewhere (recover: by the ledger's
    // recovery record; the webhook shortcuts: as [[notify]] entries).
    assert!(audit.contains_key("demo"));
    assert!(audit.values().all(|v| !v.contains("SECRET")), "{audit:?}");
}

#[test]
fn every_documented_flag_exists() {
    let cmd = Config::augment_args(Command::new("serve"));
    let flags: BTreeSet<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    let docs = include_str!("../../../docs/config.md");
    let listed = docs
        .split("The same settings as flags")
        .nth(1)
        .expect("docs/config.md lists the flags");
    let mut seen = 0;
    for word in listed.split(|c: char| c == '`' || c.is_whitespace()) {
        if let Some(flag) = word.strip_prefix("--") {
            let flag = format!("--{}", flag.trim_end_matches([',', '.']));
            assert!(flags.contains(&flag), "{flag} is documented but not a flag");
            seen += 1;
        }
    }
    assert!(seen > 20);
    for flag in &flags {
        assert!(listed.contains(flag.as_str()), "{flag} is not documented");
    }
}

fn with_flags(file: &str, list: &[&str]) -> Result<Config, ConfigError> {
    let mut config = Config::from_toml(file).map_err(|m| ConfigError::invalid("file", m))?;
    let cmd = Config::augment_args(Command::new("serve").no_binary_name(true));
    let matches = cmd
        .try_get_matches_from(list)
        .map_err(|e| ConfigError::invalid("flags", e.to_string()))?;
    config.apply_flags(&matches)?;
    Ok(config)
}

#[test]
fn flags_win_over_the_file_which_wins_over_defaults() {
    let file = r#"
        [listen]
        http = "127.0.0.1:9000"
        syslog_udp = "off"
        [ingest]
        keep_original = false
        [limits]
        max_message_bytes = 1000
        max_connections = 500
        header_timeout = "20s"
        [redaction]
        patterns = [{ kind = "employee_id", regex = "EMP-\\d{6}" }]
        [retention]
        max_age = "365d"
        [ledger]
        checkpoint_interval = "2s"
        [detect]
        rules = ["/a"]
        builtin = false
        "#;
    let c = with_flags(
        file,
        &[
            "--http",
            "127.0.0.1:9100",
            "--redact",
            "x=y",
            "--rules",
            "/b",
        ],
    )
    .unwrap();
    assert_eq!(c.listen.http, Listen::local("127.0.0.1:9100"));
    assert_eq!(c.listen.syslog_udp, Listen::Off);
    assert_eq!(c.listen.syslog_tcp, Listen::local("127.0.0.1:5514"));
    assert_eq!(c.limits.max_message_bytes, 1000);
    assert_eq!(c.limits.max_connections, 500);
    assert_eq!(c.limits.body_timeout, Duration::secs(60));
    assert_eq!(c.retention.max_age, Some(Duration::secs(365 * 86_400)));
    assert_eq!(c.ledger.checkpoint_interval, Duration::secs(2));
    assert_eq!(
        c.redaction.patterns.len(),
        2,
        "a flag adds to the file's patterns"
    );
    assert_eq!(c.redaction.patterns[0].reveal().kind, "employee_id");
    assert_eq!(c.detect.rules, [PathBuf::from("/b"), PathBuf::from("/a")]);
    assert!(
        !c.ingest.keep_original,
        "an absent flag leaves the file's value"
    );
    assert!(!c.detect.builtin);

    let c = with_flags("", &["--no-original", "--no-builtin-rules", "--tls"]).unwrap();
    assert!(!c.ingest.keep_original && !c.detect.builtin && c.tls.http);
    let c = with_flags("", &[]).unwrap();
    assert!(c.ingest.keep_original && c.detect.builtin && !c.tls.http);
}

#[test]
fn shortcut_flags_become_notify_entries() {
    let file = r#"
        [[notify]]
        type = "syslog"
        address = "witness.example.org:514"
        checkpoints = true
        alerts = false
        "#;
    let c = with_flags(
        file,
        &[
            "--webhook",
            "http://127.0.0.1:9/a",
            "--checkpoint-webhook",
            "http://127.0.0.1:9/ckp",
            "--recover",
            "ticket 9",
        ],
    )
    .unwrap();
    let names: Vec<_> = c.notify.iter().map(|n| n.name.clone().unwrap()).collect();
    assert_eq!(names, ["webhook-1", "checkpoint-webhook-1", "syslog-1"]);
    assert_eq!(c.recover.as_deref(), Some("ticket 9"));
    assert!(with_flags("", &["--recover", " "]).is_err());
}

#[test]
fn unknown_keys_and_bad_values_are_clear_errors() {
    let err = Config::from_toml("[listen]\nhtp = \"x\"").unwrap_err();
    assert!(err.contains("unknown field `htp`"), "{err}");
    let err = Config::from_toml("[listen]\nhttp = \"localhost\"").unwrap_err();
    assert!(err.contains("expected IP:PORT"), "{err}");
    let err = Config::from_toml("demo = true").unwrap_err();
    assert!(err.contains("unknown field `demo`"), "{err}");
    let err = with_flags("[limits]\nbody_timeout = \"0s\"", &[]).unwrap_err();
    assert!(err.to_string().contains("longer than zero"), "{err}");
    let err = with_flags("[redaction]\nenabled = false", &["--redact", "a=b"]).unwrap_err();
    assert!(err.to_string().contains("enabled = false"), "{err}");
    let err = Config::from_toml("[limits]\nheader_timeout = \"5\"").unwrap_err();
    assert!(err.contains("add a unit"), "{err}");
    // A secret under a mistyped key or of the wrong type is never quoted back.
    let err = Config::from_toml("[ui]\nsession_idle = \"30m\"\npasword = \"hunter2-secret\"")
        .unwrap_err();
    assert!(
        err.contains("unknown field `pasword`") && err.contains("line 3"),
        "{err}"
    );
    assert!(!err.contains("hunter2-secret"), "{err}");
    let err = Config::from_toml("[tls]\nhttp = \"hunter2-secret\"").unwrap_err();
    assert!(!err.contains("hunter2-secret"), "{err}");
}

#[test]
fn settings_are_derived_and_hold_no_secrets() {
    let mut config = with_flags(
        "",
        &[
            "--webhook",
            "https://hooks.example/T0/SECRET-TOKEN",
            "--redact",
            "key=SECRET-[0-9]+",
            "--session-idle",
            "1m",
        ],
    )
    .unwrap();
    config.query_rule.push(QueryRuleSection {
        name: "many".into(),
        query: Secret("user.name=SECRET-USER | stats count".into()),
        every: Duration::secs(60),
        window: Duration::secs(300),
        level: "high".into(),
        tags: Vec::new(),
    });
    let s = config.settings();
    assert_eq!(s["listen.http"], "127.0.0.1:8080");
    assert_eq!(s["ui.session_idle"], "1m");
    assert_eq!(s["retention.max_age"], "none");
    assert!(
        s["notify"].contains("\"name\":\"webhook-1\""),
        "{}",
        s["notify"]
    );
    assert!(
        s["notify"].contains("\"url\":\"https://hooks.example/… #"),
        "{}",
        s["notify"]
    );
    assert!(s.values().all(|v| !v.contains("SECRET")), "{s:?}");
    // Another token in the URL, another pattern: the settings differ.
    let before = s;
    config.notify[0].url = Some(SecretUrl("https://hooks.example/T0/SECRET-OTHER".into()));
    config.redaction.patterns[0] = "key=SECRET-[0-9a-f]+".parse().unwrap();
    let after = config.settings();
    assert_ne!(before["notify"], after["notify"]);
    assert_ne!(before["redaction.patterns"], after["redaction.patterns"]);
}

#[test]
fn the_documented_example_is_a_valid_configuration() {
    let docs = include_str!("../../../docs/config.md");
    let example = docs
        .split("```toml")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/config.md has a TOML example");
    let config = Config::from_toml(example).unwrap();
    config.check().unwrap();
    assert_eq!(config.notify.len(), 4);
    assert_eq!(config.query_rule.len(), 1);
    assert_eq!(config.ui.session_max, Duration::secs(12 * 3600));
}

#[test]
fn detector_partitions_default_to_one_and_are_bounded() {
    let nats = "[cluster]\nnats = [\"nats://127.0.0.1:4222\"]\n";
    let config = with_flags(nats, &[]).unwrap();
    assert_eq!(
        config.cluster.detector_partitions, 1,
        "one detector by default"
    );
    config.check().unwrap();
    let file = format!("{nats}detector_partitions = 3\n");
    let config = with_flags(&file, &[]).unwrap();
    assert_eq!(config.cluster.detector_partitions, 3);
    config.check().unwrap();
    let config = with_flags(&file, &["--detector-partitions", "5"]).unwrap();
    assert_eq!(
        config.cluster.detector_partitions, 5,
        "the flag wins over the file"
    );
    let file0 = format!("{nats}detector_partitions = 0\n");
    let err = Config::from_toml(&file0).unwrap().check().unwrap_err();
    assert!(err.to_string().contains("--detector-partitions"), "{err}");
    for bad in ["0", "1025", "4294967295"] {
        let err = with_flags(nats, &["--detector-partitions", bad])
            .and_then(|c| c.check())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--detector-partitions"), "{bad}: {err}");
    }
    assert!(with_flags(nats, &["--detector-partitions", "-1"]).is_err());
}
