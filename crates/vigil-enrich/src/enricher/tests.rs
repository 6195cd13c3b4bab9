use std::fs;

use super::*;
use vigil_event::Value;

fn settings(dir: &Path) -> Settings {
    Settings {
        feeds: vec![dir.join("feeds")],
        max_indicators: 100,
        tables: vec![dir.join("users.csv"), dir.join("hosts.csv")],
        max_rows: 100,
        geoip: Vec::new(),
    }
}

fn event(fields: &[(&str, &str)]) -> Event {
    let mut e = Event::new(Timestamp::from_secs(0));
    for (k, v) in fields {
        e.insert(*k, *v);
    }
    e
}

/// Sets a file's modification time ahead so a rewrite within the same second is seen.
fn touch_later(path: &Path, secs: u64) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() + std::time::Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn files_load_enrich_reload_and_a_broken_file_keeps_the_previous_list() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("feeds")).unwrap();
    let list = dir.path().join("feeds/bad-ips.txt");
    fs::write(&list, "198.51.100.7\n").unwrap();
    fs::write(
        dir.path().join("users.csv"),
        "user.name,user.department,user.roles\nalice,finance,analyst\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("hosts.csv"),
        "host.name,host.owner,host.criticality\ndb1,dba,critical\n",
    )
    .unwrap();
    let e = Enricher::new(settings(dir.path()));
    let status = e.status();
    assert_eq!(status.len(), 3, "{status:?}");
    assert!(status.iter().all(|s| s.error.is_none()), "{status:?}");

    let mut ev = event(&[
        ("source.ip", "198.51.100.7"),
        ("user.name", "alice"),
        ("host.name", "DB1"),
        ("host.criticality", "low"),
        ("threat.indicator.type", "forged"),
    ]);
    e.snapshot().enrich(&mut ev, &e.stats);
    assert_eq!(ev.get("vigil.intel.matches"), Some(&Value::Int(1)));
    assert_eq!(ev.get_str("threat.indicator.type"), Some("ipv4-addr"));
    assert_eq!(ev.get_str("threat.indicator.provider"), Some("bad-ips"));
    assert_eq!(ev.get_str("threat.feed.name"), Some("bad-ips"));
    assert_eq!(ev.get_str("user.department"), Some("finance"));
    assert_eq!(ev.get_str("host.criticality"), Some("critical"));
    assert_eq!(ev.get_str(CRITICALITY), Some("critical"));
    assert_eq!(ev.get_str("external.host.criticality"), Some("low"));
    assert_eq!(ev.get_str("external.threat.indicator.type"), Some("forged"));
    assert!(ev.has_tag(vigil_event::tag::RESERVED_CLAIM));
    let Some(Value::List(entries)) = ev.get("threat.enrichments") else {
        panic!("no enrichments: {ev:?}")
    };
    let Value::Map(entry) = &entries[0] else {
        panic!()
    };
    let Some(Value::Map(matched)) = entry.get("matched") else {
        panic!()
    };
    assert_eq!(matched.get("field"), Some(&Value::Str("source.ip".into())));

    // A sender claiming a match on an address that is not listed: moved, no match.
    let mut forged = event(&[("source.ip", "192.0.2.1"), ("vigil.intel.matches", "1")]);
    e.snapshot().enrich(&mut forged, &e.stats);
    assert!(forged.get("vigil.intel.matches").is_none());
    assert_eq!(forged.get_str("external.vigil.intel.matches"), Some("1"));

    // Nothing changed: nothing reloaded.
    assert!(e.reload().is_empty());

    // The list changes: picked up.
    fs::write(&list, "192.0.2.1\n").unwrap();
    touch_later(&list, 5);
    let changes = e.reload();
    assert_eq!(changes, vec![(list.clone(), None)]);
    let mut ev = event(&[("source.ip", "192.0.2.1")]);
    e.snapshot().enrich(&mut ev, &e.stats);
    assert_eq!(ev.get("vigil.intel.matches"), Some(&Value::Int(1)));

    // A broken table: refused, the previous rows stay, the status says why.
    let users = dir.path().join("users.csv");
    fs::write(&users, "user.name,vigil.rule.level\nalice,critical\n").unwrap();
    touch_later(&users, 10);
    let changes = e.reload();
    assert_eq!(changes.len(), 1);
    assert!(
        changes[0]
            .1
            .as_deref()
            .unwrap()
            .contains("vigil.rule.level")
    );
    let mut ev = event(&[("user.name", "alice")]);
    e.snapshot().enrich(&mut ev, &e.stats);
    assert_eq!(ev.get_str("user.department"), Some("finance"));
    let s = e.status().into_iter().find(|s| s.path == users).unwrap();
    assert!(s.error.is_some() && s.count == 1, "{s:?}");

    // A feed deleted: its indicators go.
    fs::remove_file(&list).unwrap();
    e.reload();
    let mut ev = event(&[("source.ip", "192.0.2.1")]);
    e.snapshot().enrich(&mut ev, &e.stats);
    assert!(ev.get("vigil.intel.matches").is_none());
}

#[test]
fn the_cap_over_all_feeds_refuses_the_feed_that_passes_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("feeds")).unwrap();
    let mut a = String::new();
    for i in 0..60 {
        a.push_str(&format!("10.0.0.{i}\n"));
    }
    fs::write(dir.path().join("feeds/a.txt"), &a).unwrap();
    fs::write(
        dir.path().join("feeds/b.txt"),
        a.replace("10.0.0.", "10.0.1."),
    )
    .unwrap();
    let e = Enricher::new(settings(dir.path()));
    let st = e.status();
    let b = st.iter().find(|s| s.path.ends_with("b.txt")).unwrap();
    assert!(
        b.error.as_deref().unwrap().contains("max_indicators"),
        "{b:?}"
    );
    assert_eq!(e.snapshot().intel().len(), 60);
    // Missing tables are reported, not fatal.
    assert!(
        st.iter()
            .any(|s| s.path.ends_with("users.csv") && s.error.is_some())
    );
}

#[test]
fn a_misp_feed_directory_is_read_through_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feeds");
    fs::create_dir(&feed).unwrap();
    let uuid = "5f1c0a2e-0000-4000-8000-000000000001";
    fs::write(
        feed.join("manifest.json"),
        format!(r#"{{"{uuid}": {{"info": "x", "Orgc": {{"name": "CIRCL"}}}}}}"#),
    )
    .unwrap();
    fs::write(
        feed.join(format!("{uuid}.json")),
        r#"{"Event": {"Orgc": {"name": "CIRCL"}, "Attribute": [{"type": "domain", "value": "phish.example", "to_ids": true}]}}"#,
    )
    .unwrap();
    let e = Enricher::new(settings(dir.path()));
    let st = e.status();
    let m = st
        .iter()
        .find(|s| s.path.ends_with("manifest.json"))
        .unwrap();
    assert_eq!((m.format, m.count, m.error.as_deref()), ("misp", 1, None));
    let mut ev = event(&[("dns.question.name", "www.phish.example")]);
    e.snapshot().enrich(&mut ev, &e.stats);
    assert_eq!(ev.get_str("threat.indicator.provider"), Some("CIRCL"));
    assert_eq!(
        ev.get_str("threat.indicator.url.domain"),
        Some("phish.example")
    );
}
