//! Differential tests over the corpus: each hand-written fast path against the code it
//! stands in for, line by line (`VIGIL_CORPUS`; skipped without it, like the corpus tests).
//!
//! * RFC 3164 headers: [`crate::syslog_fast`] against `syslog_loose`;
//! * sshd logins: [`crate::sshd_fast`] against the regular expressions;
//! * masking: the whole-event check of `Redactor::redact_event` against the field-by-field
//!   pass, on every parsed event, and `parse_line`'s clean-line path (verbatim fields not
//!   scanned again) against the field-by-field pass.

use std::path::PathBuf;

use vigil_event::Timestamp;

use crate::redact::Redactor;
use crate::{Format, ParseContext, parse_line};

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        });
    if dir.join("README.md").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("VIGIL_REQUIRE_CORPUS").as_deref() != Ok("1"),
        "corpus not found at {} (VIGIL_REQUIRE_CORPUS=1)",
        dir.display()
    );
    eprintln!(
        "SKIP: corpus not found at {}; set VIGIL_CORPUS",
        dir.display()
    );
    None
}

/// The syslog files of the corpus the parsers are tested on.
const SYSLOG_FILES: &[&str] = &[
    "elastic-examples/auth_log/auth.log.part1of3",
    "loghub/OpenSSH/OpenSSH_2k.log",
    "loghub/Linux/Linux_2k.log",
];

#[test]
fn fast_paths_agree_with_what_they_replace_on_the_corpus() {
    let Some(dir) = corpus() else {
        return;
    };
    let reference = Timestamp::parse("2026-11-22T12:00:00Z").unwrap();
    let ctx = ParseContext::new(reference, "corpus");
    let redactor = Redactor::default();
    let year = crate::syslog_fast::year_at(reference);
    let (mut lines, mut fast_headers, mut logins) = (0, 0, 0);
    for file in SYSLOG_FILES {
        let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            lines += 1;
            let slow = syslog_loose::parse_message_with_year_exact_tz(
                line,
                move |(m, d, h, mi, s): syslog_loose::IncompleteDate| year(m, d, h, mi, s),
                Some(chrono::Utc),
                syslog_loose::Variant::Either,
            )
            .ok();
            if let Some(fast) = crate::syslog_fast::parse_3164(line, year) {
                fast_headers += 1;
                assert_eq!(
                    Some(format!("{fast:?}")),
                    slow.as_ref().map(|m| format!("{m:?}")),
                    "{file}: {line}"
                );
            }
            if let Some(m) = slow.as_ref().map(|m| m.msg)
                && crate::sshd_fast::applies(m)
            {
                let failed = crate::linux::ssh_failed_by_regex(m);
                let accepted = crate::linux::ssh_accepted_by_regex(m);
                logins += usize::from(failed.is_some() || accepted.is_some());
                assert_eq!(crate::sshd_fast::failed(m), failed, "{file}: {line}");
                assert_eq!(crate::sshd_fast::accepted(m), accepted, "{file}: {line}");
            }
            let event = parse_line(line.as_bytes(), Format::Auto, &ctx);
            // What `parse_line` returns (the clean-line path skips verbatim fields) is what
            // the field-by-field pass leaves alone.
            let mut again = event.clone();
            assert_eq!(
                redactor.redact_fields(&mut again).total(),
                0,
                "{file}: {line}"
            );
            assert_eq!(again, event, "{file}: {line}");
            let (mut fast, mut slow) = (event.clone(), event);
            assert_eq!(
                redactor.redact_event(&mut fast),
                redactor.redact_fields(&mut slow),
                "{file}: {line}"
            );
            assert_eq!(fast, slow, "{file}: {line}");
        }
    }
    // The fast paths are the common case on these files, not a corner.
    assert!(fast_headers * 10 > lines * 9, "{fast_headers} of {lines}");
    assert!(logins > 500, "{logins}");
}

/// Every dotted field name the parsers write for the corpus syslog files (and `message`,
/// `tags`) is in `vigil_event`'s table of known names, so building these events allocates no
/// name (issue 16: the names were a quarter of the allocations per line). Undotted names are
/// the line's own `key=value` keys (`euid`, `rhost`, …), owned as they must be. A name that
/// fails here is one a parser started writing: add it to `crates/vigil-event/src/interned.rs`.
#[test]
fn syslog_field_names_are_interned() {
    let Some(dir) = corpus() else {
        return;
    };
    let ctx = ParseContext::new(Timestamp::parse("2026-11-22T12:00:00Z").unwrap(), "corpus");
    let mut missing = std::collections::BTreeSet::new();
    let mut names = 0;
    for file in SYSLOG_FILES {
        let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let event = parse_line(line, Format::Auto, &ctx);
            for (name, _) in event.fields() {
                names += 1;
                let from_input = !name.contains('.') && name != "message" && name != "tags";
                if !from_input && vigil_event::interned(name).is_none() {
                    missing.insert(name.to_owned());
                }
            }
        }
    }
    assert!(names > 50_000, "{names}");
    assert!(missing.is_empty(), "not interned: {missing:?}");
}
