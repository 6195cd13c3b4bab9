//! An index written in another layout version is detected by the version its commits record
//! and rebuilt from the ledger, never read as this version's layout (format 1 held every
//! integer as keyword and number terms, format 3 holds scalar integers in their columns only,
//! format 4 every scalar that fits in a column).

use vigil_event::{Event, Timestamp};
use vigil_index::document::{FORMAT_VERSION, schema};
use vigil_index::{Indexer, SearchIndex, index_all};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader};
use vigil_query::{Limits, parse};

#[test]
fn an_index_of_an_older_format_version_is_rebuilt() {
    assert_eq!(FORMAT_VERSION, 4);
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let events: Vec<Event> = (0..50)
        .map(|i| {
            let mut e = Event::new(Timestamp::from_secs(1_700_000_000 + i));
            e.insert("message", format!("Failed password for user{i}"));
            e
        })
        .collect();
    ledger.append(&events).unwrap();
    // A format-1 index (same fields) that claims to cover the first 40 events.
    {
        let idx_dir = vigil_index::index_dir(dir.path());
        std::fs::create_dir_all(&idx_dir).unwrap();
        let index = tantivy::Index::create_in_dir(&idx_dir, schema().0).unwrap();
        let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
        let mut prepared = writer.prepare_commit().unwrap();
        prepared.set_payload(r#"{"format":1,"next_seq":40,"pruned_below":0}"#);
        prepared.commit().unwrap();
    }
    let err = SearchIndex::open(dir.path()).err().expect("refused");
    assert!(err.to_string().contains("format 1"), "{err}");
    // The writer starts over from the first event, not from the old index's resume point.
    let mut indexer = Indexer::open(dir.path(), 1).unwrap();
    let mut reader = LedgerReader::open(dir.path()).unwrap();
    assert_eq!(
        index_all(&mut indexer, &mut reader, 1000, |_, _| {}).unwrap(),
        50
    );
    indexer.close().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap().unwrap();
    let limits = Limits {
        from: None,
        to: None,
        max_rows: 10,
        now: Timestamp::from_secs(1_800_000_000),
    };
    let (r, stats) = index
        .search(
            &mut reader,
            &parse(r#""Failed password" | stats count"#).unwrap(),
            limits,
        )
        .unwrap();
    assert_eq!((r.rows[0][0].as_i64(), stats.tail_events), (Some(50), 0));
    ledger.close().unwrap();
}
