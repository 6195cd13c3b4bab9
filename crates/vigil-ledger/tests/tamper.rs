//! The tamper suite: every kind of tampering makes `verify` fail and name the first bad place;
//! an untouched ledger always verifies.

use std::fs;
use std::path::{Path, PathBuf};

use vigil_event::{Event, Timestamp};
use vigil_ledger::files::{self, LedgerPaths};
use vigil_ledger::format::{self, BLOCK_HEADER_LEN};
use vigil_ledger::note::NoteSigner;
use vigil_ledger::{
    Ledger, LedgerConfig, LedgerReader, Problem, VerifyOptions, VerifyReport, verify,
};

/// A closed ledger with several segments, groups and checkpoints.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig {
        segment_max_bytes: 6 * 1024,
        ..LedgerConfig::default()
    };
    let (ledger, _) = Ledger::open(dir.path(), config).unwrap();
    let mut n = 0u64;
    for batch in 0..12u64 {
        let events: Vec<Event> = (0..(150 + batch * 37))
            .map(|_| {
                n += 1;
                let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + n as i64));
                e.insert(
                    "message",
                    format!(
                        "sshd[{n}]: Failed password for user{} from 198.51.100.{} port {}",
                        n % 13,
                        n % 250,
                        1000 + n
                    ),
                );
                e.insert("n", n as i64);
                e
            })
            .collect();
        ledger.append(&events).unwrap();
        ledger.checkpoint().unwrap();
    }
    ledger.close().unwrap();
    dir
}

fn run(dir: &Path) -> VerifyReport {
    verify(dir, &VerifyOptions::default(), &mut |_, _| {}).unwrap()
}

fn first_problem(dir: &Path) -> Problem {
    let report = run(dir);
    eprintln!("problems: {:#?}", report.problems);
    assert!(
        !report.is_intact(),
        "tampering went unnoticed; notes: {:?}",
        report.notes
    );
    report.problems[0].clone()
}

/// Asserts that the problem names a range of events `A..B` that holds `seq`, starting at its
/// place: the first bad place may be a group of 256 or the span between two checkpoints.
fn assert_names_range_holding(p: &Problem, seq: u64) {
    let range = p
        .message
        .split_whitespace()
        .find_map(|w| {
            let (a, b) = w.split_once("..")?;
            Some((
                a.parse::<u64>().ok()?,
                b.trim_end_matches([',', ':', ')']).parse::<u64>().ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("no range in {p}"));
    assert!(
        range.0 <= seq && seq < range.1,
        "{p} does not cover seq {seq}"
    );
    assert_eq!(p.place.seq, Some(range.0), "{p}");
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    files::list_segments(&LedgerPaths::new(dir))
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn file_name(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Decodes block `block_idx` of a segment, lets `edit` change its events (and first seq), and
/// writes it back with a valid checksum: the tampering of someone who knows the format.
fn rewrite_block(path: &Path, block_idx: usize, edit: impl FnOnce(&mut Vec<Vec<u8>>, &mut u64)) {
    let scanned = files::scan_segment(path).unwrap();
    let location = scanned.blocks[block_idx];
    let bytes = fs::read(path).unwrap();
    let start = location.offset as usize;
    let end = start + location.header.stored_len() as usize;
    let raw =
        format::block_raw_payload(&location.header, &bytes[start + BLOCK_HEADER_LEN..end]).unwrap();
    let mut events: Vec<Vec<u8>> = format::split_events(&raw, location.header.n_events)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    let mut first_seq = location.header.first_seq;
    edit(&mut events, &mut first_seq);
    let refs: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
    let mut block = Vec::new();
    format::encode_events_block(&mut block, first_seq, &refs, 3, &mut Vec::new());
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(&block);
    out.extend_from_slice(&bytes[end..]);
    fs::write(path, out).unwrap();
}

/// Replaces the `n`-th field value "n": K inside an event's canonical bytes with a new number.
fn change_event(event: &mut Vec<u8>) {
    let mut decoded = Event::from_canonical(event).unwrap();
    decoded.insert("message", "nothing to see here");
    *event = decoded.to_canonical();
}

#[test]
fn untouched_ledgers_verify() {
    let dir = fixture();
    let report = run(dir.path());
    assert!(report.is_intact(), "{:?}", report.problems);
    assert!(report.segments > 3, "fixture should span several segments");
    assert_eq!(report.checkpoints_verified, 12);
    assert_eq!(report.events, report.end_seq);
    // Reopening (recovery path) and closing again changes nothing that verify would object to.
    let (ledger, recovery) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    assert!(recovery.cut.is_empty());
    ledger.close().unwrap();
    assert!(run(dir.path()).is_intact());
}

#[test]
fn flipped_byte_in_a_block_is_found() {
    let dir = fixture();
    let seg = &segments(dir.path())[1];
    let scanned = files::scan_segment(seg).unwrap();
    let target = scanned.blocks[1];
    let mut bytes = fs::read(seg).unwrap();
    bytes[target.offset as usize + BLOCK_HEADER_LEN + 10] ^= 0x01;
    fs::write(seg, bytes).unwrap();
    let p = first_problem(dir.path());
    assert_eq!(file_name(&p.place.file), file_name(&Some(seg.clone())));
    assert_eq!(p.place.block, Some(1));
    assert_eq!(p.place.seq, Some(target.header.first_seq));
    assert!(p.message.contains("checksum"), "{p}");
}

#[test]
fn changed_event_with_valid_checksum_is_found() {
    let dir = fixture();
    let seg = &segments(dir.path())[2];
    let scanned = files::scan_segment(seg).unwrap();
    let block = scanned.blocks[0];
    rewrite_block(seg, 0, |events, _| change_event(&mut events[3]));
    let p = first_problem(dir.path());
    assert_names_range_holding(&p, block.header.first_seq + 3);
    // The group hash check names the segment and block of the group itself.
    let report = run(dir.path());
    let group = report
        .problems
        .iter()
        .find(|p| p.message.contains("do not hash to the stored group hash"))
        .expect("group hash mismatch reported");
    assert_eq!(file_name(&group.place.file), file_name(&Some(seg.clone())));
    assert_eq!(group.place.block, Some(0));
    assert_eq!(group.place.seq, Some(block.header.first_seq / 256 * 256));
}

#[test]
fn changed_event_with_rewritten_group_hashes_fails_the_signed_root() {
    let dir = fixture();
    let seg = &segments(dir.path())[2];
    rewrite_block(seg, 0, |events, _| change_event(&mut events[3]));
    // The attacker also recomputes tiles.dat from the altered segments.
    let paths = LedgerPaths::new(dir.path());
    let mut reader = LedgerReader::open(dir.path()).unwrap();
    let groups = reader.end_seq() / 256;
    let mut tiles = format::encode_file_header(format::TILES_MAGIC).to_vec();
    for g in 0..groups {
        let leaves = reader.group_leaf_hashes(g).unwrap();
        tiles.extend_from_slice(&vigil_ledger::merkle::root_from_leaf_hashes(&leaves));
    }
    fs::write(paths.tiles(), tiles).unwrap();
    let report = run(dir.path());
    let p = &report.problems[0];
    assert!(
        p.message.contains("differs from the signed checkpoint"),
        "{p}"
    );
    assert!(p.place.checkpoint.is_some());
}

#[test]
fn removed_event_is_found() {
    let dir = fixture();
    let seg = &segments(dir.path())[1];
    let scanned = files::scan_segment(seg).unwrap();
    let next = scanned.blocks[2];
    rewrite_block(seg, 1, |events, _| {
        events.remove(0);
    });
    let p = first_problem(dir.path());
    assert_eq!(p.place.block, Some(2), "{p}");
    assert_eq!(p.place.seq, Some(next.header.first_seq - 1), "{p}");
    assert!(p.message.contains("removed, inserted or reordered"), "{p}");
}

#[test]
fn removed_event_with_renumbered_blocks_is_found() {
    let dir = fixture();
    // Drop the first event of the last segment and shift the block down one: the count
    // no longer matches what checkpoints signed.
    let seg = segments(dir.path()).last().unwrap().clone();
    let scanned = files::scan_segment(&seg).unwrap();
    assert_eq!(
        scanned.blocks.len(),
        1,
        "fixture's last segment has one block"
    );
    rewrite_block(&seg, 0, |events, _| {
        events.remove(0);
    });
    let p = first_problem(dir.path());
    assert!(p.place.checkpoint.is_some(), "{p}");
}

#[test]
fn inserted_event_is_found() {
    let dir = fixture();
    let seg = &segments(dir.path())[1];
    let scanned = files::scan_segment(seg).unwrap();
    let b = scanned.blocks[0];
    assert!(b.header.n_events < 256);
    rewrite_block(seg, 0, |events, _| {
        let mut fake = Event::from_canonical(&events[0]).unwrap();
        fake.insert("message", "Accepted password for root");
        events.insert(1, fake.to_canonical());
    });
    let p = first_problem(dir.path());
    assert_names_range_holding(&p, b.header.first_seq + 1);
    let report = run(dir.path());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("removed, inserted or reordered")
                && file_name(&p.place.file) == file_name(&Some(seg.clone())))
    );
}

#[test]
fn reordered_events_are_found() {
    let dir = fixture();
    let seg = &segments(dir.path())[3];
    let first = files::scan_segment(seg).unwrap().blocks[0].header.first_seq;
    rewrite_block(seg, 0, |events, _| events.swap(0, 1));
    let p = first_problem(dir.path());
    assert_names_range_holding(&p, first);
}

#[test]
fn reordered_blocks_are_found() {
    let dir = fixture();
    let seg = &segments(dir.path())[1];
    let scanned = files::scan_segment(seg).unwrap();
    assert!(scanned.blocks.len() >= 3);
    let (a, b) = (scanned.blocks[0], scanned.blocks[1]);
    let bytes = fs::read(seg).unwrap();
    let block_a = &bytes[a.offset as usize..(a.offset + a.header.stored_len()) as usize];
    let block_b = &bytes[b.offset as usize..(b.offset + b.header.stored_len()) as usize];
    let mut out = bytes[..a.offset as usize].to_vec();
    out.extend_from_slice(block_b);
    out.extend_from_slice(block_a);
    out.extend_from_slice(&bytes[(b.offset + b.header.stored_len()) as usize..]);
    fs::write(seg, out).unwrap();
    let p = first_problem(dir.path());
    assert_eq!(p.place.block, Some(0), "{p}");
    assert_eq!(p.place.seq, Some(a.header.first_seq), "{p}");
}

#[test]
fn truncated_middle_segment_is_found() {
    let dir = fixture();
    let seg = &segments(dir.path())[1];
    let len = fs::metadata(seg).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(seg).unwrap();
    file.set_len(len / 2).unwrap();
    let p = first_problem(dir.path());
    assert_eq!(
        file_name(&p.place.file),
        file_name(&Some(seg.clone())),
        "{p}"
    );
    assert!(p.place.block.is_some(), "{p}");
}

#[test]
fn truncated_last_segment_is_found() {
    let dir = fixture();
    let seg = segments(dir.path()).last().unwrap().clone();
    let last_block = files::scan_segment(&seg)
        .unwrap()
        .blocks
        .last()
        .unwrap()
        .offset;
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let p = first_problem(dir.path());
    assert_eq!(
        file_name(&p.place.file),
        file_name(&Some(seg.clone())),
        "{p}"
    );
    assert!(p.place.checkpoint.is_some(), "{p}");
    assert!(p.message.contains("signed by the checkpoint"), "{p}");
    // Cutting whole blocks off the end is caught too.
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(last_block)
        .unwrap();
    let p = first_problem(dir.path());
    assert!(p.message.contains("missing"), "{p}");
}

#[test]
fn deleted_segment_is_found() {
    let dir = fixture();
    let segs = segments(dir.path());
    let victim = &segs[2];
    let first =
        format::parse_segment_file_name(&victim.file_name().unwrap().to_string_lossy()).unwrap();
    fs::remove_file(victim).unwrap();
    let p = first_problem(dir.path());
    assert_eq!(p.place.seq, Some(first), "{p}");
    assert!(p.message.contains("no pruning record covers them"), "{p}");

    // Deleting the oldest segment without a pruning record is caught as well.
    fs::remove_file(&segs[0]).unwrap();
    let p = first_problem(dir.path());
    assert_eq!(p.place.seq, Some(0), "{p}");
}

#[test]
fn checkpoint_with_bad_signature_is_found() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    let log = files::read_record_log(&paths.checkpoints(), format::CHECKPOINTS_MAGIC).unwrap();
    // Change the tree size in checkpoint #4, keep the old signature, fix the record CRC.
    let mut body = Vec::new();
    for (i, record) in log.records.iter().enumerate() {
        let mut text = String::from_utf8(record.clone()).unwrap();
        if i == 3 {
            let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
            let size: u64 = lines[1].parse().unwrap();
            lines[1] = (size + 1).to_string();
            text = lines.join("\n");
        }
        format::encode_record(&mut body, text.as_bytes());
    }
    let mut file = format::encode_file_header(format::CHECKPOINTS_MAGIC).to_vec();
    file.extend_from_slice(&body);
    fs::write(paths.checkpoints(), file).unwrap();
    let p = first_problem(dir.path());
    assert_eq!(p.place.checkpoint, Some(4), "{p}");
    assert!(p.message.contains("signature"), "{p}");
}

#[test]
fn checkpoint_with_wrong_root_is_found() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    // Someone holding the key signs a checkpoint whose root is not the ledger's.
    let signer = NoteSigner::from_skey(&fs::read_to_string(paths.signing_key()).unwrap()).unwrap();
    let mut reader = LedgerReader::open(dir.path()).unwrap();
    let size = reader.end_seq();
    let mut root = reader.root_at(size).unwrap();
    root[0] ^= 1;
    let bogus = vigil_ledger::note::Checkpoint {
        origin: signer.name().to_owned(),
        size,
        root,
        extensions: vec![],
    };
    let note = signer.sign(&bogus.to_text()).unwrap();
    let mut bytes = fs::read(paths.checkpoints()).unwrap();
    format::encode_record(&mut bytes, note.as_bytes());
    fs::write(paths.checkpoints(), bytes).unwrap();
    let p = first_problem(dir.path());
    assert!(p.message.contains(&format!("tree size {size}")), "{p}");
    assert_eq!(p.place.checkpoint, Some(13), "{p}");
}

#[test]
fn replaced_key_and_resigned_checkpoints_fail_against_the_trusted_key() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    let trusted = vigil_ledger::load_verifier(&paths).unwrap();
    // The attacker rewrites an event, then re-signs every checkpoint with a key of their own
    // and replaces the key files.
    let seg = &segments(dir.path())[1];
    rewrite_block(seg, 0, |events, _| change_event(&mut events[0]));
    let mut reader = LedgerReader::open(dir.path()).unwrap();
    let reader_end = reader.end_seq();
    let mut tiles = format::encode_file_header(format::TILES_MAGIC).to_vec();
    for g in 0..reader_end / 256 {
        let leaves = reader.group_leaf_hashes(g).unwrap();
        tiles.extend_from_slice(&vigil_ledger::merkle::root_from_leaf_hashes(&leaves));
    }
    fs::write(paths.tiles(), tiles).unwrap();
    let root = LedgerReader::open(dir.path())
        .unwrap()
        .root_at(reader_end)
        .unwrap();
    let forger = NoteSigner::generate(trusted.name()).unwrap();
    let forged = vigil_ledger::note::Checkpoint {
        origin: trusted.name().to_owned(),
        size: reader_end,
        root,
        extensions: vec![],
    };
    let mut log = format::encode_file_header(format::CHECKPOINTS_MAGIC).to_vec();
    format::encode_record(&mut log, forger.sign(&forged.to_text()).unwrap().as_bytes());
    fs::write(paths.checkpoints(), log).unwrap();
    fs::write(paths.verifier_key(), forger.verifier().to_vkey()).unwrap();

    // With the ledger's own (replaced) key file the forgery is self-consistent…
    let own = run(dir.path());
    assert!(own.is_intact(), "{:?}", own.problems);
    // …but not against the key the auditor kept.
    let report = verify(
        dir.path(),
        &VerifyOptions {
            trusted_key: Some(trusted),
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert!(!report.is_intact());
    assert!(
        report.problems[0].message.contains("signature"),
        "{}",
        report.problems[0]
    );
}
