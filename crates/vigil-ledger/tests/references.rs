//! Events blocks stored as columns with references (compression 3): random events come back
//! byte for byte through the block encoder and decoder, and damaged references are refused.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vigil_event::{Event, Timestamp, Value};
use vigil_ledger::columns::{self, RefPolicy};
use vigil_ledger::format::{self, Compression};

fn framing(events: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        let mut n = e.len() as u64;
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(e);
    }
    out
}

/// A field of a random event: picks a slice of the line or a number, or something else.
#[derive(Debug, Clone)]
enum Pick {
    Slice(usize, usize),
    Int(i64),
    Other(String),
    Float(f64),
    Ip([u8; 4]),
    List(usize, usize, i64),
    MapInList(usize, usize),
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Pick::Slice(a, n)),
        prop_oneof![0i64..2000, any::<i64>(), Just(i64::MIN), Just(-7)].prop_map(Pick::Int),
        "[a-zé ]{0,12}".prop_map(Pick::Other),
        any::<f64>().prop_map(Pick::Float),
        any::<[u8; 4]>().prop_map(Pick::Ip),
        (any::<usize>(), 0usize..10, 0i64..100).prop_map(|(a, n, i)| Pick::List(a, n, i)),
        (any::<usize>(), 0usize..10).prop_map(|(a, n)| Pick::MapInList(a, n)),
    ]
}

fn slice(line: &str, a: usize, n: usize) -> String {
    let chars: Vec<char> = line.chars().collect();
    if chars.is_empty() {
        return String::new();
    }
    let a = a % chars.len();
    chars[a..(a + n).min(chars.len())].iter().collect()
}

/// `original`: none, a string line, or (for `Some(None)`) a non-string value.
fn event(i: i64, original: Option<Option<String>>, picks: &[Pick]) -> Vec<u8> {
    let mut e = Event::new(Timestamp::from_nanos(1_790_000_000_000_000_000 - i * 997));
    let line = match original {
        Some(Some(line)) => {
            e.insert("event.original", line.clone());
            line
        }
        Some(None) => {
            e.insert("event.original", 42i64);
            "42".into()
        }
        None => "sshd[1002]: Failed password for root".into(),
    };
    for (k, p) in picks.iter().enumerate() {
        let key = format!("f{k}");
        let value = match p {
            Pick::Slice(a, n) => Value::Str(slice(&line, *a, *n)),
            Pick::Int(v) => Value::Int(*v),
            Pick::Other(s) => Value::Str(s.clone()),
            Pick::Float(f) => Value::float(*f),
            Pick::Ip(o) => Value::Ip(std::net::Ipv4Addr::from(*o).into()),
            Pick::List(a, n, v) => Value::List(vec![
                Value::Str(slice(&line, *a, *n)),
                Value::Int(*v),
                Value::Null,
                Value::List(vec![Value::Bool(true), Value::Str(slice(&line, 0, *n))]),
            ]),
            Pick::MapInList(a, n) => {
                let mut m = BTreeMap::new();
                m.insert("s".to_string(), Value::Str(slice(&line, *a, *n)));
                m.insert("i".to_string(), Value::Int(*n as i64));
                Value::List(vec![Value::Map(m)])
            }
        };
        e.insert(key, value);
    }
    e.to_canonical()
}

fn line() -> impl Strategy<Value = Option<Option<String>>> {
    prop_oneof![
        8 => "[ -~é]{0,160}".prop_map(|s| Some(Some(s))),
        1 => Just(Some(None)),
        1 => Just(None),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random events (strings cut from their line or not, integers spelled in it or not, nested
    /// lists and maps, events without a line or with a line that is not a string) round-trip
    /// byte for byte, through the transform and through a whole stored block.
    #[test]
    fn random_events_round_trip_byte_exact(
        events in prop::collection::vec((line(), prop::collection::vec(pick(), 0..8)), 1..40),
        min_str in 0usize..6,
        ints in any::<bool>(),
    ) {
        let canonical: Vec<Vec<u8>> = events
            .iter()
            .enumerate()
            .map(|(i, (l, p))| event(i as i64, l.clone(), p))
            .collect();
        let f = framing(&canonical);
        let enc = columns::encode_references_with(&f, RefPolicy { min_str, ints }).unwrap();
        prop_assert_eq!(columns::decode_references(&enc, f.len()), Some(f.clone()));
        // A shorter bound is refused, never overrun.
        if !f.is_empty() {
            prop_assert_eq!(columns::decode_references(&enc, f.len() - 1), None);
        }

        let refs: Vec<&[u8]> = canonical.iter().map(Vec::as_slice).collect();
        let mut out = Vec::new();
        format::encode_events_block(&mut out, 0, &refs, 3, &mut Vec::new());
        let header = format::decode_block_header(&out).unwrap();
        let payload = &out[format::BLOCK_HEADER_LEN..];
        format::check_block_crc(&out, payload).unwrap();
        let raw = format::block_raw_payload(&header, payload).unwrap();
        prop_assert_eq!(format::split_events(&raw, refs.len() as u32).unwrap(), refs);
    }
}

fn sample_block(n: i64) -> (Vec<u8>, Vec<u8>) {
    let canonical: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let line = format!(
                "Jan  1 00:00:{:02} mail sshd[{}]: Failed password for user{i} from 10.0.0.{i} port {} ssh2",
                i % 60,
                1000 + i,
                40000 + i
            );
            let mut e = Event::new(Timestamp::from_secs(1_790_000_000 + i));
            e.insert("event.original", line.clone());
            e.insert("message", line[16..].to_string());
            e.insert("user.name", format!("user{i}"));
            e.insert("process.pid", 1000 + i);
            e.insert("source.port", 40000 + i);
            e.insert("host.hostname", "mail");
            e.to_canonical()
        })
        .collect();
    let f = framing(&canonical);
    let enc = columns::encode_references(&f).unwrap();
    (f, enc)
}

#[test]
fn the_writer_stores_log_lines_with_references_and_they_are_smaller() {
    let (f, enc) = sample_block(50);
    let plain = columns::encode(&f).unwrap();
    // Each event's `message` (about 70 bytes) is a reference of a few bytes.
    assert!(
        enc.len() + 50 * 60 < plain.len(),
        "{} vs {}",
        enc.len(),
        plain.len()
    );
    assert_eq!(columns::decode_references(&enc, f.len()), Some(f.clone()));
    // Compression 2's decoder does not read compression 3 (the reference key number and the
    // reference tags are not part of its layout).
    assert_eq!(columns::decode(&enc, f.len()), None);
    let canonical = format::split_events(&f, 50).unwrap();
    let mut block = Vec::new();
    format::encode_events_block(&mut block, 256, &canonical, 3, &mut Vec::new());
    let header = format::decode_block_header(&block).unwrap();
    assert_eq!(header.compression, Compression::References);
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

const LINE: &str = "sshd[1002]: root";

/// The event `{event.original: LINE, process.pid: 1002, user.name: "root"}` and its framing.
fn small_event() -> Vec<u8> {
    let mut e = Event::new(Timestamp::from_secs(7));
    e.insert("event.original", LINE);
    e.insert("process.pid", 1002i64);
    e.insert("user.name", "root");
    framing(&[e.to_canonical()])
}

/// A compression-3 payload of [`small_event`]'s one event, built by hand with the given
/// `process.pid` and `user.name` column values and reference key number (+1).
fn small_payload(ref_key: u64, pid: &[u8], user: &[u8]) -> Vec<u8> {
    let f = small_event();
    let mut out = Vec::new();
    varint(&mut out, 3);
    for k in ["event.original", "process.pid", "user.name"] {
        varint(&mut out, k.len() as u64);
        out.extend_from_slice(k.as_bytes());
    }
    varint(&mut out, ref_key);
    varint(&mut out, 1); // events
    varint(&mut out, f.len() as u64 - 1); // the event's length (one-byte prefix)
    out.push(1); // canonical version
    varint(&mut out, 14_000_000_000); // zigzag of 7 s in nanoseconds
    out.extend_from_slice(&[3, 0, 1, 2]);
    let mut original = vec![0x05];
    varint(&mut original, LINE.len() as u64);
    original.extend_from_slice(LINE.as_bytes());
    for col in [&original[..], pid, user] {
        varint(&mut out, col.len() as u64);
        out.extend_from_slice(col);
    }
    out
}

const PID: [u8; 3] = [columns::REF_INT, 5, 4];
const USER: [u8; 3] = [columns::REF_STR, 12, 4];

#[test]
fn a_hand_built_reference_block_decodes_to_the_event() {
    let f = small_event();
    let payload = small_payload(1, &PID, &USER);
    assert_eq!(
        columns::decode_references(&payload, f.len()),
        Some(f.clone())
    );
    // The encoder writes exactly this.
    assert_eq!(columns::encode_references(&f), Some(payload));
    // Plain values are read as well.
    let mut pid = vec![0x03];
    pid.extend_from_slice(&1002i64.to_be_bytes());
    assert_eq!(
        columns::decode_references(
            &small_payload(1, &pid, &[0x05, 4, b'r', b'o', b'o', b't']),
            f.len()
        ),
        Some(f)
    );
}

#[test]
fn references_outside_their_line_or_not_a_number_are_refused() {
    let f = small_event();
    let refused = |ref_key: u64, pid: &[u8], user: &[u8]| {
        columns::decode_references(&small_payload(ref_key, pid, user), f.len()).is_none()
    };
    // Past the end of the line (16 bytes), by offset or by length.
    assert!(refused(1, &PID, &[columns::REF_STR, 13, 4]));
    assert!(refused(1, &PID, &[columns::REF_STR, 12, 5]));
    assert!(refused(1, &PID, &[columns::REF_STR, 16, 1]));
    // An offset that overflows when the length is added.
    let mut huge = vec![columns::REF_STR];
    varint(&mut huge, u64::MAX);
    huge.push(4);
    assert!(refused(1, &PID, &huge));
    // Integer references: not a number, not its one decimal spelling, too long, past the end.
    assert!(refused(1, &[columns::REF_INT, 4, 4], &USER)); // "[100"
    assert!(refused(1, &[columns::REF_INT, 6, 3], &USER)); // "002"
    assert!(refused(1, &[columns::REF_INT, 0, 16], &USER));
    assert!(refused(1, &[columns::REF_INT, 5, 12], &USER));
    // No reference key, a reference key out of range, or the reference key pointing at a
    // column that is not the line: references cannot resolve.
    assert!(refused(0, &PID, &USER));
    assert!(refused(4, &PID, &USER));
    assert!(refused(3, &PID, &USER));
    // A right reference to the wrong bytes decodes, but not to the event (the block's CRC and
    // the leaf hash catch that; the decoder only guarantees bounds).
    let other =
        columns::decode_references(&small_payload(1, &PID, &[columns::REF_STR, 0, 4]), f.len());
    assert!(other.is_some_and(|d| d != f));
}

#[test]
fn hostile_reference_blocks_never_panic_and_stay_bounded() {
    let (f, enc) = sample_block(8);
    for cut in 0..enc.len() {
        assert!(
            columns::decode_references(&enc[..cut], f.len()).is_none_or(|d| d.len() <= f.len())
        );
    }
    for i in 0..enc.len() {
        for b in [0x00, 0x01, 0x0a, 0x0b, 0x7f, 0x80, 0xff] {
            let mut bad = enc.clone();
            bad[i] = b;
            assert!(columns::decode_references(&bad, f.len()).is_none_or(|d| d.len() <= f.len()));
        }
    }
    // One event whose line is 60,000 bytes and a list of 100,000 references to all of it: the
    // decoder stops at the bound (2 MiB) instead of building 6 GB.
    assert_eq!(
        columns::decode_references(&many_references(100_000, 2_000_000), 1 << 21),
        None
    );
    // The same with 30 references is an honest event and decodes (so the refusal above is
    // the bound's).
    let line = "x".repeat(60_000);
    let mut e = Event::new(Timestamp::from_nanos(0));
    e.insert("event.original", line.clone());
    e.insert("a", Value::List(vec![Value::Str(line); 30]));
    let f = framing(&[e.to_canonical()]);
    let honest = many_references(30, f.len() as u64 - 3);
    assert_eq!(columns::decode_references(&honest, f.len()), Some(f));
}

/// A compression-3 payload of one event whose `event.original` is 60,000 × "x" and whose field
/// `a` is a list of `n` references to the whole line; the event claims `len` bytes.
fn many_references(n: u64, len: u64) -> Vec<u8> {
    let line = "x".repeat(60_000);
    let mut out = Vec::new();
    varint(&mut out, 2);
    for k in ["a", "event.original"] {
        varint(&mut out, k.len() as u64);
        out.extend_from_slice(k.as_bytes());
    }
    varint(&mut out, 2); // reference key: "event.original"
    varint(&mut out, 1);
    varint(&mut out, len);
    out.extend_from_slice(&[1, 0, 2, 0, 1]);
    let mut list = vec![0x08];
    varint(&mut list, n);
    for _ in 0..n {
        list.push(columns::REF_STR);
        varint(&mut list, 0);
        varint(&mut list, 60_000);
    }
    let mut original = vec![0x05];
    varint(&mut original, line.len() as u64);
    original.extend_from_slice(line.as_bytes());
    for col in [&list, &original] {
        varint(&mut out, col.len() as u64);
        out.extend_from_slice(col);
    }
    out
}
