use super::*;

const STIX: &str = r#"{
  "type": "bundle", "id": "bundle--1",
  "objects": [
    {"type": "identity", "id": "identity--acme", "name": "ACME CERT"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--1", "created_by_ref": "identity--acme",
     "name": "C2 server", "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z",
     "modified": "2026-12-01T00:00:00Z", "confidence": 85,
     "pattern": "[ipv4-addr:value = '198.51.100.7' OR ipv4-addr:value = '203.0.113.0/24']"},
    {"type": "indicator", "id": "indicator--2", "pattern_type": "stix",
     "pattern": "[domain-name:value = 'evil.example'] OR [url:value = 'http://x.example/it\\'s']"},
    {"type": "indicator", "id": "indicator--3", "pattern_type": "stix",
     "pattern": "[file:hashes.'SHA-256' = 'AABBCCDDEEFF00112233445566778899AABBCCDDEEFF00112233445566778899']"},
    {"type": "indicator", "id": "indicator--4", "pattern_type": "stix",
     "pattern": "[ipv4-addr:value = '192.0.2.1' AND network-traffic:dst_port = 443]"},
    {"type": "indicator", "id": "indicator--5", "pattern_type": "snort", "pattern": "alert tcp any any"},
    {"type": "indicator", "id": "indicator--6", "revoked": true, "pattern": "[ipv4-addr:value = '192.0.2.2']"},
    {"type": "malware", "id": "malware--1", "name": "x"}
  ]
}"#;

#[test]
fn a_stix_bundle_gives_its_atomic_indicators() {
    let doc: Json = serde_json::from_str(STIX).unwrap();
    assert_eq!(Format::detect("feed.json", STIX.as_bytes()), Format::Stix);
    let p = stix(&doc, "file", 100).unwrap();
    let values: Vec<(&str, Kind)> = p
        .indicators
        .iter()
        .map(|i| (i.value.as_str(), i.kind))
        .collect();
    assert_eq!(
        values,
        vec![
            ("198.51.100.7", Kind::Ip),
            ("203.0.113.0/24", Kind::Ip),
            ("evil.example", Kind::Domain),
            ("http://x.example/it's", Kind::Url),
            (
                "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899",
                Kind::Sha256
            ),
        ]
    );
    let first = &p.indicators[0];
    assert_eq!(first.provider, "ACME CERT");
    assert_eq!(first.confidence, Some(85));
    assert_eq!(first.first_seen.as_deref(), Some("2026-11-01T00:00:00Z"));
    assert_eq!(first.last_seen.as_deref(), Some("2026-12-01T00:00:00Z"));
    assert_eq!(first.description.as_deref(), Some("C2 server"));
    assert_eq!(p.indicators[2].provider, "file");
    // AND pattern, snort pattern, revoked indicator.
    assert_eq!(p.skipped, 3);
}

#[test]
fn stix_patterns_that_are_not_disjunctions_of_equalities_are_skipped() {
    assert!(
        stix_pattern("[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '5.6.7.8']")
            .is_none()
    );
    assert!(stix_pattern("[ipv4-addr:value != '1.2.3.4']").is_none());
    assert!(stix_pattern("[url:value MATCHES '^http']").is_none());
    assert!(stix_pattern("[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS").is_none());
    assert!(stix_pattern("[ipv4-addr:value = 'unterminated]").is_none());
    assert_eq!(stix_pattern("[x-custom:value = 'a']"), Some(vec![]));
    let deep = format!(
        "{}ipv4-addr:value = '1.2.3.4'{}",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    assert!(stix_pattern(&deep).is_none(), "bounded");
}

const MISP_EVENT: &str = r#"{"Event": {"info": "Phishing wave", "Orgc": {"name": "CIRCL"},
  "Attribute": [
    {"type": "ip-dst", "value": "198.51.100.9", "to_ids": true, "timestamp": "1764547200"},
    {"type": "ip-src|port", "value": "192.0.2.10|4444", "to_ids": true},
    {"type": "domain", "value": "phish.example", "to_ids": true, "first_seen": "2026-11-30T00:00:00Z"},
    {"type": "url", "value": "https://phish.example/login", "to_ids": true},
    {"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e", "to_ids": true},
    {"type": "filename|sha1", "value": "a.exe|da39a3ee5e6b4b0d3255bfef95601890afd80709", "to_ids": true},
    {"type": "comment", "value": "hello"},
    {"type": "ip-dst", "value": "192.0.2.99", "to_ids": false}
  ],
  "Object": [{"name": "file", "Attribute": [{"type": "sha256", "value": "00000000000000000000000000000000000000000000000000000000000000ff", "to_ids": true}]}]
}}"#;

#[test]
fn a_misp_event_gives_its_ids_attributes() {
    assert_eq!(
        Format::detect("x.json", MISP_EVENT.as_bytes()),
        Format::Misp
    );
    let doc: Json = serde_json::from_str(MISP_EVENT).unwrap();
    let p = misp(&doc, "file", 100).unwrap();
    let values: Vec<&str> = p.indicators.iter().map(|i| i.value.as_str()).collect();
    assert_eq!(
        values,
        vec![
            "198.51.100.9",
            "192.0.2.10",
            "phish.example",
            "https://phish.example/login",
            "d41d8cd98f00b204e9800998ecf8427e",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "00000000000000000000000000000000000000000000000000000000000000ff",
        ]
    );
    assert!(p.indicators.iter().all(|i| i.provider == "CIRCL"));
    assert_eq!(
        p.indicators[0].first_seen.as_deref(),
        Some("2025-12-01T00:00:00Z")
    );
    assert_eq!(
        p.indicators[2].first_seen.as_deref(),
        Some("2026-11-30T00:00:00Z")
    );
    assert_eq!(
        p.indicators[0].description.as_deref(),
        Some("Phishing wave")
    );
    assert_eq!(p.skipped, 2);
    // REST answers.
    let rest: Json =
        serde_json::json!({"response": [serde_json::from_str::<Json>(MISP_EVENT).unwrap()]});
    assert_eq!(misp(&rest, "f", 100).unwrap().indicators.len(), 7);
    let attrs: Json =
        serde_json::json!({"response": {"Attribute": [{"type": "ip-dst", "value": "192.0.2.5"}]}});
    assert_eq!(misp(&attrs, "f", 100).unwrap().indicators[0].provider, "f");
}

#[test]
fn misp_manifests_name_their_events() {
    let m: Json = serde_json::json!({
        "5f1c0a2e-0000-4000-8000-000000000001": {"info": "a", "Orgc": {"name": "x"}},
        "5f1c0a2e-0000-4000-8000-000000000002": {"info": "b"}
    });
    assert!(is_misp_manifest(&m));
    assert!(!is_misp_manifest(&serde_json::json!({"Event": {}})));
    assert_eq!(misp_manifest_events(&m, 10).unwrap().len(), 2);
    assert!(misp_manifest_events(&m, 1).is_err());
}

#[test]
fn plain_and_csv_lists() {
    let p = plain(
        b"# comment\n198.51.100.7\n\n10.0.0.0/8  # net\nEvil.Example\nnot a thing\n",
        "f",
        10,
    )
    .unwrap();
    assert_eq!(p.indicators.len(), 3);
    assert_eq!(p.indicators[2].value, "evil.example");
    assert_eq!(p.skipped, 1);
    let c = csv(
        b"type,value,confidence,first_seen\nip,198.51.100.7,90,2026-01-01\ndomain,evil.example,,\nmd5,zz,,\n",
        "f",
        10,
    )
    .unwrap();
    assert_eq!(c.indicators.len(), 2);
    assert_eq!(c.indicators[0].confidence, Some(90));
    assert_eq!(c.indicators[0].first_seen.as_deref(), Some("2026-01-01"));
    assert_eq!(c.skipped, 1);
    // Headerless: the first column is the value.
    let c = csv(b"198.51.100.7,bad host\nevil.example,phish\n", "f", 10).unwrap();
    assert_eq!(c.indicators.len(), 2);
}

#[test]
fn hostile_feeds_are_refused_with_a_reason() {
    let many = "198.51.100.7\n".repeat(11);
    assert_eq!(
        plain(many.as_bytes(), "f", 10).unwrap_err(),
        FeedError::TooMany { max: 10 }
    );
    assert!(plain(b"\xff\xfe", "f", 10).is_err());
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let e = parse(Format::Stix, deep.as_bytes(), "f", 10).unwrap_err();
    assert!(e.to_string().contains("recursion"), "{e}");
    let e = parse(Format::Misp, b"{\"Event\": ", "f", 10).unwrap_err();
    assert!(e.to_string().contains("not a valid misp feed"), "{e}");
    assert!(parse(Format::Stix, b"{\"type\": \"bundle\"}", "f", 10).is_err());
    assert!(parse(Format::Misp, b"42", "f", 10).is_err());
    assert!(csv(b"value\n\"unterminated\n", "f", 10).is_ok_and(|p| p.indicators.is_empty()));
}
