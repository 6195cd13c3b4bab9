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
        // Sized to the stored blocks (columns blocks, segment version 3) so that the last
        // segment holds one block and the earlier ones several.
        segment_max_bytes: 4 * 1024,
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
    // (The witness, signed by the real key, would give it away: the attacker deletes it too.)
    fs::remove_file(paths.witness()).unwrap();

    // With the ledger's own (replaced) key file the forgery is self-consistent…
    let own = run(dir.path());
    assert!(own.is_intact(), "{:?}", own.problems);
    // …but not against the key the auditor kept.
    let report = verify(
        dir.path(),
        &VerifyOptions {
            trusted_key: Some(trusted),
            ..VerifyOptions::default()
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

// ---------------------------------------------------------------------------------------------
// Removed evidence: deleting what would show the tampering must itself be caught.

/// All problems of a report as one string, for `contains` checks.
fn problems_text(report: &VerifyReport) -> String {
    report
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rewrites `checkpoints.log` keeping only the checkpoints `keep` accepts.
fn keep_checkpoints(dir: &Path, keep: impl Fn(u64) -> bool) {
    let paths = LedgerPaths::new(dir);
    let mut log = format::encode_file_header(format::CHECKPOINTS_MAGIC).to_vec();
    for c in vigil_ledger::read_checkpoints(&paths).unwrap() {
        if keep(c.checkpoint.size) {
            format::encode_record(&mut log, c.note.as_bytes());
        }
    }
    fs::write(paths.checkpoints(), log).unwrap();
}

fn remove_if_present(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

#[test]
fn edited_event_with_deleted_checkpoints_and_tiles_fails() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    let seg = &segments(dir.path())[1];
    rewrite_block(seg, 0, |events, _| change_event(&mut events[0]));
    fs::remove_file(paths.checkpoints()).unwrap();
    fs::remove_file(paths.tiles()).unwrap();
    let report = run(dir.path());
    assert!(
        !report.is_intact(),
        "deleting checkpoints.log and tiles.dat hid an edit; notes: {:?}",
        report.notes
    );
    let text = problems_text(&report);
    assert!(text.contains("checkpoints were removed"), "{text}");
    assert!(text.contains("not the root of the stored events"), "{text}");

    // Deleting the witness too leaves events that no signature covers: still a failure.
    remove_if_present(&paths.witness());
    let report = run(dir.path());
    assert!(!report.is_intact(), "notes: {:?}", report.notes);
    let text = problems_text(&report);
    assert!(
        text.contains("not covered by any checkpoint signed by this key"),
        "{text}"
    );
    assert!(report.latest_verified.is_none());
}

/// Deletes the last segment holding events, every checkpoint past its start and the group
/// hashes past it: what an attacker does to make the newest events disappear.
fn delete_last_segment_and_its_evidence(dir: &Path) -> u64 {
    let paths = LedgerPaths::new(dir);
    let mut listed = files::list_segments(&paths).unwrap();
    let (mut first, mut path) = listed.pop().unwrap();
    if fs::metadata(&path).unwrap().len() <= format::SEGMENT_HEADER_LEN as u64 {
        // The empty segment created at the last seal goes too.
        fs::remove_file(&path).unwrap();
        (first, path) = listed.pop().unwrap();
    }
    fs::remove_file(&path).unwrap();
    keep_checkpoints(dir, |size| size <= first);
    let tiles = fs::read(paths.tiles()).unwrap();
    let keep = format::FILE_HEADER_LEN + (first / 256) as usize * 32;
    fs::write(paths.tiles(), &tiles[..keep.min(tiles.len())]).unwrap();
    first
}

#[test]
fn deleted_last_segment_with_its_checkpoints_and_tiles_fails() {
    let dir = fixture();
    let end = delete_last_segment_and_its_evidence(dir.path());
    let report = run(dir.path());
    assert!(
        !report.is_intact(),
        "removing the last segment and its evidence went unnoticed; notes: {:?}",
        report.notes
    );
    let text = problems_text(&report);
    assert!(text.contains("checkpoints were removed"), "{text}");
    assert!(text.contains(&format!("events {end}..")), "{text}");

    // Without the witness the seal of the segment before still shows a segment followed it.
    fs::remove_file(LedgerPaths::new(dir.path()).witness()).unwrap();
    let report = run(dir.path());
    assert!(!report.is_intact(), "notes: {:?}", report.notes);
    let text = problems_text(&report);
    assert!(text.contains("no segment follows it"), "{text}");
}

#[test]
fn removed_latest_checkpoint_fails() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    let all = vigil_ledger::read_checkpoints(&paths).unwrap();
    let latest = all.last().unwrap().checkpoint.size;
    keep_checkpoints(dir.path(), |size| size < latest);
    let report = run(dir.path());
    assert!(
        !report.is_intact(),
        "removing the latest checkpoint went unnoticed; notes: {:?}",
        report.notes
    );
    let text = problems_text(&report);
    assert!(text.contains("checkpoints were removed"), "{text}");
    // The state verified is named: the previous checkpoint.
    let previous = all[all.len() - 2].checkpoint.size;
    assert_eq!(
        report.latest_verified.as_ref().map(|c| c.size),
        Some(previous)
    );
    // Removing the witness as well: its absence and the unsigned events are both failures.
    fs::remove_file(paths.witness()).unwrap();
    let report = run(dir.path());
    let text = problems_text(&report);
    assert!(text.contains("the witness is missing"), "{text}");
    assert!(
        text.contains(&format!("events {previous}..{latest}")) && text.contains("are not signed"),
        "{text}"
    );
}

#[test]
fn writer_refuses_to_sign_over_deleted_checkpoints() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    let seg = &segments(dir.path())[1];
    rewrite_block(seg, 0, |events, _| change_event(&mut events[0]));
    fs::remove_file(paths.checkpoints()).unwrap();
    fs::remove_file(paths.tiles()).unwrap();
    remove_if_present(&paths.witness());
    let before = fs::read(seg).unwrap();
    let err = Ledger::open(dir.path(), LedgerConfig::default())
        .expect_err("the writer signed a ledger whose checkpoints were deleted (laundering)");
    let text = err.to_string();
    assert!(text.contains("does not verify"), "{text}");
    assert!(text.contains("--recover"), "{text}");
    // Nothing was rebuilt or signed: the evidence is as the attacker left it.
    assert!(
        !paths.checkpoints().exists() || vigil_ledger::read_checkpoints(&paths).unwrap().is_empty()
    );
    assert!(!paths.tiles().exists() || fs::metadata(paths.tiles()).unwrap().len() <= 16);
    assert_eq!(fs::read(seg).unwrap(), before);
    assert!(!run(dir.path()).is_intact());
}

#[test]
fn writer_refuses_when_tiles_were_rewritten_over_an_edit() {
    // The edit plus recomputed group hashes: the signed root no longer matches at open.
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    let seg = &segments(dir.path())[1];
    rewrite_block(seg, 0, |events, _| change_event(&mut events[0]));
    fs::remove_file(paths.tiles()).unwrap();
    let err = Ledger::open(dir.path(), LedgerConfig::default())
        .expect_err("the writer rebuilt tiles.dat over an edited event and went on");
    assert!(err.to_string().contains("were changed"), "{err}");
}

#[test]
fn writer_refuses_to_make_a_new_key_for_an_existing_ledger() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    fs::remove_file(paths.signing_key()).unwrap();
    fs::remove_file(paths.verifier_key()).unwrap();
    let err = Ledger::open(dir.path(), LedgerConfig::default())
        .expect_err("a new signing key was generated for an existing ledger");
    let text = err.to_string();
    assert!(text.contains("signing.key is missing"), "{text}");
    assert!(text.contains("rotate-key"), "{text}");
    assert!(!paths.signing_key().exists());
    assert!(!paths.verifier_key().exists());
}

#[test]
fn missing_verifier_key_is_named() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    fs::remove_file(paths.verifier_key()).unwrap();
    let err = verify(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("no ledger"), "{text}");
    assert!(text.contains("verifier.vkey is missing"), "{text}");
    assert!(text.contains("signing.key is present"), "{text}");
}

/// Puts back `checkpoints.log` and the witness as they were: the state a crash leaves when the
/// events after them were fsynced but not yet signed.
fn unsigned_tail_fixture() -> (tempfile::TempDir, u64, u64) {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    let log = fs::read(paths.checkpoints()).unwrap();
    let witness = fs::read(paths.witness()).unwrap();
    let signed = LedgerReader::open(dir.path()).unwrap().end_seq();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let mut e = Event::new(Timestamp::from_secs(1_800_100_000));
    e.insert("message", "after the last checkpoint");
    ledger.append(&[e.clone(), e]).unwrap();
    ledger.close().unwrap();
    fs::write(paths.checkpoints(), log).unwrap();
    fs::write(paths.witness(), witness).unwrap();
    let end = LedgerReader::open(dir.path()).unwrap().end_seq();
    (dir, signed, end)
}

#[test]
fn unsigned_tail_fails_verify_and_is_signed_on_the_record_at_the_next_open() {
    let (dir, signed, end) = unsigned_tail_fixture();
    let report = run(dir.path());
    assert!(!report.is_intact(), "an unsigned tail was reported as OK");
    let text = problems_text(&report);
    assert!(
        text.contains(&format!(
            "{} events after the last signed checkpoint (size {signed}) are not signed",
            end - signed
        )),
        "{text}"
    );
    assert!(
        text.contains("`vigil serve` signs it at its next start"),
        "{text}"
    );
    assert_eq!(
        report.latest_verified.as_ref().map(|c| c.size),
        Some(signed)
    );

    let (ledger, recovery) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    assert_eq!(recovery.unsigned_tail, Some(signed..end));
    assert!(recovery.recovered.is_none());
    ledger.close().unwrap();
    let report = run(dir.path());
    assert!(report.is_intact(), "{:?}", report.problems);
    let audit = LedgerReader::open(dir.path())
        .unwrap()
        .read_event(end)
        .unwrap();
    assert_eq!(
        audit.get_str("event.action"),
        Some("ledger_unsigned_tail_signed")
    );
    assert_eq!(audit.get_str("event.dataset"), Some("vigil.audit"));
}

#[test]
fn recovery_is_signed_recorded_and_reported_forever() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    fs::remove_file(paths.checkpoints()).unwrap();
    remove_if_present(&paths.witness());
    let end = LedgerReader::open(dir.path()).unwrap().end_seq();
    assert!(Ledger::open(dir.path(), LedgerConfig::default()).is_err());
    let config = LedgerConfig {
        recover: Some("checkpoints.log lost in a disk replacement, ticket 42".into()),
        ..LedgerConfig::default()
    };
    let (ledger, recovery) = Ledger::open(dir.path(), config).unwrap();
    let record = recovery.recovered.clone().expect("no recovery record");
    assert_eq!(record.size, end);
    assert!(record.reason.contains("ticket 42"));
    assert!(
        record
            .found
            .iter()
            .any(|f| f.contains("no signed checkpoint")),
        "{:?}",
        record.found
    );
    ledger.close().unwrap();
    let audit = LedgerReader::open(dir.path())
        .unwrap()
        .read_event(end)
        .unwrap();
    assert_eq!(audit.get_str("event.action"), Some("ledger_recovered"));
    assert_eq!(audit.get_str("event.dataset"), Some("vigil.audit"));
    assert!(audit.get_str("message").unwrap().contains("ticket 42"));

    // Later opens are ordinary; every verify names the recovery.
    let (ledger, recovery) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    assert!(recovery.recovered.is_none());
    ledger.close().unwrap();
    let report = run(dir.path());
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.recoveries.len(), 1);
    assert!(report.recoveries[0].reason.contains("ticket 42"));

    // A forged recovery record (not signed by the key) is a failure.
    let mut bytes = fs::read(paths.recoveries()).unwrap();
    let at = bytes.windows(6).position(|w| w == b"ticket").unwrap();
    bytes[at] = b'T';
    fs::write(paths.recoveries(), bytes).unwrap();
    assert!(!run(dir.path()).is_intact());
    // So is a deleted one: the checkpoints state how many there are.
    fs::remove_file(paths.recoveries()).unwrap();
    let report = run(dir.path());
    assert!(
        problems_text(&report).contains("records were removed"),
        "{}",
        problems_text(&report)
    );
    assert!(Ledger::open(dir.path(), LedgerConfig::default()).is_err());
}

#[test]
fn outside_checkpoint_catches_a_fork_signed_with_the_stolen_key() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    let saved = vigil_ledger::read_checkpoints(&paths).unwrap()[5]
        .note
        .clone();
    let with = |note: &str| VerifyOptions {
        against: Some(note.to_owned()),
        ..VerifyOptions::default()
    };
    let report = verify(dir.path(), &with(&saved), &mut |_, _| {}).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert!(report.against.is_some());

    // The attacker holds the signing key (it is on the host): they rewrite an early event and
    // re-sign a complete new history, witness and all. Locally it verifies…
    let signer = NoteSigner::from_skey(&fs::read_to_string(paths.signing_key()).unwrap()).unwrap();
    rewrite_block(&segments(dir.path())[0], 0, |events, _| {
        change_event(&mut events[0])
    });
    let mut reader = LedgerReader::open(dir.path()).unwrap();
    let end = reader.end_seq();
    let mut tiles = format::encode_file_header(format::TILES_MAGIC).to_vec();
    for g in 0..end / 256 {
        let leaves = reader.group_leaf_hashes(g).unwrap();
        tiles.extend_from_slice(&vigil_ledger::merkle::root_from_leaf_hashes(&leaves));
    }
    fs::write(paths.tiles(), tiles).unwrap();
    let root = LedgerReader::open(dir.path())
        .unwrap()
        .root_at(end)
        .unwrap();
    let forged = vigil_ledger::note::Checkpoint {
        origin: signer.name().to_owned(),
        size: end,
        root,
        extensions: vec!["vigil-witness v1".into()],
    };
    let note = signer.sign(&forged.to_text()).unwrap();
    let mut log = format::encode_file_header(format::CHECKPOINTS_MAGIC).to_vec();
    format::encode_record(&mut log, note.as_bytes());
    fs::write(paths.checkpoints(), &log).unwrap();
    let mut witness = format::encode_file_header(vigil_ledger::integrity::WITNESS_MAGIC).to_vec();
    format::encode_record(&mut witness, note.as_bytes());
    fs::write(paths.witness(), witness).unwrap();
    assert!(
        run(dir.path()).is_intact(),
        "{:?}",
        run(dir.path()).problems
    );
    // …but not against the copy kept elsewhere.
    let report = verify(dir.path(), &with(&saved), &mut |_, _| {}).unwrap();
    assert!(!report.is_intact());
    assert!(
        problems_text(&report).contains("fork"),
        "{}",
        problems_text(&report)
    );
    // A checkpoint not signed by the key is refused outright.
    let other = NoteSigner::generate(signer.name()).unwrap();
    let report = verify(
        dir.path(),
        &with(&other.sign(&forged.to_text()).unwrap()),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(problems_text(&report).contains("not signed by the expected key"));
}

#[test]
fn vouched_key_rotation_keeps_the_history_verifiable_by_either_key() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    let old = vigil_ledger::load_verifier(&paths).unwrap();
    let rotation = vigil_ledger::rotation::rotate_key(dir.path(), "yearly rotation", None).unwrap();
    assert!(rotation.vouched);
    assert_eq!(rotation.old.as_ref(), Some(&old));
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    ledger
        .append(&[Event::new(Timestamp::from_secs(1_800_200_000))])
        .unwrap();
    ledger.close().unwrap();
    let new = vigil_ledger::load_verifier(&paths).unwrap();
    assert_ne!(new, old);
    let report = run(dir.path());
    assert!(report.is_intact(), "{:?}", report.problems);
    assert!(!report.needs_attention());
    assert_eq!(report.rotations.len(), 1);
    // The auditor's old key accepts the new one through the rotation the old key signed.
    let report = verify(
        dir.path(),
        &VerifyOptions {
            trusted_key: Some(old),
            ..VerifyOptions::default()
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
}

#[test]
fn unvouched_key_rotation_is_loud_and_refused_by_the_old_key() {
    let dir = fixture();
    let paths = LedgerPaths::new(dir.path());
    let old = vigil_ledger::load_verifier(&paths).unwrap();
    fs::remove_file(paths.signing_key()).unwrap();
    assert!(Ledger::open(dir.path(), LedgerConfig::default()).is_err());
    let rotation =
        vigil_ledger::rotation::rotate_key(dir.path(), "signing.key lost", None).unwrap();
    assert!(!rotation.vouched);
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    ledger
        .append(&[Event::new(Timestamp::from_secs(1_800_200_000))])
        .unwrap();
    ledger.close().unwrap();
    let report = run(dir.path());
    assert!(report.is_intact(), "{:?}", report.problems);
    assert!(report.needs_attention());
    let report = verify(
        dir.path(),
        &VerifyOptions {
            trusted_key: Some(old),
            ..VerifyOptions::default()
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert!(!report.is_intact());
    assert!(
        problems_text(&report).contains("signature check failed"),
        "{}",
        problems_text(&report)
    );
}
