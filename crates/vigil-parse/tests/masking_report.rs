//! The masking report over the whole public corpus (`../shared/corpus`, `VIGIL_CORPUS`): every
//! text log line (plain, `.gz`, JSON, JSON lines, TSV, CSV; not the Sigma rules, EVTX or zip
//! archives) is parsed twice, with and without the default redactor, and every field that
//! differs is taken apart into the spans that were masked. Each span is then judged here, by
//! rules written independently of the redactor's patterns:
//!
//! * an **identifier** (a false mask) when it is an AWS access key id (`AKIA…`/`ASIA…`: it names
//!   a key, the secret key is what must not be stored), a PAM management group after
//!   `pam_x(passwd:` (`chauthtok`), a number that is the value of an `…id` key (Suricata's
//!   `flow_id` passes the Luhn check), or text inside a rule's signature or name (written by a
//!   rule author, never sent by the observed party);
//! * a **secret** when it follows a key named like a credential (password, secret, token, key,
//!   authorization…), is a JWT, a PEM private key, a URL's password, a bearer token, or a
//!   card-shaped number in any other place;
//! * **unexplained** otherwise (counted as false: a mask nobody can justify).
//!
//! The report is printed (`cargo test -p vigil-parse --test masking_report -- --nocapture`); the
//! test fails on any false or unexplained mask, and when secrets planted into real records
//! (CloudTrail credentials, a password in a Suricata payload) survive.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use common::corpus;
use regex::Regex;
use vigil_event::{Event, Timestamp, Value};
use vigil_parse::{Format, ParseContext, parse_line};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            // Sigma rules and schemas are not logs.
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !matches!(name, "sigma" | "sigma-correlation" | "ocsf-schema") {
                walk(&p, out);
            }
        } else {
            let name = p.to_string_lossy().to_ascii_lowercase();
            let log_like = [".log", ".json", ".jsonl", ".tsv", ".csv", ".txt", ".gz"]
                .iter()
                .any(|ext| name.ends_with(ext))
                || name.contains(".part");
            if log_like && !name.ends_with("license") && !name.ends_with("readme.md") {
                out.push(p);
            }
        }
    }
}

fn read_text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        return String::from_utf8_lossy(&out).into_owned();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One masked span: what was there, the text before it, the field it was in.
struct Mask {
    kind: String,
    span: String,
    before: String,
    field: String,
}

/// The spans of `original` that `masked` replaced by `[REDACTED:kind]` markers.
fn masked_spans(field: &str, original: &str, masked: &str, out: &mut Vec<Mask>) {
    static MARKER: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"\[REDACTED:([a-z_]+)\]").unwrap());
    if masked.starts_with("[REDACTED:") && masked.ends_with(']') && !original.contains('[') {
        // The whole value (a field named like a secret).
        out.push(Mask {
            kind: masked[10..masked.len() - 1].to_owned(),
            span: original.to_owned(),
            before: String::new(),
            field: field.to_owned(),
        });
        return;
    }
    let mut pos_orig = 0;
    let mut pos_masked = 0;
    for m in MARKER.captures_iter(masked) {
        let whole = m.get(0).unwrap();
        let literal = &masked[pos_masked..whole.start()];
        // The literal text before the marker is in the original, in order.
        let Some(at) = original[pos_orig..].find(literal) else {
            return;
        };
        let span_start = pos_orig + at + literal.len();
        // The span ends where the literal text after the marker (up to the next marker) starts.
        let rest = &masked[whole.end()..];
        let next_literal = MARKER.find(rest).map_or(rest, |n| &rest[..n.start()]);
        let probe: String = next_literal.chars().take(8).collect();
        let span_end = if probe.is_empty() {
            original.len()
        } else {
            original[span_start..]
                .find(&probe)
                .map_or(original.len(), |i| span_start + i)
        };
        let before_start = span_start.saturating_sub(48);
        let before_start = (before_start..=span_start)
            .find(|i| original.is_char_boundary(*i))
            .unwrap_or(span_start);
        out.push(Mask {
            kind: m[1].to_owned(),
            span: original[span_start..span_end].to_owned(),
            before: original[before_start..span_start].to_owned(),
            field: field.to_owned(),
        });
        pos_orig = span_end;
        pos_masked = whole.end();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Secret,
    Identifier(&'static str),
    Unexplained,
}

fn judge(m: &Mask) -> Verdict {
    static AWS_KEY_ID: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"^(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}$")
            .unwrap()
    });
    static PAM: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"pam_[a-z0-9_]+\([a-z0-9_-]+:$").unwrap());
    static ID_KEY: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r#"(?i)[a-z_]*id["']?\s*[:=]\s*["']?$"#).unwrap());
    static SIGNATURE_FIELD: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"(?i)(^|\.)(signature|rule\.name|msg)$").unwrap());
    static SIGNATURE_JSON: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r#""(signature|msg)"\s*:\s*"[^"]*$"#).unwrap());
    static SECRET_KEY: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(
            r#"(?i)(pass(word|wd|phrase)?|pwd|secret[a-z_]*|[a-z_]*token|api[_-]?key|apikey|authorization|credentials?|private[_-]?key)["']?\s*[:=]\s*["']?(basic |bearer |digest |negotiate |ntlm )?$"#,
        )
        .unwrap()
    });
    static SECRET_FIELD: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"(?i)(pass|pwd|secret|token|key|authorization|credential)[a-z_-]*$").unwrap()
    });
    let span = m.span.trim_matches(['"', '\'']);
    if AWS_KEY_ID.is_match(span) {
        return Verdict::Identifier("aws access key id");
    }
    if PAM.is_match(&m.before) {
        return Verdict::Identifier("pam management group");
    }
    if SIGNATURE_FIELD.is_match(&m.field) || SIGNATURE_JSON.is_match(&m.before) {
        return Verdict::Identifier("rule signature text");
    }
    if m.kind == "card" {
        return if ID_KEY.is_match(&m.before) {
            Verdict::Identifier("numeric id")
        } else {
            Verdict::Secret
        };
    }
    if m.before.is_empty() && SECRET_FIELD.is_match(&m.field) {
        return Verdict::Secret;
    }
    if SECRET_KEY.is_match(&m.before)
        || span.starts_with("eyJ")
        || span.starts_with("-----BEGIN")
        || m.before.to_ascii_lowercase().ends_with("bearer ")
        || (m.before.contains("://") && m.before.ends_with(':'))
    {
        return Verdict::Secret;
    }
    Verdict::Unexplained
}

fn strings(e: &Event) -> BTreeMap<String, String> {
    e.fields()
        .filter_map(|(k, v)| match v {
            Value::Str(s) => Some((k.to_owned(), s.clone())),
            _ => None,
        })
        .collect()
}

/// The masks `parse_line` makes on one line.
fn masks_of(line: &str, with: &ParseContext, without: &ParseContext, out: &mut Vec<Mask>) {
    let masked = parse_line(line.as_bytes(), Format::Auto, with);
    if masked.get("vigil.redacted").is_none() {
        return;
    }
    let plain = strings(&parse_line(line.as_bytes(), Format::Auto, without));
    let mut found = false;
    for (k, v) in strings(&masked) {
        if !v.contains("[REDACTED:") {
            continue;
        }
        // A field renamed by masking (a secret in a key) has no plain twin: judge the raw line.
        let original = plain.get(&k).map_or(line, String::as_str);
        let before = out.len();
        masked_spans(&k, original, &v, out);
        found |= out.len() > before;
    }
    // Non-string fields (a number became a marker string) are judged on the raw line.
    if !found {
        let mut counts = vigil_parse::redact::Redactions::default();
        if let Some(raw) = vigil_parse::redact::Redactor::default().redact_str(line, &mut counts) {
            masked_spans("event.original", line, &raw, out);
        }
    }
}

#[test]
fn masking_report_over_the_corpus() {
    let Some(dir) = corpus() else { return };
    let mut files = Vec::new();
    walk(&dir, &mut files);
    let t = Timestamp::parse("2026-12-07T00:00:00Z").unwrap();
    let with = ParseContext::new(t, "corpus");
    let mut without = with.clone();
    without.redactor = None;
    // Secrets by name, found independently: a JSON key named like a credential and its value.
    let named_secret = Regex::new(
        r#"(?i)"(password|passwd|sessionToken|secretAccessKey|client_secret|api_key|private_key)"\s*:\s*"([^"\\]{4,})""#,
    )
    .unwrap();
    let mut lines = 0usize;
    let mut masks = Vec::new();
    let (mut secrets_named, mut secrets_left) = (0usize, Vec::new());
    for f in &files {
        for line in read_text(f).lines() {
            if line.trim().is_empty() || line.len() > 1 << 20 {
                continue;
            }
            lines += 1;
            masks_of(line, &with, &without, &mut masks);
            let named: Vec<(String, String)> = named_secret
                .captures_iter(line)
                .map(|c| (c[1].to_owned(), c[2].to_owned()))
                .filter(|(_, v)| !v.starts_with("[REDACTED:") && !v.contains("HIDDEN_DUE_TO"))
                .collect();
            if !named.is_empty() {
                let e = parse_line(line.as_bytes(), Format::Auto, &with);
                let original = e.get_str("event.original").unwrap_or("");
                for (key, v) in named {
                    secrets_named += 1;
                    let in_field = e.fields().any(|(k, value)| {
                        k.rsplit('.')
                            .next()
                            .is_some_and(|last| last.eq_ignore_ascii_case(&key))
                            && value.as_str() == Some(v.as_str())
                    });
                    if in_field || original.contains(&format!("\"{key}\":\"{v}\"")) {
                        secrets_left.push(v);
                    }
                }
            }
        }
    }
    let mut by_verdict: BTreeMap<(Verdict, String), (usize, Vec<String>)> = BTreeMap::new();
    for m in &masks {
        let entry = by_verdict
            .entry((judge(m), m.kind.clone()))
            .or_insert((0, Vec::new()));
        entry.0 += 1;
        let example = format!(
            "{}: …{}⟦{}⟧",
            m.field,
            m.before.replace(['\n', '\t'], " "),
            m.span.chars().take(40).collect::<String>()
        );
        // One example per key word before the span.
        let word: String = m
            .before
            .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
            .rsplit(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("")
            .to_owned();
        let tag = format!("[{word}]");
        if entry.1.len() < 16 && !entry.1.iter().any(|e| e.starts_with(&tag)) {
            let example = format!("{tag} {example}");
            entry.1.push(example);
        }
    }
    let mut report = format!(
        "masking report: {} files, {lines} lines, {} masked spans\n",
        files.len(),
        masks.len()
    );
    for ((verdict, kind), (n, examples)) in &by_verdict {
        report.push_str(&format!("  {verdict:?} {kind}: {n}\n"));
        for e in examples {
            report.push_str(&format!("      {e}\n"));
        }
    }
    report.push_str(&format!(
        "  credentials named in JSON: {secrets_named}, left unmasked: {}\n",
        secrets_left.len()
    ));
    let _ = writeln!(std::io::stderr(), "{report}");
    assert!(
        secrets_named > 0,
        "no named credential found: the check is blind"
    );
    assert!(secrets_left.is_empty(), "secrets left: {secrets_left:?}");
    let false_masks: usize = by_verdict
        .iter()
        .filter(|((v, _), _)| *v != Verdict::Secret)
        .map(|(_, (n, _))| n)
        .sum();
    assert!(lines > 10_000, "too few lines read: {lines}");
    assert_eq!(false_masks, 0, "false masks in the corpus:\n{report}");
}

/// Secrets planted into real records are masked, and the identifiers beside them are kept.
#[test]
fn planted_secrets_in_real_records_are_masked() {
    let Some(dir) = corpus() else { return };
    let t = Timestamp::parse("2026-12-07T00:00:00Z").unwrap();
    let ctx = ParseContext::new(t, "corpus");
    // A real CloudTrail record (an AssumeRole response carries temporary credentials).
    let trail = read_text(&dir.join("panther-rule-test-events/rule-tests/AWS.CloudTrail.jsonl"));
    let key_id_re = Regex::new(r#""accessKeyId":\s*"(A[A-Z0-9]{19})""#).unwrap();
    let record = trail
        .lines()
        .find(|l| key_id_re.is_match(l))
        .expect("a CloudTrail record with an access key id");
    let key_id = key_id_re.captures(record).unwrap()[1].to_owned();
    let planted = record.replacen(
        '{',
        r#"{"responseElements":{"credentials":{"accessKeyId":"ASIAQ7PLANTEDKEY0001","secretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTED001","sessionToken":"IQoJb3JpZ2luX2VjPLANTEDTOKEN0001"}},"#,
        1,
    );
    let e = parse_line(planted.as_bytes(), Format::Auto, &ctx);
    let all = format!("{e:?}");
    for secret in ["PLANTED0001", "PLANTEDTOKEN0001"] {
        assert!(!all.contains(secret), "{secret} survives: {all}");
    }
    assert!(all.contains(&key_id), "the access key id {key_id} is kept");
    assert!(all.contains("ASIAQ7PLANTEDKEY0001"), "{all}");
    // A key id with its secret key next to it, as in a leaked credentials file.
    let line = "leaked AKIAQ7PLANTEDKEY0002,wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTED002 in repo";
    let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
    let all = format!("{e:?}");
    assert!(!all.contains("PLANTED002"), "{all}");
    assert!(all.contains("AKIAQ7PLANTEDKEY0002"), "{all}");
    // A password in a real Suricata alert's payload is masked; its signature text is not.
    let eve =
        read_text(&dir.join("suricata-sample-data/samples/first-org-conf-2015/alerts-only.json"));
    let alerts: Vec<serde_json::Value> = serde_json::from_str(&eve).expect("a JSON array");
    let alert = alerts
        .iter()
        .map(|a| a.to_string())
        .find(|l| l.contains("\"signature\":\""))
        .expect("a Suricata alert");
    let planted = alert.replacen(
        "\"signature\":\"",
        "\"payload_printable\":\"POST /login user=bob&password=Planted0003\",\"signature\":\"ET POLICY Password: found in ",
        1,
    );
    let e = parse_line(planted.as_bytes(), Format::Auto, &ctx);
    let all = format!("{e:?}");
    assert!(!all.contains("Planted0003"), "{all}");
    assert!(
        e.get_str("alert.signature")
            .is_some_and(|s| s.starts_with("ET POLICY Password: found in ")),
        "{all}"
    );
}
