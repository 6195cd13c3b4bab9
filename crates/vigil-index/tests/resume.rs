//! The index is derived data: it resumes after a crash from its last commit without gaps or
//! duplicates, follows pruning, and a search always covers the whole ledger (the part not yet
//! indexed is scanned).

use vigil_event::{Event, Timestamp};
use vigil_index::{Indexer, SearchIndex, index_all};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader};
use vigil_query::{Limits, parse};

fn event(i: u64) -> Event {
    let mut e = Event::new(Timestamp::from_secs(1_700_000_000 + i as i64));
    e.insert(
        "message",
        format!("login attempt number {i} from host{}", i % 7),
    );
    e.insert("source.ip", format!("10.0.{}.{}", i % 3, i % 5));
    e.insert("n", i as i64);
    e
}

fn limits() -> Limits {
    Limits {
        from: None,
        to: None,
        max_rows: 100,
        now: Timestamp::from_secs(1_800_000_000),
    }
}

fn count(
    index: &SearchIndex,
    dir: &std::path::Path,
    query: &str,
) -> (i64, vigil_index::SearchStats) {
    let mut ledger = LedgerReader::open(dir).unwrap();
    let (r, stats) = index
        .search(&mut ledger, &parse(query).unwrap(), limits())
        .unwrap();
    (r.rows[0][0].as_i64().unwrap(), stats)
}

#[test]
fn resumes_from_the_last_commit_without_gaps_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let events: Vec<Event> = (0..5000).map(event).collect();
    ledger.append(&events[..3000]).unwrap();

    // Index 1000 and commit; then index 1500 more and "crash" (drop without commit).
    {
        let mut indexer = Indexer::open(dir.path(), 1).unwrap();
        let mut reader = LedgerReader::open(dir.path()).unwrap();
        assert_eq!(indexer.catch_up(&mut reader, 1000).unwrap(), 1000);
        indexer.commit().unwrap();
        assert_eq!(indexer.catch_up(&mut reader, 1500).unwrap(), 1500);
        assert_eq!(indexer.next_seq(), 2500);
        drop(indexer);
    }
    ledger.append(&events[3000..]).unwrap();

    // The index says 1000; searches still see all 5000 events, 4000 of them from the ledger.
    let index = SearchIndex::open(dir.path()).unwrap().unwrap();
    assert_eq!(index.indexed_end(), 1000);
    let (n, stats) = count(&index, dir.path(), "* | stats count");
    assert_eq!(n, 5000);
    assert_eq!(stats.tail_events, 4000);
    assert!(stats.pushed_down);

    // Reopened, the indexer resumes at 1000 and ends with each event exactly once.
    let mut indexer = Indexer::open(dir.path(), 1).unwrap();
    assert_eq!(indexer.next_seq(), 1000);
    let mut reader = LedgerReader::open(dir.path()).unwrap();
    assert_eq!(
        index_all(&mut indexer, &mut reader, 700, |_, _| {}).unwrap(),
        4000
    );
    indexer.close().unwrap();
    index.reload().unwrap();
    assert_eq!(index.indexed_end(), 5000);
    let (n, stats) = count(&index, dir.path(), "* | stats count");
    assert_eq!((n, stats.tail_events), (5000, 0));
    // Every event once: as many distinct values of `n` as events, each counted once.
    let (n, _) = count(&index, dir.path(), "* | stats dc(n)");
    assert_eq!(n, 5000);
    let (n, _) = count(&index, dir.path(), "\"attempt number 4321\" | stats count");
    assert_eq!(n, 1);
    ledger.close().unwrap();
}

#[test]
fn a_second_writer_is_refused_and_reindex_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    ledger
        .append(&(0..100).map(event).collect::<Vec<_>>())
        .unwrap();
    let mut indexer = Indexer::open(dir.path(), 1).unwrap();
    let err = Indexer::open(dir.path(), 1)
        .err()
        .expect("second writer refused");
    assert!(err.to_string().contains("another process"), "{err}");
    let mut reader = LedgerReader::open(dir.path()).unwrap();
    index_all(&mut indexer, &mut reader, 1000, |_, _| {}).unwrap();
    indexer.clear().unwrap();
    assert_eq!(indexer.next_seq(), 0);
    assert_eq!(
        index_all(&mut indexer, &mut reader, 1000, |_, _| {}).unwrap(),
        100
    );
    indexer.close().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap().unwrap();
    let (n, stats) = count(&index, dir.path(), "* | stats count");
    assert_eq!((n, stats.tail_events), (100, 0));
    ledger.close().unwrap();
}

#[test]
fn an_index_of_another_layout_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    ledger
        .append(&(0..50).map(event).collect::<Vec<_>>())
        .unwrap();
    // An index written by some other schema.
    {
        let mut b = tantivy::schema::Schema::builder();
        b.add_u64_field("other", tantivy::schema::INDEXED);
        let idx_dir = vigil_index::index_dir(dir.path());
        std::fs::create_dir_all(&idx_dir).unwrap();
        tantivy::Index::create_in_dir(&idx_dir, b.build()).unwrap();
    }
    assert!(SearchIndex::open(dir.path()).is_err());
    let mut indexer = Indexer::open(dir.path(), 1).unwrap();
    let mut reader = LedgerReader::open(dir.path()).unwrap();
    assert_eq!(
        index_all(&mut indexer, &mut reader, 1000, |_, _| {}).unwrap(),
        50
    );
    indexer.close().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap().unwrap();
    assert_eq!(count(&index, dir.path(), "* | stats count").0, 50);
    ledger.close().unwrap();
}
