//! Scalar integers live in their columns only (format 3): every comparison with them — number
//! literals at every magnitude, text literals, wildcards, text ordering, `NOT`, `IN` — answers
//! exactly what the reference engine answers, also beside the same field holding strings,
//! floats, lists and at paths whose integers keep their terms.

use vigil_event::{Event, Timestamp, Value};
use vigil_index::{Indexer, SearchIndex, index_all};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader};
use vigil_query::{Limits, parse, run};

fn events() -> Vec<Event> {
    let big = 1i64 << 53;
    let values: Vec<Value> = vec![
        // The first segment: only integers ≥ 0 (a column tantivy may store unsigned).
        Value::Int(403),
        Value::Int(404),
        Value::Int(0),
        Value::Int(4030),
        Value::Int(big),
        Value::Int(big + 1),
        Value::Int(-1),
        Value::Int(i64::MAX),
        Value::Int(i64::MIN),
        Value::Str("403".into()),
        Value::Str("403.0".into()),
        Value::Str("n/a".into()),
        Value::Float(403.0),
        Value::Float(403.5),
        Value::List(vec![Value::Int(403), Value::Str("x".into())]),
        Value::Bool(true),
    ];
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let mut e = Event::new(Timestamp::from_secs(1_700_000_000 + i as i64));
        e.insert("message", format!("event {i}"));
        e.insert("http.response.status_code", v.clone());
        // The same values at a path whose integers keep their terms, and a neighbour path.
        e.insert("odd/path", v.clone());
        e.insert("http.response", Value::Int(i as i64 + 1));
        out.push(e);
    }
    out
}

#[test]
fn integer_comparisons_answer_like_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let events = events();
    // Two appends and two commits: two index segments (one may hold only unsigned integers).
    ledger.append(&events[..6]).unwrap();
    let mut indexer = Indexer::open(dir.path(), 1).unwrap();
    let mut reader = LedgerReader::open(dir.path()).unwrap();
    index_all(&mut indexer, &mut reader, 1000, |_, _| {}).unwrap();
    ledger.append(&events[6..]).unwrap();
    reader.refresh().unwrap();
    index_all(&mut indexer, &mut reader, 1000, |_, _| {}).unwrap();
    indexer.close().unwrap();
    ledger.close().unwrap();

    let mut reader = LedgerReader::open(dir.path()).unwrap();
    let mut all = Vec::new();
    reader
        .for_each_raw(0..reader.end_seq(), |seq, raw| {
            all.push((seq, Event::from_canonical(raw).unwrap()));
            Ok(())
        })
        .unwrap();
    assert_eq!(all.len(), events.len());
    let index = SearchIndex::open(dir.path()).unwrap().unwrap();
    assert_eq!(index.indexed_end(), events.len() as u64);
    let limits = Limits {
        from: None,
        to: None,
        max_rows: 1000,
        now: Timestamp::from_secs(1_800_000_000),
    };
    let mut nonempty = 0;
    for field in ["status", "http.response.status_code", "odd/path"] {
        for cond in [
            "=403",
            "!=403",
            "<403",
            "<=403",
            ">403",
            ">=403",
            "=403.0",
            "=403.5",
            ">403.2",
            "=-1",
            "<0",
            "=9007199254740992",
            "=9007199254740993",
            ">9007199254740992",
            ">=9223372036854775807",
            "<-9223372036854775807",
            "=\"403\"",
            "!=\"403\"",
            "=\"0403\"",
            "=\"+403\"",
            "=40*",
            "=*3",
            "!=40*",
            "<\"5\"",
            ">\"4030\"",
            ">=\"n\"",
            " IN (403, \"404\", 4030)",
        ] {
            for text in [
                format!("{field}{cond}"),
                format!("NOT {field}{cond}"),
                format!("{field}{cond} | stats count by http.response"),
            ] {
                let pipeline = parse(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
                let expected = run(&pipeline, all.clone(), limits);
                let (actual, stats) = index.search(&mut reader, &pipeline, limits).unwrap();
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
    assert!(nonempty > 150, "only {nonempty} queries found something");
}

#[test]
fn integers_at_plain_paths_have_no_terms() {
    let (_, fields) = vigil_index::document::schema();
    let mut e = Event::new(Timestamp::from_secs(1_700_000_000));
    e.insert("source.port", 52110i64);
    e.insert("odd/path", 7i64);
    e.insert("tags", Value::List(vec![Value::Int(5)]));
    let doc = vigil_index::document::document(&fields, 0, &e);
    let texts: Vec<String> = tantivy::Document::iter_fields_and_values(&doc)
        .filter(|(f, _)| *f == fields.kw || *f == fields.num)
        .filter_map(|(_, v)| tantivy::schema::Value::as_str(&v).map(str::to_owned))
        .collect();
    assert!(
        !texts.iter().any(|t| t.starts_with("source.port")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t.starts_with("odd/path")), "{texts:?}");
    assert!(texts.iter().any(|t| t.starts_with("tags")), "{texts:?}");
}
