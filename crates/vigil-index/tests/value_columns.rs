//! Scalar text, address, float and boolean values live in their columns only (format 4): every
//! comparison with them — equality in any case, wildcards, text and number ordering, CIDR
//! ranges, `NOT`, `IN`, "has the field" through aliases — answers exactly what the reference
//! engine answers, beside the same field holding lists, long strings, nulls, integers and at
//! paths whose values keep their terms; hostile query text gets an answer, not a panic.

use std::net::IpAddr;

use vigil_event::{Event, Timestamp, Value};
use vigil_index::{Indexer, SearchIndex, index_all};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader};
use vigil_query::{Limits, parse, run};

fn ip(s: &str) -> Value {
    Value::Ip(s.parse::<IpAddr>().unwrap())
}

fn values() -> Vec<Value> {
    vec![
        Value::Str("root".into()),
        Value::Str("Root".into()),
        Value::Str("ROOT".into()),
        Value::Str("".into()),
        Value::Str("root ".into()),
        Value::Str("10.0.0.7".into()),
        Value::Str("403".into()),
        Value::Str("-0".into()),
        Value::Str("Σίσυφος".into()),
        Value::Str("a*b".into()),
        Value::Str("x\u{0}y".into()),
        Value::Str("z".repeat(1100)),
        ip("10.0.0.7"),
        ip("10.0.0.10"),
        ip("2001:db8::1"),
        ip("::ffff:10.0.0.7"),
        Value::float(403.0),
        Value::float(-0.0),
        Value::float(0.0),
        Value::float(1.5),
        Value::float(f64::NAN),
        Value::float(f64::NEG_INFINITY),
        Value::Bool(true),
        Value::Bool(false),
        Value::Int(403),
        Value::Null,
        Value::List(vec![Value::Str("root".into()), ip("10.0.0.7")]),
    ]
}

fn events() -> Vec<Event> {
    let mut out = Vec::new();
    for (i, v) in values().iter().enumerate() {
        let mut e = Event::new(Timestamp::from_secs(1_700_000_000 + i as i64));
        e.insert("message", format!("event {i}"));
        e.insert("user.name", v.clone());
        // The same values at a path whose values keep their terms.
        e.insert("odd/path", v.clone());
        // Every other event has `src_ip` itself; the rest fall back to its alias `source.ip`.
        if i % 2 == 0 {
            e.insert("source.ip", v.clone());
        } else {
            e.insert("src_ip", v.clone());
        }
        out.push(e);
    }
    // Events without any of the fields.
    for i in 0..3 {
        let mut e = Event::new(Timestamp::from_secs(1_700_001_000 + i));
        e.insert("message", "nothing here");
        out.push(e);
    }
    out
}

/// A ledger of [`events`] indexed in two segments, and every event read back.
fn setup(dir: &std::path::Path) -> (LedgerReader, Vec<(u64, Event)>) {
    let (ledger, _) = Ledger::open(dir, LedgerConfig::default()).unwrap();
    let events = events();
    ledger.append(&events[..12]).unwrap();
    let mut indexer = Indexer::open(dir, 1).unwrap();
    let mut reader = LedgerReader::open(dir).unwrap();
    index_all(&mut indexer, &mut reader, 1000, |_, _| {}).unwrap();
    ledger.append(&events[12..]).unwrap();
    reader.refresh().unwrap();
    index_all(&mut indexer, &mut reader, 1000, |_, _| {}).unwrap();
    indexer.close().unwrap();
    ledger.close().unwrap();
    let mut reader = LedgerReader::open(dir).unwrap();
    let mut all = Vec::new();
    reader
        .for_each_raw(0..reader.end_seq(), |seq, raw| {
            all.push((seq, Event::from_canonical(raw).unwrap()));
            Ok(())
        })
        .unwrap();
    assert_eq!(all.len(), events.len());
    (reader, all)
}

fn limits() -> Limits {
    Limits {
        from: None,
        to: None,
        max_rows: 1000,
        now: Timestamp::from_secs(1_800_000_000),
    }
}

#[test]
fn value_comparisons_answer_like_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let (mut reader, all) = setup(dir.path());
    let index = SearchIndex::open(dir.path()).unwrap().unwrap();
    let mut nonempty = 0;
    for field in ["user.name", "odd/path", "source.ip", "src_ip"] {
        for cond in [
            "=root",
            "=ROOT",
            "!=root",
            "=\"\"",
            "!=\"\"",
            "=\"root \"",
            "=ro*",
            "=*OO*",
            "!=r*",
            "=*",
            "!=*",
            "=\"a*b\"",
            "<root",
            ">=\"Root\"",
            "<\"10.0.0.8\"",
            "=10.0.0.7",
            "=\"::ffff:10.0.0.7\"",
            "=10.0.0.0/8",
            "!=10.0.0.0/8",
            "=10.0.0.7/32",
            "=2001:db8::/32",
            "=::/0",
            "=403",
            "!=403",
            ">400",
            "<=0",
            "=0",
            "=-0",
            "=\"-0\"",
            "=1.5",
            "=NaN",
            "!=NaN",
            "<NaN",
            "=true",
            "=\"false\"",
            "=null",
            "=σίσυφος",
            "=ΣΊΣΥΦΟΣ",
            " IN (root, 10.0.0.10, 1.5, true, \"\")",
        ] {
            for text in [
                format!("{field}{cond}"),
                format!("NOT {field}{cond}"),
                format!("{field}{cond} | stats count"),
                format!("{field}{cond} | stats count by message"),
            ] {
                let Ok(pipeline) = parse(&text) else {
                    continue;
                };
                let expected = run(&pipeline, all.clone(), limits());
                let (actual, stats) = index.search(&mut reader, &pipeline, limits()).unwrap();
                assert_eq!(
                    (&actual.columns, &actual.rows),
                    (&expected.columns, &expected.rows),
                    "{text} ({stats:?})"
                );
                assert_eq!(stats.tail_events, 0);
                nonempty += usize::from(!expected.rows.is_empty());
            }
        }
    }
    assert!(nonempty > 300, "only {nonempty} queries found something");
}

#[test]
fn hostile_query_text_against_column_values_gets_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (mut reader, all) = setup(dir.path());
    let index = SearchIndex::open(dir.path()).unwrap().unwrap();
    let stars = "*".repeat(5000);
    let many_stars = "a*".repeat(3000);
    let long = "r".repeat(100_000);
    let many_values: Vec<String> = (0..2000).map(|i| format!("v{i}")).collect();
    let queries = [
        format!("user.name=\"{stars}\""),
        format!("user.name!=\"{many_stars}\""),
        format!("user.name=\"{long}\""),
        format!("user.name<\"{long}\""),
        format!("user.name IN ({})", many_values.join(", ")),
        "user.name=\"\\u0000\"".to_string(),
        "user.name=\"x\u{0}y\"".to_string(),
        "source.ip=255.255.255.255/33".to_string(),
        "source.ip=::/200".to_string(),
        "user.name=\"(?s:.)*\"".to_string(),
        "user.name=\"\\\\\"".to_string(),
        format!("user.name=1e{}", "9".repeat(400)),
    ];
    for text in queries {
        let Ok(pipeline) = parse(&text) else {
            continue;
        };
        let expected = run(&pipeline, all.clone(), limits());
        let (actual, _) = index.search(&mut reader, &pipeline, limits()).unwrap();
        assert_eq!(
            (&actual.columns, &actual.rows),
            (&expected.columns, &expected.rows),
            "{}",
            &text[..text.len().min(200)]
        );
    }
}

#[test]
fn column_values_at_plain_paths_have_no_terms_and_no_markers() {
    let (_, fields) = vigil_index::document::schema();
    let mut e = Event::new(Timestamp::from_secs(1_700_000_000));
    e.insert("message", "Failed password for root");
    e.insert("user.name", "root");
    e.insert("source.ip", ip("10.0.0.7"));
    e.insert("source.address", "10.0.0.7");
    e.insert("ratio", 1.5);
    e.insert("flag", true);
    e.insert("odd/path", "root");
    e.insert("tags", Value::List(vec![Value::from("a")]));
    e.insert("big", "z".repeat(1100));
    let doc = vigil_index::document::document(&fields, 0, &e);
    let terms: Vec<(tantivy::schema::Field, String)> =
        tantivy::Document::iter_fields_and_values(&doc)
            .filter(|(f, _)| [fields.kw, fields.num, fields.ip, fields.has, fields.odd].contains(f))
            .filter_map(|(f, v)| tantivy::schema::Value::as_str(&v).map(|s| (f, s.to_owned())))
            .collect();
    for path in ["user.name", "source.ip", "source.address", "ratio", "flag"] {
        assert!(
            !terms.iter().any(|(_, t)| t.contains(path)),
            "{path}: {terms:?}"
        );
    }
    for path in ["message", "odd/path", "tags", "big"] {
        assert!(
            terms.iter().any(|(f, t)| *f == fields.has && t == path),
            "{path}: {terms:?}"
        );
    }
    assert!(
        terms
            .iter()
            .any(|(f, t)| *f == fields.odd && t.ends_with("big"))
    );
}
