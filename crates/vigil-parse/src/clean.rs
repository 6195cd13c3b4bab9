//! The masking fast path: whether a text certainly holds nothing [`crate::redact`] would mask,
//! by a hand-written scan instead of an automaton, and the typed record of which fields a
//! parser copied verbatim out of its (already checked) line.
//!
//! A text is **clean** when it has no run of 13 or more digits (spaces and dashes allowed in
//! between) and no keyword hit: one of `private key`, `eyj`, `authorization`, `bearer`, `://`,
//! `akia`, `asia` anywhere (ASCII case ignored), or one of the key keywords (`secret`, `pass`,
//! `pwd`, `token`, `apikey`, `api_key`, `api-key`, `private_key`, `private-key`, `privatekey`)
//! inside a word (`[A-Za-z0-9_-]+`) that is followed by optional quotes, spaces or tabs and
//! then `=` or `:`. That is exactly "no keyword occurrence, overlapping ones included, passes
//! the separator check" of the keyword prefilter in [`crate::redact`] (the property test
//! `scan_agrees_with_the_automaton` holds the two to the same answer), so a clean text is one
//! no masking pattern can touch, and — the property the parsers use — **every part of a clean
//! text is clean**: a keyword, a digit run or a word-and-separator inside the part is inside
//! the whole text too.

use std::ops::Range;

use vigil_event::Value;

/// Whether nothing in `s` could be masked by the built-in patterns (see the module docs).
/// One pass: a byte table says what each byte may start or end (a digit, a keyword's first
/// letter, a separator), and only those bytes are looked at further.
pub(crate) fn text_is_clean(s: &[u8]) -> bool {
    let mut run = 0u32;
    for (at, &b) in s.iter().enumerate() {
        let class = CLASS[b as usize];
        // Most bytes (letters that start no keyword, punctuation) take part in nothing.
        if class == 0 {
            run = 0;
            continue;
        }
        if class & DIGIT != 0 {
            run += 1;
            if run >= 13 {
                return false;
            }
            continue;
        }
        if class & KEEPS_RUN == 0 {
            run = 0;
        }
        if class & BARE_START != 0 && bare_at(s, at) {
            return false;
        }
        if class & SEPARATOR != 0 && keyed_word_before(s, at) {
            return false;
        }
    }
    true
}

/// 13 or more digits close together (spaces and dashes do not break a run).
pub(crate) fn has_long_digit_run(s: &[u8]) -> bool {
    let mut run = 0;
    for &b in s {
        if b.is_ascii_digit() {
            run += 1;
            if run >= 13 {
                return true;
            }
        } else if b != b' ' && b != b'-' {
            run = 0;
        }
    }
    false
}

/// Keywords that count wherever they occur.
const BARE: [&[u8]; 7] = [
    b"private key",
    b"eyj",
    b"authorization",
    b"bearer",
    b"://",
    b"akia",
    b"asia",
];

/// Keywords that count inside a word followed by `=` or `:`.
const KEYED: [&[u8]; 10] = [
    b"secret",
    b"pass",
    b"pwd",
    b"token",
    b"apikey",
    b"api_key",
    b"api-key",
    b"private_key",
    b"private-key",
    b"privatekey",
];

/// [`CLASS`] bits.
const DIGIT: u8 = 1;
/// A space or dash: does not end a digit run.
const KEEPS_RUN: u8 = 2;
/// The first byte of a [`BARE`] keyword (either case).
const BARE_START: u8 = 4;
/// `=` or `:`, after which a [`KEYED`] word counts.
const SEPARATOR: u8 = 8;

/// What each byte may take part in.
static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = b'0';
    while b <= b'9' {
        table[b as usize] |= DIGIT;
        b += 1;
    }
    table[b' ' as usize] |= KEEPS_RUN;
    table[b'-' as usize] |= KEEPS_RUN;
    table[b'=' as usize] |= SEPARATOR;
    table[b':' as usize] |= SEPARATOR;
    let mut w = 0;
    while w < BARE.len() {
        let first = BARE[w][0];
        table[first as usize] |= BARE_START;
        table[first.to_ascii_uppercase() as usize] |= BARE_START;
        w += 1;
    }
    table
}

/// Whether `s[at..]` starts with the lower-case `word`, ASCII case ignored.
fn starts_with_at(s: &[u8], at: usize, word: &[u8]) -> bool {
    s.len() - at >= word.len() && s[at..at + word.len()].eq_ignore_ascii_case(word)
}

/// Whether a [`BARE`] keyword starts at `at`: the keywords whose first byte is `s[at]` and
/// whose second is `s[at + 1]` (two table look-ups, ASCII case ignored), compared in full.
fn bare_at(s: &[u8], at: usize) -> bool {
    let Some(&second) = s.get(at + 1) else {
        return false;
    };
    let both = BARE_FIRST[s[at] as usize] & BARE_SECOND[second as usize];
    both != 0
        && BARE
            .iter()
            .enumerate()
            .any(|(i, word)| both & (1 << i) != 0 && starts_with_at(s, at, word))
}

/// Bit `i` set for the first byte (either case) of [`BARE`] keyword `i`.
static BARE_FIRST: [u8; 256] = bare_bytes(0);
/// Bit `i` set for the second byte (either case) of [`BARE`] keyword `i`.
static BARE_SECOND: [u8; 256] = bare_bytes(1);
// One bit per keyword in a `u8`.
const _: () = assert!(BARE.len() <= 8);

const fn bare_bytes(place: usize) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut w = 0;
    while w < BARE.len() {
        let b = BARE[w][place];
        table[b as usize] |= 1 << w;
        table[b.to_ascii_uppercase() as usize] |= 1 << w;
        w += 1;
    }
    table
}

/// The characters of a word, as the prefilter's separator check skips them.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Whether the separator at `sep` follows a word holding a [`KEYED`] keyword (and optional
/// quotes, spaces or tabs). Every byte is walked over at most once per text: a walk stops at
/// the separator before it.
fn keyed_word_before(s: &[u8], sep: usize) -> bool {
    let mut end = sep;
    while end > 0 && matches!(s[end - 1], b'"' | b'\'' | b' ' | b'\t') {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && is_word_byte(s[start - 1]) {
        start -= 1;
    }
    word_has_keyed(&s[start..end])
}

/// Whether a word holds one of the [`KEYED`] keywords, ASCII case ignored.
fn word_has_keyed(word: &[u8]) -> bool {
    (0..word.len()).any(|at| {
        matches!(word[at].to_ascii_lowercase(), b's' | b't' | b'p' | b'a')
            && KEYED.iter().any(|k| starts_with_at(word, at, k))
    })
}

/// Slots of the per-thread memo of clean field names (a power of two).
const NAME_SLOTS: usize = 1024;

/// Field names longer than this are checked every time, not remembered.
const MAX_MEMO_NAME: usize = 64;

/// The per-thread memo of field names that are clean and not named like a secret: the same
/// few hundred names (`source.ip`, `event.outcome`, a JSON source's keys) come back in every
/// event, and one hash and one comparison are cheaper than the checks. A fixed table of names
/// that passed — a new name replaces whatever shared its slot, so it never grows, and a name
/// is only ever answered from the memo after it passed the full check.
pub(crate) struct NameMemo {
    slots: Vec<Option<Box<str>>>,
    /// Short values that passed [`text_is_clean`] (see [`NameMemo::value_is_clean`]).
    values: Box<[ValueSlot]>,
}

/// Slots of the per-thread memo of clean short values (a power of two).
const VALUE_SLOTS: usize = 512;

/// Values longer than this are scanned every time, not remembered.
const MAX_MEMO_VALUE: usize = 31;

/// One remembered value, in place: its length (0: empty slot), then its bytes. No slot
/// allocates, so the memo is 16 KiB per thread whatever the input.
type ValueSlot = [u8; MAX_MEMO_VALUE + 1];
// Whole 8-byte words, for `value_slot`.
const _: () = assert!((MAX_MEMO_VALUE + 1).is_multiple_of(8));

impl NameMemo {
    /// An empty memo.
    fn new() -> NameMemo {
        NameMemo {
            slots: vec![None; NAME_SLOTS],
            values: vec![[0; MAX_MEMO_VALUE + 1]; VALUE_SLOTS].into_boxed_slice(),
        }
    }

    /// Whether `value` is [clean](text_is_clean). Short values come back in event after event
    /// (`failure`, `authentication`, `sshd`, a host name, a user name), and one hash and one
    /// comparison of at most 31 bytes are cheaper than the scan. As with names, a value is
    /// only answered from the memo after it passed the full scan, byte for byte; a new value
    /// replaces whatever shared its slot.
    pub(crate) fn value_is_clean(&mut self, value: &[u8]) -> bool {
        let len = value.len();
        if len == 0 || len > MAX_MEMO_VALUE {
            return text_is_clean(value);
        }
        // The value as a slot would hold it, zero-padded: hashed and compared as four words.
        let mut key: ValueSlot = [0; MAX_MEMO_VALUE + 1];
        key[0] = len as u8;
        key[1..=len].copy_from_slice(value);
        let slot = &mut self.values[value_slot(&key)];
        if *slot == key {
            return true;
        }
        let clean = text_is_clean(value);
        if clean {
            *slot = key;
        }
        clean
    }

    /// Whether `name` is clean and not named like a secret.
    pub(crate) fn is_clean(&mut self, name: &str) -> bool {
        let slot = name_hash(name.as_bytes()) as usize & (NAME_SLOTS - 1);
        if self.slots[slot].as_deref() == Some(name) {
            return true;
        }
        let clean = !crate::redact::is_secret_field(name) && text_is_clean(name.as_bytes());
        if clean && name.len() <= MAX_MEMO_NAME {
            self.slots[slot] = Some(name.into());
        }
        clean
    }
}

/// What the whole-event masking check makes of a field name, before looking at its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameVerdict {
    /// Vigil's own provenance (`vigil.source`, …): never masked, its value need not be clean.
    Provenance,
    /// A clean name not named like a secret: the value decides.
    Clean,
    /// Named like a secret, or not clean itself: the event takes the full masking pass.
    Unclean,
}

impl NameVerdict {
    /// The verdict for `name` (the memo remembers clean names).
    pub(crate) fn of(name: &str, memo: &mut NameMemo) -> NameVerdict {
        if crate::reserved::is_provenance_field(name) {
            NameVerdict::Provenance
        } else if memo.is_clean(name) {
            NameVerdict::Clean
        } else {
            NameVerdict::Unclean
        }
    }

    /// The verdict for `name` without a memo.
    fn of_uncached(name: &str) -> NameVerdict {
        if crate::reserved::is_provenance_field(name) {
            NameVerdict::Provenance
        } else if !crate::redact::is_secret_field(name) && text_is_clean(name.as_bytes()) {
            NameVerdict::Clean
        } else {
            NameVerdict::Unclean
        }
    }
}

/// [`NameVerdict`] of every name in `vigil_event::known_names()`, by place (what
/// `FieldName::index` gives): worked out once, then one indexed load per field.
pub(crate) fn known_name_verdicts() -> &'static [NameVerdict] {
    static VERDICTS: std::sync::OnceLock<Box<[NameVerdict]>> = std::sync::OnceLock::new();
    VERDICTS.get_or_init(|| {
        vigil_event::known_names()
            .iter()
            .map(|name| NameVerdict::of_uncached(name))
            .collect()
    })
}

/// Runs `f` with this thread's [`NameMemo`] (`f` must not ask for it again): the memo of clean
/// names and of clean short values.
pub(crate) fn with_name_memo<R>(f: impl FnOnce(&mut NameMemo) -> R) -> R {
    thread_local! {
        static MEMO: std::cell::RefCell<NameMemo> = std::cell::RefCell::new(NameMemo::new());
    }
    MEMO.with(|memo| f(&mut memo.borrow_mut()))
}

/// [`NameMemo::is_clean`] for one name.
#[cfg(test)]
fn name_is_clean(name: &str) -> bool {
    with_name_memo(|memo| memo.is_clean(name))
}

/// The slot of a padded value in the value memo (the multiply-rotate of [`name_hash`] over
/// the slot's four words).
fn value_slot(key: &ValueSlot) -> usize {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut h = 0u64;
    for w in key.chunks_exact(8) {
        let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    (h ^ (h >> 29)) as usize & (VALUE_SLOTS - 1)
}

/// A fast non-cryptographic hash of a short name (FxHash's multiply-rotate over 8-byte words).
fn name_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^ (h >> 29)
}

/// Values shorter than this are scanned, not looked up in a [`Verbatim`].
const VERBATIM_MIN_LEN: usize = 16;

/// At most this many verbatim fields are recorded per event; more are simply checked.
const MAX_VERBATIM: usize = 6;

/// Which fields of an event a parser copied verbatim out of the line it parsed: field name
/// and byte range of the line. When that line was [clean](text_is_clean), such a value is a
/// part of a clean text and so clean itself, and the masking check skips it — after comparing
/// the value with the recorded range, so a field that some later step replaced is checked
/// after all (a wrong record costs time, never a missed secret).
#[derive(Debug, Clone, Default)]
pub(crate) struct Verbatim {
    fields: [(&'static str, Range<usize>); MAX_VERBATIM],
    len: usize,
}

impl Verbatim {
    /// Records that `field` holds `part`, when `part` is a slice of `line` (else nothing).
    pub(crate) fn record(&mut self, field: &'static str, line: &str, part: &str) {
        let (base, at) = (line.as_ptr() as usize, part.as_ptr() as usize);
        if self.len < MAX_VERBATIM && at >= base && at + part.len() <= base + line.len() {
            self.fields[self.len] = (field, at - base..at - base + part.len());
            self.len += 1;
        }
    }

    /// The recorded range of `field`, if any.
    fn range(&self, field: &str) -> Option<&Range<usize>> {
        self.fields[..self.len]
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, range)| range)
    }

    /// Whether `value` is the recorded part of `line` for `field`. Short values are not
    /// looked up: scanning them costs less than finding their record.
    pub(crate) fn holds(&self, line: &str, field: &str, value: &Value) -> bool {
        match value {
            Value::Str(s) if s.len() >= VERBATIM_MIN_LEN => self
                .range(field)
                .is_some_and(|range| line.get(range.clone()) == Some(s.as_str())),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_counts() {
        for dirty in [
            "password=x",
            "x PASSWORD : y",
            "\"api_key\": 1",
            "MyPassword\t'=",
            "user_token_v2=abc",
            "Bearer abc",
            "eyJhbGci",
            "https://host",
            "AKIAIOSFODNN7EXAMPLE",
            "in asia",
            "private key",
            "privatekeyfile:",
            "card 4111 1111 1111 1111",
            "1234567890123",
        ] {
            assert!(!text_is_clean(dirty.as_bytes()), "{dirty}");
        }
        for clean in [
            "Failed password for invalid user admin from 203.0.113.5 port 22 ssh2",
            "Accepted publickey for alice from 198.51.100.7 port 50022 ssh2: ED25519 SHA256:abc",
            "2026-11-22T10:00:00Z",
            "pass word=x",
            "passport",
            "private_ key=x",
            "123456789012",
            "",
        ] {
            assert!(text_is_clean(clean.as_bytes()), "{clean}");
        }
    }

    /// The scan gives the keyword automaton's answer (every occurrence, overlapping ones
    /// too, with its separator check) plus the digit-run check, and every part of a clean
    /// text is clean.
    #[test]
    fn scan_agrees_with_the_automaton() {
        use proptest::prelude::*;
        let reference = |b: &[u8]| {
            let mut run = 0;
            let digits = b.iter().any(|&c| {
                if c.is_ascii_digit() {
                    run += 1;
                } else if c != b' ' && c != b'-' {
                    run = 0;
                }
                run >= 13
            });
            !digits && !crate::redact::prefilter_hit_anywhere(b)
        };
        let pieces = prop::sample::select(vec![
            "private key",
            "PRIVATE KEY",
            "Private",
            " key",
            "privatekey",
            "private_key",
            "private-KEY",
            "_key",
            "-key",
            "key",
            "eyJ",
            "EYJ",
            "ey",
            "J",
            "authorization",
            "AuthoriZation",
            "author",
            "bearer",
            "Bearer",
            ":/",
            "/",
            "://",
            "akia",
            "AKIA",
            "asia",
            "as",
            "ia",
            "secret",
            "SeCrEt",
            "pass",
            "PASS",
            "passwd",
            "pwd",
            "token",
            "apikey",
            "api_key",
            "api-key",
            "API",
            "api",
            "=",
            ":",
            " ",
            "\t",
            "\"",
            "'",
            "\n",
            "_",
            "-",
            "x",
            "Z9",
            "0",
            "4111",
            "1111 ",
            "123456",
            "é",
            "\0",
            "\u{1a}",
            "\u{f}",
            "[",
            "@",
        ]);
        let text = prop::collection::vec(pieces, 0..14).prop_map(|p| p.concat());
        proptest!(ProptestConfig::with_cases(20_000), |(s in text)| {
            let b = s.as_bytes();
            let clean = text_is_clean(b);
            prop_assert_eq!(clean, reference(b), "{:?}", s);
            if clean {
                for i in 0..b.len() {
                    for j in i..=b.len() {
                        prop_assert!(text_is_clean(&b[i..j]), "{:?} in {:?}", &b[i..j], s);
                    }
                }
            }
        });
        proptest!(ProptestConfig::with_cases(5_000), |(b in prop::collection::vec(any::<u8>(), 0..64))| {
            prop_assert_eq!(text_is_clean(&b), reference(&b));
        });
    }

    /// The memo of clean values answers exactly as the scan, whatever came before: values
    /// repeat (answered from the memo), share slots (a small pool over 512 slots collides), sit
    /// on either side of the 31-byte limit, and dirty ones are never remembered.
    #[test]
    fn value_memo_agrees_with_the_scan() {
        use proptest::prelude::*;
        let pieces = prop::sample::select(vec![
            "pass", "word", "=", ":", "x", "a", "kia", "eyJ", "0123456", " ", "sshd", "bearer",
            "ú", "Token", "failure",
        ]);
        let value = prop::collection::vec(pieces, 0..9).prop_map(|p| p.concat());
        let values = prop::collection::vec(value, 1..40);
        proptest!(ProptestConfig::with_cases(500), |(values in values)| {
            let mut memo = NameMemo::new();
            for round in 0..3 {
                for v in &values {
                    prop_assert_eq!(
                        memo.value_is_clean(v.as_bytes()),
                        text_is_clean(v.as_bytes()),
                        "{:?} in round {}", v, round
                    );
                }
            }
        });
        // Lengths at the limit, and a dirty value that shares a prefix with a remembered one.
        let mut memo = NameMemo::new();
        for text in [
            "a".repeat(31),
            "a".repeat(32),
            "x".repeat(31),
            String::new(),
        ] {
            assert!(memo.value_is_clean(text.as_bytes()), "{text}");
            assert!(memo.value_is_clean(text.as_bytes()), "{text}");
        }
        assert!(memo.value_is_clean(b"pass"));
        assert!(!memo.value_is_clean(b"pass="));
        assert!(!memo.value_is_clean(b"pass="));
        assert!(memo.value_is_clean(b"pass"));
        assert!(!memo.value_is_clean(b"1234567890123"));
    }

    #[test]
    fn names_are_remembered_only_when_clean() {
        for _ in 0..2 {
            assert!(name_is_clean("source.ip"));
            assert!(!name_is_clean("user.password"));
            assert!(!name_is_clean("sessionToken"));
            assert!(!name_is_clean("x password=y"));
        }
        // A long name is checked every time and still answered right.
        let long = "a.".repeat(100);
        assert!(name_is_clean(&long));
        assert!(!name_is_clean(&format!("{long}token:")));
        // Names that share a slot replace each other; answers stay right.
        let names: Vec<String> = (0..5000).map(|i| format!("f{i}")).collect();
        for n in names.iter().chain(&names) {
            assert!(name_is_clean(n));
        }
        assert!(!name_is_clean("user.password"));
    }

    #[test]
    fn verbatim_records_only_parts_of_the_line() {
        let line = String::from("host app: hello there, world");
        let elsewhere = String::from("hello there, world");
        let mut v = Verbatim::default();
        v.record("message", &line, &line[10..]);
        v.record("other", &line, &elsewhere);
        assert_eq!(v.range("message"), Some(&(10..28)));
        assert_eq!(v.range("other"), None);
        assert!(v.holds(&line, "message", &Value::from("hello there, world")));
        assert!(!v.holds(&line, "message", &Value::from("hellO there, world")));
        assert!(!v.holds(&line, "host.name", &Value::from("hello there, world")));
        for _ in 0..10 {
            v.record("process.name", &line, &line[5..8]);
        }
        assert_eq!(v.len, MAX_VERBATIM, "bounded");
    }

    /// The per-place verdicts of the known names are the verdicts the memo path gives.
    #[test]
    fn known_name_verdicts_agree_with_the_memo_path() {
        let verdicts = known_name_verdicts();
        assert_eq!(verdicts.len(), vigil_event::known_names().len());
        with_name_memo(|memo| {
            for (name, verdict) in vigil_event::known_names().iter().zip(verdicts) {
                assert_eq!(NameVerdict::of(name, memo), *verdict, "{name}");
            }
        });
        // Both kinds occur: the table has provenance names and secret-like ones.
        assert!(verdicts.contains(&NameVerdict::Provenance));
        assert!(verdicts.contains(&NameVerdict::Unclean));
    }
}
