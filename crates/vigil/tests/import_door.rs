//! Issue 14: `vigil import` went through its own pipeline, which masked secrets with the
//! default patterns only — a secret the operator's `--redact` / `[redaction]` patterns mask
//! in live ingest reached the ledger by import; it printed "secrets masked (N kinds across
//! events)" counting events as kinds; and it left the search index behind, so a search right
//! after an import scanned every event. Import now goes through the one ingest pipeline with
//! serve's redaction, counts kinds, and brings the index up to date.

use std::path::Path;
use std::process::Command;

fn vigil(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil")
}

/// Every byte under `dir` (ledger segments, index files, everything).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.extend(std::fs::read(&p).unwrap());
            }
        }
    }
    // Segments are compressed: add the events as stored.
    let mut reader = vigil_ledger::LedgerReader::open(dir).unwrap();
    let end = reader.end_seq();
    reader
        .for_each_raw(reader.first_seq()..end, |_, raw| {
            out.extend_from_slice(raw);
            Ok(())
        })
        .unwrap();
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn import_masks_with_the_operators_patterns_counts_kinds_and_leaves_the_index_current() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        "[[redaction.patterns]]\nkind = \"badge\"\nregex = 'BADGE-[0-9]{4}'\n",
    )
    .unwrap();
    let input = dir.path().join("hr.ndjson");
    std::fs::write(
        &input,
        concat!(
            "{\"message\":\"employee EMP-123456 badge BADGE-7781 entered\"}\n",
            "{\"message\":\"employee EMP-654321 login password=hunter2\"}\n",
            "{\"message\":\"nothing secret here\"}\n",
        ),
    )
    .unwrap();
    let o = vigil(&[
        "import",
        "--quiet",
        "--data-dir",
        data.to_str().unwrap(),
        "--format",
        "json",
        "--config",
        config.to_str().unwrap(),
        "--redact",
        r"employee_id=EMP-\d{6}",
        input.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("imported 3 events"), "{stdout}");
    // employee_id twice and badge in the first event, employee_id and password in the second.
    assert!(
        stdout.contains("secrets masked (3 kinds across 2 events)"),
        "{stdout}"
    );

    let bytes = all_bytes(&data);
    for secret in ["EMP-123456", "EMP-654321", "BADGE-7781", "hunter2"] {
        assert!(
            !contains(&bytes, secret),
            "{secret} reached the data directory"
        );
    }
    assert!(contains(&bytes, "[REDACTED:employee_id]"));
    assert!(contains(&bytes, "[REDACTED:badge]"));

    // The index covers every imported event: a search answers from it.
    let indexer = vigil_index::Indexer::open(&data, 1).unwrap();
    assert_eq!(
        indexer.next_seq(),
        3,
        "the index is current after the import"
    );
    drop(indexer);

    // `--no-index` leaves it for later.
    let more = dir.path().join("more.ndjson");
    std::fs::write(&more, "{\"message\":\"later\"}\n").unwrap();
    let o = vigil(&[
        "import",
        "--quiet",
        "--no-index",
        "--data-dir",
        data.to_str().unwrap(),
        "--format",
        "json",
        more.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let indexer = vigil_index::Indexer::open(&data, 1).unwrap();
    assert_eq!(indexer.next_seq(), 3);
}
